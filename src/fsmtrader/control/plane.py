"""The control plane of one running session, assembled: the record feed on the store's
commits, metrics on the feed, the API app on uvicorn in a daemon thread, and
``STATE_DIR/api.json`` telling local tools where the bot listens (never the token).

The engine's thread only ever appends to the feed and serves the control desk; everything
else runs in the server's thread and reads the database read-only."""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from fsmtrader.config.control_sections import LOOPBACK_HOSTS
from fsmtrader.control.api import ApiContext, make_app
from fsmtrader.control.api_file import ApiAddress, remove_api_file, write_api_file
from fsmtrader.control.feed import RecordFeed
from fsmtrader.control.metrics import Metrics
from fsmtrader.control.reads import BookReader
from fsmtrader.control.server import ApiServer
from fsmtrader.control.telegram.client import TelegramClient
from fsmtrader.control.token import require_token, telegram_token
from fsmtrader.store.sqlite import store_path

if TYPE_CHECKING:
    from fsmtrader.session import DurableSession

log = logging.getLogger("fsmtrader.control")


class ControlPlane:
    def __init__(self, session: DurableSession) -> None:
        s = session.s
        self.session = session
        self.state_dir = session.state_dir
        self.db_path = store_path(session.state_dir, s.database_url)
        self.feed = RecordFeed(start_after=session.store.last_audit_id())
        self._local = threading.local()
        self._readers: list[BookReader] = []  # closed with the plane: the WAL folds back
        self.metrics = Metrics(
            status=lambda: self.reader().status(session.clock.now_ms(), session.marks),
            balance=lambda: self.reader().balance(),
            calls=session.calls,
            retries=session.retry_stats,
            timeouts=session.engine.policy.timeouts,
        )
        self.feed.listen(self.metrics.observe)
        self.server = self._api_server() if s.api.enabled else None
        self.telegram = self._telegram() if s.telegram.enabled else None
        self._attached = False

    def _telegram(self) -> TelegramClient:
        session = self.session
        return TelegramClient(
            session.s.telegram,
            token=telegram_token(session.s),
            feed=self.feed,
            desk=session.desk,
            reader_factory=lambda: BookReader(self.db_path, self.state_dir),
            now_ms=session.clock.now_ms,
            marks=lambda: session.marks,
            metrics=self.metrics,
        )

    def _api_server(self) -> ApiServer:
        session, s = self.session, self.session.s
        ctx = ApiContext(
            token=require_token(s),
            db_path=self.db_path,
            state_dir=self.state_dir,
            feed=self.feed,
            desk=session.desk,
            metrics=self.metrics,
            settings_view=s.redacted_dict(),
            marks=lambda: session.marks,
            now_ms=session.clock.now_ms,
            stream_queue=s.api.stream_queue,
        )
        return ApiServer(make_app(ctx), s.api.host, s.api.port)

    def reader(self) -> BookReader:
        """This thread's read-only connection (sqlite3 connections stay in their thread)."""
        reader: BookReader | None = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = BookReader(self.db_path, self.state_dir)
            self._readers.append(reader)
        return reader

    def start(self) -> None:
        """Attach to the commits and listen (before the session's start, so its recovery's
        records are pushed and counted too)."""
        self.session.store.on_committed.append(self.feed.on_committed)
        self._attached = True
        if self.server is not None:
            self._serve(self.server)
        if self.telegram is not None:
            self.telegram.start()
            s = self.session.s
            self.telegram.say(
                "start",
                f"fsmtrader started: {type(self.session).__name__.replace('Session', '').lower()}"
                f" session, {len(s.market.symbols)} symbols ({', '.join(s.market.symbols)})",
            )

    def _serve(self, server: ApiServer) -> None:
        """Listen, then tell local tools where: ``api.json`` is written whole or not at all."""
        s = self.session.s
        if s.api.host not in LOOPBACK_HOSTS:
            log.warning(
                "api.host %s: the control API is reachable from other machines (it can stop "
                "entries and exit positions); keep the token secret",
                s.api.host,
            )
        server.start()
        write_api_file(self.state_dir, self.address(server))

    def address(self, server: ApiServer) -> ApiAddress:
        return ApiAddress(self.session.s.api.host, server.port, os.getpid())

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("the plane serves no API ([api] is off)")
        return self.address(self.server).url

    def close(self) -> None:
        """Stop listening and remove ``api.json`` (only ours: another bot may own it now)."""
        if self.telegram is not None:
            self.telegram.say("stop", "fsmtrader stopping: open positions stay on the exchange")
            self.telegram.close()
        try:
            if self.server is not None:
                remove_api_file(self.state_dir, os.getpid())
        finally:
            if self.server is not None:
                self.server.stop()
            for reader in self._readers:  # (no thread uses them once the server stopped)
                reader.close()
            self._readers.clear()
            if self._attached:
                self.session.store.on_committed.remove(self.feed.on_committed)
                self._attached = False

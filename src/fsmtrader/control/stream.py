"""The push stream: Server-Sent Events of the committed records, resumable from an id.

One listener on the RecordFeed serves every client. It runs in the engine thread after
each commit and only schedules the fan-out on the web loop (``call_soon_threadsafe``):
the engine never waits for the web side. Each client has a bounded queue; a client whose
queue is full (it reads slower than the bot commits, or not at all) is dropped — its
stream is cut and counted — never waited for.

On connect the client gets what came after ``after`` (or ``Last-Event-ID``): from the
feed's ring, or from the audit table when the ring no longer reaches back that far, then
the live tail; ids are strictly increasing (no gap, no duplicate), because the client is
registered for live items *before* the ring is read and everything at or below the last
id sent is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from fsmtrader.control.feed import FeedItem, RecordFeed

log = logging.getLogger("fsmtrader.control")
HEARTBEAT_S = 15.0
REPLAY_CHUNK = 500  # audit rows read from the database at a time
WRITE_BATCH = 100  # events written to a client in one send


class AuditSource(Protocol):
    def audit(self, after_id: int, limit: int) -> list[dict[str, Any]]: ...


class StreamMetrics(Protocol):
    def stream_clients(self, n: int) -> None: ...
    def stream_dropped(self) -> None: ...


def sse_event(item: dict[str, Any]) -> bytes:
    """One ``record`` event: ``id``, ``event``, ``data`` (single-line JSON)."""
    data = json.dumps(item, default=str, separators=(",", ":"))
    return f"id: {item['id']}\nevent: record\ndata: {data}\n\n".encode()


def replayed(row: dict[str, Any]) -> dict[str, Any]:
    """An audit row (``audit_id`` + the record) as a feed item; ``committed_ms`` is not
    known any more (null). ``replay`` marks what was committed before the client came
    (not push lag)."""
    record = {k: v for k, v in row.items() if k != "audit_id"}
    return {"id": int(row["audit_id"]), "committed_ms": None, "record": record, "replay": True}


@dataclass(eq=False)
class Client:
    queue: asyncio.Queue[FeedItem]
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    last_id: int = 0
    connected_ms: float = field(default_factory=lambda: time.time() * 1000)


class StreamHub:
    """Every push client of one app, fed by one RecordFeed listener."""

    def __init__(
        self,
        feed: RecordFeed,
        metrics: StreamMetrics,
        *,
        queue_size: int,
        audit: Callable[[], AuditSource],
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.feed = feed
        self.metrics = metrics
        self.queue_size = queue_size
        self.audit = audit  # the loop thread's BookReader (asked only on the loop)
        self.heartbeat_s = heartbeat_s
        self.clients: set[Client] = set()
        self.dropped = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._n = 0  # len(clients), read by the engine thread
        # Set by ApiServer: abort the connection of a peer (host, port) now.
        self.abort_connection: Callable[[tuple[Any, ...]], None] | None = None
        feed.listen(self._from_engine)

    # --- the engine thread ---------------------------------------------------------------
    def _from_engine(self, items: list[FeedItem]) -> None:
        """Called after each commit: schedule the fan-out and return at once."""
        loop = self._loop
        if loop is None or self._n == 0:
            return  # nobody listens; a client connecting now reads the ring instead
        with contextlib.suppress(RuntimeError):  # the loop has closed: the API stopped
            loop.call_soon_threadsafe(self._fan_out, items)

    # --- the web loop --------------------------------------------------------------------
    def _fan_out(self, items: list[FeedItem]) -> None:
        for client in list(self.clients):
            try:
                for item in items:
                    client.queue.put_nowait(item)
            except asyncio.QueueFull:
                self._drop(client)

    def _drop(self, client: Client) -> None:
        """Too slow: cut its stream (the response task sees ``dropped``), free its queue."""
        self._remove(client)
        client.dropped.set()
        while not client.queue.empty():
            client.queue.get_nowait()
        self.dropped += 1
        self.metrics.stream_dropped()
        log.warning("push client dropped: %d records queued unread", self.queue_size)

    def _remove(self, client: Client) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self._n = len(self.clients)
            self.metrics.stream_clients(self._n)

    def connect(self, after: int | None) -> Client:
        """Register a client (live items queue from now on); ``after`` None: live only."""
        self._loop = asyncio.get_running_loop()
        client = Client(asyncio.Queue(maxsize=self.queue_size))
        self.clients.add(client)
        self._n = len(self.clients)
        self.metrics.stream_clients(self._n)
        client.last_id = self.feed.last_id() if after is None else after
        return client

    async def events(self, client: Client) -> AsyncIterator[bytes]:
        """The replay, then the live tail, with a heartbeat comment when idle. What is
        queued is written in one go (one write per burst, not per record)."""
        yield b": fsmtrader push stream\nretry: 2000\n\n"
        async for chunk in self._replay(client):
            yield chunk
        queue = client.queue
        while True:
            try:
                first = await asyncio.wait_for(queue.get(), self.heartbeat_s)
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            batch = [first]
            while len(batch) < WRITE_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            fresh = [item for item in batch if item.id > client.last_id]
            if fresh:
                client.last_id = fresh[-1].id
                yield b"".join(sse_event(item.to_json()) for item in fresh)

    async def _replay(self, client: Client) -> AsyncIterator[bytes]:
        """What came after ``client.last_id``: the audit table up to where the ring starts,
        then the ring (the queue holds what commits from now on)."""
        while True:
            ring = self.feed.since(client.last_id)
            if ring is not None:
                items = [self._ring_event(client, i) for i in ring if i.id > client.last_id]
                for at in range(0, len(items), WRITE_BATCH):
                    part = items[at : at + WRITE_BATCH]
                    client.last_id = part[-1]["id"]
                    yield b"".join(sse_event(event) for event in part)
                return
            rows = self.audit().audit(client.last_id, REPLAY_CHUNK)
            events = [e for e in map(replayed, rows) if e["id"] > client.last_id]
            if not events:
                return
            for at in range(0, len(events), WRITE_BATCH):
                part = events[at : at + WRITE_BATCH]
                client.last_id = part[-1]["id"]
                yield b"".join(sse_event(event) for event in part)

    @staticmethod
    def _ring_event(client: Client, item: FeedItem) -> dict[str, Any]:
        """A ring item; ``replay`` when it was committed before the client connected."""
        event = item.to_json()
        if item.committed_ms < client.connected_ms:
            event["replay"] = True
        return event

    def close(self) -> None:
        """End every stream now (any thread): the server is stopping, and an open stream
        must not hold its shutdown up."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is gone already
                loop.call_soon_threadsafe(self._end_all)

    def _end_all(self) -> None:
        for client in list(self.clients):
            self._remove(client)
            client.dropped.set()

    def disconnect(self, client: Client) -> None:
        self._remove(client)

    def abort(self, peer: Any) -> None:
        """Cut a dropped client's connection at once, unsent bytes and all (a close
        would wait for a reader that never reads); the server sets ``abort_connection``."""
        if self.abort_connection is not None and peer is not None:
            self.abort_connection(tuple(peer))


class PushResponse(Response):
    """An ASGI response that streams a client's events until it disconnects or is
    dropped. A dropped client's send may be stuck (its socket buffer is full): the
    sending task is cancelled and the connection closed without waiting for it."""

    media_type = "text/event-stream"

    def __init__(self, hub: StreamHub, client: Client) -> None:
        super().__init__(status_code=200, media_type=self.media_type)
        self.hub = hub
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            pump = asyncio.create_task(self._pump(send))
            gone = asyncio.create_task(_disconnected(receive))
            dropped = asyncio.create_task(self.client.dropped.wait())
            done, pending = await asyncio.wait(
                {pump, gone, dropped}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if pump in done and pump.exception() is not None:
                log.warning("push stream failed: %s", type(pump.exception()).__name__)
            if dropped in done:
                self.hub.abort(scope.get("client"))
        finally:
            self.hub.disconnect(self.client)
        # Returning without the final body makes uvicorn close the connection: what a
        # dropped or failed stream needs (its send may never drain).

    async def _pump(self, send: Send) -> None:
        async for chunk in self.hub.events(self.client):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0)  # a send that did not wait must not starve the loop


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return

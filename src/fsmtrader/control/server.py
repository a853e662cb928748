"""uvicorn in a daemon thread of the bot's own process, with its own asyncio loop.

The trading loop never waits for it: the socket is bound here first (so a port in use is
one line at start, and port 0 gives the real port back), the server runs in a daemon
thread, and stopping it is bounded — a stuck client can delay the bot's exit by at most
``timeout_s``, and the daemon thread never keeps the process alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from fsmtrader.errors import ConfigError

log = logging.getLogger("fsmtrader.control")
# What uvicorn says when a push stream is cut on purpose (a dropped client): not an error.
CUT_ON_PURPOSE = "ASGI callable returned without completing response."


class _CutStreams(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != CUT_ON_PURPOSE


_CUT_FILTER = _CutStreams()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; a port in use or an address this machine
    does not have is a ConfigError naming ``api.port`` / ``api.host``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ConfigError(f"api.host: {host!r} is not an address of this machine") from None
    family, kind, proto, _name, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"api.port: {host}:{port} is in use") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ConfigError(
                f"api.port: {host}:{port} needs privileges (use a port > 1023)"
            ) from None
        raise ConfigError(f"api.host: cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.setblocking(False)
    return sock


class ApiServer:
    """The FastAPI app served by uvicorn in a daemon thread; ``port`` is the bound port."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None
        hub = getattr(app.state, "hub", None)
        if hub is not None:
            hub.abort_connection = self._abort

    def _abort(self, peer: tuple[object, ...]) -> None:
        """Abort the connection from ``peer`` (the web loop's thread): a dropped push
        client's socket is closed now, not once it has read what is buffered for it."""
        server = self._server
        if server is None:
            return
        for conn in list(server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if getattr(conn, "client", None) == peer and transport is not None:
                transport.abort()

    def start(self, timeout_s: float = 10.0) -> None:
        """Bind, serve in a daemon thread, return once uvicorn listens."""
        if self._thread is not None:
            raise RuntimeError("ApiServer.start: already started")
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            access_log=False,  # the dashboard's ?token= would otherwise be in the log
            log_level="warning",
            log_config=None,  # the bot's own logging stays as the bot set it
            lifespan="off",
            timeout_graceful_shutdown=1,  # open push streams are cut, not waited for
        )
        server = uvicorn.Server(config)
        uv_log = logging.getLogger("uvicorn.error")
        if _CUT_FILTER not in uv_log.filters:
            uv_log.addFilter(_CUT_FILTER)
        self._server = server
        thread = threading.Thread(
            target=self._run, args=(server, sock), name="fsmtrader-api", daemon=True
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if self._failed is not None or not thread.is_alive():
                sock.close()
                why = f" ({self._failed})" if self._failed is not None else ""
                raise ConfigError(f"api: the server on {self.host}:{self.port} did not start{why}")
            if time.monotonic() >= deadline:
                server.should_exit = True
                raise ConfigError(
                    f"api: the server on {self.host}:{self.port} did not start "
                    f"within {timeout_s:g} s"
                )
            time.sleep(0.005)

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # SystemExit from a failed startup included
            self._failed = exc
            log.error("api server stopped: %s", type(exc).__name__)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            reads = getattr(self.app.state, "reads", None)
            if reads is not None:
                reads.close()  # the loop thread's reader, closed in that thread

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask uvicorn to stop; after half the time force it; never wait past ``timeout_s``
        (the thread is a daemon: a server that still hangs dies with the process)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        hub = getattr(self.app.state, "hub", None)
        if hub is not None:
            hub.close()  # open push streams end now instead of at uvicorn's grace timeout
        server.should_exit = True
        thread.join(timeout_s / 2)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout_s / 2)
        if thread.is_alive():
            log.warning("api server did not stop within %g s; left to exit with the bot", timeout_s)

"""The server in a background thread of the caller's process, for tests and benchmarks that
talk to it synchronously, and the loopback-only ``/__sim/*`` admin calls."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from fsmtrader_testing.simserver.app import start_server


@contextmanager
def serving_in_thread(app: web.Application, name: str = "simserver") -> Iterator[str]:
    """``app`` on 127.0.0.1:<free port>, run by an event loop in a daemon thread; yields
    the base URL and stops the server, the loop and the thread afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    try:
        runner, port = asyncio.run_coroutine_threadsafe(start_server(app), loop).result(30)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def admin(base_url: str, method: str, path: str, body: Any = None) -> Any:
    """One ``/__sim/*`` call (JSON in, JSON out), never through a proxy."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return json.loads(resp.read().decode())

"""A cProfile of a benchmark loop in the caller's thread and, when the code under test
runs an event loop in a thread of its own (the ccxt adapter's threaded mode), in that
thread too: top 10 by tottime, with and without the waits."""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
from collections.abc import Callable

_WAITS = ("acquire", "poll", "'send'", "method 'send'", "select")


def profile_threads(
    run: Callable[[], float], loop: asyncio.AbstractEventLoop | None, n: int
) -> None:
    """Profile ``run()`` (``n`` orders, returns ms per order); ``loop`` is the event loop
    of the adapter's own thread, None when everything runs in this thread."""
    main, worker = cProfile.Profile(), cProfile.Profile()
    if loop is None:
        main.enable()
        try:
            run()
        finally:
            main.disable()
        pstats.Stats(main).sort_stats("tottime").print_stats(10)
        return
    asyncio.run_coroutine_threadsafe(_call(worker.enable), loop).result(10)
    main.enable()
    try:
        ms = run()
    finally:
        main.disable()
        asyncio.run_coroutine_threadsafe(_call(worker.disable), loop).result(10)
    print(f"\nprofile of the ours-loop ({n} orders, {ms:.3f} ms/order under cProfile)")
    print(
        "(waits: 'acquire' = the caller blocked on the adapter's loop thread, 'poll' = the "
        "loop idle until the server answers, 'send' = a socket write, which also hands the "
        "GIL to another thread)"
    )
    _print_tops("caller thread (router, sync facade)", main)
    _print_tops("adapter loop thread (ccxt, aiohttp, our async core)", worker)


def _print_tops(title: str, prof: cProfile.Profile) -> None:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs().sort_stats("tottime")
    stats.print_stats(10)
    body = out.getvalue()
    start = body.find("   ncalls")
    print(f"\n-- {title}: top 10 by tottime")
    print(body[start:].rstrip() if start >= 0 else body.rstrip())
    print(f"-- {title}: top 10 by tottime, waits left out")
    rows = [
        (tt, nc, ct, f"{file}:{line}({name})")
        for (file, line, name), (_, nc, tt, ct, _) in stats.stats.items()  # type: ignore[attr-defined]
        if not any(w in name for w in _WAITS)
    ]
    for tt, nc, ct, where in sorted(rows, reverse=True)[:10]:
        print(f"{nc:>9} {tt:9.3f} {ct:9.3f}  {where}")


async def _call(fn: Callable[[], None]) -> None:
    fn()

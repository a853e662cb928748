"""The control plane's figures for the closing note, measured on real processes:

1. push lag, transition -> browser: a real ``fsmtrader paper`` bot with ``[api]`` on and the
   dashboard open in headless Chromium; the page measures each phase record's lag
   (arrival - commit, one host, one wall clock) into ``window.fsmLag``; we read at least
   ``--transitions`` samples and print p50 / p95 / p99 / max and the share within 200 ms
   (the reference documents' bar: 95 %) and within 50 ms (ours: p95 under 50 ms);
2. the engine's decisions (bars) per second at full speed with the control plane off, on,
   and on with the dashboard streaming: the session's clock runs far ahead of what the
   engine can process, and we count the bars it gets through in a window
   (``engine_meta.last_bar_ts``, read-only, between two wall times);
3. the memory of the control plane: the bot process's RSS (and peak) with it off and on.

    .venv/bin/python benchmarks/control_plane.py [--symbols 20] [--transitions 1000]
        [--lag-speed 20000] [--window 8] [--repeat 1] [--json]

No assertion: it prints what it measured. Chromium is Debian's, at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e" / "dashboard"))
from dashboard_bot import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NO_CHROMIUM,
    Bot,
    bot_toml,
    running_bot,
)
from playwright.sync_api import Browser, Page, sync_playwright
from prometheus_client.parser import text_string_to_metric_families


def session_toml(symbols: int, *, api: bool) -> str:
    """Many symbols, a small drop trigger, quick exits and room for a position on every
    symbol: transitions on every symbol all the time."""
    names = [f"S{i:03d}/USDT" for i in range(symbols)]
    return bot_toml(
        11,
        names,
        api={"enabled": api},
        market={"starting_balance": 100_000},
        risk={"max_open_positions": min(100, symbols), "max_total_exposure": 25 * symbols},
        entry={"drop_trigger_pct": 0.3, "anchor_window_min": 10, "buy_escalation_bps": [0, 10]},
        exit={"take_profit_pct": 0.3, "stop_loss_pct": 0.3, "max_hold_min": 10},
    )


def percentile(sorted_ms: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest sample with at least ``p`` % of them at or below it."""
    rank = max(1, -(-len(sorted_ms) * p // 100))
    return sorted_ms[int(rank) - 1]


def lag_figures(samples: Sequence[float]) -> dict[str, float]:
    s = sorted(samples)
    n = len(s)
    return {
        "samples": n,
        "p50_ms": percentile(s, 50),
        "p95_ms": percentile(s, 95),
        "p99_ms": percentile(s, 99),
        "max_ms": s[-1],
        "mean_ms": statistics.fmean(s),
        "within_200ms_pct": 100 * sum(1 for x in s if x <= 200) / n,
        "within_50ms_pct": 100 * sum(1 for x in s if x <= 50) / n,
    }


def metrics_lag_count(bot: Bot) -> float:
    for family in text_string_to_metric_families(bot.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "fsmtrader_push_lag_seconds_count":
                return float(sample.value)
    return 0.0


def open_dashboard(browser: Browser, bot: Bot) -> Page:
    page = browser.new_context().new_page()
    page.goto(bot.page_url())
    page.wait_for_function("document.getElementById('conn').textContent === 'live'")
    return page


def wait_samples(page: Page, n: int, limit_s: float) -> list[float]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        count = int(page.evaluate("window.fsmLag.length"))
        if count >= n:
            break
        time.sleep(0.5)
    samples: list[float] = page.evaluate("window.fsmLag")
    return samples


def measure_lag(browser: Browser, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A paced session (the engine keeps up with its clock): the lag an operator sees."""
    with running_bot(
        root / "lag", session_toml(args.symbols, api=True), hours=720, speed=args.lag_speed,
        run_for_s=args.limit + 60,
    ) as bot:  # fmt: skip
        page = open_dashboard(browser, bot)
        started = time.monotonic()
        samples = wait_samples(page, args.transitions, args.limit)
        took = time.monotonic() - started
        time.sleep(1.5)  # the page posts its samples every second
        exported = metrics_lag_count(bot)
    out: dict[str, Any] = lag_figures(samples) if samples else {"samples": 0}
    out.update(wall_s=took, exported_count=exported, speed=args.lag_speed)
    return out


def bars_at(db: Path) -> tuple[float, int, dict[str, Any]]:
    """(wall time, simulated ts of the last bar processed, the session's meta)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = dict(
            c.execute("SELECT key, value FROM engine_meta WHERE key IN ('last_bar_ts', 'session')")
        )
    finally:
        c.close()
    return time.time(), int(rows.get("last_bar_ts", "0")), json.loads(rows.get("session", "{}"))


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()[0] if value.split() else "0"
    return int(fields.get("VmRSS", 0)), int(fields.get("VmHWM", 0))


def measure_speed(
    browser: Browser | None, root: Path, name: str, args: argparse.Namespace, *, api: bool
) -> dict[str, Any]:
    """Bars per second of a saturated engine over ``--window`` seconds, and its memory."""
    with running_bot(
        root / name, session_toml(args.symbols, api=api), hours=720, speed=args.full_speed,
        run_for_s=args.window + 90, api=api,
    ) as bot:  # fmt: skip
        page = open_dashboard(browser, bot) if browser is not None else None
        db = bot.state_dir / "fsmtrader.db"
        deadline = time.monotonic() + 60
        while bars_at(db)[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        t0, b0, session = bars_at(db)
        c0 = cpu_s(bot.proc.pid)
        time.sleep(args.window)
        t1, b1, _ = bars_at(db)
        c1 = cpu_s(bot.proc.pid)
        alive = bot.proc.poll() is None
        rss, peak = rss_kib(bot.proc.pid) if alive else (0, 0)
        lag = page.evaluate("window.fsmLag") if page is not None else []
    clock_now = session["start_sim_ms"] + (t1 - session["start_wall_s"]) * 1000 * session["speed"]
    bars = (b1 - b0) / 60_000 * args.symbols
    out: dict[str, Any] = {
        "bars_per_s": bars / (t1 - t0),
        "bars_per_cpu_s": bars / max(c1 - c0, 1e-9),  # what other load on the host cannot bend
        "behind_clock_min": (clock_now - b1) / 60_000,  # > 0: the engine is the limit
        "rss_mib": rss / 1024,
        "peak_rss_mib": peak / 1024,
        "valid": alive and b0 > 0 and clock_now > b1,  # it ran, and behind its clock
    }
    if lag:
        out["lag_while_saturated"] = lag_figures(lag)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not CHROMIUM.exists():
        raise SystemExit(NO_CHROMIUM)
    result: dict[str, Any] = {"symbols": args.symbols, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="fsm-cp-bench-") as tmp, sync_playwright() as p:
        root = Path(tmp)
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            if "lag" in args.parts:
                result["lag"] = measure_lag(browser, root, args)
            runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": [], "on_dashboard": []}
            for i in range(args.repeat if "speed" in args.parts else 0):
                runs["off"].append(measure_speed(None, root, f"off{i}", args, api=False))
                runs["on"].append(measure_speed(None, root, f"on{i}", args, api=True))
                runs["on_dashboard"].append(
                    measure_speed(browser, root, f"dash{i}", args, api=True)
                )
            if "speed" in args.parts:
                result["speed"] = {k: best(v) for k, v in runs.items()}
        finally:
            browser.close()
    return result


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run by bars per second (one run: that run)."""
    ranked = sorted(runs, key=lambda r: float(r["bars_per_s"]))
    return ranked[len(ranked) // 2]


def table(r: dict[str, Any]) -> str:
    lines = [
        f"control plane, {r['symbols']} symbols, paper session, headless Chromium; "
        f"{os.cpu_count()} CPUs, load average {r['load_before']:.2f} before the runs"
    ]
    if "lag" in r:
        lines += lag_lines(r["lag"])
    if "speed" in r:
        lines += speed_lines(r["speed"])
    return "\n".join(lines)


def lag_lines(lag: dict[str, Any]) -> list[str]:
    if not lag.get("samples"):
        return ["", "push lag: no sample arrived"]
    return [
        "",
        f"push lag, commit -> page ({lag['samples']} phase transitions, paper at "
        f"{lag['speed']:g}x, {lag['wall_s']:.1f} s; /metrics counted {lag['exported_count']:g})",
        f"  p50 {lag['p50_ms']:8.2f} ms   p95 {lag['p95_ms']:8.2f} ms   "
        f"p99 {lag['p99_ms']:8.2f} ms   max {lag['max_ms']:8.2f} ms",
        f"  within 200 ms: {lag['within_200ms_pct']:.2f} %   "
        f"within 50 ms: {lag['within_50ms_pct']:.2f} %",
    ]


def speed_lines(sp: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"{'engine at full speed':<28}{'bars/s':>10}{'vs off':>9}{'bars/CPU-s':>12}"
        f"{'vs off':>9}{'behind (sim min)':>18}{'RSS MiB':>9}{'peak MiB':>10}",
    ]
    off_cpu = float(sp["off"]["bars_per_cpu_s"]) or 1.0
    off = float(sp["off"]["bars_per_s"]) or 1.0
    for key, label in (("off", "[api] off"), ("on", "[api] on, no client"),
                       ("on_dashboard", "[api] on, dashboard open")):  # fmt: skip
        row = sp[key]
        lines.append(
            f"{label:<28}{row['bars_per_s']:>10.0f}{row['bars_per_s'] / off:>9.2f}"
            f"{row['bars_per_cpu_s']:>12.0f}{row['bars_per_cpu_s'] / off_cpu:>9.2f}"
            f"{row['behind_clock_min']:>18.0f}{row['rss_mib']:>9.1f}{row['peak_rss_mib']:>10.1f}"
            + ("" if row["valid"] else "  (not saturated or ended early: not a figure)")
        )
    sat = sp["on_dashboard"].get("lag_while_saturated")
    if sat:
        lines.append(
            f"  push lag while the engine is saturated ({sat['samples']} samples): "
            f"p50 {sat['p50_ms']:.1f} ms, p95 {sat['p95_ms']:.1f} ms, p99 {sat['p99_ms']:.1f} ms"
        )
    plane = sp["on"]["rss_mib"] - sp["off"]["rss_mib"]
    lines += [
        f"  memory of the control plane (RSS, on - off): {plane:.1f} MiB",
        "  (the dashboard row shares the machine's cores with Chromium)",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--transitions", type=int, default=1000, help="push-lag samples to collect")
    ap.add_argument("--lag-speed", type=float, default=20_000, help="paper speed of the lag run")
    ap.add_argument("--limit", type=float, default=300, help="most seconds to wait for them")
    ap.add_argument("--window", type=float, default=8, help="seconds of each speed sample")
    ap.add_argument(
        "--full-speed", type=float, default=300_000,
        help="paper speed of the speed runs: far beyond what the engine keeps up with, "
        "yet slow enough that the session's clock does not pass its end during start-up",
    )  # fmt: skip
    ap.add_argument("--parts", default="lag,speed", help="lag, speed or both")
    ap.add_argument("--repeat", type=int, default=1, help="speed runs per variant (median)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()

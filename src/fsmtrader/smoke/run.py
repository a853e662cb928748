"""``run_smoke``: the scenarios asked for, one after the other, each in its own folder
under ``work_dir``, each bounded in time; a scenario that breaks is a failed scenario
with its reason, never a crash of the whole run."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fsmtrader.config import Settings
from fsmtrader.smoke.derive import config_sha256
from fsmtrader.smoke.engine_scenarios import run_a, run_b, run_c
from fsmtrader.smoke.report import SCENARIOS, ScenarioResult, SmokeReport, parse_scenarios

Runner = Callable[[Settings, Path], ScenarioResult]
#: Told when a scenario starts (its name, title) and when it ends (its result).
Progress = Callable[[str, str, ScenarioResult | None], None]


def _in_process(fn: Callable[[Settings], ScenarioResult]) -> Runner:
    return lambda s, _folder: fn(s)


def _subprocess(name: str) -> Runner:
    def run(s: Settings, folder: Path) -> ScenarioResult:
        from fsmtrader.smoke import processes

        return processes.RUNNERS[name](s, folder)

    return run


RUNNERS: dict[str, Runner] = {
    "A": _in_process(run_a),
    "B": _in_process(run_b),
    "C": _in_process(run_c),
    "D": _subprocess("D"),
    "E": _subprocess("E"),
}


def used_settings(s: Settings) -> dict[str, Any]:
    """The user's settings the scenarios take (the rest is each scenario's own)."""
    return {
        "exit.exit_ladder_bps": list(s.exit.exit_ladder_bps),
        "exit.never_market_sells": s.exit.never_market_sells,
        "exit.max_exit_slippage_bps": s.exit.max_exit_slippage_bps,
        "entry.buy_escalation_bps": list(s.entry.buy_escalation_bps),
        "entry.max_entry_slippage_bps": s.entry.max_entry_slippage_bps,
        "router.time_in_force": s.router.time_in_force,
        "timeouts": s.timeouts.model_dump(mode="json"),
        "market.starting_balance": s.market.starting_balance,
        "risk.max_total_exposure": s.risk.max_total_exposure,
        "sim.venue": s.sim.venue,
    }


def run_smoke(
    settings: Settings,
    scenarios: Sequence[str],
    *,
    work_dir: Path,
    progress: Progress | None = None,
) -> SmokeReport:
    """Run ``scenarios`` ("A".."E"; empty: all) on the user's ``settings``; each
    scenario's folder is a new one under ``work_dir`` (kept, for a look after a failure)."""
    names = parse_scenarios(scenarios)
    started, wall = datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
    results = []
    for name in names:
        if progress is not None:
            progress(name, SCENARIOS[name], None)
        work_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"scenario-{name}-", dir=work_dir))
        t0 = time.monotonic()
        try:
            result = RUNNERS[name](settings, folder)
        except Exception as exc:  # a broken scenario is a failed one, with its reason
            result = ScenarioResult(
                name, SCENARIOS[name], False, reason=f"error: {type(exc).__name__}: {exc}"
            )
        result.wall_s = time.monotonic() - t0
        results.append(result)
        if progress is not None:
            progress(name, SCENARIOS[name], result)
    return SmokeReport(
        results,
        started,
        time.monotonic() - wall,
        used_settings(settings),
        config_sha256(settings),
        int(time.time() * 1000),
    )

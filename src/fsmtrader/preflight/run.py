"""The preflight itself: the live rules, the smoke scenarios and the acceptance metrics of
a paper session, each a criterion of one GO/NO-GO report. Bad input (a missing or foreign
state directory, a file that is no smoke report) is refused before anything runs."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fsmtrader.config import Settings
from fsmtrader.config.live_policy import LIVE_RULES, live_rule_problems
from fsmtrader.errors import FsmTraderError, StoreError
from fsmtrader.preflight.acceptance import (
    critical_errors,
    dashboard_lag,
    orphaned_orders,
    pnl_drift,
    read_records,
    reconcile_copy,
)
from fsmtrader.preflight.parity import entry_parity
from fsmtrader.preflight.report import Criterion, PreflightReport
from fsmtrader.preflight.restart import restart_idempotency
from fsmtrader.preflight.smoke_check import SmokeFindings, read_smoke_report, run_smoke_now
from fsmtrader.preflight.statedir import StateCopy, copy_state_dir

__all__ = ["live_rules", "run_preflight"]


def live_rules(s: Settings) -> Criterion:
    problems = live_rule_problems(s)
    n = len(LIVE_RULES)
    return Criterion(
        "live rules",
        not problems,
        f"{n - len(problems)}/{n} pass",
        "every rule of `config --check-live`",
        problems,
    )


def run_preflight(
    s: Settings, *, state_dir: Path | None, smoke_report: Path | None
) -> PreflightReport:
    """The report; FsmTraderError (exit 2) for bad input, before anything is measured."""
    copy = copy_state_dir(state_dir, s) if state_dir is not None else None
    work = Path(tempfile.mkdtemp(prefix="fsmtrader-preflight-work-"))
    try:
        smoke: SmokeFindings | None = None
        if smoke_report is not None:
            smoke = read_smoke_report(smoke_report, s)
        report = PreflightReport([live_rules(s)])
        if smoke is None:
            smoke = run_smoke_now(s, work / "smoke")
        report.criteria.append(smoke.criterion)
        if copy is None:
            report.criteria.append(
                Criterion(
                    "acceptance metrics",
                    False,
                    "not measured",
                    "a paper or observe session's --state-dir",
                    [
                        "no --state-dir: entry parity, orphans, PnL drift, restart and lag "
                        "are measured on a paper session (run `fsmtrader paper` first)"
                    ],
                )
            )
        else:
            with _quiet():  # the replay's and the restart's engines log as a bot would
                report.criteria += acceptance(copy, smoke, work, s)
            report.notes.append(f"state directory {copy.source} ({copy.kind} session), read only")
        return report
    finally:
        if copy is not None:
            copy.close()
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The product's log lines (a replayed halt, a held-back cancel) are not the user's:
    the report says what they mean."""
    root = logging.getLogger("fsmtrader")
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(level)


def acceptance(copy: StateCopy, smoke: SmokeFindings, work: Path, s: Settings) -> list[Criterion]:
    """The metrics from the session's own records, in the checklist's order."""
    try:
        rec = read_records(copy)
        rep = reconcile_copy(copy, rec)
    except (StoreError, ValueError) as exc:
        raise FsmTraderError(
            f"--state-dir {copy.source}: does not fit --config (another market or simulator "
            f"settings?): {exc}"
        ) from None
    last_bar = int(rec.snap.meta.get("last_bar_ts", "0") or 0)
    last_seen = last_bar or max((int(a.get("ts", 0)) for a in rec.audit[-50:]), default=0)
    out = [
        entry_parity(copy.settings, copy.filters, copy.price_path, work, rec.audit, last_seen),
        orphaned_orders(rep),
        pnl_drift(rec, rep, copy.filters),
        critical_errors(rec),
        dashboard_lag(copy.source, smoke.lag_pct),
    ]
    out.insert(4, restart_idempotency(copy, lambda: copy_state_dir(copy.source, s)))
    return out

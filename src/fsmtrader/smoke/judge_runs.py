"""The verdicts of scenarios D and E: pure functions of what the real sessions left (the
restart's exit code and report, the crash oracle's verdict, the audit mirror; the push
lag samples). Each returns what went wrong (empty: passed) and fills in the figures."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from fsmtrader.smoke.verify import Verdict

LAG_BAR_MS = 200.0  # the reference documents' bar: 95 % of transitions within 200 ms
LAG_SHARE_PCT = 95.0
Figures = dict[str, Any]


def judge_recovery(
    at_kill: Mapping[str, Any],
    rc: int,
    stderr: str,
    report: Mapping[str, Any],
    oracle: Verdict | None,
    audit_ids: Sequence[int],
    fig: Figures,
) -> list[str]:
    """D: the restart restored and reconciled clean, the oracle finds no duplicate, orphan,
    drift or lost fill, and the audit mirror holds every committed row once, in order."""
    fig.update(
        open_orders_at_kill=len(at_kill.get("open_orders", ())),
        positions_at_kill=len(at_kill.get("positions", ())),
        restart_rc=rc,
        reconcile_ok=report.get("ok"),
        recovered_intents=report.get("recovered_intents"),
        audit_rows=len(audit_ids),
    )
    if rc != 0:
        last = " | ".join(stderr.strip().splitlines()[-3:])
        return [f"the restart exited {rc}: {last}"]
    failures = []
    if "restored session" not in stderr:
        failures.append("the restart did not restore the session")
    if not report.get("ok"):
        failures.append(f"start-up reconcile not ok: {report.get('halt_reason') or report}")
    if oracle is None:
        failures.append("the books could not be verified")
    else:
        fig.update(
            duplicates=oracle.duplicates,
            orphans=oracle.orphans,
            drift=oracle.drift,
            lost_fills=oracle.lost_fills,
        )
        if not oracle.ok:
            failures.append(f"oracle: {oracle.last_line()}: " + "; ".join(oracle.problems[:5]))
    if list(audit_ids) != list(range(1, len(audit_ids) + 1)):
        failures.append("audit.jsonl does not hold every committed row once, in order")
    return failures


def percentile(sorted_ms: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest sample with at least ``p`` % of them at or below it."""
    rank = max(1, -(-len(sorted_ms) * p // 100))
    return sorted_ms[int(rank) - 1]


def lag_figures(samples: Sequence[float]) -> Figures:
    s = sorted(samples)
    n = len(s)
    if not n:
        return {"samples": 0}
    return {
        "samples": n,
        "p50_ms": round(percentile(s, 50), 3),
        "p95_ms": round(percentile(s, 95), 3),
        "p99_ms": round(percentile(s, 99), 3),
        "max_ms": round(s[-1], 3),
        "mean_ms": round(statistics.fmean(s), 3),
        "within_200ms_pct": round(100 * sum(1 for x in s if x <= LAG_BAR_MS) / n, 3),
    }


def judge_lag(samples: Sequence[float], need: int, fig: Figures) -> list[str]:
    """E: at least ``need`` phase transitions pushed, p95 within 200 ms and more than
    95 % of them within 200 ms."""
    fig.update(lag_figures(samples), required_samples=need, bar_ms=LAG_BAR_MS)
    if len(samples) < need:
        return [f"only {len(samples)} phase transitions pushed (need {need})"]
    failures = []
    if fig["p95_ms"] > LAG_BAR_MS:
        failures.append(f"push lag p95 {fig['p95_ms']} ms > {LAG_BAR_MS:g} ms")
    if fig["within_200ms_pct"] <= LAG_SHARE_PCT:
        failures.append(
            f"{fig['within_200ms_pct']} % of transitions within 200 ms (need > {LAG_SHARE_PCT:g} %)"
        )
    return failures

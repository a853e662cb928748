"""The smoke scenarios A–E as preflight criteria: run now (``fsmtrader.smoke.run_smoke``)
or read from a report (``fsmtrader smoke --report FILE``), which must be for this very
configuration (its ``config_sha256``; without one, every setting it says its scenarios used
must be this config's) and fresh (``generated_ms`` or ``started_at``, else the file's
time)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fsmtrader.config import Settings
from fsmtrader.errors import FsmTraderError, read_json
from fsmtrader.preflight.report import Criterion
from fsmtrader.smoke.derive import config_sha256

__all__ = ["MAX_AGE_S", "SCENARIOS", "SmokeFindings", "read_smoke_report", "run_smoke_now"]

SCENARIOS = ("A", "B", "C", "D", "E")
MAX_AGE_S = 24 * 3600.0
NAME = "smoke scenarios"
BAR = "A-E all pass, for this config, at most 24 h old"


@dataclass
class SmokeFindings:
    criterion: Criterion
    lag_pct: float | None  # scenario E's share of pushes within 200 ms, when it says


def read_smoke_report(path: Path, s: Settings, *, now_s: float | None = None) -> SmokeFindings:
    """The criterion from a report file; a file that is not a smoke report is bad input
    (FsmTraderError, exit 2), one for another config or too old is a NO-GO."""
    where = f"--smoke-report {path}"
    data = read_json(
        path,
        missing=f"{where}: no such file",
        bad=f"{where}: not a JSON smoke report",
        error=FsmTraderError,
    )
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        raise FsmTraderError(f'--smoke-report {path}: not a smoke report (no "scenarios" list)')
    found = judge(data, source=str(path))
    c = found.criterion
    sha = data.get("config_sha256")
    used = data.get("settings")
    if sha is None and isinstance(used, Mapping) and used:
        c.reasons += [
            f"the report is for another configuration: {line}" for line in _differ(used, s)
        ]
    elif sha is None:
        c.reasons.append("the report does not say which config it is for (no config_sha256)")
    elif sha != config_sha256(s):
        c.reasons.append(
            f"the report is for another configuration (config_sha256 {str(sha)[:12]}…, "
            f"this one {config_sha256(s)[:12]}…): run `fsmtrader smoke --config` with this file"
        )
    age = (now_s if now_s is not None else time.time()) - _made_s(data, path)
    if age > MAX_AGE_S:
        c.reasons.append(f"the report is {age / 3600:.1f} h old (at most {MAX_AGE_S / 3600:g} h)")
    c.passed = not c.reasons
    c.figure += f"; report {path.name}, {max(age, 0) / 60:.0f} min old"
    return found


def _made_s(data: Mapping[str, Any], path: Path) -> float:
    """When the report was made: ``generated_ms`` (or an ISO ``generated_at``), else the
    file's modification time."""
    ms = data.get("generated_ms")
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        return float(ms) / 1000
    at = data.get("generated_at", data.get("started_at"))
    if isinstance(at, str):
        try:
            return datetime.fromisoformat(at).timestamp()
        except ValueError:
            pass
    return path.stat().st_mtime


def _differ(used: Mapping[str, Any], s: Settings) -> list[str]:
    """The settings a report says its scenarios used (dotted keys, or whole sections)
    that this configuration has otherwise."""
    mine = s.redacted_dict()
    out = []
    for key, theirs in used.items():
        value: Any = mine
        for part in str(key).split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if _canon(value) != _canon(theirs):
            out.append(f"{key} is {_canon(theirs)} in the report, {_canon(value)} here")
    return out


def _canon(value: Any) -> str:
    """JSON text with numbers as Decimals' text, so 30 and 30.0 and "30" agree."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_canon(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_canon(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float | str):
        try:
            return str(Decimal(str(value)).normalize())
        except InvalidOperation:
            return str(value)
    return str(value)


def run_smoke_now(s: Settings, work_dir: Path) -> SmokeFindings:
    """Run every scenario now with this config (``fsmtrader.smoke``)."""
    from fsmtrader.smoke import run_smoke

    report = run_smoke(s, list(SCENARIOS), work_dir=work_dir)
    found = judge(report.to_json(), source="run now")
    found.criterion.passed = not found.criterion.reasons
    return found


def judge(data: Mapping[str, Any], *, source: str) -> SmokeFindings:
    """Every scenario present and passed; the reasons name each one that is not."""
    by_name: dict[str, Mapping[str, Any]] = {}
    for sc in data.get("scenarios", []):
        if isinstance(sc, Mapping) and isinstance(sc.get("name"), str):
            by_name[sc["name"]] = sc
    reasons = []
    for name in SCENARIOS:
        sc = by_name.get(name)
        if sc is None:
            reasons.append(f"scenario {name} is not in the report")
        elif sc.get("passed") is not True:
            title = sc.get("title") or ""
            reasons.append(
                f"scenario {name} {title} failed: {sc.get('reason') or 'no reason given'}"
            )
    if data.get("passed") is False and not reasons:
        reasons.append("the report says it failed")
    passed = [n for n in SCENARIOS if by_name.get(n, {}).get("passed") is True]
    figure = f"{len(passed)}/{len(SCENARIOS)} passed ({source})"
    c = Criterion(NAME, not reasons, figure, BAR, reasons)
    return SmokeFindings(c, _lag_pct(by_name.get("E")))


def _lag_pct(e: Mapping[str, Any] | None) -> float | None:
    """Scenario E's share within the bar, if its figures state it."""
    if e is None:
        return None
    figures = e.get("figures")
    if not isinstance(figures, Mapping):
        return None
    for key in ("within_200ms_pct", "within_bar_pct", "pct_within_200ms"):
        v = figures.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return None

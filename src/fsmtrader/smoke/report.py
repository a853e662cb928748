"""The smoke report: one result per scenario (pass/fail, the figures that decide it, the
audit records that prove it, why it failed), written whole as ``smoke_test_report.json``
so that ``fsmtrader preflight`` never reads half a report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path, PurePath
from typing import Any

from fsmtrader.errors import FsmTraderError

REPORT_FILE = "smoke_test_report.json"
REPORT_VERSION = 1

#: Every scenario, in the order they run, with its title.
SCENARIOS: dict[str, str] = {
    "A": "entry bumped to min_notional and placed",
    "B": "partial fills: weighted average and fees exact",
    "C": "exit ladder steps down, never a market order",
    "D": "recovery after SIGKILL with open orders and positions, no drift",
    "E": "dashboard push lag within 200 ms",
}


def parse_scenarios(names: Iterable[str] | None) -> list[str]:
    """The scenarios asked for, in run order, each once; none asked for: all of them.
    A name that is not one raises with the flag and what is allowed."""
    asked = [n.strip().upper() for n in names or ()]
    bad = [n for n in asked if n not in SCENARIOS]
    if bad:
        raise FsmTraderError(
            f"--scenario: must be one of {', '.join(SCENARIOS)} (got {', '.join(map(repr, bad))})"
        )
    return [n for n in SCENARIOS if n in asked] if asked else list(SCENARIOS)


def plain(value: Any) -> Any:
    """A JSON-able copy: Decimals as their exact text, paths as text."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, Decimal | PurePath):
        return str(value)
    if isinstance(value, Enum):
        return plain(value.value)
    return value


@dataclass
class ScenarioResult:
    """One scenario's outcome. ``reason`` says why it failed ("" when it passed)."""

    name: str
    title: str
    passed: bool
    figures: dict[str, Any] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "passed": self.passed,
            "reason": self.reason,
            "wall_s": round(self.wall_s, 3),
            "figures": plain(self.figures),
            "audit": plain(self.audit),
        }


def verdict(
    name: str,
    failures: Sequence[str],
    figures: dict[str, Any],
    audit: list[dict[str, Any]],
) -> ScenarioResult:
    """A result from the list of what went wrong: passed when it is empty."""
    return ScenarioResult(name, SCENARIOS[name], not failures, figures, audit, "; ".join(failures))


@dataclass
class SmokeReport:
    scenarios: list[ScenarioResult]
    started_at: str = ""  # ISO 8601, UTC
    wall_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)  # what the scenarios used
    config_sha256: str = ""  # of the user's settings (derive.config_sha256)
    generated_ms: int = 0  # wall clock, epoch ms, when the run ended

    @property
    def passed(self) -> bool:
        return bool(self.scenarios) and all(r.passed for r in self.scenarios)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.scenarios if not r.passed]

    def result(self, name: str) -> ScenarioResult:
        for r in self.scenarios:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "passed": self.passed,
            "failed": self.failed,
            "started_at": self.started_at,
            "wall_s": round(self.wall_s, 3),
            "settings": plain(self.settings),
            "config_sha256": self.config_sha256,
            "generated_ms": self.generated_ms,
            "scenarios": [r.to_json() for r in self.scenarios],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SmokeReport:
        """A report as :meth:`to_json` wrote it (figures and audit as JSON values)."""
        results = [
            ScenarioResult(
                str(r["name"]),
                str(r["title"]),
                bool(r["passed"]),
                dict(r.get("figures") or {}),
                list(r.get("audit") or []),
                str(r.get("reason", "")),
                float(r.get("wall_s", 0.0)),
            )
            for r in data["scenarios"]
        ]
        return cls(
            results,
            str(data.get("started_at", "")),
            float(data.get("wall_s", 0.0)),
            dict(data.get("settings") or {}),
            str(data.get("config_sha256", "")),
            int(data.get("generated_ms", 0)),
        )


def read_report(path: Path) -> SmokeReport:
    """A report file; a missing or foreign file is one line naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != REPORT_VERSION:
            raise ValueError(f"version {data.get('version')!r}, not {REPORT_VERSION}")
        return SmokeReport.from_json(data)
    except FileNotFoundError:
        raise FsmTraderError(f"{path}: smoke report not found") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FsmTraderError(f"{path}: not a smoke report ({exc})") from None


def write_report(report: SmokeReport, path: Path) -> Path:
    """Whole or not at all: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(report.to_json(), fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

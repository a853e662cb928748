"""The GO/NO-GO report: every criterion with its figure and its bar; GO only when all pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Criterion", "PreflightReport"]


@dataclass
class Criterion:
    """One line of the report: what was measured (``figure``) against what it must be
    (``bar``); ``reasons`` say why it fails (empty when it passes)."""

    name: str
    passed: bool
    figure: str
    bar: str
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "figure": self.figure,
            "bar": self.bar,
            "reasons": list(self.reasons),
        }


@dataclass
class PreflightReport:
    criteria: list[Criterion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def go(self) -> bool:
        return bool(self.criteria) and all(c.passed for c in self.criteria)

    def reasons(self) -> list[str]:
        """Every reason for NO-GO, each prefixed with its criterion."""
        return [f"{c.name}: {r}" for c in self.criteria if not c.passed for r in c.reasons]

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": "GO" if self.go else "NO-GO",
            "criteria": [c.to_json() for c in self.criteria],
            "reasons": self.reasons(),
            "notes": list(self.notes),
        }

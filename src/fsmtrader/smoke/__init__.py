"""``fsmtrader smoke``: the reference documents' smoke scenarios A-E on the simulated
exchange, with the user's settings where they matter, and the JSON report that says, per
scenario, pass or fail, the figures that decide it, the audit records that prove it and
why it failed."""

from fsmtrader.smoke.report import (
    REPORT_FILE,
    SCENARIOS,
    ScenarioResult,
    SmokeReport,
    parse_scenarios,
    read_report,
    write_report,
)
from fsmtrader.smoke.run import run_smoke

__all__ = [
    "REPORT_FILE",
    "SCENARIOS",
    "ScenarioResult",
    "SmokeReport",
    "parse_scenarios",
    "read_report",
    "run_smoke",
    "write_report",
]

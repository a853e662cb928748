"""``--timerange`` as freqtrade spells it: ``YYYYMMDD-YYYYMMDD``, either end may be empty."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from fsmtrader.errors import DataError

_END = r"(\d{8}|\d{10}|\d{13})?"
_FORM = re.compile(_END + "-" + _END)


@dataclass(frozen=True, slots=True)
class Timerange:
    """Candles whose open time is in ``[start_ms, stop_ms]`` (None: no bound). Both ends
    are inclusive, as in freqtrade: ``20240101-20240201`` keeps the 2024-02-01 00:00 candle."""

    start_ms: int | None = None
    stop_ms: int | None = None


def parse_timerange(text: str | None) -> Timerange:
    """The range ``text`` names: dates are UTC midnights; 10 digits are epoch seconds and
    13 epoch milliseconds. DataError naming the flag and the accepted forms otherwise."""
    if text is None:
        return Timerange()
    m = _FORM.fullmatch(text.strip())
    if m is None or not (m[1] or m[2]):
        raise DataError(
            f"--timerange {text!r}: expected YYYYMMDD-YYYYMMDD (either end may be empty, "
            "e.g. 20240101- or -20240301)"
        )
    start, stop = _ms(m[1], text), _ms(m[2], text)
    if start is not None and stop is not None and stop < start:
        raise DataError(f"--timerange {text}: the end is before the start")
    return Timerange(start, stop)


def _ms(part: str | None, text: str) -> int | None:
    if not part:
        return None
    if len(part) == 13:
        return int(part)
    if len(part) == 10:
        return int(part) * 1000
    try:
        day = datetime.strptime(part, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        raise DataError(f"--timerange {text}: {part} is not a date (YYYYMMDD)") from None
    return int(day.timestamp() * 1000)

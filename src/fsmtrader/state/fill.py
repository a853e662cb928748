"""A fill as the books keep it: the ``fills`` table's row, read back by whoever checks
that every exchange fill was booked.

Not a ``FillRecord``: the saved row drops the bus record's ``kind`` (every row is a
fill) and its ``order_id`` (the intent names the order). Amounts stay the exact decimal
text the fill record carries, so the row compares with it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class BookedFill:
    """One booked fill; its fields are the table's columns, in order."""

    intent_id: str
    trade_id: str
    symbol: str
    side: str
    price: str
    amount: str
    fee: str
    fee_currency: str
    ts: int
    decision_id: str


FILL_COLUMNS = tuple(f.name for f in fields(BookedFill))

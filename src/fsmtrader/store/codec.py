"""Rows from dataclasses: each entity's columns are written once, as its fields.

A ``RowCodec`` maps a dataclass to a table row by its ``fields()``: a field is a column of
the same name, converted by its type (Decimal as exact text, enums by value, flags as
0/1; ints, strings and None as they are). A field stored differently (several columns, or
JSON) names its columns and its two conversions; a field the table does not hold is
skipped and supplied on decode. Encoding runs on every commit, so it is compiled once
per entity into a single expression.
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, StrEnum
from operator import attrgetter, itemgetter
from typing import Any, Generic, TypeVar, get_type_hints

from fsmtrader.orders.intent import Intent
from fsmtrader.portfolio import ClosedTrade, Ghost, Position
from fsmtrader.state.fill import FILL_COLUMNS
from fsmtrader.state.order import OrderRecord
from fsmtrader.state.records import FillRecord
from fsmtrader.state.symbol import HISTORY_LEN, SymbolState
from fsmtrader.strategy import ExitState

T = TypeVar("T")


def dec_text(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def text_dec(v: str | None) -> Decimal | None:
    return None if v is None else Decimal(v)


@dataclass(frozen=True, slots=True)
class Special:
    """A field kept in ``columns``: ``encode`` gives their values, ``decode`` takes them."""

    columns: tuple[str, ...]
    encode: Callable[[Any], tuple[Any, ...]]
    decode: Callable[[Sequence[Any]], Any]


def _converters(hint: Any) -> tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None]:
    """(to the row, from the row) for a field type; None where the value goes as it is."""
    if hint is Decimal:
        return str, Decimal
    if hint == Decimal | None:
        return dec_text, text_dec
    if hint is bool:
        return int, bool
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return str, hint  # its plain value: binding the enum itself costs a third more
    if isinstance(hint, type) and issubclass(hint, Enum):
        return attrgetter("value"), hint
    return None, None


class RowCodec(Generic[T]):
    """One dataclass, one row: ``columns`` in order, ``encode``/``decode`` between them."""

    def __init__(
        self,
        cls: type[T],
        *,
        skip: Sequence[str] = (),
        special: dict[str, Special] | None = None,
    ) -> None:
        special = special or {}
        hints = get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls) if f.name not in skip]  # type: ignore[arg-type]
        self.cls = cls
        self._plain = [n for n in names if n not in special]
        self._special = [(n, special[n]) for n in names if n in special]
        self._from = [
            (i, back)
            for i, n in enumerate(self._plain)
            if (back := _converters(hints[n])[1]) is not None
        ]
        self.columns: tuple[str, ...] = tuple(self._plain) + tuple(
            c for _, sp in self._special for c in sp.columns
        )
        self.encode: Callable[[T], list[Any]] = self._compile(hints)

    def _compile(self, hints: dict[str, Any]) -> Callable[[T], list[Any]]:
        """``encode`` as one list display (``o.a, str(o.b), *exit(o.c), ...``), the way
        ``dataclasses`` builds ``__init__``: a row costs no loop and no per-field call."""
        ns: dict[str, Any] = {}
        parts = []
        for n in self._plain:
            to = _converters(hints[n])[0]
            if to is None:
                parts.append(f"o.{n}")
            else:
                ns[f"_to_{n}"] = to
                parts.append(f"_to_{n}(o.{n})")
        for n, sp in self._special:
            ns[f"_sp_{n}"] = sp.encode
            parts.append(f"*_sp_{n}(o.{n})")
        exec(f"def encode(o):\n    return [{', '.join(parts)}]\n", ns)
        fn: Callable[[T], list[Any]] = ns["encode"]
        return fn

    def decode(self, row: Sequence[Any], **more: Any) -> T:
        """The object of a row selected as ``columns``; ``more`` gives skipped fields."""
        vals = list(row[: len(self._plain)])
        for i, back in self._from:
            if vals[i] is not None:
                vals[i] = back(vals[i])
        kwargs = dict(zip(self._plain, vals, strict=True))
        at = len(self._plain)
        for name, sp in self._special:
            n = len(sp.columns)
            kwargs[name] = sp.decode(row[at : at + n])
            at += n
        return self.cls(**kwargs, **more)


def _exit_cols(ex: ExitState | None) -> tuple[Any, ...]:
    return (None, 0) if ex is None else (ex.peak, int(ex.trail_active))


def _exit_from(v: Sequence[Any]) -> ExitState | None:
    """Peak and trailing flag only: the engine rebuilds the levels from the position."""
    return None if v[0] is None else ExitState(v[0], bool(v[1]))


EXIT = Special(("exit_peak", "exit_trail_active"), _exit_cols, _exit_from)


def _intent_cols(it: Intent) -> tuple[Any, ...]:
    record = json.dumps(it.to_record(), sort_keys=True)
    return (it.intent_id, it.symbol, it.side, it.decision_id, record)


# (field, from its record text) for each of the intent's fields, as ``Intent.to_record``
# writes them: the same type-driven conversions as a row's columns.
_INTENT_HINTS = get_type_hints(Intent)
_INTENT_FIELDS = tuple(
    (f.name, _converters(_INTENT_HINTS[f.name])[1]) for f in dataclasses.fields(Intent)
)


def _intent_from(v: Sequence[Any]) -> Intent:
    """A field the record lacks (one added later, e.g. ``stop_price``) takes its default."""
    raw = json.loads(v[4])
    return Intent(
        **{n: raw[n] if back is None else back(raw[n]) for n, back in _INTENT_FIELDS if n in raw}
    )


INTENT = Special(
    ("intent_id", "symbol", "side", "decision_id", "intent"), _intent_cols, _intent_from
)
TRADE_IDS = Special(
    ("seen_trades",),
    lambda ids: (json.dumps(sorted(ids)),),
    lambda v: set(json.loads(v[0])),
)


# --- the entities ---------------------------------------------------------------------
# A symbol's history is encoded by the store itself, incrementally (see HistoryText); its
# signal is not saved (rebuilt from price history).
SYMBOL: RowCodec[SymbolState] = RowCodec(
    SymbolState, skip=("stuck_alerted", "history", "signal"), special={"exit": EXIT}
)
SYMBOL_COLUMNS = (*SYMBOL.columns, "history")
ORDER: RowCodec[OrderRecord] = RowCodec(
    OrderRecord, special={"intent": INTENT, "seen_trades": TRADE_IDS}
)
POSITION: RowCodec[Position] = RowCodec(Position)
TRADE: RowCodec[ClosedTrade] = RowCodec(ClosedTrade)
GHOST: RowCodec[Ghost] = RowCodec(Ghost)
_fill_values = itemgetter(*FILL_COLUMNS)


def fill_row(f: FillRecord) -> tuple[Any, ...]:
    values: tuple[Any, ...] = _fill_values(f)
    return values


class HistoryText:
    """Encodes symbol histories as 'ts,from,event,to;...', extended by one entry when
    exactly one transition happened since the last save (the common case) instead of
    re-encoding all of it: this runs on every commit."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, str]] = {}  # symbol -> (seq, encoded history)

    def encode(self, st: SymbolState) -> str:
        seen = self._seen.get(st.symbol)
        history = st.history
        if seen is not None and seen[0] == st.seq - 1 and history:
            text = seen[1]
            ts, a, e, b = history[-1]
            entry = f"{ts},{a},{e},{b}"
            if text.count(";") + 1 >= HISTORY_LEN:
                text = text.split(";", 1)[1]
            text = f"{text};{entry}" if text else entry
        else:
            text = ";".join(f"{ts},{a},{e},{b}" for ts, a, e, b in history)
        self._seen[st.symbol] = (st.seq, text)
        return text


def history_from(text: str) -> deque[tuple[int, str, str, str]]:
    out: deque[tuple[int, str, str, str]] = deque(maxlen=HISTORY_LEN)
    for item in filter(None, text.split(";")):
        ts, a, e, b = item.split(",")
        out.append((int(ts), a, e, b))
    return out

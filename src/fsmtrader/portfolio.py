"""Our own books, in Decimal: cash, reservations, positions, closed trades, ghosts, dust.

Budget is reserved per intent before the exchange is called and released on every path
that does not fill; nothing here may ever go negative (checked on every change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypedDict

from fsmtrader.errors import PortfolioError
from fsmtrader.exchange.types import TradeInfo

ZERO = Decimal(0)


class TradeFields(TypedDict):
    """A closed trade as published (Decimals as exact text)."""

    symbol: str
    decision_id: str
    entry_ms: int
    exit_ms: int
    bought_qty: str
    sold_qty: str
    avg_entry: str
    avg_exit: str
    buy_fees: str
    sell_fees: str
    sell_legs: int
    dust_qty: str
    realized_pnl: str
    exit_reason: str


@dataclass(slots=True)
class Position:
    symbol: str
    decision_id: str
    entry_ms: int
    qty: Decimal = ZERO  # held now, net of base-currency fees
    bought_qty: Decimal = ZERO
    buy_cost: Decimal = ZERO  # gross quote spent on fills
    buy_fees: Decimal = ZERO  # valued in quote, whatever asset they were charged in
    buy_fee_cash: Decimal = ZERO  # the part paid in quote (a base-asset fee shrinks qty)
    sold_qty: Decimal = ZERO
    sell_gross: Decimal = ZERO
    sell_fees: Decimal = ZERO  # summed over every exit leg
    sell_locked: Decimal = ZERO  # qty inside live sell orders
    sell_legs: int = 0

    @property
    def avg_entry(self) -> Decimal:
        return self.buy_cost / self.bought_qty if self.bought_qty > 0 else ZERO

    @property
    def cost_basis(self) -> Decimal:
        """Quote paid to acquire what is held: fills plus fees paid in quote. A fee taken in
        the base asset is already in the smaller quantity, so it is not added again."""
        return self.buy_cost + self.buy_fee_cash

    @property
    def sellable(self) -> Decimal:
        return self.qty - self.sell_locked


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    symbol: str
    decision_id: str
    entry_ms: int
    exit_ms: int
    bought_qty: Decimal
    sold_qty: Decimal
    avg_entry: Decimal
    avg_exit: Decimal
    buy_fees: Decimal
    sell_fees: Decimal
    sell_legs: int
    dust_qty: Decimal
    realized_pnl: Decimal
    exit_reason: str

    @property
    def fees(self) -> Decimal:
        return self.buy_fees + self.sell_fees

    def to_record(self) -> TradeFields:
        return {
            "symbol": self.symbol,
            "decision_id": self.decision_id,
            "entry_ms": self.entry_ms,
            "exit_ms": self.exit_ms,
            "bought_qty": str(self.bought_qty),
            "sold_qty": str(self.sold_qty),
            "avg_entry": str(self.avg_entry),
            "avg_exit": str(self.avg_exit),
            "buy_fees": str(self.buy_fees),
            "sell_fees": str(self.sell_fees),
            "sell_legs": self.sell_legs,
            "dust_qty": str(self.dust_qty),
            "realized_pnl": str(self.realized_pnl),
            "exit_reason": self.exit_reason,
        }


@dataclass(frozen=True, slots=True)
class Ghost:
    """An order that was decided but never sent, and why (too small, over budget, ...)."""

    ts: int
    symbol: str
    side: str
    intent_id: str
    decision_id: str
    reason: str


@dataclass(slots=True)
class Portfolio:
    quote: str
    cash: Decimal  # free quote in our books
    reserved: dict[str, Decimal] = field(default_factory=dict)  # intent_id -> quote
    positions: dict[str, Position] = field(default_factory=dict)
    trades: list[ClosedTrade] = field(default_factory=list)
    ghosts: list[Ghost] = field(default_factory=list)
    dust: dict[str, Decimal] = field(default_factory=dict)  # symbol -> qty left unsellable
    fees_paid: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    dirty: bool = field(default=True, compare=False)  # changed since the store saved it
    # trades and ghosts are only appended: the store has the first this many of each
    saved_trades: int = field(default=0, init=False, compare=False, repr=False)
    saved_ghosts: int = field(default=0, init=False, compare=False, repr=False)

    # --- reservations -------------------------------------------------------------------
    @property
    def reserved_total(self) -> Decimal:
        return sum(self.reserved.values(), ZERO)

    def unsaved(self) -> tuple[list[ClosedTrade], list[Ghost]]:
        """The trades and ghosts added since the store last had everything."""
        return self.trades[self.saved_trades :], self.ghosts[self.saved_ghosts :]

    def mark_saved(self) -> None:
        """The store has everything up to now (called by the portfolio's owner once the
        store has returned, or on taking a portfolio back from it)."""
        self.dirty = False
        self.saved_trades = len(self.trades)
        self.saved_ghosts = len(self.ghosts)

    def reserve(self, intent_id: str, amount: Decimal) -> bool:
        self.dirty = True
        if amount <= 0:
            raise PortfolioError(f"reserve {intent_id}: amount must be > 0, got {amount}")
        if intent_id in self.reserved:
            return True  # idempotent: one reservation per intent
        if amount > self.cash:
            return False
        self.cash -= amount
        self.reserved[intent_id] = amount
        return True

    def release(self, intent_id: str) -> Decimal:
        """Return what is left of a reservation to cash (idempotent)."""
        self.dirty = True
        left = self.reserved.pop(intent_id, ZERO)
        self.cash += left
        return left

    # --- fills --------------------------------------------------------------------------
    def open_position(self, symbol: str, decision_id: str, ts: int) -> Position:
        self.dirty = True
        pos = self.positions.get(symbol)
        if pos is None:
            pos = Position(symbol=symbol, decision_id=decision_id, entry_ms=ts)
            self.positions[symbol] = pos
        return pos

    def apply_buy_fill(self, intent_id: str, decision_id: str, trade: TradeInfo, base: str) -> None:
        """Move one buy fill from the intent's reservation into the position."""
        self.dirty = True
        pos = self.open_position(trade.symbol, decision_id, trade.timestamp)
        cost = trade.price * trade.amount
        fee_quote, qty = split_fee(trade, base, self.quote)
        fee_cash = fee_quote if trade.fee_currency != base else ZERO
        spend = cost + fee_cash
        held = self.reserved.get(intent_id, ZERO)
        if spend > held:
            # The fill cost more than was reserved (fee rounding): take the rest from cash.
            extra = spend - held
            if extra > self.cash:
                raise PortfolioError(f"{intent_id}: fill of {spend} exceeds reserve and cash")
            self.cash -= extra
            held += extra
        self.reserved[intent_id] = held - spend
        pos.qty += qty
        pos.bought_qty += qty
        pos.buy_cost += cost
        pos.buy_fees += fee_quote
        pos.buy_fee_cash += fee_cash
        self.fees_paid += fee_quote

    def buy_spend(self, trade: TradeInfo, base: str) -> Decimal:
        """The quote a buy fill takes from the books: its cost plus a fee paid in quote (a
        fee in the base asset shrinks the position instead; one in BNB is the venue's): what
        apply_buy_fill takes, asked before booking (it stays inline there: hot path)."""
        fee_quote, _ = split_fee(trade, base, self.quote)
        return trade.price * trade.amount + (fee_quote if trade.fee_currency != base else ZERO)

    def lock_for_sell(self, symbol: str, qty: Decimal) -> bool:
        self.dirty = True
        pos = self.positions.get(symbol)
        if pos is None or qty <= 0 or qty > pos.sellable:
            return False
        pos.sell_locked += qty
        return True

    def unlock_sell(self, symbol: str, qty: Decimal) -> None:
        self.dirty = True
        pos = self.positions.get(symbol)
        if pos is None:
            return
        if qty > pos.sell_locked:
            raise PortfolioError(f"{symbol}: unlock {qty} > locked {pos.sell_locked}")
        pos.sell_locked -= qty

    def apply_sell_fill(self, trade: TradeInfo, base: str) -> None:
        self.dirty = True
        pos = self.positions.get(trade.symbol)
        if pos is None:
            raise PortfolioError(f"sell fill for {trade.symbol} without a position")
        if trade.amount > pos.sell_locked or trade.amount > pos.qty:
            raise PortfolioError(f"{trade.symbol}: sell fill {trade.amount} > locked qty")
        fee_quote, _ = split_fee(trade, base, self.quote)
        gross = trade.price * trade.amount
        pos.qty -= trade.amount
        pos.sell_locked -= trade.amount
        pos.sold_qty += trade.amount
        pos.sell_gross += gross
        pos.sell_fees += fee_quote
        self.fees_paid += fee_quote
        self.cash += gross - fee_quote

    def note_sell_leg(self, symbol: str) -> None:
        self.dirty = True
        pos = self.positions.get(symbol)
        if pos is not None:
            pos.sell_legs += 1

    def close_position(self, symbol: str, ts: int, exit_reason: str) -> ClosedTrade:
        """Book the round trip. Whatever could not be sold is kept as recorded dust; its
        share of the cost basis is not counted as a loss of this trade."""
        self.dirty = True
        pos = self.positions.pop(symbol)
        if pos.sell_locked:
            raise PortfolioError(f"{symbol}: closing with {pos.sell_locked} locked in sells")
        sold_share = pos.sold_qty / pos.bought_qty if pos.bought_qty > 0 else ZERO
        pnl = pos.sell_gross - pos.sell_fees - pos.cost_basis * sold_share
        if pos.qty > 0:
            self.dust[symbol] = self.dust.get(symbol, ZERO) + pos.qty
        self.realized_pnl += pnl
        trade = ClosedTrade(
            symbol=symbol,
            decision_id=pos.decision_id,
            entry_ms=pos.entry_ms,
            exit_ms=ts,
            bought_qty=pos.bought_qty,
            sold_qty=pos.sold_qty,
            avg_entry=pos.avg_entry,
            avg_exit=pos.sell_gross / pos.sold_qty if pos.sold_qty > 0 else ZERO,
            buy_fees=pos.buy_fees,
            sell_fees=pos.sell_fees,
            sell_legs=pos.sell_legs,
            dust_qty=pos.qty,
            realized_pnl=pnl,
            exit_reason=exit_reason,
        )
        self.trades.append(trade)
        return trade

    def discard_empty(self, symbol: str) -> None:
        """Drop a position record that never received a fill (a buy that filled nothing)."""
        self.dirty = True
        pos = self.positions.get(symbol)
        if pos is not None and pos.bought_qty == 0:
            del self.positions[symbol]

    def add_ghost(self, ghost: Ghost) -> None:
        self.dirty = True
        self.ghosts.append(ghost)

    # --- views --------------------------------------------------------------------------
    def exposure(self) -> Decimal:
        """Quote committed to open positions (cost basis of what is still held) plus
        reservations for buys in flight."""
        held = ZERO
        for pos in self.positions.values():
            if pos.bought_qty > 0:
                held += pos.cost_basis * (pos.qty / pos.bought_qty)
        return held + self.reserved_total

    def check(self) -> None:
        """Raise if any invariant is broken (cheap; called after every order change)."""
        if self.cash < 0:
            raise PortfolioError(f"cash went negative: {self.cash}")
        for iid, amount in self.reserved.items():
            if amount < 0:
                raise PortfolioError(f"reservation {iid} went negative: {amount}")
        for pos in self.positions.values():
            if pos.qty < 0 or pos.sell_locked < 0 or pos.sell_locked > pos.qty:
                raise PortfolioError(f"{pos.symbol}: bad quantities {pos}")


def split_fee(trade: TradeInfo, base: str, quote: str = "") -> tuple[Decimal, Decimal]:
    """(fee valued in quote, base quantity received). A fee charged in the base asset
    shrinks what we hold; one in quote does not. A fee in a third asset (BNB on Binance)
    cannot be valued here: it counts as 0 quote and the venue's account pays it; turn
    BNB fee payment off to have every fee in the trade's PnL."""
    if trade.fee_currency == base:
        return trade.fee * trade.price, trade.amount - trade.fee
    if quote and trade.fee_currency and trade.fee_currency != quote:
        return Decimal(0), trade.amount
    return trade.fee, trade.amount

"""One exchange for a canary: each symbol's orders go where its mode says.

In ``trade --live`` with per-symbol modes, "live" symbols trade on the venue and "paper"
symbols on a simulated exchange in the state directory (``canary-sim.db``), fed by the
venue's tickers; "observe" symbols send nothing (a create for one is refused: a bug,
never a trade). The engine, the router and reconcile see one exchange:

- a new order goes by its symbol's mode; an existing one by its id: the simulator's ids
  carry the prefix ``paper:`` (the venue's and the simulator's own ids may collide), so
  a look-up, a cancel or its fills reach the exchange that holds it, even after the
  symbol changed mode (it may only when flat);
- histories, fills and open orders are read from both and merged, so reconcile looks
  both ways at every order the bot ever placed, wherever it went;
- the balance is the venue's plus what paper trading changed on the simulator (its
  wallets less what it was funded with, ``deposit``): reconcile compares the one
  portfolio (paper and live symbols share its cash) with the one sum, a surplus as much
  as a deficit, as it does for the live account alone.

Quotes of a paper symbol come from the simulator (the book its orders fill against,
moved by the venue's tickers); every other symbol's from the venue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

from fsmtrader.errors import InvalidOrder
from fsmtrader.exchange.simulated import SimExchange
from fsmtrader.exchange.types import (
    Balance,
    Exchange,
    OrderInfo,
    OrderType,
    Ticker,
    TimeInForce,
    TradeInfo,
)
from fsmtrader.markets import MarketFilters, Side

PAPER_ID = "paper:"  # the prefix of the simulator's order and trade ids
# The paper symbols' simulator in a live state directory: not ``sim-exchange.db``, which
# marks a paper directory (store.statedir refuses it to a live session).
CANARY_SIM_FILE = "canary-sim.db"
DEPOSIT_META = "paper_deposit"  # engine meta: what the simulator was funded with (JSON)
ZERO = Decimal(0)


def encode_amounts(amounts: Mapping[str, Decimal]) -> str:
    return json.dumps({k: str(v) for k, v in sorted(amounts.items())}, sort_keys=True)


def decode_amounts(text: str) -> dict[str, Decimal]:
    return {str(k): Decimal(str(v)) for k, v in json.loads(text).items()}


def _trade(t: TradeInfo) -> TradeInfo:
    return replace(t, id=PAPER_ID + t.id, order_id=PAPER_ID + t.order_id)


def _order(o: OrderInfo) -> OrderInfo:
    return replace(o, id=PAPER_ID + o.id, trades=[_trade(t) for t in o.trades])


def _merge_orders(*lists: list[OrderInfo]) -> list[OrderInfo]:
    return sorted((o for part in lists for o in part), key=lambda o: (o.timestamp, o.id))


class ByModeExchange:
    """The venue and the simulator behind one ``Exchange`` (see the module doc)."""

    def __init__(
        self,
        venue: Exchange,
        sim: SimExchange,
        modes: Mapping[str, str],
        deposit: Mapping[str, Decimal],
    ) -> None:
        self.venue = venue
        self.sim = sim
        self.modes = dict(modes)
        self.deposit = dict(deposit)
        self.name = venue.name

    def _paper(self, symbol: str) -> bool:
        return self.modes.get(symbol) == "paper"

    # --- reads --------------------------------------------------------------------------
    def load_markets(self) -> dict[str, MarketFilters]:
        return self.venue.load_markets()

    def fetch_ticker(self, symbol: str) -> Ticker:
        return (
            self.sim.fetch_ticker(symbol)
            if self._paper(symbol)
            else self.venue.fetch_ticker(symbol)
        )

    def fetch_balance(self) -> dict[str, Balance]:
        """The venue's balances plus the simulator's change since it was funded."""
        venue, sim = self.venue.fetch_balance(), self.sim.fetch_balance()
        out = {}
        for asset in sorted(set(venue) | set(sim) | set(self.deposit)):
            v = venue.get(asset, Balance(ZERO, ZERO))
            s = sim.get(asset, Balance(ZERO, ZERO))
            out[asset] = Balance(v.free + s.free - self.deposit.get(asset, ZERO), v.used + s.used)
        return out

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        paper = [_order(o) for o in self.sim.fetch_open_orders(symbol)]
        return _merge_orders(self.venue.fetch_open_orders(symbol), paper)

    def fetch_orders(self, symbol: str, since: int) -> list[OrderInfo]:
        paper = [_order(o) for o in self.sim.fetch_orders(symbol, since)]
        return _merge_orders(self.venue.fetch_orders(symbol, since), paper)

    def fetch_my_trades(self, symbol: str, since: int | None = None) -> list[TradeInfo]:
        paper = [_trade(t) for t in self.sim.fetch_my_trades(symbol, since)]
        both = self.venue.fetch_my_trades(symbol, since) + paper
        return sorted(both, key=lambda t: (t.timestamp, t.id))

    # --- one order ----------------------------------------------------------------------
    def create_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        amount: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        client_order_id: str,
        stop_price: Decimal | None = None,
    ) -> OrderInfo:
        mode = self.modes.get(symbol, "")
        if mode not in ("paper", "live"):
            raise InvalidOrder(f"{symbol}: mode {mode or 'unknown'} sends no order")
        # a plug under the router (as exchange.timed is): it only picks the exchange
        place = self.sim.create_order if mode == "paper" else self.venue.create_order
        # a stop price only when there is one: each exchange is called as the router would
        extra = {} if stop_price is None else {"stop_price": stop_price}
        info = place(
            symbol, side, order_type, amount, price, time_in_force, client_order_id, **extra
        )
        return _order(info) if mode == "paper" else info

    def cancel_order(self, order_id: str, symbol: str) -> OrderInfo:
        paper = order_id.startswith(PAPER_ID)
        cancel = self.sim.cancel_order if paper else self.venue.cancel_order
        info = cancel(order_id.removeprefix(PAPER_ID) if paper else order_id, symbol)
        return _order(info) if paper else info

    def fetch_order(self, order_id: str, symbol: str) -> OrderInfo:
        if order_id.startswith(PAPER_ID):
            return _order(self.sim.fetch_order(order_id.removeprefix(PAPER_ID), symbol))
        return self.venue.fetch_order(order_id, symbol)

    def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> OrderInfo:
        """By the symbol's mode: an order not over yet is always of the mode in force
        (a symbol changes mode only when flat)."""
        if self._paper(symbol):
            return _order(self.sim.fetch_order_by_client_id(client_order_id, symbol))
        return self.venue.fetch_order_by_client_id(client_order_id, symbol)

    def fetch_order_trades(self, order_id: str, symbol: str) -> list[TradeInfo]:
        if order_id.startswith(PAPER_ID):
            trades = self.sim.fetch_order_trades(order_id.removeprefix(PAPER_ID), symbol)
            return [_trade(t) for t in trades]
        return self.venue.fetch_order_trades(order_id, symbol)

    def close(self) -> None:
        """Close the simulator (the session closes the venue it opened)."""
        self.sim.close()

"""Binance spot v3 request parsing: parameters checked (and refused) as Binance does."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import ClassVar, Final

from fsmtrader.exchange.types import TimeInForce
from fsmtrader_testing.simserver.binance_errors import BinanceErrors
from fsmtrader_testing.simserver.market import MarketSpec
from fsmtrader_testing.simserver.state import NewOrder, ServerState

_NUMBER: Final = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_NUMBER_RANGE: Final = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
Params = dict[str, str]


class BinanceRequests(BinanceErrors):
    """A request's parameters, read into what the server acts on."""

    client_id_re: ClassVar[re.Pattern[str]]  # the client ids the venue accepts

    def parse_order_id(self, raw: str) -> str:
        """The wire id as the client sent it; Binance's is a long integer."""
        if not raw.isdigit():
            raise self.illegal("orderId", r"^[0-9]{1,20}$")
        return str(int(raw))

    def symbol_of(self, params: Params, state: ServerState) -> MarketSpec:
        raw = params.get("symbol")
        if not raw:
            raise self.mandatory("symbol")
        spec = state.market_by_id(raw.upper())
        if spec is None:
            raise self.bad_symbol()
        return spec

    def decimal_param(self, params: Params, name: str, *, required: bool) -> Decimal | None:
        raw = params.get(name)
        if raw is None or raw == "":
            if required:
                raise self.mandatory(name)
            return None
        if not _NUMBER.match(raw):
            raise self.illegal(name, _NUMBER_RANGE)
        try:
            return Decimal(raw)
        except InvalidOperation:
            raise self.illegal(name, _NUMBER_RANGE) from None

    def client_id_param(self, params: Params, name: str = "newClientOrderId") -> str | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        if not self.client_id_re.match(raw):
            raise self.illegal(name, self.client_id_re.pattern)
        return raw

    def parse_new_order(self, params: Params, state: ServerState) -> NewOrder:
        """POST /api/v3/order: LIMIT (GTC/IOC), LIMIT_MAKER and MARKET (sell by quantity)."""
        spec = self.symbol_of(params, state)
        side_raw = params.get("side")
        if not side_raw:
            raise self.mandatory("side")
        if side_raw not in ("BUY", "SELL"):
            raise self.err(-1117, "Invalid side.")
        wire_type = params.get("type")
        if not wire_type:
            raise self.mandatory("type")
        if wire_type not in ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT"):
            raise self.unsupported_type(wire_type, state)
        stop = self.stop_param(params, wire_type)
        for name in ("trailingDelta", "icebergQty"):
            if params.get(name):
                raise self.not_required(name)
        tif_raw = params.get("timeInForce")
        if wire_type in ("LIMIT", "STOP_LOSS_LIMIT"):
            if not tif_raw:
                raise self.mandatory("timeInForce")
            if tif_raw not in ("GTC", "IOC") or (stop is not None and tif_raw != "GTC"):
                raise self.err(-1115, "Invalid timeInForce.")
        elif tif_raw:
            raise self.not_required("timeInForce")
        quantity = self.decimal_param(params, "quantity", required=False)
        if wire_type == "MARKET":
            if params.get("quoteOrderQty"):
                raise self.err(-1014, "Unsupported order combination.")
            if params.get("price"):
                raise self.not_required("price")
            if quantity is None:
                raise self.err(
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
            price = None
        else:
            if quantity is None:
                raise self.mandatory("quantity")
            price = self.decimal_param(params, "price", required=True)
        resp_type = params.get("newOrderRespType") or "FULL"
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise self.illegal("newOrderRespType", "ACK|RESULT|FULL")
        tif: TimeInForce = "IOC" if wire_type == "MARKET" or tif_raw == "IOC" else "GTC"
        return NewOrder(
            symbol=spec.symbol,
            side="buy" if side_raw == "BUY" else "sell",
            order_type="market" if wire_type == "MARKET" else "limit",
            time_in_force=tif,
            quantity=quantity,
            price=price,
            client_order_id=self.client_id_param(params),
            wire_type=wire_type,
            wire_tif=tif_raw or "GTC",
            resp_type=resp_type,
            stop_price=stop,
        )

    def stop_param(self, params: Params, wire_type: str) -> Decimal | None:
        """``stopPrice``: mandatory for STOP_LOSS_LIMIT (a sell rests untriggered until
        the last price falls to it; the matching engine runs GTC sells only), refused on
        every other type, as Binance does."""
        if wire_type != "STOP_LOSS_LIMIT":
            if params.get("stopPrice"):
                raise self.not_required("stopPrice")
            return None
        return self.decimal_param(params, "stopPrice", required=True)

    def order_ref(self, params: Params) -> tuple[str | None, str | None]:
        """(orderId, origClientOrderId) of a query or cancel; one must be sent."""
        raw_id = params.get("orderId") or None
        cid = params.get("origClientOrderId") or None
        if raw_id is None and cid is None:
            raise self.err(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return (self.parse_order_id(raw_id) if raw_id is not None else None), cid

    def limit_param(self, params: Params, default: int, maximum: int) -> int:
        raw = params.get("limit")
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or int(raw) < 1:
            raise self.illegal("limit", r"^[0-9]{1,20}$")
        return min(int(raw), maximum)

    def int_param(self, params: Params, name: str) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        if not raw.lstrip("-").isdigit():
            raise self.illegal(name, r"^[0-9]{1,20}$")
        return int(raw)

    def symbols_param(self, params: Params, state: ServerState) -> list[MarketSpec] | None:
        """``symbol=X`` or ``symbols=["X","Y"]``; None when neither (all markets)."""
        if params.get("symbol"):
            return [self.symbol_of(params, state)]
        raw = params.get("symbols")
        if not raw:
            return None
        try:
            ids = json.loads(raw)
        except ValueError:
            raise self.illegal(
                "symbols", r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'
            ) from None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise self.illegal(
                "symbols", r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'
            )
        out: list[MarketSpec] = []
        for i in ids:
            spec = state.market_by_id(i)
            if spec is None:
                raise self.bad_symbol()
            out.append(spec)
        return out

"""The simulated account: one wallet per asset, with what open orders have locked.

A limit buy locks ``price*amount*lock_rate`` of quote (``lock_rate`` covers the dearer
fee, so a resting order can never overdraw its lock whichever way it fills); a sell
locks ``amount`` of base. Every change is checked: a negative balance is a simulator bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from fsmtrader.exchange.simulated.params import ZERO
from fsmtrader.exchange.types import Balance
from fsmtrader.markets import MarketFilters, Side


@dataclass(slots=True)
class Wallet:
    """One asset's balance; ``used`` is what open orders have locked."""

    free: Decimal = ZERO
    used: Decimal = ZERO


class Wallets:
    """The wallets by asset, in creation order (the persistence layer saves new ones by
    position), created on first use."""

    def __init__(self, balances: Mapping[str, Decimal]) -> None:
        self.by_asset: dict[str, Wallet] = {a: Wallet(free=v) for a, v in balances.items()}
        for asset, w in self.by_asset.items():
            if w.free < 0:
                raise ValueError(f"balance of {asset} must be >= 0")

    def get(self, asset: str) -> Wallet:
        wallet = self.by_asset.get(asset)
        if wallet is None:
            wallet = self.by_asset[asset] = Wallet()
        return wallet

    def balances(self) -> dict[str, Balance]:
        return {a: Balance(free=w.free, used=w.used) for a, w in self.by_asset.items()}

    def lock(self, asset: str, amount: Decimal) -> bool:
        """Move ``amount`` from free to used; False (and nothing moves) if it is not
        free."""
        wallet = self.get(asset)
        if wallet.free < amount:
            return False
        wallet.free -= amount
        wallet.used += amount
        check(asset, wallet)
        return True

    def release(self, asset: str, amount: Decimal) -> None:
        """Give back what is left of a lock when its order ends."""
        wallet = self.get(asset)
        wallet.used -= amount
        wallet.free += amount
        check(asset, wallet)

    def restore(self, rows: Mapping[str, tuple[Decimal, Decimal]]) -> None:
        """Replace every wallet with a file's (free, used), in the file's order."""
        self.by_asset.clear()
        self.by_asset.update({a: Wallet(free=f, used=u) for a, (f, u) in rows.items()})


def lock_for(
    m: MarketFilters, side: Side, amount: Decimal, limit: Decimal, lock_rate: Decimal
) -> tuple[str, Decimal]:
    """The asset and amount an order locks while open."""
    if side == "buy":
        return m.quote, limit * amount * lock_rate
    return m.base, amount


def check(asset: str, wallet: Wallet) -> None:
    """Balances never go negative; a violation is a simulator bug, so fail loudly even
    under ``python -O``. Also folds an exact zero back to plain ``0`` (not ``0E-10``)."""
    if wallet.free < 0 or wallet.used < 0:
        raise AssertionError(f"{asset} balance went negative: {wallet}")
    if not wallet.used:
        wallet.used = ZERO
    if not wallet.free:
        wallet.free = ZERO

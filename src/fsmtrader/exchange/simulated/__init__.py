"""A deterministic, Binance-like spot exchange for backtests, paper trading and tests.

It exists so the engine runs against *real* exchange behaviour (filters, locked balances,
partial fills against finite depth, resting orders, fee rounding, the cancel/fill race)
without a network. Everything random comes from one ``random.Random(seed)``, every
timestamp from the injected clock, and ids are sequential, so a run is reproducible.

One job per module: :mod:`.params` (the venue's parameters), :mod:`.book` (bars and the
synthetic book), :mod:`.matching` (fills, trade pricing and fees), :mod:`.wallets`
(balances and locks), :mod:`.orders` (order records and counters), :mod:`.persistence`
with :mod:`.store` and :mod:`.rows` (the write-through SQLite file), :mod:`.exchange`
(the protocol facade), :mod:`.venue` (the venue rules it copies: client ids, visibility
lag, fee asset, history pages) and :mod:`.faults` (fault injection around any exchange).
"""

from fsmtrader.exchange.simulated.exchange import MAX_CLIENT_ID_LEN, SimExchange
from fsmtrader.exchange.simulated.faults import FAULTABLE_METHODS, FaultInjector
from fsmtrader.exchange.simulated.orders import SimCounters
from fsmtrader.exchange.simulated.params import SimParams
from fsmtrader.exchange.simulated.venue import BINANCE, MEXC, SIM_VENUES, HistoryRules, SimVenue

__all__ = [
    "BINANCE",
    "FAULTABLE_METHODS",
    "MAX_CLIENT_ID_LEN",
    "MEXC",
    "SIM_VENUES",
    "FaultInjector",
    "HistoryRules",
    "SimCounters",
    "SimExchange",
    "SimParams",
    "SimVenue",
]

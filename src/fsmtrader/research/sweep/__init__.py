"""``fsmtrader sweep``: optuna searches over settings, trials on Dask distributed.

One job per module: ``space`` (the space file), ``data`` (candles loaded once per
process), ``trial`` (one trial: settings, backtest, figures), ``study`` (optuna storage,
sampler, resume), ``driver`` (the cluster and the ask/run/tell loop), ``outputs``
(trials.csv, best.toml, oos.csv) and ``run`` (a whole sweep). See docs/sweep.md.
"""

from fsmtrader.research.sweep.run import SweepRequest, SweepResult, plan, run_sweep
from fsmtrader.research.sweep.space import Param, Space, load_space, parse_space

__all__ = [
    "Param",
    "Space",
    "SweepRequest",
    "SweepResult",
    "load_space",
    "parse_space",
    "plan",
    "run_sweep",
]

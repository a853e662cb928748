"""Research tools: portfolio backtest inputs, reports, sweeps and the fast driver."""

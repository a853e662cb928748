"""``fsmtrader preflight``: the GO/NO-GO decision before real money, on measured figures.

``report`` holds the criteria and the decision, ``smoke_check`` the smoke scenarios (run
or read from a fresh report), ``statedir`` the read-only copy of a paper session's state,
``acceptance`` the metrics from its own records, ``parity`` the replay of its price path
through the backtest engine, ``run`` puts them together. The live rules themselves are
``fsmtrader.config.live_policy`` (shared with ``trade --live`` and ``config --check-live``).
"""

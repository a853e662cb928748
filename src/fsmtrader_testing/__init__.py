"""Test support for fsmtrader, kept out of the product package: the local exchange server,
the crash-harness oracle and the engine harness the tests, scripts and benchmarks share.

Nothing under ``fsmtrader`` imports this package (``tests/invariants/`` checks it);
the ``sim-server`` command finds it by name at run time.
"""

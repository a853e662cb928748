"""Exchange plugs: the simulated exchange and the ccxt adapter share one protocol (``types.py``)."""

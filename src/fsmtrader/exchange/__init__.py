"""Exchange plugs: the simulated exchange and (later) the ccxt adapter share one protocol."""

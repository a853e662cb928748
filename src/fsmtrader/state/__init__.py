"""The state model: what the engine knows and the store saves, as plain values.

Imports only domain modules, so the engine, the router, the store and reconcile can all
depend on it without depending on each other.
"""

"""Durable state: the SQLite store, its schema, and the state directory's lock."""

"""The dashboard in a real browser (a package, so its conftest never shadows tests/conftest.py)."""

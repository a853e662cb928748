# Two entry points: `make demo` (paper session on the simulated exchange) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench torture clean chromium

# The dashboard's browser tests drive Debian's Chromium (never a downloaded browser).
# Installed when missing and when apt-get can; otherwise those tests skip and say why.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
		echo "chromium could not be installed: the dashboard's browser tests will skip"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fsmtrader demo

test: $(STAMP) chromium
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist worksteal

bench: $(STAMP)
	$(BIN)/python benchmarks/backtest_speed.py

# A crash torture through the live path on each venue, with wire faults (a few minutes).
torture: $(STAMP)
	$(BIN)/python scripts/crash_torture.py --venue binance --kills 10 --seed 1 --fault-rate 0.1
	$(BIN)/python scripts/crash_torture.py --venue mexc --kills 10 --seed 2 --fault-rate 0.1

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache

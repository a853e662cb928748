"""Structural invariants of ../shared/DESIGN.md, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "fsmtrader"
ADAPTER = SRC / "exchange" / "ccxt_adapter"
# Code allowed to call an exchange's create_order: the router (the one place orders are
# placed; its cancels are in orders/lookups.py) and the exchange implementations that
# *serve* create_order.
PLACERS = {
    SRC / "orders" / "router.py",
    SRC / "orders" / "lookups.py",
    *(ADAPTER.rglob("*.py")),
    *((SRC / "exchange" / "simulated").rglob("*.py")),
}


# The test-support package (local exchange server, oracle, harness) is not product. The one
# exception: the `sim-server` command loads the local server when it runs (a function-level
# import, so mypy still checks the call and a missing package gives a one-line hint).
TESTING = "fsmtrader_testing"
TESTING_ALLOWED = {"sim_server"}  # function names, in the CLI only

WALL_CLOCK = {("time", "time"), ("time", "sleep"), ("time", "monotonic"), ("datetime", "now")}


def ccxt_imports(tree: ast.Module) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        if any(n == "ccxt" or n.startswith("ccxt.") for n in names):
            lines.append(node.lineno)
    return lines


def order_calls(tree: ast.Module) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("create_order", "acreate_order", "cancel_order")
    ]


def support_imports(tree: ast.Module) -> list[tuple[int, tuple[str, ...]]]:
    """Every import of the test-support package, by statement or by name (importlib,
    ``__import__``), with the functions it sits in (outermost first)."""
    found: list[tuple[int, tuple[str, ...]]] = []

    def is_testing(name: str) -> bool:
        return name == TESTING or name.startswith(TESTING + ".")

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if called in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                names = [str(arg.value)]
        if any(is_testing(n) for n in names):
            found.append((getattr(node, "lineno", 0), scope))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            scope = (*scope, node.name)
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, ())
    return found


def modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(SRC.rglob("*.py"))]


def test_no_ccxt_import_outside_the_adapter() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path, tree in modules()
        if ADAPTER not in path.parents
        for line in ccxt_imports(tree)
    ]
    assert offenders == []


def test_no_order_placed_outside_the_router() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path, tree in modules()
        if path not in PLACERS
        for line in order_calls(tree)
    ]
    assert offenders == []


def test_the_product_never_imports_test_support() -> None:
    cli = [SRC / "cli.py", SRC / "cli"]
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path, tree in modules()
        for line, scope in support_imports(tree)
        if not (any(c == path or c in path.parents for c in cli) and TESTING_ALLOWED & set(scope))
    ]
    assert offenders == []


def test_core_never_reads_the_wall_clock_or_sleeps() -> None:
    """The engine, machines, router, portfolio and strategy take time from a Clock plug."""
    core = ["engine", "strategy.py", "portfolio.py", "markets.py", "fsm", "orders"]
    paths = [p for c in core for p in ([SRC / c] if c.endswith(".py") else (SRC / c).rglob("*.py"))]
    offenders = []
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and (node.value.id, node.attr) in WALL_CLOCK
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


def test_the_checks_find_a_violation() -> None:
    """The walkers above really find what they look for (so those tests can fail)."""
    tree = ast.parse("import ccxt.async_support\nfrom ccxt import binance\nx.create_order(1)\n")
    assert ccxt_imports(tree) == [1, 2]
    assert order_calls(tree) == [3]
    code = (
        "import fsmtrader_testing\n"
        "def sim_server():\n"
        "    def run():\n"
        "        from fsmtrader_testing.simserver import serve\n"
        "def other():\n"
        "    importlib.import_module('fsmtrader_testing.harness')\n"
        "    __import__('fsmtrader_testing')\n"
        "    from fsmtrader_testingx import y\n"
    )
    assert support_imports(ast.parse(code)) == [
        (1, ()),
        (4, ("sim_server", "run")),
        (6, ("other",)),
        (7, ("other",)),
    ]
    tree = ast.parse("from fsmtrader.engine import Engine\nfrom fsmtrader import store\n")
    assert imported(tree) == [(1, "fsmtrader.engine"), (2, "fsmtrader.store")]


# --- the persistence boundary ---------------------------------------------------------
# The router's modules: the store must not know them (it takes values, StateDelta).
ROUTER = {f"fsmtrader.orders.{m}" for m in ("router", "ledger", "booking", "lookups")}
# What the state model may build on: domain values and rules, nothing with I/O.
DOMAIN = {
    "fsmtrader.markets",
    "fsmtrader.orders.intent",
    "fsmtrader.orders.states",
    "fsmtrader.fsm.phases",
    "fsmtrader.portfolio",
    "fsmtrader.errors",
    "fsmtrader.exchange.types",
}


def imported(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every fsmtrader import, ``TYPE_CHECKING`` ones included."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "fsmtrader":  # from fsmtrader import x: the module x
                out += [(node.lineno, f"fsmtrader.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
    return [(line, m) for line, m in out if m == "fsmtrader" or m.startswith("fsmtrader.")]


def test_the_store_imports_no_engine_code() -> None:
    """store/ takes and gives values: never the engine (module or package) or the router."""
    offenders = [
        f"{path.relative_to(SRC)}:{line} {mod}"
        for path, tree in modules()
        if SRC / "store" in path.parents
        for line, mod in imported(tree)
        if mod == "fsmtrader.engine" or mod.startswith("fsmtrader.engine.") or mod in ROUTER
    ]
    assert offenders == []


def test_the_state_model_imports_only_domain_modules() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{line} {mod}"
        for path, tree in modules()
        if SRC / "state" in path.parents
        for line, mod in imported(tree)
        if mod not in DOMAIN and not mod.startswith("fsmtrader.state.")
    ]
    assert offenders == []
    assert any(SRC / "state" in p.parents for p, _ in modules())  # the check looked at it


# --- size: one job per module, functions that fit on a screen --------------------------
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
ALL_SRC = SRC.parent  # fsmtrader and fsmtrader_testing


def long_functions(tree: ast.Module, limit: int) -> list[tuple[str, int]]:
    """(name, length) of every function longer than ``limit`` lines, ``def`` to last line."""
    return [
        (node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > limit
    ]


def test_no_module_over_500_lines() -> None:
    offenders = [
        f"{p.relative_to(ALL_SRC)}: {n} lines"
        for p in sorted(ALL_SRC.rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert offenders == []


def test_no_function_over_60_lines() -> None:
    offenders = [
        f"{p.relative_to(ALL_SRC)}:{name} ({n} lines)"
        for p in sorted(ALL_SRC.rglob("*.py"))
        for name, n in long_functions(ast.parse(p.read_text(), str(p)), MAX_FUNCTION_LINES)
    ]
    assert offenders == []


def test_the_size_checks_find_a_violation() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    tree = ast.parse(f"def f():\n{body}\n\ndef g():\n    return 1\n")
    assert long_functions(tree, MAX_FUNCTION_LINES) == [("f", 61)]


def test_the_core_takes_policies_not_settings() -> None:
    """Nothing in the engine, orders, portfolio or strategy imports the settings or pydantic."""
    core = [*(SRC / "engine").rglob("*.py"), *(SRC / "orders").rglob("*.py")]
    core += [SRC / "portfolio.py", SRC / "strategy.py"]
    offenders = []
    for path in core:
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for n in names:
                if n.startswith(("fsmtrader.config", "pydantic")):
                    offenders.append(f"{path.relative_to(SRC)}: {n}")
    assert offenders == []

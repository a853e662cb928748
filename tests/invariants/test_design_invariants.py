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
    cli = [SRC / "cli"]
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path, tree in modules()
        for line, scope in support_imports(tree)
        if not (any(c == path or c in path.parents for c in cli) and TESTING_ALLOWED & set(scope))
    ]
    assert offenders == []


# The functional core: decisions, machines, state model, router, books and strategy.
CORE = ["engine", "fsm", "state", "orders", "strategy.py", "portfolio.py", "markets.py"]


def core_paths() -> list[Path]:
    return [p for c in CORE for p in ([SRC / c] if c.endswith(".py") else (SRC / c).rglob("*.py"))]


def wall_clock_reads(tree: ast.Module) -> list[int]:
    """Lines that import the ``time`` module or any of its names, or read ``now``/``today``/
    ``utcnow`` off ``datetime``/``date`` (however they were imported): the core takes time
    from a Clock plug and never sleeps."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            names = []
        if "time" in names:
            lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr in ("now", "today", "utcnow"):
            base = node.value
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            if name in ("datetime", "date"):
                lines.append(node.lineno)
    return sorted(set(lines))


def test_core_never_reads_the_wall_clock_or_sleeps() -> None:
    """The engine, machines, state model, router, portfolio and strategy take time from a
    Clock plug."""
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path in core_paths()
        for line in wall_clock_reads(ast.parse(path.read_text()))
    ]
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
    "fsmtrader.strategy",
}


def module_of(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


KNOWN = {module_of(p) for p in SRC.rglob("*.py")}


def imported(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every fsmtrader import, ``TYPE_CHECKING`` and function-level ones
    included. ``from pkg import name`` is the module ``pkg.name`` when there is one (so
    ``from fsmtrader import config`` is the config package), else ``pkg``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.append((node.lineno, sub if sub in KNOWN else node.module))
    return [(line, m) for line, m in out if m == "fsmtrader" or m.startswith("fsmtrader.")]


def import_graph() -> dict[str, set[str]]:
    """Every fsmtrader module and the fsmtrader modules it imports. Importing a module
    runs its packages' ``__init__`` too, so those count as imported."""
    graph: dict[str, set[str]] = {}
    for path, tree in modules():
        deps = set()
        for _, mod in imported(tree):
            parts = mod.split(".")
            deps.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        graph[module_of(path)] = {d for d in deps if d in KNOWN}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through other modules."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in graph.get(todo.pop(), set()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def forbidden_reach(prefix: str, banned: set[str]) -> list[str]:
    """Modules under ``prefix`` that reach a banned module (or its submodules), with it."""
    graph = import_graph()
    return [
        f"{mod} -> {dep}"
        for mod in sorted(graph)
        if mod == prefix or mod.startswith(prefix + ".")
        for dep in sorted(reachable(graph, mod))
        if any(dep == b or dep.startswith(b + ".") for b in banned)
    ]


ENGINE_SIDE = {"fsmtrader.engine", *ROUTER, "fsmtrader.session", "fsmtrader.live"}


def test_the_store_imports_no_engine_code() -> None:
    """store/ takes and gives values: it never reaches the engine (module or package), the
    router or a session, directly or through another module."""
    assert forbidden_reach("fsmtrader.store", ENGINE_SIDE) == []
    assert "fsmtrader.store.sqlite" in import_graph()  # the check looked at it


def test_the_state_model_imports_only_domain_modules() -> None:
    graph = import_graph()
    offenders = [
        f"{mod} -> {dep}"
        for mod in sorted(graph)
        if mod.startswith("fsmtrader.state.")
        for dep in sorted(reachable(graph, mod))
        if dep not in DOMAIN
        and not dep.startswith("fsmtrader.state")
        and dep != "fsmtrader"
        and dep not in {"fsmtrader.orders", "fsmtrader.fsm", "fsmtrader.exchange"}
    ]
    assert offenders == []
    assert any(m.startswith("fsmtrader.state.") for m in graph)  # the check looked at it


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
    """Nothing in the core reaches the settings, directly or through another module, and
    nothing there imports pydantic."""
    offenders = [
        x
        for c in CORE
        for x in forbidden_reach(
            "fsmtrader." + c.removesuffix(".py").replace("/", "."),
            {"fsmtrader.config", "fsmtrader.config_wiring"},
        )
    ]
    for path in core_paths():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            offenders += [
                f"{path.relative_to(SRC)}: {n}" for n in names if n.startswith("pydantic")
            ]
    assert offenders == []


def test_the_import_checks_find_a_violation() -> None:
    """The import and clock walkers see every spelling, and the reach is transitive."""
    tree = ast.parse("from fsmtrader import config\nfrom fsmtrader.engine.shell import Engine\n")
    assert imported(tree) == [(1, "fsmtrader.config"), (2, "fsmtrader.engine.shell")]
    graph = {"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a"}}
    assert reachable(graph, "d") == {"a", "b", "c"}
    code = (
        "import time\nfrom time import monotonic\nimport datetime as dt\n"
        "x = dt.datetime.now()\ny = datetime.now()\nz = date.today()\nw = clock.now_ms()\n"
    )
    assert wall_clock_reads(ast.parse(code)) == [1, 2, 4, 5, 6]


def asserts(tree: ast.Module) -> list[int]:
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]


def test_no_assert_in_the_source() -> None:
    """``python -O`` drops every assert: a check the code relies on must be an explicit
    error (``errors.required`` for a value our own logic guarantees)."""
    offenders = [
        f"{p.relative_to(ALL_SRC)}:{line}"
        for p in sorted(ALL_SRC.rglob("*.py"))
        for line in asserts(ast.parse(p.read_text(), str(p)))
    ]
    assert offenders == []
    assert asserts(ast.parse("x = 1\nassert x\n")) == [2]

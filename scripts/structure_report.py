"""Print the code's shape: lines per module, the longest functions, import cycles.

The figures for a structural change's closing note, measured the same way every time:
module length is physical lines, a function's length is its `def` line through its last
line (AST), and the import graph counts every `import` of a first-party module, at module
level or inside a function or a TYPE_CHECKING block (a cycle of knowledge is a cycle).

    python scripts/structure_report.py [--root src] [--top 15] [--json]
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length) of every function, methods included."""
    out: list[tuple[str, int, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                end = child.end_lineno or child.lineno
                out.append((name, child.lineno, end - child.lineno + 1))
                walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(tree, "")
    return out


def imports(tree: ast.AST, this: str, is_pkg: bool, known: set[str]) -> set[str]:
    """Modules this module imports (relative imports resolved). ``from pkg import mod``
    depends on ``pkg.mod`` when that is a module, on ``pkg`` itself otherwise (a name
    that ``pkg/__init__`` exports), as import-linter and pydeps count it."""
    found: set[str] = set()
    base = this.split(".") if is_pkg else this.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                mod = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.add(sub if sub in known else mod)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def report(root: Path, top: int) -> dict[str, object]:
    files = sorted(root.rglob("*.py"))
    known = {module_name(root, path) for path in files}
    lines: dict[str, int] = {}
    funcs: list[tuple[int, str]] = []
    raw: dict[str, set[str]] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        name = module_name(root, path)
        tree = ast.parse(text, filename=str(path))
        lines[name] = len(text.splitlines())
        funcs += [(n, f"{name}:{q} (line {ln})") for q, ln, n in functions(tree)]
        raw[name] = imports(tree, name, path.name == "__init__.py", known)
    graph = {m: {i for i in deps if i in lines and i != m} for m, deps in raw.items()}
    return {
        "modules": len(lines),
        "total_lines": sum(lines.values()),
        "largest_modules": sorted(lines.items(), key=lambda kv: -kv[1])[:top],
        "modules_over_500": sorted(m for m, n in lines.items() if n > 500),
        "longest_functions": [f"{n:4d}  {where}" for n, where in sorted(funcs, reverse=True)][:top],
        "functions_over_60": sum(1 for n, _ in funcs if n > 60),
        "import_cycles": cycles(graph),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("src"))
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rep = report(args.root, args.top)
    if args.json:
        print(json.dumps(rep, indent=2))
        return
    print(f"modules: {rep['modules']}  lines: {rep['total_lines']}")
    print("largest modules:")
    for name, n in rep["largest_modules"]:  # type: ignore[attr-defined]
        print(f"  {n:5d}  {name}")
    print(f"modules over 500 lines: {rep['modules_over_500']}")
    print("longest functions:")
    for line in rep["longest_functions"]:  # type: ignore[attr-defined]
        print(f"  {line}")
    print(f"functions over 60 lines: {rep['functions_over_60']}")
    print(f"import cycles: {rep['import_cycles'] or 'none'}")


if __name__ == "__main__":
    main()

"""The shape of the code, as a newcomer meets it: lines per package, the largest files and
functions, and import circles (modules that reach themselves through others).

    .venv/bin/python bench/layout.py
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name not in {"tests", "bench", "resources"}]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    files = sorted(f for package in PACKAGES for f in (ROOT / package).rglob("*.py"))
    lines: dict[str, int] = defaultdict(int)
    sizes: list[tuple[int, str]] = []
    functions: list[tuple[int, str]] = []
    for file in files:
        text = file.read_text(encoding="utf-8")
        name = file.relative_to(ROOT).as_posix()
        count = text.count("\n")
        lines[str(file.parent.relative_to(ROOT).as_posix())] += count
        sizes.append((count, name))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.append((node.end_lineno - node.lineno + 1, f"{name}:{node.lineno} {node.name}"))
    print(f"{'package':<28}{'lines':>7}")
    for package in sorted(lines):
        print(f"{package:<28}{lines[package]:>7}")
    print(f"{'all product code':<28}{sum(lines.values()):>7}  in {len(files)} files\n")
    print("largest files:", ", ".join(f"{n} ({c})" for c, n in sorted(sizes, reverse=True)[:6]))
    print("largest functions:", ", ".join(f"{n} ({c})" for c, n in sorted(functions, reverse=True)[:6]))
    print("files over 400 lines:", sum(1 for c, _ in sizes if c > 400))
    circles = _circles(grimp.build_graph(*PACKAGES, cache_dir=None))
    print(f"import circles: {len(circles)}")
    for circle in circles:
        print("   among", ", ".join(circle))


def _circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Each group of modules that import each other round (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph.find_modules_directly_imported_by(module)):
            if other not in graph.modules:
                continue
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


if __name__ == "__main__":
    main()

"""The structure of the package: layers import only downwards, no import cycles (lazy
imports inside functions included), no module over 600 lines, no unused imports or
undefined names."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "stability"

LAYERS = [
    ("stability.validation", "stability.jsonvalues", "stability.provenance",
     "stability.intervals", "stability.engine.codes"),
    ("stability.engine",),
    ("stability.predictions", "stability.budgets", "stability.clock", "stability.workload"),
    ("stability.policies",),
    ("stability.metrics", "stability.result", "stability.simulate", "stability.hindsight"),
    ("stability.theory",),
    ("stability.store", "stability.sweep"),
    ("stability.cli", "stability.__main__", "stability", "stability.rare", "stability.traces"),
]
"""Bottom to top: a module may import its own layer or lower ones, never a higher one.
``stability`` (the package's ``__init__``) and the two modules kept for old import paths
sit on top, since they re-export everything."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> int:
    best, best_len = None, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    assert best is not None, f"{name} is in no layer of tests/test_structure.py"
    return best


def imports(path: Path) -> set:
    """Every stability module a file imports, at module level or inside functions."""
    tree = ast.parse(path.read_text())
    out = set()
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for a in node.names:
                candidate = f"{base}.{a.name}"
                out.add(candidate if _exists(candidate) else base)
    return {m for m in out if m == "stability" or m.startswith("stability.")}


def _exists(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def graph() -> dict:
    return {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_layers_import_only_downwards():
    upward = [f"{a} -> {b}" for a, deps in graph().items() for b in deps
              if layer(b) > layer(a)]
    assert upward == []


def test_no_import_cycles():
    g = graph()
    nodes = set(g)
    # a package's __init__ re-exports its modules: edges into a package mean its modules,
    # so only module-to-module edges (excluding re-exporting __init__ files) form cycles
    inits = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    edges = {a: {b for b in deps if b in nodes and b not in inits and b != a}
             for a, deps in g.items() if a not in inits}
    state, stack, cycles = {}, [], []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in edges.get(v, ()):
            if state.get(w) == 1:
                cycles.append(stack[stack.index(w):] + [w])
            elif w not in state:
                visit(w)
        stack.pop()
        state[v] = 2

    for v in edges:
        if v not in state:
            visit(v)
    assert cycles == []


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert long == {}


@pytest.mark.skipif(shutil.which("ruff") is None and subprocess.run(
    [sys.executable, "-m", "ruff", "--version"], capture_output=True).returncode != 0,
    reason="ruff is not installed (pip install -e '.[test]')")
def test_no_unused_imports_or_undefined_names():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F",
                          "--output-format", "concise", "stability", "experiments",
                          "paper_figures", "proofs_check", "benchmarks", "tests"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout

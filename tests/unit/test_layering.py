"""Layers point one way: no module-level import cycle, and each layer imports only the layers
below it (ARCHITECTURE.md). The compiler imports and runs without the simulator or its C core."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"npuc": ROOT / "npuc", "npuc.isa": ROOT / "isa", "npuc.sim": ROOT / "sim"}

# leaves: declarations and utilities every layer may use; they import no other npuc module
LEAVES = {"npuc.hw", "npuc.fsutil", "npuc.limits", "npuc.geometry", "npuc.nhwc", "npuc.lut", "npuc.errors"}
# what each layer may import besides the leaves (a layer is npuc.<first component>)
ALLOWED: dict[str, set[str]] = {
    "npuc.isa": set(),
    "npuc.ir": {"npuc.isa"},
    "npuc.ops": {"npuc.ir"},
    "npuc.ir_dump": {"npuc.ir"},
    "npuc.host": {"npuc.isa"},
    "npuc.sim": {"npuc.isa", "npuc.host"},
    "npuc.quant": {"npuc.ir", "npuc.isa"},
    "npuc.reference": {"npuc.ir", "npuc.isa", "npuc.host"},
    "npuc.frontend": {"npuc.ir", "npuc.isa", "npuc.host"},
    "npuc.passes": {"npuc.ir", "npuc.ops", "npuc.isa", "npuc.host", "npuc.quant", "npuc.reference", "npuc.ir_dump"},
    "npuc.backend": {"npuc.ir", "npuc.isa", "npuc.host"},
    "npuc.export": {"npuc.ir", "npuc.isa", "npuc.host"},
    "npuc.compiler": {"npuc.ir", "npuc.isa", "npuc.frontend", "npuc.passes", "npuc.backend", "npuc.quant"},
    "npuc.examples": set(),
}
# above the pipeline: anything but each other's entry points
TOOLS = {"npuc.tools", "npuc.cli", "npuc.__main__", "npuc"}


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg, d in PACKAGES.items():
        for p in d.rglob("*.py"):
            parts = list(p.relative_to(d).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join([pkg, *parts])] = p
    return mods


def _imports(mods: dict[str, Path]) -> nx.DiGraph:
    """Module-level imports (function bodies and TYPE_CHECKING blocks excluded)."""
    g = nx.DiGraph()

    def resolve(target: str) -> str | None:
        while target and target not in mods:
            target = target.rpartition(".")[0]
        return target or None

    for name, path in mods.items():
        g.add_node(name)
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for stmt in ast.parse(path.read_text()).body:
            body = [stmt]
            if isinstance(stmt, ast.If):
                if isinstance(stmt.test, ast.Name) and stmt.test.id == "TYPE_CHECKING":
                    continue
                body = stmt.body + stmt.orelse
            elif isinstance(stmt, ast.Try):
                body = stmt.body
            for n in body:
                targets = []
                if isinstance(n, ast.Import):
                    targets = [a.name for a in n.names]
                elif isinstance(n, ast.ImportFrom):
                    pkg = base
                    for _ in range(max(n.level - 1, 0)):
                        pkg = pkg.rpartition(".")[0]
                    full = (f"{pkg}.{n.module}" if n.module else pkg) if n.level else (n.module or "")
                    targets = [f"{full}.{a.name}" for a in n.names] or [full]
                for t in targets:
                    r = resolve(t)
                    if r is not None and r != name:
                        g.add_edge(name, r)
    return g


def _layer(module: str) -> str:
    parts = module.split(".")
    return module if len(parts) == 1 else ".".join(parts[:2])


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return _imports(_modules())


def test_no_module_level_import_cycle(graph):
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:5])


def test_layers_import_only_what_lies_below(graph):
    bad = []
    for a, b in graph.edges:
        la, lb = _layer(a), _layer(b)
        if la == lb or la in TOOLS:
            continue
        if la in LEAVES:
            bad.append(f"{a} -> {b} (a leaf imports nothing of npuc)")
        elif lb not in LEAVES and lb not in ALLOWED.get(la, set()):
            bad.append(f"{a} -> {b}")
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_every_layer_is_declared(graph):
    layers = {_layer(m) for m in graph.nodes}
    assert layers <= set(ALLOWED) | LEAVES | TOOLS, sorted(layers - set(ALLOWED) - LEAVES - TOOLS)


def test_the_compiler_loads_neither_the_simulator_nor_its_c_core():
    code = ("import sys, npuc.compiler, npuc.export; "
            "print(sorted(m for m in sys.modules if m.startswith(('npuc.sim', 'npuc.tools', 'npuc.cli')) "
            "or '_npusim' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out

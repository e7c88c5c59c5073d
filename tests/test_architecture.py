"""The package's layering, checked on the source: imports only go down, never to `_private`.

Every import statement counts, including those inside functions (an import hidden in a
function is still a dependency). Layers, lowest first, as drawn in docs/architecture.md.
"""

from __future__ import annotations

import ast
import itertools
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rankbygene"

LAYERS: list[set[str]] = [
    {"", "keys", "fileio", "text", "configs", "lazy"},  # "" is rankbygene/__init__.py
    {"data"},
    {"models", "losses"},
    {"methods"},
    {"training", "pretraining"},
    {"features"},
    {"evaluation"},
    {"report"},
    {"experiments", "predict"},
    {"cli"},
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def _package(module: str) -> str:
    """``rankbygene.evaluation.genes.config`` -> ``evaluation``; ``rankbygene`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) of every rankbygene import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "rankbygene":
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "rankbygene":
                    found.append((node.lineno, alias.name, []))
    return found


MODULES = _modules()


def test_every_package_has_a_layer() -> None:
    packages = {_package(m) for m in MODULES}
    assert packages <= set(LAYER_OF), packages - set(LAYER_OF)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_and_never_to_private_names(module: str) -> None:
    own = LAYER_OF[_package(module)]
    problems = []
    for line, target, names in _imports(MODULES[module]):
        level = LAYER_OF[_package(target)]
        if level > own:
            problems.append(f"line {line}: {target} is above {module}")
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        private_module = any(p.startswith("_") for p in target.split("."))
        if (private or private_module) and target != module:
            problems.append(f"line {line}: private {target} {private}")
    assert not problems, problems


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        deps = set()
        for _, target, names in _imports(path):
            deps |= {f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES}
            if target in MODULES:
                deps.add(target)
        graph[module] = deps - {module}
    return graph


def test_no_import_cycle_between_modules() -> None:
    """A cycle between modules (through any import, at any depth) is a design error: one
    of them belongs lower. Package ``__init__`` re-exports are edges too."""
    graph = _graph()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    # A package __init__ importing its own submodules is how re-exports work; a submodule
    # importing its package __init__ back is the cycle that matters.
    real = [c for c in cycles if not all(b.startswith(a + ".") for a, b in itertools.pairwise(c))]
    assert not real, real

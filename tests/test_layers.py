"""The layout keeps its layers: no import cycles, no private name imported across modules, and each layer imports
only the layers below it (core <- flowtoy; core <- media <- models <- runs <- cli)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flowedit", "flowtoy")
BASE = {"flowedit._text", "flowedit._files"}  # dependency-free helpers every layer may use
CORE = {"flowedit._edit", "flowedit._grid", "flowedit._integrate", "flowedit._after", "flowedit._solvers"}
# what each layer may import from the project, besides itself and BASE
ALLOWED = {
    "core": {"core"},
    "flowtoy": {"core", "flowtoy"},
    "media": {"media"},
    "models": {"core", "media", "models"},
    "testing": {"testing", "models"},
    "runs": {"core", "media", "models", "runs"},
    "cli": {"media", "models", "runs", "cli"},
    "train": {"core", "flowtoy", "media", "models", "testing", "train"},  # trains a shipped model
}


def layer(module: str) -> str | None:
    if module in BASE or module in ("flowedit", "flowedit.__main__", "flowtoy.__main__"):
        return None  # the facades and the helpers below everything
    if module in CORE:
        return "core"
    if module.startswith("flowtoy"):
        return "flowtoy"
    return module.split(".")[1] if module.count(".") >= 1 else None


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """``(imported module, names)`` of every import in the file, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            names = [alias.name for alias in node.names]
            submodules = [imported for imported in names if f"{target}.{imported}" in known]
            found.extend((f"{target}.{imported}", []) for imported in submodules)  # "from . import models"
            if len(submodules) < len(names):
                found.append((target, [imported for imported in names if imported not in submodules]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
    return [(target, names) for target, names in found if target in known]


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_import_cycles(graph):
    edges = {name: {target for target, _ in targets if target != name} for name, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in edges[node]:
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(target) :] + [target]))
            if target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node, [node])


def test_no_private_name_crosses_modules(graph):
    crossing = [
        f"{name} imports {target}.{imported}"
        for name, targets in graph.items()
        for target, names in targets
        for imported in names
        if imported.startswith("_") and target != name
    ]
    assert crossing == []


def test_each_layer_imports_only_the_layers_below_it(graph):
    wrong = []
    for name, targets in graph.items():
        here = layer(name)
        if here is None:
            continue
        for target, _ in targets:
            there = layer(target)
            if there is not None and there not in ALLOWED[here]:
                wrong.append(f"{name} ({here}) imports {target} ({there})")
    assert wrong == []

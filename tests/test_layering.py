"""The package layering the README's Architecture section states, checked on the source.

* inside ``estimators`` and inside ``bench``, imports form no cycle, those inside
  functions included (an import moved into a function to dodge a cycle is still a cycle);
* ``estimators`` never imports ``bench``;
* ``bench`` uses only the public names of ``estimators`` (no ``estimators._private``
  module at module level; the asv suite's shim for commits before core v2 is nested).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path, nested: bool = False) -> set[str]:
    """Modules imported at module level (not inside functions or conditionals); with
    ``nested``, anywhere in the file except under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    nodes = tree.body
    if nested:
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        nodes = [node for node in ast.walk(tree) if id(node) not in typing_only]
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def graph(package: str) -> dict[str, set[str]]:
    files = sorted((ROOT / package).rglob("*.py"))
    names = {module_name(f): f for f in files}
    return {name: {m for m in top_level_imports(path, nested=True) if m in names and m != name}
            for name, path in names.items()}


def assert_no_import_cycle(package: str) -> None:
    edges = graph(package)
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", "import cycle: " + " -> ".join(trail + [node])
        state[node] = "open"
        for child in sorted(edges[node]):
            # A package's __init__ re-exports its submodules: importing the package from a
            # submodule it loads is not a cycle of definitions.
            if node.startswith(child + ".") or child.startswith(node + "."):
                continue
            visit(child, trail + [node])
        state[node] = "done"

    for node in sorted(edges):
        if node != package:  # the top-level package only re-exports
            visit(node, [])


def test_estimators_has_no_import_cycle():
    assert_no_import_cycle("estimators")


def test_bench_has_no_import_cycle():
    """bench too (issue 26): runner ⇄ distributed and asv's bench_core ⇄ figures were
    circles hidden in functions."""
    assert_no_import_cycle("bench")
    assert "bench.distributed" in graph("bench")["bench.runner"]  # the graph is read


def test_estimators_never_imports_bench():
    for path in (ROOT / "estimators").rglob("*.py"):
        assert not any(m == "bench" or m.startswith("bench.") for m in top_level_imports(path)), \
            path


def test_bench_uses_only_public_names_of_estimators():
    for path in (ROOT / "bench").rglob("*.py"):
        private = [m for m in top_level_imports(path)
                   if m.startswith("estimators.") and any(part.startswith("_")
                                                         for part in m.split(".")[1:])]
        assert not private, f"{path.relative_to(ROOT)} imports {private}"

"""No import circle inside ``bench``: the graph of every import in its modules (at module
level and inside functions, where an import once hid a circle; only ``if TYPE_CHECKING:``
blocks are left out) is acyclic. A package importing its own submodules, or a module its
parent package, is not a circle of definitions and is not an edge here."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports(path: Path, modules: set[str]) -> set[str]:
    """The bench modules ``path`` imports anywhere but under ``if TYPE_CHECKING:``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def visit(node):
        if _type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {module for module in found if module in modules and module != name
            and not name.startswith(module + ".") and not module.startswith(name + ".")}


def graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in sorted((ROOT / "bench").rglob("*.py"))}
    return {name: imports(path, set(files)) for name, path in files.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports (its modules in order, the first repeated last), or None."""
    state: dict[str, str] = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return None
        if state.get(node) == "open":
            return trail[trail.index(node):] + [node]
        state[node] = "open"
        for child in sorted(edges[node]):
            found = visit(child, trail + [node])
            if found:
                return found
        state[node] = "done"
        return None

    for node in sorted(edges):
        found = visit(node, [])
        if found:
            return found
    return None


def test_bench_has_no_import_circle():
    found = cycle(graph())
    assert found is None, "import circle: " + " -> ".join(found)


def test_the_check_sees_a_circle_hidden_in_a_function(tmp_path):
    edges = graph()
    assert "bench.distributed" in edges["bench.runner"]  # the graph is read at all
    edges["bench.measuring"] = edges["bench.measuring"] | {"bench.runner"}
    assert cycle(edges) is not None

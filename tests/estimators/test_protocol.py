"""The estimator protocol's promises that are about the code itself (issue 26)."""

import ast
from pathlib import Path

import estimators as E

ROOT = Path(__file__).resolve().parents[2]
PARTS = set(E.IDENTITIES) | set(E.CONTROL_VARIATES) | set(E.SAMPLINGS) | set(E.PRESETS)
OTHER_MEANINGS = {
    ("estimators/truth/monte_carlo.py", "score_function"):
        "the truth's reference kind (Problem(reference=...)), not the identity",
}


def _own_module(path: Path, name: str) -> bool:
    """A part may name itself where it is defined (its registry entry, its refusals)."""
    source = path.read_text(encoding="utf-8")
    return f'name="{name}"' in source or f'"{name}": ' in source \
        or f'{name.upper()} = ' in source


def _strings(node) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for element in node.elts for s in _strings(element)]
    return []


def test_no_branch_tests_a_part_by_name():
    """`grep` for `== "delta"` and kin, by the syntax tree: a comparison with an
    identity's, control variate's, sampling's or preset's name outside its own module."""
    found = []
    for package in ("estimators", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Compare):
                    continue
                if not any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn))
                           for op in node.ops):
                    continue
                for side in (node.left, *node.comparators):
                    for name in set(_strings(side)) & PARTS:
                        if not _own_module(path, name) and \
                                (str(path.relative_to(ROOT)), name) not in OTHER_MEANINGS:
                            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name!r}")
    assert not found, "branches on a part's name: " + ", ".join(found)


def test_what_a_part_costs_is_declared_on_it():
    delta = E.get_estimator("score_function", control_variate="delta")
    assert delta.control.f_evals_per_batch == 1 and delta.memory_values(10, 10) > 0
    assert E.get_estimator("rebar").memory_per_value == E.IDENTITIES["rebar"].memory_per_value
    assert E.get_estimator("reparameterization_antithetic").min_batch == 2
    problem = E.problems.get("seed_dependence")
    # f at the mean once per batch, declared by the delta method, counted by the estimator
    assert delta.f_evals_per_estimate(problem, -1.0, 100, 10) == 110

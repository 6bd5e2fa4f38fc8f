"""Grid files: which problems, estimators, θ, n_samples and batch sizes a run sweeps.

A grid is a TOML file (``bench/grids/*.toml``)::

    name = "default"            # optional; default: the file's stem
    seed = 0                    # run seed; each cell's seed derives from it and the cell
    backend = "xla"             # "xla", "graph" or "eager"
    n_replicates = 1000         # independent estimates per cell
    timing_repeats = 3          # timed calls per cell after the compiling warm-up
    estimators = ["score_function", "reparameterization"]   # default: all registered
    n_samples = [1, 10, 100, 1000, 10000]
    batch_sizes = ["all", 100]  # integers, or "all" (= n_samples)
    lab_setups = false          # also run the lab's own functions on its setups (LAB.md);
                                # the report then redraws the lab's three figures

    [[problems]]
    name = "gaussian_cos"
    k = [0.5, 1, 2, 5]          # factory arguments; a list sweeps them
    theta = [[1.0, 1.0], [0.0, 1.0]]   # θ values: numbers, or lists for d > 1
    estimators = ["score_function"]     # optional override of the top-level list

Everything is validated before anything runs (:class:`GridError` names the file, the key
and what is allowed). Combinations that do not apply (an estimator on a problem it does
not support, batch_size > n_samples or not dividing it) are skipped and listed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import tomllib
from pathlib import Path

import estimators as E

GRID_DIR = Path(__file__).parent / "grids"
TOP_KEYS = {"name": str, "seed": int, "backend": str, "n_replicates": int,
            "timing_repeats": int, "estimators": list, "n_samples": list,
            "batch_sizes": list, "problems": list, "description": str, "lab_setups": bool}
PROBLEM_KEYS = {"name", "theta", "estimators"}
REQUIRED = ("n_samples", "problems")


class GridError(ValueError):
    """A grid file is invalid; the message names the file, the key and what is allowed."""


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (problem, estimator, θ, n_samples, batch_size) combination of a grid."""

    problem: str            # registry name
    kwargs: tuple           # ((key, value), ...) factory arguments
    estimator: str
    theta: tuple[float, ...]
    n_samples: int
    batch_size: int

    @property
    def problem_obj(self) -> E.Problem:
        return E.problems.get(self.problem, **dict(self.kwargs))

    @property
    def key(self) -> str:
        """A stable identifier: independent of cell order, used for seeds and resumes."""
        return json.dumps([self.problem, list(self.kwargs), self.estimator, list(self.theta),
                           self.n_samples, self.batch_size], separators=(",", ":"))

    def seed(self, run_seed: int) -> int:
        digest = hashlib.sha256(f"{run_seed}|{self.key}".encode()).digest()
        return int.from_bytes(digest[:8], "little") & (2**62 - 1)

    @property
    def label(self) -> str:
        return (f"{self.problem_obj.name} {self.estimator} θ={list(self.theta)} "
                f"n={self.n_samples} b={self.batch_size}")


@dataclasses.dataclass(frozen=True)
class Grid:
    name: str
    source: str             # the TOML text, stored with the run
    path: str
    seed: int
    backend: str
    n_replicates: int
    timing_repeats: int
    cells: tuple[Cell, ...]
    skipped: tuple[tuple[str, str], ...]   # (cell label, reason)
    lab_setups: bool = False


def bundled() -> list[Path]:
    """The grid files shipped in ``bench/grids``."""
    return sorted(GRID_DIR.glob("*.toml"))


def resolve(name_or_path: str | Path) -> Path:
    """A grid path, or the name of a bundled grid ("default", "tiny", ...)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    bundled_path = GRID_DIR / f"{name_or_path}.toml"
    if bundled_path.exists():
        return bundled_path
    names = ", ".join(p.stem for p in bundled())
    raise GridError(f"{name_or_path}: no such grid file or bundled grid (bundled: {names}).")


def load(name_or_path: str | Path) -> Grid:
    """Reads and validates a grid file. Raises GridError."""
    path = resolve(name_or_path)
    text = path.read_text()
    return parse(text, str(path))


def parse(text: str, where: str = "<grid>") -> Grid:
    """Validates grid TOML text and expands it into cells. Raises GridError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"{where}: not valid TOML ({error}).") from None

    def fail(key, message):
        raise GridError(f"{where}: {key}: {message}")

    for key, value in data.items():
        if key not in TOP_KEYS:
            fail(key, f"unknown key; allowed keys are {', '.join(sorted(TOP_KEYS))}.")
        expected = TOP_KEYS[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            kind = {int: "an integer", bool: "true or false"}.get(expected,
                                                                  "a " + expected.__name__)
            fail(key, f"must be {kind}, got {value!r}.")
    for key in REQUIRED:
        if key not in data:
            fail(key, "is required.")
    seed = data.get("seed", 0)
    if seed < 0:
        fail("seed", f"must be a non-negative integer, got {seed}.")
    backend = data.get("backend", "xla")
    if backend not in E.BACKENDS:
        fail("backend", f"must be one of {', '.join(E.BACKENDS)}, got {backend!r}.")
    n_replicates = _positive(data.get("n_replicates", 1000), "n_replicates", fail)
    repeats = _positive(data.get("timing_repeats", 3), "timing_repeats", fail)
    n_samples = [_positive(n, "n_samples", fail) for n in data["n_samples"]]
    if not n_samples:
        fail("n_samples", "must list at least one positive integer.")
    batch_sizes = data.get("batch_sizes", ["all"])
    for b in batch_sizes:
        if b != "all":
            _positive(b, "batch_sizes", fail, extra=' or "all"')
    top_estimators = _estimators(data.get("estimators", sorted(E.ESTIMATORS)), "estimators", fail)

    cells, skipped = [], []
    for index, entry in enumerate(data["problems"]):
        where_p = f"problems[{index}]"
        if not isinstance(entry, dict):
            fail(where_p, "must be a table with at least name and theta.")
        name = entry.get("name")
        if name not in E.problems.names():
            fail(f"{where_p}.name", f"unknown problem {name!r}; choose one of: "
                                    f"{', '.join(E.problems.names())}.")
        arguments = E.problems.parameters(name)
        for key in entry:
            if key not in PROBLEM_KEYS and key not in arguments:
                allowed = sorted(PROBLEM_KEYS | set(arguments))
                fail(f"{where_p}.{key}", f"unknown key for problem '{name}'; allowed keys are "
                                         f"{', '.join(allowed)}.")
        if "theta" not in entry or not isinstance(entry["theta"], list) or not entry["theta"]:
            fail(f"{where_p}.theta", "is required: a list of θ values.")
        sweeps = {}
        for key in arguments:
            if key in entry:
                values = entry[key] if isinstance(entry[key], list) else [entry[key]]
                for value in values:
                    if isinstance(value, bool) or not isinstance(value, (int, float)):
                        fail(f"{where_p}.{key}", f"must be a number or a list of numbers, "
                                                 f"got {value!r}.")
                sweeps[key] = [float(v) for v in values]
        chosen = _estimators(entry["estimators"], f"{where_p}.estimators", fail) \
            if "estimators" in entry else top_estimators
        for combo in itertools.product(*sweeps.values()):
            kwargs = tuple(zip(sweeps.keys(), combo))
            problem = E.problems.get(name, **dict(kwargs))
            thetas = []
            for value in entry["theta"]:
                try:
                    thetas.append(tuple(problem.theta_vector(value).tolist()))
                except (TypeError, ValueError) as error:
                    fail(f"{where_p}.theta", str(error))
            for estimator, theta, n, b in itertools.product(chosen, thetas, n_samples,
                                                            batch_sizes):
                batch = n if b == "all" else b
                cell = Cell(name, kwargs, estimator, theta, n, batch)
                reason = _not_applicable(cell, problem, b)
                if reason:
                    skipped.append((cell.label, reason))
                elif cell not in cells:  # "all" and an explicit b == n are the same cell
                    cells.append(cell)
    return Grid(name=data.get("name", Path(where).stem), source=text, path=where, seed=seed,
                backend=backend, n_replicates=n_replicates, timing_repeats=repeats,
                cells=tuple(cells), skipped=tuple(skipped),
                lab_setups=data.get("lab_setups", False))


def _not_applicable(cell: Cell, problem: E.Problem, b) -> str | None:
    if cell.batch_size > cell.n_samples:
        return "batch_size > n_samples"
    if cell.n_samples % cell.batch_size:
        return "batch_size does not divide n_samples"
    try:
        E.ESTIMATORS[cell.estimator].check(problem, cell.theta, cell.batch_size)
    except E.NotApplicableError as error:
        return str(error)
    return None


def _positive(value, key, fail, extra=""):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        fail(key, f"must be a positive integer{extra}, got {value!r}.")
    return value


def _estimators(names, key, fail):
    if not isinstance(names, list) or not names:
        fail(key, "must be a non-empty list of estimator names.")
    for name in names:
        if name not in E.ESTIMATORS:
            fail(key, f"unknown estimator {name!r}; choose one of: "
                      f"{', '.join(sorted(E.ESTIMATORS))}.")
    return list(names)

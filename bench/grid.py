"""Grid files: which problems, estimators, θ, n_samples and batch sizes a run sweeps.

A grid is a TOML file (``bench/grids/*.toml``)::

    name = "default"            # optional; default: the file's stem
    seed = 0                    # run seed; each cell's seed derives from it and the cell
    backend = "xla"             # "xla", "graph" or "eager"
    n_replicates = 1000         # independent estimates per cell
    timing_repeats = 3          # timed calls per cell after the compiling warm-up
    n_samples = [1, 10, 100, 1000, 10000]
    batch_sizes = ["all", 100]  # integers, or "all" (= n_samples)
    lab_setups = false          # also run the lab's own functions on its setups; the
                                # report then redraws the lab's three figures
    warmup_batches = 0          # a stateful estimator's state updates (fresh batches)
                                # before each cell's estimates (the rows' state_updates);
                                # a learned estimator's own option wins, and a table
                                # sweeps it: {name = "relax", warmup_batches = [0, 100]}
    # Estimators: names, labels, or tables of options (a list sweeps an option).
    # Default: every registered name (gradvar list).
    estimators = [
        "reparameterization",
        "score_function(control_variate=delta)",
        {name = "score_function", control_variate = ["none", "loo"]},
        {name = "gumbel_softmax", temperature = [0.1, 0.5, 1.0]},  # numeric settings
        # n_samples and batch_sizes in a table: its estimators' own, instead of the
        # grid's, so a grid asks only for what applies (a quadrature rule takes one batch)
        {name = ["trapz", "dependence"], n_samples = [10, 100], batch_sizes = ["all"]},
    ]

    [training]                  # optional: a training run per problem and starting θ,
    direction = "maximize"      # with every cell measured at each checkpoint
    learning_rate = 0.001       # (bench/training.py has every key)
    steps = 5000
    estimator = "reparameterization"
    n_samples = 50
    checkpoints = [0, 1000, 5000]

    [train_each]                # optional: a training run per problem, start, estimator
    estimators = ["disarm", "arm"]      # and seed, each logged along the way
    seeds = 3                   # (bench/train_each.py has every key)
    direction = "maximize"
    learning_rate = 0.001
    steps = 2000
    n_samples = 1

    [[problems]]
    name = "gaussian_cos"       # a built-in, or "my_problems.py:factory",
                                # or "my_package.module:factory" (bench/problem_specs.py)
    k = [0.5, 1, 2, 5]          # factory arguments; a list sweeps them
    theta = [[1.0, 1.0], [0.0, 1.0]]   # θ values: numbers, flat lists, or tables:
                                       # {mean = 1.0, std = 1.0} (a number fills a block)
    estimators = ["score_function"]     # optional override of the top-level list
                                        # ([] with [train_each]: training runs only)
    train_each = false                  # optional: leave this problem out of [train_each]

Everything is validated before anything runs (:class:`GridError` names the file, the key
and what is allowed). Combinations that do not apply (an estimator on a problem it does
not support, an option combination that cannot work, batch_size > n_samples or not
dividing it) are skipped and listed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import tomllib
from pathlib import Path

import numpy as np

import estimators as E
from bench import cellkey, problem_specs, train_each as each_training, training as trainings

GRID_DIR = Path(__file__).parent / "grids"
TOP_KEYS = {"name": str, "seed": int, "backend": str, "n_replicates": int,
            "timing_repeats": int, "estimators": list, "n_samples": list,
            "batch_sizes": list, "problems": list, "description": str, "lab_setups": bool,
            "training": dict, "warmup_batches": int, "train_each": dict}
PROBLEM_KEYS = {"name", "theta", "estimators", "train_each"}
REQUIRED = ("n_samples", "problems")
SAMPLE_KEYS = ("n_samples", "batch_sizes")
"""Keys of an estimator table that set its own n_samples and batch sizes, not options."""


@dataclasses.dataclass(frozen=True)
class Choice:
    """An estimator a grid asks for, with its own n_samples and batch sizes (None: the
    grid's)."""

    label: str
    n_samples: tuple[int, ...] | None = None
    batch_sizes: tuple | None = None


class GridError(ValueError):
    """A grid file is invalid; the message names the file, the key and what is allowed."""


@dataclasses.dataclass(frozen=True)
class Cell(problem_specs.OnProblem):
    """One (problem, estimator, θ, n_samples, batch_size) combination of a grid; in a
    training grid also a checkpoint ``step``, θ then being the trajectory's start.

    A cell is resolved once, when the grid is parsed: its problem object, its estimator,
    θ as a validated array (:attr:`theta_array`: one ``theta_vector`` per θ of a grid
    entry, shared by its cells), its label and keys are computed then and cached on the
    cell. The runner, the Dask workers (which receive cells, not the grid's text), the
    engine's ``program`` calls and the store all use these. A cell sent to another process
    carries θ's array and keys; its problem and estimator objects are looked up there
    once (:func:`bench.problem_specs.get` caches them per process)."""

    problem: str            # registered name or "file.py:factory" / "module:factory"
    kwargs: tuple           # ((key, value), ...) factory arguments
    estimator: str          # canonical estimator label
    theta: tuple[float, ...]
    n_samples: int
    batch_size: int
    base_dir: str = dataclasses.field(default="", compare=False)  # where user files live
    step: int | None = None  # a training checkpoint: measured at θ after `step` updates
    # Updates of a stateful estimator's state before its estimates (the grid's
    # warmup_batches); not in the key, so every grid's seeds stay what they were.
    warmup_batches: int = dataclasses.field(default=0, compare=False)

    _PROCESS_LOCAL = ("problem_obj", "estimator_obj")
    """Cached attributes not sent to another process (rebuilt there from the spec)."""

    @functools.cached_property
    def estimator_obj(self) -> E.Estimator:
        return E.get_estimator(self.estimator)

    @property
    def program_key(self) -> tuple:
        """What identifies the cell's compiled program: cells that share it (the same
        problem, estimator, n and batch size at several θ) compile once."""
        return (self.problem, self.kwargs, self.estimator, self.n_samples, self.batch_size)

    @functools.cached_property
    def key(self) -> str:
        """A stable identifier: independent of cell order, used for seeds and resumes.
        Computed once per cell (a θ of 2·10⁵ components is ~1.6 MB of JSON)."""
        return cellkey.full(self.problem, self.kwargs, self.estimator, self.theta,
                            self.n_samples, self.batch_size, self.step)

    @functools.cached_property
    def table_key(self) -> str:
        """The key the results table's ``cell`` column holds (:mod:`bench.cellkey`: the
        full key, θ replaced by a digest beyond a few components)."""
        return cellkey.build(self.problem, self.kwargs, self.estimator, self.theta,
                             self.n_samples, self.batch_size, self.step)

    @property
    def trajectory(self) -> str | None:
        """The training run this cell is a checkpoint of (None outside training grids)."""
        if self.step is None:
            return None
        return trainings.trajectory_key(self.problem, self.kwargs, self.theta)

    def warmup_seed(self, run_seed: int) -> int:
        """The seed of a stateful estimator's warm-up batches: from the run seed and the
        full key, distinct from :meth:`seed` (the measured estimates' draws)."""
        digest = hashlib.sha256(f"{run_seed}|warmup|{self.key}".encode()).digest()
        return int.from_bytes(digest[:8], "little") & (2**62 - 1)

    def seed(self, run_seed: int) -> int:
        """The cell's seed in a run of seed ``run_seed``: from the run seed and the full
        key (so every grid's seeds stay what they were), hashed once per run seed."""
        seeds = self.__dict__.setdefault("_seeds", {})  # frozen: the cache bypasses setattr
        if run_seed not in seeds:
            digest = hashlib.sha256(f"{run_seed}|{self.key}".encode()).digest()
            seeds[run_seed] = int.from_bytes(digest[:8], "little") & (2**62 - 1)
        return seeds[run_seed]

    @functools.cached_property
    def label(self) -> str:
        """The cell as text, for progress bars and errors."""
        return self.describe(self.step)

    def describe(self, step: int | None) -> str:
        """The cell as text at checkpoint ``step`` (None: without one)."""
        at = f" step={step}" if step is not None else ""
        return (f"{self.problem_obj.name} {self.estimator} θ=[{self.theta_label}]{at} "
                f"n={self.n_samples} b={self.batch_size}")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What measuring a cell needs of its grid besides the cell (sent to Dask workers
    with the cells): the run seed, backend, replicates and timed calls."""

    seed: int
    backend: str
    n_replicates: int
    timing_repeats: int


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
    skipped: tuple[tuple[str, str], ...]   # (cell or combination label, reason)
    lab_setups: bool = False
    base_dir: str = ""      # the folder user problem files are looked up in
    training: trainings.Training | None = None  # a training grid's [training] table
    train_each: each_training.EachTraining | None = None  # its [train_each] table
    train_runs: tuple = ()  # bench.train_each.TrainRun: one per problem, start, estimator, seed

    @property
    def settings(self) -> Settings:
        return Settings(self.seed, self.backend, self.n_replicates, self.timing_repeats)

    def user_files(self) -> dict[str, str]:
        """{path: sha256} of the files behind the grid's own problem factories."""
        files = {}
        for spec in dict.fromkeys(cell.problem for cell in self.cells):
            path = problem_specs.source_file(spec, self.base_dir or None)
            if path is not None:
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return files


def bundled() -> list[Path]:
    """The grid files shipped in ``bench/grids``."""
    return sorted(GRID_DIR.glob("*.toml"))


def resolve(name_or_path: str | Path) -> Path:
    """A grid path, or the name of a bundled grid ("default", "tiny", ...)."""
    path = Path(name_or_path)
    if path.is_dir():
        raise GridError(f"{name_or_path}: is a directory; give a grid file (.toml) or the "
                        "name of a bundled grid.")
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
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise GridError(f"{path}: cannot read the grid file ({error}).") from None
    return parse(text, str(path))


def parse(text: str, where: str = "<grid>", base_dir: str | None = None) -> Grid:
    """Validates grid TOML text and expands it into cells. Raises GridError.

    ``base_dir`` is where the grid's own problem files are looked up (default: the folder
    of ``where``); runs record it, so that resumes and reports find them from anywhere.
    """
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
            kind = {int: "an integer", bool: "true or false", str: "a string",
                    list: "a list", dict: f"a table ([{key}])"}[expected]
            fail(key, f"must be {kind}, got {value!r}.")
    runs_only = "train_each" in data and data.get("estimators") == []  # no cells at all
    for key in REQUIRED:
        if key not in data and not (key == "n_samples" and runs_only):
            fail(key, "is required." if key != "n_samples" or "train_each" not in data else
                 "is required for the grid's cells (a grid of training runs only sets "
                 "estimators = [] instead).")
    seed = data.get("seed", 0)
    if seed < 0:
        fail("seed", f"must be a non-negative integer, got {seed}.")
    backend = data.get("backend", "xla")
    if backend not in E.BACKENDS:
        fail("backend", f"must be one of {', '.join(E.BACKENDS)}, got {backend!r}.")
    n_replicates = _positive(data.get("n_replicates", 1000), "n_replicates", fail)
    repeats = _positive(data.get("timing_repeats", 3), "timing_repeats", fail)
    n_samples = _n_samples(data["n_samples"], "n_samples", fail) if "n_samples" in data \
        else (1,)  # runs_only: no cell reads it
    warmup = data.get("warmup_batches", 0)
    if warmup < 0:
        fail("warmup_batches", f"must be an integer >= 0 (batches that update a stateful "
                               f"estimator's state before its estimates), got {warmup}.")
    batch_sizes = _batch_sizes(data.get("batch_sizes", ["all"]), "batch_sizes", fail)
    skipped = []
    top_estimators = [] if runs_only else _estimators(
        data.get("estimators", sorted(E.ESTIMATORS)), "estimators", fail, skipped)
    if base_dir is None:
        base_dir = str(Path(where).resolve().parent) if where != "<grid>" else ""
    training = None
    if "training" in data:
        training = trainings.parse(data["training"], fail,
                                   lambda entry, key: _one_estimator(entry, key, fail))
    steps = training.checkpoints if training is not None else (None,)
    each = None
    if "train_each" in data:
        each = each_training.parse(data["train_each"], fail,
                                   lambda entry, key: _one_estimator(entry, key, fail))
    train_runs, seen_runs = [], set()

    cells, seen = [], set()
    named = {}  # problem name -> (the entry's name, the arguments that gave it)
    available = E.memory.available_bytes()
    for index, entry in enumerate(data["problems"]):
        where_p = f"problems[{index}]"
        if not isinstance(entry, dict):
            fail(where_p, "must be a table with at least name and theta.")
        name = entry.get("name")
        try:
            arguments = problem_specs.parameters(name, base_dir or None)
        except problem_specs.ProblemSpecError as error:
            fail(f"{where_p}.name", str(error))
        for key in entry:
            if key not in PROBLEM_KEYS and key not in arguments:
                allowed = sorted(PROBLEM_KEYS | set(arguments))
                fail(f"{where_p}.{key}", f"unknown key for problem '{name}'; allowed keys are "
                                         f"{', '.join(allowed)}.")
        if "theta" not in entry or not isinstance(entry["theta"], list) or not entry["theta"]:
            fail(f"{where_p}.theta", "is required: a list of θ values (numbers, lists or "
                                     "tables such as {mean = 1.0, std = 1.0}).")
        sweeps = {}
        for key in arguments:
            if key in entry:
                values = entry[key] if isinstance(entry[key], list) else [entry[key]]
                for value in values:
                    if not isinstance(value, (bool, int, float, str)):
                        fail(f"{where_p}.{key}", f"must be a number, string or boolean, or a "
                                                 f"list of them, got {value!r}.")
                sweeps[key] = values
        missing = [k for k, v in arguments.items() if v is None and k not in sweeps]
        if missing:
            fail(where_p, f"problem '{name}' needs the argument(s) {', '.join(missing)}.")
        trains = entry.get("train_each", each is not None)
        if not isinstance(trains, bool) or (trains and each is None):
            fail(f"{where_p}.train_each", "must be true or false, and true only in a grid with a "
                                          f"[train_each] table; got {trains!r}.")
        if entry.get("estimators") == [] and trains:  # training runs only, no cells
            chosen = []
        else:
            chosen = _estimators(entry["estimators"], f"{where_p}.estimators", fail, skipped) \
                if "estimators" in entry else top_estimators
        if chosen and "n_samples" not in data:
            fail("n_samples", f"is required for the cells of {where_p} (its estimators).")
        # A learned estimator's own warmup_batches (in its label) wins over the grid's.
        warmups = {choice.label: _own_or(warmup, choice.label) for choice in chosen}
        for combo in itertools.product(*sweeps.values()):
            kwargs = tuple(zip(sweeps.keys(), combo))
            try:
                problem = problem_specs.get(name, dict(kwargs), base_dir or None)
            except problem_specs.ProblemSpecError as error:
                fail(where_p, str(error))
            if named.setdefault(problem.name, (name, kwargs)) != (name, kwargs):
                # Results are keyed by problem name: the two would be averaged as one.
                first = named[problem.name]
                fail(where_p, f"'{name}' ({_arguments(kwargs) or 'no arguments'}) gives the "
                              f"problem name '{problem.name}' that '{first[0]}' "
                              f"({_arguments(first[1]) or 'no arguments'}) already gave; "
                              "put the swept arguments in the Problem's name (e.g. "
                              "name=f\"mine(scale={scale})\").")
            thetas, vectors = [], {}  # θ validated once per value: its cells share it
            for value in entry["theta"]:
                try:
                    vector = problem.validated_theta(value)
                except (TypeError, ValueError) as error:
                    fail(f"{where_p}.theta", str(error))
                thetas.append(tuple(vector.tolist()))
                vectors.setdefault(thetas[-1], vector)
            try:  # dist and cost evaluated once: a broken problem fails here, not mid-run
                problem.validate(vectors[thetas[0]])
            except ValueError as error:
                fail(where_p, str(error))
            if training is not None:
                _check_training(training, problem, thetas, where_p, fail)
            if trains:
                for index, label in enumerate(each.estimators):
                    # The penalty and diagnostics once per problem: a VAE's take seconds.
                    _check_training(dataclasses.replace(each.settings, estimator=label),
                                    problem, thetas, where_p, fail,
                                    f"train_each.estimators[{index}]",
                                    objective=index == 0 and training is None)
                for run in each_training.runs_of(each, name, kwargs, thetas, base_dir,
                                                 problem, vectors):
                    if run.key not in seen_runs:  # an entry repeated: one run, not two
                        seen_runs.add(run.key)
                        train_runs.append(run)
            # A training grid runs trajectory by trajectory, checkpoint by checkpoint.
            verdicts = {}  # applicability and memory do not depend on the checkpoint
            for theta, step, estimator, n, b in _combinations(thetas, steps, chosen,
                                                              n_samples, batch_sizes):
                batch = n if b == "all" else b
                cell = Cell(name, kwargs, estimator, theta, n, batch, base_dir, step,
                            warmups[estimator])
                cell.__dict__.update(problem_obj=problem, theta_array=vectors[theta])
                combination = (theta, estimator, n, b)
                if combination not in verdicts:
                    verdicts[combination] = _verdict(cell, problem, where_p, fail, skipped,
                                                      n_replicates, available)
                # "all" and an explicit b == n are the same cell
                if verdicts[combination] and cell not in seen:
                    seen.add(cell)
                    cells.append(cell)
    return Grid(name=data.get("name", Path(where).stem), source=text, path=where, seed=seed,
                backend=backend, n_replicates=n_replicates, timing_repeats=repeats,
                cells=tuple(cells), skipped=tuple(skipped),
                lab_setups=data.get("lab_setups", False), base_dir=base_dir, training=training,
                train_each=each, train_runs=tuple(train_runs))


def _own_or(warmup: int, label: str) -> int:
    own = E.get_estimator(label).warmup_batches
    return warmup if own is None else own


def _combinations(thetas, steps, chosen: list[Choice], n_samples, batch_sizes):
    """(θ, step, estimator label, n, batch size) in grid order, each estimator with its own
    n_samples and batch sizes where its table set them."""
    for theta, step, choice in itertools.product(thetas, steps, chosen):
        for n, b in itertools.product(choice.n_samples or n_samples,
                                      choice.batch_sizes or batch_sizes):
            yield theta, step, choice.label, n, b


def _n_samples(values, key, fail) -> tuple[int, ...]:
    if not isinstance(values, list) or not values:
        fail(key, f"must list at least one positive integer, got {values!r}.")
    return tuple(_positive(n, key, fail) for n in values)


def _batch_sizes(values, key, fail) -> tuple:
    if not isinstance(values, list) or not values:
        fail(key, f'must list positive integers or "all", got {values!r}.')
    for b in values:
        if b != "all":
            _positive(b, key, fail, extra=' or "all"')
    return tuple(values)


def _one_estimator(entry, key, fail) -> str:
    """The one estimator label of a name, label or option table (training's)."""
    skipped = []

    def fail_here(where, message):  # the entry is the key itself, not an item of a list
        fail(where.replace(f"{key}[0]", key, 1), message)

    if isinstance(entry, dict) and any(k in entry for k in SAMPLE_KEYS):
        fail(key, f"takes no {' or '.join(SAMPLE_KEYS)}: the training's own n_samples sets "
                  "the samples of each update.")
    chosen = _estimators([entry], key, fail_here, skipped)
    if len(chosen) != 1:
        fail(key, f"must name one estimator (no list of options), got {entry!r}.")
    return chosen[0].label


def _check_training(training, problem: E.Problem, thetas, where_p: str, fail,
                    key: str = "training.estimator", objective: bool = True) -> None:
    """Before anything runs: the training estimator applies at every start (and is not
    biased there by ignoring ∇θ p), no start repeats, and (``objective``) the problem's
    penalty and diagnostics work, are finite, deterministic and do not reuse the log's
    names."""
    if len(set(thetas)) != len(thetas):
        fail(f"{where_p}.theta", "lists a starting θ twice; each is one training run.")
    estimator = E.get_estimator(training.estimator)
    for theta in thetas:
        try:
            estimator.check(problem, theta, training.n_samples, training.n_samples)
        except E.NotApplicableError as error:
            fail(key, f"cannot train problem '{problem.name}': {error}")
        except ValueError as error:
            fail(where_p, str(error))
        if estimator.ignores_measure_gradient and problem.measure_depends_on_theta(theta):
            fail(key, f"{estimator.label} ignores how p(x|θ) depends on θ, so it is biased on "
                      f"problem '{problem.name}' and cannot train it; choose an unbiased "
                      "estimator.")
    if not objective:
        return
    try:
        value, gradient = E.objective.penalty(problem, thetas[0])
        first = E.objective.diagnostics(problem, thetas[0])
        again = E.objective.diagnostics(problem, thetas[0])
    except ValueError as error:
        fail(where_p, str(error))
    if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
        fail(where_p, f"problem '{problem.name}': penalty(theta) or its gradient is not finite "
                      f"at the start (penalty {value}).")
    clash = [name for name in first if name in trainings.LOG_KEYS]
    if clash:
        fail(where_p, f"problem '{problem.name}': diagnostics(theta) names '{clash[0]}', a "
                      f"column of the training log ({', '.join(trainings.LOG_KEYS)}); rename "
                      "it.")
    if not all(np.isfinite(value) for value in first.values()):
        fail(where_p, f"problem '{problem.name}': diagnostics(theta) are not all finite at the "
                      f"start ({first}).")
    if first != again:
        fail(where_p, f"problem '{problem.name}': diagnostics(theta) gave different values for "
                      "the same θ; make it deterministic (fixed-seed stateless draws, e.g. "
                      "tf.random.stateless_normal(shape, seed=(0, 0))).")


def _verdict(cell: Cell, problem: E.Problem, where_p: str, fail, skipped, n_replicates,
             available) -> bool:
    """Whether ``cell`` runs (at every checkpoint of a training grid): False, listed in
    ``skipped``, when it does not apply; a GridError when it cannot fit in memory."""
    reason = _not_applicable(cell, problem, where_p, fail)
    label = cell.describe(step=None)
    if reason:
        skipped.append((label, reason))
        return False
    try:  # before anything runs: a cell that cannot fit would be killed
        E.memory.check_call(cell.estimator_obj, problem, cell.theta_array,
                            n_replicates, cell.batch_size, available, label=f"cell {label}")
    except ValueError as error:
        fail("n_replicates", str(error))
    return True


def _arguments(kwargs) -> str:
    return ", ".join(f"{key}={value}" for key, value in kwargs)


def _not_applicable(cell: Cell, problem: E.Problem, where_p: str, fail) -> str | None:
    if cell.batch_size > cell.n_samples:
        return "batch_size > n_samples"
    if cell.n_samples % cell.batch_size:
        return "batch_size does not divide n_samples"
    try:
        cell.estimator_obj.check(problem, cell.theta_array, cell.batch_size,
                                              cell.n_samples)
    except E.NotApplicableError as error:
        return str(error)
    except ValueError as error:  # the problem itself (e.g. no window can be placed)
        fail(where_p, str(error))
    return None


def _positive(value, key, fail, extra=""):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        fail(key, f"must be a positive integer{extra}, got {value!r}.")
    return value


def _estimators(entries, key, fail, skipped) -> list[Choice]:
    """The estimators of names, labels and option tables, each with the n_samples and
    batch sizes its table sets (``SAMPLE_KEYS``); combinations of options that cannot work
    are added to ``skipped``."""
    if not isinstance(entries, list) or not entries:
        fail(key, "must be a non-empty list of estimator names or option tables.")
    labels = []
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]"
        own = {}  # n_samples, batch_sizes of this table
        if isinstance(entry, str):
            combos = [(entry, {})]
        elif isinstance(entry, dict):
            if "name" not in entry:
                fail(where, "an estimator table needs a name, e.g. {name = \"score_function\", "
                            "control_variate = \"delta\"}.")
            entry = dict(entry)
            if "n_samples" in entry:
                own["n_samples"] = _n_samples(entry.pop("n_samples"), f"{where}.n_samples",
                                              fail)
            if "batch_sizes" in entry:
                own["batch_sizes"] = _batch_sizes(entry.pop("batch_sizes"),
                                                  f"{where}.batch_sizes", fail)
            options = {k: v if isinstance(v, list) else [v] for k, v in entry.items()}
            for option, values in options.items():
                numbers = option != "name" and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
                if not values or not (numbers or all(isinstance(v, str) for v in values)):
                    fail(f"{where}.{option}", f"must be a string or a list of strings (a "
                                              f"number or a list of numbers for a numeric "
                                              f"setting such as temperature), got "
                                              f"{entry[option]!r}.")
            names = options.pop("name")
            combos = [(name, dict(zip(options, values)))
                      for name in names for values in itertools.product(*options.values())]
        else:
            fail(where, f"must be an estimator name or a table of options, got {entry!r}.")
        for name, options in combos:
            try:
                label = E.get_estimator(name, **options).label
            except E.NotApplicableError as error:
                skipped.append((f"{name}({', '.join(f'{k}={v}' for k, v in options.items())})",
                                str(error)))
                continue
            except (ValueError, TypeError) as error:
                fail(where, str(error))
            choice = Choice(label, **own)
            if choice not in labels:
                labels.append(choice)
    if not labels:
        reasons = "; ".join(f"{label}: {reason.rstrip('.')}" for label, reason in skipped[-3:])
        fail(key, f"no estimator left: every combination of options is inapplicable ({reasons}).")
    return labels

"""Training with each estimator: one training run per problem, start, estimator and seed,
the discrete-estimator papers' main comparison (issue 28's second protocol), with time and
evaluations of f on the same footing as the steps.

A grid's ``[train_each]`` table asks for it, beside or instead of its cells::

    [train_each]
    estimators = ["disarm", "arm", "relax"]   # required: each trains its own runs
    seeds = 3                    # runs per estimator (default 3): the noise of the
                                 # estimates and the order of the minibatches differ
    direction = "maximize"       # as [training] (bench/training.py): required
    optimizer = "adam"
    learning_rate = 0.001        # required
    steps = 2000                 # required
    n_samples = 1                # required: samples per training estimate
    log_every = 100              # steps between log rows (default: steps / 200)
    eval_samples = 100           # draws behind each logged E[f] (default 1000)
    variance_replicates = 100    # estimates behind each logged variance (default 100;
                                 # 0: none)

Every run starts from the grid entry's θ (``theta = ["start"]`` for a network's own
initialization). A problem on data (:mod:`estimators.minibatches`) trains on a fresh
minibatch at every update. Each log row holds step, J(θ) on the problem's own minibatch,
the problem's diagnostics (for the VAEs ``train_elbo`` and the K-sample ``test_bound``),
the training estimator's variance at θ on the problem's own minibatch, summed per block
(``variance:<block>``) and over θ (``variance``), and ``train_seconds``, the time spent in
updates so far (logging excluded). Each run also records ``f_evals_per_step``.

**Resumable.** A run's updates, minibatches and logs are keyed by the run seed and the run
(problem, arguments, start, estimator, seed), so a run is a function of the grid alone; its
state is stored every ``SAVE_EVERY_S`` seconds of training and when it stops, and a
resumed run continues from it with the same numbers (only the seconds differ). On a Dask
cluster each run is one task, and the driver stores a run's state when its task returns
(at its end, or where Ctrl-C halted it): a worker or driver lost mid-task loses that run's
work since its task began, never the numbers (bench/runner.py runs them, serial or on a cluster). A run whose estimates stop being finite (an estimator that
diverges) ends there, and its table says so (``stopped``): a result, not a failed grid.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time

import numpy as np

import estimators as E
from bench import problem_specs, training

KEYS = tuple(k for k in training.KEYS if k not in ("estimator", "checkpoints")) + (
    "estimators", "seeds", "variance_replicates")
REQUIRED = tuple(k for k in training.REQUIRED if k not in ("estimator", "checkpoints")) + (
    "estimators",)
SEEDS = 3
VARIANCE_REPLICATES = 100
SAVE_EVERY_S = 30.0
"""Seconds of training between stored states (checked at each log row): a kill -9 loses at
most this much, and the log interval in progress."""


@dataclasses.dataclass(frozen=True)
class EachTraining:
    """A grid's ``[train_each]`` table, validated (module docstring)."""

    settings: training.Training   # its estimator is each run's own; no checkpoints
    estimators: tuple[str, ...]
    seeds: int
    variance_replicates: int


def parse(table, fail, estimator_label) -> EachTraining:
    """Validates a ``[train_each]`` table; ``fail(key, message)`` raises the grid's error
    and ``estimator_label(entry, key)`` turns a name, label or option table into a label."""
    if not isinstance(table, dict):
        fail("train_each", f"must be a table, [train_each], of the keys {', '.join(KEYS)}; "
                           f"got {table!r}.")
    for name in table:
        if name not in KEYS:
            hint = (" (each estimator of train_each.estimators trains its own runs, logged "
                    "every log_every steps)" if name in ("estimator", "checkpoints") else "")
            fail(f"train_each.{name}", f"unknown key{hint}; allowed keys are "
                                       f"{', '.join(KEYS)}.")
    for name in REQUIRED:
        if name not in table:
            hint = (training.REQUIRED_HINTS.get(name)
                    or 'the estimators that train, e.g. ["disarm", "arm"]')
            fail(f"train_each.{name}", f"is required in a [train_each] table: {hint}.")
    entries = table["estimators"]
    if not isinstance(entries, list) or not entries:
        fail("train_each.estimators", f"must list at least one estimator, got {entries!r}.")
    labels = [estimator_label(entry, f"train_each.estimators[{index}]")
              for index, entry in enumerate(entries)]
    if len(set(labels)) != len(labels):
        fail("train_each.estimators", f"lists an estimator twice: {labels}.")
    seeds = _count(table.get("seeds", SEEDS), "seeds", 1, fail)
    replicates = _count(table.get("variance_replicates", VARIANCE_REPLICATES),
                        "variance_replicates", 0, fail)
    if replicates == 1:
        fail("train_each.variance_replicates", "must be 0 (no variance logged) or at least 2 "
                                               "(a variance needs two estimates), got 1.")
    inner = {name: value for name, value in table.items() if name in training.KEYS}
    steps = table["steps"]
    inner.update(estimator=labels[0], checkpoints=[steps if isinstance(steps, int) else 0])
    settings = training.parse(
        inner, lambda key, message: fail(key.replace("training.", "train_each.", 1), message),
        lambda entry, key: entry)
    return EachTraining(dataclasses.replace(settings, checkpoints=()), tuple(labels), seeds,
                        replicates)


def _count(value, name, least, fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        fail(f"train_each.{name}", f"must be an integer of at least {least}, got {value!r}.")
    return value


@dataclasses.dataclass(frozen=True)
class TrainRun(problem_specs.OnProblem):
    """One training run of a ``[train_each]`` grid: a problem (registered name or user
    spec, with its arguments), a start, an estimator and a seed number."""

    problem: str
    kwargs: tuple
    theta: tuple[float, ...]
    estimator: str
    seed: int
    base_dir: str = dataclasses.field(default="", compare=False)

    @functools.cached_property
    def key(self) -> str:
        """The run's identity (θ by its digest: a network's start has 10⁵ values)."""
        start = hashlib.sha256(np.asarray(self.theta, np.float64).tobytes()).hexdigest()[:16]
        return repr((self.problem, tuple(self.kwargs), start, self.estimator, self.seed))

    @property
    def name(self) -> str:
        """The stored state's file stem."""
        return "train-" + hashlib.sha256(self.key.encode()).hexdigest()[:20]

    @property
    def label(self) -> str:
        return f"{self.problem_obj.name} {self.estimator} seed {self.seed}"


def runs_of(each: EachTraining, problem: str, kwargs: tuple, thetas, base_dir: str,
            problem_obj: E.Problem, vectors: dict) -> list[TrainRun]:
    """The runs of one grid entry (problem and arguments) at its starts ``thetas``."""
    runs = []
    for theta in thetas:
        for estimator in each.estimators:
            for seed in range(each.seeds):
                run = TrainRun(problem, kwargs, theta, estimator, seed, base_dir)
                run.__dict__.update(problem_obj=problem_obj, theta_array=vectors[theta])
                runs.append(run)
    return runs


def train(run: TrainRun, each: EachTraining, run_seed: int, backend: str, state: dict | None,
          save, stop=None, progress=None) -> dict:
    """Trains ``run`` from ``state`` (None: its start) to the last step, calling
    ``save(state)`` every ``SAVE_EVERY_S`` seconds and at the end; returns the state.

    Raises:
      KeyboardInterrupt: ``stop`` was set (the state is saved first).
      ValueError: the problem's own functions failed (a broken problem, not a run's result).
    """
    if state is not None and (state.get("stopped") or state["step"] >= each.settings.steps):
        return state
    problem = training.training_problem(run.problem_obj, run.problem, run.kwargs, run.base_dir)
    trajectory = training.Trajectory(
        problem, run.theta_array, each.settings, run_seed, run.key, backend, state,
        estimator=run.estimator, variance_replicates=each.variance_replicates)
    trajectory.state.setdefault("f_evals_per_step", trajectory.f_evals_per_step)
    steps, every = each.settings.steps, each.settings.log_every
    saved = time.monotonic()
    while trajectory.step < steps:
        target = min(steps, (trajectory.step // every + 1) * every)
        try:
            reached = trajectory.advance(target, stop, progress)
        except training.TrainingError as error:  # a diverging estimator: its result
            trajectory.state["stopped"] = str(error)
            break
        if not reached:
            save(trajectory.state)
            raise KeyboardInterrupt
        if time.monotonic() - saved > SAVE_EVERY_S:
            save(trajectory.state)
            saved = time.monotonic()
    save(trajectory.state)
    return trajectory.state


def record(run: TrainRun, state: dict) -> dict:
    """What the finished table's metadata keeps of a run (θ itself is left out)."""
    return {"problem": run.problem_obj.name, "problem_family": run.problem,
            "estimator": run.estimator, "seed": run.seed, "theta_label": run.theta_label,
            "steps": state["step"], "train_seconds": state["train_seconds"],
            "f_evals_per_step": state.get("f_evals_per_step"),
            "stopped": state.get("stopped"), "log": state["log"]}


def finished(state: dict | None, each: EachTraining) -> bool:
    """Whether a stored state is a run's end: its last step, or stopped by divergence."""
    return state is not None and bool(state.get("stopped")
                                      or state["step"] >= each.settings.steps)


def records(grid, store) -> list[dict]:
    """The finished runs, as the table's metadata keeps them."""
    return [record(run, store.read_json(run.name)) for run in grid.train_runs]

"""Training runs: θ moved by an optimizer with one estimator, and every listed estimator
measured at checkpoints along the way (Mohamed et al. 2020, §8, and their code).

A grid with a ``[training]`` table trains once per problem and starting θ (the entry's
``theta`` values are starting points) and measures its cells at each checkpoint::

    [training]
    direction = "maximize"       # required: "maximize" J = E[f] − penalty(θ) (an ELBO),
                                 # or "minimize" J = E[f] + penalty(θ) (a cost)
    optimizer = "sgd"            # "sgd" (default) or "adam" (β₁ = 0.9, β₂ = 0.999, ε = 1e-8)
    learning_rate = 0.001        # required
    schedule = "cosine"          # lr·cos(π/2 · t / steps) (Mohamed et al.), or "constant";
                                 # default: cosine for sgd, constant for adam
    steps = 5000                 # required
    estimator = "reparameterization"   # required: what trains (a name, label or table)
    n_samples = 50               # required: samples per training estimate
    checkpoints = [0, 1000, 5000]      # required: steps at which every estimator is measured
    log_every = 25               # steps between training-log rows (default: steps / 200)
    eval_samples = 1000          # draws behind each logged E[f] (default 1000)

``penalty`` is the problem's own (:class:`estimators.Problem`; the KL to the prior for
``logistic_regression``), with its exact gradient; without one, J = E[f].

**Same numbers after an interruption.** A checkpoint at step t measures θ after t
updates. Update t uses the estimate keyed (trajectory seed, t), the trajectory seed
derived from the run seed and the trajectory (problem, arguments, start), so the path is a
function of the grid alone. The state (step, θ, optimizer moments, θ at each checkpoint
reached, the log, and a stateful estimator's state, which each update's batch updates:
``Program.step``) is stored when a checkpoint is reached and when a run stops mid-way; a
resumed run continues from it. Optimizers are a few lines of float64 NumPy here, rather
than a library's, so that their whole state is a list of numbers that round-trips JSON
exactly.

**Training log**: a row every ``log_every`` steps and at every checkpoint and the last step:
``step``, ``learning_rate``, ``objective`` J(θ) (E[f] from ``eval_samples`` draws, keyed by
step, with its standard error ``objective_se``), ``expected_f``, ``penalty``, the problem's
diagnostics (``accuracy``), and ``train_seconds`` (estimating and updating so far, logs
excluded).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
import weakref

import numpy as np

import estimators as E
from bench import problem_specs

KEYS = ("direction", "optimizer", "learning_rate", "schedule", "steps", "estimator",
        "n_samples", "checkpoints", "log_every", "eval_samples")
REQUIRED = ("direction", "learning_rate", "steps", "estimator", "n_samples", "checkpoints")
DIRECTIONS = ("maximize", "minimize")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
REQUIRED_HINTS = {
    "direction": '"maximize" (J = E[f] − penalty, e.g. an ELBO) or "minimize" (a cost)',
    "learning_rate": "a positive number, e.g. 0.001",
    "steps": "the number of updates, a positive integer",
    "estimator": 'the estimator that trains, e.g. "reparameterization"',
    "n_samples": "samples per training estimate, a positive integer",
    "checkpoints": "a list of steps from 0 to steps at which every estimator is measured",
}
LOG_KEYS = ("step", "learning_rate", "objective", "objective_se", "expected_f", "penalty",
            "train_seconds")
"""The training log's own columns: diagnostics may not reuse these names."""
ADAM = (0.9, 0.999, 1e-8)  # β₁, β₂, ε (Kingma & Ba 2015)
LOG_ROWS = 200


def training_problem(shared: E.Problem, spec: str, kwargs: tuple, base_dir: str) -> E.Problem:
    """The problem instance a training run moves: ``shared`` itself, or for a problem on
    data this thread's own instance, whose minibatch a training run can move while the
    shared one is measured (a Dask worker may be a thread of this process)."""
    if shared.minibatches is None:
        return shared
    return problem_specs.get(spec, dict(kwargs), base_dir or None, private=True)


_COMPILED: "weakref.WeakSet[E.Program]" = weakref.WeakSet()
"""Programs whose training call has run once (compiled), so no update's time includes it."""


class TrainingError(ValueError):
    """Training cannot go on (a non-finite estimate, θ leaving its allowed range); the
    message names the step and what to change."""


@dataclasses.dataclass(frozen=True)
class Training:
    """A grid's ``[training]`` table, validated (module docstring)."""

    direction: str
    optimizer: str
    learning_rate: float
    schedule: str
    steps: int
    estimator: str          # canonical label
    n_samples: int
    checkpoints: tuple[int, ...]
    log_every: int
    eval_samples: int

    @property
    def sign(self) -> float:
        """+1 when maximizing E[f], -1 when minimizing."""
        return 1.0 if self.direction == "maximize" else -1.0

    def learning_rate_at(self, step: int) -> float:
        if self.schedule == "cosine":
            if step >= self.steps:  # cos(π/2) is 6e-17 in floating point
                return 0.0
            return self.learning_rate * math.cos(math.pi / 2 * step / self.steps)
        return self.learning_rate


def parse(table, fail, estimator_label) -> Training:
    """Validates a ``[training]`` table; ``fail(key, message)`` raises the grid's error and
    ``estimator_label(entry, key)`` turns a name, label or option table into one label."""
    if not isinstance(table, dict):
        fail("training", f"must be a table, [training], of the keys {', '.join(KEYS)}; got "
                         f"{table!r}.")

    def key(name):
        return f"training.{name}"

    for name in table:
        if name not in KEYS:
            fail(key(name), f"unknown key; allowed keys are {', '.join(KEYS)}.")
    for name in REQUIRED:
        if name not in table:
            fail(key(name), f"is required in a [training] table: {REQUIRED_HINTS[name]}.")
    direction = table["direction"]
    if direction not in DIRECTIONS:
        fail(key("direction"), f"must be \"maximize\" (J = E[f] − penalty, e.g. an ELBO) or "
                               f"\"minimize\" (J = E[f] + penalty, a cost), got {direction!r}.")
    optimizer = table.get("optimizer", "sgd")
    if optimizer not in OPTIMIZERS:
        fail(key("optimizer"), f"must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}.")
    schedule = table.get("schedule", "cosine" if optimizer == "sgd" else "constant")
    if schedule not in SCHEDULES:
        fail(key("schedule"), f"must be one of {', '.join(SCHEDULES)}, got {schedule!r}.")
    rate = table["learning_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) \
            or rate <= 0:
        fail(key("learning_rate"), f"must be a positive number, got {rate!r}.")
    steps = _positive(table["steps"], key("steps"), fail)
    n_samples = _positive(table["n_samples"], key("n_samples"), fail)
    eval_samples = _positive(table.get("eval_samples", 1000), key("eval_samples"), fail)
    if eval_samples < 2:
        fail(key("eval_samples"), f"must be at least 2 (its standard error needs two draws), "
                                  f"got {eval_samples}.")
    log_every = _positive(table.get("log_every", max(1, steps // LOG_ROWS)), key("log_every"),
                          fail)
    checkpoints = table["checkpoints"]
    if not isinstance(checkpoints, list) or not checkpoints:
        fail(key("checkpoints"), f"must be a non-empty list of steps from 0 to steps = {steps}, "
                                 f"got {checkpoints!r}.")
    for step in checkpoints:
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= steps:
            fail(key("checkpoints"), f"every checkpoint must be a whole step from 0 to steps = "
                                     f"{steps}, got {step!r}.")
    if len(set(checkpoints)) != len(checkpoints):
        fail(key("checkpoints"), f"lists a step twice: {checkpoints}.")
    label = estimator_label(table["estimator"], key("estimator"))
    return Training(direction=direction, optimizer=optimizer, learning_rate=float(rate),
                    schedule=schedule, steps=steps, estimator=label, n_samples=n_samples,
                    checkpoints=tuple(sorted(checkpoints)), log_every=log_every,
                    eval_samples=eval_samples)


def _positive(value, key, fail):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        fail(key, f"must be a positive integer, got {value!r}.")
    return value


def trajectory_key(problem: str, kwargs: tuple, start: tuple) -> str:
    """The identity of one training run of a grid: its problem, arguments and start."""
    return repr((problem, tuple(kwargs), tuple(start)))


def trajectory_name(key: str) -> str:
    """The stored state's file stem (``trajectory-<hash>``)."""
    return "trajectory-" + hashlib.sha256(key.encode()).hexdigest()[:20]


class Trajectory:
    """One training run: its state and how to advance it (module docstring).

    Args:
      problem: The :class:`estimators.Problem` trained.
      start: θ at step 0: any form the problem accepts, or an array already validated
        (:attr:`bench.grid.Cell.theta_array`), taken as it is.
      training: The :class:`Training` settings.
      seed: The run seed; the trajectory's own seeds derive from it and ``key``.
      key: :func:`trajectory_key` of the run.
      backend: The estimator program's backend.
      state: A stored state to continue from (default: step 0 at ``start``).
      estimator: The estimator that trains (default: ``training.estimator``).
      variance_replicates: R > 1: each log row also holds the variance of the training
        estimator at θ then, from R estimates on the problem's own minibatch, summed over
        each block (``variance:<block>``) and over all of θ (``variance``); 0: none.
    """

    def __init__(self, problem: E.Problem, start, training: Training, seed: int, key: str,
                 backend: str = "xla", state: dict | None = None, estimator: str | None = None,
                 variance_replicates: int = 0):
        self.problem, self.training, self.key = problem, training, key
        self.estimator = estimator or training.estimator
        self.backend, self.variance_replicates = backend, variance_replicates
        self._variance_program = None
        digest = hashlib.sha256(f"{seed}|train|{key}".encode()).digest()
        self.train_seed = int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
        self.log_seed = int.from_bytes(digest[4:8], "little") & 0x7FFFFFFF
        self.variance_seed = int.from_bytes(digest[8:12], "little") & 0x7FFFFFFF
        # A grid's cells bring θ validated once, as an array (bench.grid.Cell.theta_array).
        vector = start if isinstance(start, np.ndarray) else problem.theta_vector(start)
        self.program = E.program(self.estimator, problem, vector, training.n_samples,
                                 n_replicates=1, backend=backend)
        self.f_evals_per_step = self.program.estimator.f_evals_per_estimate(
            problem, vector, training.n_samples, training.n_samples)
        self.state = state if state is not None else {
            "key": key, "step": 0, "theta": vector.tolist(), "moments": None, "log": [],
            "checkpoints": {}, "train_seconds": 0.0,
            "estimator_state": (_stored(self.program.init_state(vector))
                                if self.program.stateful else None)}

    @property
    def step(self) -> int:
        return self.state["step"]

    @property
    def theta(self) -> np.ndarray:
        return np.asarray(self.state["theta"], dtype=np.float64)

    def theta_at(self, checkpoint: int) -> np.ndarray:
        """θ after ``checkpoint`` updates (a checkpoint already reached)."""
        return np.asarray(self.state["checkpoints"][str(checkpoint)], dtype=np.float64)

    def advance(self, to_step: int, stop=None, progress=None) -> bool:
        """Trains up to ``to_step`` updates; False if ``stop`` (an Event) was set first
        (the state then holds the last finished update).

        Raises:
          TrainingError: a non-finite estimate, or θ leaving the problem's bounds.
        """
        training, state = self.training, self.state
        if to_step < state["step"]:
            raise ValueError(f"training run {self.key}: asked for step {to_step}, but its "
                             f"state is already at step {state['step']}.")
        theta = self.theta
        moments = None if state["moments"] is None else [np.asarray(m) for m in
                                                         state["moments"]]
        estimator_state = _restored(state.get("estimator_state"))
        if self.program.stateful and estimator_state is None:  # stored by an older version
            estimator_state = self.program.init_state(theta)
        if state["step"] < to_step and self.program not in _COMPILED:  # compiles: not timed
            key = (self.train_seed, state["step"])
            if self.program.stateful:
                self.program.step(theta, key, estimator_state)
            else:
                self.program(theta, key)
            _COMPILED.add(self.program)
        try:
            return self._advance(to_step, stop, progress, theta, moments, estimator_state)
        finally:
            if self.problem.minibatches is not None:
                self.problem.minibatches.select_home()

    def _advance(self, to_step, stop, progress, theta, moments, estimator_state) -> bool:
        training, state = self.training, self.state
        data = self.problem.minibatches

        def keep():  # θ as JSON lists when stopping, not per step: θ may have 10⁵ values
            state["theta"] = theta.tolist()
            state["moments"] = None if moments is None else [m.tolist() for m in moments]
            if estimator_state is not None:
                state["estimator_state"] = _stored(estimator_state)

        try:
            while state["step"] < to_step:
                step = state["step"]
                self._log(step, theta, estimator_state=estimator_state)
                if stop is not None and stop.is_set():
                    return False
                theta, moments, estimator_state = self._one_update(step, theta, moments,
                                                                   estimator_state, data)
                if progress is not None and (step + 1) % 100 == 0:
                    progress(step + 1)
        finally:
            keep()
        if to_step in training.checkpoints:
            state["checkpoints"][str(to_step)] = state["theta"]
        if to_step in training.checkpoints or to_step == training.steps:
            self._log(to_step, theta, force=True, estimator_state=estimator_state)
        return True

    def _one_update(self, step, theta, moments, estimator_state, data):
        """One timed update: (θ, optimizer moments, estimator state) after it."""
        training, state = self.training, self.state
        started = time.perf_counter()
        if data is not None:  # a fresh minibatch, keyed by the step (resumes agree)
            data.select(data.for_step(self.train_seed, step), key=(self.train_seed, step))
        if self.program.stateful:  # the estimate, and the state updated on its batch
            estimates, new_state = self.program.step(theta, (self.train_seed, step),
                                                     estimator_state)
            estimate = estimates[0]  # [d]
        else:
            estimate, new_state = self.program(theta, (self.train_seed, step))[0], None  # [d]
        if not np.all(np.isfinite(estimate)):
            raise TrainingError(
                f"the training estimate at step {step} is not finite ({self.estimator} "
                f"at n_samples = {training.n_samples}); lower training.learning_rate or "
                "raise training.n_samples, and start a new run.")
        _, penalty_gradient = E.objective.penalty(self.problem, theta)
        if not np.all(np.isfinite(penalty_gradient)):
            raise TrainingError(
                f"the gradient of problem '{self.problem.name}''s penalty(theta) is not "
                f"finite at step {step}; fix the penalty, and start a new run.")
        ascent = training.sign * estimate - penalty_gradient  # improves J
        new_theta, new_moments = _update(training, theta, ascent, moments, step)
        try:  # read-only and known to the problem: the next step's calls do not check it again
            new_theta = self.problem.validated_theta(new_theta)
        except (ValueError, TypeError) as error:
            raise TrainingError(
                f"training left the allowed θ at step {step + 1} "
                f"({str(error).rstrip('.')}); the objective may improve all the way to "
                "the edge of θ's range (a scale → 0 when minimizing (x − k)²): lower "
                "training.learning_rate or the steps, and start a new run.") from None
        state["train_seconds"] += time.perf_counter() - started
        state["step"] = step + 1
        return new_theta, new_moments, (new_state if self.program.stateful
                                         else estimator_state)

    def _log(self, step: int, theta: np.ndarray, force: bool = False,
             estimator_state=None) -> None:
        log = self.state["log"]
        if (log and log[-1]["step"] >= step) or (step % self.training.log_every and not force):
            return
        if self.problem.minibatches is not None:  # logged on the problem's own minibatch
            self.problem.minibatches.select_home()
        values = E.objective.cost_at_draws(self.problem, theta, self.training.eval_samples,
                                           (self.log_seed, step))
        penalty, _ = E.objective.penalty(self.problem, theta)
        expected = float(values.mean())
        log.append({
            "step": step, "learning_rate": self.training.learning_rate_at(step),
            "objective": expected - self.training.sign * penalty,
            "objective_se": float(values.std(ddof=1) / math.sqrt(values.size)),
            "expected_f": expected, "penalty": penalty,
            **E.objective.diagnostics(self.problem, theta),
            **self._variance(step, theta, estimator_state),
            "train_seconds": self.state["train_seconds"]})

    def _variance(self, step: int, theta: np.ndarray, estimator_state) -> dict[str, float]:
        """The training estimator's variance at θ, summed per block and in all (class
        docstring); {} without ``variance_replicates``."""
        if self.variance_replicates < 2:
            return {}
        if self._variance_program is None:  # checked once: E.program checks each new θ
            self._variance_program = E.program(
                self.estimator, self.problem, theta, self.training.n_samples,
                n_replicates=self.variance_replicates, backend=self.backend)
        program = self._variance_program
        seed = (self.variance_seed, step)
        if program.stateful:  # every replicate holds the training run's one state
            replicated = _tree_map(lambda leaf: np.repeat(leaf, self.variance_replicates, 0),
                                   estimator_state)
            estimates = program(theta, seed, state=replicated)  # [R, d]
        else:
            estimates = program(theta, seed)  # [R, d]
        variance = estimates.var(axis=0, ddof=1)  # [d]
        blocks = np.asarray(self.problem.param_blocks)
        found = {"variance": float(variance.sum())}
        for block in dict.fromkeys(self.problem.param_blocks):
            found[f"variance:{block}"] = float(variance[blocks == block].sum())
        return found


def _tree_map(function, value):
    """``function`` on every array of a nested dict."""
    if isinstance(value, dict):
        return {name: _tree_map(function, item) for name, item in value.items()}
    return function(np.asarray(value))


def _stored(value):
    """A stateful estimator's state (nested dicts of arrays) as JSON: each array's dtype,
    shape and values (which JSON keeps exactly: float32 values are doubles)."""
    if isinstance(value, dict):
        return {name: _stored(item) for name, item in value.items()}
    array = np.asarray(value)
    return {"array": str(array.dtype), "shape": list(array.shape),
            "values": array.ravel().tolist()}


def _restored(stored):
    """The arrays of a :func:`_stored` state, bit for bit (None stays None)."""
    if stored is None:
        return None
    if set(stored) == {"array", "shape", "values"}:
        return np.asarray(stored["values"], dtype=stored["array"]).reshape(stored["shape"])
    return {name: _restored(item) for name, item in stored.items()}


def _update(training: Training, theta, ascent, moments, step):
    """One optimizer step along ``ascent`` (the direction that improves J)."""
    rate = training.learning_rate_at(step)
    if training.optimizer == "sgd":
        return theta + rate * ascent, None
    beta1, beta2, eps = ADAM
    first, second = moments if moments is not None else (np.zeros_like(theta),
                                                         np.zeros_like(theta))
    first = beta1 * first + (1 - beta1) * ascent
    second = beta2 * second + (1 - beta2) * ascent**2
    count = step + 1
    corrected = first / (1 - beta1**count), second / (1 - beta2**count)
    return theta + rate * corrected[0] / (np.sqrt(corrected[1]) + eps), [first, second]

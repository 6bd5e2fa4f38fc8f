"""The workloads that the asv suite and the pytest-benchmark gate (tests/benchmarks/) time.

Each builder returns a no-argument callable that runs one compiled call and returns its
result as a NumPy array, so timing it includes the device-to-host copy that every user of
``estimators.estimate`` pays, and nothing lazy is left unmeasured. Builders do not call
it: the caller warms up (compiles) where it wants compilation kept out of a timing.

Everything runs on problem ``seed_dependence`` (f = exp(θ|x|), p = N(θ, 1)) at θ = -1,
where every built-in estimator for continuous measures applies; the estimators for
discrete latents (ARM, DisARM, REBAR, the relaxations) run on ``bernoulli_toy`` (t = 0.45)
at p = 0.6 instead (:func:`problem_for`). A combination that cannot run (an estimator that
does not apply, a GPU that is not there) raises ``NotImplementedError``: asv's signal to
skip it.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import warnings

import numpy as np

import estimators as E
import tensorflow as tf  # after estimators: its TensorFlow settings come first

PROBLEM = "seed_dependence"
THETA = -1.0
SEED = 0

# Names, not the live registry: asv hands each benchmark process a parameter *index* into
# the lists it finds at import, so lists that differ between commits (estimators added
# over history) would file results under the wrong estimator. A name the benchmarked
# commit lacks is skipped; tests/benchmarks/test_asv_suite.py fails when a registered
# estimator is missing here.
ESTIMATORS = (
    "dependence", "measure_valued", "naive_mc", "reparameterization",
    "reparameterization_antithetic", "reparameterization_qmc", "score_function",
    "score_function_batch_optimal", "score_function_loo", "trapz",
    # Labels of option combinations (core v2); append only, never reorder.
    "score_function(control_variate=delta)", "reparameterization(control_variate=delta)",
    # Estimators for discrete latents (issue 12): timed on DISCRETE_PROBLEM.
    "arm", "disarm", "rebar", "gumbel_softmax", "straight_through",
    "arms", "arms_gaussian",  # issue 27
    "double_cv", "double_cv_learned", "rebar_learned", "relax",  # issue 27 (learned: at start)
    "vimco", "dreg", "stl",  # issue 27: timed on MULTI_SAMPLE_PROBLEM
    # issue 29: timed on CATEGORICAL_PROBLEM
    "indecater", "rao_blackwell", "unordered_set", "arsm", "reinmax", "gumbel_rao",
)
DISCRETE = ("arm", "disarm", "rebar", "gumbel_softmax", "straight_through", "arms",
            "arms_gaussian", "double_cv", "double_cv_learned", "rebar_learned", "relax")
DISCRETE_PROBLEM, DISCRETE_KWARGS, DISCRETE_THETA = "bernoulli_toy", {"t": 0.45}, 0.4054651081
CATEGORICAL = ("indecater", "rao_blackwell", "unordered_set", "arsm", "reinmax", "gumbel_rao")
# categorical_toy(C=10) at category 0 holding 90% of the mass (logit log 81).
CATEGORICAL_PROBLEM, CATEGORICAL_KWARGS = "categorical_toy", {"C": 10}
CATEGORICAL_THETA = (4.394449154672439,) + (0.0,) * 9
MULTI_SAMPLE = ("vimco", "dreg", "stl")
MULTI_SAMPLE_PROBLEM, MULTI_SAMPLE_KWARGS, MULTI_SAMPLE_THETA = "iwae_gaussian", {"K": 4}, \
    (0.0, 0.0)


# asv benchmarks every commit of a history with *this* suite, so it also drives commits
# from before core v2 (no E.GPUS / E.RNG_ALG, programs called with a key and a window).
GPUS = getattr(E, "GPUS", None)
if GPUS is None:  # pragma: no cover - older commits
    from estimators._tf import GPUS  # noqa: F811
RNG_ALG = getattr(E, "RNG_ALG", "philox")


def _stateless_normal(shape, seed, dtype=tf.float32):
    return tf.random.stateless_normal(shape, seed, dtype=dtype, alg=RNG_ALG)


# The normal sampler of the benchmarked commit (TensorFlow's before issue 15).
STANDARD_NORMAL = getattr(E, "standard_normal", _stateless_normal)


def problem() -> E.Problem:
    return E.problems.get(PROBLEM)


def problem_for(estimator: str) -> tuple[E.Problem, float]:
    """The problem and θ an estimator is timed on: ``bernoulli_toy`` at p = 0.6 for the
    estimators of binary latents, ``categorical_toy(C=10)`` at 90% on category 0 for those
    of categorical latents, a 4-sample IWAE bound for those of K-sample bounds, else
    ``seed_dependence`` at θ = -1."""
    if estimator.split("(")[0] in DISCRETE:
        return E.problems.get(DISCRETE_PROBLEM, **DISCRETE_KWARGS), DISCRETE_THETA
    if estimator.split("(")[0] in CATEGORICAL:
        return E.problems.get(CATEGORICAL_PROBLEM, **CATEGORICAL_KWARGS), CATEGORICAL_THETA
    if estimator.split("(")[0] in MULTI_SAMPLE:
        return E.problems.get(MULTI_SAMPLE_PROBLEM, **MULTI_SAMPLE_KWARGS), MULTI_SAMPLE_THETA
    return problem(), THETA


@contextlib.contextmanager
def skip_if_not_applicable(estimator: str):
    """Turns "no such estimator at this commit" and the library's "does not apply" into
    asv's "skip this combination"."""
    try:
        known = E.get_estimator(estimator) is not None if hasattr(E, "get_estimator") \
            else estimator in E.ESTIMATORS
    except ValueError:
        known = False
    if not known:
        raise NotImplementedError(f"no estimator {estimator!r} at this commit")
    try:
        yield
    except E.NotApplicableError as error:
        raise NotImplementedError(str(error)) from None


def device_name(device: str) -> str:
    """``"cpu"``/``"gpu"`` as a TensorFlow device, or NotImplementedError without a GPU."""
    if device == "gpu" and not GPUS:
        raise NotImplementedError("no GPU on this machine")
    return f"/{device.upper()}:0"


def core(estimator: str, n_samples: int, n_replicates: int, batch_size: int | None = None,
         backend: str = "xla", device: str = "cpu"):
    """R estimates from one call of the compiled program: ``() -> [R, d]``."""
    placement = device_name(device)
    with skip_if_not_applicable(estimator):
        timed, at = problem_for(estimator)
        cached = E.program(estimator, timed, at, n_samples, n_replicates, batch_size, backend)
    # A program of our own rather than the engine's cached one: it is traced under the
    # requested device, whichever device the engine would pick by default.
    program = E.Program(cached.estimator, timed, n_samples, n_replicates,
                        cached.batch_size, backend)
    if hasattr(program, "window"):
        program.window(at)  # computed once, outside any timing
        arguments = (at, SEED)
    else:  # pragma: no cover - commits before core v2
        from estimators import _rng, engine

        theta = timed.theta_vector(at)
        arguments = (theta, _rng.seed_pair(SEED),
                     engine.window_for(cached.estimator, timed, theta))

    def run():
        with tf.device(placement):
            return program(*arguments)

    return run


def f_evals(estimator: str, n_samples: int) -> int:
    """Evaluations of f behind one estimate of ``estimator`` on its timed problem."""
    with skip_if_not_applicable(estimator):
        timed, at = problem_for(estimator)
        return E.get_estimator(estimator).f_evals_per_estimate(timed, at, n_samples,
                                                               n_samples)


def draws_per_f(estimator: str) -> int:
    """Random values behind one evaluation of f on ``estimator``'s timed problem: K·D for
    a K-sample bound (its f is the bound of K samples of D values), else 1."""
    with skip_if_not_applicable(estimator):
        timed, at = problem_for(estimator)
    multi = timed.multi_sample
    return 1 if multi is None else multi.samples * multi.size


def rng_floor(n_samples: int, n_replicates: int, backend: str = "xla", device: str = "cpu"):
    """The cheapest program with the core's randomness: ``() -> [R]``.

    Draws ``[n, R]`` standard normals with the sampler estimators draw theirs with
    (``estimators.standard_normal``) and sums them per replicate, compiled like the core,
    so core time / floor time says how much an estimator costs beyond generating its
    random numbers.
    """
    placement = device_name(device)

    @tf.function(jit_compile=backend == "xla", input_signature=[tf.TensorSpec([2], tf.int32)])
    def draw_and_reduce(key):
        normals = STANDARD_NORMAL([n_samples, n_replicates], key)
        return tf.reduce_sum(normals, axis=0)

    key = tf.constant([SEED, 0], tf.int32)
    with tf.device(placement):
        compiled = _concrete(draw_and_reduce)

    def run():
        with tf.device(placement):
            return compiled(key).numpy()

    return run


def _concrete(function):
    """The traced function, called the way ``estimators.Program`` calls its own: directly,
    without tf.function's argument matching (~0.2 ms a call), so that the floor and the
    samplers are not charged a cost the core does not pay."""
    return function.get_concrete_function()


DRAWS = {
    "tf.random.stateless_normal": _stateless_normal,
    "estimators.standard_normal": STANDARD_NORMAL,
    "uniforms alone": lambda shape, seed, dtype=tf.float32: tf.random.stateless_uniform(
        shape, seed, dtype=dtype, alg=RNG_ALG),
}
"""The samplers :func:`draw_and_average` times: the one gradvar uses, TensorFlow's, and
Philox uniforms, the floor any sampler built on them stands on."""


def draw_and_average(sampler: str, n: int, dtype: str = "float32", backend: str = "xla"):
    """``() -> mean`` of ``n`` draws from ``DRAWS[sampler]``, compiled for ``backend``."""

    @tf.function(jit_compile=backend == "xla", input_signature=[tf.TensorSpec([2], tf.int32)])
    def run_compiled(key):
        return tf.reduce_mean(DRAWS[sampler]([n], key, tf.as_dtype(dtype)))

    key = tf.constant([SEED, 1], tf.int32)
    compiled = _concrete(run_compiled)
    return lambda: compiled(key).numpy()


def seconds(run, rounds: int) -> list[float]:
    """Wall times of ``rounds`` calls of ``run`` (call it once before, to compile)."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def alternating_seconds(runs: list, rounds: int) -> list[list[float]]:
    """``rounds`` rows of wall times, one of each of ``runs`` a row, in order, after one
    warm-up call of each: load from other work hits the runs of a row alike.

    Each timed call follows an untimed one of the same run: TensorFlow's and JAX's thread
    pools keep spinning for a while after a call, and on two cores they slowed whichever
    call came next (floor/core 0.61 against 0.84 without the warming call;
    docs/PERFORMANCE.md).
    """
    for run in runs:
        run()
    rows = []
    for _ in range(rounds):
        row = []
        for run in runs:
            run()  # absorbs the previous run's spinning threads
            row.append(seconds(run, 1)[0])
        rows.append(row)
    return rows


def alternating_medians(runs: list, rounds: int) -> tuple[float, ...]:
    """Median seconds of each of ``runs`` over :func:`alternating_seconds`' rounds."""
    rows = alternating_seconds(runs, rounds)
    return tuple(statistics.median(side) for side in zip(*rows))


def per_sample_variance(estimator: str, n_samples: int = 1000, n_replicates: int = 1000,
                        backend: str = "xla") -> float:
    """Variance of R estimates at a fixed seed, times n (comparable across n).

    The seed is fixed, so the number changes only when an estimator's draws or
    arithmetic change: a jump in asv history points at the commit that did it.
    """
    with skip_if_not_applicable(estimator), warnings.catch_warnings():
        # naive_mc and the relaxations are biased here by design; their variance is
        # still tracked.
        warnings.simplefilter("ignore", E.BiasedEstimatorWarning)
        timed, at = problem_for(estimator)
        estimates = E.estimate(estimator, timed, at, n_samples, n_replicates, seed=SEED,
                               backend=backend)
    return float(np.var(estimates[:, 0], ddof=1) * n_samples)


VAE_STEPS_PER_CALL = 20
"""Training steps per timed call of :func:`vae_steps` and its JAX counterpart: a
run's updates go by in a loop, so per-call overhead is shared as in training."""


def vae_steps(decoder: str, latents: int = 64, n_samples: int = 2, batch: int = 50):
    """``VAE_STEPS_PER_CALL`` training steps of the digits VAE (``bernoulli_vae``) as a
    ``[train_each]`` run takes them (:class:`bench.training.Trajectory`: a fresh minibatch,
    DisARM's estimate from ``n_samples`` antithetic pairs, Adam at 1e-3, θ checked), from
    the Glorot start: ``() -> None``; the first call compiles."""
    from bench import training

    problem = E.problems.get("bernoulli_vae", latents=latents, decoder=decoder, batch=batch)
    settings = training.Training(
        direction="maximize", optimizer="adam", learning_rate=1e-3, schedule="constant",
        steps=10**9, estimator="disarm", n_samples=n_samples, checkpoints=(),
        log_every=10**9, eval_samples=2)
    run = training.Trajectory(problem, "start", settings, SEED, f"vae-{decoder}")

    def steps():
        run.advance(run.step + VAE_STEPS_PER_CALL)

    return steps

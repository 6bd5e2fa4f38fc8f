"""The PPDL lab's setups (shared/lab/LAB.md), run through ``estimators.lab``.

Each setup knows how to run the lab's function, its exact value (closed form or
quadrature, computed here, not copied) and the standard error of a Monte Carlo result
(from the exact single-sample variance, by quadrature), so ``gradvar lab`` can say how
many standard errors each result lies from the truth.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
import time
from collections.abc import Callable

import numpy as np

import estimators as E
from estimators import lab, truth
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

MU_VALUES = (-50.0, -25.0, 0.0, 25.0, 50.0)


@dataclasses.dataclass(frozen=True)
class LabSetup:
    """One row of the lab's tables.

    Attributes:
      task: "T1" ... "T5".
      setup: What is computed, in words.
      lab_shows: The number the lab's notebook printed (one Monte Carlo draw).
      run: ``seed -> value`` calling the lab's function.
      exact: ``() -> exact value``.
      standard_error: ``() -> SE of run's result``, or None for deterministic setups.
      key: A stable name for the row ("t1_uniform", "t2_mc_-50", ...), which the report
        uses to redraw the lab's figures.
    """

    task: str
    setup: str
    lab_shows: float
    run: Callable[[int], float]
    exact: Callable[[], float]
    standard_error: Callable[[], float] | None = None
    key: str = ""


def t1_cost(x):
    return tf.exp(-0.01 * tf.abs(x)) * tf.cos(0.1 * x)


def t2_cost(x):
    return tf.exp(-0.05 * tf.abs(x))


def _exp_abs(x, theta):
    return tf.exp(theta * tf.abs(x))


def _fixed_measure(name, dist, cost, window):
    """A θ-free problem E_dist[cost], for the exact value of the T1 uniform setup."""
    return E.Problem(name=name, dist=lambda theta: dist, cost=lambda x, theta: cost(x),
                     window=window, breakpoints=(0.0,))


@functools.cache
def _normal_family(name: str, cost) -> E.Problem:
    """E_{N(μ, σ)}[cost] with θ = (μ, σ), window μ ± 12σ: one problem for every normal
    setup with this cost, so the truth traces its programs once, not once per setup."""
    return E.Problem(name=name, dist=lambda theta: tfd.Normal(theta[..., 0], theta[..., 1]),
                     cost=lambda x, theta: cost(x), param_names=("mu", "sigma"),
                     bounds={"sigma": (0.0, None)},
                     window=lambda v: (float(v[0] - 12 * v[1]), float(v[0] + 12 * v[1])),
                     breakpoints=(0.0,))


def _normal_value(name, cost, mu, sigma) -> float:
    """E_{N(μ, σ)}[cost] by quadrature (checked, as every truth)."""
    return truth.value(_normal_family(name, cost), [mu, sigma], "quadrature")


def _mc_standard_error(name, cost, mu, sigma, n):
    """SE of the mean of n draws of cost(x), x ~ N(μ, σ): sqrt((E f² - (E f)²) / n), by
    quadrature."""
    mean = _normal_value(name, cost, mu, sigma)
    second = _normal_value(f"{name}_squared", _squared(cost), mu, sigma)
    return math.sqrt(max(second - mean**2, 0.0) / n)


@functools.cache
def _squared(cost):
    """x -> cost(x)², one function per cost: ``_normal_family``'s cache is keyed by the
    cost, so the squared cost's problem is built (and traced) once too."""
    return lambda x: cost(x) ** 2


def _estimator_standard_error(problem, estimator, theta, n):
    """SE of an n-sample estimate: sqrt(exact per-sample variance / n)."""
    return math.sqrt(float(truth.per_sample_variance(problem, E.ESTIMATORS[estimator], theta)[0]) / n)


def _seed(seed, row):
    return tf.constant([seed, row], tf.int32)


def batches_loop(seed: int, n_calls: int = 1000, n_samples: int = 16) -> float:
    """The lab's T3 batches experiment: mean of ``n_calls`` eager calls of 16 samples."""
    dist, theta = tfd.Normal(1.0, 1.0), tf.Variable(-0.05)
    values = [float(lab.expectation_gradients(_exp_abs, theta, dist, n_samples,
                                              seed=tf.constant([seed, call], tf.int32)))
              for call in range(n_calls)]
    return float(np.mean(values))


@functools.cache
def lab_setups() -> tuple[LabSetup, ...]:
    """All setups of shared/lab/LAB.md, in the lab's order."""
    seed_fixed_0 = E.problems.get("seed_fixed")
    seed_fixed_1 = E.problems.get("seed_fixed", mu=1.0)
    dependence = E.problems.get("seed_dependence")
    uniform = tfd.Uniform(-100.0, 100.0)
    setups = [LabSetup(
        "T1", "trapz, f=exp(-0.01|x|)cos(0.1x), p=U(-100,100), 1,000 points", -0.01,
        run=lambda seed: float(lab.expected_value_trapz(t1_cost, uniform, (-100.0, 100.0), 1000)),
        exact=lambda: truth.value(_fixed_measure("t1", uniform, t1_cost, (-100.0, 100.0)),
                                  0.0, "quadrature"),
        key="t1_uniform")]
    for mu, shows in zip(MU_VALUES, (0.14, -0.54, 0.85, -0.54, 0.14)):
        normal = tfd.Normal(mu, 5.0)
        setups.append(LabSetup(
            "T1", f"trapz, same f, p=N({mu:g},5), range (-100,100), 1,000 points", shows,
            run=lambda seed, d=normal: float(lab.expected_value_trapz(t1_cost, d, (-100.0, 100.0))),
            exact=lambda m=mu: _normal_value("t1", t1_cost, m, 5.0),
            key=f"t1_normal_{mu:g}"))
    normal_1 = tfd.Normal(1.0, 1.0)
    exact_t2 = functools.partial(_normal_value, "t2", t2_cost, 1.0, 1.0)
    setups += [
        LabSetup("T2", "MC, f=exp(-0.05|x|), p=N(1,1), 10,000 samples", 0.94495,
                 run=lambda seed: float(lab.expected_value_mc(t2_cost, normal_1, 10_000,
                                                              seed=_seed(seed, 20))),
                 exact=exact_t2,
                 standard_error=lambda: _mc_standard_error("t2", t2_cost, 1.0, 1.0, 10_000),
                 key="t2_mc_normal_1"),
        LabSetup("T2", "trapz, same f and p, range (-10,10), 10,000 points", 0.94408,
                 run=lambda seed: float(lab.expected_value_trapz(t2_cost, normal_1, (-10.0, 10.0),
                                                                 10_000)),
                 exact=exact_t2, key="t2_trapz_normal_1"),
    ]
    for row, (mu, shows) in enumerate(zip(MU_VALUES, (0.08, 0.30, 0.83, 0.30, 0.08))):
        normal = tfd.Normal(mu, 5.0)
        exact = functools.partial(_normal_value, "t2", t2_cost, mu, 5.0)
        setups += [
            LabSetup("T2", f"MC, same f, p=N({mu:g},5), 10,000 samples", shows,
                     run=lambda seed, d=normal, r=row: float(lab.expected_value_mc(
                         t2_cost, d, 10_000, seed=_seed(seed, 21 + r))),
                     exact=exact,
                     standard_error=lambda m=mu: _mc_standard_error("t2", t2_cost, m, 5.0,
                                                                    10_000),
                     key=f"t2_mc_{mu:g}"),
            LabSetup("T2", f"trapz, same f, p=N({mu:g},5), range (-100,100), 10,000 points", shows,
                     run=lambda seed, d=normal: float(lab.expected_value_trapz(
                         t2_cost, d, (-100.0, 100.0), 10_000)),
                     exact=exact, key=f"t2_trapz_{mu:g}"),
        ]
    theta_t3 = -0.05
    setups += [
        LabSetup("T3", "grad, f=exp(θ|x|), θ=-0.05, p=N(0,1), 1,000 samples", 0.73847,
                 run=lambda seed: float(lab.expectation_gradients(
                     _exp_abs, tf.Variable(theta_t3), tfd.Normal(0.0, 1.0), 1000,
                     seed=_seed(seed, 30))),
                 exact=lambda: float(seed_fixed_0.true_gradient(theta_t3)[0]),
                 standard_error=lambda: _estimator_standard_error(seed_fixed_0, "naive_mc",
                                                                  theta_t3, 1000),
                 key="t3_normal_0"),
        LabSetup("T3", "same f, θ=-0.05, p=N(1,1), 16,000 samples in one call", 1.07131,
                 run=lambda seed: float(lab.expectation_gradients(
                     _exp_abs, tf.Variable(theta_t3), normal_1, 16_000, seed=_seed(seed, 31))),
                 exact=lambda: float(seed_fixed_1.true_gradient(theta_t3)[0]),
                 standard_error=lambda: _estimator_standard_error(seed_fixed_1, "naive_mc",
                                                                  theta_t3, 16_000),
                 key="t3_normal_1"),
        LabSetup("T3", "same, mean of 1,000 calls of 16 samples each", 1.07629,
                 run=lambda seed: batches_loop(seed + 1),
                 exact=lambda: float(seed_fixed_1.true_gradient(theta_t3)[0]),
                 standard_error=lambda: _estimator_standard_error(seed_fixed_1, "naive_mc",
                                                                  theta_t3, 16_000),
                 key="t3_batches"),
    ]
    for theta, shows, row in ((-1.0, 0.47678, 40), (-2.0, 0.16380, 41)):
        n = 10_000 if theta == -1.0 else 100_000
        label = ("T4", f"grad, f=exp(θ|x|), p=N(θ,1), θ=-1, range (-100,100), {n:,}") \
            if theta == -1.0 else \
            ("T5", f"T4's function at θ=-2, p=N(θ,1), range (-100,100), {n:,}")
        setups.append(LabSetup(
            *label, shows,
            run=lambda seed, t=theta, m=n, r=row: float(lab.gradients_dependence(
                _exp_abs, tf.Variable(t), lambda th: tfd.Normal(th, 1.0), m, (-100.0, 100.0),
                seed=_seed(seed, r))),
            exact=lambda t=theta: float(dependence.true_gradient(t)[0]),
            standard_error=lambda t=theta, m=n: _estimator_standard_error(
                dependence, "dependence", t, m),
            key=f"{label[0].lower()}_dependence"))
    setups.insert(len(setups) - 1, LabSetup(
        "T5", "reparam, f as above, x'~N(0,1), x=x'+θ, θ=-2, 100,000 samples", 0.16392,
        run=lambda seed: float(lab.gradients_reparameterization(
            _exp_abs, tf.Variable(-2.0), tfd.Normal(0.0, 1.0), 100_000,
            rep_f=lambda x, theta: x + theta, seed=_seed(seed, 50))),
        exact=lambda: float(dependence.true_gradient(-2.0)[0]),
        standard_error=lambda: _estimator_standard_error(dependence, "reparameterization",
                                                         -2.0, 100_000),
        key="t5_reparameterization"))
    return tuple(setups)


def run_lab(seed: int = 0) -> list[dict]:
    """Runs every setup: rows of task, key, setup, lab_shows, value, exact, se, error_se."""
    rows = []
    for setup in lab_setups():
        value, exact = setup.run(seed), setup.exact()
        se = setup.standard_error() if setup.standard_error else None
        rows.append({"task": setup.task, "key": setup.key, "setup": setup.setup,
                     "lab_shows": setup.lab_shows,
                     "value": value, "exact": exact, "se": se,
                     "error_se": (value - exact) / se if se else None})
    return rows


def batches_experiment(seed: int = 0, repeats: int = 20) -> dict:
    """The lab's batches experiment timed both ways in this process.

    1,000 estimates of 16 samples (f=exp(θ|x|), θ=-0.05, p=N(1,1)): the lab's Python
    loop of 1,000 eager ``expectation_gradients`` calls (timed once) against one call of
    ``estimators.estimate("naive_mc", ..., n_samples=16, n_replicates=1000)`` (median of
    ``repeats`` calls after a warm-up that compiles it).
    """
    problem = E.problems.get("seed_fixed", mu=1.0)

    def vectorized():
        return E.estimate("naive_mc", problem, -0.05, n_samples=16, n_replicates=1000, seed=seed)

    started = time.perf_counter()
    estimates = vectorized()
    compile_s = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        vectorized()
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    loop_mean = batches_loop(seed)
    loop_s = time.perf_counter() - started
    vector_s = statistics.median(times)
    return {"loop_s": loop_s, "vectorized_s": vector_s, "compile_s": compile_s,
            "speedup": loop_s / vector_s, "loop_mean": loop_mean,
            "vectorized_mean": float(estimates.mean()),
            "exact": float(problem.true_gradient(-0.05)[0])}

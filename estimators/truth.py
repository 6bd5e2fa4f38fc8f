"""Exact ground truth: values, gradients and per-sample variances.

For a problem E_{p(x|θ)}[f(x, θ)] this module gives, at one θ and in float64:

* the value and the gradient ∇θ E_p[f]: from the problem's closed form (gradient by
  autodiff) when it has one, else by integrating ``p f`` and ``∇θ (p f)`` over x;
* the exact mean and variance of an estimator's *single-sample* estimate g(x) (its
  ``per_sample`` surrogate differentiated in θ): ∫ p g dx and ∫ p g² dx - (∫ p g dx)².
  Pathwise estimators differentiate x along the implicit reparameterization path
  ∂x/∂θ = -∇θ F(x|θ) / p(x|θ) (Figurnov et al. 2018), which is TFP's path for its
  univariate families (for ``tfd.Normal`` it equals ∂(μ + σε)/∂θ);
* for estimators that are not a mean of iid ``per_sample`` terms, their own exact form
  (``Estimator.exact_moments``), built from the two integrators below:
  :func:`noise_moments` (the estimate of one unit, a sample or an antithetic pair, as a
  sum of independent blocks of noise, integrated over the noise) and
  :func:`leave_one_out_moments` (the leave-one-out baseline's U-statistic variance at
  batch size B, from one-dimensional moments of f and the score).

"Per-sample variance" always means ``n × Var(estimate from n samples)``: the variance of
one sample's estimate for iid averages, ``2 × Var(one pair's average)`` for antithetic
pairs, and ``B × Var(one batch's estimate)`` for the leave-one-out baseline at batch
size B (it depends on B, not on n). Randomized QMC has none (its variance is not
∝ 1/n) and raises NotImplementedError.

Continuous x: ``scipy.integrate.cubature`` (adaptive Gauss-Kronrod 21, vectorised: one
TensorFlow call per batch of nodes, and every component must meet EPSABS + EPSREL·|value|)
over the problem's window, split at its breakpoints; never over (-inf, inf), where
quadrature silently returns ~0 for a narrow density far from 0. Discrete x: a sum over the
integers in the window. Noise blocks: the same ``cubature`` (with its product rule in two
dimensions) over a box of ±12 standard units.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Callable

import numpy as np
from scipy import integrate

from estimators._tf import tf, tfd
from estimators.estimator import Estimator, NotApplicableError, cost
from estimators.problem import WINDOW_STDDEVS, Problem

EPSABS = 1e-11
EPSREL = 1e-10
CUBATURE_ATOL = 1e-11
CUBATURE_RTOL = 1e-9

_integrands: "weakref.WeakKeyDictionary[Problem, dict]" = weakref.WeakKeyDictionary()


class QuadratureWarning(UserWarning):
    """Adaptive quadrature did not reach its tolerance."""


def value(problem: Problem, theta, method: str = "auto") -> float:
    """Exact ``E_{p(x|θ)}[f(x, θ)]``.

    Args:
      problem: The problem.
      theta: θ as accepted by :meth:`Problem.theta_vector`.
      method: "closed_form", "quadrature" (integration or summation), or "auto" (closed
        form when the problem has one).
    """
    vector = problem.theta_vector(theta)
    if _use_closed_form(problem, method):
        return float(problem.exact_value(problem.unpack(tf.constant(vector))))
    return float(_integrate(problem, vector, "value", _value_integrand)[0])


def gradient(problem: Problem, theta, method: str = "auto") -> np.ndarray:
    """Exact ``∇θ E_{p(x|θ)}[f(x, θ)]`` as an array ``[d]`` (see :func:`value`)."""
    vector = problem.theta_vector(theta)
    if _use_closed_form(problem, method):
        variable = tf.constant(vector)
        with tf.GradientTape() as tape:
            tape.watch(variable)
            result = problem.exact_value(problem.unpack(variable))
        return tape.gradient(result, variable).numpy()
    return _integrate(problem, vector, "gradient", _gradient_integrand)


def single_sample_moments(problem: Problem, estimator: Estimator, theta,
                          batch_size: int | None = None):
    """Exact mean and per-sample variance ``([d], [d])`` of an estimator.

    For a mean of iid terms these are the moments of one sample's estimate, so an
    estimate from n samples has variance ``variance / n``. Estimators with their own
    exact form (``Estimator.exact_moments``) return ``n × Var(estimate from n samples)``
    for the n where that is constant (see the module docstring); ``batch_size`` is
    passed to them (the leave-one-out baseline needs it) and ignored otherwise.
    Deterministic estimators have variance zero.

    Raises:
      NotImplementedError: the estimator has no exact form (or needs ``batch_size``),
        or the distribution lacks what the pathwise derivative needs (a CDF).
    """
    vector = problem.theta_vector(theta)
    if estimator.exact_moments is not None:
        return estimator.exact_moments(problem, vector, batch_size)
    if estimator.deterministic:
        return gradient(problem, vector), np.zeros(problem.dim)
    if estimator.per_sample is None:
        raise NotImplementedError(f"{estimator.name} has no single-sample form to integrate.")
    if estimator.pathwise and problem.is_discrete(vector):
        raise NotImplementedError(f"{estimator.name} has no pathwise derivative on the "
                                  f"discrete problem '{problem.name}'.")
    moments = _integrate(problem, vector, ("moments", estimator.name),
                         lambda p: _moment_integrand(p, estimator))
    mean, second = moments[: problem.dim], moments[problem.dim:]
    return mean, np.maximum(second - mean**2, 0.0)


def per_sample_variance(problem: Problem, estimator: Estimator, theta,
                        batch_size: int | None = None) -> np.ndarray:
    """Exact ``n_samples × Var(estimate)`` ``[d]`` (see :func:`single_sample_moments`)."""
    return single_sample_moments(problem, estimator, theta, batch_size)[1]


def no_exact_form(reason: str) -> Callable:
    """An ``Estimator.exact_moments`` that raises NotImplementedError(reason)."""
    def exact_moments(problem, theta, batch_size):
        raise NotImplementedError(reason)
    return exact_moments


# -- estimates as functions of their noise --------------------------------------------------

NOISE_SPAN = WINDOW_STDDEVS
"""Noise blocks are integrated over ±this many standard units (the problems' window)."""


@dataclasses.dataclass(frozen=True, eq=False)
class NoiseBlock:
    """One independent block of the noise behind one unit of an estimate.

    The unit's θ-gradient estimate is the sum over blocks of ∇θ ``surrogate``; blocks
    are independent, so means and variances add.

    Attributes:
      low, high: The box the noise lives in (``k`` numbers each).
      density: ``noise [m, k] float64 -> [m]``, its density (TensorFlow ops).
      surrogate: ``(problem, dist, theta [m, d], noise [m, k]) -> [m]``, whose θ-gradient
        is the block's estimate; ``dist`` is p(x|θ) built from ``theta``.
      kinks: ``t -> [noise points]``: where the estimate has a kink when the cost has one
        at ``x = loc + scale · t`` (a problem breakpoint in standard units of a Normal p);
        the box is split there. Default: none.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    density: Callable
    surrogate: Callable
    kinks: Callable = lambda t: []


def noise_moments(problem: Problem, theta, batch_size=None, *, blocks, samples_per_unit=1):
    """Exact mean and per-sample variance of an estimate made of iid units of noise.

    One unit (one draw of every block) gives ``Σ_b ∇θ surrogate_b``; an estimate from
    n samples averages ``n / samples_per_unit`` such units, so the per-sample variance
    is ``samples_per_unit × Var(unit)``, whatever n and the batch size. Needs p(x|θ) to be
    a ``tfd.Normal`` (the blocks' kinks are placed in its standard units).
    """
    del batch_size  # the units are iid whatever the batching
    vector = problem.theta_vector(theta)
    dist = problem.distribution(vector)
    if not isinstance(dist, tfd.Normal):
        raise NotApplicableError(f"exact moments over Gaussian noise need a Normal p(x|θ), but "
                                 f"problem '{problem.name}' has a {type(dist).__name__}.")
    loc, scale = float(dist.loc), float(dist.scale)
    standard_kinks = [(b - loc) / scale for b in problem.breakpoints]
    mean, variance = np.zeros(problem.dim), np.zeros(problem.dim)
    for block in blocks:
        integrand = _compiled_noise(problem, block)
        points = [np.asarray(p, dtype=np.float64) for t in standard_kinks for p in block.kinks(t)
                  if np.all((np.asarray(block.low) < p) & (p < np.asarray(block.high)))]
        result = integrate.cubature(
            lambda v: integrand(tf.constant(v), tf.constant(vector)).numpy(),
            np.asarray(block.low, dtype=np.float64), np.asarray(block.high, dtype=np.float64),
            rule="gk21", rtol=CUBATURE_RTOL, atol=CUBATURE_ATOL, points=points or None)
        if result.status != "converged":
            warnings.warn(f"cubature for problem '{problem.name}' at theta={vector.tolist()} "
                          f"stopped with error estimate {np.max(result.error):.3g}",
                          QuadratureWarning, stacklevel=2)
        first, second = result.estimate[: problem.dim], result.estimate[problem.dim:]
        mean += first
        variance += np.maximum(second - first**2, 0.0)
    return mean, samples_per_unit * variance


def _compiled_noise(problem: Problem, block: NoiseBlock):
    cache = _integrands.setdefault(problem, {})
    if block not in cache:
        def integrand(noise, theta):
            theta_m = _tiled(theta, noise)
            with tf.GradientTape() as tape:
                tape.watch(theta_m)
                surrogate = block.surrogate(problem, _distribution(problem, theta_m), theta_m,
                                            noise)  # [m]
            single = tape.gradient(surrogate, theta_m,
                                   unconnected_gradients=tf.UnconnectedGradients.ZERO)  # [m, d]
            density = block.density(noise)[:, tf.newaxis]  # [m, 1]
            return tf.concat([density * single, density * single**2], axis=1)  # [m, 2d]

        cache[block] = tf.function(integrand, input_signature=[
            tf.TensorSpec([None, len(block.low)], tf.float64),
            tf.TensorSpec([problem.dim], tf.float64)])
    return cache[block]


# -- the leave-one-out baseline -------------------------------------------------------------

def leave_one_out_moments(problem: Problem, theta, batch_size):
    """Exact mean and per-sample variance of the leave-one-out score-function estimate.

    Within a batch of B draws the estimate is ``(1/B) Σ_i [(f_i - b_i) s_i + h_i]`` with
    ``b_i`` the mean of f over the other B-1 draws, ``s = ∇θ log p`` and ``h = ∇θ f``:
    a U-statistic of order 2 with kernel ``k(x, y) = ψ(x) - f(y) s(x)``, ``ψ = f s + h``.
    Its variance is ``2/(B(B-1)) · (2(B-2) ζ1 + ζ2)`` (Hoeffding) with
    ``ζ1 = Var(ψ - F s)/4``, F = E f (the large-batch limit is the score function with
    the constant baseline E f) and ``ζ2 = Var(k(x, y) + k(y, x))/4``; both reduce to
    one-dimensional moments of f, s and ψ, integrated over x. Returns
    ``B × Var(one batch's estimate)`` = ``n × Var(estimate from n samples)``.

    Raises:
      NotImplementedError: ``batch_size`` is None (the variance depends on it).
      ValueError: ``batch_size`` < 2.
    """
    if batch_size is None:
        raise NotImplementedError(
            "the leave-one-out baseline's variance depends on the batch size; pass "
            "batch_size=B to truth.per_sample_variance")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2, got {batch_size!r}.")
    size = int(batch_size)
    vector = problem.theta_vector(theta)
    moments = _integrate(problem, vector, "score_terms", _score_terms_integrand)
    f1, f2 = moments[0], moments[1]
    s2, psi1, psi2, psi_s, f_s = moments[2:].reshape(5, problem.dim)
    zeta1 = (psi2 - 2 * f1 * psi_s + f1**2 * s2 - psi1**2) / 4
    zeta2 = (2 * psi2 - 2 * psi1**2 - 4 * f1 * psi_s + 2 * f2 * s2 + 2 * f_s**2) / 4
    batch_variance = 2.0 / (size * (size - 1)) * (2 * (size - 2) * zeta1 + zeta2)
    return psi1, size * np.maximum(batch_variance, 0.0)


# -- integrands: (x [m], theta [d]) -> [m, k], float64 ------------------------------------

def _tiled(theta, x):
    return tf.tile(theta[tf.newaxis, :], [tf.shape(x)[0], 1])  # [m, d]


def _value_integrand(problem):
    def integrand(x, theta):
        theta_m = _tiled(theta, x)
        density = _distribution(problem, theta_m).prob(x)  # [m]
        return (density * cost(problem, x, theta_m))[:, tf.newaxis]  # [m, 1]
    return integrand


def _gradient_integrand(problem):
    def integrand(x, theta):
        theta_m = _tiled(theta, x)
        with tf.GradientTape() as tape:
            tape.watch(theta_m)
            weighted = _distribution(problem, theta_m).prob(x) * cost(problem, x, theta_m)
        # Row i depends only on theta_m[i], so the gradient of the sum is per-row.
        return tape.gradient(weighted, theta_m,
                             unconnected_gradients=tf.UnconnectedGradients.ZERO)  # [m, d]
    return integrand


def _moment_integrand(problem, estimator):
    def integrand(x, theta):
        theta_m = _tiled(theta, x)
        with tf.GradientTape() as tape:
            tape.watch(theta_m)
            dist = _distribution(problem, theta_m)
            point = _implicit_path(dist, x) if estimator.pathwise else x
            surrogate = estimator.per_sample(problem, dist, point, theta_m)  # [m]
        single = tape.gradient(surrogate, theta_m,
                               unconnected_gradients=tf.UnconnectedGradients.ZERO)  # [m, d]
        density = tf.stop_gradient(dist.prob(x))[:, tf.newaxis]  # [m, 1]
        return tf.concat([density * single, density * single**2], axis=1)  # [m, 2d]
    return integrand


def _score_terms_integrand(problem):
    """p · [f, f², s², ψ, ψ², ψ s, f s] with s = ∇θ log p, ψ = f s + ∇θ f: [m, 2 + 5d]."""
    def integrand(x, theta):
        theta_m = _tiled(theta, x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(theta_m)
            dist = _distribution(problem, theta_m)
            log_prob = dist.log_prob(x)  # [m]
            values = cost(problem, x, theta_m)  # [m]
        zero = tf.UnconnectedGradients.ZERO
        score = tape.gradient(log_prob, theta_m, unconnected_gradients=zero)  # [m, d]
        cost_gradient = tape.gradient(values, theta_m, unconnected_gradients=zero)  # [m, d]
        f = values[:, tf.newaxis]  # [m, 1]
        psi = f * score + cost_gradient  # [m, d]
        density = tf.stop_gradient(dist.prob(x))[:, tf.newaxis]  # [m, 1]
        terms = [f, f**2, score**2, psi, psi**2, psi * score, f * score]
        return density * tf.concat(terms, axis=1)  # [m, 2 + 5d]
    return integrand


def _distribution(problem, theta_m):
    """``p(x|θ)`` in float64, rebuilding one that ignores θ's dtype (``tfd.Normal(0., 1.)``)."""
    dist = problem.dist(problem.unpack(theta_m))
    if dist.dtype in (tf.float64, tf.int32, tf.int64):
        return dist
    def widen(value):
        floating = isinstance(value, float) or (tf.is_tensor(value) and value.dtype.is_floating)
        return tf.cast(value, tf.float64) if floating else value
    try:
        return type(dist)(**{k: widen(v) for k, v in dist.parameters.items()})
    except Exception as error:  # noqa: BLE001 - any failure means: cannot rebuild
        raise ValueError(f"problem '{problem.name}': dist(theta) returned a {dist.dtype.name} "
                         f"{type(dist).__name__} for float64 θ and it could not be rebuilt in "
                         "float64 for exact values; build it from θ's dtype, e.g. "
                         "tfd.Normal(tf.zeros_like(theta), 1.).") from error


def _implicit_path(dist, x):
    """x with value x and derivative ∂x/∂θ = -∇θ F(x|θ) / p(x|θ)."""
    shifted = -dist.cdf(x) / tf.stop_gradient(dist.prob(x))
    return x + (shifted - tf.stop_gradient(shifted))


# -- integration ---------------------------------------------------------------------------

def _use_closed_form(problem: Problem, method: str) -> bool:
    if method not in ("auto", "closed_form", "quadrature"):
        raise ValueError(f"method must be 'auto', 'closed_form' or 'quadrature', got {method!r}.")
    if method == "closed_form" and problem.exact_value is None:
        raise ValueError(f"problem '{problem.name}' has no closed form; use method='quadrature'.")
    return problem.exact_value is not None and method != "quadrature"


def _compiled(problem: Problem, key, build):
    cache = _integrands.setdefault(problem, {})
    if key not in cache:
        cache[key] = tf.function(build(problem), input_signature=[
            tf.TensorSpec([None], tf.float64), tf.TensorSpec([problem.dim], tf.float64)])
    return cache[key]


def _integrate(problem: Problem, vector: np.ndarray, key, build) -> np.ndarray:
    integrand = _compiled(problem, key, build)
    theta = tf.constant(vector, tf.float64)
    low, high = problem.integration_window(vector)
    if problem.is_discrete(vector):
        support = np.arange(np.ceil(low), np.floor(high) + 1.0)
        return integrand(tf.constant(support), theta).numpy().sum(axis=0)

    def at(x):  # x: [m, 1] -> [m, k]; one call evaluates a whole batch of nodes
        return integrand(tf.constant(x[:, 0]), theta).numpy()

    points = [np.array([b]) for b in problem.breakpoints if low < b < high] or None
    result = integrate.cubature(at, np.array([low]), np.array([high]), rule="gk21",
                                rtol=EPSREL, atol=EPSABS, points=points)
    if result.status != "converged":
        warnings.warn(f"quadrature for problem '{problem.name}' at theta={vector.tolist()} "
                      f"stopped with error estimate {np.max(result.error):.3g}",
                      QuadratureWarning, stacklevel=3)
    return np.asarray(result.estimate, dtype=np.float64)

"""Exact ground truth: values, gradients and per-sample variances.

For a problem E_{p(x|θ)}[f(x, θ)] this module gives, at one θ and in float64:

* the value and the gradient ∇θ E_p[f]: from the problem's closed form (gradient by
  autodiff) when it has one, else by integrating ``p f`` and ``∇θ (p f)`` over x;
* the exact mean and variance of an estimator's *single-sample* estimate g(x) (its
  ``per_sample`` surrogate differentiated in θ): ∫ p g dx and ∫ p g² dx - (∫ p g dx)².
  Pathwise estimators differentiate x along the implicit reparameterization path
  ∂x/∂θ = -∇θ F(x|θ) / p(x|θ) (Figurnov et al. 2018), which is TFP's path for its
  univariate families (for ``tfd.Normal`` it equals ∂(μ + σε)/∂θ).

Continuous x: ``scipy.integrate.quad_vec`` (adaptive Gauss-Kronrod) over the problem's
window with its breakpoints; never over (-inf, inf), where quadrature silently returns
~0 for a narrow density far from 0. Discrete x: a sum over the integers in the window.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np
from scipy import integrate

from estimators._tf import tf
from estimators.estimator import Estimator, cost
from estimators.problem import Problem

EPSABS = 1e-11
EPSREL = 1e-10

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


def single_sample_moments(problem: Problem, estimator: Estimator, theta):
    """Exact mean and variance ``([d], [d])`` of an estimator's one-sample estimate.

    An estimate from n samples is the mean of n such iid terms, so its variance is
    ``variance / n``. Deterministic estimators have variance zero.

    Raises:
      NotImplementedError: the estimator has no single-sample form, or the
        distribution lacks what the pathwise derivative needs (a CDF).
    """
    vector = problem.theta_vector(theta)
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


def per_sample_variance(problem: Problem, estimator: Estimator, theta) -> np.ndarray:
    """Exact variance ``[d]`` of one sample's estimate (``n_samples ×`` the estimate's)."""
    return single_sample_moments(problem, estimator, theta)[1]


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

    def at(x):
        return integrand(tf.constant([x], tf.float64), theta).numpy()[0]

    points = [b for b in problem.breakpoints if low < b < high] or None
    result, error, info = integrate.quad_vec(
        at, low, high, epsabs=EPSABS, epsrel=EPSREL, norm="max", points=points,
        full_output=True)
    if not info.success:
        warnings.warn(f"quadrature for problem '{problem.name}' at theta={vector.tolist()} "
                      f"stopped with error estimate {error:.3g} ({info.message})",
                      QuadratureWarning, stacklevel=3)
    return np.asarray(result, dtype=np.float64)

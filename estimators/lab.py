"""The PPDL lab's five functions (lab 06.01.01, "Expectations, Gradients and
Reparameterization Trick"), with the lab's names and signatures.

A student's notebook code runs against these unchanged. They are written the way the lab
asks: TensorFlow ops only, ``tf.GradientTape`` for gradients and ``tfp.math.trapz`` for
the trapezoidal rule. Each also takes an optional ``seed`` (an int32 pair, or None for
TensorFlow's global RNG) so results can be reproduced.

``f`` is a Python or ``tf.function`` callable; ``dist`` a ``tfd.Distribution``;
``theta`` a scalar ``tf.Variable`` or tensor. For the vectorized, compiled versions used
by the benchmark see :func:`estimators.estimate`.

Example (the lab's T5):

>>> import tensorflow as tf, tensorflow_probability as tfp
>>> from estimators.lab import gradients_reparameterization
>>> f = lambda x, theta: tf.exp(theta * tf.abs(x))
>>> g = gradients_reparameterization(f, tf.Variable(-2.0), tfp.distributions.Normal(0., 1.),
...                                  100_000, rep_f=lambda x, theta: x + theta, seed=(1, 2))
>>> round(float(g), 2)   # exact: 0.166655
0.17
"""

from __future__ import annotations

from estimators._runtime import tf, tfp

__all__ = [
    "expected_value_trapz", "expected_value_mc", "expectation_gradients",
    "gradients_dependence", "gradients_reparameterization",
]


def expected_value_trapz(f, dist, integration_range, n_points=1000):
    """T1: E_p[f] = ∫ p(x) f(x) dx by the trapezoidal rule.

    Args:
      f: Callable ``x -> f(x)``.
      dist: A ``tfd.Distribution`` with a density.
      integration_range: ``(low, high)``.
      n_points: Number of evenly spaced points of ``integration_range``.

    Returns:
      A scalar tensor.
    """
    low, high = integration_range
    x = tf.linspace(tf.cast(low, dist.dtype), tf.cast(high, dist.dtype), n_points)
    return tfp.math.trapz(dist.prob(x) * f(x), x)


def expected_value_mc(f, dist, n_samples, seed=None):
    """T2: E_p[f] by the plain Monte Carlo mean of f over ``n_samples`` draws of ``dist``."""
    return tf.reduce_mean(f(dist.sample(n_samples, seed=seed)))


def expectation_gradients(f, theta, dist, n_samples, seed=None):
    """T3: ∇θ E_p[f(x, θ)] for p independent of θ: the MC mean of ∇θ f(x, θ).

    Args:
      f: Callable ``(x, theta) -> f(x, θ)``.
      theta: Scalar ``tf.Variable`` or tensor.
      dist: A ``tfd.Distribution`` that does not depend on θ.
      n_samples: Number of draws.
      seed: Optional stateless seed (pair of ints).
    """
    theta = _watchable(theta)
    x = dist.sample(n_samples, seed=seed)
    with tf.GradientTape() as tape:
        tape.watch(theta)
        expectation = tf.reduce_mean(f(x, theta))
    return tape.gradient(expectation, theta)


def gradients_dependence(f, theta, dist_f, n_samples, integration_range, seed=None):
    """T4: ∇θ E_{p(x|θ)}[f(x, θ)] when p depends on θ, by the product rule.

    ∇θ E = ∫ ∇θ p(x|θ) f(x, θ) dx (trapezoidal rule, ``n_samples`` points of
    ``integration_range``) + E_p[∇θ f(x, θ)] (Monte Carlo, ``n_samples`` draws).

    Args:
      f: Callable ``(x, theta) -> f(x, θ)``.
      theta: Scalar ``tf.Variable`` or tensor.
      dist_f: Callable ``theta -> tfd.Distribution``.
      n_samples: Grid points and Monte Carlo draws.
      integration_range: ``(low, high)``.
      seed: Optional stateless seed (pair of ints).
    """
    theta = _watchable(theta)
    low, high = integration_range
    with tf.GradientTape() as tape:
        tape.watch(theta)
        dist = dist_f(theta)
        grid = tf.linspace(tf.cast(low, dist.dtype), tf.cast(high, dist.dtype), n_samples)
        measure_part = tfp.math.trapz(dist.prob(grid) * tf.stop_gradient(f(grid, theta)), grid)
        x = tf.stop_gradient(dist.sample(n_samples, seed=seed))
        cost_part = tf.reduce_mean(f(x, theta))
        total = measure_part + cost_part
    return tape.gradient(total, theta)


def gradients_reparameterization(f, theta, dist, n_samples, rep_f, seed=None):
    """T5: the pathwise estimator: x = rep_f(x', θ) with x' ~ ``dist`` (θ-free).

    Returns the MC mean of ∇θ f(rep_f(x', θ), θ).

    Args:
      f: Callable ``(x, theta) -> f(x, θ)``.
      theta: Scalar ``tf.Variable`` or tensor.
      dist: The θ-free base distribution of x'.
      n_samples: Number of draws.
      rep_f: Callable ``(x', theta) -> x``, differentiable in θ.
      seed: Optional stateless seed (pair of ints).
    """
    theta = _watchable(theta)
    base = dist.sample(n_samples, seed=seed)
    with tf.GradientTape() as tape:
        tape.watch(theta)
        expectation = tf.reduce_mean(f(rep_f(base, theta), theta))
    return tape.gradient(expectation, theta)


def _watchable(theta):
    if isinstance(theta, tf.Variable):
        return theta
    return tf.convert_to_tensor(theta, dtype_hint=tf.float32)

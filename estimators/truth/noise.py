"""Exact moments of estimates written as functions of their noise.

The antithetic and measure-valued estimators are not means of iid ``per_sample`` terms in
x; they are means of iid *units* of noise (an antithetic pair, one (W, M, U) draw). One
unit's estimate is a sum over independent blocks of noise of ∇θ ``surrogate``, so its
mean and variance are integrals over each block, done here by ``scipy.integrate.cubature``
(with its product rule in two dimensions) over a box of ±12 standard units for a scalar
Normal (:func:`noise_moments`), or over any box, e.g. the unit square of the uniforms behind
the discrete estimators (:func:`block_moments`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np
from scipy import integrate

from estimators import measure
from estimators._runtime import tf
from estimators.truth.integrate import QuadratureWarning, _compiled
from estimators.truth.integrands import measure64

NOISE_SPAN = measure.WINDOW_STDDEVS
"""Noise blocks are integrated over ±this many standard units."""

CUBATURE_ATOL = 1e-11
CUBATURE_RTOL = 1e-9


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


def standard_normal_density(z):
    """φ(z) in TensorFlow ops."""
    return tf.exp(-0.5 * z**2) / np.sqrt(2.0 * np.pi)


def mirrored(t: float) -> list[np.ndarray]:
    """A kink at ``loc ± scale · v`` for a noise v > 0: ``v = |t|`` (``NoiseBlock.kinks``)."""
    return [np.array([abs(t)])]


def noise_moments(problem, theta, batch_size=None, *, blocks, samples_per_unit=1):
    """Exact mean and per-sample variance ``([d], [d])`` of an estimate made of iid units.

    One unit (one draw of every block) gives ``Σ_b ∇θ surrogate_b``; an estimate from n
    samples averages ``n / samples_per_unit`` units, so the per-sample variance is
    ``samples_per_unit × Var(unit)``, whatever n and the batch size.

    Raises:
      NotImplementedError: p(x|θ) is not a scalar ``tfd.Normal`` (the blocks' kinks are
        placed in its standard units, and the noise is one-dimensional).
    """
    del batch_size  # the units are iid whatever the batching
    vector = problem.theta_vector(theta)
    dist = problem.distribution(vector)
    if measure.event_rank(dist) != 0 or not measure.is_normal_family(dist):
        raise NotImplementedError(
            f"exact moments over the noise need a scalar Normal p(x|θ), but problem "
            f"'{problem.name}' has {type(dist).__name__} with event shape "
            f"{dist.event_shape.as_list()}")
    loc, scale = (float(v) for v in measure.location_scale(dist))
    standard_kinks = [(b - loc) / scale for b in problem.breakpoints]
    mean, variance = np.zeros(problem.dim), np.zeros(problem.dim)
    for block in blocks:
        block_mean, block_variance = block_moments(
            problem, vector, block, [p for t in standard_kinks for p in block.kinks(t)])
        mean += block_mean
        variance += block_variance
    return mean, samples_per_unit * variance


def block_moments(problem, vector, block: NoiseBlock, points=()):
    """Mean and variance ``([d], [d])`` of one block's estimate ∇θ ``surrogate`` at θ
    ``vector``, by cubature over its box, split at ``points`` (noise values where the
    estimate jumps or has a kink; those outside the box are ignored)."""
    first, second = block_integrals(problem, vector, block, points)
    return first, np.maximum(second - first**2, 0.0)


def block_integrals(problem, vector, block: NoiseBlock, points=(), low=None, high=None):
    """∫ density · ĝ and ∫ density · ĝ² ``([d], [d])`` of a block's estimate ĝ over its box,
    or over the part ``low`` … ``high`` of it (raw moments restricted to that part)."""
    integrand = _compiled_block(problem, block)
    low = np.asarray(block.low if low is None else low, np.float64)
    high = np.asarray(block.high if high is None else high, np.float64)
    points = [np.asarray(p, dtype=np.float64) for p in points]
    points = [p for p in points if np.all((low < p) & (p < high))]
    result = integrate.cubature(
        lambda v: integrand(tf.constant(v), tf.constant(vector)).numpy(), low, high,
        rule="gk21", rtol=CUBATURE_RTOL, atol=CUBATURE_ATOL, points=points or None)
    if result.status != "converged":
        warnings.warn(f"cubature for problem '{problem.name}' at theta={vector.tolist()} "
                      f"stopped with error estimate {np.max(result.error):.3g}",
                      QuadratureWarning, stacklevel=3)
    return result.estimate[: problem.dim], result.estimate[problem.dim:]


def _compiled_block(problem, block: NoiseBlock):
    cache = _compiled.setdefault(problem, {})
    if block not in cache:
        def integrand(noise, theta):
            theta_m = tf.tile(theta[tf.newaxis, :], [tf.shape(noise)[0], 1])  # [m, d]
            with tf.GradientTape() as tape:
                tape.watch(theta_m)
                surrogate = block.surrogate(problem, measure64(problem, theta_m), theta_m,
                                            noise)  # [m]
            single = tape.gradient(surrogate, theta_m,
                                   unconnected_gradients=tf.UnconnectedGradients.ZERO)  # [m, d]
            density = block.density(noise)[:, tf.newaxis]  # [m, 1]
            return tf.concat([density * single, density * single**2], axis=1)  # [m, 2d]

        cache[block] = tf.function(integrand, input_signature=[
            tf.TensorSpec([None, len(block.low)], tf.float64),
            tf.TensorSpec([problem.dim], tf.float64)])
    return cache[block]

"""Sampling schemes: how the n draws behind one batch estimate are produced.

Every scheme returns draws ``x`` of shape ``[n, R, *event]`` for a measure p(x|θ) with
one distribution per replicate, and says how the per-draw surrogate terms ``[n, R]``
are averaged into one estimate per replicate. With ``pathwise=True`` the draws keep
their path to θ (for the pathwise identity); otherwise they are cut from θ.

* ``iid``: independent draws, ``dist.sample`` (TFP's reparameterized path when pathwise).
* ``antithetic``: pairs (loc + scale·ε, loc - scale·ε), ε ~ N(0, I), for Normal families
  (Mohamed et al. 2020, §7.2, coupling). The pair average removes the part of the
  estimate that is odd in ε: a large gain when it is nearly monotone in ε, a loss (up to
  2x) when it is even. The batch size must be even.
* ``qmc``: randomized quasi-Monte Carlo for Normal families: the first n points of the
  Sobol sequence in D dimensions, shifted by one uniform vector per replicate and batch
  modulo 1 (Cranley & Patterson 1976), mapped through loc + scale·Φ⁻¹(u). Every point is
  uniform, so estimates stay unbiased; the points are stratified, so the variance falls
  faster than 1/n (there is no per-sample variance). Uniforms and Φ⁻¹ are computed in
  float64, u kept in [2⁻⁵³, 1 - 2⁻⁵³] (a tail beyond ±8.3 standard units, mass 1e-16,
  is never drawn).

Antithetic and QMC draws are built from the Normal's loc and scale directly, so θ may
enter them in any differentiable way (``estimators.measure.location_scale``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from estimators import _rng, measure, truth
from estimators._runtime import tf
from estimators.errors import NotApplicableError

EDGE = 2.0**-53


@dataclasses.dataclass(frozen=True)
class Sampling:
    """A sampling scheme (module docstring).

    Attributes:
      name: "iid", "antithetic" or "qmc".
      draw: ``(problem, dist, theta, n, key, pathwise) -> x [n, R, *event]``.
      mean: ``terms [n, R] -> [R]``, the estimate's average over draws.
      check: ``(label, problem, dist, batch_size) -> None``, raising NotApplicableError.
      iid_units: Whether the estimate is a mean of iid units (pairs, for antithetic),
        so that n × variance does not depend on n (not so for QMC).
      summary: One line for listings.
      min_batch: Smallest batch it can draw (antithetic pairs: 2).
      through_sample: Draws through ``dist.sample``, so pathwise draws need TFP's
        reparameterization of p (the others build draws from a Normal's loc and scale).
      exact_moments: ``(problem, θ [d], batch_size, per_sample, pathwise, label) ->
        (mean, per-sample variance)`` of an estimate whose single draws have surrogate
        ``per_sample``, drawn by this scheme; None for iid draws (integrated over x by
        :func:`estimators.truth.integrate_per_sample`). Raises NotImplementedError
        where there is no exact form.
    """

    name: str
    draw: Callable
    mean: Callable
    check: Callable
    iid_units: bool
    summary: str
    min_batch: int = 1
    exact_moments: Callable | None = None
    through_sample: bool = False


def _iid_draw(problem, dist, theta, n, key, pathwise):
    x = dist.sample(measure.sample_shape(dist, n, tf.shape(theta)[0]), seed=key)
    return x if pathwise else tf.stop_gradient(x)


def _mean(terms):
    return tf.reduce_mean(terms, axis=0)


def _no_check(label, problem, dist, batch_size):
    del label, problem, dist, batch_size


def require_normal(label: str, problem, dist, what: str) -> None:
    """NotApplicableError unless p(x|θ) is a Normal family with diagonal covariance."""
    if not measure.is_normal_family(dist):
        raise NotApplicableError(
            f"{label} supports only a Normal p(x|θ) (tfd.Normal, tfd.MultivariateNormalDiag "
            f"or tfd.Independent(tfd.Normal)), as it {what}, but problem '{problem.name}' "
            f"has a {type(dist).__name__}.")


def _location_scale(dist, theta):
    loc, scale = measure.location_scale(dist)
    if loc.shape.rank == 0 or (dist.batch_shape.rank == 0 and loc.shape.rank
                               == dist.event_shape.rank):
        # A measure written without θ: give it the replicate axis.
        replicates = tf.shape(theta)[:1]
        shape = tf.concat([replicates, tf.shape(loc)], 0)
        loc, scale = tf.broadcast_to(loc, shape), tf.broadcast_to(scale, shape)
    return loc, scale


def _antithetic_draw(problem, dist, theta, n, key, pathwise):
    loc, scale = _location_scale(dist, theta)  # [R, *event]
    eps = _rng.normal(tf.concat([[n // 2], tf.shape(loc)], 0), key,
                      loc.dtype)  # [n/2, R, *event]
    x = tf.concat([loc + scale * eps, loc - scale * eps], axis=0)  # [n, R, *event]
    return x if pathwise else tf.stop_gradient(x)


def _antithetic_mean(terms):
    half = tf.shape(terms)[0] // 2
    return tf.reduce_mean(0.5 * (terms[:half] + terms[half:]), axis=0)


def _antithetic_check(label, problem, dist, batch_size):
    require_normal(label, problem, dist, "draws antithetic pairs (loc ± scale·ε)")
    if batch_size % 2:
        raise NotApplicableError(f"{label} draws antithetic pairs (ε, -ε), so batch_size "
                                 f"must be even, got {batch_size}.")


@functools.lru_cache(maxsize=64)
def sobol_points(n: int, dim: int = 1) -> np.ndarray:
    """The first n points ``[n, dim]`` of the Sobol sequence, origin included
    (``tf.math.sobol_sample`` starts after it), computed once per shape outside any trace."""
    with tf.init_scope():
        rest = tf.math.sobol_sample(dim, n - 1, dtype=tf.float64).numpy() if n > 1 \
            else np.zeros((0, dim))
    return np.concatenate([np.zeros((1, dim)), rest])


def _qmc_draw(problem, dist, theta, n, key, pathwise):
    loc, scale = _location_scale(dist, theta)  # [R, *event]
    replicates = tf.shape(loc)[0]
    if loc.shape.rank == 1:  # scalar events: [n, 1] points, [1, R] shifts
        points = tf.constant(sobol_points(n)[:, :1])
        shift = tf.random.stateless_uniform([1, replicates], seed=key, dtype=tf.float64,
                                            alg=_rng.ALG)
    else:  # vector events: D-dimensional points [n, 1, D], shifts [1, R, D]
        size = loc.shape[-1]
        points = tf.constant(sobol_points(n, size)[:, np.newaxis, :])
        shift = tf.random.stateless_uniform([1, replicates, size], seed=key,
                                            dtype=tf.float64, alg=_rng.ALG)
    u = tf.clip_by_value(shift_mod_1(points, shift), EDGE, 1.0 - EDGE)
    x = loc + scale * _quantile(u, loc.dtype)  # [n, R, *event]
    return x if pathwise else tf.stop_gradient(x)


def shift_mod_1(points, shift):
    """(points + shift) mod 1 for points and shift in [0, 1), by a select: bit for bit
    ``tf.math.floormod(points + shift, 1.0)`` (the sum is in [0, 2), and sum - 1 is exact
    on [1, 2)), which XLA on CPU computes with fmod and sign fixes on every element (QMC at
    1,000 × 1,000 1.5x as fast with this: ``docs/PERFORMANCE.md``)."""
    wrapped = points + shift
    return tf.where(wrapped >= 1.0, wrapped - 1.0, wrapped)


def _quantile(u, dtype):
    """Φ⁻¹(u) in ``dtype`` for float64 u in (0, 1). For float32, from the tail mass
    min(u, 1 - u) (exact in float64, full relative precision once cast) by the sampler's
    rational approximation (:func:`estimators._rng.tail_quantile`; against scipy over
    u in [1e-16, 1 - 1e-16]: relative error < 3.2e-6 for |z| > 1, the largest in the far
    tail beyond 6.3σ, mass < 1e-10, absolute < 3e-5): under XLA on CPU the float64
    ``tf.math.ndtri`` made QMC 2.3x slower than with this (``docs/PERFORMANCE.md``)."""
    if dtype != tf.float32:
        return tf.cast(tf.math.ndtri(u), dtype)
    lower = u < 0.5
    return _rng.tail_quantile(tf.cast(tf.where(lower, u, 1.0 - u), tf.float32), lower)


def _qmc_check(label, problem, dist, batch_size):
    require_normal(label, problem, dist, "maps Sobol points through loc + scale·Φ⁻¹(u)")
    if measure.event_size(dist) > 21201:
        raise NotApplicableError(f"{label}: Sobol points exist for at most 21,201 "
                                 f"dimensions, the event has {measure.event_size(dist)}.")


_BLOCKS: dict[str, tuple] = {}


def _antithetic_moments(problem, vector, batch_size, per_sample, pathwise, label):
    """Exact moments of antithetic pairs: the noise block is ε > 0 with density 2φ(ε),
    the pair average being even in ε (built once per estimator label: blocks key
    compiled integrands)."""
    if label not in _BLOCKS:
        def surrogate(problem, dist, theta, v):
            loc, scale = measure.location_scale(dist)
            plus, minus = loc + scale * v[:, 0], loc - scale * v[:, 0]
            if not pathwise:
                plus, minus = tf.stop_gradient(plus), tf.stop_gradient(minus)
            return 0.5 * (per_sample(problem, dist, plus, theta)
                          + per_sample(problem, dist, minus, theta))

        _BLOCKS[label] = (truth.NoiseBlock(
            low=(0.0,), high=(truth.NOISE_SPAN,),
            density=lambda v: 2.0 * truth.standard_normal_density(v[:, 0]),
            surrogate=surrogate, kinks=truth.mirrored),)
    return truth.noise_moments(problem, vector, batch_size, blocks=_BLOCKS[label],
                               samples_per_unit=2)


def _qmc_moments(*args):
    raise NotImplementedError(
        "randomized quasi-Monte Carlo is not a mean of iid samples: its variance falls "
        "faster than 1/n, so n × variance depends on n")


SAMPLINGS = {
    "iid": Sampling("iid", _iid_draw, _mean, _no_check, True, "independent draws",
                    through_sample=True),
    "antithetic": Sampling("antithetic", _antithetic_draw, _antithetic_mean,
                           _antithetic_check, True,
                           "antithetic pairs loc ± scale·ε (Normal families, even batches)",
                           min_batch=2, exact_moments=_antithetic_moments),
    "qmc": Sampling("qmc", _qmc_draw, _mean, _qmc_check, False,
                    "randomly shifted Sobol points through loc + scale·Φ⁻¹ (Normal families)",
                    exact_moments=_qmc_moments),
}

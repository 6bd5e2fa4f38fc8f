"""Pathwise estimator with randomized quasi-Monte Carlo noise for a Normal measure.

Estimates ∇θ E_{p(x|θ)}[f(x, θ)] for p = N(μ(θ), σ(θ)²) as the reparameterization
estimator does (Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in
Machine Learning", JMLR 21(132), 2020, Section 5; variance reduction, Section 7), but
replaces iid noise by the first n points of the Sobol sequence (one dimension), shifted
by one uniform per replicate and batch modulo 1 (Cranley & Patterson 1976):

    u_i = (s_i + U) mod 1,   x_i = μ + σ Φ⁻¹(u_i),   ĝ = (1/n) Σ_i ∇θ f(x_i, θ).

Each u_i is uniform, so every estimate is unbiased; replicates (and batches) use
independent shifts, so they are independent. The points are stratified, so the variance
falls faster than 1/n: for n a power of 2 they are a randomly shifted lattice {i/n},
whose variance is about n⁻² for a bounded, smooth integrand u ↦ ∇θ f(μ + σΦ⁻¹(u))
and faster still when it vanishes at both ends (e.g. exp(-k x²)); n × Var is not
constant and there is no "per-sample variance" (``truth`` raises NotImplementedError).
With batch_size < n_samples each batch is its own randomized point set of batch_size
points; the estimate averages them.

The uniforms and Φ⁻¹ are computed in float64 (u is kept in [2⁻⁵³, 1 - 2⁻⁵³]: a tail
beyond ±8.3 standard units is never drawn, mass 1e-16). Applies when p(x|θ) is a
``tfd.Normal`` whose loc and scale depend on θ in any differentiable way; anything else
raises NotApplicableError.
"""

import functools

import numpy as np

from estimators import _rng, truth
from estimators._gaussian import location_scale, require_normal
from estimators._tf import tf
from estimators.estimator import Estimator, cost, register

EDGE = 2.0**-53


@functools.lru_cache(maxsize=64)
def sobol_points(n: int) -> np.ndarray:
    """The first n points ``[n]`` of the one-dimensional Sobol sequence, origin included
    (``tf.math.sobol_sample`` starts after it), computed once per n outside any trace."""
    with tf.init_scope():
        rest = tf.math.sobol_sample(1, n - 1, dtype=tf.float64).numpy()[:, 0] if n > 1 \
            else np.zeros(0)
    return np.concatenate([[0.0], rest])


def surrogate(problem, theta, n, key, window):
    """Mean of f over n randomly shifted Sobol points mapped through μ + σΦ⁻¹: ``[R]``."""
    dist = problem.dist(problem.unpack(theta))
    loc, scale = location_scale(dist)
    points = tf.constant(sobol_points(n)[:, np.newaxis])  # [n, 1] float64
    shift = tf.random.stateless_uniform([1, tf.shape(theta)[0]], seed=key, dtype=tf.float64,
                                        alg=_rng.ALG)  # [1, R]
    u = tf.clip_by_value(tf.math.floormod(points + shift, 1.0), EDGE, 1.0 - EDGE)  # [n, R]
    eps = tf.cast(tf.math.ndtri(u), loc.dtype)  # [n, R]
    return tf.reduce_mean(cost(problem, loc + scale * eps, theta), axis=0)


ESTIMATOR = register(Estimator(
    name="reparameterization_qmc",
    surrogate=surrogate,
    extra_check=require_normal,
    exact_moments=truth.no_exact_form(
        "randomized quasi-Monte Carlo is not a mean of iid samples: its variance falls "
        "faster than 1/n, so n × variance depends on n"),
    summary="Pathwise with randomly shifted Sobol points through μ + σΦ⁻¹ for a Normal; "
            "unbiased.",
))

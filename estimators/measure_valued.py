"""Measure-valued gradient estimator (weak derivatives) for a Normal measure.

Estimates ∇θ E_{p(x|θ)}[f(x, θ)] for p = N(μ(θ), σ(θ)²) by writing the derivative of the
density in each of μ and σ as a constant times the difference of two probability
densities (a weak derivative; Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient
Estimation in Machine Learning", JMLR 21(132), 2020, Section 6 and its Table 1):

    ∂μ E[f] = 1/(√(2π) σ) · (E f(μ + σW) - E f(μ - σW)),   W ~ Weibull(2, √2)
    ∂σ E[f] = 1/σ · (E f(μ + σM) - E f(μ + σZ)),          M ~ double-sided Maxwell,
                                                          Z ~ N(0, 1)

with the couplings of Section 7.2 (common random numbers): one W serves both halves of
the μ part, and Z = M·U with U ~ U(0, 1) independent of M (the product is exactly
standard normal), so both halves of the σ part share M. The chain rule through μ(θ) and
σ(θ) gives ∇θ; a cost that depends on θ adds E_p[∇θ f(x, θ)], estimated at the same
x = μ + σMU, which is a draw from p. One sample is one (W, M, U), four evaluations of f:

    ĝ = (1/n) Σ_i [ĝμ_i ∇θ μ + ĝσ_i ∇θ σ + ∇θ f(μ + σ M_i U_i, θ)].

Unbiased; f need not be differentiable (nor continuous) in x. Applies when p(x|θ) is a
``tfd.Normal`` whose loc and scale depend on θ in any differentiable way (θ = (mean,
std) in gaussian_square/exp/cos; loc only in seed_dependence; neither in seed_fixed,
where only the last term remains); anything else raises NotApplicableError.

Exact per-sample variance (``estimators.truth``): W and (M, U) are independent blocks,
integrated by cubature over W (1-D) and over (M, U) (2-D, in the coordinates of
:func:`maxwell_uniform`).
"""

import functools

import numpy as np

from estimators import _rng, truth
from estimators._gaussian import (SQRT_2PI, location_scale, mirrored, require_normal,
                                  standard_normal_density)
from estimators._tf import tf
from estimators.estimator import Estimator, cost, register

TINY = float(np.finfo(np.float32).tiny)  # keeps log(u) finite


def mean_part(problem, dist, theta, w):
    """Surrogate of the μ weak derivative for draws ``w ~ Weibull(2, √2)`` (w's shape)."""
    loc, scale = location_scale(dist)
    mu, sigma = tf.stop_gradient(loc), tf.stop_gradient(scale)
    fixed = tf.stop_gradient(theta)
    difference = cost(problem, mu + sigma * w, fixed) - cost(problem, mu - sigma * w, fixed)
    return tf.stop_gradient(difference / (SQRT_2PI * sigma)) * loc


def std_part(problem, dist, theta, m, u):
    """Surrogate of the σ weak derivative plus ``f(x, θ)`` at the coupled normal draw
    ``x = μ + σ m u`` for ``m ~`` double-sided Maxwell, ``u ~ U(0, 1)`` (their shape)."""
    loc, scale = location_scale(dist)
    mu, sigma = tf.stop_gradient(loc), tf.stop_gradient(scale)
    fixed = tf.stop_gradient(theta)
    normal = mu + sigma * m * u  # M·U ~ N(0, 1): a draw from p, cut from θ
    difference = cost(problem, mu + sigma * m, fixed) - cost(problem, normal, fixed)
    return tf.stop_gradient(difference / sigma) * scale + cost(problem, normal, theta)


def surrogate(problem, theta, n, key, window):
    """Mean over n coupled draws (W, M, U) of :func:`mean_part` + :func:`std_part`: [R]."""
    dist = problem.dist(problem.unpack(theta))
    # Uniforms are far cheaper than normals under XLA on CPU, so four of the five draws
    # per sample are uniform (six normals ran at 0.8x graph speed).
    shape = [n, tf.shape(theta)[0]]
    uniform = tf.random.stateless_uniform([4] + shape, seed=key, alg=_rng.ALG,
                                          minval=TINY)  # [4, n, R] in (0, 1)
    z = tf.random.stateless_normal(shape, seed=_rng.fold_in(key, 1), alg=_rng.ALG)  # [n, R]
    w = tf.sqrt(-2.0 * tf.math.log(uniform[0]))  # [n, R]: Rayleigh(1) = Weibull(2, √2)
    chi3 = tf.sqrt(-2.0 * tf.math.log(uniform[1]) + z**2)  # [n, R]: χ_3 (χ²_2 + χ²_1)
    m = tf.where(uniform[2] < 0.5, -chi3, chi3)  # [n, R]: double-sided Maxwell
    u = uniform[3]  # [n, R]: U(0, 1)
    return tf.reduce_mean(mean_part(problem, dist, theta, w)
                          + std_part(problem, dist, theta, m, u), axis=0)


def maxwell_uniform(v):
    """(m, u) from (z, e) ~ N(0, 1) × Exp(1): ``m = sign(z) √(z² + 2e)``, ``u = z / m``.

    The map carries N(0, 1) × Exp(1) onto double-sided Maxwell × U(0, 1) (the density
    m² φ(m) of (m, u) becomes |m| φ(m) in (m, z = m u), then φ(z) e^{-e} in (z, e)), and
    it makes z = m·u, the normal half of the σ part, a coordinate: a kink of f there is
    a line the cubature box is split along.
    """
    z, e = v[:, 0], v[:, 1]
    magnitude = tf.sqrt(z**2 + 2.0 * e)  # > 0 inside the box
    m = tf.where(z < 0, -magnitude, magnitude)
    return m, z / m


SPAN = truth.NOISE_SPAN

BLOCKS = (
    truth.NoiseBlock(  # W, density w e^{-w²/2} on w > 0
        low=(0.0,), high=(SPAN,),
        density=lambda v: v[:, 0] * tf.exp(-0.5 * v[:, 0] ** 2),
        surrogate=lambda problem, dist, theta, v: mean_part(problem, dist, theta, v[:, 0]),
        kinks=mirrored),
    truth.NoiseBlock(  # (M, U) as (z, e), density φ(z) e^{-e}; |m| ≤ 12 covers e ≤ 72
        low=(-SPAN, 0.0), high=(SPAN, SPAN**2 / 2),
        density=lambda v: standard_normal_density(v[:, 0]) * tf.exp(-v[:, 1]),
        surrogate=lambda problem, dist, theta, v: std_part(problem, dist, theta,
                                                           *maxwell_uniform(v)),
        kinks=lambda t: [np.array([t, 1.0])]),  # f(μ + σ m u) kinks at z = t
)

ESTIMATOR = register(Estimator(
    name="measure_valued",
    surrogate=surrogate,
    extra_check=require_normal,
    exact_moments=functools.partial(truth.noise_moments, blocks=BLOCKS),
    summary="Weak derivatives of a Normal (Weibull / Maxwell couplings); unbiased, f "
            "need not be differentiable.",
))

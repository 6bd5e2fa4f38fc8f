"""Pathwise estimator with antithetic pairs (ε, -ε) for a Normal measure.

Estimates ∇θ E_{p(x|θ)}[f(x, θ)] for p = N(μ(θ), σ(θ)²) as the reparameterization
estimator does (Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in
Machine Learning", JMLR 21(132), 2020, Section 5), but draws the noise in pairs that are
coupled to be negatively correlated (Section 7.2, coupling; antithetic variates):

    ĝ = (2/n) Σ_{i ≤ n/2} ½ [∇θ f(μ + σε_i, θ) + ∇θ f(μ - σε_i, θ)],   ε_i ~ N(0, 1),

so a batch of n samples is n/2 pairs and n must be even. Unbiased. The pair average
removes the part of ∇θ f(μ + σε) that is odd in ε: the variance drops when the pathwise
gradient is (nearly) monotone in ε (e.g. a linear or exponential-type cost) and can
double when it is even in ε (e.g. ∂μ of a cost symmetric about μ).

Applies when p(x|θ) is a ``tfd.Normal`` whose loc and scale depend on θ in any
differentiable way; anything else, or an odd batch size, raises NotApplicableError.
Exact per-sample variance (``estimators.truth``): 2 × Var(one pair's average), by
quadrature over ε; n × Var(estimate) equals it for every even n and batch size.
"""

import functools

from estimators import _rng, truth
from estimators._gaussian import location_scale, mirrored, require_normal, standard_normal_density
from estimators._tf import tf
from estimators.estimator import Estimator, NotApplicableError, cost, register


def pair_part(problem, dist, theta, eps):
    """Surrogate of antithetic pairs: ½[f(μ + σε, θ) + f(μ - σε, θ)] (ε's shape), x
    carrying its path to θ."""
    loc, scale = location_scale(dist)
    return 0.5 * (cost(problem, loc + scale * eps, theta) + cost(problem, loc - scale * eps, theta))


def surrogate(problem, theta, n, key, window):
    """Mean over n/2 antithetic pairs of :func:`pair_part`: ``[R]``."""
    if n % 2:
        raise NotApplicableError(f"reparameterization_antithetic draws pairs, so the batch "
                                 f"size must be even, got {n}.")
    dist = problem.dist(problem.unpack(theta))
    pairs = [n // 2, tf.shape(theta)[0]]
    eps = tf.random.stateless_normal(pairs, seed=key, alg=_rng.ALG)  # [n/2, R]
    return tf.reduce_mean(pair_part(problem, dist, theta, eps), axis=0)


def check(estimator, problem, theta, batch_size):
    """``Estimator.extra_check``: a Normal p(x|θ) and an even batch size."""
    require_normal(estimator, problem, theta, batch_size)
    if batch_size % 2:
        raise NotApplicableError(f"{estimator.name} draws antithetic pairs (ε, -ε), so "
                                 f"batch_size must be even, got {batch_size}.")


BLOCKS = (
    truth.NoiseBlock(  # ε > 0 with density 2φ(ε): the pair average is even in ε
        low=(0.0,), high=(truth.NOISE_SPAN,),
        density=lambda v: 2.0 * standard_normal_density(v[:, 0]),
        surrogate=lambda problem, dist, theta, v: pair_part(problem, dist, theta, v[:, 0]),
        kinks=mirrored),
)

ESTIMATOR = register(Estimator(
    name="reparameterization_antithetic",
    surrogate=surrogate,
    min_batch=2,
    extra_check=check,
    exact_moments=functools.partial(truth.noise_moments, blocks=BLOCKS, samples_per_unit=2),
    summary="Pathwise with antithetic pairs (ε, -ε) for a Normal; unbiased, even batches.",
))

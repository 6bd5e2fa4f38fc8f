"""Pathwise (reparameterization) estimator.

Writes a draw as a differentiable function of θ and θ-free noise, x = g(ε, θ), and
differentiates through it:

    ∇θ E_p[f] = E_ε[∇x f(g(ε, θ), θ) ∇θ g(ε, θ) + ∇θ f(g(ε, θ), θ)].

The path is TFP's reparameterized sampling (location-scale for ``tfd.Normal``, implicit
reparameterization for e.g. ``tfd.Gamma``), so the distribution must report
``FULLY_REPARAMETERIZED``. Unbiased when f is differentiable in x; usually the
lowest-variance estimator of the three families when f is smooth.

References: Kingma & Welling (2014); Rezende et al. (2014); Figurnov et al. (2018);
Mohamed et al., JMLR 2020, Section 5.
"""

from estimators._tf import tf
from estimators.estimator import Estimator, cost_of_draws, draw, register


per_sample = cost_of_draws  # f(x, θ): x carries its path to θ


def surrogate(problem, theta, n, key, window):
    """Mean of f over n reparameterized draws: ``[R]``."""
    dist, x = draw(problem, theta, n, key, pathwise=True)  # x: [n, R], differentiable in θ
    return tf.reduce_mean(per_sample(problem, dist, x, theta), axis=0)


ESTIMATOR = register(Estimator(
    name="reparameterization",
    surrogate=surrogate,
    per_sample=per_sample,
    pathwise=True,
    needs_reparameterization=True,
    summary="Pathwise: differentiate f through TFP's reparameterized samples.",
))

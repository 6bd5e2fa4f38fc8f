"""Pathwise (reparameterization) estimator.

Writes a draw as a differentiable function of θ and θ-free noise, x = g(ε, θ), and
differentiates through it:

    ∇θ E_p[f] = E_ε[∇x f(g(ε, θ), θ) ∇θ g(ε, θ) + ∇θ f(g(ε, θ), θ)].

With iid sampling the path is TFP's reparameterized sampling (location-scale for
``tfd.Normal``, implicit reparameterization for e.g. ``tfd.Gamma``), so the distribution
must report ``FULLY_REPARAMETERIZED``; antithetic and QMC sampling build the path
loc + scale·ε of a Normal themselves. Unbiased when f is differentiable in x; usually the
lowest-variance of the three families when f is smooth, and its variance does not grow
with the dimension the way the score function's does.

References: Kingma & Welling (2014); Rezende et al. (2014); Figurnov et al. (2018);
Mohamed et al., JMLR 2020, Section 5.
"""

from estimators.gradients.base import Identity, cost_of_draws


per_sample = cost_of_draws  # f(x, θ)


IDENTITY = Identity(
    name="reparameterization",
    summary="Pathwise: differentiate f through reparameterized samples.",
    per_sample=per_sample,
    pathwise=True,
    needs_reparameterization=True,
    samplings=("iid", "antithetic", "qmc"),
    forward_mode=True,
)

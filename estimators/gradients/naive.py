"""Naive Monte Carlo gradient: the lab's T3 ``expectation_gradients``.

Averages ∇θ f(x, θ) over draws x ~ p(x|θ) held fixed:

    ĝ = (1/n) Σ ∇θ f(x_i, θ).

This is the exact gradient's estimator only when p does not depend on θ. When it does,
it drops the term ∫ ∇θ p(x|θ) f(x, θ) dx and is biased; gradvar keeps it to show that
bias (``estimators.estimate`` warns with :class:`BiasedEstimatorWarning`).
"""

from estimators.gradients.base import Identity, cost_of_draws


per_sample = cost_of_draws  # f(x, θ)


IDENTITY = Identity(
    name="naive_mc",
    summary="Mean of ∇θ f over fixed draws (lab T3); biased when p depends on θ.",
    per_sample=per_sample,
    unbiased=False,
    ignores_measure_gradient=True,
    samplings=("iid", "antithetic", "qmc"),
)

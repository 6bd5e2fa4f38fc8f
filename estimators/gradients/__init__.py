"""Gradient identities: one module per way of turning draws into a gradient estimate.

========================  ===============================================================
``score_function``        f ∇θ log p + ∇θ f over fixed draws (REINFORCE)
``reparameterization``    ∇θ f(x(θ), θ) through reparameterized draws (pathwise)
``measure_valued``        weak derivatives of a Normal, one coordinate at a time
``naive_mc``              ∇θ f over fixed draws: biased when p depends on θ (lab T3)
``trapz``                 ∇θ of a trapezoidal-rule expectation (deterministic)
``dependence``            the lab's T4 hybrid: trapezoidal ∫∇θp·f + Monte Carlo E[∇θ f]
========================  ===============================================================
"""

from estimators.gradients import measure_valued, naive, pathwise, quadrature, score_function
from estimators.gradients.base import Identity

IDENTITIES = {identity.name: identity for identity in (
    quadrature.TRAPZ, naive.IDENTITY, score_function.IDENTITY, quadrature.DEPENDENCE,
    pathwise.IDENTITY, measure_valued.IDENTITY)}
"""Identity name -> :class:`Identity`."""

__all__ = ["IDENTITIES", "Identity"]

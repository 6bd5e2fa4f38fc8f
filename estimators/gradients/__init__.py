"""Gradient identities: one module per way of turning draws into a gradient estimate.

========================  ===============================================================
``score_function``        f ∇θ log p + ∇θ f over fixed draws (REINFORCE)
``reparameterization``    ∇θ f(x(θ), θ) through reparameterized draws (pathwise)
``measure_valued``        weak derivatives of a Normal, one coordinate at a time
``naive_mc``              ∇θ f over fixed draws: biased when p depends on θ (lab T3)
``trapz``                 ∇θ of a trapezoidal-rule expectation (deterministic)
``dependence``            the lab's T4 hybrid: trapezoidal ∫∇θp·f + Monte Carlo E[∇θ f]
``arm``, ``disarm``       antithetic estimators for binary latents (ARM; DisARM / U2G)
``arms``                  n coupled draws per batch with a leave-one-out baseline (ARMS;
                          ``arms_gaussian``: its Gaussian copula)
``double_cv``             a batch of draws with RLOO on f minus a Taylor control variate
                          (``double_cv_learned``: its weight learned on the variance)
``rebar``                 score function with a relaxed control variate (fixed η, λ)
``rebar_learned``         REBAR with η and λ learned on the estimator's variance
``relax``                 REBAR's estimator with a learned control variate (a network)
``vimco``, ``dreg``, ``stl``  K-sample bounds (IWAE): leave-one-out score function (VIMCO),
                          doubly reparameterized (DReG), sticking the landing
``gumbel_softmax``        ∇θ f at a relaxed draw (Concrete): biased
``straight_through``      f at the discrete draw, gradient through the relaxed one: biased
``indecater``             categorical: each variable's categories summed, the others sampled
``rao_blackwell``         categorical: the k most probable states summed, REINFORCE on the rest
``unordered_set``         categorical: k states without replacement, built-in baseline
``reinmax``               categorical: second-order straight-through (ReinMax): biased
``gumbel_rao``            categorical: straight-through averaged over Gumbels given the draw:
                          biased
``arsm``                  categorical: Dirichlet-augmented REINFORCE, swapped and merged
========================  ===============================================================
"""

from estimators.gradients import (arm, arms, arsm, double_cv, gumbel_rao, indecater,
                                  measure_valued, multisample, naive, pathwise, quadrature,
                                  rao_blackwell, rebar, rebar_learned, reinmax, relax, relaxed,
                                  score_function, unordered_set)
from estimators.gradients.base import Identity

IDENTITIES = {identity.name: identity for identity in (
    quadrature.TRAPZ, naive.IDENTITY, score_function.IDENTITY, quadrature.DEPENDENCE,
    pathwise.IDENTITY, measure_valued.IDENTITY, arm.ARM, arm.DISARM, arms.ARMS,
    arms.ARMS_GAUSSIAN, double_cv.IDENTITY, double_cv.LEARNED, rebar.IDENTITY,
    rebar_learned.IDENTITY, relax.IDENTITY, relaxed.GUMBEL_SOFTMAX, relaxed.STRAIGHT_THROUGH,
    multisample.VIMCO, multisample.DREG, multisample.STL, indecater.IDENTITY,
    rao_blackwell.IDENTITY, unordered_set.IDENTITY, reinmax.IDENTITY, gumbel_rao.IDENTITY,
    arsm.IDENTITY)}
"""Identity name -> :class:`Identity`."""

__all__ = ["IDENTITIES", "Identity"]

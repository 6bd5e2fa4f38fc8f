"""The PPDL lab's problems: f = exp(θ|x|) under a unit-variance Normal."""

from __future__ import annotations

import math

from estimators._runtime import tf, tfd
from estimators.problem import Problem
from estimators.problems import label, register


def expected_exp_abs(theta, m):
    """E_{N(m,1)}[exp(θ|x|)] = e^{θm+θ²/2} Φ(m+θ) + e^{-θm+θ²/2} Φ(θ-m)."""
    return (tf.exp(theta * m + theta**2 / 2) * normal_cdf(m + theta)
            + tf.exp(-theta * m + theta**2 / 2) * normal_cdf(theta - m))


def normal_cdf(z):
    return 0.5 * tf.math.erfc(-z / math.sqrt(2.0))


@register("seed_fixed", "f = exp(θ|x|), p = N(mu, 1) independent of θ (lab T3)")
def seed_fixed(mu: float = 0.0) -> Problem:
    return Problem(
        name=label("seed_fixed", {"mu": mu}) if mu else "seed_fixed",
        dist=lambda theta: tfd.Normal(mu, 1.0),
        cost=lambda x, theta: tf.exp(theta * tf.abs(x)),
        exact_value=lambda theta: expected_exp_abs(theta, mu),
        breakpoints=(0.0,),
        description=f"f = exp(θ|x|), p = N({mu:g}, 1) independent of θ (lab T3)",
    )


@register("seed_dependence", "f = exp(θ|x|), p = N(θ, 1) (lab T4, T5)")
def seed_dependence() -> Problem:
    return Problem(
        name="seed_dependence",
        dist=lambda theta: tfd.Normal(theta, 1.0),
        cost=lambda x, theta: tf.exp(theta * tf.abs(x)),
        exact_value=lambda theta: expected_exp_abs(theta, theta),
        breakpoints=(0.0,),
        description="f = exp(θ|x|), p = N(θ, 1) (lab T4, T5)",
    )

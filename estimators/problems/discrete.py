"""Discrete measures with exact truth (closed form, checked by enumeration)."""

from __future__ import annotations

import math

from estimators._runtime import tfd
from estimators.problem import Problem
from estimators.problems import label, register


@register("poisson_square", "f = (x-k)², p = Poisson(θ): a discrete measure")
def poisson_square(k: float = 2.0) -> Problem:
    return Problem(
        name=label("poisson_square", {"k": k}),
        dist=lambda theta: tfd.Poisson(rate=theta),
        cost=lambda x, theta: (x - k) ** 2,
        param_names=("rate",),
        exact_value=lambda theta: theta + (theta - k) ** 2,
        bounds={"rate": (0.0, None)},
        window=lambda theta: (0.0, theta[0] + 12.0 * math.sqrt(theta[0]) + 20.0),
        description=f"f = (x-{k:g})², p = Poisson(rate)",
    )

"""Discrete measures with exact truth (closed form, checked by enumeration or Monte Carlo):
a Poisson cost, and the binary and categorical toys of the discrete-estimator literature."""

from __future__ import annotations

import math

from estimators._runtime import tf, tfd
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


# -- binary and categorical latents: the benchmarks of the discrete-estimator papers ------

def _t_in_unit_interval(name, t):
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"problem '{name}' argument t must be between 0 and 1, got {t!r}.")


@register("bernoulli_toy", "f = (b-t)², b ~ Bernoulli(logits=θ) (the REBAR/RELAX toy)")
def bernoulli_toy(t: float = 0.499) -> Problem:
    """The toy of Tucker et al. 2017 (REBAR) and Grathwohl et al. 2018 (RELAX): the true
    gradient p(1-p)(1-2t) is tiny for t = 0.499, so the estimators' noise dominates;
    t = 0.45 is the easier setting."""
    _t_in_unit_interval("bernoulli_toy", t)
    return Problem(
        name=label("bernoulli_toy", {"t": t}),
        dist=lambda theta: tfd.Bernoulli(logits=theta, dtype=tf.float32),
        cost=lambda b, theta: (b - t) ** 2,
        param_names=("logit",),
        exact_value=lambda theta: _bernoulli_square(tf.sigmoid(theta), t),
        description=f"f = (b-{t:g})², b ~ Bernoulli(σ(logit))",
    )


@register("bernoulli_quadratic",
          "f = (1/D) Σ (b_i-t)², D independent Bernoullis (Titsias & Shi 2022)")
def bernoulli_quadratic(D: int = 200, t: float = 0.499) -> Problem:
    """The benchmark of the double control variate paper (Titsias & Shi, AISTATS 2022):
    θ = D logits, one per independent Bernoulli."""
    if D < 1:
        raise ValueError(f"problem 'bernoulli_quadratic' argument D must be a positive "
                         f"integer, got {D}.")
    _t_in_unit_interval("bernoulli_quadratic", t)
    return Problem(
        name=label("bernoulli_quadratic", {"D": D, "t": t}),
        dist=lambda theta: tfd.Independent(
            tfd.Bernoulli(logits=theta["logits"], dtype=tf.float32), 1),
        cost=lambda b, theta: tf.reduce_mean((b - t) ** 2, axis=-1),
        params={"logits": D},
        exact_value=lambda theta: tf.reduce_mean(
            _bernoulli_square(tf.sigmoid(theta["logits"]), t), axis=-1),
        additive_cost=True,  # exact score-function variances, one coordinate at a time
        description=f"f = (1/D) Σ (b_i-{t:g})², b_i ~ Bernoulli(σ(logits_i)), D = {D}",
    )


@register("categorical_toy",
          "f = 0.5 + (z+1)/C², z ~ Categorical(logits θ ∈ R^C) drawn one-hot (the ARSM toy)")
def categorical_toy(C: int = 30) -> Problem:
    """The toy of Yin, Yue & Zhou 2019 (ARSM). z is drawn as a one-hot vector y
    (``tfd.OneHotCategorical``), so f(y) = 0.5 + (Σ_k k y_k + 1)/C² is defined between
    the vertices too, where the relaxed estimators evaluate it."""
    if C < 2:
        raise ValueError(f"problem 'categorical_toy' argument C must be an integer >= 2, "
                         f"got {C}.")
    index = tf.range(C, dtype=tf.float32)

    def cost(y, theta):
        return 0.5 + (tf.reduce_sum(y * tf.cast(index, y.dtype), axis=-1) + 1.0) / C**2

    def exact_value(theta):
        p = tf.nn.softmax(theta["logits"], axis=-1)
        return 0.5 + (tf.reduce_sum(p * tf.cast(index, p.dtype), axis=-1) + 1.0) / C**2

    return Problem(
        name=label("categorical_toy", {"C": C}),
        dist=lambda theta: tfd.OneHotCategorical(logits=theta["logits"], dtype=tf.float32),
        cost=cost,
        params={"logits": C},
        exact_value=exact_value,
        description=f"f = 0.5 + (z+1)/{C}², z ~ OneHotCategorical(logits), C = {C}",
    )


def _bernoulli_square(p, t):
    """E[(b - t)²] for b ~ Bernoulli(p)."""
    return p * (1.0 - t) ** 2 + (1.0 - p) * t**2

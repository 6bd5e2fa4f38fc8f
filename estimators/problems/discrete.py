"""Discrete measures with exact truth (closed form, checked by enumeration or Monte Carlo):
a Poisson cost, and the binary and categorical toys of the discrete-estimator literature."""

from __future__ import annotations

import itertools
import math

import numpy as np

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


def _peaked_start(where: str, peak, variables: int, categories: int):
    """The ``start`` of a categorical problem: logits [V·C] with category 0 of every
    variable holding the mass ``peak`` and the others equal (``peak=0``: flat, 1/C
    each), and the arguments for the problem's name."""
    if peak == 0.0:
        return (lambda: {"logits": [0.0] * (variables * categories)}), {}
    if isinstance(peak, bool) or not isinstance(peak, (int, float)) or not 0.0 < peak < 1.0:
        raise ValueError(f"problem '{where}' argument peak (the start's probability of "
                         f"category 0) must be a number strictly between 0 and 1 (0 "
                         f"for flat logits), got {peak!r}.")
    top = math.log(peak * (categories - 1) / (1.0 - peak))
    logits = ([top] + [0.0] * (categories - 1)) * variables
    return (lambda: {"logits": list(logits)}), {"peak": peak}


def _whole_at_least(where: str, name: str, value, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"problem '{where}' argument {name} must be an integer >= {least}, "
                         f"got {value!r}.")
    return value


@register("categorical_toy",
          "f = 0.5 + (z+1)/C², z ~ Categorical(logits θ ∈ R^C) drawn one-hot (the ARSM toy)")
def categorical_toy(C: int = 30, peak: float = 0.0) -> Problem:
    """The toy of Yin, Yue & Zhou 2019 (ARSM). z is drawn as a one-hot vector y
    (``tfd.OneHotCategorical``), so f(y) = 0.5 + (Σ_k k y_k + 1)/C² is defined between
    the vertices too, where the relaxed estimators evaluate it. θ ``"start"`` is flat, or
    with ``peak`` category 0 holding that mass (0.99: where sampling without replacement
    and Rao-Blackwellization pay)."""
    C = _whole_at_least("categorical_toy", "C", C, 2)
    start, extra = _peaked_start("categorical_toy", peak, 1, C)
    index = tf.range(C, dtype=tf.float32)

    def cost(y, theta):
        return 0.5 + (tf.reduce_sum(y * tf.cast(index, y.dtype), axis=-1) + 1.0) / C**2

    def exact_value(theta):
        p = tf.nn.softmax(theta["logits"], axis=-1)
        return 0.5 + (tf.reduce_sum(p * tf.cast(index, p.dtype), axis=-1) + 1.0) / C**2

    return Problem(
        name=label("categorical_toy", {"C": C, **extra}),
        dist=lambda theta: tfd.OneHotCategorical(logits=theta["logits"], dtype=tf.float32),
        cost=cost,
        params={"logits": C},
        exact_value=exact_value,
        start=start,
        description=f"f = 0.5 + (z+1)/{C}², z ~ OneHotCategorical(logits), C = {C}",
    )


@register("categorical_mean_power",
          "f = |mean_v z_v/(C-1) - t|^power, V categorical variables of C categories drawn "
          "one-hot: a cost that is not a sum over variables")
def categorical_mean_power(V: int = 3, C: int = 3, t: float = 0.45, power: float = 2.0,
                           peak: float = 0.0) -> Problem:
    """V independent categorical variables z_v ∈ {0, ..., C-1} with logits θ ``[V·C]``
    (variable v's C logits side by side), drawn one-hot (``tfd.Independent(
    tfd.OneHotCategorical, 1)``, draws ``[V, C]``), and

        f(y) = |m(y) − t|^power,   m(y) = (1/V) Σ_v Σ_c c/(C−1) · y_vc,

    a power of the mean: not a sum over variables, so per-variable estimators (IndeCateR,
    the relaxations) are not exact. ``power`` = 2 is quadratic in y (ReinMax at
    temperature 1 is exact there, a second-order method); 3 is not. Truth: E f summed over
    the C^V joint states (at most 2¹⁶) in closed form, its gradient by autodiff. θ
    ``"start"``: flat, or category 0 of every variable holding the mass ``peak``."""
    where = "categorical_mean_power"
    V = _whole_at_least(where, "V", V, 1)
    C = _whole_at_least(where, "C", C, 2)
    _t_in_unit_interval(where, t)
    if not power >= 1.0:
        raise ValueError(f"problem '{where}' argument power must be a number >= 1 (f must "
                         f"have a gradient in y), got {power!r}.")
    if C**V > 2**16:
        raise ValueError(f"problem '{where}' sums its truth over the C^V = {C}^{V} joint "
                         "states, at most 65536; lower V or C.")
    start, extra = _peaked_start(where, peak, V, C)
    weights = [c / (C - 1) for c in range(C)]
    states = np.eye(C)[np.array(list(itertools.product(range(C), repeat=V)))]  # [S, V, C]

    def grouped(values):  # [..., V·C] -> [..., V, C]
        return tf.reshape(values, tf.concat([tf.shape(values)[:-1], [V, C]], 0))

    def cost(y, theta):  # y [..., V, C]
        mean = tf.reduce_sum(y * tf.constant(weights, y.dtype), axis=[-2, -1]) / V
        return tf.abs(mean - t) ** power if power != 2.0 else (mean - t) ** 2

    def exact_value(theta):
        log_p = tf.nn.log_softmax(grouped(theta["logits"]), axis=-1)  # [..., V, C]
        y = tf.constant(states, log_p.dtype)
        joint = tf.einsum("...vc,svc->...s", log_p, y)  # [..., S]
        return tf.reduce_sum(tf.exp(joint) * cost(y, theta), axis=-1)

    arguments = {"V": V, "C": C, "t": t, **({"power": power} if power != 2.0 else {}), **extra}
    return Problem(
        name=label(where, arguments),
        dist=lambda theta: tfd.Independent(
            tfd.OneHotCategorical(logits=grouped(theta["logits"]), dtype=theta["logits"].dtype),
            1),
        cost=cost,
        params={"logits": V * C},
        exact_value=exact_value,
        start=start,
        description=f"f = |mean_v z_v/{C - 1} − {t:g}|^{power:g}, {V} one-hot categorical "
                    f"variables of {C} categories",
    )


def _bernoulli_square(p, t):
    """E[(b - t)²] for b ~ Bernoulli(p)."""
    return p * (1.0 - t) ** 2 + (1.0 - p) * t**2

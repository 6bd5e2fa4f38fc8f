"""The Gaussian cost families of Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient
Estimation in Machine Learning", JMLR 21(132), 2020 (Figs. 2-3), and D-dimensional
versions of two of them.

One dimension: p = N(mean, std²), θ = (mean, std), f = (x-k)², exp(-k x²) or cos(k x).

D dimensions: p = N(mean, diag std²) (``tfd.MultivariateNormalDiag``), θ = {mean: D,
std: D}, f = Σ_i (x_i - k)² or Σ_i cos(k x_i). Each gradient component of these sums
depends on one coordinate only, so the pathwise estimator's per-component variance is
the one-dimensional one whatever D; the score function's multiplies every component's
score by the whole sum, whose mean and spread grow with D: its variance grows like D²
(square: E f = Σ (std_i² + (mean_i - k)²)) or D (cos, where E f stays bounded when the
cosines average out) — the paper's point that the score function degrades with
dimension.
"""

from __future__ import annotations

from estimators._runtime import tf, tfd
from estimators.problem import Problem
from estimators.problems import label, register


def _gaussian(name, k, cost, exact_value, description):
    return Problem(
        name=label(name, {"k": k}),
        dist=lambda theta: tfd.Normal(theta[..., 0], theta[..., 1]),
        cost=cost,
        param_names=("mean", "std"),
        exact_value=exact_value,
        bounds={"std": (0.0, None)},
        description=description,
    )


@register("gaussian_square", "f = (x-k)², p = N(mean, std²) (Mohamed et al. 2020)")
def gaussian_square(k: float = 1.0) -> Problem:
    return _gaussian(
        "gaussian_square", k,
        cost=lambda x, theta: (x - k) ** 2,
        exact_value=lambda theta: theta[1] ** 2 + (theta[0] - k) ** 2,
        description=f"f = (x-{k:g})², p = N(mean, std²)")


@register("gaussian_exp", "f = exp(-k x²), p = N(mean, std²) (Mohamed et al. 2020)")
def gaussian_exp(k: float = 1.0) -> Problem:
    def exact(theta):
        spread = 1.0 + 2.0 * k * theta[1] ** 2
        return tf.exp(-k * theta[0] ** 2 / spread) / tf.sqrt(spread)

    return _gaussian("gaussian_exp", k, cost=lambda x, theta: tf.exp(-k * x**2),
                     exact_value=exact, description=f"f = exp(-{k:g} x²), p = N(mean, std²)")


@register("gaussian_cos", "f = cos(k x), p = N(mean, std²) (Mohamed et al. 2020)")
def gaussian_cos(k: float = 1.0) -> Problem:
    return _gaussian(
        "gaussian_cos", k,
        cost=lambda x, theta: tf.cos(k * x),
        exact_value=lambda theta: tf.cos(k * theta[0]) * tf.exp(-(k * theta[1]) ** 2 / 2),
        description=f"f = cos({k:g} x), p = N(mean, std²)")


def _gaussian_nd(name, D, k, cost, exact_value, description):
    if D < 1:
        raise ValueError(f"problem '{name}' argument D must be a positive integer, got {D}.")
    return Problem(
        name=label(name, {"D": D, "k": k}),
        dist=lambda theta: tfd.MultivariateNormalDiag(theta["mean"], theta["std"]),
        cost=cost,
        params={"mean": D, "std": D},
        exact_value=exact_value,
        bounds={"std": (0.0, None)},
        description=description,
    )


@register("gaussian_square_nd", "f = Σ (x_i-k)², p = N(mean, diag std²) in D dimensions")
def gaussian_square_nd(D: int = 10, k: float = 1.0) -> Problem:
    return _gaussian_nd(
        "gaussian_square_nd", D, k,
        cost=lambda x, theta: tf.reduce_sum((x - k) ** 2, axis=-1),
        exact_value=lambda theta: tf.reduce_sum(theta["std"] ** 2 + (theta["mean"] - k) ** 2),
        description=f"f = Σ (x_i-{k:g})², p = N(mean, diag std²), D = {D}")


@register("gaussian_cos_nd", "f = Σ cos(k x_i), p = N(mean, diag std²) in D dimensions")
def gaussian_cos_nd(D: int = 10, k: float = 1.0) -> Problem:
    return _gaussian_nd(
        "gaussian_cos_nd", D, k,
        cost=lambda x, theta: tf.reduce_sum(tf.cos(k * x), axis=-1),
        exact_value=lambda theta: tf.reduce_sum(
            tf.cos(k * theta["mean"]) * tf.exp(-(k * theta["std"]) ** 2 / 2)),
        description=f"f = Σ cos({k:g} x_i), p = N(mean, diag std²), D = {D}")

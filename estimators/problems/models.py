"""Real models: Bayesian logistic regression (Mohamed et al. 2020, Section 8).

``logistic_regression(data="breast_cancer")``: a variational posterior q(w|θ) =
N(mean, diag exp(log_scale)²) over the D = F + 1 weights of a logistic regression (F
z-scored features and a bias), θ = {mean: D, log_scale: D}, and f(w) the log-likelihood of
the whole data set,

    f(w) = Σ_i [y_i log σ(x_iᵀw) + (1 - y_i) log σ(-x_iᵀw)] = -Σ_i softplus(-(2y_i - 1) x_iᵀw),

the ELBO's Monte Carlo term (the KL to the N(0, I) prior is analytic and not estimated).
There is no closed form: the truth is a Monte Carlo reference with its standard error
(``truth_kind = monte_carlo``).
"""

from __future__ import annotations

import numpy as np

from estimators._runtime import tf, tfd
from estimators.problem import Problem
from estimators.problems import label, register
from estimators.problems.datasets import DataError, features_and_labels


@register("logistic_regression",
          "Bayesian logistic regression, q(w) = N(mean, diag exp(log_scale)²), f = the data's "
          "log-likelihood (Mohamed et al. 2020 §8)")
def logistic_regression(data: str = "breast_cancer") -> Problem:
    """The breast-cancer data (569 rows, D = 31) or a CSV file of the user's own (a
    header, numeric features, the last column the 0/1 label), prepared alike."""
    try:
        design, labels = features_and_labels(data)
    except DataError as error:
        raise ValueError(f"problem 'logistic_regression': {error}") from None
    size = design.shape[1]
    signs = 2.0 * labels - 1.0  # ±1

    def cost(w, theta):
        x = tf.constant(design, w.dtype)  # [N, D]
        s = tf.constant(signs, w.dtype)  # [N]
        margins = tf.linalg.matvec(x, w) * s  # [..., N]
        return -tf.reduce_sum(tf.math.softplus(-margins), axis=-1)  # [...]

    name = "logistic_regression" if data == "breast_cancer" else label(
        "logistic_regression", {"data": data})
    return Problem(
        name=name,
        dist=lambda theta: tfd.MultivariateNormalDiag(theta["mean"], tf.exp(theta["log_scale"])),
        cost=cost,
        params={"mean": size, "log_scale": size},
        reference_samples=200_000,
        description=f"logistic regression on {data} ({len(labels)} rows, D = {size}): "
                    "f = log-likelihood under q(w) = N(mean, diag exp(log_scale)²)",
    )


def log_likelihood(design: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
    """NumPy f(w) for weights ``[..., D]`` (for checks written apart from TensorFlow)."""
    margins = (w @ design.T) * (2.0 * labels - 1.0)
    return -np.logaddexp(0.0, -margins).sum(axis=-1)

"""Real models: Bayesian logistic regression (Mohamed et al. 2020, Section 8).

``logistic_regression(data="breast_cancer")``: a variational posterior q(w|θ) =
N(mean, diag exp(log_scale)²) over the D = F + 1 weights of a logistic regression (F
z-scored features and a bias), θ = {mean: D, log_scale: D}, and f(w) the log-likelihood of
the whole data set,

    f(w) = Σ_i [y_i log σ(x_iᵀw) + (1 - y_i) log σ(-x_iᵀw)] = -Σ_i softplus(-(2y_i - 1) x_iᵀw),

the ELBO's Monte Carlo term. The KL to the N(0, I) prior is analytic and not estimated:
it is the problem's ``penalty``, which a training run (``bench/training.py``) subtracts,

    KL(q ‖ N(0, I)) = ½ Σ_j (exp(2 log_scale_j) + mean_j² − 1 − 2 log_scale_j),

and its ``diagnostics`` give the accuracy of Mohamed et al.'s code: the fraction of rows
whose label sign(x_iᵀw) predicts, averaged over ``ACCURACY_DRAWS`` fixed draws w ~ q
(fixed so that the accuracy is a function of θ). There is no closed form for the gradient:
the truth is a Monte Carlo reference with its standard error (``truth_kind =
monte_carlo``).
"""

from __future__ import annotations

import numpy as np

from estimators import _rng
from estimators._runtime import tf, tfd
from estimators.problem import Problem
from estimators.problems import label, register
from estimators.problems.datasets import DataError, features_and_labels

ACCURACY_DRAWS = 1000
_ACCURACY_KEY = (20261130, 3)


@register("logistic_regression",
          "Bayesian logistic regression, q(w) = N(mean, diag exp(log_scale)²), f = the data's "
          "log-likelihood (Mohamed et al. 2020 §8)")
def logistic_regression(data: str = "breast_cancer") -> Problem:
    """The breast-cancer data (569 rows, D = 31) or a CSV file of the user's own (a
    header row of column names, numeric features, the last column the 0/1 label), prepared
    alike."""
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

    def kl_to_prior(theta):
        mean, log_scale = theta["mean"], theta["log_scale"]
        return 0.5 * tf.reduce_sum(tf.exp(2.0 * log_scale) + mean**2 - 1.0 - 2.0 * log_scale)

    def accuracy(theta):
        x = tf.constant(design, theta["mean"].dtype)  # [N, D]
        eps = _rng.normal([ACCURACY_DRAWS, size], _ACCURACY_KEY, x.dtype)
        w = theta["mean"] + tf.exp(theta["log_scale"]) * eps  # [draws, D]
        predicted = tf.linalg.matmul(w, x, transpose_b=True) > 0  # [draws, N]
        right = tf.equal(predicted, tf.constant(labels > 0.5))
        return {"accuracy": tf.reduce_mean(tf.cast(right, x.dtype))}

    name = "logistic_regression" if data == "breast_cancer" else label(
        "logistic_regression", {"data": data})
    return Problem(
        name=name,
        dist=lambda theta: tfd.MultivariateNormalDiag(theta["mean"], tf.exp(theta["log_scale"])),
        cost=cost,
        params={"mean": size, "log_scale": size},
        reference_samples=200_000,
        penalty=kl_to_prior,
        diagnostics=accuracy,
        description=f"logistic regression on {data} ({len(labels)} rows, D = {size}): "
                    "f = log-likelihood under q(w) = N(mean, diag exp(log_scale)²)",
    )


def log_likelihood(design: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
    """NumPy f(w) for weights ``[..., D]`` (for checks written apart from TensorFlow)."""
    margins = (w @ design.T) * (2.0 * labels - 1.0)
    return -np.logaddexp(0.0, -margins).sum(axis=-1)

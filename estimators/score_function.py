"""Score-function estimator (REINFORCE, likelihood ratio).

Estimates ∇θ E_{p(x|θ)}[f(x, θ)] with the log-derivative identity

    ∇θ E_p[f] = E_p[f(x, θ) ∇θ log p(x|θ) + ∇θ f(x, θ)],

averaged over n draws x ~ p(x|θ) that are held fixed (no gradient through sampling).
Unbiased for any p with a differentiable log-density or mass function, discrete ones
included; its variance grows with |f| and is often large.

References: Williams (1992); Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient
Estimation in Machine Learning", JMLR 21(132), 2020, Section 4.
"""

from estimators._tf import tf
from estimators.estimator import Estimator, cost, draw, register


def per_sample(problem, dist, x, theta):
    """Surrogate of single draws: ``stop_gradient(f) · log p(x|θ) + f``."""
    values = cost(problem, x, theta)  # [n, R]
    return tf.stop_gradient(values) * dist.log_prob(x) + values


def surrogate(problem, theta, n, key, window):
    """Mean over n fixed draws of :func:`per_sample`: ``[R]``."""
    dist, x = draw(problem, theta, n, key, pathwise=False)  # x: [n, R]
    return tf.reduce_mean(per_sample(problem, dist, x, theta), axis=0)


ESTIMATOR = register(Estimator(
    name="score_function",
    surrogate=surrogate,
    per_sample=per_sample,
    summary="REINFORCE: f·∇θ log p + ∇θ f over fixed draws; unbiased, any distribution.",
))

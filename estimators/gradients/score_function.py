"""Score-function estimator (REINFORCE, likelihood ratio).

Estimates ∇θ E_{p(x|θ)}[f(x, θ)] with the log-derivative identity

    ∇θ E_p[f] = E_p[f(x, θ) ∇θ log p(x|θ) + ∇θ f(x, θ)],

averaged over draws x ~ p(x|θ) that are held fixed (no gradient through sampling).
Unbiased for any p with a differentiable log-density or mass function, discrete ones
included; its variance grows with |f| and, for a product measure, with the dimension.
Combines with every sampling scheme and control variate (``estimators.control_variates``).

References: Williams (1992); Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient
Estimation in Machine Learning", JMLR 21(132), 2020, Section 4.
"""

from estimators._runtime import tf
from estimators.gradients.base import Identity


def per_sample(problem, dist, x, theta):
    """Surrogate of single draws: ``stop_gradient(f) · log p(x|θ) + f``: ``[n, R]``."""
    values = problem.cost_values(dist, x, theta)  # [n, R]
    return tf.stop_gradient(values) * dist.log_prob(x) + values


IDENTITY = Identity(
    name="score_function",
    summary="REINFORCE: f·∇θ log p + ∇θ f over fixed draws; unbiased, any distribution.",
    per_sample=per_sample,
    samplings=("iid", "antithetic", "qmc"),
    score_term=True,
    misses_boundary_terms=True,
    forward_mode=True,
)

"""Naive Monte Carlo gradient: the lab's T3 ``expectation_gradients``.

Averages ∇θ f(x, θ) over n draws x ~ p(x|θ) held fixed:

    ĝ = (1/n) Σ ∇θ f(x_i, θ).

This is the exact gradient's estimator only when p does not depend on θ. When it does,
it drops the term ∫ ∇θ p(x|θ) f(x, θ) dx and is biased; gradvar keeps it to show that
bias (``estimators.estimate`` warns with :class:`BiasedEstimatorWarning`).
"""

from estimators._tf import tf
from estimators.estimator import Estimator, cost_of_draws, draw, register


per_sample = cost_of_draws  # f(x, θ): the draws are cut from θ


def surrogate(problem, theta, n, key, window):
    """Mean of f over n fixed draws: ``[R]``."""
    dist, x = draw(problem, theta, n, key, pathwise=False)  # x: [n, R], cut from θ
    return tf.reduce_mean(per_sample(problem, dist, x, theta), axis=0)


ESTIMATOR = register(Estimator(
    name="naive_mc",
    surrogate=surrogate,
    per_sample=per_sample,
    unbiased=False,
    ignores_measure_gradient=True,
    summary="Mean of ∇θ f over fixed draws (lab T3); biased when p depends on θ.",
))

"""The lab's "dependence" hybrid (T4 ``gradients_dependence``).

Splits the gradient with the product rule and estimates each half differently:

    ∇θ E_p[f] = ∫ ∇θ p(x|θ) f(x, θ) dx   +   E_p[∇θ f(x, θ)]
                 (trapezoidal rule, n points)    (Monte Carlo, n fixed draws)

The first half is deterministic, so the variance is that of the naive half alone; its
bias is the trapezoidal rule's discretisation error on the integration window, which
vanishes as n grows. Needs a density (continuous x).
"""

from estimators._tf import tf
from estimators import naive_mc
from estimators.estimator import Estimator, draw, register, trapezoid


def surrogate(problem, theta, n, key, window):
    """``trapz(p · stop_gradient(f)) + mean f(stop_gradient(x), θ)``: ``[R]``."""
    measure_part = trapezoid(problem, theta, n, window, stop_cost=True)  # [R]
    dist, x = draw(problem, theta, n, key, pathwise=False)  # x: [n, R]
    return measure_part + tf.reduce_mean(naive_mc.per_sample(problem, dist, x, theta), axis=0)


ESTIMATOR = register(Estimator(
    name="dependence",
    surrogate=surrogate,
    per_sample=naive_mc.per_sample,  # the trapezoidal half is deterministic
    needs_density=True,
    uses_window=True,
    min_batch=2,
    unbiased=False,
    summary="Lab T4: trapezoidal ∫∇θp·f plus Monte Carlo E[∇θ f]; needs a density.",
))

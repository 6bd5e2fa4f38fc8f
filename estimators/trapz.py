"""Gradient of the trapezoidal-rule expectation (deterministic quadrature).

    ĝ = ∇θ Σ_j w_j p(x_j|θ) f(x_j, θ)

on n evenly spaced points x_j of the integration window (n_samples = grid points).
No randomness: every replicate is identical and the variance is zero; the error is the
trapezoidal rule's bias, O(h²) for smooth integrands, plus the mass outside the window.
Needs a density (continuous x).
"""

from estimators.estimator import Estimator, register, trapezoid


def surrogate(problem, theta, n, key, window):
    """``trapz(p · f)`` on n points of ``window``: ``[R]``."""
    del key  # deterministic
    return trapezoid(problem, theta, n, window, stop_cost=False)


ESTIMATOR = register(Estimator(
    name="trapz",
    surrogate=surrogate,
    needs_density=True,
    uses_window=True,
    min_batch=2,
    unbiased=False,
    deterministic=True,
    summary="Gradient of the trapezoidal-rule expectation on a grid; deterministic.",
))

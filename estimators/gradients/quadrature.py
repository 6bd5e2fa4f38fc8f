"""Gradients of trapezoidal-rule expectations: ``trapz`` and the lab's ``dependence``.

* ``trapz``: ĝ = ∇θ Σ_j w_j p(x_j|θ) f(x_j, θ) on n evenly spaced points x_j of the
  integration window (n_samples = grid points). No randomness: every replicate is
  identical and the variance is zero; the error is the trapezoidal rule's bias, O(h²)
  for smooth integrands, plus the mass outside the window.
* ``dependence`` (the lab's T4 ``gradients_dependence``) splits the gradient with the
  product rule and estimates each half differently:

      ∇θ E_p[f] = ∫ ∇θ p(x|θ) f(x, θ) dx   +   E_p[∇θ f(x, θ)]
                   (trapezoidal rule, n points)    (Monte Carlo, n fixed draws)

  The first half is deterministic, so the variance is that of the naive half alone; its
  bias is the rule's discretisation error, which vanishes as n grows.

Neither takes batches: the mean of the rules on n/B batches of B points is the rule on B
points (the same grid each time), so ``Estimator.check`` refuses ``batch_size`` other
than ``n_samples`` (``Identity.grid_rule`` words the refusal). The Monte Carlo half of
``dependence`` would average over batches correctly, but its quadrature half would not.

Both need a scalar continuous measure with a density; the window lies inside its support.
"""

from estimators import sampling
from estimators._runtime import tf, tfp
from estimators.gradients import naive
from estimators.gradients.base import Identity


def trapezoid(problem, theta, n: int, window, stop_cost: bool):
    """``∫ p(x|θ) f(x, θ) dx`` by the trapezoidal rule on ``n`` points of ``window``: [R].

    With ``stop_cost=True`` only the density carries θ, so the gradient is
    ``∫ ∇θ p(x|θ) f(x, θ) dx`` (the quadrature half of the dependence estimator).
    """
    replicates = tf.shape(theta)[0]
    xs = tf.linspace(window[0], window[1], n)[:, tf.newaxis] \
        + tf.zeros(tf.stack([1, replicates]))  # [n, R]
    dist = problem.measure(theta)
    density = dist.prob(xs)  # [n, R]
    values = problem.cost_values(dist, xs, theta)  # [n, R]
    if stop_cost:
        values = tf.stop_gradient(values)
    # tfp.math.trapz needs x of y's shape: with numpy 2 its dx branch raises (TFP 0.25).
    return tfp.math.trapz(density * values, xs, axis=0)  # [R]


def trapz_surrogate(problem, theta, n, key, context, state):
    """``trapz(p · f)`` on n points of the context's window: ``[R]``."""
    del key, state  # deterministic
    return trapezoid(problem, theta, n, context.window, stop_cost=False)


def dependence_surrogate(problem, theta, n, key, context, state):
    """``trapz(p · stop_gradient(f)) + mean f(stop_gradient(x), θ)``: ``[R]``."""
    del state
    measure_part = trapezoid(problem, theta, n, context.window, stop_cost=True)  # [R]
    dist = problem.measure(theta)
    x = sampling.SAMPLINGS["iid"].draw(problem, dist, theta, n, key, False)  # [n, R]
    return measure_part + tf.reduce_mean(naive.per_sample(problem, dist, x, theta), axis=0)


TRAPZ = Identity(
    name="trapz",
    summary="Gradient of the trapezoidal-rule expectation on a grid; deterministic.",
    surrogate=trapz_surrogate,
    needs_density=True,
    uses_window=True,
    min_batch=2,
    unbiased=False,
    deterministic=True,
    misses_boundary_terms=True,
    grid_rule="is a quadrature rule",
)

DEPENDENCE = Identity(
    name="dependence",
    summary="Lab T4: trapezoidal ∫∇θp·f plus Monte Carlo E[∇θ f]; needs a density.",
    surrogate=dependence_surrogate,
    per_sample=naive.per_sample,  # the trapezoidal half is deterministic
    needs_density=True,
    uses_window=True,
    min_batch=2,
    unbiased=False,
    f_evals=lambda problem, vector, n: 2 * n,
    misses_boundary_terms=True,
    grid_rule="integrates ∇θp·f by a quadrature rule",
)

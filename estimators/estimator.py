"""What an estimator is, the registry of them, and the pieces they share.

An estimator is a *surrogate objective* (as in optax's ``monte_carlo`` and DeepMind's
``mc_gradients``): a pure function whose autodiff gradient with respect to θ is the
gradient estimate. Every estimator has the same signature::

    surrogate(problem, theta, n, key, window) -> Tensor [R]

* ``theta``: ``[R, d]`` float32, one row per replicate (replicates are a batch axis);
* ``n``: the number of samples (or grid points) in this batch, a Python int;
* ``key``: ``[2]`` int32 stateless seed for this batch;
* ``window``: ``[2]`` float32 integration window ``(low, high)`` (used by the
  quadrature-based estimators only).

Replicate ``r`` of the result depends only on ``theta[r]``, so one gradient of the sum
gives all R estimates. Monte Carlo estimators also expose ``per_sample(problem, dist, x,
theta)``: the surrogate of single draws ``x``, whose θ-gradient is the single-sample
estimate. ``estimators.truth`` integrates it to get exact per-sample variances.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from estimators._tf import tf, tfp
from estimators.problem import Problem


class NotApplicableError(ValueError):
    """An estimator cannot be used on this problem or with these sizes."""


@dataclasses.dataclass(frozen=True)
class Estimator:
    """A registered gradient estimator.

    Attributes:
      name: Registry key.
      surrogate: ``(problem, theta [R, d], n, key, window) -> [R]``.
      per_sample: ``(problem, dist, x, theta) -> x-shaped`` surrogate of single draws,
        for Monte Carlo estimators whose estimate is a mean over iid draws; else None.
      pathwise: Whether ``per_sample`` needs draws that carry their dependence on θ.
      needs_reparameterization: Only for distributions TFP reparameterizes.
      needs_density: Only for continuous distributions (it integrates a density).
      uses_window: Whether the surrogate reads ``window``.
      min_batch: Smallest number of samples/points per batch it accepts.
      unbiased: Whether its mean equals the true gradient on every problem it accepts.
      ignores_measure_gradient: It drops ∇θ p, so it is biased when p depends on θ.
      deterministic: It draws nothing (its replicates are identical, variance zero).
      summary: One line for listings.
      extra_check: Optional further applicability test ``(estimator, problem, theta [d],
        batch_size) -> None`` raising :class:`NotApplicableError` (e.g. "p must be a
        Normal", "batch_size must be even"); :meth:`check` calls it last.
      exact_moments: Optional exact form ``(problem, theta [d], batch_size) -> (mean [d],
        per-sample variance [d])`` for estimators that are not a mean of iid
        ``per_sample`` terms (``estimators.truth.single_sample_moments`` uses it; it
        raises NotImplementedError where there is none).
    """

    name: str
    surrogate: Callable
    summary: str
    per_sample: Callable | None = None
    pathwise: bool = False
    needs_reparameterization: bool = False
    needs_density: bool = False
    uses_window: bool = False
    min_batch: int = 1
    unbiased: bool = True
    ignores_measure_gradient: bool = False
    deterministic: bool = False
    extra_check: Callable | None = None
    exact_moments: Callable | None = None

    def check(self, problem: Problem, theta, batch_size: int) -> None:
        """Raises NotApplicableError if this estimator cannot run on ``problem``."""
        if batch_size < self.min_batch:
            raise NotApplicableError(
                f"{self.name} needs at least {self.min_batch} samples per batch, "
                f"got batch_size={batch_size}.")
        if self.needs_density and problem.is_discrete(theta):
            kind = type(problem.distribution(theta)).__name__
            raise NotApplicableError(
                f"{self.name} integrates a density over a grid, but problem "
                f"'{problem.name}' has a discrete distribution ({kind}); use score_function "
                "or naive_mc.")
        if self.needs_reparameterization and not problem.is_reparameterized(theta):
            kind = type(problem.distribution(theta)).__name__
            raise NotApplicableError(
                f"{self.name} differentiates through samples, but TFP does not "
                f"reparameterize {kind} (problem '{problem.name}'); use score_function.")
        if self.extra_check is not None:
            self.extra_check(self, problem, theta, batch_size)


ESTIMATORS: dict[str, Estimator] = {}
"""Registry: estimator name -> :class:`Estimator`."""


def register(estimator: Estimator) -> Estimator:
    """Adds an estimator to :data:`ESTIMATORS` under its name and returns it."""
    if estimator.name in ESTIMATORS:
        raise ValueError(f"an estimator named '{estimator.name}' is already registered.")
    ESTIMATORS[estimator.name] = estimator
    return estimator


def get(name: str) -> Estimator:
    """The registered estimator ``name``.

    Raises:
      ValueError: unknown name (the message lists the valid ones).
    """
    try:
        return ESTIMATORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown estimator {name!r}; choose one of: "
                         f"{', '.join(sorted(ESTIMATORS))}.") from None


# -- shared pieces ------------------------------------------------------------------------

def cost(problem: Problem, x, theta):
    """``f(x, θ)`` broadcast to at least the shape of ``x`` (constant costs included)."""
    x = tf.convert_to_tensor(x)
    values = tf.convert_to_tensor(problem.cost(x, problem.unpack(theta)), dtype=x.dtype)
    return values + tf.zeros_like(x)


def cost_of_draws(problem: Problem, dist, x, theta):
    """Surrogate of single draws ``f(x, θ)``: fixed draws differentiate f in θ only,
    reparameterized draws also carry ∂x/∂θ (naive_mc, dependence, reparameterization)."""
    del dist
    return cost(problem, x, theta)


def draw(problem: Problem, theta, n: int, key, pathwise: bool):
    """``n`` draws per replicate from ``p(x|θ)``: returns ``(dist, x)``, x ``[n, R]``.

    With ``pathwise=False`` the draws are cut from θ (``stop_gradient``), as the score
    function and naive estimators require.
    """
    dist = problem.dist(problem.unpack(theta))
    # A measure written without θ (``tfd.Normal(0., 1.)``) has no replicate axis: add it.
    shape = [n] if dist.batch_shape.rank != 0 else [n, tf.shape(theta)[0]]
    x = dist.sample(shape, seed=key)  # [n, R]
    return dist, (x if pathwise else tf.stop_gradient(x))


def trapezoid(problem: Problem, theta, n: int, window, stop_cost: bool):
    """``∫ p(x|θ) f(x, θ) dx`` by the trapezoidal rule on ``n`` points of ``window``: [R].

    With ``stop_cost=True`` only the density carries θ, so the gradient is
    ``∫ ∇θ p(x|θ) f(x, θ) dx`` (the quadrature half of the dependence estimator).
    """
    xs = tf.linspace(window[0], window[1], n)[:, tf.newaxis]  # [n, 1]: broadcasts over R
    density = problem.dist(problem.unpack(theta)).prob(xs)  # [n, R] or [n, 1]
    values = cost(problem, xs, theta)  # [n, 1] or [n, R]
    if stop_cost:
        values = tf.stop_gradient(values)
    integrand = density * values  # [n, R] or [n, 1]
    # tfp.math.trapz needs x of y's shape: with numpy 2 its dx branch raises (TFP 0.25).
    return tfp.math.trapz(integrand, xs + tf.zeros_like(integrand), axis=0)  # [R] or [1]

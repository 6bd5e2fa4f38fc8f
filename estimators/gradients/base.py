"""What a gradient identity is: the part of an estimator that turns draws into a
surrogate whose θ-gradient is the estimate."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


def cost_of_draws(problem, dist, x, theta):
    """Surrogate of single draws ``f(x, θ)``: ``[n, R]``. Fixed draws differentiate f in θ
    only (naive); draws that keep their path also carry ∂x/∂θ (pathwise)."""
    return problem.cost_values(dist, x, theta)


def per_draw(problem, vector, n_samples: int) -> int:
    """One evaluation of f per draw (or grid point)."""
    del problem, vector
    return n_samples


def evaluations_per_draw(count: int) -> Callable:
    """An ``f_evals`` for identities that evaluate f ``count`` times per draw of noise."""
    def f_evals(problem, vector, n_samples: int) -> int:
        del problem, vector
        return count * n_samples
    return f_evals


@dataclasses.dataclass(frozen=True)
class Identity:
    """A gradient identity (score function, pathwise, measure-valued, ...).

    Attributes:
      name: Registry key, the head of an estimator's label.
      summary: One line for listings.
      per_sample: ``(problem, dist, x, theta) -> [n, R]``: the surrogate of single draws x
        (``[n, R, *event]``), whose θ-gradient is the single-sample estimate; None for
        identities that are not a mean over draws.
      surrogate: ``(problem, theta [R, d], n, key, window) -> [R]`` for identities with a
        structure of their own (quadrature rules, weak derivatives); they take no
        sampling or control-variate options.
      pathwise: Draws keep their path to θ.
      needs_reparameterization: With iid sampling, only measures TFP reparameterizes.
      needs_density: Only scalar continuous measures (it integrates a density on a grid).
      uses_window: Reads the integration window.
      min_batch: Smallest number of samples or points per batch.
      unbiased: Mean equals the true gradient on every problem it accepts.
      declared_biased: Biased on every problem, by construction (a relaxation), so that
        summaries flag it whatever its measured bias; quadrature rules (biased by a
        vanishing discretization error) and naive_mc (biased only where p depends on θ)
        are judged by their measured bias instead.
      ignores_measure_gradient: Drops ∇θ p, so it is biased when p depends on θ.
      deterministic: Draws nothing (identical replicates, zero variance).
      samplings, control_variates: The options it combines with.
      f_evals: ``(problem, θ [d], n_samples) -> int``, evaluations of f per estimate.
      exact_moments: ``(problem, θ [d], batch_size) -> (mean, per-sample variance)`` for
        identities with their own exact form; None to integrate ``per_sample``.
      check: ``(label, problem, dist, θ [d], batch_size) -> None`` raising
        NotApplicableError, for conditions of its own.
      forward_mode: Its programs for one parameter may differentiate in forward mode
        (``estimators.engine``: measured faster under XLA for these identities only).
      settings: Numeric options of this identity alone, ``((name, default, meaning, low),
        ...)`` with ``low`` an exclusive lower bound or None, e.g. a relaxation's
        temperature; ``surrogate`` and ``exact_moments`` receive them as keyword arguments.
    """

    name: str
    summary: str
    per_sample: Callable | None = None
    surrogate: Callable | None = None
    pathwise: bool = False
    needs_reparameterization: bool = False
    needs_density: bool = False
    uses_window: bool = False
    min_batch: int = 1
    unbiased: bool = True
    declared_biased: bool = False
    ignores_measure_gradient: bool = False
    deterministic: bool = False
    samplings: tuple[str, ...] = ("iid",)
    control_variates: tuple[str, ...] = ("none",)
    f_evals: Callable = per_draw
    exact_moments: Callable | None = None
    check: Callable | None = None
    forward_mode: bool = False
    settings: tuple[tuple[str, float, str, float | None], ...] = ()

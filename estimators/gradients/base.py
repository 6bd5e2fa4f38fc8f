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
        (``[n, R, *event]``), whose θ-gradient is the single-sample estimate; the
        estimator's surrogate is then :func:`estimators.protocol.mean_over_draws` with
        its sampling and control variate. None for identities that are not a mean over
        draws.
      surrogate: The protocol's ``(problem, theta [R, d], n, key, context, state) -> [R]``
        (:mod:`estimators.protocol`) for identities that are not a mean of single draws:
        K coupled draws (:func:`estimators.protocol.joint_draws`), quadrature rules,
        weak derivatives. They take no sampling or control-variate options.
      pathwise: Draws keep their path to θ.
      score_term: Its per-draw surrogate carries ``stop_gradient(f) · log p``, so a
        baseline b may be subtracted as ``b · log p`` (the baselines' condition).
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
      misses_boundary_terms: Its gradient misses the boundary terms of a support that
        moves with θ (it differentiates a density or a log-density on a fixed support).
      grid_rule: For identities on a grid of n points: how the grid enters the refusal
        of smaller batches ("is a quadrature rule").
      samplings: The sampling schemes it combines with (control variates say which
        identities they combine with: ``ControlVariate.forms``).
      f_evals: ``(problem, θ [d], n_samples) -> int``, evaluations of f per estimate.
      f_evals_per_batch: ``(problem, θ [d], **settings) -> int``, evaluations of f made
        once per batch besides (Rao-Blackwellized SG's summed categories); None for none.
      exact_moments: ``(problem, θ [d], batch_size) -> (mean, per-sample variance)`` for
        identities with their own exact form; None to integrate ``per_sample``.
      check: ``(label, problem, dist, θ [d], batch_size) -> None`` raising
        NotApplicableError, for conditions of its own.
      check_settings: ``(label, problem, dist, batch_size, **settings) -> None`` raising
        NotApplicableError, for conditions on its settings (a count that must fit the
        problem).
      memory_per_value: Float32 temporaries per value of a batch, where more than the
        engine's default (:data:`estimators.memory.PER_VALUE`); None for the default; a
        callable ``(problem, θ [d]) -> float`` where they grow with the problem.
      discrete_latents: Made for binary or categorical latents (drawn through their
        logits): reports of the discrete track compare it per evaluation of f.
      forward_mode: Its programs for one parameter may differentiate in forward mode
        (``estimators.engine``: measured faster under XLA for these identities only).
      init: ``(problem, theta [R, d], settings) -> state`` for an identity with state of
        its own (a learned relaxation), else None; ``update``:
        ``(problem, theta, n, key, context, state) -> state``, one step on a fresh batch it
        draws with ``key``, on its own part of the state (:mod:`estimators.protocol`).
      settings: Numeric options of this identity alone, ``((name, default, meaning, low),
        ...)`` with ``low`` an exclusive lower bound or None, e.g. a relaxation's
        temperature, and a fifth entry ``"whole"`` for counts (a number of noise draws) or
        ``"flag"`` for a switch (0 or 1);
        ``exact_moments`` receives them as keyword arguments, a surrogate in
        ``context.settings`` (``protocol.joint_draws`` passes them to ``terms`` as keywords).
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
    score_term: bool = False
    misses_boundary_terms: bool = False
    grid_rule: str = ""
    samplings: tuple[str, ...] = ("iid",)
    f_evals: Callable = per_draw
    f_evals_per_batch: Callable | None = None
    exact_moments: Callable | None = None
    check: Callable | None = None
    check_settings: Callable | None = None
    memory_per_value: float | Callable | None = None
    forward_mode: bool = False
    discrete_latents: bool = False
    settings: tuple[tuple, ...] = ()
    init: Callable | None = None
    update: Callable | None = None

    def __post_init__(self):
        if (self.init is None) != (self.update is None):
            raise ValueError(f"identity {self.name!r}: a learned identity needs both init= "
                             "and update=, a stateless one neither.")

    @property
    def form(self) -> str:
        """How its draws carry θ, for control variates' ``forms``: "pathwise" (draws keep
        their path), "score" (fixed draws, a score term), "fixed" (fixed draws, none), or
        "joint" (not a mean of single draws: it takes no control variate)."""
        if self.per_sample is None or self.surrogate is not None:
            return "joint"
        return "pathwise" if self.pathwise else ("score" if self.score_term else "fixed")

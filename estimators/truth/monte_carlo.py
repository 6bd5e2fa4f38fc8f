"""The Monte Carlo reference: the truth where no exact value exists (continuous vector
events, large discrete supports, supports that move with θ), with its standard error.

The gradient is the mean of single-draw estimates (:mod:`estimators.truth.draws`), from
the estimator the problem asks for (``Problem(reference=...)``) or, by default:

* **pathwise** when TFP reparameterizes the measure: usually the lowest variance, but
  unbiased only where f is differentiable along the draws. So it is used only after
  finite differences of E f with common random numbers showed no jump along the draws
  (:func:`estimators.truth.check.smoothness`); where they show one (an indicator, a
  rounding, a threshold in x), the score function, unbiased for any f, wins, and the
  reference's note says why; where the support also moves with θ, no unbiased reference
  exists and the truth is refused. A pathwise reference is cross-checked by the score
  function (fixed supports), and its tolerance states the jumps the differences could
  have missed;
* the **score function** otherwise, with a constant baseline (the mean of f over an
  independent pilot batch, so the estimate stays unbiased). It is unbiased for any f
  that is smooth in θ at fixed x while the support does not move; its tolerance states
  the jumps of f in θ the differences could have missed, and where TFP reparameterizes
  the measure the differences of E f check it.

A jump of f in θ itself (1[x > θ]) escapes autodiff's ∇θ f in both estimators: the
reference is then refused. Where the differences could not test f's smoothness along the
draws (too heavy-tailed), the score function is used on a fixed support, and an
unchecked pathwise reference on a moving one.

Either way the reference is refused (:class:`TruthError`) when its draws show that E f
or its gradient does not exist (Pareto k̂ ≥ 1 for f or the gradient terms,
:mod:`estimators.truth.tails`), and left unchecked, with a note, when their variance
looks infinite (k̂ ≥ 0.7: its standard error would be too small).

Draws are capped by a budget of numbers (``REFERENCE_BUDGET``: draws × 3 evaluations ×
:func:`estimators.truth.draws.numbers_per_draw`), so a reference costs O(D); the note says
when the cap cut ``reference_samples``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from estimators import measure
from estimators.truth import check, draws, tails
from estimators.truth.check import TruthError

REFERENCE_BUDGET = 2**33
"""Numbers computed for a reference (draws × 3 × numbers per draw)."""
REFERENCES = ("auto", "pathwise", "score_function")
_REFERENCE_KEY = (20261130, 2)
_PILOT_KEY = (20261130, 3)

HINT = ("the pathwise reference assumes f is differentiable in x; for a cost with jumps "
        "give the problem reference='score_function' or a closed form")


@dataclasses.dataclass(frozen=True)
class Result:
    """A Monte Carlo reference and its cross-check."""

    value: float
    value_se: float
    gradient: np.ndarray  # [d]
    gradient_se: np.ndarray  # [d]
    method: str  # "pathwise" or "score_function"
    verdict: check.Verdict


def reference(problem, vector) -> Result:
    """The Monte Carlo reference gradient and value with standard errors (module docstring).

    Raises:
      TruthError: no unbiased reference exists here (f jumps in θ itself; or a moving
        support and a cost that is not differentiable along the draws, or a measure TFP
        does not reparameterize), the reference asked for is wrong here, the expectation
        does not appear to exist, or the reference disagrees with its cross-check.
    """
    dist = problem.distribution(vector)
    reparameterized = measure.is_reparameterized(dist)
    fixed = not problem.support_depends_on_theta(vector)
    asked = problem.reference
    where = f"problem '{problem.name}' at theta={check._short(vector)}"
    if asked == "pathwise" and not reparameterized:
        raise TruthError(f"problem '{problem.name}' asks for a pathwise reference, but TFP does "
                         f"not reparameterize its {type(dist).__name__}; use "
                         "reference='score_function' or 'auto'.")
    if asked == "score_function" and not fixed:
        raise TruthError(f"problem '{problem.name}' asks for a score-function reference, but "
                         "the support of p(x|θ) moves with θ, where the score function misses "
                         "the boundary terms; use reference='pathwise' or 'auto'.")
    if not reparameterized and not fixed:
        raise TruthError(f"problem '{problem.name}': the support of p(x|θ) moves with θ and TFP "
                         "does not reparameterize it, so no unbiased Monte Carlo reference "
                         "exists here; give the problem a closed form (exact_value).")
    smooth = check.smoothness(problem, vector)
    if smooth.theta_smooth is False:
        raise TruthError(f"{where}: {check.jump_evidence(smooth)}, which autodiff's ∇θ f "
                         "misses in both the score function and the pathwise gradient: no "
                         "unbiased Monte Carlo reference exists here; give the problem a "
                         "closed form (exact_value).")
    if asked == "pathwise" and smooth.smooth is False:
        raise TruthError(f"{where}: {check.jump_evidence(smooth)}, so the pathwise reference "
                         "you asked for would miss the jumps; use reference='score_function' "
                         "(unbiased for any f) or give the problem a closed form "
                         "(exact_value).")
    if asked == "auto" and smooth.smooth is False and not fixed:
        raise TruthError(f"{where}: {check.jump_evidence(smooth)}, and the support of p(x|θ) "
                         "moves with θ, so the score function misses its boundary terms: no "
                         "unbiased Monte Carlo reference exists here; give the problem a "
                         "closed form (exact_value).")
    notes = []
    n = draws.fits(REFERENCE_BUDGET, problem, vector, 3, check.MIN_SAMPLES,
                   problem.reference_samples)
    if n < problem.reference_samples:
        notes.append(f"The reference uses {n:,} draws, not reference_samples = "
                     f"{problem.reference_samples:,}: at {problem.dim:,} parameters more would "
                     "not fit its time budget.")
    if asked == "pathwise" or (asked == "auto" and reparameterized
                               and (smooth.smooth is True or not fixed)):
        method = "pathwise"
        if smooth.smooth is None:
            notes.append("Whether f is differentiable along the draws could not be tested "
                         "(its differences are too heavy-tailed), so the pathwise reference "
                         "is unchecked.")
    else:
        method = "score_function"
        if smooth.smooth is False:
            notes.append(check.jump_note(smooth) + " The reference is the score function's, "
                         "unbiased for any f that is smooth in θ.")
    along = smooth.directions
    if method == "pathwise":
        terms = draws.gradient_terms(problem, vector, n, _REFERENCE_KEY, score=False,
                                     pathwise=True, directions=along.vectors,
                                     what="Monte Carlo reference")
        statistic = terms.pathwise
        verdict = _pathwise_verdict(problem, vector, statistic, smooth)
    else:
        # The pilot wants f's mean alone; it runs the main pass's program (score terms
        # included) rather than trace one of its own.
        pilot = draws.gradient_terms(problem, vector, min(4096, n), _PILOT_KEY,
                                     what="Monte Carlo reference")
        # Projected on the differences' directions u (the step-scaled ones): the SE of
        # uᵀ ĝ, correlations between components included, for the check against them.
        terms = draws.gradient_terms(problem, vector, n, _REFERENCE_KEY,
                                     baseline=float(pilot.f.mean[0]),
                                     directions=along.scaled, what="Monte Carlo reference")
        statistic = terms.score
        verdict = _score_verdict(problem, vector, terms, smooth)
    verdict = _tails(problem, vector, terms, method, verdict)
    note = " ".join(part for part in (*notes, verdict.note) if part)
    return Result(float(terms.f.mean[0]), float(terms.f.se[0]), statistic.mean, statistic.se,
                  method, dataclasses.replace(verdict, note=note))


def _pathwise_verdict(problem, vector, statistic: draws.Statistic,
                      smooth: check.Smoothness) -> check.Verdict:
    """A pathwise reference: the jumps along the draws the differences could have missed,
    and the score function's check where the support stays put and f is smooth in θ."""
    reaches = [smooth.tolerance]
    methods = ["finite_difference"]
    if not problem.support_depends_on_theta(vector) and smooth.theta_smooth is True:
        n = draws.fits(check.BUDGET, problem, vector, 3, check.MIN_SAMPLES,
                       check.CHECK_SAMPLES)
        # The differences pass's mean of f, from independent draws: a constant baseline.
        terms = draws.gradient_terms(problem, vector, n, check._GRADIENT_KEY,
                                     baseline=float(smooth.terms.f.mean[0]),
                                     directions=smooth.directions.vectors, what="cross-check")
        skip = check._component_heavy(terms.shapes["score"], problem.dim, smooth.directions) \
            | terms.one_outcome | check._heavy(float(terms.shapes["f"][0]))
        reach = check._compare_components(
            problem, vector, "monte_carlo", statistic.mean, terms.score, skip,
            f"a Monte Carlo check ({n:,} score_function draws)", HINT, extra_se=statistic.se,
            samples=n)
        reaches.append(reach + smooth.theta_tolerance)
        methods.append("score_function")
    tolerance = np.min(reaches, axis=0)
    note = check.power_note(tolerance, statistic.mean, problem.param_labels)
    return check.Verdict(tolerance, check.powered(tolerance, statistic.mean), note,
                         smooth.smooth, ", ".join(methods))


def _score_verdict(problem, vector, terms: draws.Terms,
                   smooth: check.Smoothness) -> check.Verdict:
    """A score-function reference: unbiased on a fixed support for any f smooth in θ, so
    what is left to see is a jump of f in θ too small for the differences to have caught;
    where TFP reparameterizes the measure, the differences of E f check it too."""
    statistic = terms.score
    reaches = [smooth.theta_tolerance]
    methods = ["score_function (unbiased for any f smooth in θ)"]
    if smooth.terms.differences is not None:
        skip = check._heavy(smooth.terms.shapes.get("differences")) \
            | check._heavy(float(smooth.terms.shapes["f"][0]))
        check._compare_directions(problem, vector, "monte_carlo", statistic.mean, smooth, skip,
                                  "the score-function reference and finite differences of E f "
                                  "disagree; give the problem a closed form (exact_value)",
                                  extra_se=terms.along["score_along"].se)
        methods.append("finite_difference")
    tolerance = np.min(reaches, axis=0)
    note = check.power_note(tolerance, statistic.mean, problem.param_labels)
    return check.Verdict(tolerance, check.powered(tolerance, statistic.mean), note,
                         smooth.smooth, ", ".join(methods))


def _tails(problem, vector, terms: draws.Terms, method: str,
           verdict: check.Verdict) -> check.Verdict:
    """Refuses a reference whose draws show no mean; unchecks one whose variance looks
    infinite."""
    f_shape = float(terms.shapes["f"][0])
    own = terms.shapes["pathwise" if method == "pathwise" else "score"]
    gradient_shape = float(np.nanmax(np.append(own, -np.inf)))
    where = f"problem '{problem.name}' at theta={check._short(vector)}"
    if f_shape >= tails.NO_MEAN or gradient_shape >= tails.NO_MEAN:
        what, shape = ("E f", f_shape) if f_shape >= tails.NO_MEAN else \
            ("its gradient", gradient_shape)
        raise TruthError(f"{where}: {what} does not appear to exist: the largest of "
                         f"{terms.samples:,} draws fall off like a power law with Pareto "
                         f"k̂ = {shape:.2f} ≥ 1 (an infinite or undefined mean), so no Monte "
                         "Carlo reference can be trusted; change θ, the measure or f so that "
                         "E f is finite.")
    shape = max(f_shape, gradient_shape)
    if shape >= tails.RELIABLE:
        note = (f"The reference's draws are heavy-tailed (Pareto k̂ = {shape:.2f} ≥ "
                f"{tails.RELIABLE}: the variance of f or of the gradient looks infinite), so "
                "its standard error is not to be trusted.")
        return dataclasses.replace(verdict, tolerance=np.full(problem.dim, np.inf),
                                   checked=np.zeros(problem.dim, dtype=bool),
                                   note=" ".join(p for p in (verdict.note, note) if p))
    return verdict


__all__ = ["REFERENCES", "Result", "TruthError", "reference"]

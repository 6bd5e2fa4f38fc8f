"""Cross-checks of a truth, with stated power: what could have been seen, and whether it
was enough.

A truth (an exact value and gradient, or a Monte Carlo reference) is compared with
independent Monte Carlo estimates (:mod:`estimators.truth.draws`):

* the **score function** per component, unbiased for any f while the support of p does
  not move with θ (baseline: the truth's own E f, a constant);
* **finite differences of E f with common random numbers** along directions in θ
  (:func:`directions`: every axis up to ``AXES`` parameters; beyond, one per parameter
  block plus ``RANDOM_DIRECTIONS`` random ±1 combinations of all components), unbiased to
  O(h⁴) for any f, jumps and moving supports included; measures TFP reparameterizes only
  (their draws move smoothly with θ, so the differences have a small variance);
* the **pathwise** gradient per component, but only once the differences showed f to be
  differentiable along the draws (:func:`smoothness`): a pathwise gradient misses the
  jumps of f (an indicator, a rounding, a threshold), and is then the wrong check and the
  wrong reference.

A gap beyond ``CHECK_SE`` standard errors (plus the differences' O(h²) error bound and
float64 rounding) raises :class:`TruthError`. Otherwise each component gets a
**tolerance**: the smallest error in that component alone that some check would have
caught (``CHECK_SE`` SEs of the most precise check covering it). The component counts as
**checked** when its tolerance is at most ``POWER`` (10%) of the gradient's scale there,
max(|∇_i|, rms ∇): a check too weak to see an error of that size says so, instead of
vouching for the number. Statistics whose terms are heavy-tailed (Pareto k̂ ≥ 0.7,
:mod:`estimators.truth.tails`: their SE cannot be trusted) or that saw one outcome only
(every draw alike) neither raise nor count.

The number of draws per pass is capped by a budget of numbers computed (draws ×
evaluations of f × what one evaluation computes), so a check costs O(D) and stays within
seconds at 10⁵ parameters; the tolerance then says how much that bought.
"""

from __future__ import annotations

import dataclasses
import math
import weakref

import numpy as np

from estimators import measure
from estimators.truth import draws, tails

CHECK_SE = 6.0
"""Standard errors beyond which a check disagrees."""
POWER = 0.1
"""A component is checked when an error of this fraction of the gradient's scale would
have been seen."""
CHECK_SAMPLES = 2**18
"""Draws of the gradient pass (score function, pathwise), at most."""
DIFFERENCE_SAMPLES = 2**18
"""Draws of the finite-difference pass, at most."""
QUICK_SAMPLES = 2**12
"""Draws of the quick smoothness test behind :func:`estimators.estimate`'s warning."""
PILOT_SAMPLES = 2**10
"""Draws that choose the finite differences' step."""
MIN_SAMPLES = 256
RAISE_SAMPLES = 4096
"""Per-component checks raise only from this many draws on (their tolerance counts at
any number): below it a skewed mean strays beyond ``CHECK_SE`` too often."""
BUDGET = 2**30
"""Numbers computed per pass (draws × evaluations of f × what one computes,
:func:`estimators.truth.draws.numbers_per_draw`): a few seconds on 2 cores."""
AXES = 16
"""Up to this many parameters, finite differences along every axis."""
RANDOM_DIRECTIONS = 4
STEP = 0.1
"""First finite-difference step, as a fraction of each component's scale (:func:`steps`),
shrunk by ``SHRINK`` until the O(h²) error is negligible."""
SHRINK = 8.0
SHRINKS = 6
ROUNDING = 1e-9
_GRADIENT_KEY = (20261130, 1)
_DIFFERENCE_KEY = (20261130, 4)
_PILOT_KEY = (20261130, 5)


class TruthError(ValueError):
    """An exact value disagrees with Monte Carlo, or no reference can be computed."""


@dataclasses.dataclass(frozen=True)
class Directions:
    """Directions u in θ along which finite differences are taken, ``[K, d]``, each with
    a name for messages, and the step scale of every component."""

    vectors: np.ndarray
    names: tuple[str, ...]
    scale: np.ndarray  # [d]: a step of h moves component i by h · scale_i · v_i

    @property
    def scaled(self) -> np.ndarray:
        """u = v ⊙ scale: the direction actually differenced, ``[K, d]``."""
        return self.vectors * self.scale[None, :]


def directions(problem, vector) -> Directions:
    """Every axis for up to ``AXES`` parameters; beyond, the all-ones direction of each
    block (at most ``AXES`` blocks) and ``RANDOM_DIRECTIONS`` random ±1 directions
    (fixed seed), which weigh every component alike."""
    dim = problem.dim
    labels = problem.param_labels
    if dim <= AXES:
        vectors, names = np.eye(dim), tuple(labels)
    else:
        rows, names = [], []
        blocks = problem.parameters.blocks
        if len(blocks) <= AXES:
            for block in blocks:
                row = np.zeros(dim)
                row[block.start:block.stop] = 1.0
                rows.append(row)
                names.append(f"the sum over block '{block.name}'")
        signs = np.random.default_rng(20261203).choice([-1.0, 1.0],
                                                        size=(RANDOM_DIRECTIONS, dim))
        rows.extend(signs)
        names.extend(f"random ±1 combination {i + 1} of all components"
                     for i in range(RANDOM_DIRECTIONS))
        vectors, names = np.array(rows), tuple(names)
    return Directions(vectors, names, step_scale(problem, vector))


def step_scale(problem, vector) -> np.ndarray:
    """Per component, how far a finite difference may move it per unit of step: 1, or
    the distance to its bound when that is nearer, so θ ± 2h stays allowed."""
    scale = np.ones(problem.dim)
    for name, (low, high) in problem.bounds.items():
        block = next(b for b in problem.parameters.blocks if b.name == name)
        values = vector[block.start:block.stop]
        room = np.full(block.size, np.inf)
        if low is not None:
            room = np.minimum(room, values - low)
        if high is not None:
            room = np.minimum(room, high - values)
        scale[block.start:block.stop] = np.minimum(1.0, room)
    return scale


@dataclasses.dataclass(frozen=True)
class Smoothness:
    """Whether f is differentiable along the draws at θ (so the pathwise gradient is
    unbiased) and in θ at fixed draws (so the score function's ∇θ f term is), from finite
    differences against autodiff on the same draws (:func:`draws.difference_terms`).

    Attributes:
      smooth: Along the draws: False when some direction's mean R − uᵀ∇f is beyond its
        noise; True when none is and every direction could be tested; None when untested
        (a measure TFP does not reparameterize, or differences too heavy-tailed to test).
      theta_smooth: In θ at fixed x, likewise (tested for every measure).
      missed, direction: The largest missed contribution seen and its direction's name.
      tolerance: Per component, the smallest contribution missed along the draws that
        the test would have seen (inf where untested).
      theta_tolerance: The same for jumps of f in θ.
      terms, directions, steps: The pass behind it.
    """

    smooth: bool | None
    theta_smooth: bool | None = None
    missed: float = 0.0
    direction: str = ""
    tolerance: np.ndarray | None = None
    theta_tolerance: np.ndarray | None = None
    terms: draws.Terms | None = None
    directions: Directions | None = None
    steps: np.ndarray | None = None


_smoothness: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()
_CACHED_NUMBERS = 2**26
"""A problem's cached smoothness tests hold at most about this many numbers (each keeps
its directions, [K, d])."""


def smoothness(problem, vector, quick: bool = False) -> Smoothness:
    """The differences pass and its verdicts (see :class:`Smoothness`). Cached per problem
    and θ: the truth's check and :func:`estimators.estimate`'s warning share it.
    ``quick``: at most ``QUICK_SAMPLES`` draws (a warning's test; the truth's full test is
    used when it has already run)."""
    cache = _smoothness.setdefault(problem, {})
    key = np.asarray(vector, dtype=np.float64).tobytes()
    if (key, False) in cache:
        return cache[key, False]
    if (key, quick) not in cache:
        if len(cache) >= max(2, _CACHED_NUMBERS // (16 * max(problem.dim, 1))):
            cache.clear()
        cache[key, quick] = _smoothness_at(problem, np.asarray(vector, dtype=np.float64),
                                           QUICK_SAMPLES if quick else DIFFERENCE_SAMPLES)
    return cache[key, quick]


def cached_smoothness(problem, vector) -> Smoothness | None:
    """The smoothness test at θ if one has run (the truth's or a quick one), else None."""
    cache = _smoothness.get(problem, {})
    key = np.asarray(vector, dtype=np.float64).tobytes()
    return cache.get((key, False)) or cache.get((key, True))


def _verdict(statistic: draws.Statistic, error: np.ndarray, shapes, scaled: np.ndarray,
             slope: np.ndarray):
    """(verdict, largest miss, its direction index, per-component reach) of one jump test:
    each direction tested unless its own terms are too heavy-tailed for their SE. The
    allowance for rounding scales with the differences' own size (``slope``, their mean
    |R|): a cost of many terms (a VAE's ELBO) rounds its differences at 1e-12 of that."""
    allowance = np.abs(error) + ROUNDING * (1 + np.abs(statistic.mean) + slope)
    heavy = np.broadcast_to(_heavy(shapes), statistic.mean.shape)
    reach = np.where(heavy, np.inf, CHECK_SE * statistic.se + allowance)
    beyond = (np.abs(statistic.mean) > reach) & ~heavy
    worst = int(np.argmax(np.where(beyond, np.abs(statistic.mean) / reach, -1.0)))
    verdict = False if beyond.any() else (None if heavy.any() else True)
    return verdict, float(statistic.mean[worst]), worst, _per_component(reach, scaled)


def _smoothness_at(problem, vector, samples: int = DIFFERENCE_SAMPLES) -> Smoothness:
    moving = measure.is_reparameterized(problem.distribution(vector))
    along = directions(problem, vector)
    count = len(along.vectors)
    evaluations = 1 + len(draws.OFFSETS) * count * (2 if moving else 1)
    n = draws.fits(BUDGET, problem, vector, evaluations, MIN_SAMPLES, samples)
    # The pilots and the main pass run one program of at most n draws a chunk: a quick
    # test (n = QUICK_SAMPLES, its pilots as large) computes no more than it uses.
    step = _step(problem, vector, along, evaluations,
                 samples if samples <= QUICK_SAMPLES else PILOT_SAMPLES, largest=n)
    terms = draws.difference_terms(problem, vector, n, _DIFFERENCE_KEY, along.scaled, step,
                                   what="finite differences", largest=n)
    theta_smooth, theta_missed, theta_worst, theta_reach = _verdict(
        terms.theta_jumps, terms.theta_error, terms.shapes.get("theta_jumps"), along.scaled,
        terms.slopes["theta_jumps"])
    if not moving:
        return Smoothness(None, theta_smooth, theta_missed, along.names[theta_worst],
                          np.full(problem.dim, np.inf), theta_reach, terms, along, step)
    smooth, missed, worst, reach = _verdict(terms.jumps, terms.difference_error,
                                            terms.shapes.get("jumps"), along.scaled,
                                            terms.slopes["differences"])
    if smooth is not False and theta_smooth is False:
        missed, worst = theta_missed, theta_worst  # a jump in θ breaks the pathwise too
        smooth = False
    return Smoothness(smooth, theta_smooth, missed, along.names[worst], reach, theta_reach,
                      terms, along, step)


def _step(problem, vector, along: Directions, evaluations: int,
          samples: int = PILOT_SAMPLES, largest: int | None = None) -> np.ndarray:
    """The largest step (from ``STEP``, shrinking) whose O(h²) error, seen on a pilot of
    ``samples`` draws, is negligible: within 1e-3 of the differences' own scale (plus
    noise). ``largest``: as :func:`draws.difference_terms` takes it."""
    count = len(along.vectors)
    n = draws.fits(BUDGET // 16, problem, vector, evaluations, 64, samples)
    step = np.full(count, STEP)
    settled = np.zeros(count, dtype=bool)
    for _ in range(SHRINKS):
        try:
            pilot = draws.difference_terms(problem, vector, n, _PILOT_KEY, along.scaled, step,
                                           what="finite-difference step", largest=largest)
        except ValueError:  # not finite this far away: a smaller step may be
            step = np.where(settled, step, step / SHRINK)
            continue
        differences = pilot.differences or pilot.theta_jumps
        error = pilot.difference_error if pilot.differences is not None else pilot.theta_error
        scale = np.abs(differences.mean) + differences.spread
        settled |= np.abs(error) <= 1e-3 * scale + 3 * differences.se / 10
        if settled.all():
            break
        step = np.where(settled, step, step / SHRINK)
    return step


def _heavy(shapes) -> np.ndarray | bool:
    """Columns whose terms are too heavy-tailed for their SE (k̂ ≥ RELIABLE)."""
    if shapes is None:
        return False
    shapes = np.asarray(shapes, dtype=float)
    return np.nan_to_num(shapes, nan=-np.inf) >= tails.RELIABLE


def _per_component(reach: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """Per component i: min over directions k of reach_k / |u_ki| (a lone error e_i moves
    uᵀ by u_ki e_i)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(np.abs(scaled) > 0, reach[:, None] / np.abs(scaled), np.inf)
    return per.min(axis=0)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of a cross-check that did not raise.

    Attributes:
      tolerance: ``[d]``: the smallest error in each component alone that a check would
        have caught (inf: nothing could).
      checked: ``[d]``: tolerance within ``POWER`` of the gradient's scale, and no reason
        to distrust the check.
      note: One or more sentences: what limited the check, what was found.
      smooth: :class:`Smoothness` verdict (None: not tested).
      methods: The checks that counted, e.g. "score_function, finite_difference".
      f_shape: The Pareto k̂ of the check's draws of f (NaN: light or not fitted).
    """

    tolerance: np.ndarray
    checked: np.ndarray
    note: str = ""
    smooth: bool | None = None
    methods: str = ""
    f_shape: float = math.nan


def scale_of(gradient: np.ndarray) -> np.ndarray:
    """The gradient's scale per component: max(|∇_i|, rms ∇)."""
    gradient = np.abs(np.asarray(gradient, dtype=np.float64))
    rms = math.sqrt(float(np.mean(gradient**2))) if gradient.size else 0.0
    return np.maximum(gradient, rms)


def powered(tolerance: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Per component: could the check have seen an error of ``POWER`` × the scale?"""
    return np.asarray(tolerance) <= POWER * scale_of(gradient)


def power_note(tolerance: np.ndarray, gradient: np.ndarray, labels) -> str:
    """A sentence on the components whose check was too weak (empty when none)."""
    weak = ~powered(tolerance, gradient)
    if not weak.any():
        return ""
    scale = scale_of(gradient)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(scale > 0, tolerance / scale, np.inf)
    worst = int(np.argmax(np.where(weak, np.nan_to_num(ratio, nan=np.inf), -1.0)))
    count = int(weak.sum())
    which = f"'{labels[worst]}'" if count == 1 else f"{count:,} of {len(weak):,} components " \
        f"(worst '{labels[worst]}')"
    size = "no check could reach it" if not np.isfinite(tolerance[worst]) else \
        f"only errors beyond {tolerance[worst]:.3g} would have been seen, " + (
            f"{ratio[worst]:.2g}× the gradient's scale there" if np.isfinite(ratio[worst])
            else "and the gradient is 0")
    return (f"The cross-check could not resolve an error of {POWER:.0%} of the gradient in "
            f"{which}: {size}.")


def _short(vector) -> str:
    values = np.asarray(vector).tolist()
    return str(values) if len(values) <= 6 else f"[{', '.join(f'{v:g}' for v in values[:4])}, …]"


def _component_heavy(shapes, dim: int, along: Directions) -> np.ndarray:
    """Per component: are its terms too heavy-tailed? Tails are fitted per direction, so a
    component is heavy when a direction covering it is (the axes: exactly its own)."""
    heavy = np.broadcast_to(_heavy(shapes), (len(along.vectors),))
    return (np.abs(along.vectors) > 0)[heavy].any(axis=0) if heavy.any() else \
        np.zeros(dim, dtype=bool)


def _disagreement(problem, vector, claim: str, found: float, se: float, check: str,
                  hint: str) -> TruthError:
    """``claim``: "closed_form value 2.2"; ``check``: "a Monte Carlo check (N draws)", whose
    parenthesis goes after the number found."""
    name, _, detail = check.partition(" (")
    return TruthError(f"problem '{problem.name}' at theta={_short(vector)}: the {claim} "
                      f"disagrees with {name} {found:.6g} ± {se:.2g} ({detail}: {hint}.")


def _compare_components(problem, vector, kind, gradient, statistic: draws.Statistic,
                        skip: np.ndarray, check: str, hint: str, extra_se=0.0,
                        samples: int | None = None) -> np.ndarray:
    """Raises at the worst component beyond ``CHECK_SE`` SEs (not ``skip``ped, and only
    from ``RAISE_SAMPLES`` draws on: a mean of a few hundred skewed terms strays beyond 6
    SE far more often than a normal's, and at 10⁵ components some would); returns each
    component's reach (inf where skipped)."""
    se = np.sqrt(statistic.se**2 + np.asarray(extra_se)**2)
    margin = CHECK_SE * se + ROUNDING * (1 + np.abs(gradient))
    gap = np.abs(gradient - statistic.mean)
    bad = (gap > margin) & ~skip
    if bad.any() and (samples is None or samples >= RAISE_SAMPLES):
        worst = int(np.argmax(np.where(bad, gap / margin, -1.0)))
        raise _disagreement(problem, vector, f"{kind} gradient '{problem.param_labels[worst]}'"
                                             f" = {gradient[worst]:.6g}",
                            statistic.mean[worst], se[worst], check, hint)
    return np.where(skip, np.inf, CHECK_SE * se)


def _compare_directions(problem, vector, kind, gradient, smooth: Smoothness, skip,
                        hint: str, extra_se=0.0) -> np.ndarray:
    """The finite differences of E f against ``gradient`` along each direction: raises
    beyond ``CHECK_SE`` SEs plus their error allowance; returns each component's reach
    through the directions that cover it."""
    along, terms = smooth.directions, smooth.terms
    differences = terms.differences
    skip = np.broadcast_to(skip, differences.mean.shape)
    projected = along.scaled @ gradient
    se = np.sqrt(differences.se**2 + np.asarray(extra_se)**2)
    reach = CHECK_SE * se + np.abs(terms.difference_error)
    margin = reach + ROUNDING * (1 + np.abs(projected))
    gap = np.abs(projected - differences.mean)
    bad = (gap > margin) & ~skip
    if bad.any():
        k = int(np.argmax(np.where(bad, gap / margin, -1.0)))
        unit = "" if np.all(along.scale == 1.0) else \
            " (per unit of each component's step scale)"
        raise _disagreement(problem, vector, f"{kind} gradient along {along.names[k]}{unit} "
                                             f"= {projected[k]:.6g}", differences.mean[k],
                            se[k], f"finite differences of E f ({terms.samples:,} draws "
                                   "with common random numbers)", hint)
    return _per_component(np.where(skip, np.inf, reach), along.scaled)


def exact(problem, vector, value: float | None, gradient: np.ndarray, kind: str,
          hint: str) -> Verdict:
    """Cross-checks an exact value and gradient (module docstring).

    Raises:
      TruthError: a check disagrees beyond ``CHECK_SE`` standard errors (``hint`` says
        what may be wrong).
    """
    gradient = np.asarray(gradient, dtype=np.float64)
    dim = problem.dim
    smooth = smoothness(problem, vector)
    along = smooth.directions
    use_score = not problem.support_depends_on_theta(vector) and smooth.theta_smooth is True
    use_pathwise = smooth.smooth is True
    n = draws.fits(BUDGET, problem, vector, 3, MIN_SAMPLES, CHECK_SAMPLES)
    baseline = value if value is not None and np.isfinite(value) else 0.0
    terms = draws.gradient_terms(problem, vector, n, _GRADIENT_KEY, score=use_score,
                                 pathwise=use_pathwise, baseline=baseline,
                                 directions=along.vectors, what="cross-check")
    one = terms.one_outcome
    notes, methods = [], []
    reaches = [np.full(dim, np.inf)]  # per component: one statistic each
    f_shape = float(terms.shapes["f"][0])
    # The score function's, the pathwise and the differences' terms all carry f: a
    # heavy-tailed f makes them heavy whatever their own fitted tail says.
    heavy_f = _heavy(f_shape) | _heavy(float(smooth.terms.shapes["f"][0]))
    if value is not None and not one and not heavy_f:
        margin = CHECK_SE * terms.f.se[0] + ROUNDING * (1 + abs(value))
        if abs(value - terms.f.mean[0]) > margin:
            raise _disagreement(problem, vector, f"{kind} value {value:.6g}", terms.f.mean[0],
                                terms.f.se[0], f"a Monte Carlo check ({n:,} draws)", hint)
    if use_score:
        skip = _component_heavy(terms.shapes["score"], dim, along) | one | heavy_f
        reach = _compare_components(problem, vector, kind, gradient, terms.score, skip,
                                    f"a Monte Carlo check ({n:,} score_function draws)", hint,
                                    samples=n)
        reaches.append(reach + smooth.theta_tolerance)  # a jump in θ too small to see
        methods.append("score_function")
    if use_pathwise:
        skip = _component_heavy(terms.shapes["pathwise"], dim, along) | one | heavy_f
        reach = _compare_components(problem, vector, kind, gradient, terms.pathwise, skip,
                                    f"a Monte Carlo check ({n:,} pathwise draws)", hint,
                                    samples=n)
        reaches.append(reach + smooth.tolerance)  # a jump along the draws too small to see
        methods.append("pathwise")
    if smooth.terms.differences is not None:
        skip = _heavy(smooth.terms.shapes.get("differences")) | heavy_f
        through = _compare_directions(problem, vector, kind, gradient, smooth, skip, hint)
        if dim <= AXES:  # beyond, K directions cannot vouch for each of d components
            reaches.append(through)
        methods.append("finite_difference")
    tolerance = np.min(reaches, axis=0)
    if smooth.smooth is False or smooth.theta_smooth is False:
        notes.append(jump_note(smooth))
    if f_shape >= tails.NO_MEAN:
        notes.append(f"f is too heavy-tailed at this θ for a Monte Carlo check (Pareto k̂ = "
                     f"{f_shape:.2f} ≥ 1: E f may be infinite, and then no finite value is "
                     "right).")
        tolerance = np.full(dim, np.inf)
    elif one:
        notes.append("Every draw of the check gave the same f and gradient, so outcomes "
                     f"rarer than 1 in {n:,} were never seen.")
    notes.append(power_note(tolerance, gradient, problem.param_labels))
    return Verdict(tolerance, powered(tolerance, gradient), " ".join(n for n in notes if n),
                   smooth.smooth, ", ".join(methods), f_shape)


def jump_evidence(smooth: Smoothness, vector=None) -> str:
    """"f is not differentiable ... (...)": the finding, as a clause (at θ = ``vector``
    when given, else "at this θ")."""
    at = "at this θ" if vector is None else f"at theta={_short(vector)}"
    if smooth.theta_smooth is False:
        return (f"f is not differentiable in θ {at} (with the draws held fixed, differences "
                f"of f exceed its autodiff gradient by {smooth.missed:.3g} along "
                f"{smooth.direction}: a jump of f in θ itself, such as 1[x > θ])")
    return (f"f is not differentiable along the draws {at} (finite differences of E f "
            f"exceed the pathwise gradient by {smooth.missed:.3g} along {smooth.direction}: "
            "a jump, step or rounding in x)")


def jump_note(smooth: Smoothness) -> str:
    """The sentence that says f is not differentiable (its "f" stays lower case)."""
    biased = ("score-function and pathwise estimates" if smooth.theta_smooth is False
              else "pathwise estimates")
    return f"{jump_evidence(smooth)}, so {biased} are biased here."

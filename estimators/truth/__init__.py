"""Ground truth: the value and gradient of E_{p(x|θ)}[f(x, θ)], labelled by how they were
obtained, and the exact moments of estimators.

Truth kinds (``truth_kind`` in results tables), chosen in this order:

* ``closed_form``: the problem's ``exact_value`` (TensorFlow ops), gradient by autodiff;
* ``quadrature``: scalar continuous events, adaptive quadrature of p·f and ∇θ(p·f) over
  the problem's window, inside the support (:mod:`estimators.truth.integrate`);
* ``enumeration``: discrete events, a sum over the support (scalar events), over every
  joint configuration (small vector events) or, for a cost declared additive over
  independent coordinates (``additive_cost=True``), over one coordinate at a time;
* ``monte_carlo``: anything else, a reference estimate from ``problem.reference_samples``
  draws with its standard error (:mod:`estimators.truth.monte_carlo`); that standard
  error enters every bias test (``bias_se``).

The first three are exact, and each is cross-checked against a quick Monte Carlo
estimate: a disagreement beyond a few standard errors raises :class:`TruthError` rather
than return a number that may be wrong. Results are cached per problem and θ.

Exact moments of an estimator (:func:`single_sample_moments`) come from the estimator's
own exact form (``Estimator.exact_moments``, beside each estimator), built from the
integrators here: :func:`integrate_per_sample` (a mean of iid terms in x),
:func:`noise_moments` (a mean of iid units of noise) and :func:`integrate_terms` (raw
moments for closed-form variances such as the leave-one-out baseline's). "Per-sample
variance" always means ``n × Var(estimate from n samples)``.

Example:

>>> import estimators as E
>>> p = E.problems.get("seed_dependence")
>>> reference = E.truth.reference(p, -1.0)
>>> reference.kind, reference.gradient.round(6)
('closed_form', array([0.48133]))
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Callable

import numpy as np

from estimators import measure
from estimators.errors import (DTYPE_WORDS, cause, sentence, speaks_for, tensorflow_check,
                               traced_failure)
from estimators._runtime import tf
from estimators.truth import check as checks
from estimators.truth import integrands, monte_carlo, tails
from estimators.truth.check import Smoothness, TruthError, smoothness
from estimators.truth.integrate import (NoExactForm, QuadratureWarning, coordinate_values,
                                        integrate)
from estimators.truth.integrate import method as integration_method
from estimators.truth.noise import (NOISE_SPAN, NoiseBlock, block_integrals, block_moments,
                                    mirrored, noise_moments, standard_normal_density)

KINDS = ("closed_form", "quadrature", "enumeration", "monte_carlo")
REFERENCES = monte_carlo.REFERENCES
METHODS = ("auto",) + KINDS

__all__ = [
    "KINDS", "NOISE_SPAN", "REFERENCES", "Smoothness", "NoExactForm", "NoiseBlock", "QuadratureWarning", "Reference",
    "block_integrals", "block_moments",
    "TruthError", "gradient", "integrate_per_sample", "integrate_terms", "kind", "mirrored",
    "no_exact_form", "noise_moments", "per_sample_variance", "reference",
    "single_sample_moments", "smoothness", "standard_normal_density", "value",
]


@dataclasses.dataclass(frozen=True)
class Reference:
    """The truth at one θ.

    Attributes:
      kind: One of ``KINDS``.
      value: E_p[f] (nan when only the gradient is known).
      value_se: Its standard error (0 for exact kinds).
      gradient: ∇θ E_p[f], ``[d]``.
      gradient_se: Its standard error per component, ``[d]`` (zeros for exact kinds).
      tolerance: ``[d]``: the smallest error in each component alone that the
        cross-check would have caught (inf where nothing could;
        :mod:`estimators.truth.check`). Results tables carry it as ``truth_tolerance``.
      component_checked: ``[d]``: the check could have seen an error of 10% of the
        gradient's scale in that component, and nothing made it inconclusive.
      note: Sentences on what limited the check or what it found ("" when nothing).
      smooth: Whether f is differentiable along the draws at θ, so that pathwise
        estimates are unbiased: True or False as tested by finite differences, None when
        untested (a measure TFP does not reparameterize).
      method: How it was obtained within its kind: "pathwise" or "score_function" for a
        Monte Carlo reference; for exact kinds, the checks that ran.
    """

    kind: str
    value: float
    value_se: float
    gradient: np.ndarray
    gradient_se: np.ndarray
    tolerance: np.ndarray
    component_checked: np.ndarray
    note: str = ""
    smooth: bool | None = None
    method: str = ""

    @property
    def exact(self) -> bool:
        return self.kind != "monte_carlo"

    @property
    def checked(self) -> bool:
        """Whether every component is checked (``component_checked``)."""
        return bool(np.all(self.component_checked))


_references: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def kind(problem, theta) -> str:
    """How :func:`reference` obtains the truth at θ (``method="auto"``)."""
    vector = problem.theta_vector(theta)
    if problem.exact_value is not None:
        return "closed_form"
    return _numeric_kind(problem, vector) or "monte_carlo"


def _numeric_kind(problem, vector) -> str | None:
    """"quadrature"/"enumeration" when one applies at θ, else None."""
    if problem.additive_cost and _additive_applies(problem, vector):
        return "enumeration"
    try:
        return integration_method(problem, vector)
    except NoExactForm:
        return None


def reference(problem, theta, method: str = "auto", check: bool = True) -> Reference:
    """The truth at θ: value and gradient, their standard errors and their kind.

    Args:
      problem: An :class:`estimators.Problem`.
      theta: θ in any form :meth:`Problem.theta_vector` accepts.
      method: "auto" (the first kind that applies, in the order of the module docstring),
        or one kind to force it ("quadrature" and "enumeration" both mean: integrate
        numerically, whichever applies).
      check: Cross-check exact kinds against Monte Carlo (default).

    Raises:
      ValueError: unknown method, or a method that does not apply to the problem.
      TruthError: the exact value disagrees with the Monte Carlo check.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}.")
    vector = problem.theta_vector(theta)
    if problem.minibatches is not None:  # a cached truth belongs to one minibatch
        problem.minibatches.check_home(f"the truth of problem '{problem.name}'")
    problem.validate(vector)  # a broken dist or cost: one sentence, not a trace
    cache = _references.setdefault(problem, {})
    key = (vector.tobytes(), method, check)
    if key not in cache:
        try:
            cache[key] = _reference(problem, vector, method, check)
        except (ValueError, tf.errors.ResourceExhaustedError):
            raise
        except Exception as error:  # noqa: BLE001 - the user's functions, traced in float64
            raise traced_failure(problem.name, "computing the truth", error) from None
    return cache[key]


def _reference(problem, vector, method, check) -> Reference:
    if method == "closed_form" and problem.exact_value is None:
        raise ValueError(f"problem '{problem.name}' has no closed form (exact_value); use "
                         "method='auto'.")
    if method in ("auto", "closed_form") and problem.exact_value is not None:
        value, gradient = _closed_form(problem, vector)
        found = "closed_form"
    elif method in ("auto", "quadrature", "enumeration") and _numeric_kind(problem, vector):
        found = _numeric_kind(problem, vector)
        if problem.additive_cost and _additive_applies(problem, vector):
            _check_additive(problem, vector)
            values = _coordinate_values(problem, vector)
            value, gradient = integrands.additive_value_and_gradient(problem, vector, values)
        else:
            value, gradient = integrate_value_and_gradient(problem, vector)
    elif method in ("quadrature", "enumeration"):
        raise ValueError(f"{_why_not_numeric(problem, vector)}; use method='auto'.")
    else:
        mc = monte_carlo.reference(problem, vector)
        return Reference("monte_carlo", mc.value, mc.value_se, mc.gradient, mc.gradient_se,
                         mc.verdict.tolerance, mc.verdict.checked, mc.verdict.note,
                         mc.verdict.smooth, mc.method)
    gradient = np.asarray(gradient, dtype=np.float64)
    dim = problem.dim
    if not check:
        return Reference(found, value, 0.0, gradient, np.zeros(dim), np.full(dim, np.inf),
                         np.zeros(dim, dtype=bool), "Not cross-checked (check=False).")
    if not np.all(np.isfinite(gradient)) or not np.isfinite(value):
        raise TruthError(f"problem '{problem.name}' at theta={checks._short(vector)}: the "
                         f"{found} truth is not finite (it overflows float64 or is undefined "
                         "there); choose θ where E f and its gradient are finite.")
    verdict = checks.exact(problem, vector, value, gradient, found,
                           _HINTS.get(found, "check the problem's definition"))
    note = verdict.note
    if found == "quadrature" and verdict.f_shape >= tails.RELIABLE:
        value, gradient, widened = _widened(problem, vector, value, gradient, verdict.f_shape)
        note = " ".join(part for part in (widened, note) if part)
    return Reference(found, value, 0.0, gradient, np.zeros(dim), verdict.tolerance,
                     verdict.checked, note, verdict.smooth, verdict.methods)


_HINTS = {
    "closed_form": "the closed form exact_value (or the problem's dist or cost) may be wrong",
    "quadrature": "the integration window may miss mass or cut a singularity; pass "
                  "window=(low, high) covering the mass of p(x|θ) f(x, θ)",
    "enumeration": "the summation window may miss mass; pass window=(low, high) covering "
                   "the support where p(x|θ) f(x, θ) matters",
}


def integrate_value_and_gradient(problem, vector) -> tuple[float, np.ndarray]:
    """E f and ∇θ E f by quadrature or enumeration, with the boundary terms of a support
    that moves with θ (Leibniz's rule: p f at each moving edge times the edge's gradient)."""
    result = integrate(problem, vector, "value_and_gradient", integrands.value_and_gradient)
    value, gradient = float(result[0]), np.asarray(result[1:], dtype=np.float64)
    if problem.support_depends_on_theta(vector):
        gradient = gradient + integrands.boundary_terms(problem, vector)
    return value, gradient


WIDENINGS = 4
"""How many times a quadrature window is widened by half to see whether its integral
settles."""


def _widened(problem, vector, value: float, gradient: np.ndarray, f_shape: float):
    """A quadrature over a window is finite even where E f is not, and misses the tail
    where f outgrows p. Where the check's draws of f looked heavy-tailed (k̂ ≥ 0.7),
    integrate over windows twice, four and eight times as wide: an integral that settles
    (value and gradient within 1e-6) is returned, the widest, with a note; one that keeps
    growing is refused, as an expectation that does not exist when k̂ ≥ 1 or the growth
    does not slow down, else as a window too narrow.

    Returns:
      (value, gradient, note).
    """
    low, high = problem.integration_window(vector)
    support = measure.support(problem.distribution(vector))
    window = (low, high)
    steps = []  # how much the value moved at each widening
    for _ in range(WIDENINGS):
        width = window[1] - window[0]
        wider = (window[0] - width / 4, window[1] + width / 4)
        if support is not None:
            wider = support.clip(*wider)
        if wider == window:
            break
        result = integrate(problem, vector, "value_and_gradient",
                           integrands.value_and_gradient, window=wider)
        new_value, new_gradient = float(result[0]), np.asarray(result[1:])
        if not (np.isfinite(new_value) and np.all(np.isfinite(new_gradient))):
            break  # f overflows float64 this far out: judge by what was integrated
        steps.append(abs(new_value - value))
        settled = abs(new_value - value) <= 1e-6 * (1 + abs(value)) and np.allclose(
            new_gradient, gradient, rtol=1e-6, atol=1e-6 * (1 + np.abs(gradient).max()))
        value, gradient, window = new_value, new_gradient, wider
        if settled:
            if window == (low, high) or wider == (low, high):
                return value, gradient, ""
            return value, gradient, (f"The integration window was widened to "
                                     f"({window[0]:g}, {window[1]:g}) before the integral "
                                     "settled: f outgrows p in the tails.")
    where = f"problem '{problem.name}' at theta={checks._short(vector)}"
    # A truncated tail of a finite E f shrinks fast as the window widens; an infinite one
    # grows by as much or more each time (log W for a Cauchy's |x|).
    diverging = len(steps) >= 2 and steps[-1] >= 0.5 * steps[-2]
    if f_shape >= tails.NO_MEAN or diverging:
        raise TruthError(f"{where}: E f does not appear to exist: its integral keeps growing as "
                         f"the window widens from ({low:g}, {high:g}) to ({window[0]:g}, "
                         f"{window[1]:g}) (to {value:.6g}, by {steps[-1]:.3g} at the last "
                         f"widening), and the Monte Carlo draws of f fall off like a power law "
                         f"(Pareto k̂ = {f_shape:.2f}); change θ, the measure or f so that "
                         "E f is finite.")
    raise TruthError(f"{where}: the quadrature window ({low:g}, {high:g}) cuts the tail where "
                     f"f outgrows p: the integral keeps changing as it widens to "
                     f"({window[0]:g}, {window[1]:g}) (to {value:.6g}); pass a "
                     "window=(low, high) that covers the mass of p(x|θ) f(x, θ).")


def _closed_form(problem, vector):
    variable = tf.constant(vector, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(variable)
        try:
            result = tf.convert_to_tensor(problem.exact_value(problem.unpack(variable)),
                                          dtype_hint=tf.float64)
        except Exception as error:  # noqa: BLE001 - a user's function may raise anything
            raise _exact_value_error(problem, error) from None
        if result.shape.num_elements() != 1:
            raise ValueError(f"problem '{problem.name}': exact_value(theta) must return one "
                             f"number, got shape {result.shape.as_list()}.")
        if not result.dtype.is_floating:
            raise ValueError(f"problem '{problem.name}': exact_value(theta) returned "
                             f"{result.dtype.name} values; return a floating-point number.")
        if result.dtype != tf.float64:
            result = tf.cast(result, tf.float64)
    gradient = tape.gradient(result, variable, unconnected_gradients=integrands.ZERO)
    return float(tf.reshape(result, [])), gradient.numpy()


def _exact_value_error(problem, error) -> ValueError:
    """One sentence for an exception from the user's ``exact_value``; a ValueError that
    already speaks for the problem passes unchanged."""
    if speaks_for(error, problem.name):
        return error
    detail = cause(error)
    if tensorflow_check(error) and DTYPE_WORDS.search(detail):
        return ValueError(f"problem '{problem.name}': exact_value(theta) raised "
                          f"{type(error).__name__}: {detail}; "
                          "exact values are computed in float64, so build constants in θ's "
                          "dtype (tf.cast(c, theta.dtype)) or as Python numbers.")
    return ValueError(f"problem '{problem.name}': exact_value(theta) raised "
                      f"{sentence(type(error).__name__, detail)}")


def _why_not_numeric(problem, vector) -> str:
    try:
        integration_method(problem, vector)
    except NoExactForm as error:
        return str(error)
    return "it does not apply"


def value(problem, theta, method: str = "auto") -> float:
    """E_{p(x|θ)}[f(x, θ)] (see :func:`reference`)."""
    return reference(problem, theta, method).value


def gradient(problem, theta, method: str = "auto") -> np.ndarray:
    """∇θ E_{p(x|θ)}[f(x, θ)] as an array ``[d]`` (see :func:`reference`)."""
    return reference(problem, theta, method).gradient.copy()


# -- additive costs of independent discrete coordinates ------------------------------------

def _additive_applies(problem, vector) -> bool:
    dist = problem.distribution(vector)
    if measure.event_rank(dist) != 1 or not measure.is_discrete(dist) \
            or measure.base(dist) is dist:
        return False
    try:
        _coordinate_values(problem, vector)
    except NoExactForm:
        return False
    return True


def _coordinate_values(problem, vector):
    return coordinate_values(problem, problem.distribution(vector))


def _check_additive(problem, vector, draws: int = 8) -> None:
    """f(b) - f(b⁰) must equal Σ_i [f(b⁰ with b_i) - f(b⁰)] at a few random b."""
    dist = problem.distribution(vector)
    size = measure.event_size(dist)
    values = _coordinate_values(problem, vector)
    b = np.asarray(tf.cast(dist.sample(draws, seed=tf.constant([3, 5], tf.int32)),
                           tf.float64))  # [k, D]
    b0 = np.full(size, values[0])
    singles = np.repeat(b0[np.newaxis], draws * size, axis=0)  # [k D, D]
    singles[np.arange(draws * size), np.tile(np.arange(size), draws)] = b.reshape(-1)
    x = np.concatenate([b0[np.newaxis], b, singles])
    theta = tf.constant(np.repeat(vector[np.newaxis], len(x), axis=0))
    f = problem.cost_values(integrands.measure64(problem, theta), tf.constant(x),
                            theta).numpy()
    joint = f[1:1 + draws] - f[0]
    summed = (f[1 + draws:].reshape(draws, size) - f[0]).sum(axis=1)
    if not np.allclose(joint, summed, rtol=1e-9, atol=1e-9 * (1 + np.abs(f).max())):
        raise TruthError(f"problem '{problem.name}' declares additive_cost=True, but "
                         f"f(b) - f(b⁰) = {joint[0]:.6g} while the sum of single-coordinate "
                         f"changes is {summed[0]:.6g}: the cost is not a sum over coordinates.")


# -- exact moments of estimators ------------------------------------------------------------

def single_sample_moments(problem, estimator, theta, batch_size: int | None = None):
    """Exact mean and per-sample variance ``([d], [d])`` of an estimator.

    For a mean of iid terms these are the moments of one sample's estimate, so an
    estimate from n samples has variance ``variance / n``; estimators with other
    structure (antithetic pairs, the leave-one-out baseline at batch size B) return
    ``n × Var(estimate from n samples)`` (see their ``exact_moments``). Deterministic
    estimators have variance zero.

    Raises:
      NotImplementedError: the estimator has no exact form here (the message says why:
        randomized QMC, vector events, a batch size that is needed, ...).
    """
    vector = problem.theta_vector(theta)
    if isinstance(estimator, str):
        raise TypeError("estimator must be an Estimator (e.g. E.get_estimator('score_function')"
                        f"), got the string {estimator!r}.")
    mean, variance = estimator.exact_moments(problem, vector, batch_size)
    if getattr(estimator, "unbiased", False) and not getattr(estimator, "deterministic", False):
        # Against a closed form this comparison checks the quadrature itself; against a
        # numeric truth, that truth must pass its Monte Carlo check first.
        truth = reference(problem, vector, check=problem.exact_value is None)
        if truth.exact and not np.allclose(mean, truth.gradient, rtol=1e-6,
                                           atol=1e-8 * (1 + np.abs(truth.gradient).max())):
            warnings.warn(f"the exact mean of {estimator.label} on problem '{problem.name}' at "
                          f"theta={vector.tolist()} is {mean.tolist()}, not the true gradient "
                          f"{truth.gradient.tolist()}: its exact variance may be inaccurate.",
                          QuadratureWarning, stacklevel=2)
    return np.asarray(mean, dtype=np.float64), np.asarray(variance, dtype=np.float64)


def per_sample_variance(problem, estimator, theta, batch_size: int | None = None) -> np.ndarray:
    """Exact ``n_samples × Var(estimate)`` ``[d]`` (see :func:`single_sample_moments`)."""
    return single_sample_moments(problem, estimator, theta, batch_size)[1]


def integrate_per_sample(problem, vector, per_sample: Callable, pathwise: bool, key):
    """Exact mean and variance ``([d], [d])`` of the single-sample estimate
    g = ∇θ ``per_sample(problem, dist, x, theta)``, by quadrature or enumeration over x.

    Raises:
      NotImplementedError: no quadrature or enumeration applies (vector continuous
        events, ...), or a pathwise estimate on a discrete measure.
    """
    dist = problem.distribution(vector)
    if pathwise and measure.is_discrete(dist):
        raise NotImplementedError(f"there is no pathwise derivative on the discrete problem "
                                  f"'{problem.name}'")
    if pathwise and measure.event_rank(dist):
        raise NotImplementedError("exact pathwise moments need scalar events")
    if pathwise and not isinstance(measure.base(dist), measure.QUANTILE_PATH_FAMILIES):
        raise NotImplementedError(
            f"TFP does not sample a {type(dist).__name__} along its quantile path, so the "
            "exact pathwise variance by quadrature (which assumes that path) does not apply")
    try:
        moments = integrate(problem, vector, ("moments", key),
                            integrands.moments(per_sample, pathwise))
    except NoExactForm as error:
        raise NotImplementedError(f"no exact per-sample variance: {error}") from None
    mean, second = moments[: problem.dim], moments[problem.dim:]
    return mean, np.maximum(second - mean**2, 0.0)


def integrate_terms(problem, vector, key, build) -> np.ndarray:
    """Σ/∫ of an integrand built by ``build(problem)`` (see :mod:`.integrands`).

    Raises:
      NotImplementedError: no quadrature or enumeration applies.
    """
    try:
        return integrate(problem, vector, key, build)
    except NoExactForm as error:
        raise NotImplementedError(f"no exact per-sample variance: {error}") from None


def no_exact_form(reason: str) -> Callable:
    """An ``Estimator.exact_moments`` that raises NotImplementedError(reason)."""
    def exact_moments(problem, theta, batch_size):
        raise NotImplementedError(reason)
    return exact_moments

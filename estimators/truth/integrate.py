"""Exact expectations over x: adaptive quadrature (scalar continuous events) and
enumeration (discrete events), for integrands already weighted by p(x|θ).

An integrand is built per problem as ``build(problem) -> fn(x [m, *event], theta [d])
-> [m, k]`` (float64, TensorFlow ops) and returns ``p(x|θ) · g(x)`` for m nodes at once;
:func:`integrate` chooses the nodes and returns the k sums or integrals:

* **scalar continuous x**: ``scipy.integrate.cubature`` (adaptive Gauss-Kronrod 21,
  vectorised: one TensorFlow call per batch of nodes; every component must meet
  ``ATOL + RTOL·|value|``) over the problem's window, which lies inside the support, split
  at its breakpoints. Its nodes are interior, so an integrable singularity at an edge of
  the support (a Gamma(0.5) density at 0) is never evaluated;
* **scalar discrete x**: every point of the support inside the window;
* **vector discrete x** (``tfd.Independent`` of a scalar discrete family): every joint
  configuration when there are at most ``measure.MAX_ENUMERATION``; a
  ``tfd.OneHotCategorical``: each of its C one-hot outcomes;
* anything else: :class:`NoExactForm`, and callers fall back (Monte Carlo reference) or
  report that there is no exact value.
"""

from __future__ import annotations

import itertools
import warnings
import weakref

import numpy as np
from scipy import integrate as scipy_integrate

from estimators import measure
from estimators._runtime import tf, tfd

ATOL = 1e-11
RTOL = 1e-10


class NoExactForm(NotImplementedError):
    """No quadrature or enumeration applies (e.g. a continuous vector event)."""


class QuadratureWarning(UserWarning):
    """Adaptive quadrature did not reach its tolerance."""


_compiled: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def compiled(problem, key, build, event_shape=()):
    """``build(problem)`` as a ``tf.function`` over (x [m, *event], θ [d]), cached per
    problem and ``key`` so that each integrand traces once."""
    cache = _compiled.setdefault(problem, {})
    if key not in cache:
        cache[key] = tf.function(build(problem), input_signature=[
            tf.TensorSpec([None, *event_shape], tf.float64),
            tf.TensorSpec([problem.dim], tf.float64)])
    return cache[key]


def method(problem, vector) -> str:
    """"quadrature" or "enumeration": how :func:`integrate` would integrate at θ.

    Raises:
      NoExactForm: neither applies.
    """
    dist = problem.distribution(vector)
    if measure.event_rank(dist) == 0:
        if measure.is_discrete(dist):
            return "enumeration"
        # A support that moves with θ is integrated too: its gradient then adds the
        # boundary terms (estimators.truth.integrands.boundary_terms).
        if problem.window is None and measure.heavy_tailed(
                dist, *problem.integration_window(vector)):
            raise NoExactForm(f"problem '{problem.name}': the tails of its "
                              f"{type(dist).__name__} hold more than {measure.TAIL_MASS:g} "
                              f"of the mass beyond {measure.WIDEST:g} spreads; give a "
                              "window=(low, high) to integrate over anyway")
        return "quadrature"
    if (measure.event_rank(dist) == 1 and measure.is_discrete(dist)) or _one_hots(dist):
        _joint_points(problem, dist)  # raises NoExactForm when too many
        return "enumeration"
    raise NoExactForm(f"problem '{problem.name}' has {_event_text(dist)} events, which "
                      "neither quadrature (scalar events only) nor enumeration (discrete "
                      "events only) covers")


def integrate(problem, vector: np.ndarray, key, build, window=None) -> np.ndarray:
    """Σ or ∫ of the integrand over x at θ = ``vector``: ``[k]`` float64, over the
    problem's window (or ``window``, for scalar continuous events)."""
    dist = problem.distribution(vector)
    theta = tf.constant(vector, tf.float64)
    kind = method(problem, vector)
    if kind == "enumeration":
        points = _joint_points(problem, dist) if measure.event_rank(dist) else \
            scalar_points(problem, vector)
        integrand = compiled(problem, key, build, points.shape[1:])
        return _sum_in_chunks(integrand, points, theta)
    integrand = compiled(problem, key, build)
    low, high = window or problem.integration_window(vector)

    def at(x):  # x: [m, 1] -> [m, k]; one call evaluates a whole batch of nodes
        return integrand(tf.constant(x[:, 0]), theta).numpy()

    cuts = sorted({*(b for b in problem.breakpoints if low < b < high),
                   *measure.scale_points(dist, low, high)})
    points = [np.array([b]) for b in cuts] or None
    result = scipy_integrate.cubature(at, np.array([low]), np.array([high]), rule="gk21",
                                      rtol=RTOL, atol=ATOL, points=points)
    if result.status != "converged":
        warnings.warn(f"quadrature for problem '{problem.name}' at theta={vector.tolist()} "
                      f"stopped with error estimate {np.max(result.error):.3g}",
                      QuadratureWarning, stacklevel=3)
    return np.asarray(result.estimate, dtype=np.float64)


def scalar_points(problem, vector) -> np.ndarray:
    """The points of a scalar discrete support inside the problem's window."""
    dist = problem.distribution(vector)
    support = measure.support(dist)
    low, high = problem.integration_window(vector)
    if support is not None and support.points is not None:
        points = np.array([p for p in support.points if low <= p <= high])
    else:
        if support is not None:
            low, high = support.clip(low, high)
        points = np.arange(np.ceil(low), np.floor(high) + 1.0)
    if points.size > 50 * measure.MAX_ENUMERATION:
        raise NoExactForm(f"problem '{problem.name}': {points.size:.3g} support points in "
                          f"the window {low, high} are too many to sum; give a narrower "
                          "window=(low, high)")
    return points


def _one_hots(dist) -> bool:
    """V one-hot categorical variables, draws [V, C]."""
    return (measure.event_rank(dist) == 2 and isinstance(dist, tfd.Independent)
            and isinstance(dist.distribution, tfd.OneHotCategorical))


def _joint_points(problem, dist) -> np.ndarray:
    """Every configuration of a vector of independent discrete coordinates, every
    outcome of a one-hot categorical (the rows of the identity): [M, D], or every joint
    state of V one-hot categorical variables: [C^V, V, C]."""
    size = measure.event_size(dist)
    if _one_hots(dist):
        variables, categories = dist.event_shape.as_list()
        if categories**variables > measure.MAX_ENUMERATION:
            raise NoExactForm(f"problem '{problem.name}': {categories}^{variables} joint "
                              "states are too many to enumerate (limit "
                              f"{measure.MAX_ENUMERATION:,})")
        states = list(itertools.product(range(categories), repeat=variables))
        return np.eye(categories)[np.array(states, dtype=np.int64)]
    if isinstance(dist, tfd.OneHotCategorical):
        if size > measure.MAX_ENUMERATION:
            raise NoExactForm(f"problem '{problem.name}': {size:,} categories are too many "
                              f"to enumerate (limit {measure.MAX_ENUMERATION:,})")
        return np.eye(size, dtype=np.float64)
    support = measure.support(dist)
    if support is None or not support.finite:
        raise NoExactForm(f"problem '{problem.name}': the coordinates of its {_event_text(dist)}"
                          " events have no finite support to enumerate")
    values = np.array(support.points) if support.points is not None else \
        np.arange(support.low, support.high + 1.0)
    if values.size**size > measure.MAX_ENUMERATION:
        raise NoExactForm(f"problem '{problem.name}': {values.size}^{size} joint "
                          f"configurations are too many to enumerate (limit "
                          f"{measure.MAX_ENUMERATION:,}; an additive cost can declare "
                          "additive_cost=True)")
    return np.array(list(itertools.product(values, repeat=size)), dtype=np.float64)


def coordinate_values(problem, dist) -> np.ndarray:
    """The values one coordinate of a vector discrete event takes (finite support)."""
    support = measure.support(dist)
    if support is None or not support.finite or support.size() > measure.MAX_ENUMERATION:
        raise NoExactForm(f"problem '{problem.name}': the coordinates of its "
                          f"{_event_text(dist)} events have no small finite support")
    return np.array(support.points) if support.points is not None else \
        np.arange(support.low, support.high + 1.0)


def _sum_in_chunks(integrand, points: np.ndarray, theta, chunk: int = 8192) -> np.ndarray:
    total = None
    for start in range(0, len(points), chunk):
        part = integrand(tf.constant(points[start:start + chunk]), theta).numpy().sum(axis=0)
        total = part if total is None else total + part
    return total


def _event_text(dist) -> str:
    kind = "discrete" if measure.is_discrete(dist) else "continuous"
    return f"{kind} {dist.event_shape.as_list()}-shaped"

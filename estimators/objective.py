"""What a training run needs from a problem besides gradient estimates.

A training run (``bench/training.py``, after Mohamed et al. 2020, §8) moves θ along

    J(θ) = E_{p(x|θ)}[f(x, θ)] − penalty(θ)     (maximized: an ELBO, penalty = KL(q ‖ prior))
    J(θ) = E_{p(x|θ)}[f(x, θ)] + penalty(θ)     (minimized: a cost)

with a gradient estimator for the first term and the exact gradient of the second. This
module computes, at one θ and in float64, the parts that are not estimates of ∇θ E[f]:

* :func:`cost_at_draws`: f at n draws of p(x|θ), keyed by a seed, for the logged value of
  E[f] and its standard error;
* :func:`penalty`: the problem's ``penalty`` and its gradient by autodiff (0 without one);
* :func:`diagnostics`: the problem's ``diagnostics`` (e.g. a classifier's accuracy).

``penalty`` and ``diagnostics`` receive θ in float64, in the form ``dist`` receives.

Each is one compiled graph per problem (and draw count), traced once: a training run
calls them thousands of times.

>>> import estimators as E
>>> p = E.problems.get("logistic_regression")
>>> value, gradient = E.objective.penalty(p, {"mean": 1.0, "log_scale": 0.0})
>>> round(value, 6), gradient[:2].tolist()   # KL = ½ Σ mean² over 31 weights
(15.5, [1.0, 1.0])
"""

from __future__ import annotations

import re

import numpy as np

from estimators import _rng, measure
from estimators._rng import tracing_rng
from estimators._runtime import tf
from estimators.errors import DTYPE_WORDS, cause, sentence

__all__ = ["cost_at_draws", "penalty", "diagnostics"]


def _compiled(problem, name: str, build):
    """One ``tf.function`` per problem and ``name``, over θ ``[d]`` float64."""
    caches = problem.__dict__.setdefault("_caches", {})
    functions = caches.setdefault("objective", {})
    if name not in functions:
        functions[name] = tf.function(build, reduce_retracing=False,
                                      input_signature=[tf.TensorSpec([problem.dim], tf.float64)]
                                      + ([tf.TensorSpec([2], tf.int32)]
                                         if name.startswith("draws") else []))
    return functions[name]


def _call(problem, what: str, function, *args):
    with tracing_rng():
        try:
            return function(*args)
        except Exception as error:  # noqa: BLE001 - the user's functions, traced
            detail = cause(error)
            # Traced, our own one-sentence errors come back as "ValueError: problem '...'".
            ours = re.sub(r"^\w+Error: ", "", detail)
            if ours.startswith(f"problem '{problem.name}'"):
                raise ValueError(ours) from None
            name = type(error).__name__
            if detail.startswith(f"{name}: ") or re.match(r"^\w+(Error|Exception)\b", detail):
                name, _, detail = detail.partition(": ")
            hint = ""
            if DTYPE_WORDS.search(detail):
                hint = (" θ arrives in float64 here: write constants as Python numbers or "
                        "cast them to θ's dtype.")
            raise ValueError(f"problem '{problem.name}': {what} raised "
                             f"{sentence(name, detail)}{hint}") from None


def cost_at_draws(problem, theta, n: int, seed) -> np.ndarray:
    """``f(x_i, θ)`` for ``n`` independent draws x_i ~ p(x|θ), float64 ``[n]``.

    Same θ, n and seed: same values.

    Raises:
      ValueError: θ invalid for the problem, or its dist or cost fails.
    """
    vector = problem.theta_vector(theta)

    def values(theta, key):
        batch = theta[tf.newaxis, :]  # [R=1, d]
        dist = problem.measure(batch)
        x = dist.sample(measure.sample_shape(dist, n, 1), seed=key)  # [n, 1, *event]
        return problem.cost_values(dist, x, batch)[:, 0]  # [n]

    function = _compiled(problem, f"draws{n}", values)
    result = _call(problem, "cost(x, theta)", function, tf.constant(vector, tf.float64),
                   tf.constant(_rng.seed_pair(seed), tf.int32))
    return result.numpy()


def penalty(problem, theta) -> tuple[float, np.ndarray]:
    """``(penalty(θ), ∇θ penalty(θ))`` in float64; ``(0, zeros)`` for a problem without one.

    Raises:
      ValueError: θ invalid, or the penalty fails or is not one number.
    """
    vector = problem.theta_vector(theta)
    if problem.penalty is None:
        return 0.0, np.zeros(problem.dim)

    def value_and_gradient(theta):
        with tf.GradientTape() as tape:
            tape.watch(theta)
            value = tf.convert_to_tensor(problem.penalty(problem.unpack(theta)), tf.float64)
        if value.shape.rank != 0:
            raise ValueError(f"problem '{problem.name}': penalty(theta) must return one number, "
                             f"got shape {value.shape.as_list()}.")
        gradient = tape.gradient(value, theta,
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return value, gradient

    value, gradient = _call(problem, "penalty(theta)",
                            _compiled(problem, "penalty", value_and_gradient),
                            tf.constant(vector, tf.float64))
    return float(value), gradient.numpy()


def diagnostics(problem, theta) -> dict[str, float]:
    """The problem's ``diagnostics(θ)`` as ``{name: float}``; ``{}`` without them.

    Raises:
      ValueError: θ invalid, or diagnostics fail or do not return numbers by name.
    """
    vector = problem.theta_vector(theta)
    if problem.diagnostics is None:
        return {}

    def values(theta):
        found = problem.diagnostics(problem.unpack(theta))
        if not isinstance(found, dict):
            raise ValueError(f"problem '{problem.name}': diagnostics(theta) must return a dict "
                             f"from names to numbers, got {type(found).__name__}.")
        out = {}
        for name, value in found.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"problem '{problem.name}': diagnostics(theta) must name its "
                                 f"numbers with strings, got the key {name!r}.")
            value = tf.convert_to_tensor(value)
            if not (value.dtype.is_floating or value.dtype.is_integer or value.dtype.is_bool):
                raise ValueError(f"problem '{problem.name}': diagnostics(theta)['{name}'] must "
                                 f"be a number, got {value.dtype.name} values.")
            value = tf.cast(value, tf.float64)
            if value.shape.rank != 0:
                raise ValueError(f"problem '{problem.name}': diagnostics(theta)['{name}'] must "
                                 f"be one number, got shape {value.shape.as_list()}.")
            out[name] = value
        return out

    found = _call(problem, "diagnostics(theta)", _compiled(problem, "diagnostics", values),
                  tf.constant(vector, tf.float64))
    return {name: float(value) for name, value in found.items()}

"""Integrands of exact values: ``(x [m, *event], theta [d]) -> p(x|θ) · g(x)  [m, k]``.

All in float64. Each row m is evaluated at its own copy of θ (``theta_m``, [m, d]), so
one gradient of a sum over rows gives every row's θ-gradient.
"""

from __future__ import annotations

import numpy as np

from estimators import measure
from estimators._runtime import tf

ZERO = tf.UnconnectedGradients.ZERO


def measure64(problem, theta_m):
    """``p(x|θ)`` in float64, rebuilding one that ignores θ's dtype (``tfd.Normal(0., 1.)``)."""
    dist = problem.measure(theta_m)
    if dist.dtype in (tf.float64, tf.int32, tf.int64) and _parameters_are_float64(dist):
        return dist

    def widen(value):
        floating = isinstance(value, float) or (tf.is_tensor(value) and value.dtype.is_floating)
        return tf.cast(value, tf.float64) if floating else value

    try:
        return type(dist)(**{k: widen(v) for k, v in dist.parameters.items()})
    except Exception as error:  # noqa: BLE001 - any failure means: cannot rebuild
        raise ValueError(f"problem '{problem.name}': dist(theta) returned a {dist.dtype.name} "
                         f"{type(dist).__name__} for float64 θ and it could not be rebuilt in "
                         "float64 for exact values; build it from θ's dtype, e.g. "
                         "tfd.Normal(tf.zeros_like(theta), 1.).") from error


def _parameters_are_float64(dist) -> bool:
    for value in dist.parameters.values():
        if tf.is_tensor(value) and value.dtype.is_floating and value.dtype != tf.float64:
            return False
    return True


def tiled(theta, x):
    """θ ``[d]`` repeated for each of the m rows of x: ``[m, d]``."""
    return tf.tile(theta[tf.newaxis, :], [tf.shape(x)[0], 1])


def implicit_path(dist, x):
    """x with value x and derivative ∂x/∂θ = -∇θ F(x|θ) / p(x|θ) (Figurnov et al. 2018),
    TFP's path for its univariate families (for a Normal it equals ∂(μ + σε)/∂θ)."""
    shifted = -dist.cdf(x) / tf.stop_gradient(dist.prob(x))
    return x + (shifted - tf.stop_gradient(shifted))


def value_and_gradient(problem):
    """``[p f, ∇θ(p f)]``: ``[m, 1 + d]``."""
    def integrand(x, theta):
        theta_m = tiled(theta, x)
        with tf.GradientTape() as tape:
            tape.watch(theta_m)
            dist = measure64(problem, theta_m)
            weighted = dist.prob(x) * problem.cost_values(dist, x, theta_m)  # [m]
        # Row i depends only on theta_m[i], so the gradient of the sum is per-row.
        gradient = tape.gradient(weighted, theta_m, unconnected_gradients=ZERO)  # [m, d]
        return tf.concat([weighted[:, tf.newaxis], gradient], axis=1)
    return integrand


def boundary_terms(problem, vector) -> "np.ndarray":
    """Leibniz's rule for a scalar support [a(θ), b(θ)] that moves with θ: the part of
    ∇θ ∫_a^b p f dx that differentiating under the integral misses,
    p(b) f(b) ∇θ b − p(a) f(a) ∇θ a, with p f taken just inside each moving edge: ``[d]``.
    """
    theta = tf.constant(vector, tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(theta)
        edges = measure.support_edges(measure64(problem, theta))  # [2]
        low, high = edges[0], edges[1]
    total = np.zeros(problem.dim)
    for edge, sign in ((low, -1.0), (high, 1.0)):
        moves = tape.gradient(edge, theta, unconnected_gradients=ZERO).numpy()
        if not np.isfinite(float(edge)) or not np.any(moves != 0.0):
            continue
        inside = float(edge) - sign * 1e-10 * max(1.0, abs(float(edge)),
                                                   float(high - low) if np.isfinite(
                                                       float(high - low)) else 1.0)
        dist = measure64(problem, theta[tf.newaxis, :])
        x = tf.constant([inside], tf.float64)
        weighted = dist.prob(x) * problem.cost_values(dist, x, theta[tf.newaxis, :])
        total += sign * float(weighted[0]) * moves
    return total


def moments(per_sample, pathwise: bool):
    """``p · [g, g²]`` for the single-sample estimate g = ∇θ ``per_sample``: a builder
    ``problem -> integrand`` giving ``[m, 2d]``.

    ``per_sample(problem, dist, x, theta) -> [m]`` is the surrogate of single draws;
    pathwise estimators differentiate x along the implicit reparameterization path.
    """
    def build(problem):
        def integrand(x, theta):
            theta_m = tiled(theta, x)
            with tf.GradientTape() as tape:
                tape.watch(theta_m)
                dist = measure64(problem, theta_m)
                point = implicit_path(dist, x) if pathwise else x
                surrogate = per_sample(problem, dist, point, theta_m)  # [m]
            single = tape.gradient(surrogate, theta_m, unconnected_gradients=ZERO)  # [m, d]
            density = tf.stop_gradient(dist.prob(x))[:, tf.newaxis]  # [m, 1]
            return tf.concat([density * single, density * single**2], axis=1)  # [m, 2d]
        return integrand
    return build


def score_terms(problem):
    """p · [f, f², s², ψ, ψ², ψ s, f s] with s = ∇θ log p, ψ = f s + ∇θ f: [m, 2 + 5d]
    (the one-dimensional moments behind the leave-one-out baseline's exact variance)."""
    def integrand(x, theta):
        theta_m = tiled(theta, x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(theta_m)
            dist = measure64(problem, theta_m)
            log_prob = dist.log_prob(x)  # [m]
            values = problem.cost_values(dist, x, theta_m)  # [m]
        score = tape.gradient(log_prob, theta_m, unconnected_gradients=ZERO)  # [m, d]
        cost_gradient = tape.gradient(values, theta_m, unconnected_gradients=ZERO)  # [m, d]
        f = values[:, tf.newaxis]  # [m, 1]
        psi = f * score + cost_gradient  # [m, d]
        density = tf.stop_gradient(dist.prob(x))[:, tf.newaxis]  # [m, 1]
        terms = [f, f**2, score**2, psi, psi**2, psi * score, f * score]
        return density * tf.concat(terms, axis=1)  # [m, 2 + 5d]
    return integrand


def additive_value_and_gradient(problem, vector, values):
    """E f and ∇θ E f for an additive cost f(b) = Σ_i f_i(b_i) of independent discrete
    coordinates, from ``1 + D(|V| - 1)`` evaluations of f: with b⁰ the configuration of
    lowest values, f(b) = f(b⁰) + Σ_i [f(b⁰ with b_i) - f(b⁰)], so
    E f = f(b⁰) + Σ_i Σ_{v ≠ b⁰_i} P(b_i = v) [f(b⁰ with b_i = v) - f(b⁰)]."""
    size = measure.event_size(problem.distribution(vector))
    others = values[1:]
    configs = [tf.fill([size], values[0])]
    coordinate, value = [], []
    for i in range(size):
        for v in others:
            coordinate.append(i)
            value.append(v)
    base = tf.fill([len(coordinate), size], values[0])
    changed = tf.tensor_scatter_nd_update(
        base, [[m, i] for m, i in enumerate(coordinate)], tf.constant(value, tf.float64))
    x = tf.concat([tf.stack(configs), changed], axis=0)  # [M, D]
    theta = tf.constant(vector, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(theta)
        theta_m = tiled(theta, x)
        dist = measure64(problem, theta_m)
        f = problem.cost_values(dist, x, theta_m)  # [M]
        inner = measure.base(measure64(problem, theta[tf.newaxis, :]))  # batch [1, D]
        marginals = tf.stack([inner.prob(tf.fill([1, size], tf.constant(v, tf.float64)))[0]
                              for v in others])  # [|V|-1, D]: P(b_i = v)
        weights = tf.reshape(tf.transpose(marginals), [-1])  # [D (|V|-1)], config order
        total = f[0] + tf.reduce_sum(weights * (f[1:] - f[0]))
    return float(total), tape.gradient(total, theta, unconnected_gradients=ZERO).numpy()

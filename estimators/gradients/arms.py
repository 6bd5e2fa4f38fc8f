"""ARMS: antithetic REINFORCE with n coupled draws for binary latent variables
(Dimitriev & Zhou, "ARMS: Antithetic-REINFORCE-Multi-Sample Gradient for Binary
Variables", ICML 2021).

Estimates ∇θ E_{p(b|θ)}[f(b, θ)] for independent Bernoullis b ∈ {0, 1}^D with logits α(θ)
and p = σ(α). A batch of n ≥ 2 draws is one group: per coordinate, n uniforms u_1..u_n
come from a *copula* that keeps each uniform marginally but correlates them negatively,
b_i = 1[u_i < p] (or 1[1 - u_i < p], below), and the leave-one-out (RLOO) estimate of the
group is rescaled so that the correlation between a draw and its baseline does not bias
it:

    ĝ_d = p_d (1 - p_d) / (q_d - C(q_d, q_d)) · 1/(n-1) Σ_i (f(b_i) - f̄) (b_{i,d} - p_d),

with f̄ the group's mean of f, q = min(p, 1 - p) and C the copula's bivariate CDF. Where
p ≥ ½ the draws are b_i = 1[1 - u_i < p] (the reference code's choice: the copula couples
the lower tail). Unbiased for every f, since for i ≠ j, E[(b_{i,d} - p) | b_j] is linear in
b_{j,d}; n evaluations of f per group, one per draw.

Two copulas, as in the paper:

* ``arms``, the **Dirichlet copula** (the paper's ARMS-D): d ~ Dirichlet(1, …, 1),
  u_i = (1 - d_i)^(n-1) (each Beta(1, n-1)'s CDF, so uniform), with
  C(q, q) = max(2 q^(1/(n-1)) - 1, 0)^(n-1). At n = 2 the pair is (u, 1 - u) and ARMS
  is DisARM (Dong et al. 2020) exactly.
* ``arms_gaussian``, the **Gaussian copula** (ARMS-N): n standard normals projected on
  Σ z = 0 and rescaled, so equicorrelated with ρ = -1/(n-1); u_i = Φ(z_i) and
  q - C(q, q) = 2 T(Φ⁻¹(q), √(n/(n-2))) by Owen's T function.

Exact moments on one Bernoulli: the estimate depends on the draws only through the number
m of ones; under the Dirichlet copula the probability of each m is a finite sum
(:func:`dirichlet_count_probabilities`), so the mean and the per-sample variance of the
group are sums over m = 0..n. The Gaussian copula's probabilities are orthant
probabilities of equicorrelated normals, which gradvar does not compute beyond n = 2.
"""

from __future__ import annotations

import dataclasses
import fractions
import math
from collections.abc import Callable

import numpy as np

from estimators import _rng
from estimators._runtime import tf
from estimators.gradients import logits
from estimators.gradients.base import Identity, per_draw

sg = tf.stop_gradient


def dirichlet_below(n: int, q, key):
    """``[n, *q.shape]`` booleans u_i < q for n uniforms coupled along the first axis by
    the Dirichlet copula, u_i = (1 - d_i)^(n-1): decided on the Dirichlet weights, since
    u_i < q exactly when d_i > 1 - q^(1/(n-1)) — one power per coordinate, not per draw."""
    exponentials = -tf.math.log(logits.uniforms(tf.concat([[n], tf.shape(q)], 0), key,
                                                q.dtype))  # d = e / Σe is Dirichlet(1)
    level = (1.0 - q ** (1.0 / (n - 1))) * tf.reduce_sum(exponentials, axis=0)
    return exponentials > level


def dirichlet_gap(q, n: int):
    """q - C(q, q) for the Dirichlet copula of n uniforms: ``q``'s shape."""
    return q - tf.nn.relu(2.0 * q ** (1.0 / (n - 1)) - 1.0) ** (n - 1)


def gaussian_below(n: int, q, key):
    """``[n, *q.shape]`` booleans u_i < q for u_i = Φ(z_i), z equicorrelated normals with
    ρ = -1/(n-1), z = √(n/(n-1))·c and c centred normals: decided on c, since u_i < q
    exactly when c_i < Φ⁻¹(q)·√((n-1)/n) — one quantile per coordinate, not Φ per draw."""
    normals = _rng.normal(tf.concat([[n], tf.shape(q)], 0), key, q.dtype)
    centred = normals - tf.reduce_mean(normals, axis=0, keepdims=True)
    quantile = -_rng.tail_quantile(q, tf.zeros_like(q, tf.bool))  # Φ⁻¹(q), q ≤ ½
    return centred < quantile * math.sqrt((n - 1) / n)


def gaussian_gap(q, n: int):
    """q - C(q, q) for the Gaussian copula: 2 T(Φ⁻¹(q), √(n/(n-2))); and q for the
    antithetic pair (n = 2), where that slope is infinite."""
    if n == 2:
        return q - tf.nn.relu(2.0 * q - 1.0)
    h = _rng.tail_quantile(q, tf.zeros_like(q, tf.bool))  # -Φ⁻¹(q); T reads h² only
    return 2.0 * owens_t(h, math.sqrt(n / (n - 2)))


_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(24)


def owens_t(h, a: float):
    """Owen's T(h, a) = (1/2π) ∫₀ᵃ exp(-h²(1 + x²)/2) / (1 + x²) dx by 24-point
    Gauss-Legendre, one elementwise term per node (memory of h's shape only); relative
    error below 2e-13 against scipy for 1 ≤ a ≤ √3 and Φ(-|h|) ≥ 1e-12 in float64 (3.2e-5
    in float32, from the quantile). TFP's
    ``owens_t`` of an ``ndtri`` sent XLA's algebraic simplifier into a loop (its log
    said so) and ``ndtri`` loses q's relative precision in float32 under XLA."""
    total = tf.zeros_like(h)
    for node, weight in zip(a * (_NODES + 1.0) / 2.0, _WEIGHTS):
        total += weight / (1.0 + node**2) * tf.exp(-0.5 * (1.0 + node**2) * h * h)
    return a / (4.0 * math.pi) * total


EXACT_MAX_GROUP = 128
"""Largest group whose Dirichlet-copula count probabilities are summed exactly (0.5 s at
n = 128; the rational sums grow steeply: 5.5 s at 256, 20 minutes at 1,000)."""


def dirichlet_count_probabilities(q: float, n: int) -> np.ndarray:
    """P(exactly k of n Dirichlet-copula uniforms are below q), k = 0..n (float64).

    u_i < q exactly when d_i > t = 1 - q^(1/(n-1)), and the n spacings of a uniform
    Dirichlet exceed t on a set of j of them with probability max(1 - j t, 0)^(n-1);
    inclusion and exclusion give each count. The alternating sums are done in exact
    rational arithmetic (t is a binary fraction), so they lose nothing for any n.

    Raises:
      NotImplementedError: n > ``EXACT_MAX_GROUP`` (the sums would take minutes).
    """
    if n > EXACT_MAX_GROUP:
        raise NotImplementedError(
            f"exact moments of arms sum over the group's number of ones in exact arithmetic, "
            f"which gradvar does up to n = {EXACT_MAX_GROUP} draws per batch (got "
            f"{n}); measure smaller batches for an exact comparison")
    t = fractions.Fraction(1.0 - q ** (1.0 / (n - 1)))

    def beyond(j):
        return max(1 - j * t, fractions.Fraction(0)) ** (n - 1)

    return np.array([float(math.comb(n, k) * sum((-1) ** j * math.comb(n - k, j) * beyond(k + j)
                                                 for j in range(n - k + 1)))
                     for k in range(n + 1)])


def gaussian_count_probabilities(q: float, n: int) -> np.ndarray:
    if n == 2:  # the antithetic pair, as the Dirichlet copula's
        return dirichlet_count_probabilities(q, 2)
    raise NotImplementedError(
        "exact moments of arms_gaussian need orthant probabilities of n equicorrelated "
        f"normals (ρ = -1/(n-1)), which gradvar computes only for n = 2 (got n = {n}); arms "
        "(the Dirichlet copula) has exact moments for every n")


@dataclasses.dataclass(frozen=True)
class Copula:
    """How a group of n uniforms is coupled.

    Attributes:
      below: ``(n, q, key) -> [n, *q.shape]``: whether each of n coupled uniforms is below
        q (≤ ½), decided without forming the uniforms.
      gap: ``(q, n) -> q - C(q, q)`` (TensorFlow ops).
      count_probabilities: ``(q, n) -> [n + 1]`` P(k of the n below q), for exact moments.
    """

    below: Callable
    gap: Callable
    count_probabilities: Callable


DIRICHLET = Copula(dirichlet_below, dirichlet_gap, dirichlet_count_probabilities)
GAUSSIAN = Copula(gaussian_below, gaussian_gap, gaussian_count_probabilities)


def group_surrogate(problem, dist, theta, b, gap: Callable):
    """The surrogate of one group of draws b ``[n, R, *event]``: ``[R]``, whose θ-gradient
    is ĝ (module docstring) plus the mean of ∇θ f over the group."""
    n = b.shape[0]
    alpha = logits.logits(dist, theta)  # [R, *event]
    p = tf.sigmoid(sg(alpha))
    # p rounded to 0 or 1 (|α| ≳ 17 in float32) makes the gap 0; the factor's limit is 1,
    # and it multiplies b - p = 0 there.
    gaps = gap(tf.minimum(p, 1.0 - p), n)
    debias = tf.where(gaps > 0, p * (1.0 - p) / gaps, tf.ones_like(p))  # [R, *event]
    f = problem.cost_values(dist, b, theta)  # [n, R]
    event = list(range(1, alpha.shape.rank))
    centred = tf.reshape(sg(f - tf.reduce_mean(f, axis=0)),
                         tf.concat([tf.shape(f), tf.ones([len(event)], tf.int32)], 0))
    weight = debias * tf.reduce_sum(centred * (b - p), axis=0) / (n - 1)  # [R, *event]
    return tf.reduce_sum(sg(weight) * alpha, axis=event) + tf.reduce_mean(f, axis=0)


def _surrogate(copula: Copula):
    def surrogate(problem, theta, n, key, context, state):  # [R]
        del context, state  # stateless, no settings
        dist = problem.measure(theta)
        p = tf.sigmoid(sg(logits.logits(dist, theta)))  # [R, *event]
        below = copula.below(n, tf.minimum(p, 1.0 - p), key)  # [n, R, *event]
        # b = 1[u < p] where p < ½, else 1[1 - u < p] = 1[u > 1 - p] (ties have measure 0)
        b = tf.cast(tf.where(p < 0.5, below, ~below), p.dtype)
        return group_surrogate(problem, dist, theta, b, copula.gap)

    return surrogate


def _exact_moments(name: str, copula: Copula):
    """``exact_moments(problem, θ [d], batch_size)`` on one Bernoulli: the group's mean
    and ``batch_size`` × its variance, summed over the number of ones in the group."""

    def ones_probabilities(p: float, n: int) -> np.ndarray:
        below = copula.count_probabilities(min(p, 1.0 - p), n)  # P(k below q)
        return below if p < 0.5 else below[::-1]  # P(m ones): p ≥ ½ draws 1[1 - u < p]

    def surrogate(problem, dist, theta, b):
        return group_surrogate(problem, dist, theta, b, copula.gap)

    return logits.group_moments(name, surrogate, ones_probabilities)


def _check(label, problem, dist, vector, batch_size):
    del vector, batch_size
    logits.require_binary(label, problem, dist, " (its categorical extension is not "
                                                "implemented here)")


def _identity(name: str, copula: Copula, summary: str) -> Identity:
    return Identity(name=name, summary=summary, surrogate=_surrogate(copula),
                    exact_moments=_exact_moments(name, copula), check=_check, min_batch=2,
                    f_evals=per_draw, discrete_latents=True)


ARMS = _identity(
    "arms", DIRICHLET,
    "ARMS (Dimitriev & Zhou 2021): each batch is n ≥ 2 antithetic draws (Dirichlet copula) "
    "with a leave-one-out baseline; unbiased, binary b, 1 f per draw; DisARM at n = 2.")

ARMS_GAUSSIAN = _identity(
    "arms_gaussian", GAUSSIAN,
    "ARMS with the Gaussian copula (Dimitriev & Zhou 2021): each batch is n ≥ 2 "
    "equicorrelated draws with a leave-one-out baseline; unbiased, binary b, 1 f per draw.")

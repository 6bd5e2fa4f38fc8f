"""K-sample importance-weighted bounds (IWAE) as problems (:mod:`estimators.multisample`):
one with Bernoulli latents, whose exact gradient enumerates the K·D binary values, and one
with a Gaussian latent, whose exact gradient is a Gauss-Hermite product rule for K ≤ 3."""

from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from estimators._runtime import tf, tfd
from estimators.multisample import MultiSample, tiled
from estimators.problem import Problem
from estimators.problems import label, register

BERNOULLI_WEIGHTS = (1.0, -0.5, 2.0, 0.7, -1.2, 0.3)
"""w of the Bernoulli model's likelihood x | z ~ N(w·z, 1), first D of them."""
OBSERVED = 1.0
"""x of both models."""
GAUSS_HERMITE_MAX_K = 3
"""Largest K whose Gaussian bound has an exact value here (a product rule of 40^K nodes)."""
GAUSS_HERMITE_NODES = 40


def _normal_log_density(x, loc):
    return -0.5 * (x - loc) ** 2 - 0.5 * math.log(2 * math.pi)


@register("iwae_bernoulli", "K-sample IWAE bound, z ∈ {0,1}^D, q = Bernoulli(logits θ)")
def iwae_bernoulli(K: int = 4, D: int = 2) -> Problem:
    """log (1/K) Σ_k p(x, z_k)/q(z_k), z_k ~ q = Bernoulli(σ(θ)) on D bits, prior
    Bernoulli(½) per bit, x | z ~ N(w·z, 1) at x = 1; θ = D logits. Exact truth by
    enumerating the 2^(K·D) joint values (K·D ≤ 16)."""
    for name, value, top in (("K", K, None), ("D", D, len(BERNOULLI_WEIGHTS))):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1 \
                or (top is not None and value > top):
            raise ValueError(f"problem 'iwae_bernoulli' argument {name} must be an integer "
                             f"from 1{f' to {top}' if top else ''}, got {value!r}.")
    K, D = int(K), int(D)
    weights = BERNOULLI_WEIGHTS[:D]

    def log_joint(z):  # [..., D] -> [...]
        w = tf.constant(weights, z.dtype)
        prior = D * math.log(0.5)
        return prior + _normal_log_density(tf.constant(OBSERVED, z.dtype),
                                           tf.reduce_sum(z * w, axis=-1))

    def sample_dist(theta):
        return tfd.Independent(tfd.Bernoulli(logits=theta["logits"],
                                             dtype=theta["logits"].dtype), 1)

    multi = MultiSample(samples=K, size=D, log_joint=log_joint, sample_dist=sample_dist)
    return Problem(
        name=label("iwae_bernoulli", {"K": K, "D": D}), params={"logits": D},
        dist=lambda theta: tfd.Independent(tfd.Bernoulli(
            logits=tiled(theta["logits"], K), dtype=theta["logits"].dtype), 1),
        cost=multi.bound, multi_sample=multi,
        description=f"IWAE bound, K = {K}, D = {D} Bernoulli latents, x | z ~ N(w·z, 1)")


@register("iwae_gaussian", "K-sample IWAE bound, z ~ N(0,1), x|z ~ N(z,1), q = N(mean, scale²)")
def iwae_gaussian(K: int = 2) -> Problem:
    """log (1/K) Σ_k p(x, z_k)/q(z_k), z_k ~ q = N(mean, exp(log_scale)²), prior N(0, 1),
    x | z ~ N(z, 1) at x = 1 (posterior N(½, ½)); θ = (mean, log_scale). Exact value for
    K ≤ 3 by a Gauss-Hermite product rule over the K standard normals behind the samples
    (its gradient by autodiff), else a Monte Carlo reference."""
    if isinstance(K, bool) or not isinstance(K, numbers.Integral) or K < 1:
        raise ValueError(f"problem 'iwae_gaussian' argument K must be a positive integer, "
                         f"got {K!r}.")
    K = int(K)

    def log_joint(z):  # [..., 1] -> [...]
        z = z[..., 0]
        return _normal_log_density(z, 0.0) + _normal_log_density(
            tf.constant(OBSERVED, z.dtype), z)

    def sample_dist(theta):  # theta [..., 2]: mean, log_scale
        return tfd.Independent(tfd.Normal(theta[..., :1], tf.exp(theta[..., 1:])), 1)

    multi = MultiSample(samples=K, size=1, log_joint=log_joint, sample_dist=sample_dist)

    def dist(theta):
        return tfd.Independent(tfd.Normal(tiled(theta[..., :1], K),
                                          tiled(tf.exp(theta[..., 1:]), K)), 1)

    return Problem(
        name=label("iwae_gaussian", {"K": K}), param_names=("mean", "log_scale"),
        dist=dist, cost=multi.bound, multi_sample=multi,
        exact_value=_gauss_hermite_bound(multi) if K <= GAUSS_HERMITE_MAX_K else None,
        description=f"IWAE bound, K = {K}, z ~ N(0, 1), x | z ~ N(z, 1), q = N(mean, scale²)")


def _gauss_hermite_bound(multi: MultiSample):
    """E_q[bound] in TensorFlow ops: Σ over the product of K Gauss-Hermite rules of
    the bound at z = mean + scale·ε (the reparameterized samples, so θ keeps its path)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(GAUSS_HERMITE_NODES)
    weights = weights / weights.sum()  # a rule for the standard normal
    grid = np.array(list(itertools.product(range(GAUSS_HERMITE_NODES),
                                           repeat=multi.samples)))  # [N^K, K]
    epsilon, mass = nodes[grid], np.prod(weights[grid], axis=1)  # [N^K, K], [N^K]

    def exact_value(theta):  # theta [..., 2]
        eps = tf.constant(epsilon, theta.dtype)  # [N^K, K]
        z = theta[..., None, :1] + tf.exp(theta[..., None, 1:]) * eps  # [..., N^K, K]
        values = multi.bound(z, theta[..., None, :])  # [..., N^K]
        return tf.reduce_sum(values * tf.constant(mass, theta.dtype), axis=-1)

    return exact_value

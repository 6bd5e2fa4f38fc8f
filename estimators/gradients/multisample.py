"""Estimators of the gradient of a K-sample bound (IWAE; a problem with a ``multi_sample``,
:mod:`estimators.multisample`), acting on the K samples of one draw jointly.

With log-weights ℓ_k = log p(x, z_k) - log q_θ(z_k), normalized weights w̃_k = softmax(ℓ)_k
and the bound L̂ = log (1/K) Σ_k exp ℓ_k:

* ``vimco`` (Mnih & Rezende, "Variational inference for Monte Carlo objectives", ICML
  2016): the score function with a per-sample leave-one-out baseline,

      ĝ = Σ_k (L̂ - L̂_{-k}) ∇θ log q_θ(z_k) + Σ_k w̃_k ∇θ ℓ_k,

  L̂_{-k} the bound with ℓ_k replaced by the mean of the other K - 1 log-weights (its
  geometric-mean baseline); fixed draws (any q, discrete included), K ≥ 2; unbiased.
* ``dreg`` (Tucker, Lawson, Gu & Maddison, "Doubly reparameterized gradient estimators
  for Monte Carlo objectives", ICLR 2019): for reparameterized z = z(ε, θ),

      ĝ = Σ_k w̃_k² ∂ℓ_k/∂z_k ∂z_k/∂θ,

  ℓ's own θ (the density of q) held fixed: the score function of q, whose expectation is
  zero, is replaced by its reparameterized twin; unbiased for q's parameters.
* ``stl``, sticking the landing (Roeder, Wu & Duvenaud, "Sticking the landing", NeurIPS
  2017): Σ_k w̃_k ∂ℓ_k/∂z_k ∂z_k/∂θ, the pathwise gradient without the score term. At K = 1
  (the ELBO) it is unbiased and its variance vanishes where q is the posterior; for K > 1
  it is biased (Tucker et al. 2019, whose w̃² is the correction), so its bias is measured,
  not declared.

The plain score function and pathwise gradients of the bound (``score_function``,
``reparameterization`` on the same problem) are what these are compared with. θ is q's
parameters (the model is θ-free here). One evaluation of the bound per draw, which
evaluates log p(x, z) and log q K times.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from estimators import measure, truth
from estimators._runtime import tf
from estimators.errors import NotApplicableError
from estimators.gradients.base import Identity

sg = tf.stop_gradient


SLICED_MAX_SAMPLES = 16
"""Largest K whose VIMCO coefficients are computed over K slices (beyond, over an axis:
a graph of O(K) ops compiles slowly, 40 s at K = 64)."""


def vimco_coefficients(log_w):
    """VIMCO's weight on each ∇θ log q_θ(z_k), L̂ - L̂_{-k} - w̃_k, for log-weights
    ``[..., K]`` held fixed; ``[..., K]``. The -w̃_k is the bound's own gradient through
    q's density (the model is θ-free).

    L̂_{-k} = log (1/K) (Σ_{j≠k} exp ℓ_j + exp ō_k), ō_k the mean of the other log-weights,
    stable in float32 at O(K) a draw, rounding at the log-weights' spread (they are centred
    on their largest first), not at their size: each sum is shifted by the largest
    log-weight it holds, so that its largest term is 1. For every k but a single largest
    log-weight, that largest is among the others and Σ_{j≠k} = S - s_k ≥ 1, S the shifted
    total (no cancellation); for the single largest, the sum over the others is taken
    directly, shifted by the second largest (S - 1 would cancel, and lose every digit when
    one weight dominates by more than float32's range). No K × K matrix of leave-one-out
    log-weights. Up to ``SLICED_MAX_SAMPLES`` the work runs over the K slices ``[...]``,
    whose elementwise ops XLA on CPU vectorizes; reductions over a trailing axis of a few
    samples run several times slower there (docs/PERFORMANCE.md).
    """
    if log_w.shape[-1] > SLICED_MAX_SAMPLES:
        return _coefficients(log_w, _AxisOps())
    values = tf.unstack(log_w, axis=-1)  # K × [...]
    return tf.stack(_coefficients(values, _SliceOps()), axis=-1)


class _SliceOps:
    """Reductions over K samples held as a list of slices, elementwise maps over them."""

    @staticmethod
    def max(values):
        return functools.reduce(tf.maximum, values)

    @staticmethod
    def sum(values):
        return tf.add_n(values)

    @staticmethod
    def map(function, *lists):
        return [function(*items) for items in zip(*lists)]


class _AxisOps:
    """The same over a trailing axis of K (keepdims, so that results broadcast back)."""

    @staticmethod
    def max(values):
        return tf.reduce_max(values, axis=-1, keepdims=True)

    @staticmethod
    def sum(values):
        return tf.reduce_sum(values, axis=-1, keepdims=True)

    @staticmethod
    def map(function, *tensors):
        return function(*tensors)


def _coefficients(values, ops):
    count = len(values) if isinstance(values, list) else values.shape[-1]
    dtype = (values[0] if isinstance(values, list) else values).dtype
    # Centred on the largest, which becomes 0: the coefficients are blind to a common
    # shift, and float32 then rounds at the log-weights' spread, not at their size.
    largest = ops.max(values)
    values = ops.map(lambda value: value - largest, values)
    at_top = ops.map(lambda value: value >= 0.0, values)
    single = ops.sum(ops.map(lambda at: tf.cast(at, dtype), at_top)) < 1.5
    is_top = ops.map(lambda at: at & single, at_top)  # k is the single largest
    below = tf.constant(-np.inf, dtype)
    second = tf.where(single, ops.max(ops.map(lambda at, value: tf.where(at, below, value),
                                              at_top, values)), tf.zeros_like(largest))
    scaled = ops.map(tf.exp, values)  # s_k, the largest 1
    total = ops.sum(scaled)  # S
    rest_of_top = ops.sum(ops.map(
        lambda top, value: tf.where(top, tf.zeros_like(value), tf.exp(value - second)),
        is_top, values))
    bound = tf.math.log(total)  # L̂ + log K, centred: the 1/K cancels in L̂ - L̂_{-k}
    sum_of_values = ops.sum(values)

    def coefficient(value, part, top):
        other = (sum_of_values - value) / (count - 1)  # ō_k
        shift = tf.where(top, second, tf.zeros_like(second))
        rest = tf.where(top, rest_of_top, total - part) + tf.exp(other - shift)
        return bound - (shift + tf.math.log(rest)) - part / total

    return ops.map(coefficient, values, scaled, is_top)


def vimco_per_sample(problem, dist, x, theta):
    """VIMCO's surrogate of single draws ``[n, R]`` (x ``[n, R, K·D]``, fixed): its
    gradient is Σ_k (L̂ - L̂_{-k} - w̃_k) ∇θ log q_θ(z_k), the estimate above, since
    ∇θ L̂ = -Σ_k w̃_k ∇θ log q_θ(z_k) for fixed draws and a θ-free model."""
    del dist
    multi = problem.multi_sample
    z = multi.split(sg(x))  # [n, R, K, D]
    log_q = multi.log_q(z, problem.unpack(theta))  # [n, R, K], θ's path kept
    log_w = sg(multi.log_joint(z) - log_q)
    return tf.reduce_sum(vimco_coefficients(log_w) * log_q, axis=-1)  # of fixed log_w


def _reparameterized_terms(power: int):
    """The surrogate Σ_k stop_gradient(w̃_k^power) ℓ_k(z(θ)) with q's density held fixed:
    ``[n, R]`` for draws x ``[n, R, K·D]`` that keep their path to θ."""

    def per_sample(problem, dist, x, theta):
        del dist
        multi = problem.multi_sample
        log_w = multi.log_weights(multi.split(x), problem.unpack(sg(theta)))  # [n, R, K]
        weights = tf.nn.softmax(sg(log_w), axis=-1)
        return tf.reduce_sum(sg(weights**power) * log_w, axis=-1)

    return per_sample


def _mean_over_draws(per_sample, pathwise: bool):
    """The protocol surrogate: the mean of ``per_sample`` over n iid draws (its own
    combinator, so that no control variate built for f(x, θ) is applied to it)."""

    def surrogate(problem, theta, n, key, context, state):
        del context, state
        dist = problem.measure(theta)
        x = dist.sample(measure.sample_shape(dist, n, tf.shape(theta)[0]), seed=key)
        x = x if pathwise else sg(x)  # [n, R, K·D]
        return tf.reduce_mean(per_sample(problem, dist, x, theta), axis=0)

    return surrogate


CONSISTENCY_DRAWS = 8
"""Draws at which a bound's cost and measure are compared with its multi_sample."""


def _require_consistent(label, problem, vector) -> None:
    """NotApplicableError unless the problem's draws hold K·D values, its cost is the
    bound of its multi_sample and its measure is K independent copies of q (compared at a
    few draws at θ): these estimators read the multi_sample alone, so a mismatch would be
    a silently wrong estimate."""
    multi = problem.multi_sample
    dist = problem.distribution(vector)
    size = measure.event_size(dist)
    if size != multi.samples * multi.size:
        raise NotApplicableError(
            f"{label} reads problem '{problem.name}' as K = {multi.samples} samples of "
            f"D = {multi.size} values, but its draws hold {size} values, not K·D = "
            f"{multi.samples * multi.size}.")
    theta = problem.unpack(tf.constant(vector, tf.float64))
    x = tf.cast(dist.sample(CONSISTENCY_DRAWS, seed=(7, 11)), tf.float64)  # [m, K·D]
    cost = problem.cost(x, theta)
    checks = (("its cost", cost, multi.bound(x, theta), "the bound, log (1/K) Σ_k w_k"),
              ("the log-density of its draws", dist.log_prob(x),
               tf.reduce_sum(multi.log_q(multi.split(x), theta), axis=-1),
               "Σ_k log q(z_k): K independent copies of the multi_sample's q"))
    for what, value, expected, meaning in checks:
        if not np.allclose(np.asarray(value, np.float64), np.asarray(expected, np.float64),
                           rtol=1e-6, atol=1e-9):
            raise NotApplicableError(
                f"{label} reads the multi_sample of problem '{problem.name}', but "
                f"{what} is not {meaning} at θ (compared at {CONSISTENCY_DRAWS} draws); "
                "build the problem with estimators.multisample (cost = multi.bound).")


def _check(minimum_samples: int):
    def check(label, problem, dist, vector, batch_size):
        del dist, batch_size
        multi = problem.multi_sample
        if multi is None:
            raise NotApplicableError(
                f"{label} acts on the K samples of a multi-sample bound (IWAE), but problem "
                f"'{problem.name}' is not one (it has no multi_sample); use score_function or "
                "reparameterization, or write the problem with estimators.multisample "
                "(e.g. the problems iwae_bernoulli, iwae_gaussian).")
        _require_consistent(label, problem, vector)
        if multi.samples < minimum_samples:
            raise NotApplicableError(
                f"{label} needs a bound of at least {minimum_samples} samples (its baseline "
                f"for each sample is the others'), but problem '{problem.name}' has K = "
                f"{multi.samples}.")
    return check


def _exact_moments(per_sample, pathwise: bool, label: str):
    def exact_moments(problem, vector, batch_size=None):
        del batch_size  # draws are iid whatever the batching
        return truth.integrate_per_sample(problem, vector, per_sample, pathwise, label)
    return exact_moments


VIMCO = Identity(
    name="vimco",
    summary="VIMCO (Mnih & Rezende 2016): the score function of a K-sample bound with a "
            "leave-one-out baseline per sample; fixed draws, K ≥ 2, unbiased.",
    per_sample=vimco_per_sample,
    surrogate=_mean_over_draws(vimco_per_sample, pathwise=False),
    exact_moments=_exact_moments(vimco_per_sample, False, "vimco"),
    check=_check(2),
    discrete_latents=False,
)

def _reparameterized(name: str, power: int, summary: str, unbiased: bool) -> Identity:
    per_sample = _reparameterized_terms(power)
    return Identity(name=name, summary=summary, per_sample=per_sample,
                    surrogate=_mean_over_draws(per_sample, pathwise=True),
                    exact_moments=_exact_moments(per_sample, True, name), check=_check(1),
                    pathwise=True, needs_reparameterization=True, unbiased=unbiased)


DREG = _reparameterized(
    "dreg", 2,
    "DReG (Tucker et al. 2019): doubly reparameterized gradient of a K-sample bound, "
    "Σ w̃² ∂ℓ/∂z ∂z/∂θ; reparameterized draws, unbiased for q's parameters.", unbiased=True)

STL = _reparameterized(
    "stl", 1,
    "Sticking the landing (Roeder et al. 2017): the pathwise gradient of a K-sample bound "
    "without q's score term; unbiased at K = 1, biased for K > 1.", unbiased=False)

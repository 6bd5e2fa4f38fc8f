"""RELAX for binary and one-hot categorical latent variables (Grathwohl, Choi, Wu,
Roeder & Duvenaud, "Backpropagation through the Void: Optimizing control variates for
black-box gradient estimation", ICLR 2018).

REBAR's estimator with a learned, reparameterized control variate c_φ in place of the
relaxed cost:

    ĝ = [f(b) - c_φ(z̃)] ∇θ log p(b|θ) + ∇θ c_φ(z) - ∇θ c_φ(z̃),
    c_φ(z) = η [f(σ_λ(z)) + r_ρ(σ_λ(z))],

with z = α + logit(u), b = 1[z > 0], z̃ ~ p(z | b) (for a one-hot categorical, Gumbel
noise, b = onehot(argmax z) and σ_λ a softmax: :mod:`estimators.gradients.rebar`), and
r_ρ a small network: one tanh layer of ``HIDDEN`` units on 2σ_λ(z) - 1, its output
multiplied by a learned scale that starts at 0 (the authors' toy, ``rebar_toy.py`` in
duvenaud/relax: RELAX starts as REBAR with η = 1, λ = ½). φ = (η, log λ, the network) is
the estimator's state, one copy per replicate, trained by Adam down ∇φ ‖ĝ‖²
(:func:`estimators.learning.variance_descent`); unbiased for every φ. Three evaluations of
f per draw; the state holds D × ``HIDDEN`` weights per replicate (and Adam's two moments of
each), D the latent's size (C for a one-hot categorical of C categories).
"""

from __future__ import annotations

import math

from estimators import learning
from estimators._runtime import tf
from estimators.gradients import logits, rebar, rebar_learned
from estimators.gradients.base import Identity, evaluations_per_draw

HIDDEN = 10
"""Units of the control variate's hidden layer (the authors' toy: 10, tanh)."""

BROADCAST_MAX_SIZE = 8
"""Largest latent size D whose first layer is written as D broadcast products rather
than a batched matrix product (docs/PERFORMANCE.md)."""

INIT_SEED = (2018, 0)
"""The network's initial weights are drawn once, from this key: every replicate starts
from the same φ and then learns on its own draws."""


def network(params, s):
    """r_ρ(s) for relaxed draws s ``[n, R, *event]``: ``[n, R]``."""
    flat = tf.reshape(2.0 * s - 1.0, tf.concat([tf.shape(s)[:2], [-1]], 0))  # [n, R, D]
    size = flat.shape[-1]
    if size is not None and size <= BROADCAST_MAX_SIZE:  # XLA on CPU: products beat a tiny dot
        pre = tf.reduce_sum(flat[..., None] * params["w1"], axis=-2)
    else:
        pre = tf.einsum("nrd,rdh->nrh", flat, params["w1"])
    hidden = tf.tanh(pre + params["b1"])  # [n, R, H]
    out = tf.reduce_sum(hidden * params["w2"], axis=-1) + params["b2"]
    return params["scale"] * out  # [n, R]


def _init(problem, theta, settings):
    alpha = logits.logits(problem.measure(theta), theta)  # [R, *event]
    size = alpha.shape[1:].num_elements()
    replicates = tf.shape(theta)[:1]

    def glorot(fan_in, fan_out, stream):  # Keras's default for a dense layer
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        weights = tf.random.stateless_uniform([fan_in, fan_out], seed=(INIT_SEED[0], stream),
                                              minval=-limit, maxval=limit, dtype=theta.dtype)
        return tf.broadcast_to(weights, tf.concat([replicates, [fan_in, fan_out]], 0))

    zeros = tf.zeros(replicates, theta.dtype)  # [R]
    params = {**rebar_learned.initial_scale_and_temperature(theta, settings),
              "w1": glorot(size, HIDDEN, 1),  # [R, D, H]
              "b1": tf.zeros(tf.concat([replicates, [HIDDEN]], 0), theta.dtype),
              "w2": glorot(HIDDEN, 1, 2)[..., 0],  # [R, H]
              "b2": zeros, "scale": zeros}
    return learning.with_slots(params)


def _terms(problem, dist, theta, noise, state, eta, temperature, learning_rate):
    del eta, temperature, learning_rate  # where the state started; it holds them now
    params = state["params"]

    def control(problem, dist, s, theta):
        return rebar.relaxed_cost(problem, dist, s, theta) + network(params, s)

    return rebar.terms(problem, dist, theta, noise, control=control, learned=True,
                       **rebar_learned.scale_and_temperature(params, noise))


_SURROGATE = logits.mean_of_terms(_terms, 2)

IDENTITY = Identity(
    name="relax",
    summary="RELAX (Grathwohl et al. 2018): REBAR with a learned control variate (eta, "
            "temperature and a small network, trained on the variance per replicate); "
            "unbiased, binary or one-hot b, 3 f per draw.",
    surrogate=_SURROGATE,
    init=_init,
    update=learning.variance_descent(_SURROGATE, learning.adam),
    check=logits.check_relaxed,
    f_evals=evaluations_per_draw(3),
    memory_per_value=5.0 + HIDDEN,
    discrete_latents=True,
    settings=rebar_learned.SETTINGS,
)

"""REBAR with learned η and temperature (Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein,
"REBAR: Low-variance, unbiased gradient estimates for discrete latent variable models",
NeurIPS 2017, as published).

The estimate is REBAR's (:mod:`estimators.gradients.rebar`),

    ĝ = [f(b) - η f(σ_λ(z̃))] ∇θ log p(b|θ) + η ∇θ f(σ_λ(z)) - η ∇θ f(σ_λ(z̃)),

unbiased for every η and λ; here η and log λ are the estimator's state (one pair per
replicate), trained batch after batch to minimize its own variance by Adam down
∇_{η, log λ} ‖ĝ‖² (:func:`estimators.learning.variance_descent`; E ĝ does not depend on
them, so that is the gradient of the variance). The settings ``eta`` and ``temperature``
are where they start (REBAR's defaults, 1 and ½, as in the authors' toy), and
``learning_rate`` is Adam's step (0.01, the authors' toy). Estimates hold the state
fixed; the grid's ``warmup_batches`` are the updates before them. Bernoulli or one-hot
categorical b, as REBAR's. Three evaluations of f per draw, and three per draw of an
update's batch.
"""

from __future__ import annotations

import math

from estimators import learning
from estimators._runtime import tf
from estimators.gradients import logits, rebar
from estimators.gradients.base import Identity, evaluations_per_draw

SETTINGS = (("eta", 1.0, "the control variate's initial scale η", None),
            ("temperature", 0.5, "the relaxation's initial temperature λ", 0.0),
            ("learning_rate", 0.01, "Adam's step size on the variance", 0.0))


def initial_scale_and_temperature(theta, settings) -> dict:
    """η and log λ at their settings, one per replicate: ``{"eta": [R],
    "log_temperature": [R]}``."""
    replicates = tf.shape(theta)[:1]
    return {"eta": tf.fill(replicates, tf.cast(settings["eta"], theta.dtype)),
            "log_temperature": tf.fill(replicates, tf.cast(math.log(settings["temperature"]),
                                                           theta.dtype))}


def scale_and_temperature(params, noise) -> dict:
    """REBAR's η ``[R]`` and λ ``[R, 1, ...]`` (broadcasting against z ``[n, R, *event]``)
    from learned parameters, for noise ``[n, R, *event, k]``."""
    temperature = tf.exp(params["log_temperature"])  # [R]
    event_rank = noise.shape.rank - 3
    return {"eta": params["eta"],
            "temperature": tf.reshape(temperature, tf.concat(
                [tf.shape(temperature), tf.ones([event_rank], tf.int32)], 0))}


def _terms(problem, dist, theta, noise, state, eta, temperature, learning_rate):
    del eta, temperature, learning_rate  # where the state started; it holds them now
    return rebar.terms(problem, dist, theta, noise, learned=True,
                       **scale_and_temperature(state["params"], noise))


def _init(problem, theta, settings):
    del problem
    return learning.with_slots(initial_scale_and_temperature(theta, settings))


_SURROGATE = logits.mean_of_terms(_terms, 2)

IDENTITY = Identity(
    name="rebar_learned",
    summary="REBAR (Tucker et al. 2017) with eta and temperature learned on the estimator's "
            "variance (Adam, per replicate); unbiased, binary or one-hot b, 3 f per draw.",
    surrogate=_SURROGATE,
    init=_init,
    update=learning.variance_descent(_SURROGATE, learning.adam),
    check=logits.check_relaxed,
    f_evals=evaluations_per_draw(3),
    memory_per_value=5.0,
    discrete_latents=True,
    settings=SETTINGS,
)

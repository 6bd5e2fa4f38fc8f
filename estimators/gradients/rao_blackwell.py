"""Rao-Blackwellized stochastic gradients: sum the k most probable categories exactly,
sample the rest (Liu, Regier, Tripuraneni, Jordan & McAuliffe, "Rao-Blackwellized
Stochastic Gradients for Discrete Distributions", ICML 2019).

For a categorical z (one variable, or the joint of V variables when it has at most
:data:`~estimators.gradients.categorical.MAX_JOINT` states) and any unbiased single-draw
estimate ĝ(z) of ∇θ E_p[f] (here REINFORCE, ĝ(z) = f(z) ∇θ log p(z) + ∇θ f(z, θ)), let
C_k be the k most probable states at θ and q = Σ_{c ∈ C_k} p(c). Then

    ĝ_RB = Σ_{c ∈ C_k} p(c) ĝ(c) + (1 − q) (1/n) Σ_i ĝ(z⁽ⁱ⁾),   z⁽ⁱ⁾ ~ p(z | z ∉ C_k),

is unbiased with variance at most (1 − q)² Var(ĝ | z ∉ C_k) / n: when a few categories
hold most of the mass (peaked logits) little is left to sample. Per batch of n draws it
costs **n + k evaluations of f** (``f_evals_per_batch`` counts the k). The draws from the
remainder are Gumbel-max with C_k masked out; p(c) and q enter as constants.
Option ``summed`` = k (1 by default), fewer than the number of states.
"""

import numpy as np

from estimators._runtime import tf
from estimators.errors import NotApplicableError
from estimators.gradients import categorical
from estimators.gradients.base import Identity

sg = tf.stop_gradient


def _single(f, log_p):
    """REINFORCE's surrogate f(z) log p(z) + f(z, θ) of single draws."""
    return sg(f) * log_p + f


def _summed(log_p, k: int):
    """The k most probable states ``[R, k]`` (int32) and log(1 − q) ``[R, 1]``."""
    top = tf.math.top_k(sg(log_p), k=k).indices  # [R, k]
    outside = tf.reduce_sum(tf.one_hot(top, tf.shape(log_p)[-1], dtype=log_p.dtype), axis=1)
    log_rest = tf.reduce_logsumexp(tf.where(outside > 0, -float("inf"), sg(log_p)), axis=-1,
                                   keepdims=True)
    return top, outside, log_rest


def _exact_part(problem, dist, theta, states, log_p, top):
    """Σ_{c ∈ C_k} p(c) ĝ(c) as a surrogate ``[R]``, for the summed states top ``[R, k]``."""
    top_log_p = tf.transpose(tf.gather(log_p, top, batch_dims=1))  # [k, R]
    f_top = categorical.joint_costs(problem, dist, states, tf.transpose(top), theta)  # [k, R]
    return tf.reduce_sum(tf.exp(sg(top_log_p)) * _single(f_top, top_log_p), axis=0)


def surrogate(problem, theta, n, key, context, state):
    del state
    k = int(context.settings["summed"])
    dist = problem.measure(theta)
    states, log_p = categorical.joint_of("rao_blackwell", problem, dist, theta)  # [R, S]
    top, outside, log_rest = _summed(log_p, k)
    exact = _exact_part(problem, dist, theta, states, log_p, top)  # [R]
    masked = tf.where(outside > 0, -float("inf"), log_p)  # the remainder only
    z = tf.argmax(categorical.perturbed(masked, n, key), axis=-1, output_type=tf.int32)
    f = categorical.joint_costs(problem, dist, states, z, theta)  # [n, R]
    sampled_log_p = tf.transpose(tf.gather(log_p, tf.transpose(z), batch_dims=1))  # [n, R]
    sampled = tf.reduce_mean(_single(f, sampled_log_p), axis=0)
    return exact + tf.exp(log_rest[:, 0]) * sampled


def _outcomes(problem, dist, alpha, batch_size, settings):
    """Every state, with its probability given that it is outside the summed ones."""
    states, probabilities = categorical.all_states(problem, dist, alpha, batch_size, settings)
    k = int(settings["summed"])
    top = np.argsort(-probabilities, kind="stable")[:k]
    rest = probabilities.copy()
    rest[top] = 0.0
    return np.arange(len(states), dtype=np.int32), rest / rest.sum()


def _given_draw(problem, dist, theta, index, summed):
    """The surrogate with the sampled state ``index`` ``[O]`` per row of θ ``[O, d]``."""
    k = int(summed)
    states, log_p = categorical.joint_of("rao_blackwell", problem, dist, theta)
    top, _, log_rest = _summed(log_p, k)
    exact = _exact_part(problem, dist, theta, states, log_p, top)
    f = categorical.joint_costs(problem, dist, states, index[None], theta)[0]
    sampled_log_p = tf.gather(log_p, index[:, None], batch_dims=1)[:, 0]
    return exact + tf.exp(log_rest[:, 0]) * _single(f, sampled_log_p)


def check(label, problem, dist, vector, batch_size):
    categorical.joint_outcomes_check(label, problem, dist, vector, batch_size)


def check_summed(label, problem, dist, batch_size, summed):
    del batch_size
    _, variables, categories = categorical.view(dist)
    if summed >= categories**variables:
        raise NotApplicableError(
            f"{label} sums {summed:g} categories exactly, but problem '{problem.name}' has "
            f"only {categories**variables} states; sum fewer (summed < "
            f"{categories**variables}) or take the exact gradient.")


def f_evals_per_batch(problem, vector, summed) -> int:
    del problem, vector
    return int(summed)


IDENTITY = Identity(
    name="rao_blackwell",
    summary="Rao-Blackwellized SG (Liu et al. 2019): the k most probable states summed "
            "exactly, REINFORCE on the rest; unbiased, categorical z, n + k f per batch.",
    surrogate=surrogate,
    exact_moments=categorical.enumerated_moments("rao_blackwell", _outcomes, _given_draw),
    check=check,
    check_settings=check_summed,
    f_evals_per_batch=f_evals_per_batch,
    settings=(("summed", 1.0, "the k most probable states summed exactly", 0.0, "whole"),),
    discrete_latents=True,
)

"""What the categorical estimators share: V independent categorical variables of C
categories, read through their logits, drawn by Gumbel-max, and the exact moments of an
estimate that is a function of a discrete outcome.

A categorical measure is one of

* ``tfd.OneHotCategorical(logits [..., C])``: one variable, one-hot draws ``[C]``;
* ``tfd.Independent(tfd.OneHotCategorical(logits [..., V, C]), 1)``: V variables, one-hot
  draws ``[V, C]``;
* ``tfd.Categorical(logits [..., C])``: one variable, index draws ``[]``;
* ``tfd.Independent(tfd.Categorical(logits [..., V, C]), 1)``: V variables, index draws
  ``[V]``.

Every estimator in ``indecater``, ``reinmax``, ``gumbel_rao``, ``rao_blackwell`` and
``unordered_set`` works on the logits α(θ) ``[R, V, C]`` and on category indices
``[..., V]``, and hands f draws in the measure's own format (:func:`encode`).

**Exact moments by enumeration** (:func:`enumerated_moments`): when one draw's estimate is
a deterministic function of a discrete outcome o (the draw itself for IndeCateR and
ReinMax, the sampled remainder category for Rao-Blackwellized SG, the sampled set for the
unordered set estimator) with probability P(o|θ), its mean and per-sample variance are
sums over the outcomes, in float64.
"""

from __future__ import annotations

import itertools

import numpy as np

from estimators import measure, memory
from estimators._runtime import tf, tfd
from estimators.errors import NotApplicableError
from estimators.gradients import logits as binary
from estimators.truth.integrands import measure64

MAX_JOINT = 4096
"""Most joint states C^V an estimator that samples the joint of V variables (sampling
without replacement, Rao-Blackwellized SG) enumerates per draw."""

MAX_OUTCOMES = 2**16
"""Most outcomes :func:`enumerated_moments` sums over."""


def view(dist):
    """``(one_hot, V, C)`` of a categorical measure, or None for any other measure."""
    inner = dist.distribution if isinstance(dist, tfd.Independent) else dist
    rank = measure.event_rank(dist)
    if isinstance(inner, tfd.OneHotCategorical):
        if rank == 1 and inner is dist:
            return True, 1, int(dist.event_shape[-1])
        if rank == 2 and inner is not dist and measure.event_rank(inner) == 1:
            return True, int(dist.event_shape[0]), int(dist.event_shape[1])
    if isinstance(inner, tfd.Categorical):
        categories = int(inner.logits_parameter().shape[-1])
        if rank == 0:
            return False, 1, categories
        if rank == 1 and inner is not dist and measure.event_rank(inner) == 0:
            return False, int(dist.event_shape[0]), categories
    return None


def kind(dist) -> str:
    inner = dist.distribution if isinstance(dist, tfd.Independent) else dist
    return (f"tfd.Independent({type(inner).__name__})" if inner is not dist
            else type(dist).__name__)


def require_categorical(label: str, problem, dist, one_hot: bool = False) -> tuple:
    """``(one_hot, V, C)``, or NotApplicableError unless p(z|θ) is categorical (one-hot
    draws only when ``one_hot``: the estimator evaluates f at relaxed vectors)."""
    found = view(dist)
    if found is None:
        inner = dist.distribution if isinstance(dist, tfd.Independent) else dist
        instead = ("disarm, or gumbel_softmax / straight_through (biased)"
                   if isinstance(inner, tfd.Bernoulli) else "score_function")
        raise NotApplicableError(
            f"{label} is defined for categorical latent variables (tfd.Categorical or "
            "tfd.OneHotCategorical, or tfd.Independent of either over variables), but the "
            f"measure of problem '{problem.name}' is {kind(dist)}; use {instead}.")
    if one_hot and not found[0]:
        raise NotApplicableError(
            f"{label} differentiates f through relaxed one-hot vectors, but problem "
            f"'{problem.name}' draws category indices ({kind(dist)}); draw one-hot vectors "
            "(categorical_vae: draws=\"one_hot\"; your own problem: "
            "tfd.OneHotCategorical(logits), or an Independent of it, and f on one-hot "
            "vectors), or use indecater or score_function.")
    return found


def variable_logits(dist, theta):
    """The logits α(θ) with their path to θ, ``[R, V, C]`` (a measure written without θ
    gets the replicate axis)."""
    _, variables, categories = view(dist)
    inner = dist.distribution if isinstance(dist, tfd.Independent) else dist
    alpha = tf.convert_to_tensor(inner.logits_parameter())
    if dist.batch_shape.rank == 0:
        alpha = tf.broadcast_to(alpha, tf.concat([tf.shape(theta)[:1], tf.shape(alpha)], 0))
    return tf.reshape(alpha, [-1, variables, categories])


def encode(dist, z, dtype):
    """Draws in the measure's format from category indices z ``[..., V]`` (int32)."""
    one_hot, variables, categories = view(dist)
    lead = tf.shape(z)[:-1]
    if one_hot:
        y = tf.one_hot(z, categories, dtype=dtype)  # [..., V, C]
        return y if variables > 1 or measure.event_rank(dist) == 2 else y[..., 0, :]
    x = tf.cast(z, dtype)
    return x if measure.event_rank(dist) == 1 else tf.reshape(x, lead)


def from_one_hot(dist, y):
    """Draws in the measure's one-hot format from vectors y ``[..., V, C]`` (relaxed or
    not)."""
    return y if measure.event_rank(dist) == 2 else y[..., 0, :]


def gumbel(u):
    """Standard Gumbel draws from uniforms in (0, 1)."""
    return -tf.math.log(-tf.math.log(u))


def draw(alpha, n: int, key):
    """n Gumbel-max draws of category indices ``[n, R, V]`` (int32) from logits
    ``[R, V, C]``, θ-free."""
    shape = tf.concat([[n], tf.shape(alpha)], 0)
    u = binary.uniforms(shape, key, alpha.dtype)
    return tf.argmax(tf.stop_gradient(alpha) + gumbel(u), axis=-1, output_type=tf.int32)


def costs(problem, dist, z, theta):
    """f at category indices z ``[m, R, V]`` (any leading m): ``[m, R]``."""
    return problem.cost_values(dist, encode(dist, z, theta.dtype), theta)


def joint_states(variables: int, categories: int) -> np.ndarray:
    """Every joint state of V variables, ``[C^V, V]`` int32, in lexicographic order."""
    return np.array(list(itertools.product(range(categories), repeat=variables)),
                    dtype=np.int32).reshape(-1, variables)


def require_joint(label: str, problem, variables: int, categories: int) -> None:
    """NotApplicableError when the joint of V variables has more than MAX_JOINT states
    (an estimator that samples it enumerates it per draw)."""
    if variables > 1 and categories**variables > MAX_JOINT:
        raise NotApplicableError(
            f"{label} samples the joint of the V = {variables} categorical variables of "
            f"problem '{problem.name}', which has {categories}^{variables} states, more than "
            f"the {MAX_JOINT} it enumerates; use indecater or score_function.")


def joint_log_probs(alpha, states):
    """log p(state | θ) ``[R, S]`` of joint states ``[S, V]`` (int32) from logits
    ``[R, V, C]``."""
    log_p = tf.nn.log_softmax(alpha, axis=-1)  # [R, V, C]
    chosen = tf.one_hot(states, tf.shape(alpha)[-1], dtype=alpha.dtype)  # [S, V, C]
    return tf.einsum("rvc,svc->rs", log_p, chosen)


def joint_costs(problem, dist, states, index, theta):
    """f at the joint states ``states[index]`` for index ``[m, R]``: ``[m, R]``."""
    return costs(problem, dist, tf.gather(tf.constant(states), index), theta)


def enumerated_moments(name: str, outcomes, surrogate, draws_per_outcome=None):
    """An ``exact_moments(problem, θ [d], batch_size, **settings)`` for an estimator whose
    one draw's estimate is a function of a discrete outcome.

    Args:
      name: The estimator, for messages.
      outcomes: ``(problem, dist, alpha [V, C] float64 NumPy, batch_size, settings) ->
        (outcomes [O, ...] NumPy, probabilities [O])``, raising NotImplementedError
        where it cannot enumerate.
      surrogate: ``(problem, dist, theta [O, d], outcomes [O, ...], **settings) -> [O]``,
        whose θ-gradient in row o is the estimate given outcome o (dist at θ ``[O, d]``).
      draws_per_outcome: ``batch_size -> int``, the draws one outcome stands for (a set of
        k draws without replacement is one outcome); one by default.

    Returns the probability-weighted mean and the per-sample variance ``([d], [d])``:
    the variance of one outcome's estimate times the draws it stands for, so that an
    estimate from n draws has variance (per-sample variance) / n.
    """

    def exact_moments(problem, vector, batch_size=None, **settings):
        theta1 = tf.constant(vector[None, :], tf.float64)
        dist1 = measure64(problem, theta1)
        if view(dist1) is None:
            raise NotImplementedError(f"exact moments of {name} need a categorical measure")
        alpha = variable_logits(dist1, theta1).numpy()[0]  # [V, C]
        found, probabilities = outcomes(problem, dist1, alpha, batch_size, settings)
        if len(found) > MAX_OUTCOMES:
            raise NotImplementedError(
                f"exact moments of {name} would sum over {len(found)} outcomes, more than "
                f"{MAX_OUTCOMES}")
        theta = tf.constant(np.tile(vector, (len(found), 1)), tf.float64)
        with tf.GradientTape() as tape:
            tape.watch(theta)
            values = surrogate(problem, measure64(problem, theta), theta,
                               tf.constant(found), **settings)
        estimates = tape.gradient(values, theta).numpy()  # [O, d]
        mean = probabilities @ estimates
        variance = np.maximum(probabilities @ estimates**2 - mean**2, 0.0)
        draws = 1 if draws_per_outcome is None else draws_per_outcome(batch_size)
        return mean, draws * variance

    return exact_moments


def all_states(problem, dist, alpha, batch_size, settings):
    """The ``outcomes`` of :func:`enumerated_moments` for an estimate that is a function of
    one draw z ~ p (IndeCateR, ReinMax): every joint state and its probability."""
    del problem, dist, batch_size, settings
    variables, categories = alpha.shape
    if categories**variables > MAX_OUTCOMES:
        raise NotImplementedError(
            f"the {categories}^{variables} joint states are too many to sum over")
    states = joint_states(variables, categories)
    log_p = alpha - np.logaddexp.reduce(alpha, axis=-1, keepdims=True)  # [V, C]
    probabilities = np.exp(log_p[np.arange(variables), states].sum(axis=-1))
    return states, probabilities


def check_relaxed(label, problem, dist, vector, batch_size) -> None:
    """An identity's ``check`` for categorical estimators that differentiate f at relaxed
    one-hot vectors (ReinMax, Gumbel-Rao): one-hot categorical draws, and f with a gradient
    in them and no jump inside the simplex."""
    del batch_size
    require_categorical(label, problem, dist, one_hot=True)
    binary.require_cost_gradient(label, problem, vector)


def joint_of(label: str, problem, dist, theta):
    """The joint states ``[S, V]`` (NumPy) and their log-probabilities ``[R, S]`` with their
    path to θ, for estimators that sample the joint of the variables."""
    _, variables, categories = view(dist)
    require_joint(label, problem, variables, categories)
    states = joint_states(variables, categories)
    return states, joint_log_probs(variable_logits(dist, theta), states)


def perturbed(log_p, n: int, key):
    """Gumbel-perturbed log-probabilities ``[n, R, S]`` (θ-free): the argmax of each row is
    a draw, its top k a sample of k without replacement (Gumbel-top-k)."""
    shape = tf.concat([[n], tf.shape(log_p)], 0)
    return tf.stop_gradient(log_p) + gumbel(binary.uniforms(shape, key, log_p.dtype))


def joint_outcomes_check(label, problem, dist, vector, batch_size) -> None:
    """An identity's ``check`` for estimators that sample the joint of the variables."""
    del vector, batch_size
    _, variables, categories = require_categorical(label, problem, dist)
    require_joint(label, problem, variables, categories)


def copies_memory(copies):
    """A ``memory_per_value(problem, θ [d])`` for an estimator that holds ``copies(V, C)``
    versions of each draw's event at once (:mod:`estimators.memory`), the gradient's d
    components once."""

    def per_value(problem, vector) -> float:
        dist = problem.distribution(vector)
        _, variables, categories = view(dist)
        event, dim = measure.event_size(dist), problem.dim
        return memory.PER_VALUE * (event * copies(variables, categories) + dim) / (event + dim)

    return per_value

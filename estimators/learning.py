"""What a learned part of an estimator needs inside its ``update``: the gradient of the
estimator's own variance with respect to its parameters, and an optimizer whose slots
live in the estimator's state.

RELAX (Grathwohl et al. 2018) and REBAR with learned η and temperature (Tucker et al.
2017) train their control variate's parameters φ to minimize the variance of the gradient
estimate ĝ(φ). Every such estimator is unbiased for each φ, so E ĝ does not depend on φ
and

    ∇φ Var(ĝ) = ∇φ E‖ĝ‖² = E ∇φ ‖ĝ(φ)‖²,

a gradient through the estimate itself: ĝ is a θ-gradient of the surrogate, so
:func:`variance_gradient` takes a gradient of a gradient (two nested tapes).

The optimizer is functional, as in optax: ``init(params) -> slots`` and
``update(params, gradients, slots) -> (params, slots)``, every value a tensor with a
leading replicate axis, so an estimator keeps ``{"params": ..., "slots": ...}`` in its
state and each replicate learns on its own draws.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from estimators import protocol
from estimators._runtime import tf


def variance_gradient(surrogate: Callable, theta, params):
    """The estimate and the gradient of its squared norm in ``params``, per replicate.

    Args:
      surrogate: ``(theta [R, d], params) -> [R]``, whose θ-gradient is the estimate
        (draws fixed inside it: call it with the batch's key).
      theta: ``[R, d]``.
      params: A structure of tensors with leading axis R (the learned parameters).

    Returns:
      ``(estimate [R, d], gradient)``: the estimate, cut from ``params``, and
      ``∇φ ‖ĝ_r‖²`` for each replicate r, with the structure of ``params`` (zeros where
      a parameter does not touch the estimate).

    Example:

    >>> import estimators as E
    >>> from estimators._runtime import tf
    >>> theta, b = tf.constant([[1.0]]), tf.constant([0.5])
    >>> g, db = E.learning.variance_gradient(lambda t, b: (3.0 - b) * t[:, 0] ** 2, theta, b)
    >>> float(g[0, 0]), float(db[0])   # ĝ = 2(3 - b)θ, ∂ĝ²/∂b = -8(3 - b)θ²
    (5.0, -20.0)
    """
    flat = tf.nest.flatten(params)
    with tf.GradientTape() as outer:
        outer.watch(flat)
        with tf.GradientTape() as inner:
            inner.watch(theta)
            value = surrogate(theta, tf.nest.pack_sequence_as(params, flat))  # [R]
        estimate = inner.gradient(value, theta,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)  # [R, d]
        squared = tf.reduce_sum(estimate**2)  # replicates are independent: a sum
    gradients = outer.gradient(squared, flat, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return tf.stop_gradient(estimate), tf.nest.pack_sequence_as(params, gradients)


@dataclasses.dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) as two pure functions over structures of tensors.

    Attributes:
      learning_rate: Step size.
      b1, b2: Decay of the first and second moment estimates.
      eps: Added to the second moment's square root.
    """

    learning_rate: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        for name in ("learning_rate", "eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a number above 0, got "
                                 f"{getattr(self, name)!r}.")
        for name in ("b1", "b2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}.")

    def init(self, params) -> dict:
        """Slots for ``params``: zero moments and a zero step count per replicate."""
        zeros = tf.nest.map_structure(tf.zeros_like, params)
        leading = tf.shape(tf.nest.flatten(params)[0])[:1]
        return {"m": zeros, "v": tf.nest.map_structure(tf.zeros_like, params),
                "count": tf.zeros(leading, tf.float32)}

    def update(self, params, gradients, slots):
        """One step down ``gradients``: ``(params, slots)``."""
        count = slots["count"] + 1.0  # [R]
        m = tf.nest.map_structure(lambda m, g: self.b1 * m + (1 - self.b1) * g,
                                  slots["m"], gradients)
        v = tf.nest.map_structure(lambda v, g: self.b2 * v + (1 - self.b2) * g**2,
                                  slots["v"], gradients)

        def step(p, m, v):
            shape = tf.concat([tf.shape(count), tf.ones([tf.rank(p) - 1], tf.int32)], 0)
            c = tf.reshape(count, shape)
            m_hat, v_hat = m / (1 - self.b1**c), v / (1 - self.b2**c)
            return p - self.learning_rate * m_hat / (tf.sqrt(v_hat) + self.eps)

        params = tf.nest.map_structure(step, params, m, v)
        return params, {"m": m, "v": v, "count": count}


def variance_descent(surrogate: Callable, optimizer: Callable):
    """An identity's ``update`` for a learned part kept as ``{"params": ..., "slots":
    ...}`` in its state: one optimizer step down ``∇φ ‖ĝ‖²`` (:func:`variance_gradient`)
    on a fresh batch.

    Args:
      surrogate: The identity's protocol surrogate ``(problem, theta, n, key, context,
        state) -> [R]``, reading ``state[IDENTITY_STATE]["params"]``.
      optimizer: ``(settings) -> optimizer`` with ``init`` / ``update`` as :class:`Adam`,
        from the identity's settings (e.g. its ``learning_rate``).

    Returns:
      ``update(problem, theta, n, key, context, state) -> state`` (the protocol's).
    """

    def update(problem, theta, n, key, context, state):
        def of_params(theta, params):
            own = {**state, "params": params}
            return surrogate(problem, theta, n, key, context, {protocol.IDENTITY_STATE: own})

        _, gradients = variance_gradient(of_params, theta, state["params"])
        params, slots = optimizer(context.settings).update(state["params"], gradients,
                                                           state["slots"])
        return {**state, "params": params, "slots": slots}

    return update


def adam(settings) -> Adam:
    """The optimizer of a learned identity whose settings hold its ``learning_rate``."""
    return Adam(learning_rate=settings["learning_rate"])


def with_slots(params) -> dict:
    """A learned identity's state: its parameters and their optimizer's slots."""
    return {"params": params, "slots": Adam().init(params)}


__all__ = ["Adam", "adam", "variance_descent", "variance_gradient", "with_slots"]

"""The estimator protocol: one signature for every surrogate, and the two combinators
that build most of them.

Every estimator computes its batch estimate through one pure function::

    surrogate(problem, theta, n, key, context, state) -> Tensor [R]

* ``theta``: ``[R, d]`` float32, one row per replicate;
* ``n``: draws (or grid points) in this batch, a Python int;
* ``key``: ``[2]`` int32 stateless seed of this batch;
* ``context``: a :class:`Context`: what a compiled call computed once from θ (the
  integration window, a control variate's expansion) and the identity's settings;
* ``state``: the estimator's state (a dict of tensors with a leading replicate axis R;
  empty for stateless estimators), read but never changed by the surrogate.

Replicate r of the result depends only on ``theta[r]`` and ``state[...][r]``; its
θ-gradient is the batch estimate (a *surrogate loss*, as in optax's ``monte_carlo`` and
DeepMind's ``mc_gradients``).

Identities that are means over draws (score function, pathwise, naive) declare a
``per_sample`` surrogate of single draws and get their surrogate from
:func:`mean_over_draws`, with a sampling scheme and a control variate; identities that
act on K draws of noise jointly per coordinate (ARM, DisARM, REBAR, relaxations) from
:func:`joint_draws`; structured ones (quadrature rules, weak derivatives) write the
signature directly.

**State** (optax's ``CvState`` idea, in TensorFlow). A stateful part (an identity or a
control variate) declares ``init(problem, theta) -> state`` and an update; the engine
keeps the state among a compiled program's inputs and outputs, so updating it batch
after batch never retraces:

* ``Estimator.init(problem, theta) -> state``
* ``Estimator.update(problem, theta, n, key, context, state) -> state``: one step on a
  fresh batch of n draws (a learned part's optimizer step lives inside it);
* the surrogate reads the state; estimates are measured with the state held fixed, so
  they are unbiased whenever the surrogate is unbiased for every fixed state.

Each replicate carries its own state (leading axis R), so replicates stay independent
and their spread is an honest variance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from estimators._runtime import tf

IDENTITY_STATE = "identity"
CONTROL_STATE = "control_variate"
"""Keys of an estimator's state dict: the identity's part and the control variate's."""


@dataclasses.dataclass(frozen=True)
class Context:
    """What a surrogate reads besides θ, the key and the state.

    Attributes:
      window: ``[2]`` float32 integration window (quadrature-based identities; zeros
        for the others).
      prepared: What the control variate's ``prepare(problem, theta)`` computed once
        per call from θ alone (the delta method's Taylor coefficients), or None.
      settings: The identity's numeric settings by name (e.g. ``temperature``).
    """

    window: Any = None
    prepared: Any = None
    settings: Mapping[str, float] = dataclasses.field(default_factory=dict)


def mean_over_draws(identity, sampling, control):
    """The surrogate of an identity that is a mean over draws (``identity.per_sample``),
    drawn by ``sampling`` and corrected by ``control`` (a control variate): ``[R]``."""

    def surrogate(problem, theta, n, key, context, state):
        own = state.get(CONTROL_STATE)
        if control.surrogate is not None:  # a control variate that forms the estimate itself
            return control.surrogate(identity, problem, theta, n, key, context, own)
        dist = problem.measure(theta)
        x = sampling.draw(problem, dist, theta, n, key, identity.pathwise)  # [n, R, *event]
        return sampling.mean(control.terms(identity, problem, dist, x, theta, context,
                                           own))  # [R]

    return surrogate


def update_over_draws(identity, sampling, control):
    """The state update of a control variate that learns from a batch of draws:
    ``control.update(identity, problem, dist, x, theta, context, state) -> state`` on a
    fresh batch drawn like the estimate's (x cut from θ)."""

    def update(problem, theta, n, key, context, state):
        dist = problem.measure(theta)
        x = sampling.draw(problem, dist, theta, n, key, identity.pathwise)  # [n, R, *event]
        return control.update(identity, problem, dist, tf.stop_gradient(x), theta, context,
                              state[CONTROL_STATE])

    return update


def joint_draws(terms, noise_per_coordinate: int, logits, noise):
    """The surrogate of an identity that evaluates f at ``noise_per_coordinate`` coupled
    draws per coordinate (ARM, DisARM, REBAR, relaxations): the mean over n draws of noise
    of ``terms(problem, dist, theta, u [n, R, *event, k], **settings)`` (``[n, R]``);
    ``logits(dist, theta) -> [R, *event]`` gives the noise its shape and
    ``noise(shape, key, dtype)`` draws it."""

    def surrogate(problem, theta, n, key, context, state):
        del state
        dist = problem.measure(theta)
        alpha = logits(dist, theta)  # [R, *event]
        shape = tf.concat([[n], tf.shape(alpha), [noise_per_coordinate]], 0)
        u = noise(shape, key, alpha.dtype)  # [n, R, *event, k]
        return tf.reduce_mean(terms(problem, dist, theta, u, **context.settings), axis=0)

    return surrogate


__all__ = ["CONTROL_STATE", "Context", "IDENTITY_STATE", "joint_draws", "mean_over_draws",
           "update_over_draws"]

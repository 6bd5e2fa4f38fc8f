"""Multi-sample objectives as a problem kind: the K-sample importance-weighted bound (IWAE;
Burda, Grosse & Salakhutdinov, ICLR 2016)

    L_K(θ) = E_{z_1..z_K ~ q_θ} [ log (1/K) Σ_k w_k ],    w_k = p(x, z_k) / q_θ(z_k),

written as a problem like any other: its draw is the K samples side by side (one event of
K·D values, so that enumeration and every estimator see an ordinary vector event) and its
cost is the bound, f(z_{1..K}, θ) = log-mean-exp of the log-weights. The plain score
function and pathwise estimators therefore estimate ∇θ L_K unchanged; estimators that act
on the K samples jointly (VIMCO, DReG, sticking the landing: ``estimators/gradients/
multisample.py``) read the problem's :class:`MultiSample`: the model's log-joint and the
sampling distribution of one z, from which they build the per-sample log-weights.

The model p(x, z) is θ-free here (θ are q's parameters: the inference network's gradients,
where DReG differs from the plain pathwise gradient); at K = 1 the bound is the ELBO.

>>> import estimators as E
>>> p = E.problems.get("iwae_gaussian", K=2)
>>> p.multi_sample.samples, p.param_names
(2, ('mean', 'log_scale'))
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable

from estimators._runtime import tf


@dataclasses.dataclass(frozen=True)
class MultiSample:
    """What a K-sample bound problem tells multi-sample estimators.

    Attributes:
      samples: K, the samples behind one value of the bound.
      size: D, the values of one sample z (1 for a scalar latent).
      log_joint: ``z [..., D] -> [...]``: log p(x, z) of the model, θ-free.
      sample_dist: ``theta -> tfd.Distribution`` of one z (event ``[D]``), θ in the form
        the problem's ``dist`` receives.
    """

    samples: int
    size: int
    log_joint: Callable
    sample_dist: Callable

    def __post_init__(self):
        for name in ("samples", "size"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} of a multi-sample bound must be a positive integer, "
                                 f"got {value!r}.")

    def split(self, x):
        """Draws ``[..., K·D]`` as samples ``[..., K, D]``."""
        return tf.reshape(x, tf.concat([tf.shape(x)[:-1], [self.samples, self.size]], 0))

    def log_q(self, z, theta):
        """log q_θ(z_k) ``[..., K]`` for samples ``[..., K, D]`` and θ as ``dist`` takes it
        (batch axes of θ broadcast against z's axes before K)."""
        q = self.sample_dist(theta)
        moved = tf.experimental.numpy.moveaxis(z, -2, 0)  # [K, ..., D]: batch axes align
        return tf.experimental.numpy.moveaxis(q.log_prob(moved), 0, -1)

    def log_weights(self, z, theta):
        """log w_k = log p(x, z_k) - log q_θ(z_k), ``[..., K]``."""
        return self.log_joint(z) - self.log_q(z, theta)

    def bound(self, x, theta):
        """The cost: log (1/K) Σ_k w_k for draws ``[..., K·D]``, ``[...]``."""
        log_w = self.log_weights(self.split(x), theta)
        return tf.reduce_logsumexp(log_w, axis=-1) - math.log(self.samples)


def tiled(values, samples: int):
    """A parameter of q ``[..., D]`` repeated for K samples side by side: ``[..., K·D]``."""
    return tf.tile(values, tf.concat([tf.ones([tf.rank(values) - 1], tf.int32), [samples]], 0))


__all__ = ["MultiSample", "tiled"]

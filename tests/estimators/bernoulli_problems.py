"""Vector Bernoulli problems shared by the tests of the multi-draw discrete estimators
(ARMS, double control variates, RELAX): small enough that the truth enumerates them."""

import tensorflow as tf
import tensorflow_probability as tfp

import estimators as E


def _bernoullis(t):
    return tfp.distributions.Independent(
        tfp.distributions.Bernoulli(logits=t["logits"], dtype=t["logits"].dtype), 1)


def pairs_problem():
    """Four Bernoullis, f = (w·b - 0.7)² + b₀ b₂ + 0.3 Σ θ_i b_i: not additive, and with
    a direct θ term; the truth enumerates the 16 outcomes."""
    def cost(b, theta):
        weights = tf.constant([0.5, -0.3, 0.8, 0.2], b.dtype)
        return (tf.reduce_sum(b * weights, -1) - 0.7) ** 2 + b[..., 0] * b[..., 2] \
            + 0.3 * tf.reduce_sum(theta["logits"] * b, -1)

    return E.Problem(name="bernoulli_pairs", params={"logits": 4}, cost=cost,
                     dist=_bernoullis)


def linear_problem():
    """Five Bernoullis, f = 1.5 + a·b with a = (2, -1, 0.5, 3, -4): linear in b."""
    def cost(b, theta):
        del theta
        return 1.5 + tf.reduce_sum(b * tf.constant([2.0, -1.0, 0.5, 3.0, -4.0], b.dtype), -1)

    return E.Problem(name="bernoulli_linear", params={"logits": 5}, cost=cost,
                     dist=_bernoullis)

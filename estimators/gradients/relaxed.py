"""Continuous relaxations: Gumbel-softmax (Concrete) and straight-through Gumbel-softmax.

Both replace the gradient of E_{p(b|θ)}[f(b, θ)] with that of a relaxed objective, so they
are **biased** (``unbiased=False``): the bias vanishes as the temperature λ → 0, where
the variance grows, and f must accept values between the discrete ones.

* ``gumbel_softmax`` (Jang, Gu & Poole 2017; Maddison, Mnih & Teh 2017): y = softmax((α +
  g) / λ) with Gumbel noise g, for a one-hot categorical (each of V variables alone for
  ``tfd.Independent(tfd.OneHotCategorical, 1)``); for a Bernoulli, the binary
  Concrete y = σ((α + log(u/(1-u))) / λ). The estimate is ∇θ f(y(θ), θ): f is evaluated
  at the relaxed y only.
* ``straight_through`` (Bengio et al. 2013; the straight-through Gumbel estimator of
  Jang et al.): the forward pass uses the discrete draw b = H(α + logistic) (one-hot
  argmax for a categorical), the backward pass differentiates as if it had been y:
  ``b + y - stop_gradient(y)``. f is evaluated at the discrete b only.

One uniform per coordinate (per category) and one evaluation of f per draw.
"""

from estimators._runtime import tf
from estimators.gradients import logits
from estimators.gradients.base import Identity

sg = tf.stop_gradient


def _relaxed_and_hard(dist, theta, u, temperature):
    """The relaxed draw y (θ path) and the discrete draw it rounds to: ``[n, R, *event]``."""
    alpha = logits.logits(dist, theta)  # [R, *event]
    u = u[..., 0]  # [n, R, *event]
    if logits.is_one_hot(dist) or logits.is_one_hot_vector(dist):
        z = alpha - tf.math.log(-tf.math.log(u))  # Gumbel perturbation
        hard = tf.one_hot(tf.argmax(z, axis=-1), tf.shape(z)[-1], dtype=z.dtype)
        return tf.nn.softmax(z / temperature, axis=-1), hard
    z = alpha + logits.log_odds(u)
    return tf.sigmoid(z / temperature), tf.cast(z > 0.0, z.dtype)


def gumbel_softmax_terms(problem, dist, theta, u, temperature=0.5):
    """f at the relaxed draw: ``[n, R]`` from u ``[n, R, *event, 1]``."""
    relaxed, _ = _relaxed_and_hard(dist, theta, u, temperature)
    return problem.cost_values(dist, relaxed, theta)


def straight_through_terms(problem, dist, theta, u, temperature=0.5):
    """f at the discrete draw, differentiated through the relaxed one: ``[n, R]``."""
    relaxed, hard = _relaxed_and_hard(dist, theta, u, temperature)
    return problem.cost_values(dist, hard + relaxed - sg(relaxed), theta)


TEMPERATURE = (("temperature", 0.5, "the relaxation's temperature λ", 0.0),)

def _relaxation(name: str, summary: str, terms) -> Identity:
    return Identity(name=name, summary=summary, surrogate=logits.mean_of_terms(terms, 1),
                    exact_moments=logits.bernoulli_moments(name, terms, 1),
                    check=logits.check_relaxed_variables,
                    unbiased=False, declared_biased=True, pathwise=True, settings=TEMPERATURE,
                    discrete_latents=True)


GUMBEL_SOFTMAX = _relaxation(
    "gumbel_softmax",
    "Gumbel-softmax / Concrete (Jang et al.; Maddison et al. 2017): ∇θ f at a relaxed draw; "
    "biased, option temperature.",
    gumbel_softmax_terms)

STRAIGHT_THROUGH = _relaxation(
    "straight_through",
    "Straight-through Gumbel: f at the discrete draw, gradient through the relaxed one; "
    "biased, option temperature.",
    straight_through_terms)

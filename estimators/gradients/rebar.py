"""REBAR with a fixed control-variate scale η and temperature λ (Tucker, Mnih, Maddison,
Lawson & Sohl-Dickstein, NeurIPS 2017).

Estimates ∇θ E_{p(b|θ)}[f(b, θ)] for independent Bernoullis with logits α(θ). From two
uniforms per coordinate (u, v): the logistic relaxation z = α + log(u / (1 - u)), the
draw b = H(z) = 1[z > 0], and z̃ ~ p(z | b) reparameterized by v (u conditioned on b is
uniform on (1 - p, 1) when b = 1 and on (0, 1 - p) when b = 0, p = σ(α)):

    ĝ = [f(b) - η f(σ_λ(z̃))] ∇θ log p(b|θ) + η ∇θ f(σ_λ(z)) - η ∇θ f(σ_λ(z̃)),

with σ_λ(z) = σ(z / λ). The relaxed control variate f(σ_λ(z)) has the same expectation
whether z comes from p(z) or from p(z | b) p(b), so the estimator is unbiased for every
fixed η and λ; its variance depends on both. f must accept values between 0 and 1 and
be differentiable there. Three evaluations of f per draw.

For a one-hot categorical b with probabilities π (the paper's appendix): z = log π + g
with Gumbel noise g from u, b = onehot(argmax z), σ_λ(z) = softmax(z / λ), and z̃ given
b from v by :func:`conditional_gumbels`; C uniforms of each kind per draw.
"""

import numpy as np

from estimators import truth
from estimators._runtime import tf
from estimators.gradients import logits
from estimators.gradients.base import Identity, evaluations_per_draw

sg = tf.stop_gradient


def conditional_log_odds(alpha, b, v):
    """log(u / (1 - u)) for u ~ U(0, 1) conditioned on H(α + log(u/(1-u))) = b, from v:
    u = 1 - p + v p when b = 1 and u = v (1 - p) when b = 0, in log space (stable for
    p near 0 or 1)."""
    log_p, log_q = -tf.math.softplus(-alpha), -tf.math.softplus(alpha)  # log p, log(1-p)
    # b = 1: log u = log1p(-(1-v)p), log(1-u) = log(1-v) + log p.
    one = tf.math.log1p(-(1.0 - v) * tf.exp(log_p)) - (tf.math.log1p(-v) + log_p)
    # b = 0: log u = log v + log(1-p), log(1-u) = log1p(-v(1-p)).
    zero = (tf.math.log(v) + log_q) - tf.math.log1p(-v * tf.exp(log_q))
    return tf.where(b > 0.5, one, zero)


def conditional_gumbels(log_probs, b, v):
    """z̃ ~ p(z | b) for z = log π + Gumbel noise and b = onehot(argmax z), from uniforms v
    ``[..., C]`` (Tucker et al. 2017, appendix): with k the chosen category,
    z̃_k = -log(-log v_k) and z̃_i = -log(-log v_i / π_i - log v_k) for i ≠ k, the sum
    taken in log space (π_i may be far below float32's range of its inverse)."""
    log_neg_log_v = tf.math.log(-tf.math.log(v))  # [..., C]
    chosen = tf.reduce_sum(b * log_neg_log_v, axis=-1, keepdims=True)  # log(-log v_k)
    others = -tf.experimental.numpy.logaddexp(log_neg_log_v - log_probs, chosen)
    return tf.where(b > 0.5, -log_neg_log_v, others)


def relaxed_cost(problem, dist, s, theta):
    """REBAR's control variate before its scale η: f at the relaxed draw s, ``[n, R]``."""
    return problem.cost_values(dist, s, theta)


def relaxation(dist):
    """σ_λ(z): σ(z / λ) for Bernoullis, softmax(z / λ) over a one-hot's categories."""
    if logits.is_one_hot(dist):
        return lambda z, temperature: tf.nn.softmax(z / temperature, axis=-1)
    return lambda z, temperature: tf.sigmoid(z / temperature)


def _draw(dist, theta, u):
    """The perturbed logits z ``[n, R, *event]`` (θ path) and the draw b they round to:
    logistic noise and b = 1[z > 0] for Bernoullis; for a one-hot categorical, Gumbel noise
    on log π (normalized, as z̃'s formula reads it; σ_λ is blind to the shift) and
    b = onehot(argmax z)."""
    alpha = logits.logits(dist, theta)  # [R, *event]
    if logits.is_one_hot(dist):
        z = tf.nn.log_softmax(alpha, axis=-1) - tf.math.log(-tf.math.log(u))
        return z, sg(tf.one_hot(tf.argmax(z, axis=-1), tf.shape(z)[-1], dtype=z.dtype))
    z = alpha + logits.log_odds(u)
    return z, sg(tf.cast(z > 0.0, alpha.dtype))


def _conditional(dist, theta, b, v):
    """z̃ ~ p(z | b) reparameterized by v, ``[n, R, *event]``, as :func:`_draw` draws z."""
    alpha = logits.logits(dist, theta)
    if logits.is_one_hot(dist):
        return conditional_gumbels(tf.nn.log_softmax(alpha, axis=-1), b, v)
    return alpha + conditional_log_odds(alpha, b, v)


def sample_terms(problem, dist, theta, u, eta=1.0, temperature=0.5, control=relaxed_cost):
    """The terms of one draw that depend on u alone, ``[n, R]``, and the draw b:
    ``stop_gradient(f(b)) log p(b|θ) + f(b, θ) + η c(σ_λ(z))`` with z the logits perturbed
    by u and c the ``control`` (f itself; RELAX adds a network)."""
    z, b = _draw(dist, theta, u)
    f_b = problem.cost_values(dist, b, theta)  # [n, R]
    relaxed = control(problem, dist, relaxation(dist)(z, temperature), theta)
    return sg(f_b) * dist.log_prob(b) + f_b + eta * relaxed, b


def conditional_terms(problem, dist, theta, b, v, eta=1.0, temperature=0.5,
                      control=relaxed_cost, learned=False):
    """The terms that depend on b and v alone, ``[n, R]``: ``-stop_gradient(η c(σ_λ(z̃)))
    log p(b|θ) - η c(σ_λ(z̃))`` with z̃ ~ p(z | b) reparameterized by v.

    ``learned``: η, λ or c are learned, and their update differentiates the estimate in
    them, so the score term's coefficient must keep its path to them; it is written
    ``x (log p - stop_gradient(log p))``, whose θ-gradient is x ∇θ log p (the term
    x's own θ-gradient meets a zero) and which stops nothing else."""
    z_tilde = _conditional(dist, theta, b, v)
    relaxed_given_b = eta * control(problem, dist, relaxation(dist)(z_tilde, temperature),
                                    theta)
    log_p = dist.log_prob(b)
    if learned:
        return -relaxed_given_b * (log_p - sg(log_p)) - relaxed_given_b
    return -sg(relaxed_given_b) * log_p - relaxed_given_b


def terms(problem, dist, theta, noise, eta=1.0, temperature=0.5, control=relaxed_cost,
          learned=False):
    """REBAR's surrogate of single draws: ``[n, R]`` from noise ``[n, R, *event, 2]``;
    η and the temperature are numbers, or per-replicate tensors that broadcast against
    ``[n, R]`` and ``[n, R, *event]`` (a learned REBAR's: ``learned``, see
    :func:`conditional_terms`)."""
    settings = {"eta": eta, "temperature": temperature, "control": control}
    first, b = sample_terms(problem, dist, theta, noise[..., 0], **settings)
    return first + conditional_terms(problem, dist, theta, b, noise[..., 1], **settings,
                                     learned=learned)


def _u_terms(problem, dist, theta, noise, **settings):
    return sample_terms(problem, dist, theta, noise[..., 0], **settings)[0]


def _v_terms(b):
    def v_terms(problem, dist, theta, noise, **settings):
        v = noise[..., 0]
        return conditional_terms(problem, dist, theta, tf.fill(tf.shape(v), b), v,
                                 **settings)
    return v_terms


_V_TERMS = {0: _v_terms(0.0), 1: _v_terms(1.0)}  # one function each: blocks are cached by it


def exact_moments(problem, vector, batch_size=None, eta=1.0, temperature=0.5):
    """Exact mean and per-sample variance on one Bernoulli, from 1-D integrals only.

    One draw's estimate is ĝ = a(u) + c_b(v): the terms of u alone, and those of the draw
    b(u) and v. Given b, u and v are independent, so with q_b = P(b),
    E ĝ = Σ_b E[a 1_b] + q_b E_v c_b and E ĝ² = Σ_b E[a² 1_b] + 2 E[a 1_b] E_v c_b +
    q_b E_v c_b²: integrals over u on each side of 1 - p and over v, which stay fast where
    a two-dimensional cubature would crawl (p near 0 or 1 puts the features of both at a
    scale of min(p, 1 - p)).
    """
    del batch_size  # draws are iid whatever the batching
    p, rank = logits.scalar_bernoulli("rebar", problem, vector)
    vector = problem.theta_vector(vector)
    settings = (("eta", eta), ("temperature", temperature))
    mean = second = 0.0
    for b, (low, high), probability in ((0, (0.0, 1.0 - p), 1.0 - p), (1, (1.0 - p, 1.0), p)):
        if high <= low:
            continue  # p rounds to 0 or 1: this side has no mass
        a1, a2 = truth.block_integrals(problem, vector,
                                       logits.uniform_block(_u_terms, 1, settings, rank),
                                       low=(low,), high=(high,))
        c1, c2 = truth.block_integrals(problem, vector,
                                       logits.uniform_block(_V_TERMS[b], 1, settings, rank))
        mean = mean + a1 + probability * c1
        second = second + a2 + 2.0 * a1 * c1 + probability * c2
    return mean, np.maximum(second - mean**2, 0.0)


IDENTITY = Identity(
    name="rebar",
    summary="REBAR (Tucker et al. 2017), fixed eta and temperature: score function with a "
            "relaxed control variate; unbiased, binary or one-hot b, 3 f per draw.",
    surrogate=logits.mean_of_terms(terms, 2),
    exact_moments=exact_moments,
    check=logits.check_relaxed,
    f_evals=evaluations_per_draw(3),
    memory_per_value=5.0,
    forward_mode=True,
    discrete_latents=True,
    settings=(("eta", 1.0, "the control variate's scale", None),
              ("temperature", 0.5, "the relaxation's temperature λ", 0.0)),
)

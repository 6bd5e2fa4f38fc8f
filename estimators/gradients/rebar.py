"""REBAR with a fixed control-variate scale η and temperature λ (Tucker, Mnih, Maddison,
Lawson & Sohl-Dickstein, NeurIPS 2017).

Estimates ∇θ E_{p(b|θ)}[f(b, θ)] for independent Bernoullis with logits α(θ). From two
uniforms per coordinate (u, v): the logistic relaxation z = α + log(u / (1 - u)), the
draw b = H(z) = 1[z > 0], and z̃ ~ p(z | b) reparameterized by v (u conditioned on b is
uniform on (1 - p, 1) when b = 1 and on (0, 1 - p) when b = 0, p = σ(α)):

    ĝ = [f(b) - η f(σ_λ(z̃))] ∇θ log p(b|θ) + η ∇θ f(σ_λ(z)) - η ∇θ f(σ_λ(z̃)),

with σ_λ(z) = σ(z / λ). The relaxed control variate f(σ_λ(z)) has the same expectation
whether z comes from p(z) or from p(z | b) p(b), so the estimator is unbiased for every
fixed η and λ; its variance depends on both (RELAX's learned control variate is out of
scope). f must accept values between 0 and 1 and be differentiable there. Three
evaluations of f per draw.
"""

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


def terms(problem, dist, theta, noise, eta=1.0, temperature=0.5):
    """REBAR's surrogate of single draws: ``[n, R]`` from noise ``[n, R, *event, 2]``."""
    alpha = logits.logits(dist, theta)  # [R, *event]
    u, v = noise[..., 0], noise[..., 1]  # [n, R, *event]
    z = alpha + logits.log_odds(u)
    b = sg(tf.cast(z > 0.0, alpha.dtype))
    z_tilde = alpha + conditional_log_odds(alpha, b, v)
    f_b = problem.cost_values(dist, b, theta)  # [n, R]
    relaxed = problem.cost_values(dist, tf.sigmoid(z / temperature), theta)
    relaxed_given_b = problem.cost_values(dist, tf.sigmoid(z_tilde / temperature), theta)
    return (sg(f_b - eta * relaxed_given_b) * dist.log_prob(b) + f_b
            + eta * relaxed - eta * relaxed_given_b)


def _check(label, problem, dist, vector, batch_size):
    del batch_size
    logits.require_binary(label, problem, dist,
                          " (categorical REBAR is not implemented)")
    logits.require_cost_gradient(label, problem, vector)


IDENTITY = Identity(
    name="rebar",
    summary="REBAR (Tucker et al. 2017), fixed eta and temperature: score function with a "
            "relaxed control variate; unbiased, binary b, 3 f per draw.",
    surrogate=logits.mean_of_terms(terms, 2),
    exact_moments=logits.bernoulli_moments("rebar", terms, 2),
    check=_check,
    f_evals=evaluations_per_draw(3),
    settings=(("eta", 1.0, "the control variate's scale", None),
              ("temperature", 0.5, "the relaxation's temperature λ", 0.0)),
)

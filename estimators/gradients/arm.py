"""ARM and DisARM: unbiased antithetic estimators for binary latent variables.

Estimate ∇θ E_{p(b|θ)}[f(b, θ)] for independent Bernoullis b ∈ {0, 1}^D with logits α(θ),
from one uniform vector u ~ U(0, 1)^D per draw and two evaluations of f.

**ARM** (augment-REINFORCE-merge; Yin & Zhou, ICLR 2019), per coordinate d:

    ĝ_d = (f(b⁺) - f(b⁻)) (u_d - ½),   b⁺ = 1[u > σ(-α)],  b⁻ = 1[u < σ(α)].

**DisARM** (Dong, Mnih & Tucker, NeurIPS 2020; the same estimator as U2G, Yin et al.
2020) integrates out the augmentation of ARM given the antithetic pair
b = 1[u < σ(α)], b̃ = 1[1 - u < σ(α)]:

    ĝ_d = ½ (f(b) - f(b̃)) (-1)^{b̃_d} 1[b_d ≠ b̃_d] σ(|α_d|),

never worse than ARM's variance (Rao-Blackwellization) and equal to zero on every
coordinate where the pair agrees. Both are written as surrogates: the weight multiplies
α(θ) under ``stop_gradient``, so autodiff applies the chain rule to θ; a cost that also
depends on θ directly adds the mean of ∇θ f over the pair (both are draws of p).
"""

from estimators._runtime import tf
from estimators.gradients import logits
from estimators.gradients.base import Identity, evaluations_per_draw

sg = tf.stop_gradient


def _direct(f_pair):
    """½ (f(b) + f(b̃)) keeps ∇θ f(b, θ) for a cost that depends on θ directly."""
    return 0.5 * (f_pair[0] + f_pair[1])


def arm_terms(problem, dist, theta, u):
    """ARM's surrogate of single draws: ``[n, R]`` from u ``[n, R, *event, 1]``."""
    alpha = logits.logits(dist, theta)  # [R, *event]
    u = u[..., 0]  # [n, R, *event]
    a = sg(alpha)
    plus = tf.cast(u > tf.sigmoid(-a), alpha.dtype)  # [n, R, *event]
    minus = tf.cast(u < tf.sigmoid(a), alpha.dtype)
    f_plus = problem.cost_values(dist, plus, theta)  # [n, R]
    f_minus = problem.cost_values(dist, minus, theta)
    weights = tf.reduce_sum((u - 0.5) * alpha, axis=logits.event_axes(dist))  # [n, R]
    return sg(f_plus - f_minus) * weights + _direct((f_plus, f_minus))


def disarm_terms(problem, dist, theta, u):
    """DisARM's surrogate of single draws: ``[n, R]`` from u ``[n, R, *event, 1]``."""
    alpha = logits.logits(dist, theta)  # [R, *event]
    u = u[..., 0]  # [n, R, *event]
    a = sg(alpha)
    b = tf.cast(u < tf.sigmoid(a), alpha.dtype)  # [n, R, *event]
    b_tilde = tf.cast(1.0 - u < tf.sigmoid(a), alpha.dtype)
    f_b = problem.cost_values(dist, b, theta)  # [n, R]
    f_tilde = problem.cost_values(dist, b_tilde, theta)
    sign = 1.0 - 2.0 * b_tilde  # (-1)^b̃
    weight = sign * tf.abs(b - b_tilde) * tf.sigmoid(tf.abs(a))  # [n, R, *event]
    weights = tf.reduce_sum(weight * alpha, axis=logits.event_axes(dist))  # [n, R]
    return sg(0.5 * (f_b - f_tilde)) * weights + _direct((f_b, f_tilde))


def _check(extension):
    def check(label, problem, dist, vector, batch_size):
        del vector, batch_size
        logits.require_binary(label, problem, dist, extension)

    return check


ARM = Identity(
    name="arm",
    summary="ARM (Yin & Zhou 2019): (f(b⁺) - f(b⁻))(u - ½); unbiased, binary b, 2 f per draw.",
    surrogate=logits.mean_of_terms(arm_terms, 1),
    exact_moments=logits.bernoulli_moments("arm", arm_terms, 1),
    check=_check(" (its categorical extension is arsm)"),
    f_evals=evaluations_per_draw(2),
    discrete_latents=True,
)

DISARM = Identity(
    name="disarm",
    summary="DisARM / U2G (Dong et al. 2020): ARM with the augmentation integrated out; "
            "unbiased, binary b, 2 f per draw.",
    surrogate=logits.mean_of_terms(disarm_terms, 1),
    exact_moments=logits.bernoulli_moments("disarm", disarm_terms, 1),
    check=_check(" (categorical DisARM is not implemented here)"),
    f_evals=evaluations_per_draw(2),
    discrete_latents=True,
)

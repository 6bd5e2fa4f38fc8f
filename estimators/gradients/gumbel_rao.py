"""Gumbel-Rao: straight-through Gumbel-softmax Rao-Blackwellized over the Gumbel noise
given the discrete draw (Paulus, Maddison & Krause, "Rao-Blackwellizing the
Straight-Through Gumbel-Softmax Gradient Estimator", ICLR 2021). **Biased**, with the
same mean as ``straight_through`` at the same temperature and a lower variance.

For one categorical variable with logits α: D = onehot(argmax(α + G)) with Gumbel noise G
is a draw of p; straight-through Gumbel differentiates f(D) through y = softmax((α + G)/λ).
Gumbel-Rao averages that Jacobian over G given D, with k draws G⁽ʲ⁾ ~ G | D:

    ĝ = [ (1/k) Σ_j ∂ softmax((α + G⁽ʲ⁾)/λ) / ∂α ]ᵀ ∇_D f(D, θ).

G | argmax = D is drawn exactly (the paper's Appendix; exponentials E ~ Exp(1)): the
maximum α_D + G_D = log Z − log E_D and, for j ≠ D, α_j + G_j = −log(E_j e^{−α_j} +
E_D / Z), Z = Σ_c e^{α_c}; computed in log space. The noise is held fixed (stop_gradient)
and only α(θ) carries the path. Each of V variables (``tfd.Independent(
tfd.OneHotCategorical, 1)``) is treated alone. One evaluation of f (and its gradient) per
draw; the k relaxed vectors cost softmaxes only. Option ``noise_samples`` = k (10 by
default, the paper's range is 10-100).
"""

from estimators._runtime import tf
from estimators.errors import NotApplicableError
from estimators.gradients import categorical, logits
from estimators.gradients.base import Identity

sg = tf.stop_gradient


def conditional_gumbel(alpha, d, u):
    """Perturbed logits α + G ``[k, ..., C]`` with G ~ Gumbel conditioned on argmax = d
    (one-hot ``[..., C]``), from uniforms u ``[k, ..., C]``; θ-free."""
    a = sg(alpha)
    log_e = tf.math.log(-tf.math.log(u))  # log E, E ~ Exp(1)
    log_e_top = tf.reduce_sum(d * log_e, axis=-1, keepdims=True)  # log E_D
    log_z = tf.reduce_logsumexp(a, axis=-1, keepdims=True)
    top = log_z - log_e_top
    rest = -tf.reduce_logsumexp(tf.stack([log_e - a, tf.broadcast_to(log_e_top - log_z,
                                                                      tf.shape(log_e))]),
                                axis=0)
    return tf.where(d > 0, top, rest)


def surrogate(problem, theta, n, key, context, state):
    del state
    settings = context.settings
    dist = problem.measure(theta)
    alpha = categorical.variable_logits(dist, theta)  # [R, V, C]
    k = int(settings["noise_samples"])
    shape = tf.concat([[n], tf.shape(alpha), [1 + k]], 0)
    u = logits.uniforms(shape, key, alpha.dtype)  # [n, R, V, C, 1 + k]
    u = tf.transpose(u, [4, 0, 1, 2, 3])  # [1 + k, n, R, V, C]
    z = tf.argmax(sg(alpha) + categorical.gumbel(u[0]), axis=-1, output_type=tf.int32)
    d = tf.one_hot(z, alpha.shape[-1], dtype=alpha.dtype)  # [n, R, V, C]
    noise = sg(conditional_gumbel(alpha, d, u[1:]) - alpha)  # [k, n, R, V, C]
    relaxed = tf.reduce_mean(tf.nn.softmax((alpha + noise) / settings["temperature"],
                                           axis=-1), axis=0)  # [n, R, V, C]
    y = d + relaxed - sg(relaxed)
    return tf.reduce_mean(problem.cost_values(dist, categorical.from_one_hot(dist, y), theta),
                          axis=0)  # [R]


DEFAULT_NOISE_SAMPLES = 10
MAX_NOISE_SAMPLES = 1000
"""Most Gumbel draws per discrete draw (the batch holds k relaxed copies of each draw)."""


def check_noise_samples(label, problem, dist, batch_size, temperature, noise_samples):
    del problem, dist, batch_size, temperature
    if noise_samples > MAX_NOISE_SAMPLES:
        raise NotApplicableError(
            f"noise_samples of {label} holds that many relaxed copies of each draw at once, "
            f"so it must be at most {MAX_NOISE_SAMPLES}, got {noise_samples:g}.")


IDENTITY = Identity(
    name="gumbel_rao",
    summary="Gumbel-Rao (Paulus et al. 2021): straight-through Gumbel averaged over k "
            "Gumbel draws given the discrete one; biased, options temperature, noise_samples.",
    surrogate=surrogate,
    check=categorical.check_relaxed,
    check_settings=check_noise_samples,
    # The default k's copies; a larger k is bounded by check_noise_samples.
    memory_per_value=categorical.copies_memory(lambda *_: 1 + DEFAULT_NOISE_SAMPLES),
    unbiased=False, declared_biased=True, pathwise=True,
    settings=(("temperature", 0.5, "the relaxation's temperature λ", 0.0),
              ("noise_samples", float(DEFAULT_NOISE_SAMPLES),
               "Gumbel draws k given each discrete draw", 0.0,
               "whole")),
    discrete_latents=True,
)

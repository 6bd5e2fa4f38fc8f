"""ReinMax: a second-order straight-through estimator for categorical latents (Liu, Zhao,
Gao & Han, "Bridging Discrete and Backpropagation: Straight-Through and Beyond",
NeurIPS 2023). **Biased** (flagged ``declared_biased``), like straight-through, but its
bias is second order in the step between categories.

For one categorical variable with logits α, D ~ p one-hot and g = ∇_D f(D, θ), the
straight-through estimate is J(π₀)ᵀ g with π₀ = softmax(α) and J(π) = diag(π) − π πᵀ
(the softmax Jacobian at probabilities π). ReinMax replaces it by the Heun-method
combination

    ĝ_α = 2 J(π₁)ᵀ g − ½ J(π₀)ᵀ g,    π₁ = ½ (softmax(α / τ) + D),

(τ the temperature, τ = 1 in the paper's main results). Written as a surrogate: f at
D + ψ − stop_gradient(ψ) with ψ(α) = 2 softmax(α + stop_gradient(log π₁ − α)) −
½ softmax(α): ψ's value is constant, its Jacobian 2 J(π₁) − ½ J(π₀). Each of V variables
(``tfd.Independent(tfd.OneHotCategorical, 1)``) is treated alone. One evaluation of f and
of its gradient per draw; f must accept relaxed one-hot vectors (its gradient in D).
"""

from estimators._runtime import tf
from estimators.gradients import categorical
from estimators.gradients.base import Identity

sg = tf.stop_gradient


def reinmax_draws(alpha, d, temperature):
    """The straight-through draws ``[..., V, C]`` carrying ReinMax's Jacobian, from logits
    α ``[R, V, C]`` (path to θ) and one-hot draws D ``[..., R, V, C]``."""
    first = 0.5 * (tf.nn.softmax(sg(alpha) / temperature, axis=-1) + d)  # π₁
    # softmax(α + sg(log π₁ − α)) has the value π₁ and the softmax Jacobian at π₁.
    at_first = tf.nn.softmax(alpha + sg(tf.math.log(first) - alpha), axis=-1)
    psi = 2.0 * at_first - 0.5 * tf.nn.softmax(alpha, axis=-1)
    return d + psi - sg(psi)


def surrogate(problem, theta, n, key, context, state):
    del state
    dist = problem.measure(theta)
    alpha = categorical.variable_logits(dist, theta)  # [R, V, C]
    z = categorical.draw(alpha, n, key)  # [n, R, V]
    d = tf.one_hot(z, alpha.shape[-1], dtype=alpha.dtype)  # [n, R, V, C]
    y = reinmax_draws(alpha, d, context.settings["temperature"])
    return tf.reduce_mean(problem.cost_values(dist, categorical.from_one_hot(dist, y), theta),
                          axis=0)  # [R]


def _given_draws(problem, dist, theta, z, temperature):
    """The surrogate of one draw z ``[O, V]`` per row of θ ``[O, d]`` (exact moments)."""
    alpha = categorical.variable_logits(dist, theta)  # [O, V, C]
    y = reinmax_draws(alpha, tf.one_hot(z, alpha.shape[-1], dtype=alpha.dtype), temperature)
    return problem.cost_values(dist, categorical.from_one_hot(dist, y[None]), theta)[0]


IDENTITY = Identity(
    name="reinmax",
    summary="ReinMax (Liu et al. 2023): second-order straight-through, 2 J(π₁) − ½ J(π₀) "
            "at the one-hot draw; biased, option temperature.",
    surrogate=surrogate,
    exact_moments=categorical.enumerated_moments("reinmax", categorical.all_states,
                                                 _given_draws),
    check=categorical.check_relaxed,
    unbiased=False, declared_biased=True, pathwise=True,
    settings=(("temperature", 1.0, "the temperature τ of π₁ = ½(softmax(α/τ) + D)", 0.0),),
    discrete_latents=True,
)

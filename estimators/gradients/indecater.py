"""IndeCateR: the CatLog-derivative trick, Rao-Blackwellized over each variable's
categories (De Smet, Sansone & Zuidberg Dos Martires, "Differentiable Sampling of
Categorical Distributions Using the CatLog-Derivative Trick", NeurIPS 2023).

For V independent categorical variables z = (z_1, ..., z_V) with p(z_v = c | θ) = p_vc,

    ∇θ E[f(z, θ)] = Σ_v E_{z_{-v}} [ Σ_c ∇θ p_vc · f(z_{-v}, z_v = c, θ) ] + E[∇θ f(z, θ)],

so from n draws z⁽ⁱ⁾ ~ p the unbiased estimate

    ĝ = (1/n) Σ_i Σ_v Σ_c ∇θ p_vc · f(z⁽ⁱ⁾_{-v}, c)  (+ ∇θ f's direct part)

sums each variable's categories exactly while the others keep their sampled values. It
costs **n · V · C evaluations of f** (the paper compares it with REINFORCE at that many
draws, as gradvar's reports do per evaluation of f). Σ_c ∇p_vc = 0, so a constant
baseline changes nothing: the exact sum over c is its own baseline.

As a surrogate: Σ_v Σ_c p_vc(θ) · stop_gradient(f̄_vc), f̄_vc the mean over draws of f
with z_v set to c; the direct part (a cost that depends on θ itself) is the mean over
variables of Σ_c stop_gradient(p_vc) · f(z_{-v}, c, θ), unbiased for E[∇θ f] with the
same evaluations.
"""

from estimators._runtime import tf
from estimators.gradients import categorical
from estimators.gradients.base import Identity

sg = tf.stop_gradient


def variants(z, categories: int):
    """Each draw with one variable set to each category: ``[n, V, C, R, V]`` from z
    ``[n, R, V]`` (int32); ``[i, v, c]`` is draw i with z_v = c."""
    variables = tf.shape(z)[-1]
    own = tf.eye(variables, dtype=tf.bool)[:, None, None, :]  # [V, 1, 1, V]: which to set
    value = tf.range(categories, dtype=z.dtype)[None, :, None, None]  # [1, C, 1, 1]
    return tf.where(own, value, z[:, None, None])  # [n, V, C, R, V]


def surrogate(problem, theta, n, key, context, state):
    del context, state
    dist = problem.measure(theta)
    alpha = categorical.variable_logits(dist, theta)  # [R, V, C]
    variables, categories = alpha.shape[1], alpha.shape[2]
    z = categorical.draw(alpha, n, key)  # [n, R, V]
    swapped = variants(z, categories)  # [n, V, C, R, V]
    flat = tf.reshape(swapped, [-1, tf.shape(z)[1], variables])  # [n·V·C, R, V]
    f = tf.reshape(categorical.costs(problem, dist, flat, theta),
                   [n, variables, categories, -1])  # [n, V, C, R]
    p = tf.transpose(tf.nn.softmax(alpha, axis=-1), [1, 2, 0])  # [V, C, R]
    mean_f = tf.reduce_mean(f, axis=0)  # [V, C, R]
    score = tf.reduce_sum(p * sg(_centred(mean_f)), axis=[0, 1])  # [R]
    direct = tf.reduce_sum(sg(p) * mean_f, axis=[0, 1]) / variables
    return score + direct


def _centred(f):
    """f ``[V, C, ...]`` minus its mean over each variable's categories: Σ_c ∇p_vc = 0, so
    the estimate is the same, but float32 keeps the differences between categories that a
    large common part of f (the toy's 0.5) would round away."""
    return f - tf.reduce_mean(f, axis=1, keepdims=True)


def _given_draws(problem, dist, theta, z, **settings):
    """The surrogate of one draw z ``[O, V]`` per row of θ ``[O, d]`` (exact moments)."""
    del settings
    alpha = categorical.variable_logits(dist, theta)  # [O, V, C]
    variables, categories = alpha.shape[1], alpha.shape[2]
    f = tf.reshape(categorical.costs(
        problem, dist, tf.reshape(variants(z[None], categories), [-1, len(z), variables]),
        theta), [variables, categories, -1])  # [V, C, O]
    p = tf.transpose(tf.nn.softmax(alpha, axis=-1), [1, 2, 0])  # [V, C, O]
    return tf.reduce_sum(p * sg(_centred(f)) + sg(p) * f / variables, axis=[0, 1])


def check(label, problem, dist, vector, batch_size):
    del vector, batch_size
    categorical.require_categorical(label, problem, dist)


def f_evals(problem, vector, n_samples: int) -> int:
    _, variables, categories = categorical.view(problem.distribution(vector))
    return n_samples * variables * categories


IDENTITY = Identity(
    name="indecater",
    summary="IndeCateR (De Smet et al. 2023): each variable's categories summed exactly, the "
            "others sampled; unbiased, categorical z, V·C f per draw.",
    surrogate=surrogate,
    exact_moments=categorical.enumerated_moments("indecater", categorical.all_states,
                                                 _given_draws),
    check=check,
    f_evals=f_evals,
    memory_per_value=categorical.copies_memory(lambda variables, categories:
                                               variables * categories),
    discrete_latents=True,
)

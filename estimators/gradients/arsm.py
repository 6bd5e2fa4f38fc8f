"""ARSM: the augment-REINFORCE-swap-merge estimator for categorical latents (Yin, Yue &
Zhou, "ARSM: Augment-REINFORCE-Swap-Merge Estimator for Gradient Backpropagation Through
Categorical Variables", ICML 2019).

For V categorical variables with logits α_v ∈ R^C, each draw augments z by π_v ~ Dir(1_C)
per variable, z_v = argmin_c (log π_vc − α_vc) (a draw of p). Swapping entries m and j of
every π_v gives the pseudo action z^{m⇌j} (z^{m⇌m} = z), and

    ĝ_{α_vm} = Σ_j [ f(z^{m⇌j}) − (1/C) Σ_{m'} f(z^{m'⇌j}) ] (1/C − π_vj)

is unbiased for ∂E[f]/∂α_vm (the "merge" of the swapped REINFORCE estimates, with the
mean over m' as its baseline). The swap is shared by the V variables (the paper's
multivariate form), so a draw evaluates f at the **C(C − 1)/2 + 1 distinct pseudo actions**
(z^{m⇌j} = z^{j⇌m}): 7 at C = 4, 436 at C = 30, whatever V. (The authors' code evaluates
only the distinct *values* of z^{m⇌j}, often far fewer — on the ARSM toy an average of 4.0,
1.05, 30 and 1.33 at C = 4 and 30, flat and peaked — an implementation saving that a
compiled program of fixed shapes does not make; ``f_evals_per_estimate`` counts what this
one evaluates.) Written as a surrogate: Σ stop_gradient(ĝ) · α(θ), plus f(z, θ) for a cost
that depends on θ directly. The Dirichlet is drawn as normalized exponentials
(E = −log u). No exact moments: its noise is continuous.
"""

import itertools

import numpy as np

from estimators import truth
from estimators._runtime import tf
from estimators.gradients import categorical, logits
from estimators.gradients.base import Identity

sg = tf.stop_gradient


def _swaps(categories: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct swaps (identity first, then m < j) as permutations ``[P, C]``, and
    which of them is (m, j) for every ordered pair: ``[C, C]`` indices into P."""
    pairs = [(0, 0)] + list(itertools.combinations(range(categories), 2))
    permutations = np.tile(np.arange(categories), (len(pairs), 1))
    where = np.zeros((categories, categories), dtype=np.int32)
    for index, (m, j) in enumerate(pairs):
        permutations[index, [m, j]] = permutations[index, [j, m]]
        if m != j:
            where[m, j] = where[j, m] = index
    return permutations.astype(np.int32), where


def surrogate(problem, theta, n, key, context, state):
    del context, state
    dist = problem.measure(theta)
    alpha = categorical.variable_logits(dist, theta)  # [R, V, C]
    categories = alpha.shape[-1]
    shape = tf.concat([[n], tf.shape(alpha)], 0)
    exponentials = -tf.math.log(logits.uniforms(shape, key, alpha.dtype))  # [n, R, V, C]
    pi = exponentials / tf.reduce_sum(exponentials, axis=-1, keepdims=True)  # Dir(1)
    permutations, where = _swaps(categories)
    swapped = tf.gather(tf.math.log(pi), permutations, axis=-1)  # [n, R, V, P, C]
    z = tf.argmin(swapped - sg(alpha)[:, :, None, :], axis=-1,
                  output_type=tf.int32)  # [n, R, V, P]
    z = tf.transpose(z, [3, 0, 1, 2])  # [P, n, R, V]
    pseudo = tf.reshape(z, tf.concat([[-1], tf.shape(z)[2:]], 0))  # [P·n, R, V]
    f = tf.reshape(categorical.costs(problem, dist, pseudo, theta),
                   [len(permutations), n, -1])  # [P, n, R]
    table = tf.gather(f, where)  # [m, j, n, R]: f(z^{m⇌j})
    centred = table - tf.reduce_mean(table, axis=0, keepdims=True)
    weight = 1.0 / categories - pi  # [n, R, V, j]
    gradient = tf.einsum("mjnr,nrvj->nrvm", sg(centred), weight)  # [n, R, V, C]
    score = tf.reduce_sum(sg(gradient) * alpha, axis=[2, 3])  # [n, R]
    return tf.reduce_mean(score + f[0], axis=0)  # f[0] = f(z, θ): the direct part


def check(label, problem, dist, vector, batch_size):
    del vector, batch_size
    categorical.require_categorical(label, problem, dist)


def swaps(categories: int) -> int:
    """The distinct pseudo actions of a draw: C(C − 1)/2 swaps and the draw itself."""
    return categories * (categories - 1) // 2 + 1


def f_evals(problem, vector, n_samples: int) -> int:
    _, _, categories = categorical.view(problem.distribution(vector))
    return n_samples * swaps(categories)


IDENTITY = Identity(
    name="arsm",
    summary="ARSM (Yin et al. 2019): REINFORCE on Dirichlet-augmented draws, swapped and "
            "merged; unbiased, categorical z, C(C−1)/2 + 1 f per draw.",
    surrogate=surrogate,
    exact_moments=truth.no_exact_form("ARSM's Dirichlet noise is continuous: it has no exact "
                                      "per-sample variance here"),
    check=check,
    f_evals=f_evals,
    memory_per_value=categorical.copies_memory(lambda _, categories: swaps(categories)),
    discrete_latents=True,
)

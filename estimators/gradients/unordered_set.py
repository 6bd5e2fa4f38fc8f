"""The unordered set estimator: the score function over k samples drawn without
replacement, with its built-in baseline (Kool, van Hoof & Welling, "Estimating Gradients
for Discrete Random Variables by Sampling without Replacement", ICLR 2020).

A batch of n draws is one set S of k = n distinct states of a categorical z (one variable,
or the joint of V variables when it has at most
:data:`~estimators.gradients.categorical.MAX_JOINT` states), sampled without replacement
by Gumbel-top-k. With p(S) the probability of drawing the unordered set S, and
p^{D∖B}(T) that of drawing T from the domain without the states B,

    e_US(S)  = Σ_{s ∈ S} ∇θ p(s) R(S, s) f(s),    R(S, s) = p^{D∖s}(S∖s) / p(S),

and, with the baseline (``baseline = 1``, the default),

    e_USB(S) = Σ_{s ∈ S} ∇θ p(s) R(S, s) [ f(s) − B(S, s) ],
    B(S, s)  = p(s) f(s) + Σ_{s' ∈ S∖s} p(s') f(s') p^{D∖{s,s'}}(S∖{s,s'}) / p^{D∖s}(S∖s),

B(S, s) being the unordered set estimate of E[f] from the other k − 1 draws, given s:
its expectation is E[f] whatever s, so it subtracts nothing on average. Both are
unbiased; with k equal to the number of states they are the exact gradient. k evaluations
of f per set; 2 ≤ k ≤ 16 (a set of one is REINFORCE; the baseline needs k² subsets). A cost that depends on θ itself adds Σ_s p(s) R(S, s) ∇θ f(s, θ).

Every p^{D∖B}(T) here has T ∪ B = S, so with r = 1 − p(S's states) (the mass outside S,
summed in log space) and a_i = p_i / r,

    p^{D∖B}(T) = ∫₀¹ Π_{i ∈ T} (1 − u^{a_i}) du = ∫ e^{s − e^s} Π_{i ∈ T} (1 − e^{−a_i e^s}) ds

(u = exp(−e^s)), integrated in float64 by a composite Gauss-Legendre rule in s over
[log(10⁻¹⁶ / max(1, a_max)), log(k + 1 + 10√(k + 1) + 60)], in log space: no cancellation, unlike the
inclusion-exclusion sum (which loses every digit when k states of a large domain are all
improbable).
"""

import itertools

import numpy as np

from estimators import measure, memory
from estimators._runtime import tf
from estimators.errors import NotApplicableError
from estimators.gradients import categorical
from estimators.gradients.base import Identity, per_draw

sg = tf.stop_gradient

PANELS, NODES, NODE_GROUPS = 32, 16, 8
"""The composite rule in s: panels of Gauss-Legendre nodes each (512 nodes: within 10⁻¹⁴
of the exact rational sums of the tests; 384 gave 2·10⁻¹³, 256 3·10⁻⁹), summed in groups
of panels to bound the memory."""


def _rule():
    nodes, weights = np.polynomial.legendre.leggauss(NODES)
    edges = np.arange(PANELS)[:, None]
    fractions = ((edges + (nodes + 1.0) / 2.0) / PANELS).ravel()  # in (0, 1)
    return fractions, np.tile(weights / (2.0 * PANELS), PANELS)


def _masks(k: int) -> np.ndarray:
    """Which of S's k members each set T holds, ``[1 + k + k², k]``: S, then S∖s for each
    s, then S∖{s, s'} for each (s, s') (S∖s on the diagonal)."""
    full = np.ones((1, k))
    minus_one = 1.0 - np.eye(k)
    minus_two = np.minimum(minus_one[:, None, :], minus_one[None, :, :]).reshape(k * k, k)
    return np.concatenate([full, minus_one, minus_two])


def log_set_probabilities(log_p_set, log_rest):
    """log p^{D∖B}(T) for the sets of :func:`_masks`: ``[R, 1 + k + k²]`` float64, from the
    members' log-probabilities ``[R, k]`` and the log-mass outside the set ``[R]``."""
    k = log_p_set.shape[-1]
    log_a = tf.cast(log_p_set, tf.float64) - tf.cast(log_rest, tf.float64)[:, None]
    fractions, weights = _rule()
    low = np.log(1e-16) - tf.nn.relu(tf.reduce_max(log_a, axis=-1))  # [R]
    # The integrand of k improbable states peaks near t = k + 1 (like t^{k+1} e^{-t}).
    high = np.log(k + 1 + 10 * np.sqrt(k + 1) + 60.0)
    masks = tf.constant(_masks(k))
    groups = np.stack(np.split(np.arange(len(fractions)), NODE_GROUPS))  # [G, n]
    node_fractions = tf.constant(fractions[groups])
    log_weights = tf.constant(np.log(weights[groups]))

    def group(g, total):
        # One group of panels per iteration: a loop (not unrolled) keeps XLA from holding
        # [R, 1 + k + k², 512] float64 at once (0.9 GB at k = 10 and R = 2,000).
        s = low[:, None] + (high - low[:, None]) * node_fractions[g]  # [R, n]
        t = tf.exp(s)
        # log(1 − e^{−a t}) per member and node, [R, k, n]; ≈ log(a t) where a t underflows.
        log_at = log_a[:, :, None] + s[:, None, :]
        factors = tf.where(log_at < -30.0, log_at,
                           tf.math.log(-tf.math.expm1(-tf.exp(tf.minimum(log_at, 700.0)))))
        inside = tf.einsum("mk,rkn->rmn", masks, factors)  # [R, M, n]
        log_w = log_weights[g][None, :] + tf.math.log(high - low)[:, None]  # [R, n]
        chunk = tf.reduce_logsumexp(inside + (s - t + log_w)[:, None, :], axis=-1)  # [R, M]
        return g + 1, tf.math.reduce_logsumexp(tf.stack([total, chunk]), axis=0)

    start = tf.fill([tf.shape(log_a)[0], masks.shape[0]], tf.constant(-np.inf, tf.float64))
    _, total = tf.while_loop(lambda g, total: g < NODE_GROUPS, group, (0, start))
    return total


def set_surrogate(problem, dist, theta, states, log_p, members, baseline: bool):
    """The surrogate ``[R]`` of the sets ``members`` ``[R, k]`` (state indices)."""
    k = members.shape[-1]
    log_p_set = tf.gather(log_p, members, batch_dims=1)  # [R, k], path to θ
    outside = tf.reduce_sum(tf.one_hot(members, tf.shape(log_p)[-1], dtype=log_p.dtype), 1)
    log_rest = tf.reduce_logsumexp(tf.where(outside > 0, -float("inf"), sg(log_p)), axis=-1)
    # A set of every state leaves no mass outside (r = 0, each p^{D∖B}(T) = 1); e⁻⁸⁰ of
    # the set's mass gives the same ratios to 1e-34 and keeps the rule finite.
    log_rest = tf.maximum(log_rest, tf.reduce_max(sg(log_p_set), axis=-1) - 80.0)
    log_set = log_set_probabilities(sg(log_p_set), log_rest)  # [R, 1 + k + k²]
    whole, minus_one = log_set[:, :1], log_set[:, 1:1 + k]
    minus_two = tf.reshape(log_set[:, 1 + k:], [-1, k, k])
    p = tf.exp(tf.cast(sg(log_p_set), tf.float64))  # [R, k]
    f = categorical.joint_costs(problem, dist, states, tf.transpose(members), theta)  # [k, R]
    f_set = tf.cast(tf.transpose(sg(f)), tf.float64)  # [R, k]
    weight = p * tf.exp(minus_one - whole)  # p(s) R(S, s)
    if baseline:
        others = tf.exp(minus_two - minus_one[:, :, None])  # [R, s, s']; 1 on the diagonal
        centred = f_set - tf.linalg.matvec(others, p * f_set)  # f(s) − B(S, s)
    else:
        centred = f_set
    score = tf.reduce_sum(tf.cast(sg(weight * centred), log_p.dtype) * log_p_set, axis=-1)
    direct = tf.reduce_sum(tf.transpose(f) * tf.cast(sg(weight), f.dtype), axis=-1)
    return score + direct


def surrogate(problem, theta, n, key, context, state):
    del state
    dist = problem.measure(theta)
    states, log_p = categorical.joint_of("unordered_set", problem, dist, theta)  # [R, S]
    members = tf.math.top_k(categorical.perturbed(log_p, 1, key)[0], k=n).indices  # [R, k]
    return set_surrogate(problem, dist, theta, states, log_p, members,
                         bool(context.settings["baseline"]))


def _outcomes(problem, dist, alpha, batch_size, settings):
    """Every ordered k-tuple of distinct states and its probability of being drawn in that
    order (each unordered set appears k! times)."""
    del settings
    if batch_size is None:
        raise NotImplementedError("the variance of unordered_set depends on the batch size "
                                  "(the set of draws); pass batch_size=k to "
                                  "truth.per_sample_variance")
    states, probabilities = categorical.all_states(problem, dist, alpha, batch_size, {})
    k = int(batch_size)
    count = int(np.prod(np.arange(len(states) - k + 1, len(states) + 1)))
    if count > categorical.MAX_OUTCOMES:
        raise NotImplementedError(f"the {count} ordered sets of {k} states are too many to "
                                  "sum over")
    tuples = np.array(list(itertools.permutations(range(len(states)), k)), dtype=np.int32)
    chosen = probabilities[tuples]  # [O, k]
    before = np.concatenate([np.zeros((len(tuples), 1)), np.cumsum(chosen, 1)[:, :-1]], 1)
    return tuples, np.prod(chosen / (1.0 - before), axis=1)


def _given_set(problem, dist, theta, members, baseline):
    states, log_p = categorical.joint_of("unordered_set", problem, dist, theta)
    return set_surrogate(problem, dist, theta, states, log_p, members, bool(baseline))


MAX_SET = 16
"""Most draws in a set: the baseline needs the probabilities of k² subsets per set, each
a 512-node rule in float64 (k = 16 and R = 1000: 1.1 GB)."""


def check(label, problem, dist, vector, batch_size):
    categorical.joint_outcomes_check(label, problem, dist, vector, batch_size)
    if batch_size > MAX_SET:
        raise NotApplicableError(
            f"{label} computes the probabilities of the k² subsets of each set of k = "
            f"batch_size draws, so it takes sets of at most {MAX_SET} draws, got batch_size = "
            f"{batch_size}; use a smaller batch_size (n_samples may be any multiple).")
    _, variables, categories = categorical.view(dist)
    if batch_size > categories**variables:
        raise NotApplicableError(
            f"{label} draws batch_size = {batch_size} distinct states without replacement, "
            f"but problem '{problem.name}' has only {categories**variables}; use a "
            f"batch_size of at most {categories**variables}.")


def _memory(problem, vector) -> float:
    """Float32 temporaries per value of a batch (:mod:`estimators.memory`), at the largest
    set: two float64 tensors of the 1 + k + k² subsets' probabilities at every node, per
    replicate (a conservative count for smaller sets)."""
    dist = problem.distribution(vector)
    subsets = 1 + MAX_SET + MAX_SET**2
    per_replicate = 2 * 2 * subsets * PANELS * NODES  # float32 values (float64: 2 each)
    return memory.PER_VALUE + per_replicate / (MAX_SET * (measure.event_size(dist)
                                                          + problem.dim))


IDENTITY = Identity(
    name="unordered_set",
    summary="Unordered set estimator (Kool et al. 2020): a batch is k states drawn without "
            "replacement, with its built-in baseline (baseline=0: none); unbiased.",
    surrogate=surrogate,
    exact_moments=categorical.enumerated_moments("unordered_set", _outcomes, _given_set,
                                                 draws_per_outcome=lambda batch: batch),
    check=check,
    f_evals=per_draw,
    memory_per_value=_memory,
    min_batch=2,  # the baseline is the other draws' estimate; a set of one is REINFORCE
    settings=(("baseline", 1.0, "1: the built-in baseline, 0: none", None, "flag"),),
    discrete_latents=True,
)

"""Double control variates for binary latent variables (Titsias & Shi, "Double Control
Variates for Gradient Estimation in Discrete Latent Variable Models", AISTATS 2022).

Estimates ∇θ E_{p(b|θ)}[f(b, θ)] for independent Bernoullis b ∈ {0, 1}^D with logits α(θ)
and p = σ(α). A batch of n ≥ 2 independent draws b_1..b_n is one group. The leave-one-out
baseline of RLOO (the first control variate) is applied to f corrected by a second, global
one: the linear term of a Taylor expansion of f, whose slope g_{-k} = mean_{j≠k} ∇_b f(b_j)
comes from the *other* draws (so it is independent of b_k):

    h_k = f(b_k) - w g_{-k}·(b_k - p),
    ĝ = 1/n Σ_k (h_k - mean_{j≠k} h_j)(b_k - p) + w ḡ ⊙ p(1 - p),     ḡ = mean_k ∇_b f(b_k),

a gradient in α (chain rule to θ). The last term adds back the control variate's
expectation, E[g_{-k}·(b_k - p) (b_k - p)] = p(1 - p) ⊙ E ∇_b f. Unbiased for every f
differentiable in b at the draws and every weight w; w = 0 is RLOO (``score_function``
with ``control_variate=loo``). On a cost linear in b, f = c + aᵀb, every h_k is
c + aᵀp at w = 1 and the estimate is a ⊙ p(1 - p) exactly: zero variance.

The reference code (thjashin/rodeo, ``grad_type="double_cv"``) writes the weight as
α = -w and trains it on the estimator's variance from α = 0 (RLOO). Here ``double_cv``
takes w as a setting (default 1, the Taylor expansion itself), and ``double_cv_learned``
learns it as the reference does: w is its state, one per replicate, starting at the
``weight`` setting (default 0) and trained by Adam down ∇_w ‖ĝ‖²
(:func:`estimators.learning.variance_descent`; the reference's step is 1e-3 over a VAE's
training, here ``learning_rate`` defaults to 0.01 for warm-ups of hundreds of updates).
The slope of f at a binary draw need not be its secant: on f = (b - t)² it is ±2(b - t)
where f(1) - f(0) = 1 - 2t, and w = 1 multiplies the variance (learned, w goes to where
it helps). One evaluation of f and of its gradient in b per draw.

Exact moments on one Bernoulli: the estimate is symmetric in the group's draws, so it
depends on them through the number of ones, which is Binomial(n, p).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from estimators import learning, protocol
from estimators._runtime import tf
from estimators.gradients import logits
from estimators.gradients.base import Identity, per_draw

sg = tf.stop_gradient


def group_surrogate(problem, dist, theta, b, weight=1.0):
    """The surrogate of one group of independent draws b ``[n, R, *event]``: ``[R]``,
    whose θ-gradient is ĝ (module docstring) plus the mean of ∇θ f over the group;
    ``weight`` is a number or a per-replicate ``[R]`` tensor (learned: ĝ keeps its path
    to it)."""
    n = b.shape[0]
    alpha = logits.logits(dist, theta)  # [R, *event]
    p = tf.sigmoid(sg(alpha))
    if isinstance(weight, tf.Tensor):  # [R] -> [R, 1, ...] against [R, *event]
        weight = tf.reshape(weight, tf.concat([tf.shape(weight),
                                               tf.ones([alpha.shape.rank - 1], tf.int32)], 0))
    with tf.GradientTape() as tape:
        tape.watch(b)
        f = problem.cost_values(dist, b, theta)  # [n, R]
    slopes = sg(tape.gradient(f, b, unconnected_gradients=tf.UnconnectedGradients.ZERO))
    others = (tf.reduce_sum(slopes, axis=0) - slopes) / (n - 1)  # [n, R, *event]
    draw_event = list(range(2, b.shape.rank))
    taylor = tf.reduce_sum(weight * others * (b - p), axis=draw_event)  # [n, R]
    h = sg(f) - taylor
    centred = h - (tf.reduce_sum(h, axis=0) - h) / (n - 1)  # [n, R]
    centred = tf.reshape(centred, tf.concat([tf.shape(centred),
                                             tf.ones([len(draw_event)], tf.int32)], 0))
    score = tf.reduce_mean(centred * (b - p), axis=0)  # [R, *event]: ĝ in α before the
    expectation = weight * tf.reduce_mean(slopes, axis=0)  # correction, and its slope
    # Both are θ-free already (f, the slopes and p are cut), so no stop_gradient here:
    # a learned weight's update differentiates the estimate through them.
    event = list(range(1, alpha.shape.rank))
    return tf.reduce_sum(score * alpha + expectation * tf.sigmoid(alpha), axis=event) \
        + tf.reduce_mean(f, axis=0)


def _draws(problem, theta, n, key):
    dist = problem.measure(theta)
    p = tf.sigmoid(sg(logits.logits(dist, theta)))  # [R, *event]
    u = logits.uniforms(tf.concat([[n], tf.shape(p)], 0), key, p.dtype)  # [n, R, *event]
    return dist, tf.cast(u < p, p.dtype)


def surrogate(problem, theta, n, key, context, state):  # [R]
    del state  # stateless
    dist, b = _draws(problem, theta, n, key)
    return group_surrogate(problem, dist, theta, b, **context.settings)


def learned_surrogate(problem, theta, n, key, context, state):  # [R]
    dist, b = _draws(problem, theta, n, key)
    weight = state[protocol.IDENTITY_STATE]["params"]["weight"]  # [R]
    return group_surrogate(problem, dist, theta, b, weight)


def _init(problem, theta, settings):
    del problem
    return learning.with_slots(
        {"weight": tf.fill(tf.shape(theta)[:1], tf.cast(settings["weight"], theta.dtype))})


def ones_probabilities(p: float, n: int) -> np.ndarray:
    """P(m ones among n independent draws) = Binomial(n, p), m = 0..n."""
    return stats.binom.pmf(np.arange(n + 1), n, p)


def _check(label, problem, dist, vector, batch_size):
    del batch_size
    logits.require_binary(label, problem, dist, " (its categorical extension is not "
                                                "implemented here)")
    logits.require_cost_gradient(label, problem, vector, relaxed=False)


IDENTITY = Identity(
    name="double_cv",
    summary="Double control variates (Titsias & Shi 2022): each batch is n ≥ 2 draws with "
            "a leave-one-out baseline of f minus a Taylor control variate; unbiased, "
            "binary b, 1 f and 1 ∇_b f per draw; exact on a cost linear in b.",
    surrogate=surrogate,
    exact_moments=logits.group_moments("double_cv", group_surrogate, ones_probabilities),
    check=_check,
    min_batch=2,
    f_evals=per_draw,
    memory_per_value=5.0,
    discrete_latents=True,
    settings=(("weight", 1.0, "the Taylor control variate's weight; 0 is RLOO", None),),
)

LEARNED = Identity(
    name="double_cv_learned",
    summary="Double control variates (Titsias & Shi 2022) with the Taylor control "
            "variate's weight learned on the estimator's variance (Adam, per replicate, from "
            "0: RLOO), as the reference code does; unbiased, binary b, 1 f and 1 ∇_b f per "
            "draw.",
    surrogate=learned_surrogate,
    init=_init,
    update=learning.variance_descent(learned_surrogate, learning.adam),
    check=_check,
    min_batch=2,
    f_evals=per_draw,
    memory_per_value=5.0,
    discrete_latents=True,
    settings=(("weight", 0.0, "the Taylor control variate's initial weight; 0 is RLOO", None),
              ("learning_rate", 0.01, "Adam's step size on the variance", 0.0)),
)

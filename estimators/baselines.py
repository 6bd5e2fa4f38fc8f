"""Score-function estimators with baselines estimated inside each batch.

Both estimate ∇θ E_{p(x|θ)}[f(x, θ)] with the score function and a baseline b
(a control variate whose mean is zero because E_p[∇θ log p] = 0; Mohamed, Rosca,
Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine Learning", JMLR 21(132),
2020, Section 7.4 on control variates and baselines, with the estimator of Section 4):

    ĝ = (1/B) Σ_i [(f(x_i, θ) - b_i) ∇θ log p(x_i|θ) + ∇θ f(x_i, θ)],   x_i ~ p, fixed.

b_i is built from the *other* draws of the same batch of B, so it is independent of x_i
and the estimate stays unbiased. Unlike the plain estimators, the variance depends on
the batch size (the baseline improves with B); an estimate from n samples averages
n / B batch estimates. Any distribution with a log-density or mass function (discrete
ones included); at least two samples per batch.

* ``score_function_loo``: b_i = mean of f over the other B-1 draws. For large B this
  is the constant baseline E[f]: a large gain when |E f| is large against the spread
  of f, a loss for a component whose optimal baseline (below) is far from E f
  (gaussian_exp k=10 at θ = (1, 1), ∂std: per-sample variance 0.041 against 0.009
  without a baseline). Exact variance at batch size B:
  :func:`estimators.truth.leave_one_out_moments` (pass ``batch_size``).
* ``score_function_batch_optimal``: the variance-minimizing constant baseline for each
  component j of θ, b_j = E[f s_j²] / E[s_j²] with s = ∇θ log p, estimated from the
  other B-1 draws (a leave-one-out estimate of the optimal baseline; the in-batch
  estimate including x_i would correlate with x_i and bias the gradient). Unbiased; no
  exact variance (a ratio of sums), ``truth`` raises NotImplementedError. The ratio is
  itself noisy when f s² is heavy-tailed, so at moderate B it can lose to the LOO mean
  (gaussian_square k=-3 at θ = (1, 1), B = 100: per-sample variance of the mean
  component 153 against 143, although its large-batch limit is 134 against 138).
"""

from estimators import score_function, truth
from estimators._tf import tf
from estimators.estimator import Estimator, cost, draw, register


def leave_one_out_sum(values):
    """Σ_{k≠i} values_k along axis 0, without the cancellation of ``total - values_i``."""
    return (tf.cumsum(values, axis=0, exclusive=True)
            + tf.cumsum(values, axis=0, exclusive=True, reverse=True))


def loo_surrogate(problem, theta, n, key, window):
    """Score function with the leave-one-out mean of f as baseline: ``[R]``."""
    dist, x = draw(problem, theta, n, key, pathwise=False)  # x: [n, R]
    baseline = leave_one_out_sum(tf.stop_gradient(cost(problem, x, theta))) / (n - 1)  # [n, R]
    terms = score_function.per_sample(problem, dist, x, theta) \
        - tf.stop_gradient(baseline) * dist.log_prob(x)  # [n, R]
    return tf.reduce_mean(terms, axis=0)


def scores(problem, theta, x):
    """``∇θ log p(x_i|θ)`` of each draw: ``[n, R, d]`` for x ``[n, R]``, θ ``[R, d]``;
    None when p does not depend on θ at all."""
    theta_n = tf.broadcast_to(theta, tf.concat([tf.shape(x)[:1], tf.shape(theta)], 0))  # [n, R, d]
    with tf.GradientTape() as tape:
        tape.watch(theta_n)
        log_prob = problem.dist(problem.unpack(theta_n)).log_prob(x)  # [n, R]
    return tape.gradient(log_prob, theta_n)  # [n, R, d] or None


def optimal_surrogate(problem, theta, n, key, window):
    """Score function with the leave-one-out optimal baseline per component: ``[R]``.

    The estimate is formed explicitly (``[R, d]``) and returned as ``Σ_j ĝ_j θ_j`` with
    ĝ cut from θ, whose θ-gradient is ĝ; the ∇θ f term is differentiated as usual.
    """
    dist, x = draw(problem, theta, n, key, pathwise=False)  # x: [n, R]
    score = scores(problem, theta, x)  # [n, R, d]
    if score is None:
        # No score term. Building it anyway gives XLA cumulative sums of a constant
        # zero tensor to fold at compile time: minutes at n = 16,000 (measured 390 s).
        return tf.reduce_mean(cost(problem, x, theta), axis=0)  # [R]
    score = tf.stop_gradient(score)
    values = tf.stop_gradient(cost(problem, x, theta))[..., tf.newaxis]  # [n, R, 1]
    squares = score**2  # [n, R, d]
    baseline = tf.math.divide_no_nan(leave_one_out_sum(values * squares),
                                     leave_one_out_sum(squares))  # [n, R, d]
    estimate = tf.stop_gradient(tf.reduce_mean((values - baseline) * score, axis=0))  # [R, d]
    return tf.reduce_sum(estimate * theta, axis=-1) \
        + tf.reduce_mean(cost(problem, x, theta), axis=0)  # [R]


LOO = register(Estimator(
    name="score_function_loo",
    surrogate=loo_surrogate,
    min_batch=2,
    exact_moments=truth.leave_one_out_moments,
    summary="Score function with the leave-one-out batch mean of f as baseline; unbiased.",
))

BATCH_OPTIMAL = register(Estimator(
    name="score_function_batch_optimal",
    surrogate=optimal_surrogate,
    min_batch=2,
    exact_moments=truth.no_exact_form(
        "the leave-one-out optimal baseline is a ratio of sums over the batch, with no "
        "exact variance by quadrature"),
    summary="Score function with a leave-one-out estimate of the optimal baseline "
            "E[f s²]/E[s²] per component; unbiased.",
))

"""Double control variates (Titsias & Shi 2022) against exact answers.

On one Bernoulli the estimate of a group of n independent draws depends on the number of
ones only (Binomial(n, p)), so its exact mean and variance are sums; the exact mean must
be the true gradient, weight 0 must be RLOO exactly, and measured means and variances sit
within 5 SE of the exact ones. On vector Bernoullis the means sit within 5 SE of the
truth (closed form or enumeration), a cost linear in b gives zero variance, and one group's
estimate equals the reference code's expression (thjashin/rodeo, ported to NumPy).
"""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import estimators as E
from estimators.gradients import double_cv
from tests.conftest import assert_within_se, variance_z
from tests.estimators.bernoulli_problems import linear_problem, pairs_problem

R = 4000


def logit(p):
    return float(np.log(p / (1.0 - p)))


@pytest.mark.parametrize("t", [0.499, 0.45])
def test_the_exact_mean_is_the_true_gradient_for_every_group_size_and_weight(t):
    toy = E.problems.get("bernoulli_toy", t=t)
    for p in (0.003, 0.1, 0.5, 0.77, 0.99):
        truth = toy.true_gradient(logit(p))
        for n in (2, 3, 5, 10):
            for weight in (1.0, 0.3, -2.0):
                mean, _ = E.get_estimator("double_cv", weight=weight).exact_moments(
                    toy, logit(p), batch_size=n)
                np.testing.assert_allclose(mean, truth, rtol=1e-9,
                                           err_msg=f"p={p}, n={n}, weight={weight}")


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_weight_zero_is_rloo(p):
    toy = E.problems.get("bernoulli_toy", t=0.45)
    for n in (2, 4, 9):
        _, ours = E.get_estimator("double_cv", weight=0.0).exact_moments(toy, logit(p),
                                                                         batch_size=n)
        _, rloo = E.get_estimator("score_function_loo").exact_moments(toy, logit(p),
                                                                      batch_size=n)
        np.testing.assert_allclose(ours, rloo, rtol=1e-9)


@pytest.mark.parametrize("t, p, n, weight", [(0.499, 0.1, 4, 1.0), (0.45, 0.5, 3, 1.0),
                                             (0.45, 0.8, 6, 0.2)],
                         ids=lambda value: f"{value:g}")
def test_mean_and_variance_on_the_toy(t, p, n, weight):
    toy, theta = E.problems.get("bernoulli_toy", t=t), logit(p)
    estimator = E.get_estimator("double_cv", weight=weight)
    values = E.estimate(estimator, toy, theta, n_samples=2 * n, n_replicates=R, batch_size=n,
                        seed=11)
    assert_within_se(values, toy.true_gradient(theta), float_tol=1e-6)
    _, per_sample = estimator.exact_moments(toy, theta, batch_size=n)
    z, measured = variance_z(values, per_sample / (2 * n))
    assert np.all(np.abs(z) < 5), f"z = {z}, measured {measured}, exact {per_sample / (2 * n)}"


@pytest.mark.parametrize("case", ["quadratic", "pairs"])
def test_unbiased_on_vector_bernoullis(case):
    if case == "quadratic":
        problem = E.problems.get("bernoulli_quadratic", D=6, t=0.3)
        theta = {"logits": [-2.0, -1.0, -0.2, 0.4, 1.0, 2.5]}
    else:
        problem, theta = pairs_problem(), {"logits": [-1.0, 0.3, 0.9, -0.2]}
    values = E.estimate("double_cv", problem, theta, n_samples=10, n_replicates=R,
                        batch_size=5, seed=3)
    assert_within_se(values, problem.truth(theta).gradient, float_tol=1e-6)


def test_a_cost_linear_in_b_has_zero_variance():
    # f = c + a·b: at weight 1 every corrected value h_k is c + a·p, so every estimate is
    # a ⊙ p(1 - p), the exact gradient, up to float32 rounding; RLOO is not.
    problem = linear_problem()
    theta = {"logits": [-1.5, 0.0, 0.4, 2.0, -0.3]}
    truth = problem.truth(theta).gradient
    values = E.estimate("double_cv", problem, theta, n_samples=8, n_replicates=500,
                        batch_size=4, seed=2)
    np.testing.assert_allclose(values, np.broadcast_to(truth, values.shape), rtol=1e-5,
                               atol=1e-6)
    rloo = E.estimate(E.get_estimator("double_cv", weight=0.0), problem, theta,
                      n_samples=8, n_replicates=500, batch_size=4, seed=2)
    assert np.all(rloo.std(axis=0) > 1e-2)


def test_one_group_is_the_reference_codes_expression():
    # thjashin/rodeo networks.py, grad_type="double_cv", K > 4 branch, with its alpha = -w;
    # its gradient is in the logits, which are θ here, plus the cost's direct θ term.
    problem = pairs_problem()
    logits_ = np.array([-1.0, 0.3, 0.9, -0.2])
    p = 1.0 / (1.0 + np.exp(-logits_))
    rng = np.random.default_rng(1)
    K, weight = 6, 0.7
    b = (rng.uniform(size=(K, 2, 4)) < p).astype(np.float64)  # [K, R = 2, D]
    theta = tf.constant(np.tile(logits_, (2, 1)))
    with tf.GradientTape() as tape:
        tape.watch(theta)
        surrogate = double_cv.group_surrogate(problem, problem.measure(theta), theta,
                                              tf.constant(b), weight)
    ours = tape.gradient(surrogate, theta).numpy()  # [2, 4]

    w = np.array([0.5, -0.3, 0.8, 0.2])
    s = b @ w - 0.7
    f = s**2 + b[..., 0] * b[..., 2] + 0.3 * (b * logits_).sum(-1)  # [K, 2]
    grad_b = 2 * s[..., None] * w + 0.3 * logits_  # [K, 2, D]
    grad_b[..., 0] += b[..., 2]
    grad_b[..., 2] += b[..., 0]
    alpha = -weight
    avg_grad_b = grad_b.mean(0)
    loo_avg_grad_b = (grad_b.sum(0) - grad_b) / (K - 1)
    loo_vr = f + alpha * ((b - p) * loo_avg_grad_b).sum(-1)
    loo_vr = (loo_vr.sum(0) - loo_vr) / (K - 1)
    cv = alpha * (loo_avg_grad_b * (b - p)).sum(-1)
    theirs = ((f - loo_vr + cv)[..., None] * (b - p)).mean(0) \
        - alpha * avg_grad_b * p * (1 - p)
    theirs += 0.3 * b.mean(0)  # ∇θ f(b, θ) of the direct term
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_double_cv_counts_one_evaluation_per_draw_and_refuses_what_it_cannot_do():
    toy = E.problems.get("bernoulli_toy")
    assert E.get_estimator("double_cv").f_evals_per_estimate(toy, 0.0, 100, 10) == 100
    with pytest.raises(E.NotApplicableError, match="at least 2 samples per batch"):
        E.estimate("double_cv", toy, 0.0, n_samples=4, batch_size=1)
    with pytest.raises(E.NotApplicableError, match="binary latent variables"):
        E.estimate("double_cv", E.problems.get("poisson_square"), 3.0, n_samples=4)
    rounded = E.Problem(name="rounded", dist=lambda t: E.measure.tfd.Bernoulli(
        logits=t, dtype=tf.float32), cost=lambda b, t: tf.round(b))
    with pytest.raises(E.NotApplicableError, match="differentiates f in b at the draws, "
                       "but the cost of problem 'rounded' has no gradient"):
        E.estimate("double_cv", rounded, 0.0, n_samples=4)
    with pytest.raises(NotImplementedError, match="depends on the batch size"):
        E.get_estimator("double_cv").exact_moments(toy, 0.0)
    with pytest.raises(ValueError, match="weight .* of double_cv must be a finite number"):
        E.get_estimator("double_cv", weight="inf")


# -- the weight learned on the variance (the reference code's way) ----------------------------

def test_learned_starts_as_rloo_and_stays_unbiased():
    toy = E.problems.get("bernoulli_toy", t=0.45)
    start = E.estimate("double_cv_learned", toy, logit(0.3), n_samples=8, n_replicates=300,
                       batch_size=4, seed=6)
    rloo = E.estimate(E.get_estimator("double_cv", weight=0.0), toy, logit(0.3), n_samples=8,
                      n_replicates=300, batch_size=4, seed=6)
    np.testing.assert_allclose(start, rloo, rtol=1e-5, atol=1e-8)
    for problem, theta in ((toy, logit(0.1)),
                           (pairs_problem(), {"logits": [-1.0, 0.3, 0.9, -0.2]})):
        values = E.estimate("double_cv_learned", problem, theta, n_samples=10, n_replicates=R,
                            batch_size=5, seed=3, warmup_batches=100)
        assert_within_se(values, problem.truth(theta).gradient, float_tol=1e-6)


@pytest.mark.parametrize("weight, p", [(0.0, 0.1), (0.5, 0.8)])
def test_the_learned_update_descends_the_exact_variance(weight, p):
    # E ∂‖ĝ‖²/∂w = ∂ Var ĝ / ∂w (E ĝ does not depend on w): measured over 40,000 groups of
    # 4 draws against a central difference of the exact variance (a sum over the count of
    # ones). A weight cut from the estimate would give a mean of exactly 0.
    toy = E.problems.get("bernoulli_toy", t=0.45)
    estimator = E.get_estimator("double_cv_learned", weight=weight)
    count, n = 40_000, 4
    theta = tf.fill([count, 1], tf.constant(logit(p), tf.float32))
    context = estimator.prepare(toy, theta)
    state = estimator.init(toy, theta)["identity"]
    key = tf.constant([7, 8], tf.int32)

    def surrogate(theta, params):
        return estimator.surrogate(toy, theta, n, key, context,
                                   {"identity": {**state, "params": params}})

    _, gradients = E.learning.variance_gradient(surrogate, theta, state["params"])
    measured = gradients["weight"].numpy().astype(np.float64)
    step = 1e-3
    variances = [E.get_estimator("double_cv", weight=w).exact_moments(
        toy, logit(p), batch_size=n)[1][0] / n for w in (weight + step, weight - step)]
    exact = (variances[0] - variances[1]) / (2 * step)
    se = measured.std(ddof=1) / np.sqrt(count)
    assert abs(exact) > 10 * se  # the check can see a zero
    assert abs(measured.mean() - exact) < 5 * se, (measured.mean(), se, exact)


def test_learned_weight_is_below_rloo_after_warm_up():
    # Direction: at p = 0.1 (t = 0.45, groups of 10) 100 updates take the weight to about
    # -0.12 and the variance below RLOO's exact one (measured 8.5e-5 against 5.9e-4 per
    # sample), one-sided chi-square at 1e-6 against the exact RLOO variance.
    toy, n = E.problems.get("bernoulli_toy", t=0.45), 10
    values = E.estimate("double_cv_learned", toy, logit(0.1), n_samples=n, n_replicates=R,
                        batch_size=n, seed=9, warmup_batches=100)[:, 0]
    _, rloo = E.get_estimator("score_function_loo").exact_moments(toy, logit(0.1),
                                                                  batch_size=n)
    statistic = (R - 1) * values.var(ddof=1) / (rloo[0] / n)
    assert statistic < stats.chi2.ppf(1e-6, R - 1)

"""ARMS (Dimitriev & Zhou 2021) against exact answers.

On one Bernoulli the ARMS estimate of a group of n draws depends on the number of ones
only, so its exact mean and variance are sums over that number (the Dirichlet copula's
probabilities are checked against a simulation of the copula here). The exact mean must
be the true gradient for every n and p, ARMS at n = 2 must be DisARM, and measured means
and variances sit within 5 SE of the exact ones; on vector Bernoullis (an additive cost
and a non-additive one with a θ term, truth by enumeration) means sit within 5 SE of the
truth.
"""

import numpy as np
import pytest
import tensorflow as tf

import estimators as E
from estimators.gradients import arms
from tests.conftest import assert_within_se, variance_z
from tests.estimators.bernoulli_problems import pairs_problem

LABELS = ["arms", "arms_gaussian"]
R = 4000


def logit(p):
    return float(np.log(p / (1.0 - p)))


@pytest.mark.parametrize("n", [3, 6])
@pytest.mark.parametrize("q", [0.05, 0.35, 0.5])
def test_dirichlet_count_probabilities_match_a_simulation_of_the_copula(n, q):
    probabilities = arms.dirichlet_count_probabilities(q, n)
    assert abs(probabilities.sum() - 1.0) < 1e-12 and probabilities.min() >= 0.0
    assert abs(probabilities @ np.arange(n + 1) - n * q) < 1e-12  # each u is uniform
    rng = np.random.default_rng(5)
    weights = rng.dirichlet(np.ones(n), size=200_000)
    counts = np.sum((1.0 - weights) ** (n - 1) < q, axis=1)
    frequency = np.bincount(counts, minlength=n + 1) / len(counts)
    se = np.sqrt(probabilities * (1 - probabilities) / len(counts)) + 1e-12
    assert np.all(np.abs(frequency - probabilities) < 5 * se), (frequency, probabilities)


@pytest.mark.parametrize("t", [0.499, 0.45])
def test_the_exact_mean_is_the_true_gradient_for_every_group_size(t):
    # The copula correction p(1-p) / (q - C(q, q)) is what makes RLOO on coupled draws
    # unbiased; summed exactly, any error in it shows at 1e-9.
    toy = E.problems.get("bernoulli_toy", t=t)
    for p in (0.003, 0.1, 0.3, 0.5, 0.77, 0.99):
        truth = toy.true_gradient(logit(p))
        for n in range(2, 11):
            mean, _ = E.get_estimator("arms").exact_moments(toy, logit(p), batch_size=n)
            np.testing.assert_allclose(mean, truth, rtol=1e-9, err_msg=f"p={p}, n={n}")


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("p", [0.1, 0.4, 0.5, 0.8])
def test_two_coupled_draws_are_disarm(label, p):
    # At n = 2 both copulas give the antithetic pair (u, 1 - u): one group is one DisARM
    # draw, at the same two evaluations of f.
    toy = E.problems.get("bernoulli_toy", t=0.45)
    _, group = E.get_estimator(label).exact_moments(toy, logit(p), batch_size=2)
    _, disarm = E.get_estimator("disarm").exact_moments(toy, logit(p))
    np.testing.assert_allclose(group / 2, disarm, rtol=1e-9, atol=1e-18)


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("t, p, n", [(0.499, 0.1, 4), (0.499, 0.8, 7), (0.45, 0.5, 4),
                                     (0.45, 0.3, 16), (0.45, 0.95, 5)],
                         ids=lambda value: f"{value:g}")
def test_mean_and_variance_on_the_toy(label, t, p, n):
    toy, theta = E.problems.get("bernoulli_toy", t=t), logit(p)
    values = E.estimate(label, toy, theta, n_samples=2 * n, n_replicates=R, batch_size=n,
                        seed=11)
    assert_within_se(values, toy.true_gradient(theta), float_tol=1e-6)
    try:
        _, per_sample = E.get_estimator(label).exact_moments(toy, theta, batch_size=n)
    except NotImplementedError as error:  # the Gaussian copula beyond a pair
        assert label == "arms_gaussian" and "orthant probabilities" in str(error)
        return
    z, measured = variance_z(values, per_sample / (2 * n))
    assert np.all(np.abs(z) < 5), f"z = {z}, measured {measured}, exact {per_sample / (2 * n)}"


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("case", ["quadratic", "pairs"])
def test_unbiased_on_vector_bernoullis(label, case):
    if case == "quadratic":
        problem = E.problems.get("bernoulli_quadratic", D=6, t=0.3)
        theta = {"logits": [-2.0, -1.0, -0.2, 0.4, 1.0, 2.5]}
    else:
        problem, theta = pairs_problem(), {"logits": [-1.0, 0.3, 0.9, -0.2]}
    truth = problem.truth(theta)
    assert truth.kind == ("closed_form" if case == "quadratic" else "enumeration")
    values = E.estimate(label, problem, theta, n_samples=10, n_replicates=R, batch_size=5,
                        seed=3)
    assert_within_se(values, truth.gradient, float_tol=1e-6)


def test_the_group_estimate_is_the_papers_formula():
    # One group of draws given as b, the estimate by autodiff against the paper's formula
    # (f(b_i) - f̄)(b_i - p) n/(n-1) · p(1-p)/(q - C(q, q)) averaged over i, in NumPy
    # (the reference toy code's expression), with q - C(q, q) from the copula's definition.
    toy = E.problems.get("bernoulli_toy", t=0.45)
    for p, n in ((0.3, 4), (0.8, 6), (0.5, 3)):
        rng = np.random.default_rng(n)
        b = (rng.uniform(size=(n, 3)) < p).astype(np.float64)  # [n, R = 3]
        theta = tf.constant(np.full((3, 1), logit(p)))
        with tf.GradientTape() as tape:
            tape.watch(theta)
            surrogate = arms.group_surrogate(toy, toy.measure(theta), theta, tf.constant(b),
                                             arms.dirichlet_gap)
        ours = tape.gradient(surrogate, theta).numpy()[:, 0]
        f = (b - 0.45) ** 2
        q = min(p, 1 - p)
        joint = max(2 * q ** (1 / (n - 1)) - 1, 0) ** (n - 1)
        theirs = ((f - f.mean(0)) * (b - p) * n / (n - 1) * p * (1 - p) / (q - joint)).mean(0)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_arms_is_below_disarm_per_evaluation_of_f_except_where_disarm_is_exact():
    # Direction: ARMS's group of n (n evaluations of f) against the mean of n/2 DisARM
    # draws (n evaluations), exact on the toy: lower at every p tried but p = ½, where a
    # DisARM pair on one Bernoulli always splits and its variance is exactly zero.
    toy = E.problems.get("bernoulli_toy", t=0.45)
    for p in (0.01, 0.1, 0.3, 0.45, 0.55, 0.7, 0.9, 0.99):
        _, disarm = E.get_estimator("disarm").exact_moments(toy, logit(p))
        for n in (4, 6, 8, 16):
            _, group = E.get_estimator("arms").exact_moments(toy, logit(p), batch_size=n)
            assert group / n < disarm / (n / 2), (p, n)
    _, disarm = E.get_estimator("disarm").exact_moments(toy, 0.0)
    _, group = E.get_estimator("arms").exact_moments(toy, 0.0, batch_size=4)
    assert disarm[0] < 1e-15 < group[0]


def test_gaussian_copula_gap_is_owens_t():
    from scipy.special import ndtri, owens_t

    q = np.logspace(-12, np.log10(0.5), 40)
    for n in (3, 4, 10, 100):
        gap = arms.gaussian_gap(tf.constant(q), n).numpy()
        np.testing.assert_allclose(gap, 2 * owens_t(ndtri(q), np.sqrt(n / (n - 2))),
                                   rtol=1e-12)


def test_arms_counts_one_evaluation_per_draw_and_needs_a_group():
    toy = E.problems.get("bernoulli_toy")
    assert E.get_estimator("arms").f_evals_per_estimate(toy, 0.0, 100, 10) == 100
    with pytest.raises(E.NotApplicableError, match="batch"):
        E.estimate("arms", toy, 0.0, n_samples=4, batch_size=1)
    with pytest.raises(E.NotApplicableError, match="binary latent variables"):
        E.estimate("arms_gaussian", E.problems.get("poisson_square"), 3.0, n_samples=4)
    with pytest.raises(NotImplementedError, match="depends on the batch size"):
        E.get_estimator("arms").exact_moments(toy, 0.0)
    with pytest.raises(NotImplementedError, match="up to n = 128 draws per batch"):
        E.get_estimator("arms").exact_moments(toy, 0.0, batch_size=129)


@pytest.mark.parametrize("label", LABELS)
def test_a_logit_that_rounds_p_to_0_or_1_gives_0_not_nan(label):
    # |α| ≳ 17 rounds p to 0 or 1 in float32: q - C(q, q) is 0, and the copula factor's
    # limit (1) multiplies b - p = 0, as DisARM's estimate is 0 there.
    problem = E.problems.get("bernoulli_quadratic", D=3, t=0.3)
    values = E.estimate(label, problem, {"logits": [20.0, 1.0, -90.0]}, n_samples=4,
                        n_replicates=50, seed=1)
    assert np.isfinite(values).all()
    assert np.all(values[:, [0, 2]] == 0.0) and np.any(values[:, 1] != 0.0)

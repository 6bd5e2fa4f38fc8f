"""Per-sample variance: measured against exact values (quadrature and closed forms)."""

import numpy as np
import pytest

import estimators as E
import tensorflow_probability as tfp

tfd = tfp.distributions

GAUSSIAN_CASES = [
    pytest.param(problem, k, theta, id=f"{problem}-k{k}-{theta}")
    for problem, ks in (("gaussian_square", (-2.0, 1.0)), ("gaussian_exp", (0.5, 2.0)),
                        ("gaussian_cos", (1.0, 3.0)))
    for k in ks for theta in ((1.0, 1.0), (0.0, 0.5))
]


@pytest.mark.parametrize("estimator", ["score_function", "reparameterization"])
@pytest.mark.parametrize("problem, k, theta", GAUSSIAN_CASES)
def test_per_sample_variance_within_10_percent_of_quadrature(estimator, problem, k, theta):
    p = E.problems.get(problem, k=k)
    exact = E.truth.per_sample_variance(p, E.ESTIMATORS[estimator], theta)
    n = 50
    estimates = E.estimate(estimator, p, theta, n_samples=n, n_replicates=8000, seed=21)
    measured = estimates.var(axis=0, ddof=1) * n
    np.testing.assert_allclose(measured, exact, rtol=0.10)


def test_exact_variance_matches_closed_form_for_square_cost():
    # f = (x-k)², x = μ + σε: g_μ = 2(x-k) has variance 4σ²;
    # g_σ = 2(x-k)ε has variance 4(μ-k)² + 8σ².
    mu, sigma, k = 0.7, 1.3, -0.4
    p = E.problems.get("gaussian_square", k=k)
    exact = E.truth.per_sample_variance(p, E.ESTIMATORS["reparameterization"], (mu, sigma))
    np.testing.assert_allclose(exact, [4 * sigma**2, 4 * (mu - k)**2 + 8 * sigma**2], rtol=1e-8)


def test_exact_score_function_variance_matches_closed_form_for_linear_cost():
    # f = x under N(θ, 1): g = x (x - θ); E g = 1, E g² = θ² + 3... computed from moments:
    # x = θ + ε: g = θε + ε², Var g = θ² + 2.
    theta = 0.8
    p = E.Problem(name="linear", dist=lambda t: tfd.Normal(t, 1.0), cost=lambda x, t: x)
    mean, variance = E.truth.single_sample_moments(p, E.ESTIMATORS["score_function"], theta)
    np.testing.assert_allclose(mean, [1.0], rtol=1e-9)
    np.testing.assert_allclose(variance, [theta**2 + 2.0], rtol=1e-8)


def test_batch_size_leaves_variance_and_mean_alone_for_plain_estimators():
    p = E.problems.get("gaussian_cos", k=2.0)
    one = E.estimate("score_function", p, (1.0, 1.0), 400, n_replicates=4000, seed=5)
    batched = E.estimate("score_function", p, (1.0, 1.0), 400, n_replicates=4000,
                         batch_size=20, seed=5)
    exact = E.truth.per_sample_variance(p, E.ESTIMATORS["score_function"], (1.0, 1.0)) / 400
    np.testing.assert_allclose(batched.var(axis=0, ddof=1), exact, rtol=0.10)
    np.testing.assert_allclose(one.var(axis=0, ddof=1), exact, rtol=0.10)


def test_deterministic_estimator_has_zero_exact_variance():
    p = E.problems.get("seed_dependence")
    assert np.all(E.truth.per_sample_variance(p, E.ESTIMATORS["trapz"], -1.0) == 0)

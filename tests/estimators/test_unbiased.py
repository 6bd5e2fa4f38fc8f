"""Mean of each estimator against the exact gradient (5 standard errors, fixed seeds)."""

import numpy as np
import pytest

import estimators as E
from tests.conftest import assert_within_se, z_scores

SCALAR_THETAS = {"seed_fixed": (-1.0, -0.05, 0.5), "seed_dependence": (-2.0, -1.0, 0.5),
                 "poisson_square": (0.5, 3.0)}
GAUSSIAN_THETAS = ((1.0, 1.0), (-0.5, 2.0), (0.3, 0.5))
GAUSSIANS = ("gaussian_square", "gaussian_exp", "gaussian_cos")


def cases(estimators, problems):
    for estimator in estimators:
        for problem in problems:
            thetas = SCALAR_THETAS.get(problem, GAUSSIAN_THETAS)
            for theta in thetas:
                yield pytest.param(estimator, problem, theta, id=f"{estimator}-{problem}-{theta}")


ALL = ("seed_fixed", "seed_dependence", *GAUSSIANS, "poisson_square")
CONTINUOUS = ("seed_fixed", "seed_dependence", *GAUSSIANS)


@pytest.mark.parametrize("estimator, problem, theta", [
    *cases(["score_function"], ALL),
    *cases(["reparameterization"], CONTINUOUS),
    *cases(["naive_mc"], ["seed_fixed"]),  # p does not depend on θ: unbiased
])
def test_unbiased_within_5_se(estimator, problem, theta):
    p = E.problems.get(problem)
    estimates = E.estimate(estimator, p, theta, n_samples=100, n_replicates=4000, seed=11)
    assert np.all(np.isfinite(estimates))
    assert_within_se(estimates, p.true_gradient(theta))


@pytest.mark.parametrize("estimator, problem, theta", [
    *cases(["dependence"], CONTINUOUS),
])
def test_dependence_converges_within_5_se(estimator, problem, theta):
    # Its trapezoidal half is biased by O(h²); on 10^4 points of the ±12 sd window that
    # bias is far below the Monte Carlo half's standard error.
    p = E.problems.get(problem)
    estimates = E.estimate(estimator, p, theta, n_samples=10_000, n_replicates=200, seed=12)
    assert_within_se(estimates, p.true_gradient(theta))


@pytest.mark.parametrize("problem, theta", [
    pytest.param(problem, theta, id=f"{problem}-{theta}")
    for problem in CONTINUOUS for theta in SCALAR_THETAS.get(problem, GAUSSIAN_THETAS)])
def test_trapz_is_deterministic_and_accurate(problem, theta):
    p = E.problems.get(problem)
    estimates = E.estimate("trapz", p, theta, n_samples=10_000, n_replicates=3)
    assert np.all(estimates == estimates[0])
    truth = p.true_gradient(theta)
    np.testing.assert_allclose(estimates[0], truth, rtol=1e-3, atol=1e-4)


def test_naive_mc_bias_on_dependent_measure_is_detected():
    p = E.problems.get("seed_dependence")
    estimates = E.estimate("naive_mc", p, -1.0, n_samples=1000, n_replicates=1000, seed=3)
    z = z_scores(estimates, p.true_gradient(-1.0))
    assert abs(z[0]) > 10
    # It converges to E_p[∇θ f] instead, which quadrature gives exactly.
    mean, _ = E.truth.single_sample_moments(p, E.ESTIMATORS["naive_mc"], -1.0)
    assert abs(z_scores(estimates, mean)[0]) < 5


@pytest.mark.bias_warning
def test_naive_mc_warns_when_measure_depends_on_theta():
    with pytest.warns(E.BiasedEstimatorWarning, match="biased on problem 'seed_dependence'"):
        E.estimate("naive_mc", E.problems.get("seed_dependence"), -1.0, n_samples=10)

"""measure_valued: weak derivatives of a Normal against closed forms and quadrature."""

import math
import re

import numpy as np
import pytest

import estimators as E
import tensorflow as tf
import tensorflow_probability as tfp
from tests.conftest import assert_within_se
from tests.estimators.replicates import case_id, measured, per_sample_variance

tfd = tfp.distributions

NAME = "measure_valued"
ESTIMATOR = E.ESTIMATORS[NAME]

CASES = [
    ("gaussian_square", {"k": -3.0}, (1.0, 1.0)),
    ("gaussian_square", {"k": 1.0}, (0.3, 0.5)),
    ("gaussian_exp", {"k": 0.5}, (1.0, 1.0)),
    ("gaussian_exp", {"k": 10.0}, (-0.5, 2.0)),
    ("gaussian_cos", {"k": 1.0}, (1.0, 1.0)),
    ("gaussian_cos", {"k": 3.0}, (0.3, 0.5)),
    ("seed_dependence", {}, -1.0),  # θ sets the loc only; the cost depends on θ too
    ("seed_fixed", {}, -0.5),  # p ignores θ: only E[∇θ f] at the coupled normal draw remains
]
PARAMS = [pytest.param(*case, id=case_id(*case)) for case in CASES]


@pytest.mark.parametrize("problem, kwargs, theta", PARAMS)
def test_unbiased_within_5_se(problem, kwargs, theta):
    p = E.problems.get(problem, **kwargs)
    assert_within_se(measured(NAME, p, theta, seed=31), p.true_gradient(theta))


@pytest.mark.parametrize("problem, kwargs, theta", PARAMS)
def test_per_sample_variance_within_10_percent_of_quadrature(problem, kwargs, theta):
    p = E.problems.get(problem, **kwargs)
    mean, variance = E.truth.single_sample_moments(p, ESTIMATOR, theta)
    np.testing.assert_allclose(mean, p.true_gradient(theta), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(per_sample_variance(measured(NAME, p, theta, seed=31)), variance,
                               rtol=0.10)


def test_exact_variance_matches_closed_form_for_square_cost():
    # f = (x-k)²: ĝμ = 4w(μ-k)/√(2π), Var = 16(μ-k)² Var(W)/(2π) with Var(W) = (4-π)/2
    # for W ~ Weibull(2, √2) (Rayleigh); ĝσ = 2(μ-k) m(1-u) + σ m²(1-u²) has mean 2σ and
    # (odd moments of m vanish; E m² = 3, E m⁴ = 15, E(1-u)² = 1/3, E(1-u²)² = 8/15)
    # variance 4(μ-k)² + 8σ² - 4σ².
    mu, sigma, k = 0.7, 1.3, -0.4
    exact = E.truth.per_sample_variance(E.problems.get("gaussian_square", k=k), ESTIMATOR,
                                        (mu, sigma))
    expected = [16 * (mu - k) ** 2 * (4 - math.pi) / 2 / (2 * math.pi),
                4 * (mu - k) ** 2 + 4 * sigma**2]
    np.testing.assert_allclose(exact, expected, rtol=1e-8)


STEP = E.Problem(name="step", dist=lambda t: tfd.Normal(t[..., 0], t[..., 1]),
                 cost=lambda x, t: tf.cast(x > 0, x.dtype), param_names=("mean", "std"),
                 bounds={"std": (0.0, None)}, breakpoints=(0.0,))


def test_cost_need_not_be_differentiable():
    # E[1(x > 0)] = Φ(μ/σ): ∇ = φ(μ/σ)/σ · (1, -μ/σ). The pathwise estimator sees a zero
    # derivative of the step and returns 0; the weak derivative only evaluates f.
    mu, sigma = 0.5, 1.0
    density = math.exp(-0.5 * (mu / sigma) ** 2) / math.sqrt(2 * math.pi) / sigma
    truth = [density, -density * mu / sigma]
    np.testing.assert_allclose(STEP.true_gradient((mu, sigma)), truth, rtol=1e-8)
    assert_within_se(measured(NAME, STEP, (mu, sigma), seed=32), truth)
    assert np.all(measured("reparameterization", STEP, (mu, sigma), seed=32) == 0.0)


def test_runs_under_xla():
    p = E.problems.get("gaussian_cos", k=2.0)
    estimates = E.estimate(NAME, p, (0.3, 0.5), n_samples=100, n_replicates=2000, seed=33)
    assert_within_se(estimates, p.true_gradient((0.3, 0.5)))


GAMMA = E.Problem(name="gamma", dist=lambda t: tfd.Gamma(t, 1.0), cost=lambda x, t: x**2,
                  window=(0.0, 80.0))


@pytest.mark.parametrize("problem, theta, kind", [
    pytest.param(E.problems.get("poisson_square"), 2.0, "Poisson", id="poisson_square"),
    pytest.param(GAMMA, 2.5, "Gamma", id="gamma"),
])
def test_non_normal_measure_is_not_applicable(problem, theta, kind):
    message = (rf"measure_valued supports only a Normal p\(x\|θ\) .* but problem "
               rf"'{re.escape(problem.name)}' has a {kind}\.")
    with pytest.raises(E.NotApplicableError, match=message):
        E.estimate(NAME, problem, theta, n_samples=10)
    with pytest.raises(E.NotApplicableError, match=message):  # what the grid calls to skip
        ESTIMATOR.check(problem, theta, 10)

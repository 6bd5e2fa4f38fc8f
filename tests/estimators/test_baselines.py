"""Score function with in-batch baselines: leave-one-out mean and leave-one-out optimal."""

import re

import numpy as np
import pytest

import estimators as E
import tensorflow_probability as tfp
from tests.conftest import assert_within_se
from tests.estimators.replicates import case_id, measured, per_sample_variance

tfd = tfp.distributions

LOO, OPTIMAL = "score_function_loo", "score_function_batch_optimal"

CASES = [
    ("gaussian_square", {"k": 3.0}, (1.0, 1.0)),
    ("gaussian_exp", {"k": 1.0}, (-0.5, 2.0)),
    ("gaussian_cos", {"k": 2.0}, (0.3, 0.5)),
    ("seed_dependence", {}, -1.0),
    ("poisson_square", {}, 3.0),  # discrete: only score-function estimators apply
]
PARAMS = [pytest.param(*case, id=case_id(*case)) for case in CASES]


@pytest.mark.parametrize("estimator", [LOO, OPTIMAL])
@pytest.mark.parametrize("batch_size", [2, 100])
@pytest.mark.parametrize("problem, kwargs, theta", PARAMS)
def test_unbiased_within_5_se(estimator, batch_size, problem, kwargs, theta):
    # Both baselines come from the other draws of the batch, so neither is biased, even
    # at batch size 2 (where both are the other draw's f).
    p = E.problems.get(problem, **kwargs)
    assert_within_se(measured(estimator, p, theta, batch_size=batch_size, seed=41),
                     p.true_gradient(theta))


@pytest.mark.parametrize("batch_size", [2, 10, 100])
@pytest.mark.parametrize("problem, kwargs, theta", [PARAMS[0], PARAMS[3], PARAMS[4]])
def test_loo_per_sample_variance_within_10_percent_of_exact(batch_size, problem, kwargs, theta):
    p = E.problems.get(problem, **kwargs)
    exact = E.truth.per_sample_variance(p, E.ESTIMATORS[LOO], theta, batch_size=batch_size)
    estimates = measured(LOO, p, theta, batch_size=batch_size, seed=41)
    np.testing.assert_allclose(per_sample_variance(estimates), exact, rtol=0.10)


def test_exact_loo_variance_matches_closed_form_for_linear_cost():
    # f = x under N(θ, 1): the batch estimate is Σ(x_i - x̄)(x_i - θ)/(B-1), with
    # B × variance = 2B/(B-1): 4 at B = 2, falling to 2 = Var((x-θ)²), the score function
    # with the constant baseline E f = θ; without a baseline it is θ² + 2.
    p = E.Problem(name="linear", dist=lambda t: tfd.Normal(t, 1.0), cost=lambda x, t: x)
    for batch_size in (2, 3, 10, 1000):
        mean, variance = E.truth.single_sample_moments(p, E.ESTIMATORS[LOO], 0.7,
                                                       batch_size=batch_size)
        np.testing.assert_allclose(mean, [1.0], rtol=1e-9)
        np.testing.assert_allclose(variance, [2 * batch_size / (batch_size - 1)], rtol=1e-8)


def test_loo_beats_no_baseline_when_the_cost_has_a_large_mean():
    # (x-3)² at N(1, 1) has E f = 5 against a spread of f of about 4: subtracting ~E f removes
    # most of f·∇log p. Exact: [87, 346] without a baseline, [42.3, 216.4] at B = 100.
    p, theta = E.problems.get("gaussian_square", k=3.0), (1.0, 1.0)
    plain = E.truth.per_sample_variance(p, E.ESTIMATORS["score_function"], theta)
    loo = per_sample_variance(measured(LOO, p, theta, batch_size=100, seed=41))
    assert np.all(loo < 0.7 * plain), (loo, plain)


def test_loo_variance_falls_with_batch_size():
    # The baseline is a mean of B-1 values of f: its noise, and the variance, fall with B.
    p, theta = E.problems.get("seed_dependence"), -1.0
    exact = [E.truth.per_sample_variance(p, E.ESTIMATORS[LOO], theta, batch_size=b)[0]
             for b in (2, 10, 100)]
    assert exact[0] > 3 * exact[1] > 3 * exact[2]
    measured_values = [per_sample_variance(measured(LOO, p, theta, batch_size=b, seed=41))[0]
                       for b in (2, 10, 100)]
    assert measured_values[0] > measured_values[1] > measured_values[2]


@pytest.mark.parametrize("problem, kwargs, theta", [PARAMS[1], PARAMS[2], PARAMS[4]])
def test_optimal_baseline_beats_loo_mean_at_large_batch(problem, kwargs, theta):
    # E[f s_j²]/E[s_j²] minimises the variance for each component among constant
    # baselines; E f (the LOO mean's limit) is one of them. Same seed: the same draws.
    p = E.problems.get(problem, **kwargs)
    optimal = per_sample_variance(measured(OPTIMAL, p, theta, batch_size=100, seed=41))
    loo = per_sample_variance(measured(LOO, p, theta, batch_size=100, seed=41))
    assert np.all(optimal < 0.9 * loo), (optimal, loo)


def test_per_sample_variance_needs_batch_size_or_has_no_exact_form():
    p, theta = E.problems.get("seed_dependence"), -1.0
    with pytest.raises(NotImplementedError, match="depends on the batch size; pass batch_size"):
        E.truth.per_sample_variance(p, E.ESTIMATORS[LOO], theta)
    with pytest.raises(NotImplementedError, match="ratio of sums"):
        E.truth.per_sample_variance(p, E.ESTIMATORS[OPTIMAL], theta, batch_size=100)


@pytest.mark.parametrize("estimator", [LOO, OPTIMAL])
def test_batch_of_one_is_not_applicable(estimator):
    with pytest.raises(E.NotApplicableError, match=rf"{re.escape(E.get_estimator(estimator).label)} needs at least 2 samples per "
                                                   "batch, got batch_size=1"):
        E.estimate(estimator, E.problems.get("seed_dependence"), -1.0, n_samples=10,
                   batch_size=1)


@pytest.mark.parametrize("estimator", [LOO, OPTIMAL])
def test_runs_under_xla(estimator):
    p = E.problems.get("poisson_square")
    estimates = E.estimate(estimator, p, 3.0, n_samples=100, n_replicates=2000, seed=43)
    assert_within_se(estimates, p.true_gradient(3.0))

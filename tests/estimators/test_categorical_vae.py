"""The categorical VAE (estimators/problems/categorical_vae.py): its exact ELBO against a
sum over every code written out, the score function and RLOO unbiased against its exact
gradient, one-sentence refusals, and its logged bounds."""

import itertools

import numpy as np
import pytest

import estimators as E
from estimators.problems import vae


@pytest.fixture(scope="module")
def small():
    return E.problems.get("categorical_vae", variables=2, categories=3, batch=4,
                          decoder="nonlinear", hidden=5)


def _theta(problem, seed=0):
    """Glorot weights and small random biases: off the decoder's kinks at zero biases."""
    rng = np.random.default_rng(seed)
    return {name: value + 0.1 * rng.standard_normal(value.shape)
            for name, value in vae.initial_theta(problem).items()}


def test_the_exact_elbo_is_the_sum_over_every_code(small):
    """E_q[f] by the problem's matrix products against f itself at each of the 3² codes of
    each of the 4 images. f is the mean over images of a term each, so image m's term at a
    code is M · (f with m at that code and the others at (0, 0) − f at all (0, 0)) plus its
    term at (0, 0), and E_q[f] = base + Σ_m E_q[M · (f_m − base)] / M."""
    theta = _theta(small)
    vector = small.theta_vector(theta)
    dist = small.distribution(vector)
    probs = np.asarray(dist.distribution.probs_parameter()).reshape(4, 2, 3)

    def f(codes):  # codes [4, 2] -> f at that draw
        value = small.cost_values(dist, codes.reshape(1, 1, 8).astype(np.float64),
                                  vector[None, :])
        return float(np.asarray(value).ravel()[0])

    base = f(np.zeros((4, 2)))
    expected = base
    for image in range(4):
        for code in itertools.product(range(3), repeat=2):
            codes = np.zeros((4, 2))
            codes[image] = code
            q = probs[image, 0, code[0]] * probs[image, 1, code[1]]
            expected += q * (f(codes) - base)
    assert small.true_value(theta) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("estimator", ["score_function", "score_function(control_variate=loo)"])
def test_the_index_estimators_are_unbiased(small, estimator):
    theta = _theta(small, seed=1)
    exact = small.true_gradient(theta)
    estimates = E.estimate(estimator, small, theta, n_samples=4, n_replicates=20_000, seed=5)
    se = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    assert np.all(np.abs(estimates.mean(axis=0) - exact) <= 5 * se + 1e-6)


@pytest.mark.parametrize("estimator, message", [
    ("disarm", "is defined for binary latent variables"),
    ("gumbel_softmax", 'draws category indices \\(tfd.Categorical\\); draw one-hot vectors '
                       '\\(categorical_vae: draws="one_hot"'),
    ("reinmax", 'draws category indices \\(tfd.Independent\\(Categorical\\)\\); draw one-hot '
                'vectors \\(categorical_vae: draws="one_hot"'),
])
def test_estimators_for_other_latents_are_refused_in_one_sentence(small, estimator, message):
    with pytest.raises(E.NotApplicableError, match=message):
        E.program(estimator, small, "start", n_samples=2)


def test_bad_arguments_are_one_sentence():
    with pytest.raises(ValueError, match="argument categories must be a whole number of at "
                                         "least 2, got 1"):
        E.problems.get("categorical_vae", categories=1)
    with pytest.raises(ValueError, match="argument decoder must be one of 'linear', "
                                         "'nonlinear', got 'deep'"):
        E.problems.get("categorical_vae", decoder="deep")


def test_reinmaxs_eight_by_four_is_exact_and_larger_is_labelled_monte_carlo():
    assert E.problems.get("categorical_vae", batch=5).truth_kind("start") == "closed_form"
    big = E.problems.get("categorical_vae", variables=9, categories=4, batch=5)
    assert big.exact_value is None and big.truth_kind("start") == "monte_carlo"


def test_its_logged_bounds_are_deterministic_and_ordered(small):
    theta = small.theta_vector(_theta(small))
    first = E.objective.diagnostics(small, theta)
    assert first == E.objective.diagnostics(small, theta)
    assert first["test_bound"] > first["train_elbo"] - 1.0
    assert abs(first["train_elbo"] - small.true_value(theta)) < 5.0

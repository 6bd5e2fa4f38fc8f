"""estimators.objective: f at keyed draws, a problem's penalty with its exact gradient, its
diagnostics, and one-sentence errors for user functions that break them."""

import doctest

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import estimators as E
from estimators import objective
from estimators.problems import datasets

tfd = tfp.distributions


def test_module_example_runs():
    assert doctest.testmod(objective).failed == 0


def test_kl_penalty_and_its_gradient_have_their_closed_forms():
    problem = E.problems.get("logistic_regression")
    rng = np.random.default_rng(0)
    mean, log_scale = rng.normal(0, 1, 31), rng.normal(-0.5, 0.3, 31)
    value, gradient = E.objective.penalty(problem, np.concatenate([mean, log_scale]))
    kl = 0.5 * np.sum(np.exp(2 * log_scale) + mean**2 - 1 - 2 * log_scale)
    assert value == pytest.approx(kl, rel=1e-12)
    np.testing.assert_allclose(gradient, np.concatenate([mean, np.exp(2 * log_scale) - 1]),
                               rtol=1e-12)
    # tfp's KL between the same Gaussians, written apart.
    q = tfd.MultivariateNormalDiag(mean, np.exp(log_scale))
    prior = tfd.MultivariateNormalDiag(np.zeros(31), np.ones(31))
    assert value == pytest.approx(float(tfd.kl_divergence(q, prior)), rel=1e-10)


def test_accuracy_is_that_of_sign_predictions_averaged_over_fixed_draws():
    problem = E.problems.get("logistic_regression")
    design, labels = datasets.features_and_labels("breast_cancer")
    theta = {"mean": 0.3, "log_scale": -8.0}  # q nearly a point mass at w = 0.3
    accuracy = E.objective.diagnostics(problem, theta)["accuracy"]
    expected = np.mean((design @ np.full(31, 0.3) > 0) == (labels > 0.5))
    assert accuracy == pytest.approx(expected, abs=1e-3)
    assert E.objective.diagnostics(problem, theta) == {"accuracy": accuracy}  # fixed draws


def test_cost_at_draws_is_keyed_and_averages_to_the_exact_value():
    problem = E.problems.get("gaussian_square_nd", D=3)
    theta = {"mean": 0.5, "std": 0.8}
    values = E.objective.cost_at_draws(problem, theta, 4000, seed=(1, 2))
    assert values.shape == (4000,) and values.dtype == np.float64
    np.testing.assert_array_equal(values, E.objective.cost_at_draws(problem, theta, 4000, (1, 2)))
    assert not np.array_equal(values, E.objective.cost_at_draws(problem, theta, 4000, (1, 3)))
    exact = problem.true_value(theta)  # Σ (mean − 1)² + std² = 3 (0.25 + 0.64)
    assert exact == pytest.approx(2.67)
    assert abs(values.mean() - exact) < 5 * values.std(ddof=1) / np.sqrt(values.size)


def test_a_problem_without_penalty_or_diagnostics():
    problem = E.problems.get("gaussian_square")
    value, gradient = E.objective.penalty(problem, [0.0, 1.0])
    assert value == 0.0 and gradient.tolist() == [0.0, 0.0]
    assert E.objective.diagnostics(problem, [0.0, 1.0]) == {}


def mine(**fields):
    return E.Problem(name="mine", params={"mean": 2},
                     dist=lambda t: tfd.MultivariateNormalDiag(t["mean"],
                                                               tf.ones_like(t["mean"])),
                     cost=lambda x, t: tf.reduce_sum(x**2, axis=-1), **fields)


@pytest.mark.parametrize("fields, call, message", [
    ({"penalty": lambda t: t["mean"] ** 2}, "penalty",
     "problem 'mine': penalty(theta) must return one number, got shape [2]."),
    ({"penalty": lambda t: 1 / 0}, "penalty",
     "problem 'mine': penalty(theta) raised ZeroDivisionError: division by zero."),
    ({"diagnostics": lambda t: [1.0]}, "diagnostics",
     "problem 'mine': diagnostics(theta) must return a dict from names to numbers, got list."),
    ({"diagnostics": lambda t: {"norm": t["mean"]}}, "diagnostics",
     "problem 'mine': diagnostics(theta)['norm'] must be one number, got shape [2]."),
])
def test_broken_user_functions_are_one_sentence(fields, call, message):
    problem = mine(**fields)
    with pytest.raises(ValueError) as error:
        getattr(E.objective, call)(problem, [0.0, 0.0])
    assert str(error.value) == message


def test_penalty_and_diagnostics_must_be_callable():
    with pytest.raises(TypeError, match="penalty must be callable or None, got 3"):
        mine(penalty=3)
    with pytest.raises(TypeError, match="diagnostics must be callable or None"):
        mine(diagnostics="accuracy")

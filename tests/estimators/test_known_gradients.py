"""Costs with known gradients (constant, linear, quadratic) written the lab's way."""

import numpy as np
import pytest

import estimators as E
import tensorflow as tf
import tensorflow_probability as tfp
from tests.conftest import assert_within_se

tfd = tfp.distributions

MC = ("score_function", "reparameterization", "dependence")


def user_problem(name, cost):
    return E.Problem(name=name, dist=lambda theta: tfd.Normal(theta, 1.0), cost=cost)


CONSTANT = user_problem("constant", lambda x, theta: 3.0)
LINEAR = user_problem("linear", lambda x, theta: x)
QUADRATIC = user_problem("quadratic", lambda x, theta: x**2 + theta)


@pytest.mark.parametrize("estimator", [*MC, "trapz"])
@pytest.mark.parametrize("problem, gradient", [
    pytest.param(CONSTANT, lambda t: 0.0, id="constant"),
    pytest.param(LINEAR, lambda t: 1.0, id="linear"),
    pytest.param(QUADRATIC, lambda t: 2 * t + 1.0, id="quadratic"),
])
@pytest.mark.parametrize("theta", [-1.5, 0.25])
def test_known_gradient(estimator, problem, gradient, theta):
    estimates = E.estimate(estimator, problem, theta, n_samples=2000, n_replicates=500, seed=2)
    np.testing.assert_allclose(problem.true_gradient(theta), [gradient(theta)], atol=1e-8)
    assert_within_se(estimates, [gradient(theta)], float_tol=1e-3 if estimator == "trapz" else 1e-5)


def test_reparameterization_is_exact_on_linear_cost():
    # ∂x/∂θ = 1 for every draw: zero variance, not just zero bias.
    estimates = E.estimate("reparameterization", LINEAR, 0.3, n_samples=10, n_replicates=50)
    np.testing.assert_allclose(estimates, 1.0, rtol=1e-6)


def test_measure_written_without_theta_gets_a_replicate_axis():
    # The lab's T3 style: p = N(0, 1) built without θ.
    p = E.Problem(name="fixed", dist=lambda theta: tfd.Normal(0.0, 1.0),
                  cost=lambda x, theta: tf.exp(theta * tf.abs(x)), breakpoints=(0.0,))
    estimates = E.estimate("naive_mc", p, -0.05, n_samples=200, n_replicates=2000, seed=4)
    assert estimates.shape == (2000, 1)
    assert estimates.std() > 0  # replicates are independent, not copies
    reference = E.problems.get("seed_fixed").true_gradient(-0.05)
    np.testing.assert_allclose(p.true_gradient(-0.05), reference, rtol=1e-7)
    assert_within_se(estimates, reference)

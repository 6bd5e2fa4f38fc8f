"""Built-in problems: closed forms against quadrature, the registry, user problems."""

import numpy as np
import pytest

import estimators as E
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

CASES = [
    ("seed_fixed", {}, (-2.0, -0.05, 0.5, 1.5)),
    ("seed_fixed", {"mu": 1.0}, (-0.05, 0.7)),
    ("seed_dependence", {}, (-2.0, -1.0, 0.0, 0.8)),
    ("gaussian_square", {"k": -3.0}, ((1.0, 1.0), (0.0, 0.3))),
    ("gaussian_exp", {"k": 10.0}, ((1.0, 1.0), (-2.0, 0.5))),
    ("gaussian_cos", {"k": 5.0}, ((1.0, 1.0), (0.2, 2.0))),
    ("poisson_square", {"k": 2.0}, (0.5, 4.0)),
]


@pytest.mark.parametrize("name, kwargs, theta", [
    pytest.param(name, kwargs, theta, id=f"{name}{kwargs or ''}-{theta}")
    for name, kwargs, thetas in CASES for theta in thetas])
def test_closed_form_matches_quadrature(name, kwargs, theta):
    p = E.problems.get(name, **kwargs)
    assert p.exact_value is not None
    np.testing.assert_allclose(E.truth.value(p, theta, "closed_form"),
                               E.truth.value(p, theta, "quadrature"), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(E.truth.gradient(p, theta, "closed_form"),
                               E.truth.gradient(p, theta, "quadrature"), rtol=1e-7, atol=1e-9)


def test_lab_exact_values():
    # shared/lab/LAB.md, computed there by adaptive quadrature and closed form.
    np.testing.assert_allclose(E.problems.get("seed_fixed").true_gradient(-0.05), [0.749818],
                               atol=5e-7)
    np.testing.assert_allclose(E.problems.get("seed_fixed", mu=1.0).true_gradient(-0.05),
                               [1.071658], atol=5e-7)
    dependence = E.problems.get("seed_dependence")
    np.testing.assert_allclose(dependence.true_gradient(-1.0), [0.481330], atol=5e-7)
    np.testing.assert_allclose(dependence.true_gradient(-2.0), [0.166655], atol=5e-7)


def test_narrow_density_far_from_zero_is_integrated_on_its_window():
    # Quadrature over (-inf, inf) returns ~0 here; the window around the mass does not.
    p = E.Problem(name="far", dist=lambda t: tfd.Normal(t, 5.0),
                  cost=lambda x, t: tf.exp(-0.05 * tf.abs(x)))
    np.testing.assert_allclose(p.true_value(-50.0), 0.08469, atol=5e-6)


def test_registry_returns_the_same_object_for_the_same_arguments():
    assert E.problems.get("gaussian_cos", k=2) is E.problems.get("gaussian_cos", k=2.0)
    assert E.problems.get("gaussian_cos", k=2) is not E.problems.get("gaussian_cos", k=3)


def test_registry_lists_the_required_problems():
    assert {"seed_fixed", "seed_dependence", "gaussian_square", "gaussian_exp",
            "gaussian_cos"} <= set(E.problems.names())
    assert E.problems.get("gaussian_exp").param_names == ("mean", "std")


def test_measure_dependence_is_detected():
    assert E.problems.get("seed_dependence").measure_depends_on_theta(-1.0)
    assert not E.problems.get("seed_fixed").measure_depends_on_theta(-1.0)


def test_discrete_and_reparameterized_flags():
    poisson = E.problems.get("poisson_square")
    assert poisson.is_discrete(2.0) and not poisson.is_reparameterized(2.0)
    gauss = E.problems.get("gaussian_cos")
    assert not gauss.is_discrete((0.0, 1.0)) and gauss.is_reparameterized((0.0, 1.0))


def test_user_gamma_problem_gets_truth_by_quadrature_and_works_with_pathwise():
    # Gamma(θ, 1): E[x] = θ, so the gradient of E[x²] = θ + θ² is 1 + 2θ.
    p = E.Problem(name="gamma", dist=lambda t: tfd.Gamma(t, 1.0), cost=lambda x, t: x**2,
                  window=(0.0, 80.0))
    np.testing.assert_allclose(p.true_gradient(2.5), [6.0], rtol=1e-7)
    estimates = E.estimate("reparameterization", p, 2.5, 200, n_replicates=2000, seed=8)
    from tests.conftest import assert_within_se
    assert_within_se(estimates, [6.0])


def test_a_theta_value_is_validated_once(monkeypatch):
    problem = E.problems.get("gaussian_square_nd", D=3)
    calls = []
    validate = E.params.Parameters.vector
    monkeypatch.setattr(E.params.Parameters, "vector",
                        lambda self, *a, **k: calls.append(1) or validate(self, *a, **k))
    vector = problem.validated_theta([0.5] * 3 + [1.0] * 3)
    assert not vector.flags.writeable
    for _ in range(3):
        assert problem.theta_vector(vector) is vector
        assert problem.theta_vector(vector.copy()).tolist() == vector.tolist()
    assert len(calls) == 1  # the value, not the object, was validated
    with pytest.raises(ValueError, match="must be > 0"):  # another value: checked
        problem.theta_vector([0.5] * 3 + [1.0, 1.0, -1.0])
    assert len(calls) == 2
    # The memory is bounded and keeps the latest used: a value validated again (from a
    # list) becomes the newest, so filling the memory after it does not evict it.
    first = problem.validated_theta([0.1] * 3 + [1.0] * 3)
    for k in range(E.problem._VALID_THETAS - 1):
        problem.theta_vector([0.2 + k] * 3 + [1.0] * 3)
    problem.validated_theta([0.1] * 3 + [1.0] * 3)  # seen long ago: validated, newest
    problem.theta_vector([9.0] * 3 + [1.0] * 3)  # one more value: the oldest goes
    count = len(calls)
    problem.theta_vector(first)
    assert len(calls) == count

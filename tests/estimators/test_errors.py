"""Bad input gets a one-sentence ValueError/TypeError naming the argument."""

import numpy as np
import pytest

import estimators as E
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

SEED = E.problems.get("seed_dependence")
GAUSS = E.problems.get("gaussian_square")
POISSON = E.problems.get("poisson_square")


def call(**overrides):
    kwargs = dict(name="score_function", problem=SEED, theta=-1.0, n_samples=10,
                  n_replicates=4, batch_size=None, seed=0)
    kwargs.update(overrides)
    return E.estimate(**kwargs)


@pytest.mark.parametrize("argument", ["n_samples", "n_replicates", "batch_size"])
@pytest.mark.parametrize("value", [0, -3])
def test_non_positive_sizes(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be a positive integer, got {value}"):
        call(**{argument: value})


@pytest.mark.parametrize("value", [2.5, "10", None, True])
def test_non_integer_n_samples(value):
    with pytest.raises(TypeError, match="n_samples must be a positive integer"):
        call(n_samples=value)


def test_batch_size_must_divide_n_samples():
    with pytest.raises(ValueError, match="batch_size must divide n_samples=10, got 3"):
        call(batch_size=3)


def test_batch_size_larger_than_n_samples():
    with pytest.raises(ValueError, match="batch_size must be at most n_samples=10, got 20"):
        call(batch_size=20)


@pytest.mark.parametrize("theta", [np.nan, np.inf, -np.inf])
def test_non_finite_theta(theta):
    with pytest.raises(ValueError, match="theta must be finite"):
        call(theta=theta)


@pytest.mark.parametrize("problem, theta, count", [
    (SEED, (1.0, 2.0), 2), (GAUSS, 1.0, 1), (GAUSS, (1.0, 2.0, 3.0), 3)])
def test_theta_of_wrong_length(problem, theta, count):
    with pytest.raises(ValueError, match=rf"theta must have {problem.dim} value\(s\).*got {count}"):
        call(problem=problem, theta=theta)


def test_theta_outside_bounds():
    with pytest.raises(ValueError, match="theta 'std' must be > 0.0 for problem"):
        call(problem=GAUSS, theta=(0.0, -1.0))


def test_theta_not_numeric():
    with pytest.raises(TypeError, match="theta must be a number or a sequence"):
        call(theta="minus one")


def test_unknown_estimator_lists_valid_names():
    with pytest.raises(ValueError, match="unknown estimator 'reinforce'; choose one of: "
                                         "dependence, ") as error:
        call(name="reinforce")
    assert all(name in str(error.value) for name in E.ESTIMATORS)  # sorted, all of them


def test_unknown_problem_lists_valid_names():
    with pytest.raises(ValueError, match="unknown problem 'gauss'; choose one of: gaussian_cos"):
        E.problems.get("gauss")


def test_unknown_problem_argument():
    with pytest.raises(ValueError, match=r"problem 'gaussian_cos' got unknown argument\(s\) "
                                         r"\['kk'\]; it takes: k"):
        E.problems.get("gaussian_cos", kk=2.0)


def test_problem_must_be_a_problem():
    with pytest.raises(TypeError, match="problem must be an estimators.Problem"):
        call(problem="seed_dependence")


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of xla, graph, eager, got 'gpu'"):
        call(backend="gpu")


@pytest.mark.parametrize("seed", [-1, 1.5, "a", (1, 2, 3)])
def test_bad_seed(seed):
    with pytest.raises((ValueError, TypeError), match="seed must be a"):
        call(seed=seed)


@pytest.mark.parametrize("dist", [
    pytest.param(lambda theta: tfd.Poisson(rate=theta), id="Poisson"),
    pytest.param(lambda theta: tfd.Bernoulli(probs=theta, dtype=tf.float32), id="Bernoulli"),
])
def test_reparameterization_on_unreparameterized_distribution(dist):
    p = E.Problem(name="discrete", dist=dist, cost=lambda x, theta: x**2,
                  window=lambda theta: (0.0, 30.0))
    with pytest.raises(E.NotApplicableError, match="TFP does not reparameterize"):
        E.estimate("reparameterization", p, 0.5, n_samples=10)


@pytest.mark.parametrize("name", ["trapz", "dependence"])
def test_quadrature_estimators_on_discrete_distribution(name):
    with pytest.raises(E.NotApplicableError, match="has a discrete distribution \\(Poisson\\)"):
        E.estimate(name, POISSON, 2.0, n_samples=10)


def test_not_applicable_is_a_value_error():
    assert issubclass(E.NotApplicableError, ValueError)


def test_broken_user_cost_is_one_sentence():
    p = E.Problem(name="broken", dist=lambda theta: tfd.Normal(theta, 1.0),
                  cost=lambda x, theta: tf.reshape(x, [-1, 7, 3]))
    with pytest.raises(ValueError, match=r"problem 'broken': cost\(x, theta\) failed on a batch"):
        E.estimate("score_function", p, 0.0, n_samples=10)


def test_problem_needs_callables():
    with pytest.raises(TypeError, match="cost must be callable"):
        E.Problem(name="x", dist=lambda theta: tfd.Normal(theta, 1.0), cost=3.0)


def test_bad_window():
    with pytest.raises(ValueError, match="window must be finite with low < high"):
        E.Problem(name="x", dist=lambda t: tfd.Normal(t, 1.0), cost=lambda x, t: x,
                  window=(1.0, -1.0))


def test_cost_reduced_to_one_number_is_an_error():
    # tf.reduce_sum without axis= sums over the draws: one number for the whole batch.
    p = E.Problem(name="summed", dist=lambda t: tfd.Normal(t, 1.0),
                  cost=lambda x, t: tf.reduce_sum(x**2))
    with pytest.raises(ValueError, match=r"^problem 'summed': cost\(x, theta\) returned a single "
                                         r"number that changes with x"):
        E.estimate("score_function", p, 0.0, n_samples=10)


def test_constant_cost_is_not_mistaken_for_a_reduction():
    p = E.Problem(name="constant3", dist=lambda t: tfd.Normal(t, 1.0), cost=lambda x, t: 3.0)
    assert np.all(E.estimate("reparameterization", p, 0.0, n_samples=10, n_replicates=4) == 0)


@pytest.mark.parametrize("dist, theta, message", [
    (lambda t: tfd.Binomial(total_count=10.0, probs=t), 1.2, "Binomial has probs = 1.2"),
    (lambda t: tfd.Bernoulli(probs=t), 1.3, "Bernoulli has probs = 1.3"),
    (lambda t: tfd.Normal(0.0, t), -1.0, "Normal has scale = -1"),
    (lambda t: tfd.Gamma(t, 1.0), -1.0, "Gamma has concentration = -1"),
])
def test_distribution_parameters_outside_their_range(dist, theta, message):
    # TFP computes numbers for these without complaint (Binomial(probs=1.2): 833.3).
    p = E.Problem(name="out_of_range", dist=dist, cost=lambda x, t: x**2)
    for attempt in (lambda: E.estimate("score_function", p, theta, n_samples=10),
                    lambda: p.true_gradient(theta)):
        with pytest.raises(ValueError, match=rf"^problem 'out_of_range': at theta=\[{theta}\] "
                                             rf"its {message}, outside the range"):
            attempt()


@pytest.mark.parametrize("backend", ["eager", "xla"])
def test_numpy_cost_is_an_error_not_a_zero_gradient(backend):
    p = E.Problem(name="numpy_cost", dist=lambda t: tfd.Normal(t, 1.0),
                  cost=lambda x, t: np.square(x))
    with pytest.raises(ValueError, match=r"^problem 'numpy_cost': cost\(x, theta\) returned a "
                                         r"NumPy ndarray: write it with TensorFlow ops"):
        E.estimate("reparameterization", p, 0.5, n_samples=10, backend=backend)

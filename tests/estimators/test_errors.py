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
                                         "arm, arms, arms_gaussian, arsm, dependence, ") as error:
        call(name="reinforce")
    assert all(name in str(error.value) for name in E.ESTIMATORS)  # sorted, all of them


def test_unknown_problem_lists_valid_names():
    with pytest.raises(ValueError, match="unknown problem 'gauss'; choose one of: "
                                         "bernoulli_quadratic, bernoulli_toy, bernoulli_vae, "
                                         "categorical_mean_power, categorical_toy, "
                                         "categorical_vae, "
                                         "gaussian_cos, "):
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


# -- the user's own functions: say which one raised what ----------------------------------

def _raise(error):
    raise error


def _estimate(p, theta=0.5):
    return E.estimate("score_function", p, theta, n_samples=10, n_replicates=2)


@pytest.mark.parametrize("attempt", [_estimate, lambda p: p.true_gradient(0.5)],
                         ids=["estimate", "true_gradient"])
def test_users_own_exception_in_cost_is_named_not_blamed_on_broadcasting(attempt):
    p = E.Problem(name="own_cost", dist=lambda t: tfd.Normal(t, 1.0),
                  cost=lambda x, t: _raise(RuntimeError("my own bug")))
    with pytest.raises(ValueError, match=r"^problem 'own_cost': cost\(x, theta\) raised "
                                         r"RuntimeError: my own bug\.$"):
        attempt(p)


@pytest.mark.parametrize("error, shown", [
    (KeyError("oops"), "KeyError: 'oops'"),
    (RuntimeError("my own bug"), "RuntimeError: my own bug"),
    (ValueError("bad theta"), "ValueError: bad theta"),
])
def test_users_own_exception_in_dist_is_named(error, shown):
    p = E.Problem(name="own_dist", dist=lambda t: _raise(error), cost=lambda x, t: x)
    for attempt in (_estimate, lambda p: p.true_gradient(0.5)):
        with pytest.raises(ValueError, match=rf"^problem 'own_dist': dist\(theta\) raised "
                                             rf"{shown}\.$"):
            attempt(p)


def test_users_exception_only_on_a_batch_of_theta_is_named():
    def dist(t):
        if t.shape.rank > 0:  # one θ: a scalar; a batch: [R]
            raise RuntimeError("batches are not handled")
        return tfd.Normal(t, 1.0)
    p = E.Problem(name="batch_bug", dist=dist, cost=lambda x, t: x)
    with pytest.raises(ValueError, match=r"^problem 'batch_bug': dist\(theta\) raised "
                                         r"RuntimeError: batches are not handled\.$"):
        _estimate(p)


def test_shape_error_keeps_the_broadcast_hint():
    p = E.Problem(name="shapes", dist=lambda t: tfd.Normal(t, 1.0),
                  cost=lambda x, t: x + tf.zeros([5]))
    with pytest.raises(ValueError, match=r"^problem 'shapes': cost\(x, theta\) failed on a "
                                         r"batch of θ of shape \[2, 1\] \(.*\); dist and cost "
                                         r"must broadcast over a leading replicate axis"):
        _estimate(p)


def test_dtype_error_keeps_the_dtype_hint():
    p = E.Problem(name="dtypes", dist=lambda t: tfd.Normal(t, 1.0),
                  cost=lambda x, t: x + tf.constant(1.0, tf.float32))
    with pytest.raises(ValueError, match=r"^problem 'dtypes': cost\(x, theta\) failed for "
                                         r"float64 θ .*gradvar computes estimates in float32 and "
                                         r"exact values in float64"):
        _estimate(p)


# -- the cost's dtype ---------------------------------------------------------------------

@pytest.mark.parametrize("cost, dtype", [
    (lambda x, t: tf.cast(x**2, tf.int32), "int32"),
    (lambda x, t: tf.cast(x**2, tf.int64), "int64"),
    (lambda x, t: x > 0.0, "bool"),
])
@pytest.mark.parametrize("name", ["reparameterization", "score_function"])
def test_integer_or_bool_cost_is_refused(cost, dtype, name):
    # tf.cast to an integer has no gradient: the pathwise estimate would be a silent zero.
    p = E.Problem(name="int_cost", dist=lambda t: tfd.Normal(t, 1.0), cost=cost)
    message = (rf"^problem 'int_cost': cost\(x, theta\) returned {dtype} values; return "
               r"floating-point values \(e\.g\. tf\.cast\(\.\.\., x\.dtype\)\)\.$")
    with pytest.raises(ValueError, match=message):
        E.estimate(name, p, 0.5, n_samples=10, n_replicates=2)
    with pytest.raises(ValueError, match=message):
        p.true_gradient(0.5)


def test_python_number_cost_is_still_a_constant():
    p = E.Problem(name="int_constant", dist=lambda t: tfd.Normal(t, 1.0), cost=lambda x, t: 3)
    assert np.all(E.estimate("reparameterization", p, 0.0, n_samples=10, n_replicates=4) == 0)


@pytest.mark.parametrize("name", ["reparameterization", "score_function", "trapz"])
def test_float64_cost_gives_the_float32_estimates(name):
    # Not a refusal: a float64 cost is cast to the dtype gradvar computes in.
    cost32 = E.Problem(name="cost32", dist=lambda t: tfd.Normal(t, 1.0),
                       cost=lambda x, t: tf.exp(t * tf.abs(x)))
    cost64 = E.Problem(name="cost64", dist=lambda t: tfd.Normal(t, 1.0),
                       cost=lambda x, t: tf.exp(tf.cast(t, tf.float64)
                                                * tf.abs(tf.cast(x, tf.float64))))
    np.testing.assert_allclose(
        E.estimate(name, cost64, -1.0, n_samples=100, n_replicates=50, seed=3),
        E.estimate(name, cost32, -1.0, n_samples=100, n_replicates=50, seed=3), rtol=1e-5)
    np.testing.assert_allclose(cost64.true_gradient(-1.0), cost32.true_gradient(-1.0),
                               rtol=1e-9)


# -- exact_value --------------------------------------------------------------------------

@pytest.mark.parametrize("exact_value, shown", [
    (lambda t: t["nope"], r"TypeError: Only integers, slices"),
    (lambda t: _raise(RuntimeError("closed form bug")), r"RuntimeError: closed form bug\.$"),
    (lambda t: t + tf.constant(1.0, tf.float32), r"InvalidArgumentError: .*float"),
])
@pytest.mark.parametrize("attempt", [lambda p: p.true_gradient(0.5), lambda p: p.truth(0.5),
                                     lambda p: p.true_value(0.5)],
                         ids=["true_gradient", "truth", "true_value"])
def test_exact_value_errors_are_one_sentence(exact_value, shown, attempt):
    p = E.Problem(name="q", dist=lambda t: tfd.Normal(t, 1.0), cost=lambda x, t: x**2,
                  exact_value=exact_value)
    with pytest.raises(ValueError, match=rf"^problem 'q': exact_value\(theta\) raised "
                                         rf"{shown}") as caught:
        attempt(p)
    assert "\n" not in str(caught.value)


def test_exact_value_of_the_wrong_shape_is_one_sentence():
    p = E.Problem(name="q_shape", dist=lambda t: tfd.Normal(t[..., 0], t[..., 1]),
                  cost=lambda x, t: x**2, param_names=("mean", "std"),
                  bounds={"std": (0, None)}, exact_value=lambda t: t**2)  # not summed
    with pytest.raises(ValueError, match=r"^problem 'q_shape': exact_value\(theta\) must "
                                         r"return one number, got shape \[2\]\.$"):
        p.true_gradient((0.5, 1.0))


def test_our_own_problem_error_inside_exact_value_passes_unchanged():
    sentence = "problem 'q_ours': at theta=[0.5] something specific went wrong."
    p = E.Problem(name="q_ours", dist=lambda t: tfd.Normal(t, 1.0), cost=lambda x, t: x**2,
                  exact_value=lambda t: _raise(ValueError(sentence)))
    with pytest.raises(ValueError) as caught:
        p.true_gradient(0.5)
    assert str(caught.value) == sentence


# -- quadrature rules have no batches -----------------------------------------------------

@pytest.mark.parametrize("name, what", [
    ("trapz", "trapz is a quadrature rule"),
    ("dependence", r"dependence integrates ∇θp·f by a quadrature rule"),
])
def test_quadrature_rule_refuses_batches(name, what):
    # In batches of 10 the n = 100 rule became the mean of ten identical 10-point rules.
    message = (rf"^{what} over n_samples grid points, so batch_size must equal n_samples "
               r"\(or be \"all\" in a grid\), got batch_size=10 for n_samples=100\.$")
    with pytest.raises(E.NotApplicableError, match=message):
        E.estimate(name, SEED, -1.0, n_samples=100, batch_size=10)
    with pytest.raises(E.NotApplicableError, match=message):  # what the grid calls to skip
        E.get_estimator(name).check(SEED, -1.0, 10, n_samples=100)
    E.get_estimator(name).check(SEED, -1.0, 100, n_samples=100)
    assert E.estimate(name, SEED, -1.0, n_samples=100, batch_size=100).shape == (1, 1)


def test_quadrature_check_is_not_cached_across_n_samples():
    assert E.estimate("trapz", SEED, -1.0, n_samples=10, batch_size=10).shape == (1, 1)
    with pytest.raises(E.NotApplicableError, match="batch_size must equal n_samples"):
        E.estimate("trapz", SEED, -1.0, n_samples=100, batch_size=10)


def _traced_only_problem(cost, name):
    return E.Problem(name=name, param_names=("theta",), dist=lambda t: tfd.Normal(t, 1.0),
                     cost=cost)


def test_a_cost_that_fails_only_when_compiled_is_one_sentence():
    # Passes the eager check (x.numpy() works eagerly), fails traced. Was: a traceback.
    problem = _traced_only_problem(lambda x, t: tf.constant(np.square(x.numpy())), "numpy_cost")
    with pytest.raises(ValueError, match=r"^problem 'numpy_cost': score_function inside its "
                                         r"compiled program .* failed with AttributeError .*"
                                         r"traceable TensorFlow code"):
        E.estimate("score_function", problem, 0.5, 10, 4)


def test_a_cost_that_fails_only_when_traced_for_the_truth_is_one_sentence():
    def python_if(x, t):
        if tf.reduce_mean(x) > 0:  # fine eagerly and under autograph; not in a plain trace
            return x**2
        return x**2

    with pytest.raises(ValueError, match=r"^problem 'python_if': computing the truth failed "
                                         r"with OperatorNotAllowedInGraphError"):
        _traced_only_problem(python_if, "python_if").truth(0.5)


def test_matrix_events_other_than_one_hot_variables_are_refused_in_one_sentence():
    # V one-hot categorical variables (draws [V, C]) are the one matrix event gradvar
    # takes; a matrix of Normals is refused, saying what is allowed.
    import tensorflow_probability as tfp
    tfd = tfp.distributions

    def two_categoricals(theta):
        logits = tf.reshape(theta["logits"], tf.concat([tf.shape(theta["logits"])[:-1],
                                                        [2, 3]], 0))
        return tfd.Independent(tfd.OneHotCategorical(logits=logits, dtype=tf.float32), 1)

    problem = E.Problem(name="two_one_hots", params={"logits": 6}, dist=two_categoricals,
                        cost=lambda y, theta: tf.reduce_sum(y[..., 0], -1))
    values = E.estimate("score_function", problem, {"logits": [0.0] * 6}, n_samples=4)
    assert values.shape == (1, 6)

    def normal_matrix(theta):
        loc = tf.reshape(theta["loc"], tf.concat([tf.shape(theta["loc"])[:-1], [2, 3]], 0))
        return tfd.Independent(tfd.Normal(loc, 1.0), 2)

    matrix = E.Problem(name="normal_matrix", params={"loc": 6}, dist=normal_matrix,
                       cost=lambda x, theta: tf.reduce_sum(x, [-2, -1]))
    with pytest.raises(ValueError) as error:
        E.estimate("score_function", matrix, {"loc": [0.0] * 6}, n_samples=4)
    assert "event shape [2, 3]; events must be scalars or vectors, or V one-hot categorical " \
        "variables" in str(error.value) and "\n" not in str(error.value)

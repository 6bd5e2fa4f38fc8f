"""Vector events: unbiasedness on the D-dimensional Gaussians, the shapes of draws and
costs, errors for costs and measures of the wrong shape, discrete vector events."""

import numpy as np
import pytest

import estimators as E
import tensorflow as tf
import tensorflow_probability as tfp
from tests.conftest import assert_within_se

tfd = tfp.distributions

D = 3
THETA = {"mean": [0.5, -1.0, 1.5], "std": [1.0, 0.5, 2.0]}
ESTIMATORS = (
    "score_function",
    "reparameterization",
    "measure_valued",
    "reparameterization(sampling=antithetic)",
    "reparameterization(sampling=qmc)",
    "score_function(control_variate=delta)",
)


@pytest.mark.parametrize("problem", ["gaussian_square_nd", "gaussian_cos_nd"])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_unbiased_within_5_se(problem, estimator):
    p = E.problems.get(problem, D=D)
    estimates = E.estimate(estimator, p, THETA, n_samples=100, n_replicates=400, seed=5,
                           backend="graph")
    assert estimates.shape == (400, 2 * D)
    assert np.all(np.isfinite(estimates))
    assert_within_se(estimates, p.true_gradient(THETA))


@pytest.mark.parametrize("estimator", ["measure_valued", "reparameterization(sampling=qmc)"])
def test_unbiased_under_xla(estimator):
    # The vector paths (coordinate chunks of the weak derivative, D-dimensional Sobol
    # points) compiled by XLA, the grids' default backend.
    p = E.problems.get("gaussian_cos_nd", D=D)
    estimates = E.estimate(estimator, p, THETA, n_samples=100, n_replicates=400, seed=6,
                           backend="xla")
    assert_within_se(estimates, p.true_gradient(THETA))


def test_true_gradient_of_the_nd_problems_is_analytic():
    mean, std = np.array(THETA["mean"]), np.array(THETA["std"])
    square = E.problems.get("gaussian_square_nd", D=D)
    np.testing.assert_allclose(square.true_gradient(THETA), np.r_[2 * (mean - 1), 2 * std],
                               rtol=1e-12)
    cos = E.problems.get("gaussian_cos_nd", D=D)
    damping = np.exp(-std**2 / 2)
    np.testing.assert_allclose(cos.true_gradient(THETA),
                               np.r_[-np.sin(mean) * damping, -np.cos(mean) * std * damping],
                               rtol=1e-12)


# -- shapes ---------------------------------------------------------------------------------------

def gaussian(name, cost, dist=None):
    return E.Problem(name=name, params={"mean": D},
                     dist=dist or (lambda t: tfd.MultivariateNormalDiag(
                         t["mean"], tf.ones_like(t["mean"]))),
                     cost=cost)


@pytest.mark.parametrize("estimator", ["score_function", "reparameterization",
                                       "measure_valued"])
def test_cost_gets_draws_n_by_R_by_D(estimator):
    seen = []

    def cost(x, t):
        seen.append(tuple(x.shape))
        return tf.reduce_sum(x**2, -1)

    p = gaussian(f"shapes_{estimator}", cost)
    # The problem's own checks first (the smoke test, the truth's test of f's smoothness
    # along the draws), with draws of their own shapes; then only the engine's calls.
    p.validate({"mean": 0.0})
    E.truth.smoothness(p, np.zeros(D))
    seen.clear()
    E.estimate(estimator, p, {"mean": 0.0}, n_samples=8, n_replicates=5, backend="eager")
    assert (8, 5, D) in seen
    assert all(shape[-1] == D and len(shape) >= 3 for shape in seen)


@pytest.mark.parametrize("estimator", ["score_function", "reparameterization",
                                       "measure_valued"])
@pytest.mark.parametrize("cost, returned, hint", [
    pytest.param(lambda x, t: x**2, r"\[3, 2, 3\]", r"sum over the event axis \(axis=-1\)",
                 id="no-sum-over-event"),
    pytest.param(lambda x, t: tf.reduce_sum(x**2, axis=[0, 2]), r"\[2\]",
                 r"do not reduce over draws", id="reduces-over-draws"),
])
def test_cost_of_the_wrong_shape(estimator, cost, returned, hint):
    p = gaussian("wrong_cost", cost)
    message = (r"^problem 'wrong_cost': cost\(x, theta\) must return one value per draw, "
               rf"shape \[3, 2\] for x of shape \[3, 2, 3\], but it returned {returned} "
               rf"\({hint}.*\)\.$")
    with pytest.raises(ValueError, match=message):
        E.estimate(estimator, p, {"mean": 0.0}, n_samples=10, n_replicates=4, backend="graph")


def test_truth_rejects_a_cost_that_does_not_sum_over_the_event_axis():
    p = gaussian("unsummed", lambda x, t: x**2)
    with pytest.raises(E.CostShapeError, match=r"one value per draw"):
        p.true_gradient({"mean": 0.0})


NOT_INDEPENDENT = gaussian("not_independent", lambda x, t: tf.reduce_sum(x**2, -1),
                           dist=lambda t: tfd.Normal(t["mean"], 1.0))


def test_batch_of_scalars_instead_of_a_vector_event_is_an_error():
    with pytest.raises(ValueError, match=r"^problem 'not_independent': dist\(theta\) must give one "
                                         r"distribution for one θ, batch shape \[\] "
                                         r".*batch shape \[3\] and event shape \[\]; .*wrap it "
                                         r"in tfd\.Independent\(\.\.\., "
                                         r"reinterpreted_batch_ndims=1\)\.$"):
        E.estimate("score_function", NOT_INDEPENDENT, {"mean": 0.0}, n_samples=10,
                   n_replicates=4, backend="graph")


def test_truth_of_a_batch_of_scalars_points_to_independent():
    with pytest.raises(ValueError, match=r"tfd\.Independent"):
        NOT_INDEPENDENT.true_gradient({"mean": 0.0})


# -- discrete vector events -----------------------------------------------------------------------

BERNOULLI = E.Problem(
    name="bernoulli_vector", params={"logit": 4},
    dist=lambda t: tfd.Independent(tfd.Bernoulli(logits=t["logit"]), 1),
    cost=lambda x, t: tf.reduce_sum((x - 0.3)**2, -1))
LOGITS = {"logit": [-1.0, 0.0, 0.5, 2.0]}


def test_bernoulli_vector_truth_by_enumeration():
    assert BERNOULLI.truth_kind(LOGITS) == "enumeration"
    p = 1 / (1 + np.exp(-np.array(LOGITS["logit"])))
    # E f = Σ p_i 0.7² + (1 - p_i) 0.3²;  dp/dlogit = p (1 - p).
    np.testing.assert_allclose(BERNOULLI.true_gradient(LOGITS), p * (1 - p) * (0.49 - 0.09),
                               rtol=1e-10)
    np.testing.assert_allclose(BERNOULLI.true_value(LOGITS), np.sum(0.49 * p + 0.09 * (1 - p)),
                               rtol=1e-10)


@pytest.mark.parametrize("estimator", ["score_function", "score_function(control_variate=loo)"])
def test_score_function_is_unbiased_on_bernoulli_vectors(estimator):
    estimates = E.estimate(estimator, BERNOULLI, LOGITS, n_samples=100, n_replicates=400,
                           seed=9, backend="graph")
    assert estimates.shape == (400, 4)
    assert_within_se(estimates, BERNOULLI.true_gradient(LOGITS))


def test_pathwise_is_not_applicable_to_bernoulli_vectors():
    with pytest.raises(E.NotApplicableError, match=r"TFP does not reparameterize Independent"):
        E.estimate("reparameterization", BERNOULLI, LOGITS, n_samples=10, backend="graph")


@pytest.mark.parametrize("estimator", ["trapz", "dependence"])
def test_grid_estimators_are_not_applicable_to_vector_events(estimator):
    p = E.problems.get("gaussian_square_nd", D=D)
    with pytest.raises(E.NotApplicableError, match=r"one-dimensional grid, but problem "
                                                   r"'gaussian_square_nd\(D=3, k=1\)' has "
                                                   r"vector events \[3\]"):
        E.estimate(estimator, p, THETA, n_samples=10, backend="graph")


# -- counting evaluations of f --------------------------------------------------------------------

@pytest.mark.parametrize("n_samples", [10, 100])
def test_measure_valued_evaluates_f_3D_plus_1_times_per_sample(n_samples):
    p = E.problems.get("gaussian_square_nd", D=D)
    estimator = E.get_estimator("measure_valued")
    assert estimator.f_evals_per_estimate(p, THETA, n_samples, n_samples) == \
        n_samples * (3 * D + 1)
    scalar = E.problems.get("gaussian_square")
    assert estimator.f_evals_per_estimate(scalar, [0.0, 1.0], n_samples, n_samples) == \
        4 * n_samples


def test_measure_valued_calls_match_its_count():
    # Every evaluation of f inside one eager estimate, counted draw by draw.
    evaluated = []

    def cost(x, t):
        evaluated.append(int(np.prod(x.shape[:-1])))
        return tf.reduce_sum((x - 1.0)**2, -1)

    p = E.Problem(name="counted", params={"mean": D, "std": D},
                  dist=lambda t: tfd.MultivariateNormalDiag(t["mean"], t["std"]), cost=cost,
                  bounds={"std": (0.0, None)})
    E.estimate("score_function", p, THETA, n_samples=4, n_replicates=1, backend="eager")  # smoke
    evaluated.clear()
    E.estimate("measure_valued", p, THETA, n_samples=4, n_replicates=1, backend="eager")
    count = E.get_estimator("measure_valued").f_evals_per_estimate(p, THETA, 4, 4)
    assert count == 4 * (3 * D + 1)
    # The count names distinct evaluation points (3D replacements and one draw from p per
    # sample); f at the draw from p may be evaluated a second time, through θ's direct path.
    assert count <= sum(evaluated) <= count + 4

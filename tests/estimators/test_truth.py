"""Ground truth: kinds, supports, Monte Carlo references and cross-checks, additive costs."""

import warnings

import numpy as np
import pytest

import estimators as E
import tensorflow as tf
import tensorflow_probability as tfp
from tests.conftest import assert_within_se

tfd = tfp.distributions

UNIT = {"theta": (0.0, 1.0)}
POSITIVE = {"theta": (0.0, None)}


def scalar(name, dist, cost, **kwargs):
    return E.Problem(name=name, dist=dist, cost=cost, **kwargs)


NORMAL_SQUARE = scalar("normal_square", lambda t: tfd.Normal(t, 1.0), lambda x, t: x**2)
POISSON = scalar("poisson", lambda t: tfd.Poisson(rate=t), lambda x, t: x**2, bounds=POSITIVE)
BERNOULLI = scalar("bernoulli", lambda t: tfd.Bernoulli(probs=t), lambda x, t: x, bounds=UNIT)
BINOMIAL = scalar("binomial", lambda t: tfd.Binomial(10.0, probs=t), lambda x, t: x**2,
                  bounds=UNIT)
GEOMETRIC = scalar("geometric", lambda t: tfd.Geometric(probs=t), lambda x, t: x, bounds=UNIT)
GAMMA = scalar("gamma", lambda t: tfd.Gamma(t, 1.0), lambda x, t: x**2, bounds=POSITIVE)
BETA = scalar("beta", lambda t: tfd.Beta(t, 2.0), lambda x, t: tf.sin(3.0 * x), bounds=POSITIVE)
SOFTPLUS = E.Problem(
    name="softplus_of_sum", params={"mean": 3, "log_scale": 3},
    dist=lambda t: tfd.MultivariateNormalDiag(t["mean"], tf.exp(t["log_scale"])),
    cost=lambda x, t: tf.math.softplus(tf.reduce_sum(x, -1)))
SOFTPLUS_THETA = {"mean": [0.3, -0.2, 0.5], "log_scale": [0.0, -0.5, 0.2]}


# -- kinds ------------------------------------------------------------------------------------

@pytest.mark.parametrize("problem, theta, kind", [
    pytest.param(E.problems.get("seed_dependence"), -1.0, "closed_form", id="seed_dependence"),
    pytest.param(E.problems.get("gaussian_cos"), [1.0, 1.0], "closed_form", id="gaussian_cos"),
    pytest.param(E.problems.get("gaussian_square_nd", D=3), {"mean": 0.0, "std": 1.0},
                 "closed_form", id="gaussian_square_nd"),
    pytest.param(E.problems.get("poisson_square"), 3.0, "closed_form", id="poisson_square"),
    pytest.param(NORMAL_SQUARE, 1.5, "quadrature", id="user-normal"),
    pytest.param(GAMMA, 2.0, "quadrature", id="user-gamma"),
    pytest.param(POISSON, 2.0, "enumeration", id="user-poisson"),
    pytest.param(BERNOULLI, 0.6, "enumeration", id="user-bernoulli"),
    pytest.param(BINOMIAL, 0.3, "enumeration", id="user-binomial"),
    pytest.param(SOFTPLUS, SOFTPLUS_THETA, "monte_carlo", id="user-continuous-vector"),
])
def test_kind(problem, theta, kind):
    assert problem.truth_kind(theta) == kind
    assert E.truth.kind(problem, theta) == kind


@pytest.mark.parametrize("problem, theta, gradient", [
    pytest.param(NORMAL_SQUARE, 1.5, 3.0, id="normal-x2"),         # d/dθ (θ² + 1)
    pytest.param(POISSON, 2.0, 5.0, id="poisson-x2"),              # d/dλ (λ + λ²)
    pytest.param(BERNOULLI, 0.6, 1.0, id="bernoulli-x"),           # d/dp p, not thousands
    pytest.param(BINOMIAL, 0.3, 10 * (1 - 2 * 0.3) + 200 * 0.3, id="binomial-x2"),
    pytest.param(GEOMETRIC, 0.1, -1 / 0.1**2, id="geometric-x-0.1"),   # d/dp (1-p)/p
    pytest.param(GEOMETRIC, 0.3, -1 / 0.3**2, id="geometric-x-0.3"),
    pytest.param(GAMMA, 0.5, 1 + 2 * 0.5, id="gamma-x2-0.5"),      # d/dα (α + α²)
    pytest.param(GAMMA, 2.0, 1 + 2 * 2.0, id="gamma-x2-2"),
])
def test_exact_gradients_respect_the_support(problem, theta, gradient):
    reference = problem.truth(theta)
    assert reference.exact and reference.kind in ("quadrature", "enumeration")
    np.testing.assert_allclose(reference.gradient, [gradient], rtol=1e-8)
    assert reference.gradient_se.tolist() == [0.0]


def test_bernoulli_window_is_its_support():
    assert BERNOULLI.integration_window(0.6) == (0.0, 1.0)
    assert BINOMIAL.integration_window(0.3) == (0.0, 10.0)


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_geometric_window_is_widened_to_the_tail_mass(p):
    low, high = GEOMETRIC.integration_window(p)
    mean, sd = (1 - p) / p, np.sqrt(1 - p) / p
    assert low == 0.0
    assert high > mean + E.measure.WINDOW_STDDEVS * sd  # widened past mean + 12 sd
    assert (1 - p) ** (high + 1) < E.measure.TAIL_MASS  # P(x > high)


def test_gamma_window_stays_inside_the_support():
    low, high = GAMMA.integration_window(0.5)
    assert 0.0 < low < 1e-6 and np.isfinite(high)


@pytest.mark.parametrize("estimator, n_replicates", [("trapz", 2), ("dependence", 200)])
@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_grid_estimators_on_a_gamma_are_finite_and_close(estimator, n_replicates, alpha):
    estimates = E.estimate(estimator, GAMMA, alpha, n_samples=10_000, n_replicates=n_replicates,
                           seed=4, backend="graph")
    assert np.all(np.isfinite(estimates))
    truth = 1 + 2 * alpha
    if estimator == "trapz":
        np.testing.assert_allclose(estimates[0], [truth], rtol=1e-3)
    else:
        assert_within_se(estimates, [truth], float_tol=1e-3)


def test_beta_quadrature_agrees_with_monte_carlo():
    reference = BETA.truth(1.5)
    assert reference.kind == "quadrature"
    mc = E.truth.draws.gradient_terms(BETA, np.array([1.5]), 2**18, seed=(1, 2))
    assert abs(reference.gradient[0] - mc.score.mean[0]) < 5 * mc.score.se[0]
    assert abs(reference.value - mc.f.mean[0]) < 5 * mc.f.se[0]


# -- Monte Carlo references -------------------------------------------------------------------

def test_monte_carlo_reference_has_a_standard_error():
    reference = SOFTPLUS.truth(SOFTPLUS_THETA)
    assert reference.kind == "monte_carlo" and not reference.exact
    assert reference.gradient.shape == reference.gradient_se.shape == (6,)
    assert np.all(reference.gradient_se > 0) and reference.value_se > 0
    # f depends on x through Σ x_i only, so the three mean components are equal.
    np.testing.assert_allclose(reference.gradient[:3], reference.gradient[0], rtol=1e-6)


def test_score_function_agrees_with_the_monte_carlo_reference():
    reference = SOFTPLUS.truth(SOFTPLUS_THETA)
    estimates = E.estimate("score_function", SOFTPLUS, SOFTPLUS_THETA, n_samples=100,
                           n_replicates=400, seed=8, backend="graph")
    se = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    combined = np.sqrt(se**2 + reference.gradient_se**2)
    gap = np.abs(estimates.mean(axis=0) - reference.gradient)
    assert np.all(gap < 5 * combined), (gap / combined).round(2)


# -- cross-checks that catch a wrong truth ----------------------------------------------------

def test_wrong_closed_form_raises_truth_error():
    wrong = scalar("wrong_closed_form", lambda t: tfd.Normal(t, 1.0), lambda x, t: x**2,
                   exact_value=lambda t: 1.1 * (t**2 + 1.0))  # E f = θ² + 1
    assert wrong.truth_kind(1.0) == "closed_form"
    with pytest.raises(E.TruthError, match=r"^problem 'wrong_closed_form' at theta=\[1.0\]: the "
                                           r"closed_form value 2.2 disagrees with a Monte Carlo "
                                           r"check .*: the closed form exact_value .* may be "
                                           r"wrong\.$"):
        wrong.true_gradient(1.0)


def test_wrong_closed_form_gradient_alone_raises_truth_error():
    # Right value at θ = 1, wrong slope: only the gradient check can see it.
    wrong = scalar("wrong_slope", lambda t: tfd.Normal(t, 1.0), lambda x, t: x**2,
                   exact_value=lambda t: 3.0 * t - 1.0)  # equals θ² + 1 at θ = 1, slope 3
    with pytest.raises(E.TruthError, match=r"the closed_form gradient 'theta' = 3 disagrees"):
        wrong.true_gradient(1.0)


def test_window_missing_mass_raises_truth_error():
    narrow = scalar("narrow_window", lambda t: tfd.Normal(t, 1.0), lambda x, t: x,
                    window=(-1.0, 1.0))
    assert narrow.truth_kind(3.0) == "quadrature"
    with pytest.raises(E.TruthError, match=r"^problem 'narrow_window' at theta=\[3.0\]: the "
                                           r"quadrature value .* the integration window may "
                                           r"miss mass"):
        narrow.true_gradient(3.0)


def test_truth_is_checked_without_raising_when_right():
    # The same problem with a window covering the mass.
    wide = scalar("wide_window", lambda t: tfd.Normal(t, 1.0), lambda x, t: x,
                  window=(-20.0, 30.0))
    np.testing.assert_allclose(wide.true_gradient(3.0), [1.0], rtol=1e-8)


# -- additive costs -----------------------------------------------------------------------------

D = 20
PROBS = np.linspace(0.05, 0.95, D)


def bernoulli_vector(name, cost, additive, params_name="p"):
    return E.Problem(name=name, params={params_name: D},
                     dist=lambda t: tfd.Independent(tfd.Bernoulli(probs=t[params_name]), 1),
                     cost=cost, additive_cost=additive, bounds={params_name: (0.0, 1.0)})


def test_additive_cost_gives_the_closed_form_by_enumeration():
    p = bernoulli_vector("additive", lambda x, t: tf.reduce_sum((x - 0.3)**2, -1), True)
    reference = p.truth(PROBS)
    assert reference.kind == "enumeration"
    # E f = Σ p_i (1 - 0.3)² + (1 - p_i) 0.3²
    np.testing.assert_allclose(reference.value, np.sum(PROBS * 0.49 + (1 - PROBS) * 0.09),
                               rtol=1e-10)
    np.testing.assert_allclose(reference.gradient, np.full(D, 0.49 - 0.09), rtol=1e-10)


def test_additive_cost_with_coordinate_weights():
    # Gradients that differ per coordinate: a mix-up of coordinates would show.
    weights = np.linspace(0.5, 2.0, D)
    centers = np.linspace(-0.5, 1.5, D)
    p = bernoulli_vector(
        "additive_weighted",
        lambda x, t: tf.reduce_sum(tf.constant(weights, x.dtype)
                                   * (x - tf.constant(centers, x.dtype))**2, -1), True)
    expected = weights * ((1 - centers)**2 - centers**2)
    np.testing.assert_allclose(p.true_gradient(PROBS), expected, rtol=1e-10)


def test_without_additive_cost_a_large_vector_falls_back_to_monte_carlo():
    p = bernoulli_vector("not_declared", lambda x, t: tf.reduce_sum((x - 0.3)**2, -1), False)
    assert p.truth_kind(PROBS) == "monte_carlo"


def test_additive_cost_that_is_not_additive_raises_truth_error():
    p = bernoulli_vector("product", lambda x, t: tf.reduce_prod(x + 1.0, -1), True)
    with pytest.raises(E.TruthError, match=r"^problem 'product' declares additive_cost=True, but "
                                           r".*the cost is not a sum over coordinates\.$"):
        p.true_gradient(PROBS)


def test_additive_cost_must_be_a_bool():
    with pytest.raises(TypeError, match=r"additive_cost must be True or False, got 'yes'"):
        bernoulli_vector("flag", lambda x, t: tf.reduce_sum(x, -1), "yes")


# -- forcing a method -----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["quadrature", "enumeration"])
def test_forcing_a_numeric_method_that_does_not_apply(method):
    with pytest.raises(ValueError, match=r"^problem 'softplus_of_sum' has continuous "
                                         r"\[3\]-shaped events, .*; use method='auto'\.$"):
        E.truth.reference(SOFTPLUS, SOFTPLUS_THETA, method=method)


def test_forcing_a_closed_form_that_does_not_exist():
    with pytest.raises(ValueError, match=r"^problem 'normal_square' has no closed form "
                                         r"\(exact_value\); use method='auto'\.$"):
        E.truth.reference(NORMAL_SQUARE, 1.5, method="closed_form")


def test_unknown_method():
    with pytest.raises(ValueError, match=r"^method must be one of auto, closed_form, quadrature, "
                                         r"enumeration, monte_carlo, got 'exact'\.$"):
        E.truth.reference(NORMAL_SQUARE, 1.5, method="exact")


def test_forcing_quadrature_on_a_closed_form_problem_agrees_with_it():
    p = E.problems.get("gaussian_cos")
    forced = E.truth.reference(p, [0.5, 1.5], method="quadrature")
    assert forced.kind == "quadrature"
    np.testing.assert_allclose(forced.gradient, p.true_gradient([0.5, 1.5]), rtol=1e-8,
                               atol=1e-12)


# -- supports that move, heavy tails, TFP's sampling paths ------------------------------------

MOVING = E.Problem(name="moving_uniform", dist=lambda t: tfd.Uniform(t, t**2 + 1.0),
                   cost=lambda x, t: tf.sin(x))


def test_a_support_that_moves_with_theta_gets_quadrature_with_its_boundary_terms():
    # d/dθ of (cos θ - cos(θ²+1)) / (θ² + 1 - θ) at 0.7, by a central difference: 0.512428.
    assert MOVING.support_depends_on_theta(0.7)
    reference = MOVING.truth(0.7)
    assert reference.kind == "quadrature" and reference.checked
    np.testing.assert_allclose(reference.gradient, [0.512428], atol=2e-6)
    # Without Leibniz's boundary terms the integral's gradient would be far off.
    inside = E.truth.integrate(MOVING, np.array([0.7]), "value_and_gradient",
                               E.truth.integrands.value_and_gradient)[1]
    assert abs(inside - 0.512428) > 0.1


@pytest.mark.parametrize("name", ["score_function", "score_function(control_variate=loo)",
                                  "trapz", "dependence"])
def test_estimators_that_miss_boundary_terms_refuse_a_moving_support(name):
    with pytest.raises(E.NotApplicableError, match=r"misses the boundary terms .* moves with θ"):
        E.estimate(name, MOVING, 0.7, n_samples=10)


def test_heavy_tails_get_a_monte_carlo_reference_not_a_truncated_integral():
    # E_{Cauchy(θ, 0.5)}[sin x] = sin θ · e^{-0.5}; 3e-5 of the mass lies beyond 10⁴
    # spreads, too much for a window to call its integral exact.
    cauchy = E.Problem(name="cauchy_sin", dist=lambda t: tfd.Cauchy(t, 0.5),
                       cost=lambda x, t: tf.sin(x), reference_samples=200_000)
    reference = cauchy.truth(0.2)
    assert reference.kind == "monte_carlo"
    assert abs(reference.gradient[0] - np.cos(0.2) * np.exp(-0.5)) < 5 * reference.gradient_se[0]


def test_heavy_tails_with_an_explicit_window_are_integrated_around_the_peak():
    cauchy = E.Problem(name="cauchy_window", dist=lambda t: tfd.Cauchy(t, 0.5),
                       cost=lambda x, t: tf.sin(x) * tf.exp(-0.01 * x**2), window=(-60.0, 60.0))
    reference = cauchy.truth(0.2)
    assert reference.kind == "quadrature"


@pytest.mark.parametrize("dist", [
    pytest.param(lambda t: tfd.Beta(t, 2.0), id="Beta"),
    pytest.param(lambda t: tfd.StudentT(t, 0.0, 1.0), id="StudentT"),
    pytest.param(lambda t: tfd.TruncatedNormal(t, 1.0, -1.0, 2.0), id="TruncatedNormal"),
])
def test_exact_pathwise_variance_is_refused_where_tfp_samples_another_path(dist):
    # Along the quantile path the Beta(1.5, 2) variance would be 0.0014; TFP's two-Gamma
    # path gives 0.0025 (measured): a number that looked exact would be wrong.
    p = E.Problem(name="other_path", dist=dist, cost=lambda x, t: tf.math.log1p(x**2))
    with pytest.raises(NotImplementedError, match="quantile path"):
        E.truth.per_sample_variance(p, E.ESTIMATORS["reparameterization"], 1.5)


def test_an_inconclusive_cross_check_is_recorded_not_a_false_refusal():
    # f = exp(θ|x|) at θ = 7 is lognormal-like: one of the check's draws carries most of its
    # second moment, and the correct closed form (8.33e31) used to be refused against a
    # Monte Carlo "check" of 1.47e29 ± 5.2e28.
    problem = E.problems.get("seed_dependence")
    hot = problem.truth(7.0)
    assert hot.kind == "closed_form" and not hot.checked
    assert hot.value == pytest.approx(np.exp(7.0**2 / 2 + 7.0**2), rel=1e-3)
    assert problem.truth(-1.0).checked and E.problems.get("gaussian_cos").truth([0.5, 1.0]).checked


def test_a_truth_that_overflows_float64_is_refused():
    with pytest.raises(E.TruthError, match="is not finite"):
        E.problems.get("seed_dependence").truth(40.0)

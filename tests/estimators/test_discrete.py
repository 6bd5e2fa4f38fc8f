"""Discrete estimators (ARM, DisARM, REBAR, Gumbel-softmax, straight-through) against
exact answers.

On the REBAR/RELAX toy (one Bernoulli, f = (b - t)²) every estimator's mean and
per-sample variance are known exactly: enumeration for the score function and RLOO, a
cubature over the uniform noise for the others. The unbiased estimators' means must sit
within 5 SE of the true gradient and the relaxed ones' within 5 SE of their exact
*biased* mean, which must itself differ from the truth; measured variances within 5 SE of
the exact ones (the SE of a sample variance from its fourth moment).
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import estimators as E
from tests.conftest import assert_within_se, variance_z

N_SAMPLES, N_REPLICATES = 20, 4000
UNBIASED = ["score_function", "score_function(control_variate=loo)", "arm", "disarm", "rebar",
            "rebar(eta=0.5, temperature=0.1)"]
RELAXED = [f"{name}(temperature={temperature:g})" for name in ("gumbel_softmax",
                                                                  "straight_through")
           for temperature in (0.1, 0.5, 1.0)]


def logit(p):
    return float(np.log(p / (1.0 - p)))


def toy_cases(labels):
    return [pytest.param(label, t, p, id=f"{label}-t{t:g}-p{p:g}")
            for label in labels for t in (0.499, 0.45) for p in (0.1, 0.5, 0.8)]


def estimates(label, problem, theta, seed=7):
    return E.estimate(label, problem, theta, n_samples=N_SAMPLES, n_replicates=N_REPLICATES,
                      seed=seed)


@pytest.mark.parametrize("label, t, p", toy_cases(UNBIASED))
def test_unbiased_mean_and_variance_match_exact_on_the_toy(label, t, p):
    problem, theta = E.problems.get("bernoulli_toy", t=t), logit(p)
    values = estimates(label, problem, theta)
    truth = problem.true_gradient(theta)
    np.testing.assert_allclose(truth, p * (1 - p) * (1 - 2 * t), rtol=1e-12)
    assert_within_se(values, truth, float_tol=1e-7)
    mean, per_sample = E.get_estimator(label).exact_moments(problem, theta, N_SAMPLES)
    np.testing.assert_allclose(mean, truth, rtol=1e-6, atol=1e-12)
    if per_sample[0] <= 1e-12 * truth[0] ** 2:  # DisARM, one Bernoulli, p = ½: always split
        assert label == "disarm" and p == 0.5
        assert values.std() <= 1e-6 * abs(truth[0])
        return
    z, measured = variance_z(values, per_sample / N_SAMPLES)
    assert np.all(np.abs(z) < 5), f"z = {z}, measured {measured}, exact {per_sample / N_SAMPLES}"


@pytest.mark.parametrize("label, t, p", toy_cases(RELAXED))
def test_relaxed_estimators_have_their_exact_bias(label, t, p):
    problem, theta = E.problems.get("bernoulli_toy", t=t), logit(p)
    estimator = E.get_estimator(label)
    assert not estimator.unbiased and estimator.declared_biased
    values = estimates(label, problem, theta)
    mean, per_sample = estimator.exact_moments(problem, theta, N_SAMPLES)
    assert_within_se(values, mean, float_tol=1e-7)
    z, _ = variance_z(values, per_sample / N_SAMPLES)
    assert np.all(np.abs(z) < 5)
    truth = problem.true_gradient(theta)
    se = values.std(ddof=1) / np.sqrt(len(values))
    if p != 0.5:  # at p = ½ the toy's relaxed bias is tiny; elsewhere it is plain to see
        assert abs(values.mean() - truth[0]) > 5 * se, (values.mean(), truth)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8, 0.95])
def test_disarm_variance_is_at_most_arms(p):
    """DisARM Rao-Blackwellizes ARM, so its variance is lower or equal (Dong et al. 2020);
    strictly lower away from p = ½ on the toy, where both are exact numbers."""
    problem, theta = E.problems.get("bernoulli_toy", t=0.45), logit(p)
    _, arm = E.get_estimator("arm").exact_moments(problem, theta)
    _, disarm = E.get_estimator("disarm").exact_moments(problem, theta)
    assert disarm[0] < arm[0]


def test_relaxed_bias_vanishes_as_the_temperature_falls():
    """Exact bias, growing with λ up to ½ and nearly proportional to it for small λ (it
    is not monotone beyond: at λ = 2 the flat relaxation also shrinks the estimate)."""
    problem, theta = E.problems.get("bernoulli_toy", t=0.45), logit(0.8)
    truth = problem.true_gradient(theta)[0]
    for name in ("gumbel_softmax", "straight_through"):
        bias = [abs(E.get_estimator(name, temperature=temperature).exact_moments(
            problem, theta)[0][0] - truth) for temperature in (0.02, 0.05, 0.1, 0.25, 0.5)]
        assert bias == sorted(bias) and bias[0] < 0.1 * bias[-1], (name, bias)


@pytest.mark.parametrize("label", UNBIASED)
def test_unbiased_on_independent_bernoullis(label):
    """Every coordinate of a 6-dimensional Bernoulli vector, logits spread out, within 5 SE
    (the closed form p_i (1 - p_i)(1 - 2t)/D)."""
    problem = E.problems.get("bernoulli_quadratic", D=6, t=0.3)
    theta = {"logits": [-2.0, -1.0, -0.2, 0.4, 1.0, 2.5]}
    values = estimates(label, problem, theta)
    assert values.shape == (N_REPLICATES, 6)
    p = 1.0 / (1.0 + np.exp(-np.array(theta["logits"])))
    np.testing.assert_allclose(problem.true_gradient(theta), p * (1 - p) * 0.4 / 6, rtol=1e-6)
    assert_within_se(values, problem.true_gradient(theta), float_tol=1e-7)


@pytest.mark.parametrize("name", ["gumbel_softmax", "straight_through"])
def test_relaxed_vector_bias_is_the_toys_per_coordinate(name):
    """f = (1/D) Σ (b_i - t)² is a sum of toys, so each coordinate's relaxed mean is 1/D of
    the one-Bernoulli exact mean at its logit: an independent check of the vector path."""
    logits = [-1.5, 0.0, 1.2]
    problem = E.problems.get("bernoulli_quadratic", D=3, t=0.45)
    values = estimates(name, problem, {"logits": logits})
    toy, estimator = E.problems.get("bernoulli_toy", t=0.45), E.get_estimator(name)
    expected = [estimator.exact_moments(toy, a)[0][0] / 3 for a in logits]
    assert_within_se(values, expected, float_tol=1e-7)


def test_categorical_toy_score_function_unbiased_and_relaxations_biased():
    problem = E.problems.get("categorical_toy", C=5)
    theta = {"logits": [0.3, -0.5, 1.0, 0.0, -1.2]}
    p = np.exp(theta["logits"]) / np.sum(np.exp(theta["logits"]))
    index = np.arange(5)
    np.testing.assert_allclose(problem.true_gradient(theta), p * (index - p @ index) / 25,
                               rtol=1e-6)
    for label in ("score_function", "score_function(control_variate=loo)"):
        assert_within_se(estimates(label, problem, theta), problem.true_gradient(theta),
                         float_tol=1e-7)
    # f is linear in the one-hot y, so both relaxations differentiate the same function.
    relaxed = estimates("gumbel_softmax", problem, theta)
    np.testing.assert_allclose(estimates("straight_through", problem, theta), relaxed,
                               rtol=1e-5, atol=1e-9)
    se = relaxed.std(axis=0, ddof=1) / np.sqrt(len(relaxed))
    assert np.max(np.abs(relaxed.mean(axis=0) - problem.true_gradient(theta)) / se) > 5


def test_evaluations_of_f_per_estimate():
    problem = E.problems.get("bernoulli_toy")
    counts = {label: E.get_estimator(label).f_evals_per_estimate(problem, 0.0, 100, 10)
              for label in ("arm", "disarm", "rebar", "gumbel_softmax", "straight_through",
                            "score_function")}
    assert counts == {"arm": 200, "disarm": 200, "rebar": 300, "gumbel_softmax": 100,
                      "straight_through": 100, "score_function": 100}


def test_settings_are_options_with_canonical_labels():
    assert E.get_estimator("gumbel_softmax", temperature=np.array(0.3)).label == \
        "gumbel_softmax(temperature=0.3)"
    assert E.get_estimator("gumbel_softmax(temperature=0.10)").label == \
        "gumbel_softmax(temperature=0.1)"
    assert E.get_estimator("gumbel_softmax", temperature=0.5) == E.ESTIMATORS["gumbel_softmax"]
    assert E.get_estimator("gumbel_softmax").setting("temperature") == 0.5
    rebar = E.get_estimator("rebar", eta="0.5", temperature=2)
    assert rebar.label == "rebar(eta=0.5, temperature=2)"
    assert E.get_estimator(rebar.label) == rebar
    problem = E.problems.get("bernoulli_toy")
    first = E.estimate("rebar(temperature=2, eta=0.5)", problem, 0.3, n_samples=10,
                       n_replicates=3, seed=1)
    np.testing.assert_array_equal(first, E.estimate(rebar, problem, 0.3, n_samples=10,
                                                    n_replicates=3, seed=1))


@pytest.mark.parametrize("call, message", [
    (lambda: E.get_estimator("gumbel_softmax", temperature=0),
     "temperature (the relaxation's temperature λ) of gumbel_softmax must be a number above 0"),
    (lambda: E.get_estimator("gumbel_softmax(temperature=hot)"), "got 'hot'"),
    (lambda: E.get_estimator("rebar", eta=float("nan")), "eta (the control variate's scale)"),
    (lambda: E.get_estimator("arm", temperature=0.5),
     "unknown estimator option 'temperature' for arm; its options are sampling, "
     "control_variate."),
    (lambda: E.get_estimator("straight_through", eta=1.0),
     "for straight_through; its options are sampling, control_variate, temperature."),
    (lambda: E.get_estimator("gumbel_softmax(temperature=[0.1, 0.5])"),
     "its options take one value each; sweep a setting with a grid table such as {name = "),
    (lambda: E.get_estimator("arm", control_variate="loo"), "arm does not combine with"),
])
def test_bad_settings_are_one_sentence(call, message):
    with pytest.raises(ValueError, match=None) as error:
        call()
    assert message in str(error.value) and "\n" not in str(error.value)


def _bernoulli_problem(name, cost, dist=None):
    return E.Problem(name=name, dist=dist or (lambda t: tfp.distributions.Bernoulli(logits=t)),
                     cost=cost, param_names=("logit",))


@pytest.mark.parametrize("label, problem, message", [
    ("arm", E.problems.get("seed_dependence"), "arm is defined for binary latent variables"),
    ("disarm", E.problems.get("categorical_toy", C=3), "categorical DisARM is not implemented"),
    ("rebar", E.problems.get("poisson_square"), "rebar relaxes Bernoulli or one-hot categorical"),
    ("gumbel_softmax", E.Problem(
        name="indices", dist=lambda t: tfp.distributions.Categorical(logits=t["logits"]),
        cost=lambda z, t: z, params={"logits": 3}),
     'draw one-hot vectors (categorical_vae: draws="one_hot"; your own problem: '
     'tfd.OneHotCategorical(logits)'),
    ("straight_through", E.problems.get("gaussian_cos"), "relaxes Bernoulli or one-hot"),
    ("gumbel_softmax", _bernoulli_problem("rounded", lambda b, t: tf.round(b) * 2.0),
     "has no gradient in x"),
    ("rebar", _bernoulli_problem("lookup", lambda b, t: tf.gather([1.0, 3.0], tf.cast(b, tf.int32))),
     "has no gradient in x"),
    ("rebar", _bernoulli_problem("mixed", lambda b, t: (b - 0.45) ** 2 + 0.5 * tf.round(b)),
     "jumps between x = 0 and x = 1"),
    ("straight_through", E.Problem(
        name="mixed_vector", params={"logits": 3},
        dist=lambda t: tfp.distributions.Independent(
            tfp.distributions.Bernoulli(logits=t["logits"]), 1),
        cost=lambda b, t: tf.reduce_sum(b**2, -1) + tf.floor(b[..., 1])),
     "jumps between x = 0 and x = 1"),
])
def test_estimators_refuse_measures_and_costs_they_cannot_handle(label, problem, message):
    theta = {"logits": 0.0} if problem.params else 0.1 if problem.dim == 1 else (0.5, 1.0)
    with pytest.raises(E.NotApplicableError) as error:
        E.estimate(label, problem, theta, n_samples=4)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_integer_bernoulli_and_a_measure_without_theta():
    """A user's Bernoulli with TFP's default int32 draws, and one that ignores θ (its
    gradient is then ∇θ f alone): the discrete estimators handle both."""
    problem = _bernoulli_problem("int_draws", lambda b, t: (b - 0.2) ** 2)
    values = estimates("disarm", problem, 0.7)
    p = 1 / (1 + np.exp(-0.7))
    assert_within_se(values, [p * (1 - p) * 0.6], float_tol=1e-7)
    fixed = E.Problem(name="fixed_measure",
                      dist=lambda t: tfp.distributions.Bernoulli(probs=0.3, dtype=tf.float32),
                      cost=lambda b, t: t * b, param_names=("scale",))
    for label in ("arm", "disarm", "rebar"):
        assert_within_se(estimates(label, fixed, 2.0), [0.3], float_tol=1e-7)


@pytest.mark.bias_warning
def test_estimate_warns_that_a_relaxation_is_biased():
    problem = E.problems.get("bernoulli_toy")
    with pytest.warns(E.BiasedEstimatorWarning, match=r"^straight_through\(temperature=0\.1\) "
                      r"differentiates a continuous relaxation .* so it is biased"):
        E.estimate("straight_through(temperature=0.1)", problem, 0.0, n_samples=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        E.estimate("disarm", problem, 0.0, n_samples=4)


def test_truth_of_a_nearly_certain_bernoulli_is_unchecked_not_refused():
    """At p = 3e-7 every one of the cross-check's draws is b = 0, so Monte Carlo cannot see
    the closed form's (correct) p-term: the check is inconclusive, not a TruthError ..."""
    problem = E.problems.get("bernoulli_toy", t=0.45)
    reference = problem.truth(-15.0)
    p = 1 / (1 + np.exp(15.0))
    assert reference.kind == "closed_form" and not reference.checked
    np.testing.assert_allclose(reference.gradient, [p * (1 - p) * 0.1], rtol=1e-9)


def test_a_wrong_closed_form_for_a_bernoulli_is_still_refused():
    """... while a wrong closed form at an ordinary p still is one."""
    wrong = E.Problem(name="wrong_toy", param_names=("logit",),
                      dist=lambda t: tfp.distributions.Bernoulli(logits=t, dtype=tf.float32),
                      cost=lambda b, t: (b - 0.45) ** 2,
                      exact_value=lambda t: tf.sigmoid(t) * 0.55**2 + tf.sigmoid(t) * 0.45**2)
    with pytest.raises(E.truth.TruthError, match="disagrees with a Monte Carlo check"):
        wrong.truth(0.3)


# -- exact moments against formulas written independently of the estimators' code ------

def _toy_gap(t):
    return (1 - t) ** 2 - t**2  # f(1) - f(0)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8, 0.95])
def test_arm_and_disarm_variance_match_their_closed_forms(p):
    """One Bernoulli, Δ = f(1) - f(0), M = max(p, 1-p), m = min(p, 1-p):
    ARM's estimate is ±Δ(u - ½) where b⁺ ≠ b⁻, so E ĝ² = (2/3) Δ² (1/8 - (M - ½)³);
    DisARM's is ½ Δ M with probability 2m, else 0, so Var = Δ² M² m (½ - m)."""
    t = 0.45
    problem, theta, gap = E.problems.get("bernoulli_toy", t=t), logit(p), _toy_gap(t)
    big, small = max(p, 1 - p), min(p, 1 - p)
    arm = 2 / 3 * gap**2 * (1 / 8 - (big - 0.5) ** 3) - (gap * p * (1 - p)) ** 2
    disarm = gap**2 * big**2 * small * (0.5 - small)
    np.testing.assert_allclose(E.get_estimator("arm").exact_moments(problem, theta)[1],
                               [arm], rtol=1e-7)
    np.testing.assert_allclose(E.get_estimator("disarm").exact_moments(problem, theta)[1],
                               [disarm], rtol=1e-7, atol=1e-15)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("p", [0.2, 0.8])
def test_relaxed_exact_moments_match_a_numpy_quadrature(p, temperature):
    """Gumbel-softmax: ∂/∂α (y - t)² = 2 (y - t) y (1 - y)/λ at y = σ((α + logit u)/λ);
    straight-through: the same with the discrete b = 1[α + logit u > 0] in place of the
    first y. Integrated over u by scipy, with the jump at u = 1 - p."""
    from scipy import integrate, special

    t, alpha = 0.45, logit(p)
    problem = E.problems.get("bernoulli_toy", t=t)

    def moments(hard):
        def g(u):
            z = alpha + special.logit(u)
            y = special.expit(z / temperature)
            value = float(z > 0) if hard else y
            return 2 * (value - t) * y * (1 - y) / temperature

        first = sum(integrate.quad(g, a, b, epsabs=1e-13, epsrel=1e-11)[0]
                    for a, b in ((0, 1 - p), (1 - p, 1)))
        second = sum(integrate.quad(lambda u: g(u) ** 2, a, b, epsabs=1e-13,
                                    epsrel=1e-11)[0] for a, b in ((0, 1 - p), (1 - p, 1)))
        return first, second - first**2

    for name, hard in (("gumbel_softmax", False), ("straight_through", True)):
        mean, variance = E.get_estimator(name, temperature=temperature).exact_moments(
            problem, alpha)
        np.testing.assert_allclose([mean[0], variance[0]], moments(hard), rtol=1e-6)


@pytest.mark.parametrize("p, eta, temperature", [(0.8, 1.0, 0.5), (0.3, 0.5, 0.2)])
def test_rebar_exact_moments_match_a_numpy_quadrature(p, eta, temperature):
    """REBAR on one Bernoulli with its derivatives written out by hand: z = α + logit u,
    b = 1[z > 0], z̃ = α + logit u' with u' = 1 - p + v p (b = 1) or v (1 - p) (b = 0), so
    ∂z̃/∂α = 1 - (1 - v or v) p (1 - p) / (u'(1 - u')); integrated over (u, v) by scipy."""
    from scipy import integrate, special

    t, alpha = 0.45, logit(p)
    problem = E.problems.get("bernoulli_toy", t=t)

    def relaxed_slope(z):  # ∂/∂z f(σ(z/λ)) for f(x) = (x - t)²
        y = special.expit(z / temperature)
        return 2 * (y - t) * y * (1 - y) / temperature

    def g(v, u):
        b = float(u > 1 - p)
        z = alpha + special.logit(u)
        w = (1 - v) if b else v
        u_given_b = 1 - p + v * p if b else v * (1 - p)
        z_tilde = alpha + special.logit(u_given_b)
        dz_tilde = 1 - w * p * (1 - p) / (u_given_b * (1 - u_given_b))
        f_tilde = (special.expit(z_tilde / temperature) - t) ** 2
        return ((b - t) ** 2 - eta * f_tilde) * (b - p) \
            + eta * relaxed_slope(z) - eta * relaxed_slope(z_tilde) * dz_tilde

    def integral(h):
        return sum(integrate.dblquad(h, a, b, 0, 1, epsabs=1e-12, epsrel=1e-10)[0]
                   for a, b in ((0, 1 - p), (1 - p, 1)))

    first = integral(g)
    variance = integral(lambda v, u: g(v, u) ** 2) - first**2
    mean, exact = E.get_estimator("rebar", eta=eta, temperature=temperature).exact_moments(
        problem, alpha)
    np.testing.assert_allclose([mean[0], exact[0]], [first, variance], rtol=1e-5)
    np.testing.assert_allclose(first, problem.true_gradient(alpha)[0], rtol=1e-6)


@pytest.mark.parametrize("label", ["score_function", "score_function(control_variate=loo)"])
def test_categorical_exact_variance_by_enumerating_the_one_hot_outcomes(label):
    problem = E.problems.get("categorical_toy", C=5)
    theta = {"logits": [0.3, -0.5, 1.0, 0.0, -1.2]}
    mean, per_sample = E.truth.single_sample_moments(problem, E.get_estimator(label), theta,
                                                     batch_size=N_SAMPLES)
    np.testing.assert_allclose(mean, problem.true_gradient(theta), atol=1e-15)
    z, measured = variance_z(estimates(label, problem, theta), per_sample / N_SAMPLES)
    assert np.all(np.abs(z) < 5), (z, measured, per_sample / N_SAMPLES)


def test_only_the_relaxations_are_declared_biased():
    """Quadrature rules (a discretization bias that vanishes with n) and naive_mc (biased
    only where p depends on θ) are judged by their measured bias."""
    declared = {name for name, estimator in E.ESTIMATORS.items() if estimator.declared_biased}
    assert declared == {"gumbel_softmax", "straight_through", "reinmax", "gumbel_rao"}


@pytest.mark.parametrize("p", [1e-4, 0.999])
def test_rebar_exact_moments_stay_fast_and_right_near_certain_draws(p):
    """REBAR's moments come from 1-D integrals (a(u) + c_b(v), module rebar), which stay
    accurate where p is near 0 or 1; checked here against the estimates, at a logit where
    float32 draws still resolve min(p, 1 - p)."""
    problem, theta = E.problems.get("bernoulli_toy", t=0.45), logit(p)
    mean, per_sample = E.get_estimator("rebar").exact_moments(problem, theta)
    np.testing.assert_allclose(mean, problem.true_gradient(theta), rtol=1e-6)
    values = estimates("rebar", problem, theta)
    z, measured = variance_z(values, per_sample / N_SAMPLES)
    assert np.all(np.abs(z) < 5), (z, measured, per_sample / N_SAMPLES)

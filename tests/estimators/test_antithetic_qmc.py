"""Pathwise estimators with coupled noise: antithetic pairs and randomized QMC."""

import re

import numpy as np
import pytest

import estimators as E
import tensorflow as tf
import tensorflow_probability as tfp
from tests.conftest import assert_within_se
from tests.estimators.replicates import case_id, measured, per_sample_variance

tfd = tfp.distributions

ANTITHETIC, QMC = "reparameterization_antithetic", "reparameterization_qmc"

CASES = [
    ("gaussian_square", {"k": 3.0}, (1.0, 1.0)),
    ("gaussian_exp", {"k": 1.0}, (-0.5, 2.0)),
    ("gaussian_cos", {"k": 2.0}, (0.3, 0.5)),
    ("seed_dependence", {}, -1.0),
    ("seed_fixed", {}, -0.5),
]
PARAMS = [pytest.param(*case, id=case_id(*case)) for case in CASES]

EXP = E.Problem(name="exp", dist=lambda t: tfd.Normal(t, 1.0), cost=lambda x, t: tf.exp(x))


@pytest.mark.parametrize("estimator", [ANTITHETIC, QMC])
@pytest.mark.parametrize("problem, kwargs, theta", PARAMS)
def test_unbiased_within_5_se(estimator, problem, kwargs, theta):
    p = E.problems.get(problem, **kwargs)
    assert_within_se(measured(estimator, p, theta, seed=51), p.true_gradient(theta))


@pytest.mark.parametrize("problem, kwargs, theta", PARAMS[1:])  # gaussian_square: below
def test_antithetic_per_sample_variance_within_10_percent_of_exact(problem, kwargs, theta):
    p = E.problems.get(problem, **kwargs)
    exact = E.truth.per_sample_variance(p, E.ESTIMATORS[ANTITHETIC], theta)
    np.testing.assert_allclose(per_sample_variance(measured(ANTITHETIC, p, theta, seed=51)),
                               exact, rtol=0.10)


def test_antithetic_cancels_the_odd_part_of_the_pathwise_gradient():
    # f = (x-k)², x = μ + σε: ∂μ f = 2(x-k) is affine in ε, so a pair's average is exact
    # (variance 0); ∂σ f = 2(μ-k)ε + 2σε² keeps only 2σε², per-sample variance
    # 2·Var(2σε²) = 16σ², below the iid pathwise 4(μ-k)² + 8σ² when 2σ² < (μ-k)².
    mu, sigma, k = 1.0, 1.0, 3.0
    p = E.problems.get("gaussian_square", k=k)
    exact = E.truth.per_sample_variance(p, E.ESTIMATORS[ANTITHETIC], (mu, sigma))
    np.testing.assert_allclose(exact, [0.0, 16 * sigma**2], atol=1e-9, rtol=1e-8)
    plain = E.truth.per_sample_variance(p, E.ESTIMATORS["reparameterization"], (mu, sigma))
    np.testing.assert_allclose(plain, [4 * sigma**2, 4 * (mu - k) ** 2 + 8 * sigma**2])
    variance = per_sample_variance(measured(ANTITHETIC, p, (mu, sigma), seed=51))
    assert variance[0] < 1e-6
    np.testing.assert_allclose(variance[1], 16 * sigma**2, rtol=0.10)


def test_antithetic_helps_on_a_monotone_cost():
    # f = exp(x) under N(θ, 1): ∂θ f = exp(θ + ε) increases with ε, so f(θ+ε) and
    # f(θ-ε) are negatively correlated and the pair average varies less: exact per-sample
    # variances 2.95 against 4.67 at θ = 0.
    antithetic = E.truth.per_sample_variance(EXP, E.ESTIMATORS[ANTITHETIC], 0.0)
    plain = E.truth.per_sample_variance(EXP, E.ESTIMATORS["reparameterization"], 0.0)
    assert antithetic[0] < 0.7 * plain[0]
    assert per_sample_variance(measured(ANTITHETIC, EXP, 0.0, seed=52))[0] < 0.8 * plain[0]


def test_antithetic_doubles_the_variance_of_an_even_gradient():
    # seed_fixed: ∂θ exp(θ|ε|) = |ε| exp(θ|ε|) is even in ε, so both halves of a pair are
    # equal and a pair carries one sample's information for two samples' cost.
    p = E.problems.get("seed_fixed")
    antithetic = E.truth.per_sample_variance(p, E.ESTIMATORS[ANTITHETIC], -0.5)
    plain = E.truth.per_sample_variance(p, E.ESTIMATORS["reparameterization"], -0.5)
    np.testing.assert_allclose(antithetic, 2 * plain, rtol=1e-6)


@pytest.mark.parametrize("problem, kwargs, theta", [PARAMS[1], PARAMS[2], PARAMS[3]])
def test_qmc_variance_far_below_iid_pathwise(problem, kwargs, theta):
    # Stratified points: n × variance at n = 100 is a small fraction of the iid per-sample
    # variance for these smooth (or once-kinked, seed_dependence) costs.
    p = E.problems.get(problem, **kwargs)
    plain = E.truth.per_sample_variance(p, E.ESTIMATORS["reparameterization"], theta)
    assert np.all(per_sample_variance(measured(QMC, p, theta, seed=51)) < plain / 10)


@pytest.mark.parametrize("problem, kwargs, theta, factor", [
    pytest.param("gaussian_exp", {"k": 1.0}, (1.0, 1.0), 4, id="gaussian_exp(k=1)-(1.0, 1.0)"),
    pytest.param("seed_dependence", {}, -1.0, 2, id="seed_dependence--1.0"),
])
def test_qmc_variance_falls_faster_than_one_over_n(problem, kwargs, theta, factor):
    # n = 64 and 256 points form randomly shifted lattices: n × variance, constant for iid
    # draws, falls (~n⁻¹ for a bounded smooth integrand in u; much faster for exp(-x²),
    # which vanishes at both ends of u; a kink, as in exp(θ|x|), slows it).
    p = E.problems.get(problem, **kwargs)
    scaled = [per_sample_variance(measured(QMC, p, theta, n_samples=n, seed=53), n)
              for n in (64, 256)]
    assert np.all(scaled[1] < scaled[0] / factor), scaled


def test_qmc_replicates_are_independent():
    # One random shift per replicate: replicates differ and are uncorrelated.
    estimates = measured(QMC, E.problems.get("gaussian_cos", k=2.0), (0.3, 0.5), seed=51)
    assert np.all(estimates.std(axis=0) > 0)
    lag_correlation = np.corrcoef(estimates[:-1, 1], estimates[1:, 1])[0, 1]
    assert abs(lag_correlation) < 5 / np.sqrt(len(estimates))


def test_qmc_has_no_per_sample_variance():
    with pytest.raises(NotImplementedError, match="not a mean of iid samples"):
        E.truth.per_sample_variance(E.problems.get("seed_dependence"), E.ESTIMATORS[QMC], -1.0)


@pytest.mark.parametrize("n_samples, batch_size", [(9, None), (10, 5)])
def test_odd_batch_is_not_applicable(n_samples, batch_size):
    with pytest.raises(E.NotApplicableError,
                       match=rf"{re.escape(E.get_estimator(ANTITHETIC).label)} draws antithetic "
                             rf"pairs .* batch_size must be even, got {batch_size or n_samples}"):
        E.estimate(ANTITHETIC, E.problems.get("seed_dependence"), -1.0, n_samples=n_samples,
                   batch_size=batch_size)


@pytest.mark.parametrize("estimator", [ANTITHETIC, QMC])
def test_non_normal_measure_is_not_applicable(estimator):
    p = E.problems.get("poisson_square")
    with pytest.raises(E.NotApplicableError,
                       match=rf"{re.escape(E.get_estimator(estimator).label)} supports only a "
                             rf"Normal p\(x\|θ\) .* problem "
                             rf"'{re.escape(p.name)}' has a Poisson\."):
        E.estimate(estimator, p, 2.0, n_samples=10)


@pytest.mark.parametrize("estimator", [ANTITHETIC, QMC])
def test_runs_under_xla(estimator):
    p = E.problems.get("gaussian_cos", k=2.0)
    estimates = E.estimate(estimator, p, (0.3, 0.5), n_samples=100, n_replicates=2000, seed=54)
    assert_within_se(estimates, p.true_gradient((0.3, 0.5)))


def test_qmc_quantile_in_float32_matches_scipy():
    """QMC's float32 Φ⁻¹ (a rational approximation on the tail mass min(u, 1 - u))."""
    import scipy.stats

    from estimators import sampling
    from estimators._runtime import tf

    u = np.concatenate([np.linspace(1e-16, 1 - 1e-16, 200_001),
                        [sampling.EDGE, 1e-10, 0.5, 1 - 1e-10, 1 - sampling.EDGE]])
    got = sampling._quantile(tf.constant(u), tf.float32).numpy().astype(np.float64)
    exact = scipy.stats.norm.ppf(u)
    tails = np.abs(exact) > 1
    assert np.max(np.abs(got - exact)[tails] / np.abs(exact[tails])) < 5e-6
    assert np.max(np.abs(got - exact)[~tails]) < 1e-6
    assert np.all(np.sign(got) == np.sign(exact))


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_qmc_shift_mod_1_is_floormod_bit_for_bit(jit):
    """The Cranley–Patterson shift wraps by a select; the same bits as floormod, edges
    included (a sum just below 1, exactly 1, just below 2)."""
    from estimators import sampling

    rng = np.random.default_rng(3)
    below_1 = np.nextafter(1.0, 0.0)
    points = np.concatenate([rng.random(100_000), [0.0, 0.5, below_1, below_1, 0.25]])
    shift = np.concatenate([rng.random(100_000), [0.0, 0.5, 0.0, below_1, 0.75]])
    wrap = tf.function(sampling.shift_mod_1, jit_compile=jit)
    got = wrap(tf.constant(points), tf.constant(shift)).numpy()
    expected = tf.math.floormod(tf.constant(points) + tf.constant(shift), 1.0).numpy()
    np.testing.assert_array_equal(got, expected)
    assert got.min() >= 0.0 and got.max() < 1.0

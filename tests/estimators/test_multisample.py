"""K-sample bounds (IWAE) and the estimators that act on their K samples jointly: VIMCO,
DReG and sticking the landing, against exact answers.

The bounds' truths: enumeration of the K·D binary values (Bernoulli latents) and a
Gauss-Hermite product rule (a Gaussian latent, K ≤ 3), itself checked against the ELBO's
closed form at K = 1. VIMCO's exact moments enumerate too; DReG and STL are measured
against the exact gradient. The relations the papers claim are measured with their
direction: VIMCO below the score function, DReG below the pathwise gradient, STL exact at
the posterior for K = 1 and biased for K > 1, and the signal-to-noise ratio of q's
gradient falling with K for the pathwise gradient and rising for DReG (Rainforth et al.
2018; Tucker et al. 2019).
"""

import math

import numpy as np
import pytest
from scipy import special, stats

import estimators as E
from estimators._runtime import tf
from tests.conftest import assert_within_se, variance_se, variance_z

R = 4000
START = {"mean": 0.0, "log_scale": 0.0}  # q = N(0, 1); the posterior is N(½, ½)
POSTERIOR = {"mean": 0.5, "log_scale": 0.5 * math.log(0.5)}


def test_the_gaussian_bound_at_one_sample_is_the_elbos_closed_form():
    # K = 1: E_q[log N(z; 0, 1) + log N(1; z, 1) - log q(z)] with q = N(m, s²) is
    # -(m² + s²)/2 - ((1 - m)² + s²)/2 - log 2π + ½ log(2π e s²).
    problem = E.problems.get("iwae_gaussian", K=1)
    for m, log_s in ((0.0, 0.0), (0.7, -0.4), (-1.2, 0.3)):
        s2 = math.exp(2 * log_s)
        elbo = -(m**2 + s2) / 2 - ((1 - m) ** 2 + s2) / 2 - math.log(2 * math.pi) \
            + 0.5 * math.log(2 * math.pi * math.e * s2)
        gradient = [-m + (1 - m), -2 * s2 + 1.0]
        truth = problem.truth({"mean": m, "log_scale": log_s})
        assert truth.kind == "closed_form"
        np.testing.assert_allclose(truth.gradient, gradient, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(problem.true_value({"mean": m, "log_scale": log_s}),
                                   elbo, rtol=1e-10)


def test_the_bernoulli_bound_enumerates_a_brute_force_sum():
    # E over the 2^(K·D) joint values of log (1/K) Σ_k p(x, z_k)/q(z_k), in NumPy.
    problem = E.problems.get("iwae_bernoulli", K=2, D=2)
    logits = np.array([0.4, -1.1])
    q1 = 1 / (1 + np.exp(-logits))
    total = 0.0
    for bits in np.ndindex(*(2,) * 4):
        z = np.array(bits, float).reshape(2, 2)
        q = np.prod(np.where(z > 0, q1, 1 - q1), axis=1)
        joint = 0.25 * np.exp(-0.5 * (1.0 - z @ np.array([1.0, -0.5])) ** 2) \
            / math.sqrt(2 * math.pi)
        total += np.prod(q) * np.log(np.mean(joint / q))
    np.testing.assert_allclose(problem.true_value({"logits": logits}), total, rtol=1e-10)
    assert problem.truth({"logits": logits}).kind == "enumeration"


def _vimco_coefficients_in_float64(log_w):
    """L̂ - L̂_{-k} - w̃_k by the K × K matrix of leave-one-out log-weights, in float64."""
    count = log_w.shape[-1]
    others = (log_w.sum(-1, keepdims=True) - log_w) / (count - 1)
    eye = np.eye(count, dtype=bool)
    replaced = np.where(eye, others[..., :, None], log_w[..., None, :])  # [..., K, K]
    bound = special.logsumexp(log_w, axis=-1, keepdims=True)
    return bound - special.logsumexp(replaced, axis=-1) - special.softmax(log_w, axis=-1)


@pytest.mark.parametrize("K", [2, 4, 16, 17, 40], ids=lambda k: f"K={k}")
def test_vimco_coefficients_are_exact_in_float32_when_one_weight_dominates(K):
    # Log-weights spread by 1 to 500 nats (one weight dominating the rest beyond float32's
    # range of exp at 500), ties at the top, rows far from 0 (-1e4 and -1e6 plus N(0, 1):
    # the coefficients are blind to the offset), K over both code paths (slices up to 16,
    # an axis beyond): float32 within 1e-5 of the row's spread of the float64 matrix. The
    # rank-one update S - s_k gives inf here; not centring the rows, errors of 1e-3 and 7e-2.
    from estimators.gradients.multisample import vimco_coefficients

    rng = np.random.default_rng(K)
    rows = [rng.normal(size=(200, K)) * scale for scale in (1.0, 30.0, 500.0)]
    rows += [offset + rng.normal(size=(100, K)) for offset in (-1e4, -1e6)]
    tied = rng.normal(size=(50, K)) * 100.0
    tied[:, 1] = tied[:, 0] = tied.max(axis=1) + 1.0
    log_w = np.concatenate(rows + [tied]).astype(np.float32)
    got = vimco_coefficients(tf.constant(log_w)).numpy()
    expected = _vimco_coefficients_in_float64(log_w.astype(np.float64))
    assert np.isfinite(got).all()
    spread = np.ptp(log_w.astype(np.float64), axis=-1, keepdims=True) + 1.0
    assert (np.abs(got - expected) < 1e-5 * spread).all(), np.abs(got - expected).max()


@pytest.mark.parametrize("K, D", [(2, 2), (3, 2), (4, 1)])
def test_vimco_exact_mean_is_the_gradient_and_measured_moments_match(K, D):
    problem = E.problems.get("iwae_bernoulli", K=K, D=D)
    theta = {"logits": [0.3, -0.5][:D]}
    truth = problem.truth(theta).gradient
    mean, variance = E.get_estimator("vimco").exact_moments(problem, theta)
    np.testing.assert_allclose(mean, truth, rtol=1e-9)
    values = E.estimate("vimco", problem, theta, n_samples=4, n_replicates=R, seed=K)
    assert_within_se(values, truth, float_tol=1e-6)
    z, measured = variance_z(values, variance / 4)
    assert np.all(np.abs(z) < 5), (z, measured, variance / 4)
    # Direction: VIMCO's exact per-sample variance < the score function's, every component.
    _, score = E.get_estimator("score_function").exact_moments(problem, theta)
    assert np.all(variance < score / 5), (variance, score)


@pytest.mark.parametrize("K", [2, 3])
def test_dreg_is_unbiased_and_below_the_pathwise_gradient(K):
    problem = E.problems.get("iwae_gaussian", K=K)
    truth = problem.truth(START).gradient
    dreg = E.estimate("dreg", problem, START, n_samples=4, n_replicates=R, seed=1)
    assert_within_se(dreg, truth, float_tol=1e-6)
    pathwise = E.estimate("reparameterization", problem, START, n_samples=4, n_replicates=R,
                          seed=1)
    assert_within_se(pathwise, truth, float_tol=1e-6)
    # Direction: DReG's variance < the pathwise gradient's, per component (F test, 1e-6).
    ratio = pathwise.var(axis=0, ddof=1) / dreg.var(axis=0, ddof=1)
    assert np.all(ratio > stats.f.ppf(1 - 1e-6, R - 1, R - 1)), ratio


def test_stl_sticks_the_landing_at_one_sample_and_is_biased_beyond():
    one = E.problems.get("iwae_gaussian", K=1)
    values = E.estimate("stl", one, START, n_samples=4, n_replicates=R, seed=2)
    assert_within_se(values, one.truth(START).gradient, float_tol=1e-6)
    # q = the posterior: every log-weight is log p(x), so each STL estimate is 0 exactly
    # (up to float32), where the pathwise gradient of the ELBO still varies.
    at_posterior = E.estimate("stl", one, POSTERIOR, n_samples=1, n_replicates=500, seed=3)
    assert np.abs(at_posterior).max() < 1e-5
    pathwise = E.estimate("reparameterization", one, POSTERIOR, n_samples=1,
                          n_replicates=500, seed=3)
    assert pathwise.std(axis=0).min() > 0.1
    # K = 2: Σ w̃ ∇ℓ without the w̃² correction is biased (by more than 20 SE here).
    two = E.problems.get("iwae_gaussian", K=2)
    biased = E.estimate("stl", two, START, n_samples=4, n_replicates=R, seed=4)
    se = biased.std(axis=0, ddof=1) / math.sqrt(R)
    assert np.all(np.abs(biased.mean(axis=0) - two.truth(START).gradient) > 20 * se)


def _snr(values):
    """|mean| / sd of each component, and its standard error (delta method, normal)."""
    snr = np.abs(values.mean(axis=0)) / values.std(axis=0, ddof=1)
    return snr, np.sqrt((1 + snr**2 / 2) / len(values))


def test_snr_of_qs_gradient_falls_with_K_for_pathwise_and_rises_for_dreg():
    # Rainforth et al. 2018: the pathwise IWAE gradient of q's parameters has SNR
    # O(1/√K); DReG's grows (Tucker et al. 2019). Direction, K = 1 against K = 64, one draw
    # per estimate: pathwise SNR(64) + 5 SE < SNR(1) - 5 SE, DReG the other way, for both
    # components. Measured (mean component): pathwise 0.48 -> 0.04, DReG 0.99 -> 4.1.
    snr = {}
    for K in (1, 64):
        problem = E.problems.get("iwae_gaussian", K=K)
        for label in ("reparameterization", "dreg"):
            snr[label, K] = _snr(E.estimate(label, problem, START, n_samples=1,
                                            n_replicates=R, seed=5, backend="graph"))
    (p1, s1), (p64, s64) = snr["reparameterization", 1], snr["reparameterization", 64]
    assert np.all(p64 + 5 * s64 < p1 - 5 * s1), (p1, p64)
    (d1, t1), (d64, t64) = snr["dreg", 1], snr["dreg", 64]
    assert np.all(d64 - 5 * t64 > d1 + 5 * t1), (d1, d64)


def test_multi_sample_estimators_refuse_what_they_cannot_do():
    toy = E.problems.get("bernoulli_toy")
    with pytest.raises(E.NotApplicableError, match="acts on the K samples of a multi-sample "
                       "bound .* problem 'bernoulli_toy.*' is not one"):
        E.estimate("vimco", toy, 0.0, n_samples=4)
    with pytest.raises(E.NotApplicableError, match="needs a bound of at least 2 samples"):
        E.estimate("vimco", E.problems.get("iwae_gaussian", K=1), START, n_samples=4)
    with pytest.raises(E.NotApplicableError, match="differentiates through samples"):
        E.estimate("dreg", E.problems.get("iwae_bernoulli"), {"logits": 0.0}, n_samples=4)
    with pytest.raises(ValueError, match="argument K must be a positive integer"):
        E.problems.get("iwae_gaussian", K=0)
    with pytest.raises(ValueError, match="argument D must be an integer from 1 to 6"):
        E.problems.get("iwae_bernoulli", D=7)


def test_a_bound_whose_cost_or_measure_disagrees_with_its_multi_sample_is_refused():
    # These estimators read the multi_sample alone: a problem whose cost is not its bound,
    # or whose draws are not K copies of q, would get a silently wrong estimate.
    import dataclasses

    import tensorflow as tf

    good = E.problems.get("iwae_gaussian", K=2)
    wrong_cost = dataclasses.replace(good, name="wrong_cost",
                                     cost=lambda x, t: 2.0 * good.multi_sample.bound(x, t))
    with pytest.raises(E.NotApplicableError, match="its cost is not the bound"):
        E.estimate("dreg", wrong_cost, START, n_samples=4)
    wider = dataclasses.replace(good, name="wider", dist=lambda t: E.measure.tfd.Independent(
        E.measure.tfd.Normal(tf.repeat(t[..., :1], 2, axis=-1),
                             2.0 * tf.repeat(tf.exp(t[..., 1:]), 2, axis=-1)), 1))
    with pytest.raises(E.NotApplicableError, match="the log-density of its draws is not"):
        E.estimate("vimco", wider, START, n_samples=4)
    three = dataclasses.replace(good, name="three", dist=lambda t: E.measure.tfd.Independent(
        E.measure.tfd.Normal(tf.repeat(t[..., :1], 3, axis=-1),
                             tf.repeat(tf.exp(t[..., 1:]), 3, axis=-1)), 1))
    # Draws of 3 values for K·D = 2: the bound cannot even be evaluated, and the problem's
    # own check says so in one sentence before any estimator runs.
    with pytest.raises(ValueError, match=r"^problem 'three': cost\(x, theta\) failed"):
        E.estimate("stl", three, START, n_samples=4)


def test_the_gauss_hermite_truth_matches_scipys_cubature_at_two_samples():
    # K = 2 is where the bound is not a polynomial in the samples: its expectation by the
    # product rule against scipy's adaptive 2-D cubature of the same integrand.
    from scipy import integrate

    problem = E.problems.get("iwae_gaussian", K=2)
    m, s = 0.3, math.exp(-0.2)

    def log_w(z):
        return (-0.5 * z**2 - 0.5 * (1.0 - z) ** 2 - math.log(2 * math.pi)
                + 0.5 * ((z - m) / s) ** 2 + math.log(s) + 0.5 * math.log(2 * math.pi))

    def integrand(a, b):
        density = math.exp(-0.5 * (a * a + b * b)) / (2 * math.pi)
        za, zb = m + s * a, m + s * b
        return density * (np.logaddexp(log_w(za), log_w(zb)) - math.log(2))

    value, _ = integrate.dblquad(integrand, -12, 12, -12, 12, epsabs=1e-12, epsrel=1e-12)
    np.testing.assert_allclose(problem.true_value({"mean": m, "log_scale": -0.2}), value,
                               rtol=1e-9)


def test_vimco_is_unbiased_on_the_gaussian_bound():
    problem = E.problems.get("iwae_gaussian", K=3)
    values = E.estimate("vimco", problem, START, n_samples=4, n_replicates=R, seed=8)
    assert_within_se(values, problem.truth(START).gradient, float_tol=1e-6)


# -- against TensorFlow Probability's own VIMCO and DReG ---------------------------------------

def _tfp_gradients(problem, surrogate_of, start, estimator, count, stopped=False):
    """∇ of the bound in q's parameters from ``tfp.vi.monte_carlo_variational_loss`` (its
    loss is minus the bound), ``count`` single draws of K samples, seeds (r, 17)."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    variables = [tf.Variable(value, dtype=tf.float32) for value in start]
    samples = problem.multi_sample.samples

    @tf.function
    def gradient(seed):
        with tf.GradientTape() as tape:
            extra = {}
            if stopped:  # DReG in TFP needs q with its parameters stopped
                extra["stopped_surrogate_posterior"] = surrogate_of(
                    [tf.stop_gradient(v) for v in variables])
            loss = tfp.vi.monte_carlo_variational_loss(
                problem.multi_sample.log_joint, surrogate_of(variables), sample_size=1,
                importance_sample_size=samples, gradient_estimator=estimator, seed=seed,
                **extra)
        return tf.concat([tf.reshape(-g, [-1]) for g in tape.gradient(loss, variables)], 0)

    return np.array([gradient(tf.constant([r, 17], tf.int32)).numpy()
                     for r in range(count)], np.float64)


def test_vimco_matches_tfps_vimco_on_the_binary_bound():
    # TFP's VIMCO (importance_sample_size = K): its mean within 5 SE of the enumerated
    # gradient and its per-draw variance within 5 SE of our exact VIMCO variance
    # (measured z: 0.4 and 1.5 with 4,000 draws).
    import tensorflow as tf
    import tensorflow_probability as tfp

    problem = E.problems.get("iwae_bernoulli", K=3, D=2)
    logits = np.array([0.3, -0.5], np.float32)
    theirs = _tfp_gradients(problem, lambda v: tfp.distributions.Independent(
        tfp.distributions.Bernoulli(logits=v[0], dtype=tf.float32), 1), [logits],
        tfp.vi.GradientEstimators.VIMCO, 2000)
    assert_within_se(theirs, problem.truth({"logits": logits}).gradient, float_tol=1e-6)
    _, exact = E.get_estimator("vimco").exact_moments(problem, {"logits": logits})
    z, measured = variance_z(theirs, exact)
    assert np.all(np.abs(z) < 5), (z, measured, exact)


def test_dreg_matches_tfps_doubly_reparameterized_estimator():
    # Both measured at one draw of K = 3 samples: equal variances within 5 combined SE
    # (measured 0.065 / 0.055 for TFP, 0.067 / 0.056 here), both unbiased within 5 SE.
    import tensorflow as tf
    import tensorflow_probability as tfp

    problem = E.problems.get("iwae_gaussian", K=3)
    theirs = _tfp_gradients(problem, lambda v: tfp.distributions.Independent(
        tfp.distributions.Normal(v[0], tf.exp(v[1])), 1),
        [np.zeros(1, np.float32), np.zeros(1, np.float32)],
        tfp.vi.GradientEstimators.DOUBLY_REPARAMETERIZED, 2000, stopped=True)
    ours = E.estimate("dreg", problem, START, n_samples=1, n_replicates=2000, seed=3)
    truth = problem.truth(START).gradient
    for values in (theirs, ours):
        assert_within_se(values, truth, float_tol=1e-6)
    (v1, s1), (v2, s2) = variance_se(theirs), variance_se(ours)
    assert np.all(np.abs(v1 - v2) < 5 * np.sqrt(s1**2 + s2**2)), (v1, v2)

"""Every estimator — each identity with each sampling scheme and control variate that
combines with it, presets included — on every built-in problem it applies to, under XLA
and graph: the mean within 5 standard errors of the truth, and the measured variance
within 5 standard errors of the exact one wherever an exact per-sample variance exists.

The standard error of a sample variance comes from the sample's fourth moment
(Var(s²) ≈ (m4 - (R-3)/(R-1) s⁴) / R), so heavy-tailed estimators get the wider
tolerance they need without a relative fudge factor.
"""

import functools
import itertools
import warnings

import numpy as np
import pytest

import estimators as E
from tests.conftest import assert_within_se, variance_z

PROBLEMS = {
    "seed_fixed": ({"mu": 1.0}, -0.5),
    "seed_dependence": ({}, -1.0),
    "gaussian_square": ({"k": 2.0}, (1.0, 1.0)),
    "gaussian_exp": ({"k": 1.0}, (0.5, 0.8)),
    "gaussian_cos": ({"k": 2.0}, (0.3, 0.7)),
    "poisson_square": ({}, 3.0),
    "bernoulli_toy": ({"t": 0.45}, 0.6),
    "gaussian_square_nd": ({"D": 3}, {"mean": 0.5, "std": 1.0}),
    "gaussian_cos_nd": ({"D": 3, "k": 1.5}, {"mean": [0.2, -0.4, 1.0], "std": [0.5, 1.0, 1.5]}),
    # Two one-hot categorical variables of 5 categories (25 states: a set of 20 drawn
    # without replacement fits), f not a sum over them.
    "categorical_mean_power": ({"V": 2, "C": 5, "power": 3.0},
                               {"logits": [0.4, -0.3, 0.0, 1.1, -0.8, 0.2, 0.9, -1.2, 0.5,
                                           0.0]}),
}
N_SAMPLES, BATCH, N_REPLICATES = 20, 10, 2000
GRID_POINTS = 4000  # trapz, dependence: a rule fine enough that its bias is negligible


def labels() -> list[str]:
    """Every valid combination's label (presets are among them)."""
    found = []
    for identity, sampling, control in itertools.product(
            E.IDENTITIES, E.SAMPLINGS, E.CONTROL_VARIATES):
        try:
            label = E.get_estimator(identity, sampling=sampling, control_variate=control).label
        except E.NotApplicableError:
            continue
        found.append(label)
    return found


def problem(name):
    kwargs, _ = PROBLEMS[name]
    return E.problems.get(name, **kwargs)


def applicable(label, name) -> bool:
    _, theta = PROBLEMS[name]
    try:
        E.get_estimator(label).check(problem(name), theta, _sizes(label)[1])
    except E.NotApplicableError:
        return False
    return not _biased_without_exact_mean(label, name)


def _biased_without_exact_mean(label, name) -> bool:
    """A relaxation whose biased mean has no exact form on this problem (Gumbel noise on a
    categorical): nothing to compare its mean with here; tests/estimators/
    test_categorical.py compares Gumbel-Rao with straight-through, whose mean it shares."""
    estimator = E.get_estimator(label)
    if not estimator.declared_biased:
        return False
    try:
        estimator.exact_moments(problem(name), PROBLEMS[name][1])
    except NotImplementedError:
        return True
    return False


def _sizes(label):
    estimator = E.get_estimator(label)
    if estimator.uses_window:
        return GRID_POINTS, GRID_POINTS
    return N_SAMPLES, BATCH if estimator.min_batch > 1 or estimator.control_variate != "none" \
        else N_SAMPLES


CASES = [pytest.param(label, name, id=f"{label}-{name}")
         for label in labels() for name in PROBLEMS if applicable(label, name)]


@functools.lru_cache(maxsize=None)
def estimates(label, name, backend):
    _, theta = PROBLEMS[name]
    n, batch = _sizes(label)
    replicates = 200 if E.get_estimator(label).uses_window else N_REPLICATES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", E.BiasedEstimatorWarning)
        return E.estimate(label, problem(name), theta, n_samples=n, n_replicates=replicates,
                          batch_size=batch, seed=2026, backend=backend)


@functools.lru_cache(maxsize=None)
def exact(label, name):
    """(mean, per-sample variance) of the estimator, or None where there is no exact form."""
    _, theta = PROBLEMS[name]
    try:
        return E.truth.single_sample_moments(problem(name), E.get_estimator(label), theta,
                                             batch_size=_sizes(label)[1])
    except NotImplementedError:
        return None


def cost_ignores_theta(p, theta) -> bool:
    """Whether ∇θ f(x, θ) = 0 at a few draws (the built-in Gaussian costs)."""
    import tensorflow as tf

    vector = tf.constant(p.theta_vector(theta))
    dist = p.measure(vector)
    x = tf.stop_gradient(dist.sample(8, seed=(1, 2)))
    with tf.GradientTape() as tape:
        tape.watch(vector)
        values = tf.reduce_sum(p.cost_values(dist, x, vector[tf.newaxis]))
    gradient = tape.gradient(values, vector)
    return gradient is None or not np.any(gradient.numpy())


def expected_mean(label, name):
    """The truth for unbiased estimators (and the rules, whose bias is negligible at
    GRID_POINTS); E_p[∇θ f] for naive_mc, whatever its sampling (every draw has law p);
    a relaxation's own exact (biased) mean."""
    estimator = E.get_estimator(label)
    p, (_, theta) = problem(name), PROBLEMS[name]
    if estimator.declared_biased:
        return estimator.exact_moments(p, theta)[0]
    if estimator.unbiased or estimator.deterministic or estimator.uses_window:
        return p.true_gradient(theta)
    if not p.measure_depends_on_theta(theta):
        return p.true_gradient(theta)
    if cost_ignores_theta(p, theta):
        return np.zeros(p.dim)
    return E.truth.single_sample_moments(p, E.get_estimator("naive_mc"), theta)[0]


@pytest.mark.parametrize("backend", ["xla", "graph"])
@pytest.mark.parametrize("label, name", CASES)
def test_mean_within_5_se(label, name, backend):
    values = estimates(label, name, backend)
    assert values.shape == (len(values), problem(name).dim) and np.all(np.isfinite(values))
    assert_within_se(values, expected_mean(label, name),
                     float_tol=1e-3 if E.get_estimator(label).uses_window else 1e-5)


@pytest.mark.parametrize("backend", ["xla", "graph"])
@pytest.mark.parametrize("label, name", [case for case in CASES
                                         if not E.get_estimator(case.values[0]).deterministic])
def test_variance_within_5_se_of_exact(label, name, backend):
    moments = exact(label, name)
    if moments is None:
        with pytest.raises(NotImplementedError):  # the reason is given, not a wrong number
            E.truth.per_sample_variance(problem(name), E.get_estimator(label),
                                        PROBLEMS[name][1], batch_size=_sizes(label)[1])
        return
    values = estimates(label, name, backend)
    variance = moments[1] / _sizes(label)[0]
    scale = np.abs(problem(name).true_gradient(PROBLEMS[name][1])).max() + variance.max()
    zero = variance <= 1e-12 * scale**2  # exactly zero (e.g. delta on a quadratic cost)
    z, sample = variance_z(values[:, ~zero], variance[~zero])
    assert np.all(values[:, zero].var(axis=0) <= 1e-8 * scale**2), (values.var(axis=0), variance)
    assert np.all(np.abs(z) < 5), f"z = {z}, measured {sample}, exact {variance[~zero]}"


def _needs_a_bound(identity: str) -> bool:
    """Whether an identity acts on the K samples of a multi-sample bound (VIMCO, DReG):
    it applies to none of these problems, and tests/estimators/test_multisample.py
    measures it on the bounds against their exact gradients."""
    try:
        E.get_estimator(identity).check(problem("seed_dependence"), -1.0, 10)
    except E.NotApplicableError as error:
        return "multi-sample bound" in str(error)
    return False


def test_the_matrix_covers_every_identity_option_and_problem():
    covered = {E.get_estimator(case.values[0]) for case in CASES}
    missing = set(E.IDENTITIES) - {e.identity.name for e in covered}
    assert missing == {name for name in E.IDENTITIES if _needs_a_bound(name)} | {"gumbel_rao"}
    assert {e.sampling for e in covered} == set(E.SAMPLINGS)
    assert {e.control_variate for e in covered} == set(E.CONTROL_VARIATES)
    assert {case.values[1] for case in CASES} == set(PROBLEMS)
    assert {E.ESTIMATORS[name].label for name in E.PRESETS} <= {e.label for e in covered}

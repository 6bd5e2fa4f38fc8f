"""Gradients of log-densities in shape parameters at exactly 1 (Beta(1, b), Gamma(1, r),
Dirichlet with a 1): TensorFlow's xlogy gradient would drop the log x term there, which
made score-function estimates and quadrature truths wrong together (so the truth's
Monte Carlo check passed). Setting 4 of :mod:`estimators._runtime` fixes it."""

import numpy as np
import pytest
import scipy.special as sp

import estimators as E
from estimators._runtime import tf, tfd

X = 0.3
VECTOR_X = [0.2, 0.5, 0.3]

# (distribution of the parameter c, point, exact ∂/∂c log p)
CASES = {
    "beta-concentration1": (lambda c: tfd.Beta(c, tf.constant(2.0, c.dtype)), X,
                            lambda c: np.log(X) - sp.digamma(c) + sp.digamma(c + 2.0)),
    "beta-concentration0": (lambda c: tfd.Beta(tf.constant(2.0, c.dtype), c), X,
                            lambda c: np.log1p(-X) - sp.digamma(c) + sp.digamma(c + 2.0)),
    "gamma": (lambda c: tfd.Gamma(c, tf.constant(1.5, c.dtype)), X,
              lambda c: np.log(1.5) + np.log(X) - sp.digamma(c)),
    "dirichlet": (lambda c: tfd.Dirichlet(tf.stack([c, tf.constant(2.0, c.dtype),
                                                     tf.constant(0.5, c.dtype)])), VECTOR_X,
                  lambda c: np.log(VECTOR_X[0]) - sp.digamma(c) + sp.digamma(c + 2.5)),
}


@pytest.mark.parametrize("backend", ["eager", "graph", "xla"])
@pytest.mark.parametrize("c", [1.0, 2.5])
@pytest.mark.parametrize("case", list(CASES))
def test_score_of_a_shape_parameter(case, c, backend):
    make, x, exact = CASES[case]

    def score(c):
        with tf.GradientTape() as tape:
            tape.watch(c)
            log_prob = make(c).log_prob(tf.constant(x, tf.float64))
        return tape.gradient(log_prob, c)

    if backend != "eager":
        score = tf.function(score, jit_compile=backend == "xla")
    assert score(tf.constant(c, tf.float64)).numpy() == pytest.approx(exact(c), rel=1e-9)


def test_gradients_at_the_edge_of_the_support_stay_finite():
    """x = 0 under Beta(1, 1): log x = -inf, so ∂/∂c there is left at TensorFlow's 0."""
    c = tf.constant(1.0, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(c)
        log_prob = tfd.Beta(c, c).log_prob(tf.constant([0.0, 1.0], tf.float64))
    assert np.isfinite(tape.gradient(log_prob, c).numpy())


def _beta_problem():
    """f = x² under Beta(1 + θ, 2): E f = a(a+1) / ((a+2)(a+3)), a = 1 + θ, so at θ = 0
    ∇θ E f = (3·3·4 - 1·2·7) / 12² = 22/144."""
    return E.Problem(name="beta_square", dist=lambda t: tfd.Beta(1.0 + t, 2.0),
                     cost=lambda x, t: x**2)


def test_quadrature_truth_under_beta_one():
    reference = _beta_problem().truth(0.0)
    assert reference.kind == "quadrature"
    assert reference.gradient[0] == pytest.approx(22 / 144, rel=1e-7)


def test_score_function_is_unbiased_under_beta_one():
    estimates = E.estimate("score_function", _beta_problem(), theta=0.0, n_samples=1000,
                           n_replicates=400, seed=3)[:, 0]
    se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - 22 / 144) < 5 * se

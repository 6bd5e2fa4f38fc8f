"""The JAX versions behind the figures' JAX column compute the same estimators as gradvar:
the same mean (the true gradient) and the same variance, so timing them side by side
compares like with like. Needs the optional ``compare`` extra; skipped without it."""

import numpy as np
import pytest

import estimators as E
from bench.asv import jax_reference, workloads

pytest.importorskip("jax", reason="JAX is the optional `compare` extra")

N = R = 1000


@pytest.mark.parametrize("estimator", jax_reference.ESTIMATORS)
def test_jax_version_is_the_same_estimator(estimator):
    jax_estimates = jax_reference.core(estimator, N, R)()  # [R]
    ours = workloads.core(estimator, N, R)()[:, 0]  # [R]
    truth = E.problems.get(workloads.PROBLEM).true_gradient(workloads.THETA)[0]
    for estimates in (jax_estimates, ours):
        se = estimates.std(ddof=1) / np.sqrt(R)
        assert abs(estimates.mean() - truth) < 5 * se
    # Equal variances: the ratio of two sample variances of R draws has sd ≈ √(4/R)
    # for near-normal estimates (means of 1,000 draws); 5 of those either way.
    ratio = jax_estimates.var(ddof=1) / ours.var(ddof=1)
    assert abs(np.log(ratio)) < 5 * np.sqrt(4 / R)


def test_unwritten_estimators_and_missing_jax_are_skips():
    with pytest.raises(NotImplementedError, match="no JAX version of 'trapz'"):
        jax_reference.core("trapz", N, R)


def test_jax_alone_times_the_jax_version_in_a_fresh_process():
    from bench.asv import figures

    seconds = figures.jax_alone("score_function", rounds=2)
    assert 0 < seconds < 10

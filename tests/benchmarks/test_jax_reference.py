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


def test_the_jax_vae_step_takes_disarms_unbiased_estimate():
    """The JAX DisARM of the VAE benchmark (bench.asv.figures, section vae) against the exact
    gradient of a small nonlinear VAE, 20,000 estimates: every component within 5 SE. θ is
    moved off the Glorot start, whose zero biases put the decoder's code-0 pre-activations
    on LeakyReLU's kink, where TensorFlow and JAX take different one-sided derivatives."""
    import jax
    import jax.numpy as jnp

    from estimators.problems import vae

    problem = E.problems.get("bernoulli_vae", latents=6, decoder="nonlinear", batch=10,
                             hidden=20)
    rng = np.random.default_rng(0)
    theta = {name: value + 0.1 * rng.standard_normal(value.shape)
             for name, value in vae.initial_theta(problem).items()}
    exact = problem.true_gradient(theta)
    gradient = jax.jit(jax.vmap(jax_reference.vae_disarm_gradient(problem, n_samples=1),
                                in_axes=(None, None, 0)))
    x = jnp.asarray(problem.minibatches.read("float32").numpy())
    estimates = gradient({name: jnp.asarray(value, jnp.float32) for name, value in theta.items()},
                         x, jax.random.split(jax.random.key(1), 20_000))
    flat = np.concatenate([np.asarray(estimates[name], np.float64).reshape(20_000, -1)
                           for name in problem.params], axis=1)
    se = flat.std(axis=0, ddof=1) / np.sqrt(len(flat))
    assert np.all(np.abs(flat.mean(axis=0) - exact) <= 5 * se + 1e-6)


def test_the_vae_step_workloads_run():
    ours, theirs = workloads.vae_steps("linear", latents=8), \
        jax_reference.vae_disarm_steps("linear", latents=8)
    for run in (ours, theirs):
        run()
        run()

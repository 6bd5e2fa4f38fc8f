"""The same estimators written in JAX, for the side-by-side column of ``bench.asv.figures``.

A user who doubts a TensorFlow benchmark writes the estimator in JAX: ``jit(grad(...))``
of a surrogate on the problem the core is timed on (``seed_dependence``, f = exp(θ|x|),
p = N(θ, 1), θ = -1), R = 1,000 replicates at once through a θ vector ``[R]`` (the
gradient of the summed surrogates is the R per-replicate estimates), float32 and JAX's
default random bit generator, as written by someone who knows JAX but does not tune it.
Both surrogates follow Mohamed et al. 2020 (JMLR), §4 and §5:

* reparameterization: x = θ + ε, ``mean_n f(x, θ)``;
* score function: x cut from θ, ``mean_n stop_gradient(f(x, θ)) · log p(x | θ) + f(x, θ)``
  (the second term carries ∂f/∂θ, as f depends on θ directly).

JAX is an optional extra (``pip install -e .[compare]``); :func:`available` says whether
it is installed, and the builders raise ``NotImplementedError`` (asv's "skip") when not.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from bench.asv import workloads

ESTIMATORS = ("reparameterization", "score_function")


def available() -> bool:
    """Whether JAX is installed (the ``compare`` extra)."""
    return importlib.util.find_spec("jax") is not None


def version() -> str | None:
    if not available():
        return None
    import jax

    return jax.__version__


def core(estimator: str, n_samples: int, n_replicates: int):
    """R estimates from one call of a jitted JAX gradient: ``() -> [R]`` (NumPy, so the
    device-to-host copy is timed as in ``workloads.core``).

    Raises:
      NotImplementedError: JAX is not installed, or no JAX version of ``estimator``.
    """
    if not available():
        raise NotImplementedError("JAX is not installed (pip install -e .[compare])")
    if estimator not in ESTIMATORS:
        raise NotImplementedError(f"no JAX version of {estimator!r}; written: {ESTIMATORS}")
    import jax
    import jax.numpy as jnp

    def cost(x, theta):
        return jnp.exp(theta * jnp.abs(x))

    def reparameterization(theta, key):  # theta [R]
        x = theta + jax.random.normal(key, (n_samples, n_replicates))  # [n, R]
        return jnp.sum(jnp.mean(cost(x, theta), axis=0))

    def score_function(theta, key):
        x = jax.lax.stop_gradient(theta) + jax.random.normal(key, (n_samples, n_replicates))
        log_prob = -0.5 * (x - theta) ** 2  # N(θ, 1) up to a constant in θ
        f = cost(x, theta)  # [n, R]
        return jnp.sum(jnp.mean(jax.lax.stop_gradient(f) * log_prob + f, axis=0))

    surrogate = {"reparameterization": reparameterization,
                 "score_function": score_function}[estimator]
    gradient = jax.jit(jax.grad(surrogate))
    theta = jnp.full((n_replicates,), workloads.THETA, jnp.float32)
    key = jax.random.key(workloads.SEED)

    def run():
        return np.asarray(gradient(theta, key))

    return run

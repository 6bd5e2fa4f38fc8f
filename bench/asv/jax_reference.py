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


def vae_disarm_steps(decoder: str, latents: int = 64, n_samples: int = 2, batch: int = 50):
    """``workloads.VAE_STEPS_PER_CALL`` training steps of the digits VAE
    (``bernoulli_vae``) in JAX, as gradvar's training runs take them: the step's minibatch
    in, :func:`vae_disarm_gradient`, then an Adam update (lr 1e-3): ``() -> None``; θ and
    Adam's moments stay on the device between calls, float32, ``jit`` of the whole step
    (dispatched asynchronously; the call waits for the last).

    Raises:
      NotImplementedError: JAX is not installed.
    """
    if not available():
        raise NotImplementedError("JAX is not installed (pip install -e .[compare])")
    import jax
    import jax.numpy as jnp

    import estimators as E
    from estimators.problems import vae

    problem = E.problems.get("bernoulli_vae", latents=latents, decoder=decoder, batch=batch)
    theta = {name: jnp.asarray(value, jnp.float32)
             for name, value in vae.initial_theta(problem).items()}
    gradient_of = vae_disarm_gradient(problem, n_samples)
    minibatches = problem.minibatches

    @jax.jit
    def step(params, first, second, count, x, key):
        gradient = gradient_of(params, x, key)  # ascent: the ELBO is maximized
        count = count + 1
        first = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, first, gradient)
        second = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, second, gradient)
        scale = 1e-3 * jnp.sqrt(1 - 0.999 ** count) / (1 - 0.9 ** count)
        params = jax.tree.map(lambda p, m, v: p + scale * m / (jnp.sqrt(v) + 1e-8), params,
                              first, second)
        return params, first, second, count

    zeros = jax.tree.map(jnp.zeros_like, theta)
    state = {"params": theta, "first": zeros, "second": zeros, "count": jnp.int32(0),
             "step": 0, "key": jax.random.key(workloads.SEED)}

    def run():  # as many steps a call as workloads.vae_steps
        for _ in range(workloads.VAE_STEPS_PER_CALL):
            index = minibatches.for_step(workloads.SEED, state["step"])
            x = jnp.asarray(minibatches.rows[index * batch:(index + 1) * batch], jnp.float32)
            key = jax.random.fold_in(state["key"], state["step"])
            params, first, second, count = step(state["params"], state["first"],
                                                state["second"], state["count"], x, key)
            state.update(params=params, first=first, second=second, count=count,
                         step=state["step"] + 1)
        jax.block_until_ready(state["params"])

    return run


def vae_disarm_gradient(problem, n_samples: int):
    """DisARM's estimate of the gradient of a ``bernoulli_vae``'s minibatch ELBO in JAX,
    ``(params {block: [size]}, x [M, P], key) -> {block: [size]}``, from ``n_samples``
    antithetic pairs (Dong et al. 2020): on each latent's logit α, ½ (f(b) − f(b̃))
    (−1)^b̃ 1[b ≠ b̃] σ(|α|), and ½ ∇θ (f(b) + f(b̃)) through the decoder, prior and
    log q, as a surrogate whose ``jax.grad`` is the estimate."""
    import jax
    import jax.numpy as jnp

    from estimators.problems import vae

    layers = vae._LAYERS[problem]

    def network(params, side, inputs):
        names = [name for name in layers if name.startswith(f"{side}_w")]
        values = inputs
        for index, name in enumerate(names):
            fan_in, fan_out = layers[name]
            values = values @ params[name].reshape(fan_in, fan_out) \
                + params[name.replace("_w", "_b")]
            if index < len(names) - 1:
                values = jnp.maximum(values, vae.LEAKY_SLOPE * values)
        return values

    def log_bernoulli(values, logits):
        return jnp.sum(values * logits - jax.nn.softplus(logits), axis=-1)

    def elbo(params, x, codes):  # codes [n, M, D] -> [n]: the minibatch's mean integrand
        return jnp.mean(log_bernoulli(x, network(params, "dec", codes))
                        + log_bernoulli(codes, params["prior_logits"])
                        - log_bernoulli(codes, network(params, "enc", x)), axis=-1)

    def surrogate(params, x, key):
        logits = network(params, "enc", x)  # [M, D]
        u = jax.random.uniform(key, (n_samples,) + logits.shape)
        probs = jax.lax.stop_gradient(jax.nn.sigmoid(logits))
        b = (u < probs).astype(logits.dtype)
        flipped = (1.0 - u < probs).astype(logits.dtype)
        f, f_flipped = elbo(params, x, b), elbo(params, x, flipped)  # [n]
        weight = 0.5 * (f - f_flipped)[:, None, None] * jnp.where(flipped > 0, -1.0, 1.0) \
            * (b != flipped) * jax.nn.sigmoid(jnp.abs(jax.lax.stop_gradient(logits)))
        return jnp.mean(jnp.sum(jax.lax.stop_gradient(weight) * logits, axis=(-2, -1))
                        + 0.5 * (f + f_flipped))

    return jax.grad(surrogate)

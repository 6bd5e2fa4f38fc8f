"""A variational autoencoder with categorical latents on binary images (issue 28): the
benchmark of the categorical estimators (ARSM, IndeCateR, ReinMax's 8 × 4 on MNIST).

``categorical_vae(data, variables=V, categories=C, decoder, batch=M, batch_index)``: for the
minibatch x_1..x_M (:mod:`.images`), an amortized encoder q_θ(z|x) = Π_v Categorical(z_v;
softmax(e_θ(x)_v)) over V variables of C categories, a decoder p_θ(x|z) = Π_p
Bernoulli(x_p; σ(g_θ(onehot(z))_p)) reading the V one-hot vectors side by side (V·C
inputs), and a learned prior p_θ(z) = Π_v Categorical(z_v; softmax(π_v)). The draw is the
M·V category indices side by side (``tfd.Independent(tfd.Categorical)``, event [M·V]) and

    f(z, θ) = (1/M) Σ_m [log p_θ(x_m | z_m) + log p_θ(z_m) − log q_θ(z_m | x_m)],

the ELBO's integrand. θ's blocks as :mod:`.vae`'s (``enc_*``, ``dec_*``, ``prior_logits``
of V·C logits); the layers the same, with V·C logits out of the encoder and into the
decoder.

Truth: for C^V ≤ ``EXACT_MAX_CODES`` (ReinMax's 8 × 4 is 65,536) the ELBO is summed exactly
over the C^V codes of each image in matrix products, its gradient by autodiff
(``closed_form``); beyond, a Monte Carlo reference (score function), labelled. Minibatches,
``start`` and the logged ``train_elbo`` and ``test_bound`` as :mod:`.vae`'s.

Which estimators apply: with ``draws="indices"`` (the default) those for category indices,
the score function and its control variates (RLOO: ``score_function(control_variate=loo)``)
and IndeCateR; with ``draws="one_hot"`` also the relaxations, straight-through, ReinMax and
Gumbel-Rao, which differentiate f through relaxed one-hot codes (the decoder reads them as
it reads the one-hot codes), and ARSM. REBAR and RELAX take one variable; the estimators
that sample the joint of the M·V variables (Rao-Blackwellized SG, the unordered set
estimator) apply only while C^(M·V) ≤ 4,096 (a toy minibatch).

>>> import estimators as E
>>> p = E.problems.get("categorical_vae", variables=3, categories=4, batch=5)
>>> p.params["enc_w"], p.params["prior_logits"], p.truth("start").kind
(768, 12, 'closed_form')
"""

from __future__ import annotations

import itertools

import numpy as np

from estimators._runtime import RNG_ALG, tf, tfd
from estimators.problem import Problem
from estimators.problems import label, register, vae

DRAWS = ("indices", "one_hot")
"""How the latents are drawn: category indices (``tfd.Categorical``, event [M·V]) or
one-hot vectors (``tfd.OneHotCategorical``, event [M·V, C]) that the relaxed estimators
(ReinMax, Gumbel-Rao, straight-through, Gumbel-softmax) differentiate through."""

EXACT_MAX_CODES = 2**16
"""Largest C^V whose ELBO is summed exactly over the codes of each image."""


def _log_softmax_terms(logits, variables: int, categories: int):
    """``[..., V·C]`` logits -> ``[..., V·C]`` log-probabilities, each variable's C
    normalized."""
    shape = tf.shape(logits)
    grouped = tf.reshape(logits, tf.concat([shape[:-1], [variables, categories]], 0))
    return tf.reshape(tf.nn.log_softmax(grouped, axis=-1), shape)


@register("categorical_vae",
          "VAE with V categorical latents of C categories on binary images: f = the ELBO's "
          "integrand on a minibatch, θ = encoder, decoder and prior (issue 28)")
def categorical_vae(data: str = "digits", variables: int = 8, categories: int = 4,
                    decoder: str = "linear", batch: int = 50, batch_index: int = 0,
                    binarize: str = "threshold", hidden: int = 200,
                    test_samples: int = 100, draws: str = "indices") -> Problem:
    """The minibatch ELBO of a categorical-latent VAE (module docstring)."""
    where = "problem 'categorical_vae'"
    if draws not in DRAWS:
        raise ValueError(f"{where} argument draws must be one of "
                         f"{', '.join(map(repr, DRAWS))}, got {draws!r}.")
    variables = vae.whole(where, "variables", variables)
    categories = vae.whole(where, "categories", categories, least=2)
    if decoder not in vae.DECODERS:
        raise ValueError(f"{where} argument decoder must be one of "
                         f"{', '.join(map(repr, vae.DECODERS))}, got {decoder!r}.")
    width = variables * categories
    images = vae.training_data(where, data, batch, batch_index, binarize, hidden, test_samples)
    minibatches, pixels = images.minibatches, images.pixels
    batch = minibatches.size
    layers = vae._layer_sizes(pixels, width, decoder, images.hidden)

    def log_q(theta, x, codes):  # codes [..., M, V·C] one-hot -> [..., M]
        terms = _log_softmax_terms(vae._network(theta, "enc", layers, x), variables,
                                   categories)
        return tf.reduce_sum(codes * terms, axis=-1)

    def log_weights(theta, x, codes):  # log p(x, z) − log q(z | x): [..., M]
        prior = _log_softmax_terms(theta["prior_logits"][..., None, :], variables,
                                   categories)
        likelihood = vae._bernoulli_log_prob(x, vae._network(theta, "dec", layers, codes))
        return likelihood + tf.reduce_sum(codes * prior, axis=-1) - log_q(theta, x, codes)

    def dist(theta):
        x = minibatches.read(theta["prior_logits"].dtype)
        logits = vae._network(theta, "enc", layers, x)  # [*batch, M, V·C]
        flat = tf.reshape(logits, tf.concat([tf.shape(logits)[:-2],
                                             [batch * variables, categories]], 0))
        if draws == "one_hot":
            return tfd.Independent(tfd.OneHotCategorical(logits=flat, dtype=flat.dtype), 1)
        return tfd.Independent(tfd.Categorical(logits=flat, dtype=flat.dtype), 1)

    def one_hot(z, dtype):  # z [..., M·V] indices (or [..., M·V, C] one-hot) -> [..., M, V·C]
        if draws == "one_hot":
            return tf.reshape(z, tf.concat([tf.shape(z)[:-2], [batch, width]], 0))
        codes = tf.one_hot(tf.cast(z, tf.int32), categories, dtype=dtype)
        return tf.reshape(codes, tf.concat([tf.shape(z)[:-1], [batch, width]], 0))

    def cost(z, theta):  # z [n, *batch, M·V] -> [n, *batch]
        x = minibatches.read(z.dtype)
        return tf.reduce_mean(log_weights(theta, x, one_hot(z, z.dtype)), axis=-1)

    def draw(theta, x, seed):  # codes of q(z|x) [N, V·C], one per image, keyed (Gumbel-max)
        logits = vae._network(theta, "enc", layers, x)
        grouped = tf.reshape(logits, [-1, variables, categories])
        uniform = tf.random.stateless_uniform(tf.shape(grouped), seed, minval=1e-12,
                                              maxval=1.0, dtype=x.dtype, alg=RNG_ALG)
        z = tf.argmax(grouped - tf.math.log(-tf.math.log(uniform)), axis=-1)
        return tf.reshape(tf.one_hot(z, categories, dtype=x.dtype), tf.shape(logits))

    exact_value = None
    if categories**variables <= EXACT_MAX_CODES:
        exact_value = _exact_elbo(minibatches, variables, categories, layers)
    arguments = {"data": data, "variables": variables, "categories": categories,
                 "decoder": decoder, "batch": batch, **images.extra(decoder),
                 **({"draws": draws} if draws != "indices" else {})}
    problem = Problem(
        name=label("categorical_vae", arguments), dist=dist, cost=cost,
        params={name: (fan_in or 1) * fan_out for name, (fan_in, fan_out) in layers.items()},
        exact_value=exact_value, reference="score_function", reference_samples=100_000,
        start=lambda: vae._glorot(layers, 0), minibatches=minibatches,
        diagnostics=vae.bounds(images, draw, log_weights),
        description=f"categorical VAE, {variables} × {categories}, {decoder}, on {batch} "
                    f"{data} images ({pixels} pixels): f = the ELBO's integrand")
    vae._LAYERS[problem] = layers
    return problem


def _exact_elbo(minibatches, variables: int, categories: int, layers: dict):
    """E_q[f] summed over the C^V codes of each image, in TensorFlow ops."""
    indices = np.array(list(itertools.product(range(categories), repeat=variables)))
    codes = np.eye(categories)[indices].reshape(len(indices), -1)  # [C^V, V·C] one-hot

    def exact_value(theta):
        dtype = theta["prior_logits"].dtype
        z = tf.constant(codes, dtype)  # [C^V, V·C]
        x = minibatches.read(dtype)  # [M, P]
        decoded = vae._network(theta, "dec", layers, z)  # [C^V, P]
        likelihood = tf.linalg.matmul(x, decoded, transpose_b=True) \
            - tf.reduce_sum(tf.math.softplus(decoded), axis=-1)  # [M, C^V]
        prior = tf.linalg.matvec(z, _log_softmax_terms(theta["prior_logits"], variables,
                                                       categories))  # [C^V]
        encoded = _log_softmax_terms(vae._network(theta, "enc", layers, x), variables,
                                     categories)  # [M, V·C]
        log_q = tf.linalg.matmul(encoded, z, transpose_b=True)  # [M, C^V]
        elbo = tf.reduce_sum(tf.exp(log_q) * (likelihood + prior - log_q), axis=-1)  # [M]
        return tf.reduce_mean(elbo)

    return exact_value

"""The discrete-estimator papers' benchmark as a problem: a variational autoencoder with
Bernoulli latents on binary images (issue 28).

``bernoulli_vae(data, latents=D, decoder="linear"|"nonlinear", batch=M, batch_index)``:
for the minibatch x_1..x_M (rows ``batch_index·M`` onwards of the training images,
:mod:`.images`), an amortized encoder q_θ(b|x) = Π_d Bernoulli(b_d; σ(e_θ(x)_d)), a decoder
p_θ(x|b) = Π_p Bernoulli(x_p; σ(g_θ(b)_p)) and a learned prior p_θ(b) = Π_d Bernoulli(b_d;
σ(π_d)). The draw is the M latent codes side by side (one event of M·D bits) and

    f(b, θ) = (1/M) Σ_m [log p_θ(x_m | b_m) + log p_θ(b_m) − log q_θ(b_m | x_m)],

the ELBO's integrand, so E_q[f] is the minibatch's mean ELBO. θ holds every weight and bias
as a block: the encoder's (``enc_*``, through which the estimators' noise flows), the
decoder's (``dec_*``) and the prior's logits (``prior_logits``), whose gradients every
estimator takes by the pathwise route (they enter f only). Layers: ``"linear"`` is one
affine map each way (P → D, D → P); ``"nonlinear"`` two hidden layers of ``hidden`` units
with LeakyReLU(0.3) each way (the DisARM paper's 784-200-200-D on MNIST).

Truth: for D ≤ ``EXACT_MAX_LATENTS`` the ELBO is summed exactly over the 2^D codes of each
image, in matrix products (log-likelihoods as x·g(b) − Σ softplus(g(b)), no [M, 2^D, P]
tensor), and its gradient is autodiff of that sum (reported as ``closed_form``, the
problem's ``exact_value``); beyond, a Monte Carlo reference (score function), labelled.
The truth is for the problem's own minibatch, which is its ``minibatches``' home
(:mod:`estimators.minibatches`); a training run moves it to a fresh minibatch at every
update (with ``binarize="dynamic"``, drawn afresh from the grey levels each time).

Logged along training (the problem's ``diagnostics``, fixed keyed draws): ``train_elbo``,
the ELBO over every training image (``TRAIN_DRAWS`` codes each), and ``test_bound``, the
K-sample bound log (1/K) Σ_k p(x, b_k)/q(b_k|x) over the test images, K = ``test_samples``.

:func:`initial_theta` gives the usual starting point: Glorot-uniform weights from a seed,
zero biases and prior logits; the problem's ``start`` (θ = ``"start"``, in grids too) is it
at seed 0.

>>> import estimators as E
>>> from estimators.problems import vae
>>> p = E.problems.get("bernoulli_vae", latents=4, batch=5)
>>> p.params["enc_w"], p.params["dec_w"], p.truth(vae.initial_theta(p)).kind
(256, 256, 'closed_form')
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import weakref

import numpy as np

from estimators._runtime import tf, tfd
from estimators.problem import Problem
from estimators.problems import label, register
from estimators.problems.datasets import DataError
from estimators._runtime import RNG_ALG
from estimators.minibatches import Minibatches
from estimators.problems.images import binary_images, grey_images

EXACT_MAX_LATENTS = 16
"""Largest D whose ELBO is summed exactly over the 2^D codes of each image."""
DECODERS = ("linear", "nonlinear")
TEST_SAMPLES = 100
"""K of the logged test bound (the papers' K-sample bound on held-out images)."""
TRAIN_DRAWS = 4
"""Codes per training image behind the logged training-set ELBO."""
LEAKY_SLOPE = 0.3

_LAYERS: "weakref.WeakKeyDictionary[Problem, dict]" = weakref.WeakKeyDictionary()


def _layer_sizes(pixels: int, latents: int, decoder: str, hidden: int) -> dict:
    """Block name -> (fan_in, fan_out) of each weight, and (0, size) of each bias."""
    widths = {"linear": [pixels, latents],
              "nonlinear": [pixels, hidden, hidden, latents]}[decoder]
    layers = {}
    for side, sizes in (("enc", widths), ("dec", widths[::-1])):
        count = len(sizes) - 1
        for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            suffix = "" if count == 1 else str(index)
            layers[f"{side}_w{suffix}"] = (fan_in, fan_out)
            layers[f"{side}_b{suffix}"] = (0, fan_out)
    layers["prior_logits"] = (0, latents)
    return layers


def _network(theta, side: str, layers: dict, inputs):
    """The encoder's or decoder's logits for ``inputs [..., fan_in]``: θ's blocks
    ``[*batch, size]`` (or ``[size]``) broadcast against the inputs' leading axes, which
    end in θ's batch axes followed by one axis of rows."""
    names = [name for name in layers if name.startswith(f"{side}_w")]
    values = inputs
    for index, name in enumerate(names):
        fan_in, fan_out = layers[name]
        weights = theta[name]
        weights = tf.reshape(weights, tf.concat([tf.shape(weights)[:-1], [fan_in, fan_out]], 0))
        bias = theta[name.replace("_w", "_b")][..., None, :]  # [*batch, 1, out]
        values = tf.linalg.matmul(values, weights) + bias
        if index < len(names) - 1:
            values = tf.maximum(values, LEAKY_SLOPE * values)  # leaky ReLU, slope exact
    return values


def _bernoulli_log_prob(values, logits):
    """Σ over the last axis of log Bernoulli(values; σ(logits))."""
    return tf.reduce_sum(values * logits - tf.math.softplus(logits), axis=-1)


def whole(where: str, name: str, value, least: int = 1) -> int:
    """``value`` as an int, or a one-sentence ValueError naming the argument."""
    if isinstance(value, bool) or value != int(value) or value < least:
        raise ValueError(f"{where} argument {name} must be a whole number of at least {least}, "
                         f"got {value!r}.")
    return int(value)


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What a VAE on images shares with the others (:func:`training_data`): its
    minibatches, the binary training and test images its bounds are logged on, and the
    arguments its name states when not at their defaults."""

    minibatches: Minibatches
    train: np.ndarray           # [N, P] 0/1, the images train_elbo averages over
    test: np.ndarray | None     # [N_test, P] 0/1, the test bound's images (None: none)
    test_samples: int
    batch_index: int
    binarize: str
    hidden: int

    @property
    def pixels(self) -> int:
        return self.train.shape[1]

    def extra(self, decoder: str) -> dict:
        """The arguments a problem's name adds to its own: those not at their defaults."""
        found = {}
        if self.batch_index:
            found["batch_index"] = self.batch_index
        if self.binarize != "threshold":
            found["binarize"] = self.binarize
        if decoder == "nonlinear" and self.hidden != 200:
            found["hidden"] = self.hidden
        if self.test_samples != TEST_SAMPLES:
            found["test_samples"] = self.test_samples
        return found


def training_data(where: str, data: str, batch, batch_index, binarize: str, hidden,
                  test_samples) -> TrainingData:
    """The images of a VAE problem, checked, and its minibatches (``where`` names the
    problem in errors).

    Raises:
      ValueError: a bad argument or data file, in one sentence.
    """
    batch, hidden = whole(where, "batch", batch), whole(where, "hidden", hidden)
    test_samples = whole(where, "test_samples", test_samples)
    batch_index = whole(where, "batch_index", batch_index, least=0)
    try:
        train, test = binary_images(data, binarize)
        rows = grey_images(data)[0] if binarize == "dynamic" else train  # drawn afresh
    except DataError as error:
        raise ValueError(f"{where}: {error}") from None
    except ValueError as error:
        raise ValueError(f"{where} argument {error}") from None
    if batch > len(train):
        raise ValueError(f"{where} argument batch must be at most the {len(train)} training "
                         f"images, got {batch}.")
    batches = len(train) // batch
    if batch_index >= batches:
        raise ValueError(f"{where}: batch_index {batch_index} is past the data: {len(train)} "
                         f"training images make {batches} minibatches of {batch} "
                         f"(batch_index 0 to {batches - 1}).")
    minibatches = Minibatches(rows, batch, home=batch_index, dynamic=binarize == "dynamic")
    return TrainingData(minibatches, train, test if len(test) else None, test_samples,
                        batch_index, binarize, hidden)


@register("bernoulli_vae",
          "VAE with D Bernoulli latents on binary images (digits or an .npz): f = the ELBO's "
          "integrand on a minibatch, θ = encoder, decoder and prior (issue 28)")
def bernoulli_vae(data: str = "digits", latents: int = 16, decoder: str = "linear",
                  batch: int = 50, batch_index: int = 0, binarize: str = "threshold",
                  hidden: int = 200, test_samples: int = 100) -> Problem:
    """The minibatch ELBO of a Bernoulli-latent VAE (module docstring)."""
    where = "problem 'bernoulli_vae'"
    latents = whole(where, "latents", latents)
    if decoder not in DECODERS:
        raise ValueError(f"{where} argument decoder must be one of "
                         f"{', '.join(map(repr, DECODERS))}, got {decoder!r}.")
    images = training_data(where, data, batch, batch_index, binarize, hidden, test_samples)
    minibatches, batch = images.minibatches, images.minibatches.size
    layers = _layer_sizes(images.pixels, latents, decoder, images.hidden)

    def dist(theta):
        logits = _network(theta, "enc", layers, minibatches.read(theta["prior_logits"].dtype))
        flat = tf.reshape(logits, tf.concat([tf.shape(logits)[:-2], [batch * latents]], 0))
        return tfd.Independent(tfd.Bernoulli(logits=flat, dtype=flat.dtype), 1)

    def cost(b, theta):  # b [n, *batch, M·D] -> [n, *batch]
        codes = tf.reshape(b, tf.concat([tf.shape(b)[:-1], [batch, latents]], 0))
        x = minibatches.read(b.dtype)
        return tf.reduce_mean(_log_weights(theta, layers, x, codes), axis=-1)

    def draw(theta, x, seed):  # codes of q(b|x) [N, D], one per image, keyed
        probs = tf.sigmoid(_network(theta, "enc", layers, x))
        uniform = tf.random.stateless_uniform(tf.shape(probs), seed, dtype=x.dtype,
                                              alg=RNG_ALG)
        return tf.cast(uniform < probs, x.dtype)

    exact_value = _exact_elbo(minibatches, latents, layers) \
        if latents <= EXACT_MAX_LATENTS else None
    arguments = {"data": data, "latents": latents, "decoder": decoder, "batch": batch,
                 **images.extra(decoder)}
    problem = Problem(
        name=label("bernoulli_vae", arguments), dist=dist, cost=cost,
        params={name: (fan_in or 1) * fan_out for name, (fan_in, fan_out) in layers.items()},
        exact_value=exact_value, reference="score_function", reference_samples=100_000,
        start=lambda: _glorot(layers, 0), minibatches=minibatches,
        diagnostics=bounds(images, draw,
                           lambda theta, x, codes: _log_weights(theta, layers, x, codes)),
        description=f"Bernoulli VAE, D = {latents}, {decoder}, on {batch} {data} images "
                    f"({images.pixels} pixels): f = the ELBO's integrand")
    _LAYERS[problem] = layers
    return problem


def _log_weights(theta, layers: dict, x, codes):
    """log p(x, b) − log q(b | x) for each row: images ``x [..., M, P]`` and their codes
    ``b [..., M, D]`` -> ``[..., M]``."""
    likelihood = _bernoulli_log_prob(x, _network(theta, "dec", layers, codes))
    prior = _bernoulli_log_prob(codes, theta["prior_logits"][..., None, :])
    posterior = _bernoulli_log_prob(codes, _network(theta, "enc", layers, x))
    return likelihood + prior - posterior


def _exact_elbo(minibatches: Minibatches, latents: int, layers: dict):
    """E_q[f] summed over the 2^D codes of each image, in TensorFlow ops."""
    codes = np.array(list(itertools.product((0.0, 1.0), repeat=latents)))  # [2^D, D]

    def exact_value(theta):
        dtype = theta["prior_logits"].dtype
        z = tf.constant(codes, dtype)  # [2^D, D]
        x = minibatches.read(dtype)  # [M, P]
        decoded = _network(theta, "dec", layers, z)  # [2^D, P]
        likelihood = tf.linalg.matmul(x, decoded, transpose_b=True) \
            - tf.reduce_sum(tf.math.softplus(decoded), axis=-1)  # [M, 2^D]
        prior = _bernoulli_log_prob(z, theta["prior_logits"])  # [2^D]
        e = _network(theta, "enc", layers, x)  # [M, D]
        log_q = tf.linalg.matmul(e, z, transpose_b=True) \
            - tf.reduce_sum(tf.math.softplus(e), axis=-1, keepdims=True)  # [M, 2^D]
        elbo = tf.reduce_sum(tf.exp(log_q) * (likelihood + prior - log_q), axis=-1)  # [M]
        return tf.reduce_mean(elbo)

    return exact_value


def bounds(images: TrainingData, draw, log_weights):
    """A VAE's diagnostics: ``train_elbo``, the ELBO averaged over every training image
    (``TRAIN_DRAWS`` codes each), and ``test_bound``, the K-sample bound
    log (1/K) Σ_k p(x, z_k) / q(z_k | x) (Burda et al. 2016) averaged over the test images,
    K = ``images.test_samples``; fixed keyed draws, so both are functions of θ.

    Args:
      images: The problem's :class:`TrainingData`.
      draw: ``(theta, x [N, P], seed [2]) -> codes [N, ...]``, one draw of q(z|x) per image.
      log_weights: ``(theta, x, codes) -> [N]``, log p(x, z) − log q(z | x).
    """

    def bound(theta, rows, draws, seed, importance):
        dtype = theta["prior_logits"].dtype
        x = tf.constant(rows, dtype)  # [N, P]

        def one(k):  # [N]
            return log_weights(theta, x, draw(theta, x, tf.stack([seed, k])))

        # One draw's [N, P] tensors at a time: a K × N × P tensor would not fit for MNIST.
        weights = tf.map_fn(one, tf.range(draws), fn_output_signature=dtype)  # [K, N]
        if importance:
            weights = tf.reduce_logsumexp(weights, axis=0) - math.log(draws)
        return tf.reduce_mean(weights)

    def diagnostics(theta):
        found = {"train_elbo": bound(theta, images.train, TRAIN_DRAWS, 1, importance=False)}
        if images.test is not None:
            found["test_bound"] = bound(theta, images.test, images.test_samples, 2,
                                        importance=True)
        return found

    return diagnostics


def initial_theta(problem: Problem, seed: int = 0) -> dict[str, np.ndarray]:
    """The usual start for ``problem`` (a ``bernoulli_vae``): weights Glorot-uniform,
    U(±√(6 / (fan_in + fan_out))), from ``seed``; biases and prior logits 0.

    Raises:
      ValueError: ``problem`` is not a bernoulli_vae.
    """
    if problem not in _LAYERS:
        raise ValueError(f"initial_theta takes a bernoulli_vae problem, got problem "
                         f"'{getattr(problem, 'name', problem)}'.")
    return _glorot(_LAYERS[problem], seed)


def _glorot(layers: dict, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = {}
    for name, (fan_in, fan_out) in layers.items():
        if fan_in:
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            theta[name] = rng.uniform(-limit, limit, size=fan_in * fan_out)
        else:
            theta[name] = np.zeros(fan_out)
    return theta

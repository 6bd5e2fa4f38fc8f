"""What the discrete estimators share: Bernoulli and categorical latents read through
their logits, the uniform noise behind them, and exact moments on a scalar Bernoulli.

Every discrete estimator here (ARM, DisARM, REBAR, Gumbel-softmax, straight-through) is
written as per-draw surrogate terms of θ-free uniform noise u ∈ (0, 1) — one (or, for
REBAR, two) uniforms per coordinate of the latent — and the logits α(θ) of p(b|θ), which
keep their path to θ. A draw of that noise is what ``n_samples`` counts.

Because the noise is uniform on a box, the exact mean and per-sample variance of any of
these estimators on a *scalar* Bernoulli are integrals over the unit interval (square for
REBAR): :func:`bernoulli_moments` computes them by cubature split where the estimate
jumps (u = σ(-α) = 1 - p, where b flips, and u = p for the antithetic partner 1 - u).
"""

from __future__ import annotations

import functools

import numpy as np

from estimators import _rng, measure, protocol, truth
from estimators._runtime import tf, tfd
from estimators.errors import NotApplicableError
from estimators.truth.integrands import measure64

HALF_STEP = 2.0**-24
"""Philox float32 uniforms are multiples of 2⁻²³ in [0, 1); shifting them by half a step
keeps them symmetric about ½ and away from 0 and 1, where log-odds are infinite."""


def uniforms(shape, key, dtype=tf.float32):
    """θ-free uniforms in (0, 1), symmetric about ½: ``[*shape]``."""
    return tf.random.stateless_uniform(shape, seed=key, dtype=dtype, alg=_rng.ALG) + HALF_STEP


def log_odds(u):
    """log(u / (1 - u)): a standard logistic draw from a uniform."""
    return tf.math.log(u) - tf.math.log1p(-u)


def is_binary(dist) -> bool:
    """A Bernoulli, or independent Bernoullis (``tfd.Independent(tfd.Bernoulli, 1)``)."""
    return isinstance(measure.base(dist), tfd.Bernoulli) and measure.event_rank(dist) <= 1


def is_one_hot(dist) -> bool:
    return isinstance(dist, tfd.OneHotCategorical)


def is_one_hot_vector(dist) -> bool:
    """V one-hot categorical variables: ``tfd.Independent(tfd.OneHotCategorical, 1)``,
    draws ``[V, C]``."""
    return (isinstance(dist, tfd.Independent) and is_one_hot(dist.distribution)
            and measure.event_rank(dist) == 2)


def logits(dist, theta):
    """The logits of p(b|θ) with their path to θ, ``[R, *event]`` (a measure written
    without θ gets the replicate axis)."""
    inner = dist.distribution if is_one_hot_vector(dist) else measure.base(dist)
    alpha = tf.convert_to_tensor(inner.logits_parameter())
    if dist.batch_shape.rank == 0:
        alpha = tf.broadcast_to(alpha, tf.concat([tf.shape(theta)[:1], tf.shape(alpha)], 0))
    return alpha


def event_axes(dist) -> list[int]:
    """Axes of the event in draws ``[n, R, *event]``."""
    return list(range(2, 2 + measure.event_rank(dist)))


def require_binary(label: str, problem, dist, extension: str) -> None:
    """NotApplicableError unless p(b|θ) is a Bernoulli vector; ``extension`` names the
    method's categorical generalization, which gradvar does not implement."""
    if is_binary(dist):
        return
    categorical = isinstance(dist, (tfd.Categorical, tfd.OneHotCategorical))
    raise NotApplicableError(
        f"{label} is defined for binary latent variables (tfd.Bernoulli or "
        f"tfd.Independent(tfd.Bernoulli, 1)), but the measure of problem '{problem.name}' is "
        f"{_kind(dist)}{extension if categorical else ''}; use score_function or "
        "score_function_loo.")


def _kind(dist) -> str:
    inner = measure.base(dist)
    return (f"tfd.Independent({type(inner).__name__})" if inner is not dist
            else type(dist).__name__)


def require_relaxable(label: str, problem, dist, variables: bool = False) -> None:
    """NotApplicableError unless p(b|θ) is a Bernoulli vector or a one-hot categorical (or,
    with ``variables``, V of them), and f has a gradient in b (a relaxation evaluates f
    between the discrete values)."""
    if variables and is_one_hot_vector(dist):
        return
    if isinstance(dist, tfd.Categorical) or isinstance(measure.base(dist), tfd.Categorical):
        raise NotApplicableError(
            f"{label} relaxes one-hot vectors, but problem '{problem.name}' draws category "
            "indices (tfd.Categorical); draw one-hot vectors (categorical_vae: "
            "draws=\"one_hot\"; your own problem: tfd.OneHotCategorical(logits) and f on "
            "one-hot vectors).")
    if not (is_binary(dist) or is_one_hot(dist)):
        raise NotApplicableError(
            f"{label} relaxes Bernoulli or one-hot categorical latent variables, but the "
            f"measure of problem '{problem.name}' is {_kind(dist)}; use score_function.")


def require_cost_gradient(label: str, problem, vector, relaxed: bool = True) -> None:
    """NotApplicableError when f has no gradient with respect to b, or (a ``relaxed``
    estimator that evaluates f between the discrete values) jumps between 0 and 1 (binary b)
    or inside the simplex (one-hot b), since a
    relaxation (or REBAR's control variate) through it would be a silent zero or a silent
    bias. An estimator that differentiates f at the draws only (double control variates)
    needs the gradient, not the continuity."""
    dist = problem.distribution(vector, tf.float32)
    theta = tf.constant(vector[None, :], tf.float32)
    half = tf.fill([1, 1] + dist.event_shape.as_list(), 0.5)  # [1, 1, *event]
    with tf.GradientTape() as tape:
        tape.watch(half)
        values = problem.cost_values(dist, half, theta)
    uses = ("evaluates f at relaxed values between 0 and 1 and differentiates it there"
            if relaxed else "differentiates f in b at the draws")
    if tape.gradient(values, half) is None:
        raise NotApplicableError(
            f"{label} {uses}, but the cost of problem '{problem.name}' has no gradient in x "
            "(it casts, rounds or indexes x); write f with differentiable operations or use "
            "score_function.")
    one_hot = is_one_hot(dist) or is_one_hot_vector(dist)
    if not relaxed or not (is_binary(dist) or one_hot):
        return
    if one_hot:
        continuous = _continuous_on_the_simplex(problem, dist, theta)
        where = ("inside the simplex of one-hot values", "along a segment from the centre to a "
                 "vertex does not integrate to the change of f")
    else:
        continuous = _continuous_between_0_and_1(problem, dist, theta)
        where = ("between x = 0 and x = 1", "along x = s·(1, ..., 1) does not integrate to "
                 "f(1) - f(0)")
    if not continuous:
        raise NotApplicableError(
            f"{label} {uses}, but the cost of problem '{problem.name}' jumps {where[0]} (part "
            f"of it casts, rounds or thresholds x: its derivative {where[1]}), so the estimate "
            "would be silently biased; write f with differentiable operations or use "
            "score_function.")


def check_relaxed(label, problem, dist, vector, batch_size) -> None:
    """An identity's ``check`` for estimators that evaluate f at relaxed draws (REBAR,
    RELAX): a Bernoulli vector or one one-hot categorical, and f with a gradient in b and
    no jump between the discrete values."""
    del batch_size
    require_relaxable(label, problem, dist)
    require_cost_gradient(label, problem, vector)


def check_relaxed_variables(label, problem, dist, vector, batch_size) -> None:
    """:func:`check_relaxed` that also takes V one-hot categorical variables (the
    relaxations, straight-through, ReinMax, Gumbel-Rao: each variable relaxed alone)."""
    del batch_size
    require_relaxable(label, problem, dist, variables=True)
    require_cost_gradient(label, problem, vector)


def _continuous_between_0_and_1(problem, dist, theta) -> bool:
    """Whether ∫₀¹ d/ds f(s·1) ds = f(1) - f(0): false for a cost with a jump the
    relaxation would step over unseen."""
    size = measure.event_size(dist)
    return _continuous_along(problem, dist, theta, np.zeros(size), np.ones((1, size)))


def _continuous_on_the_simplex(problem, dist, theta) -> bool:
    """The same along the C segments from the simplex's centre to each vertex (one-hot
    draws; a relaxation evaluates f inside the simplex); for V variables, from the centre
    of each to the vertex where all take category c, c = 1..C."""
    categories = int(dist.event_shape[-1])
    variables = measure.event_size(dist) // categories
    return _continuous_along(problem, dist, theta, np.full(variables * categories,
                                                           1.0 / categories),
                             np.tile(np.eye(categories), variables))


def _continuous_along(problem, dist, theta, start: np.ndarray, ends: np.ndarray) -> bool:
    """Whether ∫₀¹ d/ds f(start + s (end - start)) ds = f(end) - f(start) on each segment
    (float64), for a vector event ``[E]`` (``ends`` ``[P, E]``; a scalar event is one value).

    One 16-node Gauss-Legendre rule settles a smooth f. Where it misses, f may have kinks
    (a LeakyReLU network, |x|): its derivative jumps, and a composite rule converges to the
    change as its panels shrink; across a jump of f itself the error stays the jump's size.
    So f passes when 128 panels leave a quarter of 8 panels' error at most, and at most
    10⁻³ of f's scale (a jump smaller than that is a negligible bias)."""
    error, scale = _quadrature_error(problem, dist, theta, start, ends, panels=1)
    if np.all(error <= 1e-6 * scale):
        return True
    coarse, _ = _quadrature_error(problem, dist, theta, start, ends, panels=8)
    fine, _ = _quadrature_error(problem, dist, theta, start, ends, panels=128)
    return bool(np.all((fine <= 1e-6 * scale)
                       | ((fine <= coarse / 4) & (fine <= 1e-3 * scale))))


PANELS_AT_ONCE = 16
"""Panels of the composite rule evaluated in one pass: f at 16 · 16 points of a whole
minibatch at a time (a VAE on MNIST would need GBs for all 128 panels at once)."""


def _quadrature_error(problem, dist, theta, start, ends, panels: int):
    """|∫ derivative − change| per segment by a composite 16-node Gauss-Legendre rule of
    ``panels`` equal panels (inf where not finite), and f's scale per segment."""
    nodes, weights = np.polynomial.legendre.leggauss(16)
    paths, event = len(ends), dist.event_shape.as_list()
    theta = tf.cast(theta, tf.float64)
    first = tf.constant(start, tf.float64)
    step = tf.constant(ends - start, tf.float64)  # [P, E]

    def at(fraction):  # [P, m] -> draws [P·m, 1, *event]
        x = first + fraction[..., None] * step[:, None, :]  # [P, m, E]
        return tf.reshape(x, [-1, 1] + event)

    integral, largest = np.zeros(paths), 0.0
    for begin in range(0, panels, PANELS_AT_ONCE):
        edges = np.arange(begin, min(begin + PANELS_AT_ONCE, panels))[:, None] / panels
        fractions = (edges + (nodes + 1.0) / (2.0 * panels)).ravel()  # [m]
        s = tf.constant(np.tile(fractions, (paths, 1)), tf.float64)  # [P, m]
        with tf.GradientTape() as tape:
            tape.watch(s)
            values = problem.cost_values(dist, at(s), theta)  # [P·m, 1]
            total = tf.reduce_sum(values)
        slope = tape.gradient(total, s,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO).numpy()
        integral += slope @ np.tile(weights / (2.0 * panels), len(edges))  # [P]
        largest = max(largest, float(np.max(np.abs(values.numpy()))))
    ends_values = problem.cost_values(dist, at(tf.constant([[0.0, 1.0]] * paths, tf.float64)),
                                      theta).numpy().reshape(paths, 2)
    change = ends_values[:, 1] - ends_values[:, 0]  # [P]
    scale = np.maximum(np.abs(change), largest)
    error = np.where(np.isfinite(integral), np.abs(integral - change), np.inf)
    return error, np.maximum(scale, 1e-300)


def mean_of_terms(terms, noise_per_coordinate: int):
    """The protocol surrogate (:func:`estimators.protocol.joint_draws`) of per-draw
    ``terms(problem, dist, theta, u [n, R, *event, k], **settings)`` of uniform noise."""
    return protocol.joint_draws(terms, noise_per_coordinate, logits, uniforms)


def scalar_bernoulli(name: str, problem, vector):
    """p(b = 1 | θ) of a problem whose measure is one Bernoulli (scalar, or an
    ``Independent`` of one), and its event rank.

    Raises:
      NotImplementedError: any other measure (exact moments of ``name`` integrate over
        the noise of one Bernoulli)."""
    dist = problem.distribution(vector)
    if not is_binary(dist) or measure.event_size(dist) != 1:
        raise NotImplementedError(
            f"exact moments of {name} are integrals over its uniform noise for a scalar "
            f"Bernoulli p(b|θ); problem '{problem.name}' has a {type(dist).__name__} "
            f"with event shape {dist.event_shape.as_list()}")
    return float(np.asarray(measure.base(dist).probs_parameter()).reshape(-1)[0]), \
        measure.event_rank(dist)


def group_moments(name: str, group_surrogate, ones_probabilities):
    """An ``exact_moments(problem, θ [d], batch_size)`` for an estimator whose batch of n
    draws on one Bernoulli is one exchangeable group, so that its estimate depends on the
    draws only through the number m of ones (ARMS, double control variates): the group's
    mean and ``batch_size`` × its variance, sums over m = 0..n.

    Args:
      name: The estimator, for messages.
      group_surrogate: ``(problem, dist, theta [m, d], b [n, m, *event]) -> [m]``, whose
        θ-gradient is each column's group estimate.
      ones_probabilities: ``(p, n) -> [n + 1]`` P(m ones in the group), float64.
    """

    def exact_moments(problem, vector, batch_size=None, **settings):
        if batch_size is None:
            raise NotImplementedError(
                f"the variance of {name} depends on the batch size (the group of "
                "draws); pass batch_size=B to truth.per_sample_variance")
        n = int(batch_size)
        p, rank = scalar_bernoulli(name, problem, vector)
        ones = ones_probabilities(p, n)
        # Group m: its first m draws are ones (every order gives the same estimate).
        b = (np.arange(n)[:, None] < np.arange(n + 1)[None, :]).astype(np.float64)
        b = tf.constant(b.reshape((n, n + 1) + (1,) * rank))  # [n, n + 1, *event]
        theta = tf.constant(np.tile(vector, (n + 1, 1)), tf.float64)  # [n + 1, d]
        with tf.GradientTape() as tape:
            tape.watch(theta)
            surrogate = group_surrogate(problem, measure64(problem, theta), theta, b,
                                        **settings)
        estimates = tape.gradient(surrogate, theta).numpy()  # [n + 1, d]
        mean = ones @ estimates
        variance = np.maximum(ones @ estimates**2 - mean**2, 0.0)
        return mean, n * variance

    return exact_moments


def bernoulli_moments(name: str, terms, noise_per_coordinate: int):
    """An ``exact_moments(problem, θ [d], batch_size, **settings) -> (mean, variance)``
    for a scalar Bernoulli: the mean and variance of one draw's estimate, integrated over
    the uniform noise. Per-sample variance is that variance whatever n and the batch.

    Raises NotImplementedError for any other measure (an ``Independent`` of a single
    Bernoulli is one)."""

    def exact_moments(problem, vector, batch_size=None, **settings):
        del batch_size  # draws are iid whatever the batching
        p, rank = scalar_bernoulli(name, problem, vector)
        block = uniform_block(terms, noise_per_coordinate, tuple(sorted(settings.items())),
                              rank)
        jumps = [(edge,) + (0.5,) * (noise_per_coordinate - 1) for edge in (p, 1.0 - p)]
        return truth.block_moments(problem, problem.theta_vector(vector), block, jumps)

    return exact_moments


@functools.lru_cache(maxsize=None)
def uniform_block(terms, noise_per_coordinate: int, settings: tuple, event_rank: int
                  ) -> truth.NoiseBlock:
    """The noise block of ``terms`` over the unit cube of its uniforms, for one Bernoulli
    (event rank 0, or 1 for an ``Independent`` of one); one compiled integrand per
    estimator, setting and event rank (blocks key the cache)."""

    def surrogate(problem, dist, theta, noise):  # noise [m, k]: one draw per θ row
        noise = noise[tf.newaxis]  # [1, m, k]
        if event_rank:
            noise = noise[:, :, tf.newaxis]  # [1, m, 1, k]
        return terms(problem, dist, theta, noise, **dict(settings))[0]  # [m]

    return truth.NoiseBlock(low=(0.0,) * noise_per_coordinate,
                            high=(1.0,) * noise_per_coordinate,
                            density=lambda v: tf.ones_like(v[:, 0]), surrogate=surrogate)

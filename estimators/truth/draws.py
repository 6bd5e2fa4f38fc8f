"""Per-draw statistics of a problem at one θ, in float64 and compiled chunks: the raw
material of every Monte Carlo truth (references and cross-checks).

Two passes, each a mean over N iid draws with its standard error (sd / √N) and the tail
shape of its terms (:mod:`estimators.truth.tails`):

* :func:`gradient_terms`: f, and the single-draw gradients of the **score function**
  ``(f − b) ∇θ log p(x|θ) + ∇θ f`` (b a constant baseline: unbiased for any f while the
  support of p stays put) and of the **pathwise** estimator ``∇θ f(x(θ), θ)`` through
  TFP's reparameterized draws (unbiased only where f is differentiable along the draws);
* :func:`difference_terms`: **finite differences of E f with common random numbers**
  along directions u in θ: with x(θ') drawn with the same key at θ' = θ ± h u, θ ± 2h u,
  ``D_h = [f(x(θ+hu)) − f(x(θ−hu))] / 2h`` and its Richardson extrapolation
  ``R = (4 D_h − D_2h) / 3``. E[R] = uᵀ∇θ E f + O(h⁴) whatever f does between the draws
  (jumps included, and supports that move with θ), since it differences two expectations;
  ``Q = (D_h − D_2h) / 3`` estimates the O(h²) error of D_h, a bound of R's. Along the same
  draws the pass also returns the pathwise gradient's projection uᵀ∇θ f(x(θ), θ): where f
  is smooth, R − uᵀ∇θf is O(h⁴) on every draw; where f jumps across the draws, it is not
  (its mean is what the pathwise gradient misses).

Draws are chunked so that a chunk computes about ``CHUNK_ELEMENTS`` numbers (memory
O(chunk · (D + d)); :func:`numbers_per_draw` counts what f computes too); each chunk is a graph traced once per problem, pass and size, so
checks at many θ of one problem cost milliseconds. A pass expected to take long shows a
progress bar (tqdm, on a terminal).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tqdm import tqdm

from estimators import measure
from estimators._runtime import tf, tracing_rng
from estimators.truth.integrands import ZERO, measure64
from estimators.truth.integrate import _compiled
from estimators.truth.tails import TailKeeper

CHUNK_ELEMENTS = 2**22
"""Numbers per chunk (draws × :func:`numbers_per_draw` × evaluations of f): ~32 MB."""
PROGRESS_ELEMENTS = 2**31
"""A pass computing more numbers than this shows a progress bar."""
OFFSETS = (1.0, -1.0, 2.0, -2.0)
"""Where f is evaluated along a direction, in steps h: D_h and D_2h."""


@dataclasses.dataclass(frozen=True)
class Statistic:
    """Mean and standard error of a per-draw quantity, column by column."""

    mean: np.ndarray
    se: np.ndarray
    spread: np.ndarray  # sd of one draw's term

    def __getitem__(self, index) -> "Statistic":
        return Statistic(self.mean[index], self.se[index], self.spread[index])


@dataclasses.dataclass(frozen=True)
class Terms:
    """What one pass measured over ``samples`` draws (None: not asked for)."""

    samples: int
    f: Statistic  # [1]
    score: Statistic | None = None  # [d]
    pathwise: Statistic | None = None  # [d]
    differences: Statistic | None = None  # R, [K]
    difference_error: np.ndarray | None = None  # mean Q, [K]
    jumps: Statistic | None = None  # R − uᵀ pathwise, [K]
    shapes: dict = dataclasses.field(default_factory=dict)
    """Tail shape k̂ per named column group: "f" [1], "score" / "pathwise" [K]
    (projections on the directions), "differences" [K], "jumps" [K]."""

    @property
    def one_outcome(self) -> bool:
        """Whether every draw gave the same f and the same gradient terms (no spread beyond
        rounding): the sample saw one outcome and knows nothing of rarer ones."""
        negligible = 1e-7  # float64 rounding of mean(x²) − mean(x)², relative to the mean
        stats = [s for s in (self.f, self.score, self.pathwise) if s is not None]
        return all(np.all(s.se <= negligible * np.abs(s.mean)) for s in stats)


class _Running:
    """Sums, sums of squares and tails of named column groups over chunks."""

    def __init__(self, total: int):
        self.total, self.count = total, 0
        self.sums, self.squares, self.tails = {}, {}, {}

    def add(self, name: str, values: np.ndarray, tail: np.ndarray | None = None) -> None:
        values = np.asarray(values, dtype=np.float64)
        values = values.reshape(len(values), -1)
        if name not in self.sums:
            self.sums[name] = np.zeros(values.shape[1])
            self.squares[name] = np.zeros(values.shape[1])
        self.sums[name] += values.sum(axis=0)
        self.squares[name] += (values**2).sum(axis=0)
        if tail is not None:
            self.tails.setdefault(name, TailKeeper(self.total)).add(tail)

    def statistic(self, name: str) -> Statistic:
        n = self.count
        mean = self.sums[name] / n
        variance = np.maximum(self.squares[name] / n - mean**2, 0.0) * n / max(n - 1, 1)
        return Statistic(mean, np.sqrt(variance / n), np.sqrt(variance))

    def shapes(self) -> dict:
        return {name: keeper.shapes() for name, keeper in self.tails.items()}


def numbers_per_draw(problem, vector) -> int:
    """What one evaluation of f at one draw computes, in numbers: the event size, d, and
    the sizes of every output of the ops of ``dist`` and ``cost`` (read off their traced
    graph for two draws, halved), so that a cost which multiplies by a data matrix counts
    as what it is. The unit of every pass's budget; cached per problem."""
    cache = _compiled.setdefault(problem, {})
    if "numbers_per_draw" not in cache:
        dist = problem.distribution(vector)
        event = dist.event_shape.as_list()

        def evaluate(x, theta_m):
            return problem.cost_values(measure64(problem, theta_m), x, theta_m)

        graph = tf.function(evaluate, autograph=False).get_concrete_function(
            tf.TensorSpec([2, *event], tf.float64),
            tf.TensorSpec([2, problem.dim], tf.float64)).graph
        total = sum(output.shape.num_elements() for operation in graph.get_operations()
                    for output in operation.outputs if output.shape.is_fully_defined())
        cache["numbers_per_draw"] = int(measure.event_size(dist) + problem.dim + total // 2)
    return cache["numbers_per_draw"]


def _chunk_size(problem, vector, evaluations: int) -> int:
    return int(max(1, CHUNK_ELEMENTS // (numbers_per_draw(problem, vector) * evaluations)))


def _passes(problem, vector, n_samples: int, evaluations: int, seed, what: str):
    """(chunk key, chunk size) for each chunk of a pass, with a progress bar when long."""
    chunk = min(_chunk_size(problem, vector, evaluations), n_samples)
    key = tf.constant(seed, tf.int32)
    sizes = [chunk] * (n_samples // chunk) + ([n_samples % chunk] if n_samples % chunk else [])
    long = n_samples * numbers_per_draw(problem, vector) * evaluations > PROGRESS_ELEMENTS
    bar = tqdm(total=n_samples, unit="draw", leave=False, disable=None if long else True,
               desc=f"{what} of problem '{problem.name}'", dynamic_ncols=True)
    with bar, tracing_rng():
        for index, m in enumerate(sizes):
            yield tf.random.experimental.stateless_fold_in(key, index, alg="philox"), m
            bar.update(m)


def gradient_terms(problem, vector, n_samples: int, seed, score: bool = True,
                   pathwise: bool = False, baseline: float = 0.0,
                   directions: np.ndarray | None = None, what: str = "Monte Carlo") -> Terms:
    """f and single-draw score-function and/or pathwise gradients over ``n_samples`` draws
    (module docstring); tails of f and of the gradients projected on ``directions``
    ``[K, d]`` (default: the axes).

    Raises:
      ValueError: ``pathwise`` on a measure TFP does not reparameterize.
    """
    if pathwise and not measure.is_reparameterized(problem.distribution(vector)):
        raise ValueError(f"problem '{problem.name}': TFP does not reparameterize its measure, "
                         "so there is no pathwise gradient.")
    directions = np.eye(problem.dim) if directions is None else np.asarray(directions)
    theta = tf.constant(vector, tf.float64)
    projection = tf.constant(directions.T, tf.float64)  # [d, K]
    running = _Running(n_samples)
    for key, m in _passes(problem, vector, n_samples, 3, seed, what):
        f, sf, pw = _gradient_chunk(problem, m, score, pathwise)(
            theta, key, tf.constant(baseline, tf.float64))
        running.count += m
        running.add("f", f.numpy(), tail=f.numpy()[:, None])
        if score:
            running.add("score", sf.numpy(), tail=(sf @ projection).numpy())
        if pathwise:
            running.add("pathwise", pw.numpy(), tail=(pw @ projection).numpy())
    shapes = running.shapes()
    return Terms(n_samples, running.statistic("f"),
                 score=running.statistic("score") if score else None,
                 pathwise=running.statistic("pathwise") if pathwise else None,
                 shapes=shapes)


def _gradient_chunk(problem, m: int, score: bool, pathwise: bool):
    """``(θ [d], key, baseline) -> (f [m], score [m, d], pathwise [m, d])``, traced once per
    problem, chunk size and pass (unrequested outputs are zeros)."""
    cache = _compiled.setdefault(problem, {})
    name = ("gradient_terms", m, score, pathwise)
    if name not in cache:
        def chunk(theta, key, baseline):
            theta_m = tf.tile(theta[tf.newaxis, :], [m, 1])  # [m, d]
            zeros = tf.zeros_like(theta_m)
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(theta_m)
                dist = measure64(problem, theta_m)
                x = dist.sample([] if dist.batch_shape.rank != 0 else [m], seed=key)
                if pathwise:
                    along = problem.cost_values(dist, x, theta_m)  # [m]
                fixed = tf.stop_gradient(x)  # [m, *event]
                values = problem.cost_values(dist, fixed, theta_m)  # [m]
                if score:
                    surrogate = (tf.stop_gradient(values - baseline) * dist.log_prob(fixed)
                                 + values)
            sf = tape.gradient(surrogate, theta_m, unconnected_gradients=ZERO) if score \
                else zeros
            pw = tape.gradient(along, theta_m, unconnected_gradients=ZERO) if pathwise \
                else zeros
            return values, sf, pw

        cache[name] = tf.function(chunk, autograph=False, input_signature=[
            tf.TensorSpec([problem.dim], tf.float64), tf.TensorSpec([2], tf.int32),
            tf.TensorSpec([], tf.float64)])
    return cache[name]


def difference_terms(problem, vector, n_samples: int, seed, directions: np.ndarray,
                     steps: np.ndarray, what: str = "finite differences") -> Terms:
    """Finite differences of E f along ``directions`` ``[K, d]`` with steps ``steps`` [K]
    (θ ± h u and θ ± 2h u must stay inside the problem's bounds), with common random
    numbers, and the pathwise gradient along them on the same draws where TFP
    reparameterizes the measure (module docstring)."""
    directions = np.asarray(directions, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.float64)
    pathwise = measure.is_reparameterized(problem.distribution(vector))
    count = len(directions)
    theta = tf.constant(vector, tf.float64)
    offsets = tf.constant((np.asarray(OFFSETS)[:, None, None] * steps[None, :, None]
                           * directions[None, :, :]), tf.float64)  # [4, K, d]
    projection = tf.constant(directions.T, tf.float64)  # [d, K]
    running = _Running(n_samples)
    evaluations = 1 + len(OFFSETS) * count
    for key, m in _passes(problem, vector, n_samples, evaluations, seed, what):
        f, shifted, pw = _difference_chunk(problem, m, count, pathwise)(theta, key, offsets)
        shifted = shifted.numpy()  # [4, m, K]
        first = (shifted[0] - shifted[1]) / (2 * steps)  # D_h, [m, K]
        second = (shifted[2] - shifted[3]) / (4 * steps)  # D_2h
        richardson = (4 * first - second) / 3
        running.count += m
        running.add("f", f.numpy(), tail=f.numpy()[:, None])
        running.add("differences", richardson, tail=richardson)
        running.add("error", (first - second) / 3)
        if pathwise:
            jumps = richardson - (pw @ projection).numpy()
            running.add("jumps", jumps, tail=jumps)
    return Terms(n_samples, running.statistic("f"),
                 differences=running.statistic("differences"),
                 difference_error=running.statistic("error").mean,
                 jumps=running.statistic("jumps") if pathwise else None,
                 shapes=running.shapes())


def _difference_chunk(problem, m: int, count: int, pathwise: bool):
    """``(θ [d], key, offsets [4, K, d]) -> (f [m], f at θ + offset [4, m, K],
    pathwise gradient [m, d])``, every evaluation drawn with the same key."""
    cache = _compiled.setdefault(problem, {})
    name = ("difference_terms", m, count, pathwise)
    if name not in cache:
        def draw(theta_m, key):
            dist = measure64(problem, theta_m)
            x = dist.sample([] if dist.batch_shape.rank != 0 else [m], seed=key)
            return problem.cost_values(dist, x, theta_m)  # [m]

        def chunk(theta, key, offsets):
            theta_m = tf.tile(theta[tf.newaxis, :], [m, 1])  # [m, d]
            with tf.GradientTape() as tape:
                tape.watch(theta_m)
                values = draw(theta_m, key)
            pw = tape.gradient(values, theta_m, unconnected_gradients=ZERO) if pathwise \
                else tf.zeros_like(theta_m)
            shifted = tf.stack([tf.stack([draw(theta_m + offsets[o, k], key)
                                          for k in range(count)], axis=1)
                                for o in range(len(OFFSETS))])  # [4, m, K]
            return values, shifted, pw

        cache[name] = tf.function(chunk, autograph=False, input_signature=[
            tf.TensorSpec([problem.dim], tf.float64), tf.TensorSpec([2], tf.int32),
            tf.TensorSpec([len(OFFSETS), count, problem.dim], tf.float64)])
    return cache[name]


def fits(budget: int, problem, vector, evaluations: int, low: int, high: int) -> int:
    """Draws of ``evaluations`` evaluations of f each that fit in ``budget`` numbers
    (draws × :func:`numbers_per_draw` × evaluations), between ``low`` and ``high``."""
    size = numbers_per_draw(problem, vector)
    return int(min(high, max(low, budget // (size * evaluations))))


__all__ = ["CHUNK_ELEMENTS", "Statistic", "Terms", "difference_terms", "fits",
           "gradient_terms", "numbers_per_draw"]

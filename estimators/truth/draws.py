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
  ``Q = (D_h − D_2h) / 3`` estimates the O(h²) error of D_h, taken as the allowance for R's
  (of higher order: an overestimate once h is small enough for Q to be). Along the same
  draws the pass also returns the pathwise gradient's projection uᵀ∇θ f(x(θ), θ): where f
  is smooth, R − uᵀ∇θf is O(h⁴) on every draw; where f jumps across the draws, it is not
  (its mean is what the pathwise gradient misses). With every draw held fixed, the same
  differences of f in θ against autodiff's ∇θ f (``theta_jumps``) see a jump of f in θ
  itself (1[x > θ]), which the score function's ∇θ f term misses.

Draws are chunked so that a chunk computes about ``CHUNK_ELEMENTS`` numbers (memory
O(chunk · (D + d)); :func:`numbers_per_draw` counts what f computes too). Every chunk of a
pass draws that many, whatever the pass's size: a pass of fewer draws, or its last chunk,
uses the first rows and leaves the rest (a caller that runs only small passes says so with
``largest``). So each kind of pass is one graph, traced once per problem (tracing a chunk
takes seconds, running one a fraction of that), and checks at many θ of one problem cost
a few traced calls each. A pass expected to take long shows a progress bar (tqdm, on a
terminal).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from tqdm import tqdm

from estimators import measure
from estimators._rng import tracing_rng
from estimators._runtime import tf
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
    theta_jumps: Statistic | None = None  # R of f in θ at fixed x − uᵀ ∇θ f, [K]
    theta_error: np.ndarray | None = None  # its mean Q, [K]
    slopes: dict = dataclasses.field(default_factory=dict)
    """"differences", "theta_jumps": the mean |R| of the differences behind each jump test,
    [K]: the size its float64 rounding scales with."""
    along: dict = dataclasses.field(default_factory=dict)
    """"score_along", "pathwise_along": the gradients projected on the directions, [K]."""
    shapes: Mapping = dataclasses.field(default_factory=dict)
    """Tail shape k̂ per named column group: "f" [1], "score" / "pathwise" [K]
    (projections on the directions), "differences" [K], "jumps" [K], "theta_jumps" [K]."""

    @property
    def one_outcome(self) -> bool:
        """Whether every draw gave the same f and the same gradient terms (no spread beyond
        rounding): the sample saw one outcome and knows nothing of rarer ones."""
        negligible = 1e-7  # float64 rounding of mean(x²) − mean(x)², relative to the mean
        stats = [s for s in (self.f, self.score, self.pathwise) if s is not None]
        return all(np.all(s.se <= negligible * np.abs(s.mean)) for s in stats)


class _Running:
    """Means, spreads and tails of named column groups over chunks. Each chunk's mean and
    sum of squared deviations are combined as Chan et al. (1979) do, so a mean far larger
    than the spread (f ≈ 10⁸ ± 1) loses nothing to cancellation."""

    def __init__(self, total: int):
        self.total, self.count = total, 0
        self.counts, self.means, self.squares, self.tails = {}, {}, {}, {}

    def add(self, name: str, values: np.ndarray, tail: np.ndarray | None = None) -> None:
        values = np.asarray(values, dtype=np.float64)
        values = values.reshape(len(values), -1)
        m = len(values)
        mean = values.mean(axis=0)
        squares = ((values - mean) ** 2).sum(axis=0)
        if name not in self.means:
            self.counts[name], self.means[name], self.squares[name] = m, mean, squares
        else:
            n = self.counts[name]
            delta = mean - self.means[name]
            self.means[name] = self.means[name] + delta * m / (n + m)
            self.squares[name] = self.squares[name] + squares + delta**2 * n * m / (n + m)
            self.counts[name] = n + m
        if tail is not None:
            self.tails.setdefault(name, TailKeeper(self.total)).add(tail)

    def statistic(self, name: str) -> Statistic:
        n = self.counts[name]
        variance = self.squares[name] / max(n - 1, 1)
        return Statistic(self.means[name], np.sqrt(variance / n), np.sqrt(variance))

    def shapes(self) -> "_Shapes":
        return _Shapes(self.tails)


class _Shapes(Mapping):
    """Tail shape k̂ per named column group, fitted when first read: a pass whose shapes
    nobody reads (the finite-difference step's pilots) fits none."""

    def __init__(self, keepers: dict):
        self._keepers, self._fitted = keepers, {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._fitted:
            self._fitted[name] = self._keepers[name].shapes()
        return self._fitted[name]

    def __iter__(self):
        return iter(self._keepers)

    def __len__(self) -> int:
        return len(self._keepers)


def numbers_per_draw(problem, vector) -> int:
    """What one evaluation of f at one draw computes, in numbers: the event size, d, and
    the sizes of every output of the ops of ``dist`` and ``cost`` but constants (read off
    their traced graph for two draws, halved), so that a cost which multiplies by a data matrix counts
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
        # Constants (a data matrix) are held, not computed per draw.
        total = sum(output.shape.num_elements() for operation in graph.get_operations()
                    if operation.type != "Const"
                    for output in operation.outputs if output.shape.is_fully_defined())
        cache["numbers_per_draw"] = int(measure.event_size(dist) + problem.dim + total // 2)
    return cache["numbers_per_draw"]


def _chunk_size(problem, vector, evaluations: int) -> int:
    return int(max(1, CHUNK_ELEMENTS // (numbers_per_draw(problem, vector) * evaluations)))


def _program_draws(problem, vector, evaluations: int, largest: int | None) -> int:
    """Draws per chunk of a kind of pass: the chunk size, or ``largest`` (the most draws
    any pass of this kind will ask for) when fewer."""
    chunk = _chunk_size(problem, vector, evaluations)
    return chunk if largest is None else max(1, min(chunk, int(largest)))


def _passes(problem, vector, n_samples: int, chunk: int, evaluations: int, seed, what: str):
    """(chunk key, draws used) for each chunk of ``chunk`` draws of a pass, with a progress
    bar when long."""
    key = tf.constant(seed, tf.int32)
    sizes = [chunk] * (n_samples // chunk) + ([n_samples % chunk] if n_samples % chunk else [])
    long = n_samples * numbers_per_draw(problem, vector) * evaluations > PROGRESS_ELEMENTS
    bar = tqdm(total=n_samples, unit="draw", leave=False, disable=None if long else True,
               desc=f"{what} of problem '{problem.name}'", dynamic_ncols=True)
    # stateless_fold_in(key, index) is [a draw keyed by key alone, index]: that draw is
    # taken once per pass, not as an eager op per chunk (which was 2% of the test suite).
    head = int(tf.random.experimental.stateless_fold_in(key, 0, alg="philox")[0])
    with bar, tracing_rng():
        for index, m in enumerate(sizes):
            yield tf.constant([head, index], tf.int32), m
            bar.update(m)


def gradient_terms(problem, vector, n_samples: int, seed, score: bool = True,
                   pathwise: bool = False, baseline: float = 0.0,
                   directions: np.ndarray | None = None, what: str = "Monte Carlo") -> Terms:
    """f and single-draw score-function and/or pathwise gradients over ``n_samples`` draws
    (module docstring); tails of f and of the gradients projected on ``directions``
    ``[K, d]`` (None: of f only).

    Raises:
      ValueError: ``pathwise`` on a measure TFP does not reparameterize.
    """
    if pathwise and not measure.is_reparameterized(problem.distribution(vector)):
        raise ValueError(f"problem '{problem.name}': TFP does not reparameterize its measure, "
                         "so there is no pathwise gradient.")
    theta = tf.constant(vector, tf.float64)
    projection = None if directions is None else \
        np.asarray(directions, dtype=np.float64).T  # [d, K]
    running = _Running(n_samples)
    chunk = _chunk_size(problem, vector, 3)
    program = _gradient_chunk(problem, chunk, score, pathwise)
    baseline = tf.constant(baseline, tf.float64)
    for key, m in _passes(problem, vector, n_samples, chunk, 3, seed, what):
        f, sf, pw = (t.numpy()[:m] for t in program(theta, key, baseline))
        running.count += m
        running.add("f", f, tail=f[:, None])
        for name, wanted, terms in (("score", score, sf), ("pathwise", pathwise, pw)):
            if wanted:
                along = None if projection is None else terms @ projection
                running.add(name, terms, tail=along)
                if along is not None:
                    running.add(f"{name}_along", along)
    shapes = running.shapes()
    along = {name: running.statistic(name) for name in ("score_along", "pathwise_along")
             if name in running.means}
    return Terms(n_samples, running.statistic("f"),
                 score=running.statistic("score") if score else None,
                 pathwise=running.statistic("pathwise") if pathwise else None,
                 along=along, shapes=shapes)


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
                     steps: np.ndarray, what: str = "finite differences",
                     largest: int | None = None) -> Terms:
    """Finite differences along ``directions`` ``[K, d]`` with steps ``steps`` [K] (θ ± h u
    and θ ± 2h u must stay inside the problem's bounds), Richardson-extrapolated:

    * of E f, with common random numbers, where TFP reparameterizes the measure
      (``differences``, their error ``difference_error`` and, against the pathwise
      gradient on the same draws, ``jumps``);
    * of f itself in θ with every draw x held fixed, against autodiff's ∇θ f there
      (``theta_jumps``): the score function's ∇θ f term misses a jump of f in θ
      (1[x > θ]) just as the pathwise gradient misses a jump in x.

    Draws whose differences are not finite (a step past a constraint the problem did not
    declare in ``bounds``) raise ValueError rather than pass unseen. ``largest``: the most
    draws any pass of this kind will take at θ (None: many), so that small passes run a
    program of their own size rather than a whole chunk.
    """
    directions = np.asarray(directions, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.float64)
    moving = measure.is_reparameterized(problem.distribution(vector))
    count = len(directions)
    theta = tf.constant(vector, tf.float64)
    offsets = tf.constant((np.asarray(OFFSETS)[:, None, None] * steps[None, :, None]
                           * directions[None, :, :]), tf.float64)  # [4, K, d]
    projection = directions.T  # [d, K]
    running = _Running(n_samples)
    evaluations = 1 + len(OFFSETS) * count * (2 if moving else 1)
    chunk = _program_draws(problem, vector, evaluations, largest)
    program = _difference_chunk(problem, chunk, count, moving)
    for key, m in _passes(problem, vector, n_samples, chunk, evaluations, seed, what):
        f, shifted, held, pw, cost_gradient = (t.numpy() for t in program(theta, key, offsets))
        f, shifted, held = f[:m], shifted[:, :m], held[:, :m]  # the draws this pass uses
        running.count += m
        running.add("f", f, tail=f[:, None])
        richardson, error = _richardson(held, steps, problem, what="f in θ at fixed x")
        theta_jumps = richardson - cost_gradient[:m] @ projection
        running.add("theta_jumps", theta_jumps, tail=theta_jumps)
        running.add("theta_error", error)
        running.add("theta_slope", np.abs(richardson))
        if moving:
            richardson, error = _richardson(shifted, steps, problem, what="E f")
            running.add("differences", richardson, tail=richardson)
            running.add("error", error)
            running.add("slope", np.abs(richardson))
            jumps = richardson - pw[:m] @ projection
            running.add("jumps", jumps, tail=jumps)
    return Terms(n_samples, running.statistic("f"),
                 differences=running.statistic("differences") if moving else None,
                 difference_error=running.statistic("error").mean if moving else None,
                 jumps=running.statistic("jumps") if moving else None,
                 theta_jumps=running.statistic("theta_jumps"),
                 theta_error=running.statistic("theta_error").mean,
                 slopes={"theta_jumps": running.statistic("theta_slope").mean,
                         **({"differences": running.statistic("slope").mean} if moving else {})},
                 shapes=running.shapes())


def _richardson(values: np.ndarray, steps: np.ndarray, problem, what: str):
    """``values`` [4, m, K] at +h, −h, +2h, −2h -> (R, Q) [m, K]: the extrapolated
    derivative and D_h's O(h²) error estimate (R's own error is of higher order)."""
    first = (values[0] - values[1]) / (2 * steps)  # D_h
    second = (values[2] - values[3]) / (4 * steps)  # D_2h
    if not np.all(np.isfinite(first) & np.isfinite(second)):
        raise ValueError(f"problem '{problem.name}': finite differences of {what} are not "
                         "finite a step of θ away from this θ; declare the range θ must stay "
                         "in with bounds={name: (low, high)}.")
    return (4 * first - second) / 3, (first - second) / 3


def _difference_chunk(problem, m: int, count: int, moving: bool):
    """``(θ [d], key, offsets [4, K, d]) -> (f [m], f(x(θ + offset), θ + offset) [4, m, K],
    f(x(θ), θ + offset) [4, m, K], pathwise gradient [m, d], ∇θ f at fixed x [m, d])``,
    every draw with the same key (the moving outputs zeros where ``moving`` is False)."""
    cache = _compiled.setdefault(problem, {})
    name = ("difference_terms", m, count, moving)
    if name not in cache:
        def draw(theta_m, key):
            dist = measure64(problem, theta_m)
            return dist, dist.sample([] if dist.batch_shape.rank != 0 else [m], seed=key)

        def chunk(theta, key, offsets):
            theta_m = tf.tile(theta[tf.newaxis, :], [m, 1])  # [m, d]
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(theta_m)
                dist, x = draw(theta_m, key)
                values = problem.cost_values(dist, x, theta_m)  # [m]
                fixed = tf.stop_gradient(x)
                at_fixed = problem.cost_values(dist, fixed, theta_m)
            pw = tape.gradient(values, theta_m, unconnected_gradients=ZERO) if moving \
                else tf.zeros_like(theta_m)
            cost_gradient = tape.gradient(at_fixed, theta_m, unconnected_gradients=ZERO)

            def at_offset(offset):  # [d] -> ([m], [m])
                near = theta_m + offset
                held = problem.cost_values(measure64(problem, near), fixed, near)
                if not moving:
                    return held, held * 0.0
                # The same key as x: common random numbers, x moved by θ alone.
                near_dist, near_x = draw(near, key)
                return held, problem.cost_values(near_dist, near_x, near)

            # One loop body for the 4K offsets (not 4K unrolled copies): the graph, its
            # tracing and its optimization stay O(1) in K.
            flat = tf.reshape(offsets, [len(OFFSETS) * count, problem.dim])
            signature = (tf.TensorSpec([m], tf.float64),) * 2
            held, shifted = tf.map_fn(at_offset, flat, fn_output_signature=signature)
            shape = [len(OFFSETS), count, m]
            held = tf.transpose(tf.reshape(held, shape), [0, 2, 1])  # [4, m, K]
            shifted = tf.transpose(tf.reshape(shifted, shape), [0, 2, 1])
            return values, shifted, held, pw, cost_gradient

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

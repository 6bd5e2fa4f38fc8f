"""A problem: an expectation E_{p(x|θ)}[f(x, θ)] whose gradient in θ we estimate.

A problem bundles the measure ``p(x|θ)`` (a callable θ -> ``tfd.Distribution``), the
cost ``f(x, θ)``, θ's layout (:mod:`estimators.params`), and how to get the truth
(:mod:`estimators.truth`): a closed form where one is given, else quadrature, enumeration
or a Monte Carlo reference, whichever applies.

Shapes. gradvar evaluates ``dist`` and ``cost`` on batches, so they must be written with
broadcasting TensorFlow ops:

* θ arrives with leading batch axes: ``[R]`` for a one-parameter problem, ``[R, d]``
  for named scalars, ``{block: [R, size]}`` for blocks;
* ``dist(θ)`` returns one distribution per replicate: batch shape ``[R]`` (or ``[]``
  when it ignores θ), events scalar or ``[D]``;
* ``cost(x, θ)`` gets draws ``x`` of shape ``[n, R]`` (scalar events) or ``[n, R, D]``
  (vector events; integer draws arrive as floats) and returns **one value per draw**,
  ``[n, R]``: sum over the event axis yourself, never over draws. A cost that does not
  depend on x may return a scalar.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np

from estimators import measure, truth
from estimators._runtime import tf, tfd
from estimators.errors import (DTYPE_WORDS, SHAPE_WORDS, cause, sentence, speaks_for,
                               tensorflow_check)
from estimators.minibatches import Minibatches
from estimators.multisample import MultiSample
from estimators.params import Parameters

WINDOW_STDDEVS = measure.WINDOW_STDDEVS


class CostShapeError(ValueError):
    """``cost(x, θ)`` did not return one value per draw."""


_VALIDATED = 8
"""Arrays of :meth:`Problem.validated_theta` a problem knows by identity (the latest)."""
_VALID_THETAS = 64
"""θ values a problem remembers as validated (the latest), so re-validating the same θ
(O(d) in Python: bounds per component) is skipped and a sweep stays bounded."""


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """An expectation ``E_{p(x|θ)}[f(x, θ)]`` with ground truth for its gradient.

    Args:
      name: Short identifier, used in tables and figures.
      dist: Callable ``theta -> tfd.Distribution`` (scalar or vector events).
      cost: Callable ``(x, theta) -> Tensor``: one value per draw (module docstring).
      param_names: Names of scalar parameters (the lab's style); their number is d.
      params: Instead of ``param_names``: named blocks with sizes, e.g.
        ``{"mean": 31, "log_scale": 31}``; ``dist`` and ``cost`` then receive θ as a
        mapping block -> tensor ``[..., size]``.
      window: ``(low, high)`` for the trapezoidal estimators, quadrature and summation
        (scalar events), or a callable ``theta (np.ndarray [d]) -> (low, high)``.
        Default: where the mass of p(x|θ) lies, inside its support
        (:func:`estimators.measure.default_window`).
      exact_value: Optional closed form ``theta -> E[f]`` in TensorFlow ops (θ in the
        form ``dist`` receives); gradients by autodiff give the exact gradient.
      bounds: Open interval allowed for each parameter (all components of a block),
        e.g. ``{"std": (0, None)}``; ``None`` means unbounded.
      breakpoints: x where the integrand is not smooth (e.g. ``0`` for ``|x|``); they
        help adaptive quadrature.
      additive_cost: The cost is a sum over the coordinates of a vector event,
        f(x) = Σ_i f_i(x_i), with independent discrete coordinates: exact truth by
        enumerating one coordinate at a time (checked at a few random draws).
      reference_samples: Draws behind the Monte Carlo reference gradient, for problems
        with no closed form, quadrature or enumeration (``truth_kind = monte_carlo``).
      reference: Which estimator gives that reference: "auto" (pathwise where TFP
        reparameterizes the measure and finite differences show f differentiable along
        the draws, else the score function), "pathwise" or "score_function" (unbiased for
        any f on a support that does not move with θ: ask for it when f has jumps that
        the check might miss); see :mod:`estimators.truth.monte_carlo`.
      description: One line for listings.
      penalty: Optional ``theta -> scalar`` in TensorFlow ops (θ for one setting, float64,
        in the form ``dist`` receives): a deterministic term of a training objective, E[f] −
        penalty(θ) when maximized (an ELBO's KL from q to the prior), E[f] + penalty(θ)
        when minimized. Never part of the estimated gradient: training runs
        (``bench/training.py``) add its exact gradient by autodiff.
      diagnostics: Optional ``theta -> {name: scalar}`` in TensorFlow ops (θ as for
        ``penalty``): numbers logged along a training run, such as a classifier's accuracy.
        Must be deterministic in θ (use fixed-seed stateless draws).
      multi_sample: For a K-sample bound (IWAE), its :class:`estimators.multisample.
        MultiSample`: what estimators acting on the K samples jointly (VIMCO, DReG)
        read; None for other problems.
      start: Optional ``() -> θ``: the problem's own starting point, which θ given as the
        text ``"start"`` means (in grids: ``theta = ["start"]``), for θ that cannot be
        written out, such as a network's weights initialized at random from a fixed seed.
      minibatches: For a model on data, the :class:`estimators.minibatches.Minibatches`
        its functions read (one minibatch current at a time), which a training run moves
        to a fresh minibatch at every update; the truth is computed on the problem's own
        minibatch only. None for other problems.

    Example:

    >>> import tensorflow as tf, tensorflow_probability as tfp
    >>> import estimators as E
    >>> p = E.Problem(name="mine", dist=lambda theta: tfp.distributions.Normal(theta, 1.),
    ...               cost=lambda x, theta: x ** 2)
    >>> p.true_gradient(1.5)   # d/dθ (θ² + 1), by quadrature
    array([3.])
    >>> blocks = E.Problem(
    ...     name="diag", params={"mean": 3, "log_scale": 3},
    ...     dist=lambda t: tfp.distributions.MultivariateNormalDiag(t["mean"],
    ...                                                            tf.exp(t["log_scale"])),
    ...     cost=lambda x, t: tf.reduce_sum(x ** 2, axis=-1),
    ...     exact_value=lambda t: tf.reduce_sum(t["mean"] ** 2 + tf.exp(2 * t["log_scale"])))
    >>> blocks.param_labels[:2], blocks.true_gradient({"mean": 1.0, "log_scale": 0.0})[:4]
    (('mean[0]', 'mean[1]'), array([2., 2., 2., 2.]))
    """

    name: str
    dist: Callable
    cost: Callable
    param_names: tuple[str, ...] | None = None
    window: tuple[float, float] | Callable | None = None
    exact_value: Callable | None = None
    bounds: Mapping[str, tuple[float | None, float | None]] = dataclasses.field(
        default_factory=dict)
    breakpoints: tuple[float, ...] = ()
    description: str = ""
    params: Mapping[str, int] | None = None
    additive_cost: bool = False
    reference_samples: int = 1_000_000
    reference: str = "auto"
    penalty: Callable | None = None
    diagnostics: Callable | None = None
    multi_sample: MultiSample | None = None
    start: Callable | None = None
    minibatches: Minibatches | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, got {self.name!r}.")
        for field in ("dist", "cost"):
            if not callable(getattr(self, field)):
                raise TypeError(f"{field} must be callable, got {getattr(self, field)!r}.")
        for field in ("exact_value", "penalty", "diagnostics", "start"):
            if getattr(self, field) is not None and not callable(getattr(self, field)):
                raise TypeError(f"{field} must be callable or None, got "
                                f"{getattr(self, field)!r}.")
        if self.params is not None and self.param_names is not None:
            raise ValueError("give either param_names (named scalars) or params (named "
                             "blocks with sizes), not both.")
        layout = Parameters(param_names=self.param_names, params=self.params)
        object.__setattr__(self, "parameters", layout)
        object.__setattr__(self, "param_names", layout.names)
        if self.params is not None:
            object.__setattr__(self, "params", dict(layout.sizes))
        if not isinstance(self.bounds, Mapping):
            raise TypeError(f"bounds must be a mapping name -> (low, high), got {self.bounds!r}.")
        unknown = set(self.bounds) - set(layout.names)
        if unknown:
            raise ValueError(f"bounds name unknown parameters {sorted(unknown)}; "
                             f"the parameters are {list(layout.names)}.")
        if self.window is not None and not callable(self.window):
            object.__setattr__(self, "window", _check_window(self.window, "window"))
        object.__setattr__(self, "breakpoints", tuple(float(b) for b in self.breakpoints))
        if not isinstance(self.additive_cost, bool):
            raise TypeError(f"additive_cost must be True or False, got {self.additive_cost!r}.")
        if isinstance(self.reference_samples, bool) or not isinstance(
                self.reference_samples, (int, np.integer)) or self.reference_samples < 1000:
            raise ValueError("reference_samples must be an integer >= 1000, got "
                             f"{self.reference_samples!r}.")
        if self.multi_sample is not None and not isinstance(self.multi_sample, MultiSample):
            raise TypeError("multi_sample must be an estimators.multisample.MultiSample or "
                            f"None, got {self.multi_sample!r}.")
        if self.minibatches is not None and not isinstance(self.minibatches, Minibatches):
            raise TypeError("minibatches must be an estimators.minibatches.Minibatches or "
                            f"None, got {self.minibatches!r}.")
        if self.reference not in truth.REFERENCES:
            raise ValueError(f"reference must be one of {', '.join(truth.REFERENCES)}, got "
                             f"{self.reference!r}.")

    # -- parameters ---------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Number of parameter components d."""
        return self.parameters.dim

    @property
    def param_labels(self) -> tuple[str, ...]:
        """One label per component: ``"mean"`` (named scalar) or ``"mean[3]"`` (block)."""
        return self.parameters.labels

    @property
    def param_blocks(self) -> tuple[str, ...]:
        """The block (or scalar) name of each component."""
        return self.parameters.block_of

    def theta_vector(self, theta) -> np.ndarray:
        """Validates θ and returns it as a float64 array ``[d]``.

        Accepts a number (when d = 1), a flat sequence of d numbers, a mapping from
        parameter name to a number (broadcast over a block) or a block's values, or the text
        ``"start"`` for the problem's own starting point (``start``).

        Raises:
          ValueError: wrong length or keys, non-finite values or values outside ``bounds``.
          TypeError: θ is not numeric.
        """
        if self.is_validated_array(theta):
            return theta  # validated_theta's own array: no O(D) work (a training step's θ)
        seen = self.__dict__.setdefault("_valid_thetas", collections.OrderedDict())
        if isinstance(theta, np.ndarray) and theta.dtype == np.float64 \
                and theta.shape == (self.dim,) and theta.tobytes() in seen:
            seen.move_to_end(theta.tobytes())  # the latest used are kept
            return theta  # this value was validated: validation depends on the value only
        if isinstance(theta, str) and theta == "start":
            theta = self._start()
        vector = self.parameters.vector(theta, self.name, self.bounds)
        seen[vector.tobytes()] = True
        seen.move_to_end(vector.tobytes())  # a value seen long ago is the newest again
        while len(seen) > _VALID_THETAS:
            try:
                seen.popitem(last=False)
            except KeyError:  # another thread emptied it first
                break
        return vector

    def is_validated_array(self, theta) -> bool:
        """Whether ``theta`` is one of the latest arrays :meth:`validated_theta` returned
        (known by identity; read-only copies of their own, so their values are the ones
        checked)."""
        if not isinstance(theta, np.ndarray) or theta.flags.writeable:
            return False
        # A copy of the list: another thread's validated_theta may append meanwhile.
        return any(theta is known for known in tuple(self.__dict__.get("_validated_arrays",
                                                                         ())))

    def _start(self):
        if self.start is None:
            raise ValueError(f"theta \"start\": problem '{self.name}' has no starting point "
                             "of its own; give θ as numbers.")
        return self.start()

    def validated_theta(self, theta) -> np.ndarray:
        """θ validated (:meth:`theta_vector`) as a read-only float64 array ``[d]``, which
        this problem and the engine then take without validating it again: the latest
        few such arrays are known by identity, so passing one on costs nothing."""
        vector = np.array(self.theta_vector(theta), dtype=np.float64)
        vector.flags.writeable = False
        known = self.__dict__.setdefault("_validated_arrays", collections.deque(maxlen=_VALIDATED))
        known.append(vector)
        return vector

    def unpack(self, theta):
        """θ with a trailing axis ``[..., d]`` in the form ``dist`` and ``cost`` take."""
        return self.parameters.unpack(theta)

    def describe_theta(self, theta) -> str:
        """θ as short text: ``mean=1, std=0.5`` (blocks summarised)."""
        return self.parameters.describe(self.theta_vector(theta))

    # -- the measure and the cost ---------------------------------------------------------

    def measure(self, theta):
        """``p(x|θ)`` for θ with a trailing axis ``[..., d]`` (a tensor)."""
        return self.dist(self.unpack(theta))

    def distribution(self, theta, dtype=tf.float64):
        """``p(x|θ)`` at one θ, built in ``dtype``.

        Raises:
          ValueError: ``dist`` does not give one distribution for one θ (batch shape
            other than ``[]``), or its events are not scalars or vectors.
        """
        vector = self.theta_vector(theta)
        key = (vector.tobytes(), dtype)
        cache = self._cache("distribution")
        if key not in cache:
            theta = tf.constant(vector, dtype=dtype)
            try:
                dist = self.measure(theta)
            except Exception as error:  # noqa: BLE001 - a user's function may raise anything
                self._raise_user_error("dist(theta)", theta, error)
            self._check_shapes(dist, [], theta)
            outside = measure.parameters_out_of_range(dist)
            if outside:
                raise ValueError(
                    f"problem '{self.name}': at theta={_short(vector)} its "
                    f"{type(dist).__name__} has {', '.join(outside)}, outside the range the "
                    "family allows; restrict θ with bounds={name: (low, high)} (e.g. probs in "
                    "(0, 1), scales > 0).")
            if len(cache) > 256:  # distributions at one θ are cheap to rebuild, not to keep
                cache.clear()
            cache[key] = dist
        return cache[key]

    def _cache(self, name: str) -> dict:
        """A per-problem memo (the dataclass is frozen; θ-keyed results are pure)."""
        caches = self.__dict__.setdefault("_caches", {})
        return caches.setdefault(name, {})

    def _check_shapes(self, dist, replicates: list, theta) -> None:
        batch = dist.batch_shape
        if batch.rank is not None and batch.rank != 0 and batch.as_list() != replicates:
            wanted = (f"one distribution per replicate, batch shape [R] = {replicates}" if replicates
                      else "one distribution for one θ, batch shape []")
            raise ValueError(
                f"problem '{self.name}': dist(theta) must give {wanted} for θ of shape "
                f"{theta.shape.as_list()}, but it has batch "
                f"shape {batch.as_list()} and event shape {dist.event_shape.as_list()}; for a "
                "vector of independent coordinates wrap it in "
                "tfd.Independent(..., reinterpreted_batch_ndims=1).")
        if measure.event_rank(dist) > 1:
            inner = dist.distribution if isinstance(dist, tfd.Independent) else dist
            several = isinstance(inner, tfd.OneHotCategorical)
            if several and measure.event_rank(dist) == 2 \
                    and measure.event_rank(inner) == 1:
                return  # V one-hot categorical variables, draws [V, C]
            raise ValueError(
                f"problem '{self.name}': dist(theta) has event shape "
                f"{dist.event_shape.as_list()}; events must be scalars or vectors, or V "
                "one-hot categorical variables (tfd.Independent(tfd.OneHotCategorical("
                "logits [V, C]), 1), draws [V, C])" + (
                    ": wrap the one-hot categorical in tfd.Independent(..., "
                    "reinterpreted_batch_ndims=1) once." if several else "."))

    def validate(self, theta) -> None:
        """Evaluates ``dist`` and ``cost`` once on a small batch of replicates at θ, so that a
        mistake in a problem is one sentence here instead of a stack trace from inside a
        compiled program (done once per problem).

        Raises:
          ValueError: ``dist`` or ``cost`` fails, gives the wrong shapes, or the cost
            reduces over draws.
        """
        if getattr(self, "_validated", False):
            return
        vector = self.theta_vector(theta)
        self.distribution(vector)  # one distribution, parameters in range
        self._validate(vector, tf.float32)  # what the engine computes in
        self._validate(vector, tf.float64)  # what exact values are computed in
        object.__setattr__(self, "_validated", True)

    def _validate(self, vector, dtype) -> None:
        theta = tf.tile(tf.constant(vector, dtype)[tf.newaxis, :], [2, 1])  # [R=2, d]
        step = "dist(theta)"
        try:
            dist = self.measure(theta)
            self._check_shapes(dist, [2], theta)
            step = "sampling from dist(theta)"
            draws = [tf.stop_gradient(dist.sample(measure.sample_shape(dist, 3, 2),
                                                  seed=tf.constant([0, seed], tf.int32)))
                     for seed in (0, 1)]
            step = "cost(x, theta)"
            values = [self.cost_values(dist, x, theta) for x in draws]
            raw = self.cost(tf.cast(draws[0], dtype), self.unpack(theta))
            if isinstance(raw, (np.ndarray, np.generic)):
                raise CostShapeError(
                    f"problem '{self.name}': cost(x, theta) returned a NumPy "
                    f"{type(raw).__name__}: write it with TensorFlow ops (tf.square, "
                    "tf.reduce_sum, ...) so that gradients flow and it can be compiled.")
            raw = tf.convert_to_tensor(raw)
            if raw.shape.rank == 0 and not np.array_equal(values[0].numpy(), values[1].numpy()):
                raise CostShapeError(
                    f"problem '{self.name}': cost(x, theta) returned a single number that "
                    "changes with x, so it reduces over the draws; it must return one value "
                    f"per draw, shape {draws[0].shape[:2].as_list()} for x of shape "
                    f"{draws[0].shape.as_list()}.")
        except Exception as error:  # noqa: BLE001 - a user's function may raise anything
            self._raise_user_error(step, theta, error)

    def _raise_user_error(self, step, theta, error):
        """Re-raises ``error`` from ``step`` (the user's dist or cost) as one sentence."""
        if speaks_for(error, self.name):
            raise type(error)(str(error)) from None  # ours: already one sentence
        _user_error(self, step, theta, error)

    def cost_values(self, dist, x, theta):
        """``f(x, θ)`` for draws x of ``dist``: one value per draw, in θ's float dtype.

        ``theta`` has a trailing axis ``[..., d]``. Integer draws are passed to the cost
        as floats. A scalar result (a cost constant in x) is broadcast.

        Raises:
          CostShapeError: the result is not one value per draw.
          ValueError: the result is not floating point (integers or booleans have no
            gradient, so a pathwise estimate would be a silent zero); another float dtype
            is cast.
        """
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating or x.dtype != theta.dtype:
            x = tf.cast(x, theta.dtype)
        values = self.cost(x, self.unpack(theta))
        if not isinstance(values, (np.ndarray, np.generic)):  # Python numbers: x's dtype
            values = tf.convert_to_tensor(values, dtype_hint=x.dtype)
        values = tf.convert_to_tensor(values)
        if not values.dtype.is_floating:
            raise ValueError(f"problem '{self.name}': cost(x, theta) returned "
                             f"{values.dtype.name} values; return floating-point values "
                             "(e.g. tf.cast(..., x.dtype)).")
        if values.dtype != x.dtype:
            values = tf.cast(values, x.dtype)
        rank = measure.event_rank(dist)
        draws = x.shape[: x.shape.rank - rank]
        if values.shape.rank == 0:
            return values + tf.zeros(tf.shape(x)[: tf.rank(x) - rank], x.dtype)
        if values.shape.rank != draws.rank or not values.shape.is_compatible_with(draws):
            raise CostShapeError(self._cost_shape_message(x, values, rank))
        return values

    def _cost_shape_message(self, x, values, rank) -> str:
        draws = x.shape[: x.shape.rank - rank].as_list()
        hint = ("sum over the event axis (axis=-1)" if rank and values.shape.rank == x.shape.rank
                else "do not reduce over draws; a cost without x can add tf.zeros_like(x)"
                if values.shape.rank < len(draws) else "return one value per draw")
        return (f"problem '{self.name}': cost(x, theta) must return one value per draw, "
                f"shape {draws} for x of shape {x.shape.as_list()}, but it returned "
                f"{values.shape.as_list()} ({hint}).")

    # -- properties of the measure --------------------------------------------------------

    def event_shape(self, theta) -> tuple[int, ...]:
        """The event shape of p(x|θ): ``()`` or ``(D,)``."""
        return tuple(self.distribution(theta, tf.float32).event_shape.as_list())

    def is_discrete(self, theta) -> bool:
        """Whether x takes integer values (no density to integrate or differentiate)."""
        return measure.is_discrete(self.distribution(theta, tf.float32))

    def is_reparameterized(self, theta) -> bool:
        """Whether TFP can differentiate samples of ``p(x|θ)`` with respect to θ."""
        return measure.is_reparameterized(self.distribution(theta, tf.float32))

    def measure_depends_on_theta(self, theta) -> bool:
        """Whether ``p(x|θ)`` changes with θ (detected from ∇θ log p at a few draws)."""
        vector = tf.constant(self.theta_vector(theta), dtype=tf.float64)
        x = tf.stop_gradient(self.measure(vector).sample(
            16, seed=tf.constant([7, 11], tf.int32)))
        with tf.GradientTape() as tape:
            tape.watch(vector)
            log_prob = tf.reduce_sum(self.measure(vector).log_prob(x))
        score = tape.gradient(log_prob, vector)
        return score is not None and bool(np.any(score.numpy() != 0.0))

    def support_depends_on_theta(self, theta) -> bool:
        """Whether an edge of a continuous support moves with θ (Uniform(θ, 1), or such
        coordinates of a vector): there the score function misses the boundary terms of the
        gradient, and so do the trapezoidal rules (quadrature adds them)."""
        key = tuple(self.theta_vector(theta).tolist())
        cache = self._cache("moving_support")
        if key not in cache:
            cache[key] = self._support_moves(key)
        return cache[key]

    def _support_moves(self, key) -> bool:
        vector = tf.constant(key, tf.float64)
        with tf.GradientTape() as tape:
            tape.watch(vector)
            dist = self.measure(vector)
            if measure.is_discrete(dist):
                return False
            edges = measure.support_edges(dist)
            if edges is None:
                return False
            total = tf.reduce_sum(tf.where(tf.math.is_finite(edges), edges,
                                           tf.zeros_like(edges)))
        gradient = tape.gradient(total, vector)
        return gradient is not None and bool(np.any(gradient.numpy() != 0.0))

    def support(self, theta) -> measure.Support | None:
        """The support of a scalar event (or of each coordinate of a vector event)."""
        return measure.support(self.distribution(theta))

    def integration_window(self, theta) -> tuple[float, float]:
        """The ``(low, high)`` window for trapezoidal estimators, quadrature and summation.

        Raises:
          ValueError: vector events, or a default window that cannot be derived.
        """
        vector = self.theta_vector(theta)
        if callable(self.window):
            return _check_window(self.window(vector), f"window({vector.tolist()})")
        if self.window is not None:
            return self.window
        cache = self._cache("window")
        if vector.tobytes() not in cache:
            cache[vector.tobytes()] = self._default_window(vector)
        return cache[vector.tobytes()]

    def _default_window(self, vector) -> tuple[float, float]:
        dist = self.distribution(vector)
        if measure.event_rank(dist):
            raise ValueError(f"problem '{self.name}' has vector events "
                             f"{dist.event_shape.as_list()}: there is no one-dimensional "
                             "integration window.")
        try:
            return measure.default_window(dist)
        except ValueError as error:
            raise ValueError(f"problem '{self.name}' needs an explicit window=(low, high): "
                             f"{error}") from None

    # -- ground truth ---------------------------------------------------------------------

    def truth(self, theta) -> "truth.Reference":
        """The truth at θ: value, gradient, their standard errors and ``kind``."""
        return truth.reference(self, theta)

    def truth_kind(self, theta) -> str:
        """How the truth is obtained at θ: closed_form, quadrature, enumeration or
        monte_carlo."""
        return truth.kind(self, theta)

    def true_value(self, theta) -> float:
        """``E_{p(x|θ)}[f(x, θ)]`` (see :meth:`truth`)."""
        return truth.value(self, theta)

    def true_gradient(self, theta) -> np.ndarray:
        """``∇θ E_{p(x|θ)}[f(x, θ)]`` as an array ``[d]`` (a reference estimate when the
        truth kind is monte_carlo; its standard error is ``truth(theta).gradient_se``)."""
        return truth.gradient(self, theta)


def _short(vector) -> str:
    values = np.asarray(vector).tolist()
    return str(values) if len(values) <= 6 else f"[{', '.join(f'{v:g}' for v in values[:4])}, …]"


def _user_error(problem, step, theta, error):
    """One sentence for an exception from the user's ``step`` (dist or cost): a dtype hint
    or a broadcasting hint where the error is plausibly about dtypes or shapes, else which
    function raised which exception."""
    detail = cause(error)
    if tensorflow_check(error) and DTYPE_WORDS.search(detail):
        raise ValueError(
            f"problem '{problem.name}': {step} failed for {theta.dtype.name} θ ({detail}); "
            "gradvar computes estimates in float32 and exact values in float64, so build "
            "constants in θ's dtype (tf.ones_like(theta), tf.cast(c, theta.dtype)) or as "
            "Python numbers.") from None
    if isinstance(error, tf.errors.InvalidArgumentError) \
            or (tensorflow_check(error) and SHAPE_WORDS.search(detail)):
        where = "on a batch of θ" if theta.shape.rank > 1 else "for θ"
        raise ValueError(
            f"problem '{problem.name}': {step} failed {where} of shape "
            f"{theta.shape.as_list()} ({detail or type(error).__name__}); dist and cost must "
            "broadcast over a leading replicate axis (see estimators.Problem).") from None
    raise ValueError(f"problem '{problem.name}': {step} raised "
                     f"{sentence(type(error).__name__, detail)}") from None


def _check_window(window, what) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a pair (low, high) of numbers, got {window!r}.") \
            from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{what} must be finite with low < high, got {(low, high)}.")
    return (low, high)

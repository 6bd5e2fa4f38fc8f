"""The replicate engine: R independent gradient estimates in one compiled call.

θ is tiled to ``[R, d]`` and every estimator's surrogate returns ``[R]``; replicate r
depends only on θ[r], so one gradient of the summed surrogates yields all R estimates.
An estimate from ``n_samples`` is the mean of ``n_samples / batch_size`` batch
estimates; the loop over batches is a ``tf.while_loop`` inside the compiled program, so
memory stays O(batch_size · R). Batch b draws with the key ``fold_in(seed, b)``.

The gradient is taken in reverse mode (one ``tf.GradientTape`` per batch), except for
one parameter (d = 1) under XLA with batches of at least ``FORWARD_MIN_BATCH`` samples,
for the estimators that opt in (``Estimator.forward_mode``): there one forward-mode pass
(``tf.autodiff.ForwardAccumulator``, tangent 1 for every replicate) carries dθ with the
values and ends in one reduction over the samples, where reverse mode ends in one
reduction over a materialized product per place θ meets the samples: measured 1.31x as
fast for ``reparameterization`` at 1,000 × 1,000, slower for the estimators that do not
opt in and for small batches (``docs/PERFORMANCE.md``). TensorFlow's forward mode ignores custom gradients and cannot trace
some constructs (``tf.map_fn``, ``tf.scan``, ``tf.recompute_grad``): a forward trace
that holds the one or fails on the other is traced again in reverse mode. Both modes
give the same estimates up to float32 rounding (tests/estimators/test_differentiation.py).

Programs are cached per (estimator, problem, n_samples, n_replicates, batch_size,
backend) and take θ, the key and the window as tensors of fixed shape, so calling again
with new values never retraces or recompiles.

Programs are traced without autograph: TensorFlow then runs the estimator's, the
problem's and TFP's Python as written instead of converting every function it calls
first (a fifth of an estimate program's tracing). A problem whose own code branches or
loops on a tensor (``if tf.reduce_sum(x) > 0:``) cannot be traced so; its program is
traced again with autograph, which converts that code, and works as it did before.

A stateful estimator (a learned control variate: :mod:`estimators.protocol`) keeps its
state among the program's inputs and outputs: :meth:`Program.init_state`,
:meth:`Program.warm_up` (state updates on fresh batches, one compiled loop whatever
their number) and :meth:`Program.step` (an estimate, then one update: a training step).
Estimates are measured with the state held fixed.
"""

from __future__ import annotations

import contextlib
import time
import warnings
import weakref

import numpy as np

from estimators import _rng, memory, truth
from estimators._rng import tracing_rng
from estimators._runtime import DEVICE, tf
from estimators.errors import BiasedEstimatorWarning, traced_failure
from estimators.estimator import Estimator, get_estimator
from estimators.problem import Problem

BACKENDS = ("xla", "graph", "eager")
"""``xla``: ``tf.function(jit_compile=True)`` (default); ``graph``: ``tf.function``
without XLA; ``eager``: plain Python, for debugging."""

_programs: "weakref.WeakKeyDictionary[Problem, dict]" = weakref.WeakKeyDictionary()
_checked: "weakref.WeakKeyDictionary[Problem, bool]" = weakref.WeakKeyDictionary()
_applicable: "weakref.WeakKeyDictionary[Problem, set]" = weakref.WeakKeyDictionary()
_smooth: "weakref.WeakKeyDictionary[Problem, dict]" = weakref.WeakKeyDictionary()

__all__ = ["BACKENDS", "DEVICE", "FORWARD_MIN_BATCH", "Program", "choose_differentiation",
           "estimate", "has_custom_gradients", "program"]

_CACHED_INPUTS = 64
"""θ values whose input tensors a program keeps (the latest), so a sweep stays bounded."""

WARMUP_STREAM = 2**31 - 1
"""What :func:`estimate` folds into its seed for the warm-up's key (batch indices, folded
into the measuring key, never reach it)."""
UPDATE_STREAM = 2**31 - 2
"""What a program folds into a key before its state updates' batch indices."""


class Program:
    """A compiled estimator for fixed sizes.

    Call it with θ (any form the problem accepts) and a seed: ``program(theta, seed=0)``
    returns the ``[R, d]`` estimates; same θ and seed, same numbers.

    Attributes:
      estimator, problem, n_samples, n_replicates, batch_size, backend: What it computes.
      differentiation: "forward" or "reverse" (module docstring); given to the constructor
        to override the engine's choice (tests compare the two). A program in forward mode
        turns to reverse mode at its first call when its trace holds a custom gradient or
        forward mode cannot trace it.
      trace_count: How many times TensorFlow traced the estimates (1 after the first call;
        2 when a forward-mode trace held a custom gradient or failed and was traced again
        in reverse mode; one more for a stateful program's :meth:`step`, which holds them;
        all again where the problem needed autograph: module docstring).
      compile_time_s: Seconds the first call took (tracing plus XLA compilation), or
        None before it.
      stateful: Whether the estimator carries state (:meth:`init_state`,
        :meth:`warm_up`, :meth:`step`; the estimates take ``state=``).
    """

    def __init__(self, estimator: Estimator, problem: Problem, n_samples: int,
                 n_replicates: int, batch_size: int, backend: str,
                 differentiation: str | None = None):
        self.estimator, self.problem, self.backend = estimator, problem, backend
        self.n_samples, self.n_replicates, self.batch_size = n_samples, n_replicates, batch_size
        self.trace_count = 0
        if differentiation is None:
            differentiation = choose_differentiation(estimator, problem, batch_size, backend)
        elif not isinstance(differentiation, str) or differentiation not in _DIFFERENTIATE:
            raise ValueError("differentiation must be 'forward', 'reverse' or None (the "
                             f"engine's choice), got {differentiation!r}.")
        if differentiation == "forward" and problem.dim != 1:
            raise ValueError("differentiation='forward' needs a problem with one parameter; "
                             f"problem '{problem.name}' has {problem.dim} parameters.")
        if differentiation == "forward" and backend == "eager":
            raise ValueError("differentiation='forward' needs a compiled backend ('xla' or "
                             "'graph'), got backend 'eager'.")
        self.differentiation = differentiation
        self.compile_time_s = None
        self._windows: dict[tuple, tuple] = {}
        self._inputs: dict[tuple, tuple] = {}  # θ → (θ, window) as tensors, the latest few
        self._compiled = None  # the one concrete function (graph and XLA backends)
        self._autograph = False  # until a plain trace meets Python control flow on a tensor
        self.stateful = estimator.stateful
        self._stateful_functions: dict[str, object] = {}
        self._state_spec = self._state_signature() if self.stateful else None

        self._function = self._new_function()

    def _signature(self) -> list:
        inputs = [tf.TensorSpec([self.problem.dim], tf.float32), tf.TensorSpec([2], tf.int32),
                  tf.TensorSpec([2], tf.float32)]
        return inputs + ([self._state_spec] if self.stateful else [])

    def _compile(self, function, signature):
        if self.backend == "eager":
            return function
        # TensorFlow's "frequent retracing" heuristic counts traces per Python function;
        # one bound method shared by all programs would trip it although no program ever
        # retraces (tests/estimators/test_engine.py counts traces).
        return tf.function(function, jit_compile=(self.backend == "xla"),
                           autograph=self._autograph, reduce_retracing=False,
                           input_signature=signature)

    def _traced(self, trace):
        """``trace()``, the program traced plainly; or, when the problem's or estimator's
        Python branches or loops on a tensor (a plain trace refuses it), traced again by
        ``trace()`` with autograph, which every later function of this program then uses
        too (module docstring)."""
        try:
            return trace()
        except tf.errors.OperatorNotAllowedInGraphError:
            if self._autograph:
                raise
        self._autograph = True
        self._stateful_functions.clear()
        return trace()

    def _new_function(self):
        if self.stateful:
            def estimates(theta, key, window, state):  # a fresh function per program
                return self._estimates(theta, key, window, state)
        else:
            def estimates(theta, key, window):  # a fresh function per program: see _estimates
                return self._estimates(theta, key, window)
        return self._compile(estimates, self._signature())

    def _state_signature(self):
        """The state's structure and shapes, from a trace of ``init`` (not a run: θ may
        not be valid at zero)."""
        def init(theta):
            return self.estimator.init(self.problem, self._tiled(theta))

        spec = tf.TensorSpec([self.problem.dim], tf.float32)
        with tracing_rng():
            outputs = self._traced(lambda: tf.function(
                init, autograph=self._autograph, input_signature=[spec])
                .get_concrete_function()).structured_outputs
        return tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), outputs)

    def _tiled(self, theta):
        return tf.tile(theta[tf.newaxis, :], [self.n_replicates, 1])  # [R, d]

    @property
    def label(self) -> str:
        return self.estimator.label

    def _estimates(self, theta, key, window, state=None, theta_r=None, context=None):
        self.trace_count += 1
        n_replicates, dim = self.n_replicates, self.problem.dim
        n_batches = self.n_samples // self.batch_size
        if theta_r is None:
            theta_r = self._tiled(theta)  # [R, d]
            # θ-only work (the delta method's expansion), once per call, not per batch.
            context = self.estimator.prepare(self.problem, theta_r, window)

        def batch(index, total):
            def surrogate():  # [R]
                value = self.estimator.surrogate(
                    self.problem, theta_r, self.batch_size, _rng.fold_in(key, index), context,
                    state)
                return value + tf.zeros([n_replicates], value.dtype)

            return index + 1, total + _DIFFERENTIATE[self.differentiation](surrogate, theta_r)

        start = (tf.constant(0), tf.zeros([n_replicates, dim], tf.float32))
        if n_batches == 1:
            _, total = batch(*start)
        else:
            # parallel_iterations=1 keeps one batch alive at a time: memory O(batch · R).
            _, total = tf.while_loop(lambda index, _: index < n_batches, batch, start,
                                     parallel_iterations=1)
        return total / n_batches  # [R, d]

    def window(self, theta) -> tuple[float, float]:
        """The integration window the estimator reads at θ (zeros when it reads none)."""
        vector = self.problem.theta_vector(theta)
        if not self.estimator.uses_window:
            return (0.0, 0.0)
        key = vector.tobytes()
        if key not in self._windows:
            self._windows[key] = self.problem.integration_window(vector)
        return self._windows[key]

    def _arguments(self, theta, seed) -> tuple:
        """(θ, key, window) as the program's input tensors."""
        vector = self.problem.theta_vector(theta)
        # validated_theta's arrays are known by identity (held by the cache, so that their
        # id is not reused); others by value (hashing θ's bytes is O(D)).
        key = id(vector) if self.problem.is_validated_array(vector) else vector.tobytes()
        if key not in self._inputs:
            if len(self._inputs) >= _CACHED_INPUTS:
                del self._inputs[next(iter(self._inputs))]
            self._inputs[key] = (tf.constant(vector, tf.float32),
                                 tf.constant(self.window(vector), tf.float32), vector)
        theta_tensor, window, _ = self._inputs[key]
        return theta_tensor, tf.constant(_rng.seed_pair(seed), tf.int32), window

    def __call__(self, theta, seed=0, state=None) -> np.ndarray:
        """Estimates ``[R, d]`` (float64) at θ with ``seed`` (an int or a pair of ints);
        a stateful estimator reads ``state`` (default: :meth:`init_state` at θ), held
        fixed."""
        args = self._arguments(theta, seed)
        if self.stateful:
            args += (self._state_tensors(args[0] if state is None else None, state),)
        elif state is not None and not (isinstance(state, dict) and not state):
            raise ValueError(f"state: {self.label} is stateless and takes no state, got a "
                             f"{type(state).__name__}.")
        first = self.compile_time_s is None
        started = time.perf_counter()
        with self._failures_explained():
            result = self._call(args).numpy()
        if first:
            self.compile_time_s = time.perf_counter() - started
        return result.astype(np.float64)

    @contextlib.contextmanager
    def _failures_explained(self):
        try:
            yield
        except (tf.errors.ResourceExhaustedError, StateError):
            raise
        except Exception as error:  # noqa: BLE001 - the user's dist and cost, traced
            if getattr(self, "_state_error", None):
                raise StateError(self._state_error) from None
            raise traced_failure(self.problem.name, f"{self.label} inside its compiled "
                                 f"program (backend {self.backend}; 'eager' runs it step "
                                 "by step)", error) from None

    # -- state ---------------------------------------------------------------------------

    def _require_state(self) -> None:
        if not self.stateful:
            raise ValueError(f"{self.label} is stateless: it has no state to initialize or "
                             "update.")

    def _stateful_function(self, name: str):
        """The compiled ``init``, ``warm_up`` or ``step`` program (traced once each)."""
        if name not in self._stateful_functions:
            if name == "step":
                self._resolve()  # the step's estimates differentiate as the program's do
            theta_spec, key_spec, window_spec, state_spec = self._signature()
            if name == "init":
                function = self._compile(
                    lambda theta: self.estimator.init(self.problem, self._tiled(theta)),
                    [theta_spec])
            elif name == "warm_up":
                function = self._compile(self._warm_up, [theta_spec, key_spec, window_spec,
                                                         state_spec,
                                                         tf.TensorSpec([], tf.int32)])
            else:
                function = self._compile(self._step, [theta_spec, key_spec, window_spec,
                                                      state_spec])
            self._stateful_functions[name] = function
        return self._stateful_functions[name]

    def _run(self, name: str, *args):
        self._require_state()
        with self._failures_explained(), tracing_rng():
            return self._traced(lambda: self._stateful_function(name)(*args))

    def _updates(self, theta_r, key, context, state, batches):
        # Updates draw from their own stream: no update batch shares a key with a
        # measured batch (fold_in(key, b)) of the same seed, whatever the parts fold in.
        key = _rng.fold_in(key, UPDATE_STREAM)

        def body(index, current):
            updated = self.estimator.update(self.problem, theta_r, self.batch_size,
                                            _rng.fold_in(key, index), context, current)
            _check_state(self.label, self._state_spec, updated)
            return index + 1, updated

        try:
            _, state = tf.while_loop(lambda index, _: index < batches, body,
                                     (tf.constant(0), state), parallel_iterations=1)
        except StateError as error:  # TensorFlow wraps it while tracing: keep its sentence
            self._state_error = str(error)
            raise
        return state

    def _warm_up(self, theta, key, window, state, batches):
        theta_r = self._tiled(theta)
        context = self.estimator.prepare(self.problem, theta_r, window)
        return self._updates(theta_r, key, context, state, batches)

    def _step(self, theta, key, window, state):
        theta_r = self._tiled(theta)
        context = self.estimator.prepare(self.problem, theta_r, window)  # once for both
        estimates = self._estimates(theta, key, window, state, theta_r, context)
        return estimates, self._updates(theta_r, key, context, state, 1)

    def _state_tensors(self, theta_tensor, state):
        if state is None:
            return self._run("init", theta_tensor)
        def tensor(spec, value):
            array = np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
            if not spec.shape.is_compatible_with(array.shape):
                raise ValueError("shape")
            return tf.constant(array)

        try:
            return tf.nest.map_structure(tensor, self._state_spec, state)
        except (ValueError, TypeError):
            shapes = tf.nest.map_structure(lambda spec: spec.shape.as_list(), self._state_spec)
            raise ValueError(f"state: {self.label} takes the state its init_state returns "
                             f"(arrays shaped {shapes}), got {_describe(state)}.") from None

    def init_state(self, theta) -> dict:
        """The estimator's initial state at θ (numpy arrays with leading axis R)."""
        self._require_state()
        theta_tensor, _, _ = self._arguments(theta, 0)
        return tf.nest.map_structure(lambda t: t.numpy(), self._run("init", theta_tensor))

    def warm_up(self, theta, state, batches: int, seed=0) -> dict:
        """``state`` (None: :meth:`init_state` at θ) after ``batches`` updates at θ, each on
        a fresh batch of ``batch_size`` draws (keys from ``seed``, a stream of their own:
        never a measured batch's); one compiled loop, traced once."""
        self._require_state()
        batches = _non_negative_int("batches", batches)
        args = self._arguments(theta, seed)
        state = self._state_tensors(args[0], state)
        result = self._run("warm_up", *args, state, tf.constant(batches, tf.int32))
        return tf.nest.map_structure(lambda t: t.numpy(), result)

    def step(self, theta, seed, state) -> tuple[np.ndarray, dict]:
        """One training step's estimate ``[R, d]`` with ``state`` (None: the initial one)
        held fixed, and the state after one update on a fresh batch (keys from ``seed``,
        none a measured batch's)."""
        self._require_state()
        args = self._arguments(theta, seed)
        estimates, state = self._run("step", *args, self._state_tensors(args[0], state))
        return (estimates.numpy().astype(np.float64),
                tf.nest.map_structure(lambda t: t.numpy(), state))

    def _call(self, args):
        if self.backend == "eager":  # every call builds its ops: sample them the same way
            with tracing_rng():
                return self._function(*args)
        self._resolve()
        return self._compiled(*args)

    def _resolve(self) -> None:
        """Traces the estimates' program once, settling forward or reverse mode (which
        the stateful programs then share)."""
        if self._compiled is not None or self.backend == "eager":
            return
        # Traced once, with gradvar's samplers; the concrete function is then called
        # directly: matching a tf.function's arguments to a trace costs ~3% of a
        # 1,000 × 1,000 program (docs/PERFORMANCE.md).
        with tracing_rng():
            self._compiled = self._traced(self._trace)

    def _trace(self):
        self._function = self._new_function()
        compiled = self._forward_trace() if self.differentiation == "forward" else None
        if compiled is None:
            self.differentiation = "reverse"
            self._function = self._new_function()
            compiled = self._function.get_concrete_function()
        return compiled

    def _forward_trace(self):
        """The forward-mode trace, or None where forward mode cannot be trusted:

        * the trace holds a custom gradient: forward mode differentiates what a
          ``tf.custom_gradient`` computes, not the gradient it declares (TFP's implicit
          reparameterization of Gamma and Beta draws), so estimates would be silently
          wrong;
        * tracing fails: TensorFlow's forward mode cannot go through some constructs
          reverse mode handles (``tf.map_fn`` and ``tf.scan`` in a cost,
          ``tf.recompute_grad``); the reverse trace then gets to succeed or to report
          the problem's own error.
        """
        try:
            compiled = self._function.get_concrete_function()
        except tf.errors.OperatorNotAllowedInGraphError:
            raise  # not forward mode's failure: traced again with autograph
        except Exception:  # noqa: BLE001 - any failure: reverse mode decides
            return None
        return None if has_custom_gradients(compiled.graph) else compiled


def _warmup_count(estimator, warmup_batches) -> int:
    """The state updates before ``estimator`` is measured: its own count or the caller's
    (not two different ones), else 0."""
    own = estimator.warmup_batches
    if warmup_batches is None:
        return 0 if own is None else own
    warmup_batches = _non_negative_int("warmup_batches", warmup_batches)
    if own is not None and own != warmup_batches:
        raise ValueError(f"warmup_batches: {estimator.label} warms up {own} batches by its own "
                         f"option, so warmup_batches={warmup_batches} contradicts it; give one.")
    return warmup_batches


FORWARD_MIN_BATCH = 100
"""Smallest batch for which the engine differentiates in forward mode (module docstring)."""


def choose_differentiation(estimator: Estimator, problem: Problem, batch_size: int,
                           backend: str) -> str:
    """``"forward"`` or ``"reverse"``: how a program takes its gradient (module docstring)."""
    if (backend == "xla" and problem.dim == 1 and estimator.forward_mode
            and batch_size >= FORWARD_MIN_BATCH):
        return "forward"
    return "reverse"


def _reverse(surrogate, theta_r):
    """∇θ of the summed surrogates by reverse mode: ``[R, d]``."""
    with tf.GradientTape() as tape:
        tape.watch(theta_r)
        value = surrogate()  # [R]
    return tape.gradient(value, theta_r, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def _forward(surrogate, theta_r):
    """The same for one parameter (d = 1) by forward mode: ``[R, 1]``."""
    with tf.autodiff.ForwardAccumulator(theta_r, tf.ones_like(theta_r)) as accumulator:
        value = surrogate()  # [R]
    return accumulator.jvp(value, unconnected_gradients=tf.UnconnectedGradients.ZERO)[:, None]


_DIFFERENTIATE = {"reverse": _reverse, "forward": _forward}


def has_custom_gradients(graph) -> bool:
    """Whether a traced program (or a function or loop body in it) holds a
    ``tf.custom_gradient`` or any other gradient override (``gradient_override_map``,
    ``tf.grad_pass_through``), which TensorFlow's forward mode does not apply."""
    definition = graph.as_graph_def()
    nodes = [*definition.node,
             *(node for function in definition.library.function for node in function.node_def)]
    return any("_gradient_op_type" in node.attr for node in nodes)


def program(estimator, problem: Problem, theta, n_samples: int, n_replicates: int = 1,
            batch_size: int | None = None, backend: str = "xla") -> Program:
    """Validates the arguments and returns the (cached) compiled program.

    θ is needed to check that the estimator applies (e.g. that the distribution is
    reparameterized); the program itself takes θ as an input. See :func:`estimate`.
    """
    # A learned estimator's own warm-up count is how it is measured, not what it
    # computes: every count shares one program.
    estimator = get_estimator(estimator).with_warmup(None)
    if not isinstance(problem, Problem):
        raise TypeError("problem must be an estimators.Problem (e.g. "
                        f"estimators.problems.get('seed_dependence')), got {problem!r}.")
    n_samples = _positive_int("n_samples", n_samples)
    n_replicates = _positive_int("n_replicates", n_replicates)
    batch_size = n_samples if batch_size is None else _positive_int("batch_size", batch_size)
    if batch_size > n_samples:
        raise ValueError(f"batch_size must be at most n_samples={n_samples}, got {batch_size}.")
    if n_samples % batch_size:
        raise ValueError(f"batch_size must divide n_samples={n_samples}, got {batch_size}.")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    vector = problem.theta_vector(theta)
    problem.validate(vector)
    # Keyed by the parts themselves, not only the label: a control variate registered
    # again under its name after unregister_control_variate is a new program.
    parts = (estimator.label, estimator.identity, estimator.control)
    applies = _applicable.setdefault(problem, set())
    if (parts, vector.tobytes(), batch_size, n_samples) not in applies:
        estimator.check(problem, vector, batch_size, n_samples)  # builds p(x|θ): milliseconds
        applies.add((parts, vector.tobytes(), batch_size, n_samples))
    cache = _programs.setdefault(problem, {})
    key = (parts, n_samples, n_replicates, batch_size, backend)
    if key not in cache:
        memory.check_call(estimator, problem, vector, n_replicates, batch_size)
        cache[key] = Program(estimator, problem, n_samples, n_replicates, batch_size, backend)
    return cache[key]


def estimate(name, problem: Problem, theta, n_samples: int, n_replicates: int = 1,
             batch_size: int | None = None, seed=0, backend: str = "xla",
             warmup_batches: int | None = None) -> np.ndarray:
    """R independent estimates of ``∇θ E_{p(x|θ)}[f(x, θ)]`` from one compiled call.

    Args:
      name: A name in ``estimators.ESTIMATORS`` (an identity or a preset), a label
        such as ``"score_function(control_variate=delta)"``, or an
        :class:`estimators.Estimator` from :func:`estimators.get_estimator`.
      problem: An :class:`estimators.Problem`.
      theta: θ: a number for one-parameter problems, else ``d`` numbers or a mapping
        from parameter (or block) name to value(s).
      n_samples: Samples (or grid points) behind each estimate.
      n_replicates: Number R of independent estimates.
      batch_size: Samples drawn and differentiated per step; each estimate is the mean
        of ``n_samples / batch_size`` batch estimates. Default: ``n_samples``.
      seed: A non-negative integer or a pair of them. Same arguments, seed and backend
        give identical numbers.
      backend: "xla" (default), "graph" or "eager".
      warmup_batches: State updates (each on a fresh batch of ``batch_size`` draws, keys
        from ``seed``) before a stateful estimator is measured, every replicate on its
        own; ignored by stateless estimators. Default: the estimator's own
        (``relax(warmup_batches=300)``), else 0: the initial state.

    Returns:
      ``np.ndarray`` of shape ``[n_replicates, d]``, float64, columns in the order of
      ``problem.param_labels``. Non-finite estimates are returned as they are, not raised.

    Raises:
      ValueError: a size that is not positive, ``batch_size`` not dividing
        ``n_samples``, θ of the wrong length, non-finite or out of bounds, an unknown
        estimator, option or backend, a problem whose dist or cost is broken, or an
        estimator that does not apply to the problem
        (:class:`estimators.NotApplicableError`).
      TypeError: a non-integer size or seed, or a problem that is not a ``Problem``.

    Example:

    >>> import estimators as E
    >>> p = E.problems.get("seed_dependence")
    >>> g = E.estimate("reparameterization", p, theta=-2.0, n_samples=1000,
    ...                n_replicates=500, seed=0)
    >>> g.shape
    (500, 1)
    """
    requested = get_estimator(name)
    compiled = program(requested, problem, theta, n_samples, n_replicates, batch_size, backend)
    vector = problem.theta_vector(theta)
    pair = _rng.seed_pair(seed)  # a bad seed is the user's mistake: say so before warning
    warmup_batches = _warmup_count(requested, warmup_batches)
    if compiled.estimator.ignores_measure_gradient and _measure_depends(problem, vector):
        warnings.warn(f"{compiled.label} ignores how p(x|θ) depends on θ, so it is biased "
                      f"on problem '{problem.name}'.", BiasedEstimatorWarning, stacklevel=2)
    elif compiled.estimator.declared_biased:
        warnings.warn(f"{compiled.label} differentiates a continuous relaxation of the discrete "
                      f"draws of problem '{problem.name}', so it is biased (less so at a lower "
                      "temperature, with more variance).", BiasedEstimatorWarning, stacklevel=2)
    elif not compiled.estimator.deterministic:
        _warn_if_f_jumps(compiled.estimator, problem, vector)
    if not compiled.stateful:
        return compiled(vector, seed)
    state = compiled.init_state(vector)
    if warmup_batches:
        warm_key = _rng.fold_in(tf.constant(pair, tf.int32), WARMUP_STREAM).numpy()
        state = compiled.warm_up(vector, state, warmup_batches, seed=tuple(warm_key.tolist()))
    return compiled(vector, seed, state)


SMOOTHNESS_THETAS = 8
"""Distinct θ per problem at which :func:`estimate` tests f for jumps (a pass of draws
each); beyond them it repeats the last finding, with the θ where it was made."""


def _warn_if_f_jumps(estimator: Estimator, problem: Problem, vector) -> None:
    """Warns when f jumps where ``estimator`` differentiates it: along the draws for a
    pathwise estimator, in θ itself (1[x > θ]) for every estimator (autodiff's ∇θ f misses
    it). A pathwise estimator has it tested (:func:`estimators.truth.smoothness`, quick)
    at the first ``SMOOTHNESS_THETAS`` θ of a problem; the others are warned from a test
    that already ran at θ (the truth's, or a pathwise estimate's), since the jumps of f in
    θ are rare and a test costs a traced program per problem. A test that cannot run (the
    problem fails in float64, say) is skipped: the estimate itself reports such
    problems."""
    if not estimator.pathwise:
        smooth = truth.check.cached_smoothness(problem, vector)
        if smooth is not None and smooth.theta_smooth is False:
            warnings.warn(f"{estimator.label} takes f's gradient in θ by autodiff, but on "
                          f"problem '{problem.name}' {truth.check.jump_evidence(smooth, vector)}"
                          ", so its estimates are biased (they miss the jump); give the "
                          "problem a cost that is smooth in θ.", BiasedEstimatorWarning,
                          stacklevel=3)
        return
    seen = _smooth.setdefault(problem, {})
    key = vector.tobytes()
    if key not in seen and len(seen) < SMOOTHNESS_THETAS:
        try:
            seen[key] = (truth.smoothness(problem, vector, quick=True), vector)
        except Exception:  # noqa: BLE001 - only a warning depends on it
            seen[key] = (None, vector)
    found = seen.get(key) or next(((s, v) for s, v in reversed(list(seen.values()))
                                   if s is not None), (None, vector))
    smooth, where = found
    if smooth is None:
        return
    if smooth.smooth is False:
        advice = ("give the problem a cost that is smooth in θ" if smooth.theta_smooth is False
                  else "use score_function or measure_valued")
        warnings.warn(f"{estimator.label} differentiates f along the draws, but on problem "
                      f"'{problem.name}' {truth.check.jump_evidence(smooth, where)}, so its "
                      f"estimates are biased (they miss the jumps); {advice}.",
                      BiasedEstimatorWarning, stacklevel=3)


def _measure_depends(problem: Problem, vector) -> bool:
    depends = _checked.get(problem)
    if depends is None:
        depends = _checked[problem] = problem.measure_depends_on_theta(vector)
    return depends


class StateError(ValueError):
    """An estimator's ``update`` returned a state unlike its ``init``'s."""


def _check_state(label: str, spec, state) -> None:
    """At trace time: ``state`` has the structure, shapes and dtypes of ``spec``."""
    try:
        tf.nest.assert_same_structure(spec, state)
        mismatched = [f"{s.shape.as_list()} {s.dtype.name} became {t.shape.as_list()} "
                      f"{t.dtype.name}" for s, t in zip(tf.nest.flatten(spec),
                                                        tf.nest.flatten(state))
                      if t.dtype != s.dtype or not s.shape.is_compatible_with(t.shape)]
    except (ValueError, TypeError):
        raise StateError(f"{label}: its update returned a state whose entries differ from "
                         "its init's (the same keys, shapes and dtypes are needed).") from None
    if mismatched:
        raise StateError(f"{label}: its update changed a state entry's shape or dtype "
                         f"({mismatched[0]}); it must keep its init's.")


def _describe(state) -> str:
    try:
        return str(tf.nest.map_structure(lambda value: list(np.shape(value)), state))
    except (ValueError, TypeError):
        return f"a {type(state).__name__}"


def _non_negative_int(name: str, value) -> int:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 0:
        raise ValueError(f"{name} must be a whole number of at least 0, got {value!r}.")
    return int(value)


def _positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return _positive_int(name, int(value))
        raise TypeError(f"{name} must be a positive integer, got {value!r}.")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}.")
    return int(value)

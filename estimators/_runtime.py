"""Process-wide TensorFlow settings: the one place gradvar changes anything global.

Importing ``estimators`` applies four settings, in this order, and nothing else in the
package touches process state:

1. **Quiet start-up.** TensorFlow writes start-up chatter (oneDNN notices, "could not find
   cuda drivers", ``cuInit`` failures on machines without a GPU) straight to file
   descriptor 2 before its logging is configured, so ``TF_CPP_MIN_LOG_LEVEL`` alone does
   not silence it. fd 2 points at ``/dev/null`` while TensorFlow imports and probes its
   devices, then is restored; C++ logs are limited to fatal ones
   (``TF_CPP_MIN_LOG_LEVEL=3`` unless set) and TensorFlow's Python logger to ERROR. Set
   ``GRADVAR_TF_LOGS=1`` to see everything TensorFlow prints.
2. **One XLA pass off** (``XLA_FLAGS``, read by XLA at its first compilation):
   while-loop-invariant code motion hoists the Philox counters of each batch's draws out
   of the engine's batch loop into loop-carried buffers the loop body can no longer fuse
   with: batched programs ran slower than the graph backend on CPU with it and faster
   without it, with bit-identical estimates (``docs/PERFORMANCE.md``). A user's own ``--xla_disable_hlo_passes``
   in ``XLA_FLAGS`` wins.
3. **Philox for every draw, and the fast normal sampler for TFP's**
   (:func:`estimators._rng.tracing_rng`,
   applied by the engine, the truth module and the objective while they trace).
   TensorFlow's stateless ops default to ``alg="auto_select"``, which under XLA on CPU
   compiles to a generator measured ~30x slower than Philox. TFP's samplers call those ops without an
   algorithm, so a reparameterized ``tfd.Normal(...).sample(n, seed=key)`` would fall
   into that trap; while gradvar traces its programs, "auto_select" is mapped to Philox.
   This patches a private TensorFlow function (``random_ops_util.get_key_counter_alg``)
   during tracing only; ``tests/estimators/test_engine.py`` fails if a traced program
   draws with anything else.
   In the same window TFP's one entry point for standard normals
   (``tensorflow_probability.python.internal.samplers.normal``, behind Normal, LogNormal,
   every MultivariateNormal, StudentT, HalfNormal and TFP's XLA Gamma sampler) draws
   with :func:`estimators._rng.normal`, faster under XLA than
   ``tf.random.stateless_normal``, with longer tails;
   outside XLA, and for stateful seeds, TFP's own function runs unchanged. Patching
   TFP's entry point rather than rewriting gradvar's ``dist.sample`` calls as
   loc + scale·ε keeps every distribution's own sampling and reparameterization (and
   user-written measures, the truth module and the objective) as TFP writes them, and
   covers every family whose sampler uses normals, not only the Normal ones;
   ``tests/estimators/test_normal_sampler.py`` fails if an XLA program still traces
   TensorFlow's normal op. If a TFP release changes ``samplers.normal``'s signature,
   the patch is skipped (draws stay correct, only slower) and that test fails.
4. **Log-density gradients in shape parameters** (:func:`_fix_log_gradients`). TFP
   writes ``(c - 1)·log x`` as ``tf.math.xlogy(c - 1, x)`` (Beta, Gamma, Dirichlet, ...),
   and TensorFlow's gradient of ``xlogy(a, y)`` in ``a`` is 0 where a = 0 instead of
   log y. At a concentration of exactly 1 (Beta(1, b), Gamma(1, r) = Exponential(r)) the
   score ∂ log p/∂c lost its log x term, and since score-function estimates and
   quadrature truths both differentiate ``log_prob``, they were wrong together and the
   truth's Monte Carlo check passed (Beta(1 + θ, 2), f = x², θ = 0: 0.085 against the
   closed form 22/144 = 0.153). The gradients of ``Xlogy`` and ``Xlog1py`` are
   re-registered with ∂/∂a = log y (log1p y) wherever that is finite, TensorFlow's 0
   kept where it is not (x = 0 under Beta(1, b)); tested in
   ``tests/estimators/test_log_prob_gradients.py``.
"""

from __future__ import annotations

import contextlib
import os
import warnings

_VERBOSE = os.environ.get("GRADVAR_TF_LOGS", "") not in ("", "0")
if not _VERBOSE:
    # 3: C++ errors too. TF 2.21's Grappler logs "function_optimizer failed" errors for
    # TFP's implementation-selected samplers (Gamma, Poisson) that change nothing; real
    # failures still raise Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "xla_disable_hlo_passes" not in os.environ.get("XLA_FLAGS", ""):
    _PASS = "--xla_disable_hlo_passes=while-loop-invariant-code-motion"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_PASS}".strip()


@contextlib.contextmanager
def _quiet_fd2():
    if _VERBOSE:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (e.g. a daemon): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _quiet_fd2(), warnings.catch_warnings():
    # TFP 0.25 imports distutils-era helpers and warns about it on import.
    warnings.simplefilter("ignore", DeprecationWarning)
    import tensorflow as tf
    import tensorflow_probability as tfp

    GPUS = tuple(tf.config.list_physical_devices("GPU"))
    # The first op initialises the device runtime, which logs too.
    tf.constant(0.0).numpy()

if not _VERBOSE:
    tf.get_logger().setLevel("ERROR")

tfd = tfp.distributions

DEVICE = "GPU:0" if GPUS else "CPU:0"
"""The device gradvar's programs run on (TensorFlow's default placement)."""

RNG_ALG = "philox"
"""The bit generator of every draw (see 3. above)."""

def _log_gradient_in_x(op_type: str, log):
    """TensorFlow's gradient of ``op_type`` (x·log(y) or x·log1p(y)) with ∂/∂x = log(y)
    also where x = 0 (TensorFlow gives 0 there, a convention for x = y = 0 that is wrong
    wherever log(y) is finite)."""
    from tensorflow.python.ops import gen_array_ops, gen_math_ops

    product = gen_math_ops.xlogy if op_type == "Xlogy" else gen_math_ops.xlog1py
    shift = 0.0 if op_type == "Xlogy" else 1.0

    def gradient(op, grad):
        x, y = op.inputs
        sx, sy = tf.shape(x), tf.shape(y)
        rx, ry = gen_array_ops.broadcast_gradient_args(sx, sy)
        with tf.control_dependencies([grad]):
            defined = tf.cast(tf.logical_or(tf.not_equal(x, 0), tf.math.is_finite(log(y))),
                              x.dtype)
            partial_x = product(defined, y)  # log(y) wherever it is finite or x ≠ 0
            partial_y = gen_math_ops.xdivy(x, y + shift)
            return (tf.reshape(tf.reduce_sum(partial_x * grad, rx), sx),
                    tf.reshape(tf.reduce_sum(partial_y * grad, ry), sy))

    return gradient


def _fix_log_gradients() -> None:
    """Setting 4 (module docstring): the gradients of Xlogy and Xlog1py in x."""
    from tensorflow.python.framework import ops

    registry = ops._gradient_registry._registry  # noqa: SLF001 - no public way to replace one
    for op_type, log in (("Xlogy", tf.math.log), ("Xlog1py", tf.math.log1p)):
        registry[op_type] = {**registry[op_type],
                             "type": _log_gradient_in_x(op_type, log)}


_fix_log_gradients()


__all__ = ["tf", "tfp", "tfd", "GPUS", "DEVICE", "RNG_ALG"]

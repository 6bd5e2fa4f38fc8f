"""Keyed, stateless randomness.

Every random draw in gradvar comes from ``tf.random.stateless_*`` ops keyed by a ``[2]``
int32 seed with an explicit algorithm (``RNG_ALG``, Philox: see ``_runtime``), so the
same arguments give the same numbers (per backend: XLA's draws differ from graph/eager
draws for the same key, a known TensorFlow behaviour).

Every standard normal draw comes from :func:`normal`: under XLA, Philox bits through the
inverse normal CDF, about twice as fast as ``tf.random.stateless_normal`` and with longer
tails; elsewhere TensorFlow's own kernel, which is the faster one there.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading

import numpy as np

from estimators._runtime import RNG_ALG as ALG
from estimators._runtime import tf


def seed_pair(seed) -> np.ndarray:
    """A user seed (an int, or two ints) as the ``[2]`` int32 key stateless ops take.

    Raises:
      TypeError: if ``seed`` is not an integer or a pair of integers.
      ValueError: if it is negative.
    """
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be an integer or a pair of integers, got {seed!r}.")
    if isinstance(seed, (int, np.integer)):
        value = int(seed)
        if value < 0:
            raise ValueError(f"seed must be a non-negative integer, got {value}.")
        # Split into two 31-bit halves so every Python int below 2**62 keys uniquely.
        return np.array([value & 0x7FFFFFFF, (value >> 31) & 0x7FFFFFFF], dtype=np.int32)
    try:
        pair = np.asarray(seed)
    except Exception:  # noqa: BLE001 - any unconvertible object is the user's mistake
        pair = None
    if pair is None or pair.shape != (2,) or not np.issubdtype(pair.dtype, np.integer):
        raise TypeError(f"seed must be an integer or a pair of integers, got {seed!r}.")
    return pair.astype(np.int32)


def fold_in(key, data):
    """Derives an independent key from ``key`` and an integer ``data`` (e.g. a batch index)."""
    return tf.random.experimental.stateless_fold_in(key, data, alg=ALG)


def compiling_for_xla() -> bool:
    """Whether ops created now are being traced into an XLA-compiled function
    (``tf.function(jit_compile=True)``, or a loop body or function nested in one).

    The test TensorFlow Probability makes to pick its XLA samplers
    (``implementation_selection.is_xla``), on TensorFlow's private ``control_flow_util``.
    """
    from tensorflow.python.ops import control_flow_util  # no public equivalent

    return not tf.executing_eagerly() and control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph())


# Wichura's rational approximations of Φ⁻¹ (Algorithm AS 241, Applied Statistics 37(3),
# 1988): PPND7 (relative error ~1e-7) for float32, PPND16 (~1e-16) for float64. Each
# branch is numerator / denominator, coefficients from the highest power down.
# Central branch, |u - ½| ≤ 0.425, in r = 0.180625 - (u - ½)², times (u - ½).
# Tail branches in r = √(-log u) - 1.6 (r + 1.6 ≤ 5) and r = √(-log u) - 5 (beyond).
_PPND7 = (
    ((5.9109374720e+01, 1.5929113202e+02, 5.0434271938e+01, 3.3871327179e+00),
     (6.7187563600e+01, 7.8757757664e+01, 1.7895169469e+01, 1.0)),
    ((1.7023821103e-01, 1.3067284816e+00, 2.7568153900e+00, 1.4234372777e+00),
     (1.2021132975e-01, 7.3700164250e-01, 1.0)),
)  # u ≥ 2⁻³³ keeps r + 1.6 ≤ 4.8: PPND7's third branch is never needed
_PPND16 = (
    ((2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
      4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
      1.3314166789178437745e+2, 3.3871328727963666080e+0),
     (5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
      2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
      4.2313330701600911252e+1, 1.0)),
    ((7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
      1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
      4.63033784615654529590e+0, 1.42343711074968357734e+0),
     (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
      1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
      2.05319162663775882187e+0, 1.0)),
    ((2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
      2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
      5.46378491116411436990e+0, 6.65790464350110377720e+0),
     (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
      7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
      5.99832206555887937690e-1, 1.0)),
)


def _horner(x, coefficients):
    value = tf.constant(coefficients[0], x.dtype)
    for c in coefficients[1:]:
        value = value * x + c
    return value


def upper_quantile(u, branches):
    """-Φ⁻¹(u) ≥ 0 for u in (0, ½] as ``(numerator ≥ 0, denominator > 0)``: Wichura's
    branches, selected per element (every branch is computed: vectorized code has no
    cheaper way), the division left to the caller."""
    q = 0.5 - u  # ≥ 0, exact enough near 0 and ½ alike
    r = tf.sqrt(-tf.math.log(u))
    (a, b), (c, d), *far = branches
    central = q <= 0.425
    rc = 0.180625 - q * q
    if far:
        (e, f), = far
        near = r <= 5.0
        rt = tf.where(near, r - 1.6, r - 5.0)
        tail_num = tf.where(near, _horner(rt, c), _horner(rt, e))
        tail_den = tf.where(near, _horner(rt, d), _horner(rt, f))
    else:
        rt = r - 1.6
        tail_num, tail_den = _horner(rt, c), _horner(rt, d)
    numerator = tf.where(central, q * _horner(rc, a), tail_num)
    denominator = tf.where(central, _horner(rc, b), tail_den)
    return numerator, denominator


def tail_quantile(u, negative):
    """Φ⁻¹ from a tail mass: -Φ⁻¹(u) ≥ 0 for u in (0, ½] (float32: PPND7, float64:
    PPND16), negated where ``negative``. The sign last, by a select: other placements
    (sign bit flipped by xor, numerator signed before the division, multiplying by
    j / |j|) stop LLVM from vectorizing the loop when XLA fuses the draws into a reduction
    over a few rows (the engine's batch mean at batch_size 10), which then ran 2x slower
    than TensorFlow's sampler."""
    branches = _PPND16 if u.dtype == tf.float64 else _PPND7
    numerator, denominator = upper_quantile(u, branches)
    magnitude = numerator / denominator
    return tf.where(negative, -magnitude, magnitude)


def normal(shape, seed, dtype=tf.float32):
    """Standard normal draws of ``shape``, keyed by ``seed`` (stateless, Philox).

    **Under XLA** (traced inside ``tf.function(jit_compile=True)``) each draw is made from
    one Philox word of ``w`` bits (w = 32 for float32, 64 for float64), read as a signed
    integer j: z takes j's sign, and the other ``w - 1`` bits, k = |j + ½| - ½, give

        u = (k + ½)·2⁻ʷ ∈ (0, ½),    |z| = -Φ⁻¹(u),

    with -Φ⁻¹ computed on the lower tail, where u carries full relative precision, by
    Wichura's AS 241 rational approximations (PPND7 for float32, relative error < 5e-7
    measured; PPND16 for float64, < 2e-15). Sign and magnitude are independent and u is
    uniform on its grid, so z is N(0, 1) up to that grid: the tails reach
    -Φ⁻¹(2⁻³³) = 6.34 σ in float32 and -Φ⁻¹(2⁻⁶⁵) = 9.16 σ in float64 (mass beyond:
    2.3e-10 and 5e-20). TensorFlow's own sampler (Box–Muller, u₁ ≥ 1e-7 in both its XLA
    and CPU kernels) stops at 5.68 σ (mass beyond: 1.3e-8); ``tf.math.ndtri`` and
    ``erfinv`` compile under XLA to √2·erfinv(2u - 1), whose float32 rounding of 2u - 1
    makes draws 0.15% off at 5 σ, 2% at 5.5 σ and infinite for u < 2⁻²⁶ (measured),
    hence the rational approximations. Float16/bfloat16 are drawn in float32 and cast.

    Under XLA it is 1.7x as fast as ``tf.random.stateless_normal`` for 10⁶ float32
    draws (6.89 against 11.45 ms); the runs, and the variants that lost (an xor for the
    sign, Giles' erfinv), are in ``docs/PERFORMANCE.md``.

    **Elsewhere** (graph, eager) the same transform runs op by op and loses to
    TensorFlow's fused kernel (float32: 25.1 against 20.1 ms), so there this is
    ``tf.random.stateless_normal``
    with Philox: each backend gets its fastest N(0, 1) sampler, and draws differ by
    backend for the same key, as TensorFlow's own draws always have.
    ``python -m bench.asv.figures --only normals`` times the three samplers above.
    """
    dtype = tf.as_dtype(dtype)
    if not compiling_for_xla():
        return tf.random.stateless_normal(shape, seed, dtype=dtype, alg=ALG)
    bits_dtype = tf.uint64 if dtype == tf.float64 else tf.uint32
    bits = tf.random.stateless_uniform(shape, seed, minval=None, maxval=None,
                                       dtype=bits_dtype, alg=ALG)
    z = from_bits(bits)
    return z if z.dtype == dtype else tf.cast(z, dtype)


def from_bits(bits):
    """The normals :func:`normal` makes under XLA from Philox words ``bits``: float32 from
    uint32, float64 from uint64 (any backend; exposed for tests of the extreme words)."""
    if bits.dtype == tf.uint64:
        signed, working = tf.int64, tf.float64
    else:
        signed, working = tf.int32, tf.float32
    width = bits.dtype.size * 8
    # The word as a signed integer j: z takes j's sign, and |j + ½| = k + ½ with k the
    # other w - 1 bits (k = j, or -j - 1 for j < 0).
    shifted = tf.cast(tf.bitcast(bits, signed), working) + 0.5  # j + ½
    u = tf.abs(shifted) * 2.0**-width  # (0, ½]: ½ only by rounding
    return tail_quantile(u, shifted < 0)




# -- the samplers gradvar's programs trace with ---------------------------------------------

_PHILOX = 1  # tensorflow.python.ops.random_ops_util.Algorithm.PHILOX
_AUTO_SELECT = 3
_TFP_NORMAL = ("shape", "mean", "stddev", "dtype", "seed", "name")  # samplers.normal's
_patch_lock = threading.RLock()


def _philox_by_default(original):
    """``random_ops_util.get_key_counter_alg`` with no algorithm (or "auto_select")
    resolved to Philox; ops given another explicit ``alg`` keep it."""

    @functools.wraps(original)
    def get_key_counter_alg(seed, alg):
        if alg is None or (isinstance(alg, str) and alg.replace("_", "").lower() == "autoselect") \
                or (isinstance(alg, int) and alg == _AUTO_SELECT):
            alg = _PHILOX
        return original(seed, alg)

    return get_key_counter_alg


@functools.lru_cache(maxsize=None)
def _fast_normals(samplers, original):
    """TFP's ``samplers.normal`` (``original``) drawing with ``_rng.normal`` under XLA, or
    None when this TFP's function is not the one this was written for (then it is left
    alone). Built once: :func:`tracing_rng` is entered on every call of a training step."""
    try:
        parameters = tuple(inspect.signature(original).parameters)
    except (TypeError, ValueError):
        return None
    if parameters != _TFP_NORMAL or not all(hasattr(samplers, name) for name in (
            "is_stateful_seed", "sanitize_seed", "_get_seed_and_old_salt")):
        return None

    @functools.wraps(original)
    def normal(shape, mean=0.0, stddev=1.0, dtype=tf.float32, seed=None, name=None):
        if samplers.is_stateful_seed(seed) or not compiling_for_xla():
            return original(shape, mean=mean, stddev=stddev, dtype=dtype, seed=seed, name=name)
        with tf.name_scope(name or "normal"):  # what TFP's function does, but the op
            seed, _ = samplers._get_seed_and_old_salt(samplers.sanitize_seed(seed))
            mean = tf.convert_to_tensor(mean, dtype=dtype)
            stddev = tf.convert_to_tensor(stddev, dtype=dtype)
            return _module_normal(shape, seed, dtype) * stddev + mean

    return normal


@contextlib.contextmanager
def tracing_rng():
    """While tracing: Philox for stateless ops given no algorithm, and TFP's standard
    normals from :func:`normal` under XLA (``estimators._runtime``, 3.).

    Only affects graph construction inside the ``with`` block (tracing), which is where
    the algorithm and the sampler are baked into a program; one thread patches at a time.
    """
    from tensorflow.python.ops import random_ops_util  # the only place TF resolves it
    from tensorflow_probability.python.internal import samplers  # TFP's only normal sampler

    with _patch_lock:
        original_alg, original_normal = random_ops_util.get_key_counter_alg, samplers.normal
        fast = _fast_normals(samplers, original_normal)
        random_ops_util.get_key_counter_alg = _philox_by_default(original_alg)
        if fast is not None:
            samplers.normal = fast
        try:
            yield
        finally:
            random_ops_util.get_key_counter_alg = original_alg
            samplers.normal = original_normal


def _module_normal(shape, seed, dtype):
    return normal(shape, seed, dtype)


__all__ = ["ALG", "tracing_rng", "seed_pair", "fold_in", "compiling_for_xla", "normal", "from_bits",
           "tail_quantile"]

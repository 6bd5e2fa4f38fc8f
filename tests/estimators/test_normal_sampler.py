"""estimators._rng.normal: the sampler of every normal draw, against N(0, 1).

10^7 draws per backend and dtype, fixed keys (deterministic, so no flakes): moments and
tail probabilities within 5 SE of the exact normal values, and a Kolmogorov-Smirnov test.
The XLA transform is also checked word by word against scipy's Φ⁻¹, including the words
that give the extreme tails, and compiled programs must draw with it.
"""

import functools

import numpy as np
import pytest
from scipy import special, stats

import estimators as E
import tensorflow as tf
from estimators import _rng
from estimators._rng import tracing_rng
from estimators._runtime import tfd
from tests.conftest import stateless_random_ops

N = 10**7
KEY = (20250815, 15)
BACKENDS = ("xla", "graph")
DTYPES = ("float32", "float64")


@functools.lru_cache(maxsize=None)
def compiled(backend: str, dtype: str, size: int):
    """``key -> size`` normals from ``_rng.normal``, traced once per backend and dtype."""
    return tf.function(lambda key: _rng.normal([size], key, tf.as_dtype(dtype)),
                       jit_compile=backend == "xla",
                       input_signature=[tf.TensorSpec([2], tf.int32)])


def draw(backend: str, dtype: str, size: int = N, key=KEY) -> np.ndarray:
    return compiled(backend, dtype, size)(tf.constant(key, tf.int32)).numpy()


@pytest.fixture(scope="module", params=[(b, d) for b in BACKENDS for d in DTYPES],
                ids=lambda p: "-".join(p))
def draws(request):
    """10^7 draws of one backend and dtype, as float64 (pytest groups tests by it)."""
    backend, dtype = request.param
    z = draw(backend, dtype)
    assert z.dtype == np.dtype(dtype) and z.shape == (N,)
    assert np.all(np.isfinite(z))
    return z.astype(np.float64)


def test_moments_within_5_se(draws):
    n = len(draws)
    mean = draws.mean()
    centred = draws - mean
    m2, m3, m4 = (np.mean(centred**k) for k in (2, 3, 4))
    # Statistic, exact value, SE from the normal's moments (large-n: var(z²) = 2, the
    # skewness' variance 6/n, the excess kurtosis' 24/n).
    checks = {
        "mean": (mean, 0.0, np.sqrt(1.0 / n)),
        "variance": (m2, 1.0, np.sqrt(2.0 / n)),
        "skewness": (m3 / m2**1.5, 0.0, np.sqrt(6.0 / n)),
        "excess kurtosis": (m4 / m2**2 - 3.0, 0.0, np.sqrt(24.0 / n)),
    }
    for name, (value, exact, se) in checks.items():
        assert abs(value - exact) <= 5 * se, f"{name}: {value:.3g} vs {exact} (SE {se:.2g})"


@pytest.mark.parametrize("t", [2.0, 3.0, 4.0, 4.5])
def test_tail_probabilities_within_5_se(draws, t):
    n = len(draws)
    exact = stats.norm.sf(t)
    se = np.sqrt(exact * (1.0 - exact) / n)  # binomial
    for side, count in (("upper", np.count_nonzero(draws > t)),
                        ("lower", np.count_nonzero(draws < -t))):
        assert abs(count / n - exact) <= 5 * se, \
            f"P(z {'>' if side == 'upper' else '<'} {'' if side == 'upper' else '-'}{t}) = " \
            f"{count / n:.4g} vs {exact:.4g} (SE {se:.2g})"


def test_kolmogorov_smirnov(draws):
    assert stats.kstest(draws, "norm").pvalue > 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_same_key_same_draws_other_keys_differ(backend, dtype):
    first = draw(backend, dtype, 1000)
    np.testing.assert_array_equal(first, draw(backend, dtype, 1000))
    other = draw(backend, dtype, 1000, key=(KEY[0], KEY[1] + 1))
    assert not np.any(first == other)
    # Not all distinct: TensorFlow's float32 kernel (graph) repeats a value in these 1,000.
    assert len(np.unique(first)) >= 999


def test_half_precision_is_drawn_in_float32():
    z = tf.function(lambda key: _rng.normal([3, 4], key, tf.float16), jit_compile=True)(
        tf.constant(KEY))
    assert z.dtype == tf.float16 and z.shape == (3, 4)


def _reference(words: np.ndarray) -> np.ndarray:
    """The exact value of :func:`_rng.from_bits` for uint32 or uint64 words: the word as
    a signed integer j gives the sign, and u = |j + ½|·2⁻ʷ."""
    width = words.dtype.itemsize * 8
    j = words.view(np.int32 if width == 32 else np.int64)
    k = np.where(j < 0, -(j + 1), j)  # |j + ½| = k + ½
    z = -special.ndtri((k.astype(np.float64) + 0.5) * 2.0**-width)
    return np.where(j < 0, -z, z)


def _words(dtype) -> np.ndarray:
    """Random words, the extremes, and words at the approximations' branch points."""
    info = np.iinfo(dtype)
    width = info.bits
    rng = np.random.default_rng(15)
    random = rng.integers(0, info.max, size=200_000, dtype=dtype, endpoint=True)
    # u = (k + ½)·2⁻ʷ near 0.075 (central | tail) and e⁻²⁵ (PPND16's far tail), either sign.
    ks = [int(0.075 * 2.0**width), int(np.exp(-25.0) * 2.0**width)]
    near = [k + d for k in ks for d in range(-3, 4) if k + d >= 0]
    edges = [0, 1, 2, 3, 2**(width - 1) - 2, 2**(width - 1) - 1]
    # k ≥ 0 is the word k (j = k) or the word 2ʷ - 1 - k (j = -k - 1).
    special_words = [w for k in near + edges for w in (k, info.max - k)]
    return np.concatenate([random, np.array(special_words, dtype=dtype)])


@pytest.mark.parametrize("jit", [True, False], ids=["xla", "graph"])
@pytest.mark.parametrize("dtype, tolerance", [(np.uint32, 1e-6), (np.uint64, 1e-14)])
def test_from_bits_is_the_inverse_normal_cdf_of_each_word(jit, dtype, tolerance):
    words = _words(dtype)
    z = tf.function(_rng.from_bits, jit_compile=jit)(tf.constant(words)).numpy()
    exact = _reference(words)
    error = np.abs(z - exact) / np.maximum(1.0, np.abs(exact))
    worst = int(np.argmax(error))
    assert error[worst] <= tolerance, (words[worst], z[worst], exact[worst])
    # The extreme words: the tails reach well past TensorFlow's 5.68 σ (u₁ ≥ 1e-7).
    width = np.iinfo(dtype).bits
    limit = -special.ndtri(2.0**-(width + 1))
    assert np.max(z) == pytest.approx(limit, rel=tolerance) and np.max(z) > 6.3
    assert np.min(z) == -np.max(z)


def test_compiling_for_xla():
    seen = {}

    def body(i):
        seen.setdefault("loop", _rng.compiling_for_xla())
        return i + 1

    def probe(x):
        seen.setdefault("top", _rng.compiling_for_xla())
        tf.while_loop(lambda i: i < 2, body, [tf.constant(0)])
        return x

    tf.function(probe, jit_compile=True)(tf.constant(1.0))
    assert seen == {"top": True, "loop": True}
    seen.clear()
    tf.function(probe)(tf.constant(1.0))
    assert seen == {"top": False, "loop": False}
    assert not _rng.compiling_for_xla()  # eager


@pytest.mark.parametrize("estimator", ["reparameterization", "reparameterization_antithetic",
                                       "measure_valued", "score_function"])
def test_xla_programs_draw_normals_with_the_fast_sampler(estimator):
    # TFP's sampling (iid), antithetic ε and the measure-valued noise: Philox words only,
    # never TensorFlow's normal op (1 == Philox).
    problem = E.problems.get("seed_dependence")
    program = E.program(estimator, problem, -1.0, 32, n_replicates=8)
    program(-1.0, seed=3)
    ops = stateless_random_ops(program._function)
    assert ops and {alg for _, alg in ops} == {1}, ops
    assert "StatelessRandomNormalV2" not in {kind for kind, _ in ops}, ops


def test_graph_programs_keep_tensorflows_normal_kernel():
    problem = E.problems.get("seed_dependence")
    program = E.program("reparameterization", problem, -1.0, 32, n_replicates=8,
                        backend="graph")
    program(-1.0, seed=3)
    assert ("StatelessRandomNormalV2", 1) in stateless_random_ops(program._function)


@pytest.mark.parametrize("make", [
    lambda: tfd.Normal(0.5, 2.0),
    lambda: tfd.MultivariateNormalDiag([0.5, 0.5], [2.0, 2.0]),
    lambda: tfd.Independent(tfd.Normal([0.5, 0.5], [2.0, 2.0]), 1),
    lambda: tfd.LogNormal(0.5, 2.0),
], ids=["Normal", "MultivariateNormalDiag", "Independent", "LogNormal"])
def test_tfp_samples_under_xla_come_from_the_fast_sampler(make):
    # While gradvar traces (tracing_rng), TFP's standard normals under XLA are _rng.normal's:
    # the same numbers as the fast sampler with TFP's key, so the same distribution.
    dist = make()
    sample = tf.function(lambda key: dist.sample(5, seed=key), jit_compile=True,
                         input_signature=[tf.TensorSpec([2], tf.int32)])
    with tracing_rng():
        x = sample(tf.constant(KEY)).numpy()
    assert "StatelessRandomNormalV2" not in {kind for kind, _ in stateless_random_ops(sample)}
    assert x.shape[0] == 5 and np.all(np.isfinite(x))


def test_tfp_normal_draws_equal_the_fast_samplers():
    # Normal.sample = loc + scale · samplers.normal(seed): with the patch, exactly that
    # formula over _rng.normal (TFP's seed handling passes a [2] key through unchanged).
    loc, scale = 0.5, 2.0

    def both(key):
        return (tfd.Normal(loc, scale).sample(1000, seed=key),
                loc + scale * _rng.normal([1000], key))

    with tracing_rng():
        tfp_draws, ours = tf.function(both, jit_compile=True)(tf.constant(KEY))
    np.testing.assert_allclose(tfp_draws.numpy(), ours.numpy(), rtol=1e-6, atol=1e-6)


def test_tracing_rng_restores_tfp_and_leaves_other_seeds_alone():
    from tensorflow_probability.python.internal import samplers

    original = samplers.normal
    with tracing_rng():
        assert samplers.normal is not original
        # Outside XLA (here: eager), TFP's own function runs: the same numbers as without.
        inside = samplers.normal([4], seed=tf.constant(KEY)).numpy()
    assert samplers.normal is original
    np.testing.assert_array_equal(inside, samplers.normal([4], seed=tf.constant(KEY)).numpy())

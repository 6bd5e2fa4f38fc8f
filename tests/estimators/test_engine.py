"""The replicate engine: determinism, no retracing, Philox, backends, batching."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import estimators as E
from tests.conftest import assert_within_se, stateless_random_ops

P = E.problems.get("seed_dependence")


def test_same_arguments_give_identical_numbers():
    first = E.estimate("score_function", P, -1.0, 64, n_replicates=32, batch_size=16, seed=9)
    second = E.estimate("score_function", P, -1.0, 64, n_replicates=32, batch_size=16, seed=9)
    np.testing.assert_array_equal(first, second)


def test_different_seeds_differ_and_replicates_are_distinct():
    first = E.estimate("score_function", P, -1.0, 64, n_replicates=32, seed=9)
    second = E.estimate("score_function", P, -1.0, 64, n_replicates=32, seed=10)
    assert not np.array_equal(first, second)
    assert len(np.unique(first)) == 32


def test_no_retracing_across_theta_and_seed():
    program = E.program("reparameterization", P, 0.0, 32, n_replicates=8, backend="graph")
    for i, theta in enumerate((-2.0, -1.0, 0.5)):
        E.estimate("reparameterization", P, theta, 32, n_replicates=8, seed=i, backend="graph")
    assert program.trace_count == 1


def test_programs_draw_with_philox():
    # auto_select compiles to a ~30x slower generator under XLA on CPU (estimators/_rng.py).
    program = E.program("reparameterization", P, -1.0, 32, n_replicates=8, batch_size=8,
                        backend="graph")
    E.estimate("reparameterization", P, -1.0, 32, n_replicates=8, batch_size=8, backend="graph")
    algorithms = [alg for _, alg in stateless_random_ops(program._function)]
    assert algorithms and set(algorithms) == {1}, algorithms  # 1 == Philox


@pytest.mark.parametrize("backend", ["graph", "eager"])
def test_backends_agree_in_distribution(backend):
    # Draws differ per backend (XLA vs graph); compare by distribution, never elementwise.
    truth = P.true_gradient(-1.0)
    estimates = E.estimate("reparameterization", P, -1.0, 100, n_replicates=2000, seed=1,
                           batch_size=50, backend=backend)
    assert_within_se(estimates, truth)


def test_batches_are_averaged():
    # 100 batches of 10 inside one program: still unbiased, one row per replicate.
    estimates = E.estimate("score_function", P, -1.0, 1000, n_replicates=3000, batch_size=10,
                           seed=3)
    assert estimates.shape == (3000, 1)
    assert_within_se(estimates, P.true_gradient(-1.0))


def test_returns_float64_array_of_replicates_by_parameters():
    g = E.estimate("score_function", E.problems.get("gaussian_cos"), (1.0, 1.0), 10,
                   n_replicates=7)
    assert g.shape == (7, 2) and g.dtype == np.float64


def test_theta_by_name():
    g1 = E.estimate("score_function", E.problems.get("gaussian_cos"), {"mean": 1.0, "std": 2.0}, 10,
                    n_replicates=7, seed=1)
    g2 = E.estimate("score_function", E.problems.get("gaussian_cos"), (1.0, 2.0), 10,
                    n_replicates=7, seed=1)
    np.testing.assert_array_equal(g1, g2)


def test_non_finite_estimates_are_returned_not_raised():
    # exp(θ|x|) at θ=60 overflows float32 for typical draws.
    g = E.estimate("score_function", P, 60.0, 100, n_replicates=4)
    assert not np.all(np.isfinite(g))


def test_compile_time_is_recorded_once():
    program = E.program("naive_mc", E.problems.get("seed_fixed"), 0.0, 17, n_replicates=3)
    E.estimate("naive_mc", E.problems.get("seed_fixed"), 0.0, 17, n_replicates=3)
    first = program.compile_time_s
    E.estimate("naive_mc", E.problems.get("seed_fixed"), 0.5, 17, n_replicates=3)
    assert first is not None and first > 0 and program.compile_time_s == first


def _gaussian_problem(name, cost):
    return E.Problem(name=name, param_names=("mu",),
                     dist=lambda t: tfp.distributions.Normal(t, 1.0), cost=cost)


def _squared(x, theta):
    return x**2


def _branching(x, theta):
    if tf.reduce_max(x) > 1e6:  # a Python branch on a tensor: a plain trace refuses it
        return tf.zeros_like(x)
    return x**2


@pytest.mark.parametrize("backend", ["xla", "graph"])
@pytest.mark.parametrize("estimator, batch", [("score_function", 16), ("reparameterization", 16),
                                              ("reparameterization", 100)],
                         ids=["score_function", "reparameterization", "forward-mode"])
def test_a_cost_branching_on_a_tensor_is_traced_again_with_autograph(estimator, batch, backend):
    # Programs trace without autograph (module docstring); a cost that needs it gets it
    # and the numbers of the same cost written without the branch.
    plain = E.program(estimator, _gaussian_problem("plain", _squared), 0.3, batch, 6,
                      batch_size=batch, backend=backend)
    branching = E.program(estimator, _gaussian_problem("branching", _branching), 0.3, batch,
                          6, batch_size=batch, backend=backend)
    np.testing.assert_array_equal(branching(0.3, seed=4), plain(0.3, seed=4))
    expected = "forward" if backend == "xla" and batch >= E.engine.FORWARD_MIN_BATCH else "reverse"
    assert branching.differentiation == plain.differentiation == expected
    assert (plain._autograph, branching._autograph) == (False, True)

"""Minibatches (estimators/minibatches.py): a problem's data moved without retracing, keyed
epochs, dynamic binarization, and the truth refused away from the problem's own minibatch."""

import numpy as np
import pytest

import estimators as E
from estimators.minibatches import Minibatches
from estimators.problems import vae


def test_each_epoch_visits_every_minibatch_once_in_a_keyed_order():
    data = Minibatches(np.zeros((23, 2)), size=5)  # 4 minibatches, 3 rows left over
    assert data.count == 4
    epochs = [[data.for_step(7, step) for step in range(4 * epoch, 4 * epoch + 4)]
              for epoch in range(3)]
    assert all(sorted(epoch) == [0, 1, 2, 3] for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) > 1  # a new order each epoch
    assert [data.for_step(7, s) for s in range(12)] == [data.for_step(7, s) for s in range(12)]
    assert [data.for_step(8, s) for s in range(12)] != [data.for_step(7, s) for s in range(12)]


def test_dynamic_minibatches_are_drawn_from_the_grey_levels_by_their_key():
    grey = np.full((40, 1000), 0.3)
    data = Minibatches(grey, size=10, dynamic=True)
    home = data.read("float64").numpy()
    assert set(np.unique(home)) == {0.0, 1.0} and abs(home.mean() - 0.3) < 0.02
    data.select(2, key=(5, 9))
    first = data.read("float64").numpy()
    data.select(2, key=(5, 9))
    np.testing.assert_array_equal(data.read("float64").numpy(), first)
    data.select(2, key=(5, 10))
    assert not np.array_equal(data.read("float64").numpy(), first) and not data.at_home
    data.select_home()
    np.testing.assert_array_equal(data.read("float64").numpy(), home)


@pytest.mark.parametrize("arguments, message", [
    (dict(size=0), "size must be a whole number from 1 to the 6 rows"),
    (dict(size=7), "size must be a whole number from 1 to the 6 rows"),
    (dict(size=2, home=3), "home must be a minibatch from 0 to 2"),
])
def test_bad_minibatches_are_one_sentence(arguments, message):
    with pytest.raises(ValueError, match=message):
        Minibatches(np.zeros((6, 2)), **arguments)


@pytest.fixture(scope="module")
def small_vae():
    return E.problems.get("bernoulli_vae", latents=3, batch=10)


def test_a_program_reads_the_current_minibatch_without_tracing_again(small_vae):
    """The estimates after moving to minibatch k are those of the problem built on
    minibatch k (same seed), from one traced program."""
    theta = small_vae.theta_vector("start")
    program = E.program("disarm", small_vae, theta, n_samples=4, n_replicates=3)
    home = program(theta, 11)
    try:
        small_vae.minibatches.select(5)
        moved = program(theta, 11)
    finally:
        small_vae.minibatches.select_home()
    built = E.problems.get("bernoulli_vae", latents=3, batch=10, batch_index=5)
    np.testing.assert_allclose(moved, E.program("disarm", built, theta, 4, 3)(theta, 11),
                               rtol=1e-6, atol=1e-7)
    assert not np.allclose(moved, home)
    np.testing.assert_array_equal(program(theta, 11), home)
    assert program.trace_count == 1


def test_the_truth_is_refused_away_from_the_problems_own_minibatch(small_vae):
    theta = vae.initial_theta(small_vae)
    value = small_vae.true_value(theta)
    small_vae.minibatches.select(2)
    try:
        with pytest.raises(ValueError, match=r"computed on the problem's own minibatch \(0\), "
                                             r"and another is current; call "
                                             r"problem.minibatches.select_home\(\) first"):
            small_vae.true_value(theta)
    finally:
        small_vae.minibatches.select_home()
    assert small_vae.true_value(theta) == value


def test_the_vaes_diagnostics_are_its_train_elbo_and_test_bound(small_vae):
    """Deterministic in θ; the K-sample bound is at least the one-sample ELBO's (Burda et al.
    2016) up to their Monte Carlo errors, and both are near the exact ELBO of a minibatch."""
    theta = small_vae.theta_vector("start")
    first = E.objective.diagnostics(small_vae, theta)
    assert first == E.objective.diagnostics(small_vae, theta)
    assert set(first) == {"train_elbo", "test_bound"}
    assert first["test_bound"] > first["train_elbo"] - 1.0
    assert abs(first["train_elbo"] - small_vae.true_value(theta)) < 3.0
    one = E.problems.get("bernoulli_vae", latents=3, batch=10, test_samples=1)
    # K = 1: the bound is the ELBO of the test images, below the K = 100 bound
    assert E.objective.diagnostics(one, theta)["test_bound"] < first["test_bound"]

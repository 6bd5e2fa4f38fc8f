"""Parameter blocks: θ's layout, the forms θ is accepted in, errors, estimates in block
order, the legacy named-scalar layout, and the truth of a block problem."""

import re

import numpy as np
import pytest

import estimators as E
import tensorflow as tf
import tensorflow_probability as tfp
from tests.conftest import assert_within_se

tfd = tfp.distributions

LABELS = ("mean[0]", "mean[1]", "mean[2]", "log_scale[0]", "log_scale[1]", "log_scale[2]")


def diagonal(name="diag", exact=True):
    """N(mean, diag exp(log_scale)²) with f = Σ x_i²: E f = Σ mean_i² + exp(2 log_scale_i)."""
    return E.Problem(
        name=name, params={"mean": 3, "log_scale": 3},
        dist=lambda t: tfd.MultivariateNormalDiag(t["mean"], tf.exp(t["log_scale"])),
        cost=lambda x, t: tf.reduce_sum(x**2, -1),
        exact_value=(lambda t: tf.reduce_sum(t["mean"]**2 + tf.exp(2 * t["log_scale"])))
        if exact else None)


DIAG = diagonal()
BOUNDED = E.Problem(
    name="bounded", params={"mean": 2, "std": 2},
    dist=lambda t: tfd.MultivariateNormalDiag(t["mean"], t["std"]),
    cost=lambda x, t: tf.reduce_sum(x, -1), bounds={"std": (0.0, None)})

MEAN = np.array([0.5, -1.0, 2.0])
LOG_SCALE = np.array([0.1, -0.3, 0.2])
FLAT = np.concatenate([MEAN, LOG_SCALE])


def analytic_gradient(mean, log_scale):
    return np.concatenate([2 * np.asarray(mean), 2 * np.exp(2 * np.asarray(log_scale))])


# -- layout -----------------------------------------------------------------------------------

def test_labels_blocks_and_dim():
    assert DIAG.param_labels == LABELS
    assert DIAG.param_blocks == ("mean",) * 3 + ("log_scale",) * 3
    assert DIAG.dim == 6
    assert DIAG.param_names == ("mean", "log_scale")
    assert DIAG.params == {"mean": 3, "log_scale": 3}


def test_block_order_is_declaration_order():
    p = E.Problem(name="order", params={"b": 1, "a": 2},
                  dist=lambda t: tfd.MultivariateNormalDiag(
                      tf.concat([t["b"], t["a"]], -1), tf.ones([3], t["a"].dtype)),
                  cost=lambda x, t: tf.reduce_sum(x, -1))
    assert p.param_labels == ("b[0]", "a[0]", "a[1]")
    np.testing.assert_array_equal(p.theta_vector({"a": [2.0, 3.0], "b": 1.0}), [1.0, 2.0, 3.0])


def test_unpack_gives_a_mapping_of_blocks_with_a_trailing_axis():
    blocks = DIAG.unpack(tf.reshape(tf.range(5 * 6, dtype=tf.float32), [5, 6]))
    assert set(blocks) == {"mean", "log_scale"}
    assert blocks["mean"].shape == (5, 3) and blocks["log_scale"].shape == (5, 3)
    np.testing.assert_array_equal(blocks["log_scale"][1], [9.0, 10.0, 11.0])


def test_describe_theta_summarises_blocks():
    assert DIAG.describe_theta({"mean": [1, 2, 3], "log_scale": 0}) == \
        "mean=[1, 2, 3] (3), log_scale=0 (all 3)"


# -- θ in any form ----------------------------------------------------------------------------

@pytest.mark.parametrize("theta, expected", [
    pytest.param(FLAT.tolist(), FLAT, id="flat-list"),
    pytest.param(FLAT, FLAT, id="flat-array"),
    pytest.param({"mean": MEAN.tolist(), "log_scale": LOG_SCALE.tolist()}, FLAT,
                 id="mapping-per-block-lists"),
    pytest.param({"log_scale": LOG_SCALE, "mean": MEAN}, FLAT, id="mapping-any-key-order"),
    pytest.param({"mean": 1.5, "log_scale": -0.5}, [1.5] * 3 + [-0.5] * 3,
                 id="mapping-scalar-broadcast"),
    pytest.param({"mean": MEAN.tolist(), "log_scale": 0}, np.r_[MEAN, 0, 0, 0],
                 id="mapping-mixed"),
])
def test_theta_forms(theta, expected):
    vector = DIAG.theta_vector(theta)
    assert vector.dtype == np.float64 and vector.shape == (6,)
    np.testing.assert_array_equal(vector, expected)


# -- errors: one sentence each ----------------------------------------------------------------

@pytest.mark.parametrize("theta, error, message", [
    pytest.param({"mean": 0.0}, ValueError,
                 r"^theta for problem 'diag' must give exactly \['mean', 'log_scale'\], got "
                 r"keys \['mean'\]\.$", id="missing-key"),
    pytest.param({"mean": 0.0, "log_scale": 0.0, "scale": 1.0}, ValueError,
                 r"must give exactly \['mean', 'log_scale'\], got keys \['mean', 'log_scale', "
                 r"'scale'\]\.$", id="extra-key"),
    pytest.param({"mean": [1.0, 2.0], "log_scale": 0.0}, ValueError,
                 r"^theta\['mean'\] for problem 'diag' must be a number or 3 numbers, got 2 values\.$",
                 id="wrong-block-length"),
    pytest.param([1.0, 2.0], ValueError,
                 r"^theta must have 6 value\(s\) \(mean: 3, log_scale: 3\) for problem 'diag', "
                 r"got 2\.$", id="wrong-flat-length"),
    pytest.param({"mean": [0.0, np.nan, 0.0], "log_scale": 0.0}, ValueError,
                 r"^theta must be finite, .*\(first non-finite: 'mean\[1\]'\)\.$",
                 id="nan-in-block"),
    pytest.param([0, 0, 0, 0, 0, np.inf], ValueError,
                 r"theta must be finite, .*\(first non-finite: 'log_scale\[2\]'\)\.$",
                 id="inf-flat"),
    pytest.param("one", TypeError,
                 r"^theta must be a number or a sequence of 6 numbers \(mean: 3, log_scale: 3\), "
                 r"or a mapping of those names, got 'one'\.$", id="non-numeric-flat"),
    pytest.param({"mean": "zero", "log_scale": 0.0}, TypeError,
                 r"^theta\['mean'\] must be a number or 3 numbers, got 'zero'\.$",
                 id="non-numeric-block"),
])
def test_bad_theta(theta, error, message):
    with pytest.raises(error, match=message) as caught:
        DIAG.theta_vector(theta)
    assert str(caught.value).count(". ") == 0  # one sentence


@pytest.mark.parametrize("theta, label, value", [
    pytest.param({"mean": 0.0, "std": [1.0, -1.0]}, "std[1]", -1.0, id="negative-second"),
    pytest.param({"mean": 0.0, "std": [0.0, 1.0]}, "std[0]", 0.0, id="zero-first"),
    pytest.param([0.0, 0.0, 2.0, -3.0], "std[1]", -3.0, id="flat"),
])
def test_bounds_name_the_block_component(theta, label, value):
    with pytest.raises(ValueError, match=rf"^theta '{re.escape(label)}' must be > 0.0 for problem "
                                         rf"'bounded', got {value}\.$"):
        BOUNDED.theta_vector(theta)


def test_bounds_are_checked_by_estimate():
    with pytest.raises(ValueError, match=r"theta 'std\[1\]' must be > 0.0"):
        E.estimate("score_function", BOUNDED, {"mean": 0.0, "std": [1.0, -1.0]}, n_samples=4,
                   backend="graph")


@pytest.mark.parametrize("params, message", [
    pytest.param({}, r"params must be a non-empty mapping", id="empty"),
    pytest.param({"mean": 0}, r"params\['mean'\] must be a positive integer size, got 0\.",
                 id="zero-size"),
    pytest.param({"mean": 2.5}, r"params\['mean'\] must be a positive integer size, got 2\.5\.",
                 id="float-size"),
    pytest.param({"mean": True}, r"params\['mean'\] must be a positive integer size, got True\.",
                 id="bool-size"),
    pytest.param({"log scale": 2}, r"params must use identifiers as names", id="bad-name"),
    pytest.param([("mean", 2)], r"params must be a non-empty mapping", id="not-a-mapping"),
])
def test_bad_params(params, message):
    with pytest.raises(ValueError, match=message):
        E.Problem(name="bad", params=params, dist=lambda t: tfd.Normal(0.0, 1.0),
                  cost=lambda x, t: x)


def test_param_names_and_params_together_is_an_error():
    with pytest.raises(ValueError, match=r"^give either param_names \(named scalars\) or params "
                                         r"\(named blocks with sizes\), not both\.$"):
        E.Problem(name="both", param_names=("mean",), params={"mean": 1},
                  dist=lambda t: tfd.Normal(t, 1.0), cost=lambda x, t: x)


def test_bounds_naming_an_unknown_block_is_an_error():
    with pytest.raises(ValueError, match=r"bounds name unknown parameters \['scale'\]; the "
                                         r"parameters are \['mean', 'log_scale'\]\."):
        E.Problem(name="b", params={"mean": 3, "log_scale": 3}, dist=DIAG.dist, cost=DIAG.cost,
                  bounds={"scale": (0.0, None)})


# -- estimates ----------------------------------------------------------------------------------

@pytest.mark.parametrize("estimator", ["score_function", "reparameterization"])
def test_estimates_in_block_order_and_equal_for_flat_and_mapping(estimator):
    mapping = {"mean": MEAN.tolist(), "log_scale": LOG_SCALE.tolist()}
    kwargs = dict(n_samples=64, n_replicates=300, seed=21, backend="graph")
    from_mapping = E.estimate(estimator, DIAG, mapping, **kwargs)
    from_flat = E.estimate(estimator, DIAG, FLAT.tolist(), **kwargs)
    assert from_mapping.shape == (300, 6)
    np.testing.assert_array_equal(from_mapping, from_flat)
    # Block order: the columns' means are the gradient of their own label.
    assert_within_se(from_mapping, analytic_gradient(MEAN, LOG_SCALE))


def test_broadcast_mapping_equals_its_flat_vector():
    kwargs = dict(n_samples=16, n_replicates=20, seed=3, backend="graph")
    broadcast = E.estimate("score_function", DIAG, {"mean": 0.5, "log_scale": 0.0}, **kwargs)
    flat = E.estimate("score_function", DIAG, [0.5] * 3 + [0.0] * 3, **kwargs)
    np.testing.assert_array_equal(broadcast, flat)


def test_dist_and_cost_receive_blocks_with_a_replicate_axis():
    seen = {}

    def dist(t):
        seen["dist"] = {k: tuple(v.shape) for k, v in t.items()}
        return tfd.MultivariateNormalDiag(t["mean"], tf.exp(t["log_scale"]))

    def cost(x, t):
        seen["cost"] = (tuple(x.shape), {k: tuple(v.shape) for k, v in t.items()})
        return tf.reduce_sum(x**2, -1)

    p = E.Problem(name="shapes", params={"mean": 3, "log_scale": 3}, dist=dist, cost=cost)
    E.estimate("score_function", p, FLAT, n_samples=8, n_replicates=5, backend="eager")
    assert seen["dist"] == {"mean": (5, 3), "log_scale": (5, 3)}
    assert seen["cost"] == ((8, 5, 3), {"mean": (5, 3), "log_scale": (5, 3)})


# -- the legacy named-scalar layout -------------------------------------------------------------

@pytest.mark.parametrize("name, dim", [("seed_dependence", 1), ("gaussian_square", 2)])
def test_legacy_param_names_unchanged(name, dim):
    p = E.problems.get(name)
    assert p.params is None
    assert p.dim == dim
    assert p.param_labels == p.param_names == p.param_blocks
    unpacked = p.unpack(tf.zeros([7, dim]))
    assert not isinstance(unpacked, dict)
    assert unpacked.shape == ((7,) if dim == 1 else (7, dim))


def test_legacy_one_parameter_accepts_a_number_and_a_mapping():
    p = E.problems.get("seed_dependence")
    assert p.param_labels == ("theta",)
    np.testing.assert_array_equal(p.theta_vector(-1.0), [-1.0])
    np.testing.assert_array_equal(p.theta_vector({"theta": -1.0}), [-1.0])
    assert E.estimate("score_function", p, -1.0, n_samples=10, n_replicates=3,
                      backend="graph").shape == (3, 1)


def test_legacy_named_scalars_accept_a_mapping_and_reject_lists():
    p = E.problems.get("gaussian_square")
    np.testing.assert_array_equal(p.theta_vector({"std": 2.0, "mean": 1.0}), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"theta\['mean'\] for problem 'gaussian_square\(k=1\)' "
                                         r"must be a number"):
        p.theta_vector({"mean": [1.0, 2.0], "std": 1.0})
    with pytest.raises(ValueError, match=r"theta 'std' must be > 0.0"):
        p.theta_vector({"mean": 1.0, "std": -2.0})


def test_legacy_dist_receives_a_vector_for_one_parameter_and_a_matrix_otherwise():
    seen = []
    one = E.Problem(name="one", dist=lambda t: seen.append(tuple(t.shape)) or tfd.Normal(t, 1.0),
                    cost=lambda x, t: x**2)
    two = E.Problem(name="two", param_names=("a", "b"),
                    dist=lambda t: seen.append(tuple(t.shape)) or tfd.Normal(t[..., 0], t[..., 1]),
                    cost=lambda x, t: x**2, bounds={"b": (0.0, None)})
    E.estimate("score_function", one, 0.5, n_samples=4, n_replicates=6, backend="eager")
    assert seen[-1] == (6,)
    E.estimate("score_function", two, [0.5, 1.0], n_samples=4, n_replicates=6, backend="eager")
    assert seen[-1] == (6, 2)


# -- the truth of a block problem ---------------------------------------------------------------

@pytest.mark.parametrize("theta", [
    pytest.param({"mean": MEAN, "log_scale": LOG_SCALE}, id="per-block"),
    pytest.param({"mean": -0.7, "log_scale": 0.4}, id="broadcast"),
])
def test_true_gradient_is_the_analytic_gradient(theta):
    vector = DIAG.theta_vector(theta)
    assert DIAG.truth_kind(theta) == "closed_form"
    np.testing.assert_allclose(DIAG.true_gradient(theta),
                               analytic_gradient(vector[:3], vector[3:]), rtol=1e-12)


def test_monte_carlo_truth_of_a_block_problem_matches_the_analytic_gradient():
    p = diagonal("diag_without_closed_form", exact=False)
    reference = p.truth({"mean": MEAN, "log_scale": LOG_SCALE})
    assert reference.kind == "monte_carlo"
    assert np.all(reference.gradient_se > 0)
    exact = analytic_gradient(MEAN, LOG_SCALE)
    assert np.all(np.abs(reference.gradient - exact) < 5 * reference.gradient_se + 1e-9)

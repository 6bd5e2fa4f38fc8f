"""Bayesian logistic regression (Mohamed et al. 2020 §8): the data's preparation, the cost
and its gradient against NumPy written apart from TensorFlow, the Monte Carlo truth, user
CSV files and their errors."""

import numpy as np
import pytest
import tensorflow as tf

import estimators as E
from estimators.problems import datasets, models
from tests.conftest import assert_within_reference

THETA = {"mean": 0.0, "log_scale": -1.0}


def test_breast_cancer_is_z_scored_with_a_bias_column():
    design, labels = datasets.features_and_labels("breast_cancer")
    assert design.shape == (569, 31) and labels.shape == (569,)
    np.testing.assert_allclose(design[:, :30].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(design[:, :30].std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(design[:, 30], 1.0)
    assert set(np.unique(labels)) == {0.0, 1.0} and int(labels.sum()) == 357  # benign
    problem = E.problems.get("logistic_regression")
    assert problem.dim == 62 and problem.param_labels[31] == "log_scale[0]"


def test_cost_and_pathwise_gradient_match_numpy():
    """f(w) and the pathwise single-draw gradient at fixed noise, against NumPy:
    ∇w f = Σ_i s_i σ(-s_i x_iᵀw) x_i with s = 2y - 1; ∂/∂mean = ∇w f,
    ∂/∂log_scale = ∇w f ⊙ ε ⊙ exp(log_scale)."""
    problem = E.problems.get("logistic_regression")
    design, labels = datasets.features_and_labels("breast_cancer")
    rng = np.random.default_rng(0)
    mean, log_scale = rng.normal(0, 0.3, 31), rng.normal(-1.0, 0.2, 31)
    eps = rng.normal(size=(5, 31))
    w = mean + np.exp(log_scale) * eps
    signs = 2 * labels - 1
    grad_w = (signs * (1 / (1 + np.exp(signs * (w @ design.T))))) @ design  # [5, 31]
    expected = np.concatenate([grad_w, grad_w * eps * np.exp(log_scale)], axis=1)

    theta = tf.constant(np.concatenate([mean, log_scale])[None, :])  # [1, 62]
    with tf.GradientTape() as tape:
        tape.watch(theta)
        dist = problem.measure(theta)
        loc, scale = E.measure.location_scale(dist)
        x = loc + scale * tf.constant(eps[:, None, :])  # [5, 1, 31]
        values = problem.cost_values(dist, x, theta)  # [5, 1]
        total = tf.reduce_sum(values)
    np.testing.assert_allclose(values.numpy()[:, 0], models.log_likelihood(design, labels, w),
                               rtol=1e-12)
    np.testing.assert_allclose(tape.gradient(total, theta).numpy()[0], expected.sum(axis=0),
                               rtol=1e-9)


def test_monte_carlo_truth_agrees_with_a_numpy_estimate():
    problem = E.problems.get("logistic_regression")
    reference = problem.truth(THETA)
    assert reference.kind == "monte_carlo" and np.all(reference.gradient_se > 0)
    design, labels = datasets.features_and_labels("breast_cancer")
    eps = np.random.default_rng(1).normal(size=(20_000, 31))
    scale = np.exp(-1.0)
    w = scale * eps
    signs = 2 * labels - 1
    grad_w = (signs * (1 / (1 + np.exp(signs * (w @ design.T))))) @ design
    single = np.concatenate([grad_w, grad_w * eps * scale], axis=1)  # [draws, 62]
    estimate, se = single.mean(axis=0), single.std(axis=0, ddof=1) / np.sqrt(len(single))
    z = (estimate - reference.gradient) / np.hypot(se, reference.gradient_se)
    assert np.max(np.abs(z)) < 5.5, np.max(np.abs(z))  # 62 components: Bonferroni-sized


@pytest.mark.parametrize("label", ["reparameterization", "score_function(control_variate=delta)"])
def test_estimators_unbiased_against_the_reference(label):
    problem = E.problems.get("logistic_regression")
    values = E.estimate(label, problem, THETA, n_samples=10, n_replicates=400, seed=3)
    assert_within_reference(problem, THETA, values)


def test_a_users_csv_is_prepared_alike(tmp_path):
    design, labels = datasets.features_and_labels("breast_cancer")
    raw = np.random.default_rng(2).normal(3.0, 2.0, size=(40, 3))
    y = (raw[:, 0] > 3.0).astype(int)
    path = tmp_path / "mine.csv"
    path.write_text("a,b,c,label\n" + "".join(f"{r[0]},{r[1]},{r[2]},{v}\n"
                                              for r, v in zip(raw, y)))
    problem = E.problems.get("logistic_regression", data=str(path))
    assert problem.dim == 8 and problem.name == f"logistic_regression(data={path})"
    prepared, read_labels = datasets.features_and_labels(str(path))
    np.testing.assert_allclose(prepared[:, :3], (raw - raw.mean(0)) / raw.std(0), rtol=1e-12)
    np.testing.assert_array_equal(read_labels, y)
    theta = {"mean": 0.1, "log_scale": -1.0}
    assert_within_reference(problem, theta, E.estimate("reparameterization", problem, theta,
                                                       n_samples=10, n_replicates=300))


def test_quoted_numbers_and_blank_lines_read_as_the_plain_file(tmp_path):
    raw = np.random.default_rng(4).normal(size=(6, 2))
    y = [0, 1, 0, 1, 1, 0]
    plain = "x1,x2,label\n" + "".join(f"{a},{b},{v}\n" for (a, b), v in zip(raw, y))
    quoted = '"x1","x2","label"\r\n\r\n' + "".join(
        f'"{a}", "{b}",{v}\r\n' for (a, b), v in zip(raw, y))  # a spreadsheet's export
    (tmp_path / "plain.csv").write_text(plain)
    (tmp_path / "quoted.csv").write_bytes(quoted.encode())
    design, labels = datasets.features_and_labels(str(tmp_path / "plain.csv"))
    assert design.shape == (6, 3)  # every data row kept
    np.testing.assert_allclose(design[:, :2], (raw - raw.mean(0)) / raw.std(0), rtol=1e-12)
    np.testing.assert_array_equal(labels, y)
    again, again_labels = datasets.features_and_labels(str(tmp_path / "quoted.csv"))
    np.testing.assert_array_equal(again, design)
    np.testing.assert_array_equal(again_labels, labels)


@pytest.mark.parametrize("text, message", [
    ("1.5,2,0\n0.5,3,1\n2.5,1,0\n",
     "the first row must be a header of column names (the label column last), but it is "
     "all numbers (1.5,2,0)."),
    ('"1.5","2","0"\n0.5,3,1\n', "but it is all numbers (1.5,2,0)."),
    ("a,label\n1,0\nx,1\n", "line 3 has a value that is not a number."),
    ("a,label\n1,0\n\n\"\",1\n", "line 4 has a value that is not a number."),
    ("a,b,label\n1,2,0\n3,1\n", "line 3 has 2 values, the header 3."),
    ("a,label\n1,0\n2,2\n", "the last column is the label and must be 0 or 1, got [2.0]."),
    ("a,b,label\n1,5,0\n2,5,1\n", "feature column 2 is constant"),
    ("a,label\n", "needs a header row and at least one data row."),
])
def test_a_malformed_csv_is_one_sentence(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        E.problems.get("logistic_regression", data=str(path))
    assert str(error.value).startswith(f"problem 'logistic_regression': data '{path}': ")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_unknown_data_sources_are_refused(tmp_path):
    with pytest.raises(ValueError, match="give 'breast_cancer' or the path of a .csv file"):
        E.problems.get("logistic_regression", data="iris")
    with pytest.raises(ValueError, match="no such file"):
        E.problems.get("logistic_regression", data=str(tmp_path / "missing.csv"))

"""Training runs (bench/training.py): the [training] table and its errors, the optimizers'
arithmetic, the keyed path, resume with the same numbers, and each estimator unbiased at
two checkpoints of a Bayesian logistic regression trained as in Mohamed et al. (2020, §8)."""

import json
import math
import sys

import numpy as np
import pandas as pd
import pytest

import estimators as E
from bench import cli, grid, runner, training
from bench.summary import summary as best_of
from bench.store import read_results
from tests.conftest import (StopAfter, assert_within_reference, killed_after_parts,
                            statistics_of, with_keys)

TINY = """
name = "tiny_training"
seed = 3
n_replicates = 50
timing_repeats = 1
n_samples = [10]
estimators = ["reparameterization", "score_function"]

[training]
direction = "minimize"
optimizer = "adam"
learning_rate = 0.01
steps = 40
estimator = "reparameterization"
n_samples = 8
checkpoints = [40, 0, 20]
log_every = 10
eval_samples = 200

[[problems]]
name = "gaussian_square_nd"
D = 3
theta = [{mean = 0.0, std = 1.0}]
"""


def tiny(**changes) -> str:
    """TINY with [training] keys replaced (None removes one)."""
    return with_keys(TINY, ("name", "seed"), **changes)


def test_a_training_grid_has_a_cell_per_checkpoint_in_training_order():
    g = grid.parse(TINY, "tiny.toml")
    assert g.training.checkpoints == (0, 20, 40) and g.training.schedule == "constant"
    assert [(c.step, c.estimator) for c in g.cells] == [
        (0, "reparameterization"), (0, "score_function"), (20, "reparameterization"),
        (20, "score_function"), (40, "reparameterization"), (40, "score_function")]
    assert len({c.key for c in g.cells}) == 6 and len({c.trajectory for c in g.cells}) == 1
    assert json.loads(g.cells[2].key)[-1] == 20 and "step=20" in g.cells[2].label
    before, _, after = TINY.partition("[training]")
    plain = grid.parse(before + "[[problems]]" + after.partition("[[problems]]")[2],
                       "plain.toml")
    assert plain.training is None and all(c.step is None for c in plain.cells)
    assert len(json.loads(plain.cells[0].key)) == 6  # keys (and seeds) of other grids unchanged


@pytest.mark.parametrize("changes, message", [
    ({"direction": None}, "training.direction: is required"),
    ({"direction": '"up"'}, "training.direction: must be \"maximize\""),
    ({"optimizer": '"rmsprop"'}, "training.optimizer: must be one of sgd, adam, got 'rmsprop'."),
    ({"learning_rate": "-0.1"}, "training.learning_rate: must be a positive number"),
    ({"steps": "0"}, "training.steps: must be a positive integer, got 0."),
    ({"checkpoints": "[0, 50]"}, "every checkpoint must be a whole step from 0 to steps = 40"),
    ({"checkpoints": "[0, 20, 20]"}, "training.checkpoints: lists a step twice"),
    ({"checkpoints": "[]"}, "training.checkpoints: must be a non-empty list"),
    ({"checkpoints": "[2.5]"}, "every checkpoint must be a whole step"),
    ({"eval_samples": "1"}, "training.eval_samples: must be at least 2"),
    ({"log_every": '"often"'}, "training.log_every: must be a positive integer"),
    ({"estimator": '"arm"'}, "training.estimator: cannot train problem"),
    ({"estimator": '"no_such"'}, "training.estimator"),
    ({"estimator": '{name = "score_function", control_variate = ["none", "loo"]}'},
     "training.estimator: must name one estimator"),
    ({"momentum": "0.9"}, "training.momentum: unknown key"),
    ({"estimator": '"reparametrization"'}, "tiny.toml: training.estimator: unknown estimator"),
    ({"estimator": '"naive_mc"'}, "naive_mc ignores how p(x|θ) depends on θ, so it is biased"),
    ({"estimator": '{name = "reparameterization", n_samples = [5]}'},
     "training.estimator: takes no n_samples or batch_sizes: the training's own n_samples"),
])
def test_bad_training_tables_are_one_sentence(changes, message):
    text = tiny(**changes)
    if "momentum" in changes:
        text = text.replace("[training]\n", "[training]\nmomentum = 0.9\n")
    with pytest.raises(grid.GridError) as error:
        grid.parse(text, "tiny.toml")
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("tiny.toml: ")


def test_training_must_be_a_table():
    with pytest.raises(grid.GridError, match=r"training: must be a table \(\[training\]\), got"):
        grid.parse('training = "adam"\n' + TINY.replace("[training]", "[other]")
                   .split("[other]")[0], "tiny.toml")


MINE = """
import tensorflow as tf
import tensorflow_probability as tfp
import estimators

def quad(mode: str = "ok"):
    penalties = {"ok": lambda t: tf.reduce_sum(t["mean"] ** 2),
                 "vector": lambda t: t["mean"] ** 2,
                 "float32": lambda t: tf.constant(0.1) * tf.reduce_sum(t["mean"] ** 2),
                 "nan": lambda t: float("nan") * tf.reduce_sum(t["mean"])}
    diagnostics = {"ok": lambda t: {"norm": tf.norm(t["mean"])},
                   "random": lambda t: {"r": tf.random.normal([], dtype=t["mean"].dtype)},
                   "reserved": lambda t: {"step": tf.norm(t["mean"])},
                   "text": lambda t: {"label": tf.constant("hello")},
                   "nan_diagnostic": lambda t: {"x": tf.math.log(-tf.norm(t["mean"]))}}
    return estimators.Problem(
        name=f"quad({mode})", params={"mean": 2},
        dist=lambda t: tfp.distributions.MultivariateNormalDiag(t["mean"],
                                                               tf.ones_like(t["mean"])),
        cost=lambda x, t: tf.reduce_sum(x ** 2, axis=-1),
        penalty=penalties.get(mode, penalties["ok"]),
        diagnostics=diagnostics.get(mode, diagnostics["ok"]))
"""


@pytest.mark.parametrize("mode, message", [
    ("vector", "problem 'quad(vector)': penalty(theta) must return one number, got shape [2]."),
    ("float32", "θ arrives in float64 here: write constants as Python numbers"),
    ("nan", "problem 'quad(nan)': penalty(theta) or its gradient is not finite at the start"),
    ("random", "diagnostics(theta) gave different values for the same θ; make it deterministic"),
    ("reserved", "diagnostics(theta) names 'step', a column of the training log"),
    ("text", "problem 'quad(text)': diagnostics(theta)['label'] must be a number, got string"),
    ("nan_diagnostic", "diagnostics(theta) are not all finite at the start ({'x': nan})"),
])
def test_a_problems_broken_penalty_or_diagnostics_is_refused_before_anything_runs(
        tmp_path, mode, message):
    (tmp_path / "mine.py").write_text(MINE)
    text = tiny(direction='"minimize"').replace(
        'name = "gaussian_square_nd"\nD = 3\ntheta = [{mean = 0.0, std = 1.0}]',
        f'name = "mine.py:quad"\nmode = "{mode}"\ntheta = [{{mean = 0.5}}]')
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(grid.GridError) as error:
        grid.load(path)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert "problems[0]" in str(error.value)


def test_sgd_cosine_schedule_and_adam_arithmetic():
    g = grid.parse(tiny(optimizer='"sgd"', schedule=None), "tiny.toml")
    sgd = g.training
    assert sgd.schedule == "cosine"  # the default with sgd (Mohamed et al.)
    assert sgd.learning_rate_at(0) == 0.01
    assert sgd.learning_rate_at(20) == pytest.approx(0.01 * math.cos(math.pi / 4))
    assert sgd.learning_rate_at(40) == 0.0
    theta, ascent = np.array([1.0, -2.0]), np.array([3.0, -0.5])
    moved, moments = training._update(sgd, theta, ascent, None, 20)
    np.testing.assert_allclose(moved, theta + 0.01 * math.cos(math.pi / 4) * ascent, rtol=1e-15)
    assert moments is None
    adam = grid.parse(TINY, "tiny.toml").training
    # Adam's first step is lr · g / (|g| + ε) after bias correction: lr · sign(g).
    first, moments = training._update(adam, theta, ascent, None, 0)
    np.testing.assert_allclose(first, theta + 0.01 * np.sign(ascent), rtol=1e-9)
    # Second step by hand from the stored moments.
    ascent2 = np.array([1.0, 1.0])
    m = 0.9 * moments[0] + 0.1 * ascent2
    v = 0.999 * moments[1] + 0.001 * ascent2**2
    expected = first + 0.01 * (m / (1 - 0.9**2)) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8)
    second, _ = training._update(adam, first, ascent2, moments, 1)
    np.testing.assert_allclose(second, expected, rtol=1e-12)


def test_each_update_follows_the_keyed_estimate_and_the_exact_penalty():
    """θ₁ = θ₀ + lr·(sign · ĝ(θ₀, key (seed, 0)) − ∇penalty(θ₀)) for SGD: the estimate is
    the one E.estimate gives with that key, the penalty gradient the KL's closed form."""
    settings = training.Training(direction="maximize", optimizer="sgd", learning_rate=1e-3,
                                 schedule="constant", steps=3, estimator="reparameterization",
                                 n_samples=5, checkpoints=(0, 3), log_every=1, eval_samples=10)
    problem = E.problems.get("logistic_regression")
    start = {"mean": 0.2, "log_scale": -0.5}
    run = training.Trajectory(problem, start, settings, seed=0, key="k")
    assert run.advance(1)
    vector = problem.theta_vector(start)
    estimate = E.estimate("reparameterization", problem, vector, n_samples=5,
                          seed=(run.train_seed, 0))[0]
    kl_gradient = np.concatenate([vector[:31], np.exp(2 * vector[31:]) - 1])
    np.testing.assert_allclose(run.theta, vector + 1e-3 * (estimate - kl_gradient), rtol=1e-12)
    assert [row["step"] for row in run.state["log"]] == [0]
    kl = 0.5 * np.sum(np.exp(2 * vector[31:]) + vector[:31] ** 2 - 1 - 2 * vector[31:])
    assert run.state["log"][0]["penalty"] == pytest.approx(kl, rel=1e-12)
    assert run.state["log"][0]["objective"] == pytest.approx(
        run.state["log"][0]["expected_f"] - kl, rel=1e-12)
    assert 0.0 <= run.state["log"][0]["accuracy"] <= 1.0


def test_minimizing_descends_the_estimate_and_the_penalty():
    """θ₁ = θ₀ − lr·(ĝ + ∇penalty) when minimizing E[f] + penalty."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    problem = E.Problem(
        name="quad_penalty", params={"mean": 2},
        dist=lambda t: tfp.distributions.MultivariateNormalDiag(t["mean"],
                                                               tf.ones_like(t["mean"])),
        cost=lambda x, t: tf.reduce_sum(x**2, axis=-1),
        penalty=lambda t: 3.0 * tf.reduce_sum(t["mean"] ** 2))
    settings = training.Training(direction="minimize", optimizer="sgd", learning_rate=0.01,
                                 schedule="constant", steps=2, estimator="reparameterization",
                                 n_samples=4, checkpoints=(0, 2), log_every=1, eval_samples=10)
    run = training.Trajectory(problem, [0.5, -1.0], settings, seed=5, key="q")
    assert run.advance(1)
    start = np.array([0.5, -1.0])
    estimate = E.estimate("reparameterization", problem, start, n_samples=4,
                          seed=(run.train_seed, 0))[0]
    np.testing.assert_allclose(run.theta, start - 0.01 * (estimate + 6.0 * start), rtol=1e-12)
    row = run.state["log"][0]
    assert row["objective"] == pytest.approx(row["expected_f"] + 3.0 * 1.25, rel=1e-12)
    with pytest.raises(ValueError, match="asked for step 0, but its state is already at step 1"):
        run.advance(0)


def test_a_stopped_trajectory_resumes_from_its_stored_state_with_the_same_numbers():
    g = grid.parse(TINY, "tiny.toml")
    cell = g.cells[0]

    def fresh(state=None):
        return training.Trajectory(cell.problem_obj, cell.theta, g.training, g.seed,
                                   cell.trajectory, state=state)

    whole = fresh()
    assert whole.advance(20) and whole.advance(40)
    stopped = fresh()
    assert not stopped.advance(20, stop=StopAfter(13))
    assert stopped.step == 13
    resumed = fresh(json.loads(json.dumps(stopped.state)))  # as stored
    assert resumed.advance(20) and resumed.advance(40)
    np.testing.assert_array_equal(resumed.theta, whole.theta)
    strip = [{k: v for k, v in row.items() if k != "train_seconds"}
             for row in whole.state["log"]]
    assert [{k: v for k, v in row.items() if k != "train_seconds"}
            for row in resumed.state["log"]] == strip
    assert [row["step"] for row in whole.state["log"]] == [0, 10, 20, 30, 40]
    assert whole.state["checkpoints"].keys() == {"20", "40"}


def test_training_that_leaves_the_allowed_theta_is_one_sentence(tmp_path, capsys):
    path = tmp_path / "steep.toml"
    path.write_text(tiny(learning_rate="0.1"))  # Adam moves std by ~0.1 a step: below 0
    assert cli.main(["run", "--grid", str(path), "--out", str(tmp_path / "r"),
                     "--no-progress", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "gaussian_square_nd(D=3, k=1): training left the allowed θ at step" in err
    assert "theta 'std[" in err and "must be > 0.0" in err
    assert "the edge of θ's range" in err and "lower training.learning_rate" in err
    assert "--resume" not in err.split("gradvar: error:")[1] and "Traceback" not in err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    return runner.run(grid.parse(TINY, "tiny.toml"), out, progress=False)


def test_rows_carry_the_step_and_theta_there_and_the_table_keeps_the_log(reference):
    frame, meta = read_results(reference)
    assert sorted(frame.step.unique()) == [0, 20, 40]
    [record] = meta["trajectories"]
    for step in (20, 40):
        rows = frame[(frame.step == step) & (frame.estimator == "score_function")]
        np.testing.assert_array_equal(rows.theta, record["checkpoints"][str(step)])
    assert (frame[frame.step == 0].theta.to_numpy()[:3] == 0.0).all()
    assert (frame.theta_label == "mean=0 (all 3), std=1 (all 3)").all()
    assert [row["step"] for row in record["log"]] == [0, 10, 20, 30, 40]
    # Minimizing E Σ(x - 1)² = Σ (mean - 1)² + std²: it falls along the run.
    assert record["log"][-1]["objective"] < record["log"][0]["objective"] - 1.0
    assert meta["training"]["checkpoints"] == [0, 20, 40]
    summary = best_of(frame)
    assert list(summary.step) == [0, 20, 40]


def test_kill_9_mid_run_and_resume_gives_the_uninterrupted_numbers(reference,
                                                                          tmp_path):
    grid_file = tmp_path / "tiny.toml"
    grid_file.write_text(TINY)
    out = tmp_path / "results"
    run_id = killed_after_parts([sys.executable, "-m", "bench.cli", "run", "--grid",
                                 str(grid_file), "--out", str(out), "--no-progress"], out, 3, 120)
    assert list(out.glob("*.parts/trajectory-*.json")), "killed before any training state"
    assert cli.main(["run", "--out", str(out), "--resume", run_id, "--no-progress"]) == 0
    pd.testing.assert_frame_equal(statistics_of(out / f"{run_id}.parquet"),
                                  statistics_of(reference))
    _, meta = read_results(out / f"{run_id}.parquet")
    _, reference_meta = read_results(reference)

    def log(m):
        return [{k: v for k, v in row.items() if k != "train_seconds"}
                for row in m["trajectories"][0]["log"]]

    assert log(meta) == log(reference_meta)


LABELS = ["score_function", "score_function(control_variate=loo)",
          "score_function(control_variate=delta)", "reparameterization",
          "reparameterization(control_variate=delta)", "measure_valued",
          "reparameterization_antithetic", "reparameterization_qmc"]


@pytest.fixture(scope="module")
def blr_checkpoints():
    """θ at the start (the prior) and after 30 Adam steps (accuracy ~96%) of the
    logistic regression trained by the pathwise estimator."""
    settings = training.Training(direction="maximize", optimizer="adam", learning_rate=0.05,
                                 schedule="constant", steps=30, estimator="reparameterization",
                                 n_samples=10, checkpoints=(0, 30), log_every=30,
                                 eval_samples=100)
    problem = E.problems.get("logistic_regression")
    run = training.Trajectory(problem, {"mean": 0.0, "log_scale": 0.0}, settings, seed=0,
                              key="blr")
    assert run.advance(0) and run.advance(30)
    assert run.state["log"][-1]["accuracy"] > 0.9
    return problem, {0: run.theta_at(0), 30: run.theta_at(30)}


@pytest.mark.parametrize("step", [0, 30])
@pytest.mark.parametrize("label", LABELS)
def test_each_estimator_is_unbiased_at_two_checkpoints(blr_checkpoints, label, step):
    problem, thetas = blr_checkpoints
    values = E.estimate(label, problem, thetas[step], n_samples=10, n_replicates=200, seed=11)
    assert_within_reference(problem, thetas[step], values)

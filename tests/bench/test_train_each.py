"""Training with each estimator (bench/train_each.py): the [train_each] table and its
errors, one run per problem × estimator × seed on fresh minibatches, what each log row
holds, a diverging estimator recorded as such, and resume (Ctrl-C, kill -9) with the same
numbers."""

import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import estimators as E
from bench import cli, grid, runner, train_each
from bench.store import RunStore, read_results
from tests.conftest import StopAfter, with_keys

EACH = """
name = "tiny_each"
seed = 2
n_samples = [2]

[train_each]
estimators = ["disarm", "score_function(control_variate=loo)"]
seeds = 2
direction = "maximize"
optimizer = "adam"
learning_rate = 0.01
steps = 30
n_samples = 2
log_every = 10
eval_samples = 50
variance_replicates = 20

[[problems]]
name = "bernoulli_vae"
latents = 3
batch = 10
theta = ["start"]
estimators = []
"""


def each(**changes) -> str:
    """EACH with [train_each] keys replaced (None removes one)."""
    return with_keys(EACH, ("name", "seed ="), **changes)


def strip(log):
    return [{k: v for k, v in row.items() if k != "train_seconds"} for row in log]


def test_a_run_per_problem_estimator_and_seed_and_no_cells():
    g = grid.parse(EACH, "each.toml")
    assert g.cells == ()
    assert [(run.estimator, run.seed) for run in g.train_runs] == [
        ("disarm", 0), ("disarm", 1), ("score_function(control_variate=loo)", 0),
        ("score_function(control_variate=loo)", 1)]
    assert len({run.key for run in g.train_runs}) == 4
    assert g.train_each.settings.checkpoints == () and g.train_each.variance_replicates == 20


@pytest.mark.parametrize("changes, message", [
    (dict(estimators=None), r"train_each.estimators: is required in a \[train_each\] table"),
    (dict(estimators="[]"), "train_each.estimators: must list at least one estimator"),
    (dict(estimators='["disarm", "disarm"]'), "lists an estimator twice"),
    (dict(estimators='["no_such"]'), r"train_each.estimators\[0\]"),
    (dict(seeds=0), "train_each.seeds: must be an integer of at least 1, got 0"),
    (dict(variance_replicates=1), "must be 0 .* or at least 2"),
    (dict(learning_rate=-1), "train_each.learning_rate: must be a positive number"),
    (dict(steps=None), r"train_each.steps: is required in a \[train_each\] table"),
    (dict(checkpoints="[10]"), "train_each.checkpoints: unknown key .each estimator of "
                               "train_each.estimators trains its own runs"),
])
def test_bad_train_each_tables_are_one_sentence(changes, message):
    text = each(**changes)
    if "checkpoints" in changes:
        text = text.replace("steps = 30", f"steps = 30\ncheckpoints = {changes['checkpoints']}")
    with pytest.raises(grid.GridError, match=message):
        grid.parse(text, "each.toml")


def test_an_estimator_that_cannot_train_the_problem_is_named():
    text = each(estimators='["disarm", "reparameterization"]')
    with pytest.raises(grid.GridError, match=r"train_each.estimators\[1\]: cannot train problem "
                                             r"'bernoulli_vae"):
        grid.parse(text, "each.toml")


def test_a_problem_can_stay_out_of_the_runs():
    text = EACH.replace("estimators = []", "train_each = false")
    g = grid.parse(text.replace("n_samples = [2]", 'n_samples = [2]\nestimators = ["arm"]'),
                   "each.toml")
    assert g.train_runs == () and len(g.cells) == 1
    without = text[:text.index("[train_each]")] + text[text.index("[[problems]]"):]
    with pytest.raises(grid.GridError, match="train_each: must be true or false, and true "
                                             "only in a grid with a"):
        grid.parse(without.replace("train_each = false", "train_each = true"), "each.toml")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("each")
    return runner.run(grid.parse(EACH, "each.toml"), out, progress=False)


def test_each_run_logs_objective_bounds_variance_and_cost(reference):
    frame, meta = read_results(reference)
    assert frame.empty and meta["train_each"]["seeds"] == 2
    runs = meta["training_runs"]
    assert [(r["estimator"], r["seed"], r["steps"], r["stopped"]) for r in runs] == [
        ("disarm", 0, 30, None), ("disarm", 1, 30, None),
        ("score_function(control_variate=loo)", 0, 30, None),
        ("score_function(control_variate=loo)", 1, 30, None)]
    assert [r["f_evals_per_step"] for r in runs] == [4, 4, 2, 2]  # DisARM: f at b and 1 - b
    problem = E.problems.get("bernoulli_vae", latents=3, batch=10)
    for run in runs:
        assert [row["step"] for row in run["log"]] == [0, 10, 20, 30]
        row = run["log"][-1]
        blocks = [row[f"variance:{b}"] for b in problem.params]
        assert np.isclose(row["variance"], sum(blocks)) and min(blocks) >= 0
        assert row["variance:enc_w"] > 0 and row["train_seconds"] > 0
        assert row["test_bound"] > row["train_elbo"] - 2.0
    # The seeds differ (noise and minibatch order), the start does not.
    assert runs[0]["log"][0]["train_elbo"] == runs[1]["log"][0]["train_elbo"]
    assert runs[0]["log"][-1]["train_elbo"] != runs[1]["log"][-1]["train_elbo"]
    # Training moved the ELBO up: Adam at 0.01 from the Glorot start, 30 steps.
    assert all(r["log"][-1]["train_elbo"] > r["log"][0]["train_elbo"] + 1.0 for r in runs)


def test_runs_train_on_fresh_minibatches_and_leave_the_problems_own_in_place(reference):
    g = grid.parse(EACH, "each.toml")
    run = g.train_runs[0]
    problem = E.problems.get("bernoulli_vae", latents=3, batch=10)
    assert problem.minibatches.at_home
    seen = set()
    original = type(problem.minibatches).select

    def spy(self, index, key=None):
        seen.add(index)
        return original(self, index, key)

    type(problem.minibatches).select = spy
    try:
        train_each.train(run, g.train_each, g.seed, g.backend, None, lambda state: None)
    finally:
        type(problem.minibatches).select = original
    assert len(seen) > 20  # 149 minibatches of 10 digits, 30 steps
    assert problem.minibatches.at_home


def test_a_run_stopped_mid_way_resumes_with_the_same_numbers(reference):
    g = grid.parse(EACH, "each.toml")
    run = g.train_runs[2]
    saved = []
    with pytest.raises(KeyboardInterrupt):
        train_each.train(run, g.train_each, g.seed, g.backend, None, saved.append,
                         stop=StopAfter(17))
    assert saved[-1]["step"] == 17
    state = train_each.train(run, g.train_each, g.seed, g.backend,
                             json.loads(json.dumps(saved[-1])), saved.append)
    _, meta = read_results(reference)
    assert strip(state["log"]) == strip(meta["training_runs"][2]["log"])


def test_a_diverging_estimator_ends_its_run_and_the_table_says_so(tmp_path):
    source = tmp_path / "blowup.py"
    source.write_text(
        "import tensorflow as tf, tensorflow_probability as tfp\n"
        "import estimators as E\n"
        "def blowup():\n"
        "    return E.Problem(name='blowup', dist=lambda t: tfp.distributions.Normal(t, 1.0),\n"
        "                     cost=lambda x, t: tf.where(t > 0.05, x / 0.0, x))\n")
    grid_file = tmp_path / "g.toml"
    grid_file.write_text(
        'name = "blowup"\nn_samples = [2]\n[train_each]\nestimators = ["score_function"]\n'
        'seeds = 1\ndirection = "maximize"\nlearning_rate = 0.02\nsteps = 20\nn_samples = 4\n'
        'log_every = 5\nvariance_replicates = 0\n'
        '[[problems]]\nname = "blowup.py:blowup"\ntheta = [0.0]\nestimators = []\n')
    assert cli.main(["run", "--grid", str(grid_file), "--out", str(tmp_path / "r"),
                     "--no-progress"]) == 0
    _, meta = read_results(next((tmp_path / "r").glob("*.parquet")))
    [run] = meta["training_runs"]
    assert 0 < run["steps"] < 20
    assert run["stopped"].startswith(f"the training estimate at step {run['steps']} is not "
                                     "finite (score_function at n_samples = 4)")
    assert "variance" not in run["log"][-1]


def test_kill_9_mid_run_and_resume_gives_the_uninterrupted_numbers(reference, tmp_path):
    grid_file = tmp_path / "each.toml"
    grid_file.write_text(EACH)
    out = tmp_path / "results"
    process = subprocess.Popen([sys.executable, "-m", "bench.cli", "run", "--grid",
                                str(grid_file), "--out", str(out), "--no-progress"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(out.glob("*.parts/train-*.json")):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    run_id = next(out.glob("*.parts")).name.removesuffix(".parts")
    stored = len(list(out.glob("*.parts/train-*.json")))
    assert 1 <= stored < 4, "killed before any run was stored, or after all"
    assert cli.main(["run", "--out", str(out), "--resume", run_id, "--no-progress"]) == 0
    _, meta = read_results(out / f"{run_id}.parquet")
    _, reference_meta = read_results(reference)
    assert [strip(r["log"]) for r in meta["training_runs"]] == \
        [strip(r["log"]) for r in reference_meta["training_runs"]]


def test_ctrl_c_stores_the_run_in_progress_and_the_resume_finishes_it(reference, tmp_path):
    g = grid.parse(EACH, "each.toml")
    store = RunStore(tmp_path, "stopped")
    store.start(runner.run_metadata(g, "stopped"))
    stop = threading.Event()
    stop.set()
    with pytest.raises(KeyboardInterrupt):
        runner._train_serial(g, store, stop, progress=False)
    stop = StopAfter(12)  # the first run stops after 12 updates
    with pytest.raises(KeyboardInterrupt):
        train_each.train(g.train_runs[0], g.train_each, g.seed, g.backend, None,
                         lambda state: store.write_json(g.train_runs[0].name, state), stop)
    assert store.read_json(g.train_runs[0].name)["step"] == 12
    path = runner.resume("stopped", tmp_path, progress=False)
    _, meta = read_results(path)
    _, reference_meta = read_results(reference)
    assert [strip(r["log"]) for r in meta["training_runs"]] == \
        [strip(r["log"]) for r in reference_meta["training_runs"]]


def test_a_grid_of_training_runs_only_needs_no_n_samples():
    # The grid's own estimators = [] (no cells), instead of its n_samples and the entry's.
    text = EACH.replace("n_samples = [2]\n", "estimators = []\n", 1).replace(
        'theta = ["start"]\nestimators = []', 'theta = ["start"]')
    g = grid.parse(text, "each.toml")
    assert g.cells == () and len(g.train_runs) == 4
    with pytest.raises(grid.GridError, match=r"n_samples: is required for the cells of "
                                             r"problems\[0\] \(its estimators\)"):
        grid.parse(text.replace('theta = ["start"]', 'theta = ["start"]\nestimators = ["arm"]'),
                   "each.toml")
    without = EACH.replace("n_samples = [2]\n", "", 1).replace("estimators = []\n", "")
    with pytest.raises(grid.GridError, match="n_samples: is required for the grid's cells "
                                             r"\(a grid of training runs only sets "
                                             r"estimators = \[\] instead\)"):
        grid.parse(without, "each.toml")

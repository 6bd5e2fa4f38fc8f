"""Stateful estimators in grids (issue 26): ``warmup_batches`` validated once, the state
warmed up before a cell's estimates with a seed of its own, ``state_updates`` in the rows;
in training runs the state travels with θ and is stored with it, so a stopped or killed
run resumes with the same numbers. The stateful estimator is the README's walkthrough,
``control_variate="learned_spread"`` (tests/estimators/test_add_an_estimator.py)."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import estimators as E
from bench import cli, grid, measuring, runner, training
from bench.store import read_results
from tests.conftest import killed_after_parts, statistics_of
from tests.estimators.test_add_an_estimator import walkthrough as readme_walkthrough

ROOT = Path(__file__).resolve().parents[2]
STATEFUL = "naive_mc(control_variate=learned_spread)"

MEASURED = """
name = "stateful"
seed = 4
n_replicates = 50
timing_repeats = 1
warmup_batches = 20
n_samples = [16]
estimators = ["naive_mc", {name = "naive_mc", control_variate = "learned_spread"}]

[[problems]]
name = "seed_fixed"
theta = [1.0]
"""

TRAINED = """
name = "stateful_training"
seed = 3
n_replicates = 40
timing_repeats = 1
n_samples = [16]
estimators = ["naive_mc(control_variate=learned_spread)"]

[training]
direction = "minimize"
optimizer = "adam"
learning_rate = 0.01
steps = 40
estimator = "naive_mc(control_variate=learned_spread)"
n_samples = 8
checkpoints = [0, 20, 40]
log_every = 10
eval_samples = 100

[[problems]]
name = "seed_fixed"
theta = [0.5]
"""


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    directory = tmp_path_factory.mktemp("walkthrough")
    with readme_walkthrough(directory):  # registered for this module's tests only
        yield directory


@pytest.mark.parametrize("value, message", [
    ("-1", "warmup_batches: must be an integer >= 0 (batches that update a stateful "
           "estimator's state before its estimates), got -1."),
    ("true", "warmup_batches: must be an integer, got True."),
    ('"10"', "warmup_batches: must be an integer, got '10'."),
])
def test_warmup_batches_is_a_whole_number_of_batches(value, message):
    with pytest.raises(grid.GridError) as error:
        grid.parse(f"warmup_batches = {value}\n" + MEASURED.replace("warmup_batches = 20\n", ""),
                   "bad.toml")
    assert str(error.value) == f"bad.toml: {message}"


def test_a_stateful_cell_is_measured_after_its_warm_up(walkthrough):
    g = grid.parse(MEASURED, "stateful.toml")
    stateless, stateful = g.cells
    assert stateful.estimator == STATEFUL and stateful.warmup_batches == 20
    assert stateful.warmup_seed(g.seed) != stateful.seed(g.seed)
    rows = measuring.measure(stateful, g.settings)
    assert (rows.state_updates == 20).all()
    assert (measuring.measure(stateless, g.settings).state_updates == 0).all()
    # The same numbers as the engine's own protocol, step by step.
    program = E.program(stateful.estimator_obj, stateful.problem_obj, stateful.theta_array,
                        16, 50, 16)
    state = program.warm_up(stateful.theta_array, program.init_state(stateful.theta_array),
                            batches=20, seed=stateful.warmup_seed(g.seed))
    estimates = program(stateful.theta_array, stateful.seed(g.seed), state=state)
    assert rows["mean"].tolist() == estimates.mean(axis=0).tolist()
    # Without its warm-up the estimates are other numbers.
    cold = program(stateful.theta_array, stateful.seed(g.seed),
                   state=program.init_state(stateful.theta_array))
    assert not np.array_equal(cold, estimates)


def test_a_stopped_stateful_trajectory_resumes_with_the_same_numbers(walkthrough):
    g = grid.parse(TRAINED, "trained.toml")
    cell = g.cells[0]

    def fresh(state=None):
        return training.Trajectory(cell.problem_obj, cell.theta_array, g.training, g.seed,
                                   cell.trajectory, state=state)

    whole = fresh()
    assert whole.program.stateful and whole.advance(20) and whole.advance(40)
    stopped = fresh()
    calls = iter(range(100))
    assert not stopped.advance(20, stop=type("Stop", (), {
        "is_set": lambda self: next(calls) >= 13})())
    assert stopped.step == 13 and stopped.state["estimator_state"] is not None
    resumed = fresh(json.loads(json.dumps(stopped.state)))  # as stored
    assert resumed.advance(20) and resumed.advance(40)
    np.testing.assert_array_equal(resumed.theta, whole.theta)
    assert resumed.state["estimator_state"] == whole.state["estimator_state"]
    # The state moved with the updates: it is not the initial one.
    assert whole.state["estimator_state"] != fresh().state["estimator_state"]


def test_kill_9_and_resume_of_a_stateful_training_run(walkthrough, tmp_path):
    reference = runner.run(grid.parse(TRAINED, "trained.toml"), tmp_path / "ref",
                           progress=False)
    grid_file = tmp_path / "trained.toml"
    grid_file.write_text(TRAINED)
    out = tmp_path / "results"
    code = (f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(walkthrough)!r}]; "
            "import my_control_variate; from bench import cli; "
            f"sys.exit(cli.main(['run', '--grid', {str(grid_file)!r}, '--out', {str(out)!r}, "
            "'--no-progress', '--workers', '1']))")
    run_id = killed_after_parts([sys.executable, "-c", code], out, 2, 180)
    stored = list(out.glob("*.parts/trajectory-*.json"))
    assert stored, "killed before any training state"
    assert json.loads(stored[0].read_text())["estimator_state"] is not None
    assert cli.main(["run", "--out", str(out), "--resume", run_id, "--no-progress"]) == 0
    pd.testing.assert_frame_equal(statistics_of(out / f"{run_id}.parquet"),
                                  statistics_of(reference))
    frame, meta = read_results(out / f"{run_id}.parquet")
    assert (frame.state_updates == 0).all()  # the grid warms up nothing before measuring
    _, reference_meta = read_results(reference)
    assert meta["trajectories"][0]["checkpoints"] == reference_meta["trajectories"][0]["checkpoints"]


def test_a_learned_estimators_own_warm_up_wins_over_the_grids():
    # The grid's warmup_batches is the default; an estimator's option (swept by a table)
    # is its own, in its label and so in the cell's key and seeds.
    parsed = grid.parse("""
name = "own_warmup"
warmup_batches = 7
n_samples = [4]
estimators = ["relax", "score_function", {name = "relax", warmup_batches = [0, 3]}]

[[problems]]
name = "bernoulli_toy"
theta = [0.0]
""")
    counts = {cell.estimator: cell.warmup_batches for cell in parsed.cells}
    assert counts == {"relax": 7, "score_function": 7, "relax(warmup_batches=0)": 0,
                      "relax(warmup_batches=3)": 3}
    assert len({cell.key for cell in parsed.cells}) == 4
    with pytest.raises(grid.GridError, match="score_function is stateless: it has no state "
                       "to warm up"):
        grid.parse("""
n_samples = [4]
estimators = [{name = "score_function", warmup_batches = 3}]

[[problems]]
name = "bernoulli_toy"
theta = [0.0]
""")

"""The runner end to end: determinism, cell order, kill -9 and resume, the CLI."""

import dataclasses
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench import cli, grid, runner
from bench.store import ResultsError, read_results
from tests.conftest import statistics_of

SMALL = """
name = "small"
seed = 7
n_replicates = 50
timing_repeats = 1
estimators = ["score_function", "reparameterization", "dependence"]
n_samples = [10, 40]
batch_sizes = ["all", 10]

[[problems]]
name = "seed_dependence"
theta = [-1.0, 0.5]

[[problems]]
name = "gaussian_exp"
theta = [[0.5, 1.0]]
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    return runner.run(grid.parse(SMALL, "small.toml"), out, progress=False)


def test_results_table_has_the_contract_columns(reference):
    frame, meta = read_results(reference)
    g = grid.parse(SMALL, "small.toml")
    # One row per cell and parameter component.
    assert len(frame) == sum(2 if c.problem == "gaussian_exp" else 1 for c in g.cells)
    assert meta["grid"] == SMALL and meta["n_cells"] == len(g.cells)
    for key in ("tensorflow", "tensorflow_probability", "python", "device", "started",
                "finished", "git_commit", "gradvar"):
        assert key in meta
    assert (frame.n_nonfinite == 0).all()
    assert (frame.per_sample_variance == frame.variance * frame.n_samples).all()


def test_any_cell_order_gives_identical_numbers(reference, tmp_path):
    g = grid.parse(SMALL, "small.toml")
    reversed_grid = dataclasses.replace(g, cells=tuple(reversed(g.cells)))
    path = runner.run(reversed_grid, tmp_path, progress=False)
    pd.testing.assert_frame_equal(statistics_of(path), statistics_of(reference))


def test_kill_9_and_resume_gives_the_uninterrupted_numbers(reference, tmp_path):
    grid_file = tmp_path / "small.toml"
    grid_file.write_text(SMALL)
    out = tmp_path / "results"
    command = [sys.executable, "-m", "bench.cli", "run", "--grid", str(grid_file),
               "--out", str(out), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    parts = []
    while time.monotonic() < deadline:
        parts = list(out.glob("*.parts/*.parquet"))
        if len(parts) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(parts) >= 3, "the run never wrote a cell"
    assert not list(out.glob("*.parquet")), "killed before the end, so no final table"
    run_id = next(out.glob("*.parts")).name.removesuffix(".parts")
    assert cli.main(["run", "--out", str(out), "--resume", run_id, "--no-progress"]) == 0
    pd.testing.assert_frame_equal(statistics_of(out / f"{run_id}.parquet"),
                                  statistics_of(reference))


def test_ctrl_c_stops_cleanly_with_resume_instructions(tmp_path):
    grid_file = tmp_path / "small.toml"
    grid_file.write_text(SMALL)
    out = tmp_path / "results"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", "--grid", str(grid_file), "--out", str(out),
         "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("*.parts/*.parquet"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "finished cells are saved" in err and "--resume" in err
    assert "Traceback" not in err


def test_cli_run_show_and_summary(tmp_path, capsys):
    grid_file = tmp_path / "small.toml"
    grid_file.write_text(SMALL.replace("n_samples = [10, 40]", "n_samples = [10]"))
    assert cli.main(["run", "--grid", str(grid_file), "--out", str(tmp_path),
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "best_by_mse" in out and "seed_dependence" in out
    table = next(tmp_path.glob("*.parquet"))
    assert cli.main(["show", str(table)]) == 0
    assert "score_function" in capsys.readouterr().out


def test_bad_grid_is_an_error_and_writes_nothing(tmp_path, capsys):
    grid_file = tmp_path / "bad.toml"
    grid_file.write_text(SMALL.replace("n_replicates", "n_replicate"))
    out = tmp_path / "results"
    assert cli.main(["run", "--grid", str(grid_file), "--out", str(out)]) == 2
    assert "n_replicate: unknown key" in capsys.readouterr().err
    assert not out.exists()


def test_corrupt_and_foreign_results_files(tmp_path, capsys):
    text = tmp_path / "notes.parquet"
    text.write_text("not parquet")
    with pytest.raises(ResultsError, match="not a parquet results table"):
        read_results(text)
    foreign = tmp_path / "foreign.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(foreign)
    with pytest.raises(ResultsError, match="not a gradvar results table"):
        read_results(foreign)
    assert cli.main(["show", str(text)]) == 2
    assert "gradvar: error:" in capsys.readouterr().err


def test_resume_of_unknown_run_is_an_error(tmp_path, capsys):
    assert cli.main(["run", "--out", str(tmp_path), "--resume", "nope"]) == 2
    assert "no unfinished run 'nope'" in capsys.readouterr().err

"""The harness under bad input and bad numbers: one sentence and exit 2 for every user
mistake, no traceback, nothing half-written; non-finite estimates counted, never dropped.

Each test names the behaviour seen before it was fixed."""

import io
import contextlib
import os
import stat
import string

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bench import cli, grid, runner
from bench.summary import summary as best_of
from bench.store import RunStore, read_results

ONE_CELL = """
n_samples = [10]
n_replicates = 20
timing_repeats = 1
estimators = ["score_function"]
[[problems]]
name = "gaussian_cos"
theta = [[0.5, 1.0]]
"""


def gradvar(*argv):
    """(exit code, stdout, stderr) of the CLI run in-process; SystemExit is an exit."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def one_sentence_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("gradvar")]
    assert lines, err
    assert "Traceback" not in err
    return lines[-1]


def test_out_pointing_at_a_file(tmp_path):
    # Was: NotADirectoryError traceback, exit 1.
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = gradvar("run", "--grid", "tiny", "--out", afile, "--no-progress")
    assert code == 2
    assert "--out" in one_sentence_error(err) and "is a file" in err


def test_grid_pointing_at_a_directory(tmp_path):
    code, _, err = gradvar("run", "--grid", tmp_path, "--out", tmp_path / "r")
    assert code == 2 and "is a directory" in one_sentence_error(err)


def test_resume_of_a_parts_directory_without_its_run_record(tmp_path):
    # Was: FileNotFoundError traceback (run.json).
    parts = tmp_path / "20260101-000000-x.parts"
    parts.mkdir()
    code, _, err = gradvar("run", "--resume", parts, "--no-progress")
    assert code == 2 and "has no run record" in one_sentence_error(err)


def test_resume_of_a_plain_directory(tmp_path):
    code, _, err = gradvar("run", "--resume", tmp_path, "--no-progress")
    assert code == 2 and "not a run" in one_sentence_error(err)


def test_resume_with_grid_is_a_usage_error(tmp_path):
    # Was: --grid silently ignored.
    code, _, err = gradvar("run", "--resume", "x", "--grid", "tiny", "--out", tmp_path)
    assert code == 2
    assert "--grid cannot be combined with --resume" in one_sentence_error(err)


def test_a_grid_whose_every_cell_is_skipped(tmp_path):
    # Was: exit 0, a 0-row table and "Empty DataFrame".
    path = tmp_path / "empty.toml"
    path.write_text(ONE_CELL.replace("n_samples = [10]", "n_samples = [10]\nbatch_sizes = [3]"))
    out = tmp_path / "results"
    code, _, err = gradvar("run", "--grid", path, "--out", out, "--no-progress")
    assert code == 2
    assert "no cells to run: all 1 combinations were skipped" in one_sentence_error(err)
    assert not out.exists() or not any(out.iterdir())


def test_show_of_an_empty_table(tmp_path):
    # Was: KeyError traceback.
    store = RunStore(tmp_path, "empty")
    store.start({"run_id": "empty"})
    table = store.finish([], {"run_id": "empty"})
    code, _, err = gradvar("show", table)
    assert code == 2 and "has no rows" in one_sentence_error(err)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    path = out / "one.toml"
    path.write_text(ONE_CELL)
    code, _, err = gradvar("run", "--grid", path, "--out", out / "results", "--no-progress",
                           "--workers", 1)
    assert code == 0, err
    return out / "results", err


def test_results_files_follow_the_umask_not_0600(small_run):
    # Was: every results file 0600 (tempfile.mkstemp's mode).
    out, _ = small_run
    table = next(out.glob("*.parquet"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(table.stat().st_mode) == 0o666 & ~umask


def test_the_run_id_is_printed_at_start(small_run):
    # Was: after kill -9 a user had to ls the results folder to find what to resume.
    out, err = small_run
    table = next(out.glob("*.parquet"))
    first = err.index(f"run {table.stem}:")
    assert "--resume " + table.stem in err[first:].splitlines()[0]


def test_a_new_run_never_reuses_an_existing_run_id(tmp_path):
    g = grid.parse(ONE_CELL, "same.toml")
    first = runner.new_run_id(g, tmp_path)
    RunStore(tmp_path, first).start({"run_id": first})
    assert runner.new_run_id(g, tmp_path) != first


def test_list_wraps_long_names_and_descriptions(monkeypatch):
    # Was: long names pushed descriptions out of line and long lines ran off the terminal.
    monkeypatch.setenv("COLUMNS", "72")
    code, out, _ = gradvar("list")
    assert code == 0
    assert max(len(line) for line in out.splitlines() if line.startswith("  ")) <= 72
    assert "score_function_batch_optimal" in out


# -- bad numbers ---------------------------------------------------------------------------

OVERFLOW = """
n_samples = [10]
n_replicates = 200
timing_repeats = 1
estimators = ["score_function", "trapz"]
[[problems]]
name = "seed_dependence"
theta = [8.0, -1.0]
"""


@pytest.fixture(scope="module")
def overflow_table(tmp_path_factory):
    # f = exp(θ|x|) at θ = 8 overflows float32 for a few of 200 estimates (score
    # function) or all of them (trapz); θ = -1 is finite everywhere.
    out = tmp_path_factory.mktemp("overflow")
    return read_results(runner.run(grid.parse(OVERFLOW, "overflow.toml"), out,
                                   progress=False))[0]


def test_cells_with_non_finite_estimates_report_nan_statistics_and_the_count(overflow_table):
    # Was: non-finite estimates dropped and the rest reported as the cell's statistics
    # (bias -1.18e43); an all-NaN trapz cell ranked first by MSE.
    hot = overflow_table[overflow_table.theta == 8.0].set_index("estimator")
    assert 0 < hot.n_nonfinite["score_function"] < 200
    assert hot.n_nonfinite["trapz"] == 200
    for column in ("mean", "bias", "variance", "mse", "variance_ci_low"):
        assert hot[column].isna().all()
    cold = overflow_table[overflow_table.theta == -1.0]
    assert (cold.n_nonfinite == 0).all() and cold.mse.notna().all()


def test_the_summary_never_ranks_a_cell_with_non_finite_estimates(overflow_table):
    summary = best_of(overflow_table)
    assert summary.best_by_mse.iloc[0] == "—"
    assert "non-finite" in summary.not_ranked.iloc[0]


def test_the_summary_calls_overlapping_efficiency_intervals_ties():
    rows = []
    for name, variance, low, high in (("a", 1.0, 0.5, 2.0), ("b", 1.5, 0.9, 3.0),
                                      ("c", 9.0, 8.0, 10.0)):
        rows.append({"problem": "p", "estimator": name, "n_samples": 10, "batch_size": 10,
                     "param": "theta", "param_block": "theta",
                     "cell": f'["p",[],"{name}",[0.5],10,10]',
                     "variance": variance, "variance_ci_low": low, "variance_ci_high": high,
                     "time_per_estimate_s": 1.0, "time_per_estimate_min_s": 1.0,
                     "time_per_estimate_max_s": 1.0, "mse": variance, "bias": 0.0,
                     "bias_se": 1.0, "truth": 0.0, "truth_se": 0.0, "n_nonfinite": 0})
    best = best_of(pd.DataFrame(rows)).best_by_variance_x_time.iloc[0]
    assert best == "a (tied: b)"


# -- never a traceback: random malformed grids and random bad arguments ------------------

VALUES = st.recursive(
    st.one_of(st.integers(-5, 10**12), st.floats(allow_nan=True, allow_infinity=True),
              st.booleans(), st.text(string.ascii_letters + "_.:/ ", max_size=12),
              st.sampled_from(["all", "tiny", "gaussian_cos", "seed_dependence",
                               "score_function", "trapz", "nope.py:f", "xla", "eager"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["name", "theta", "k", "mean",
                                                             "control_variate", "x"]),
                                            inner, max_size=3)),
    max_leaves=6)
KEYS = sorted(grid.TOP_KEYS) + ["bogus"]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf") \
            if np.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"


@st.composite
def malformed_grids(draw):
    """A valid one-cell grid with a few keys replaced by random values (or added)."""
    base = {"n_samples": [10], "n_replicates": 20, "timing_repeats": 1,
            "estimators": ["score_function"],
            "problems": [{"name": "gaussian_cos", "theta": [[0.5, 1.0]]}]}
    for key in draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3)):
        base[key] = draw(VALUES)
    if draw(st.booleans()) and isinstance(base.get("problems"), list) and base["problems"] \
            and isinstance(base["problems"][0], dict):
        base["problems"][0][draw(st.sampled_from(["theta", "k", "name", "x", "estimators"]))] = \
            draw(VALUES)
    return "\n".join(f"{key} = {toml_value(value)}" for key, value in base.items())


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(text=malformed_grids())
def test_random_malformed_grids_are_one_sentence_errors(text):
    try:
        parsed = grid.parse(text, "random.toml")
    except grid.GridError as error:
        message = str(error)
        assert message.startswith("random.toml") and "\n" not in message.strip()
        return
    assert all(cell.n_samples > 0 for cell in parsed.cells)  # a valid grid: fine too


ARGS = st.lists(st.sampled_from(
    ["run", "report", "show", "list", "lab", "--grid", "--out", "--resume", "--report",
     "--seed", "--all", "--timing", "--no-progress", "-1", "x", "nope.toml", "/",
     "/dev/null", "results.parquet", "tiny.parts", "--bogus", "", "7"]), max_size=5)


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(argv=ARGS)
def test_random_bad_arguments_never_produce_a_traceback(argv, tmp_path_factory):
    if argv[:1] == ["run"] and "--resume" not in argv and "--grid" not in argv[:-1]:
        return  # would run the default grid: valid arguments, minutes of work
    if argv[:1] == ["lab"] or argv[:1] == ["list"]:
        return  # valid whatever follows, or argparse's usage error: covered elsewhere
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cli"))
    try:
        code, _, err = gradvar(*argv)
    finally:
        os.chdir(cwd)
    assert "Traceback" not in err
    assert code in (0, 2), (argv, code, err)


def test_resume_of_a_finished_run_is_refused_and_leaves_it_alone(small_run):
    # Was: exit 0, the table rewritten and its finish time moved.
    out, _ = small_run
    table = next(out.glob("*.parquet"))
    written = table.stat().st_mtime_ns
    for ref in (table, table.with_suffix(".parts"), table.stem):
        code, _, err = gradvar("run", "--out", out, "--resume", ref, "--no-progress")
        assert code == 2 and "is already complete" in one_sentence_error(err)
    assert table.stat().st_mtime_ns == written


def test_a_factory_whose_name_ignores_a_swept_argument_is_refused(tmp_path):
    # Was: two problems under one name, their rows averaged as one in the ranking.
    (tmp_path / "mine.py").write_text(
        "import estimators as E, tensorflow_probability as tfp\n"
        "def scaled(scale=1.0):\n"
        "    return E.Problem(name='scaled', param_names=('theta',),\n"
        "                     dist=lambda t: tfp.distributions.Normal(t, 1.0),\n"
        "                     cost=lambda x, t: scale * x**2)\n")
    text = ONE_CELL.replace('name = "gaussian_cos"\ntheta = [[0.5, 1.0]]',
                            'name = "mine.py:scaled"\nscale = [0.5, 2.0]\ntheta = [1.0]')
    with pytest.raises(grid.GridError, match=r"gives the problem name 'scaled' that "
                                             r"'mine.py:scaled' \(scale=0.5\) already gave"):
        grid.parse(text, str(tmp_path / "g.toml"))


def test_show_of_a_directory(tmp_path):
    # Was: "a parquet file, but not a gradvar results table" (pyarrow reads folders).
    code, _, err = gradvar("show", tmp_path)
    assert code == 2 and "is a directory" in one_sentence_error(err)

"""The gradvar command line, end to end."""

import subprocess
import sys

import pytest

from bench import cli


def test_list_shows_problems_and_estimators(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("seed_dependence", "gaussian_cos", "score_function", "reparameterization"):
        assert name in out


def test_lab_prints_one_row_per_setup(capsys, monkeypatch, lab_rows):
    from bench import lab_setups

    seeds = []  # the rows are the session's (tests/bench/test_lab_setups.py checks them)
    monkeypatch.setattr(lab_setups, "run_lab", lambda seed: seeds.append(seed) or lab_rows(seed))
    assert cli.main(["lab"]) == 0 and seeds == [0]
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line[:2] in ("T1", "T2", "T3", "T4", "T5")]
    assert len(rows) == 24
    assert "0.481330" in out


def test_bad_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["lab", "--seed", "-4"])
    assert exit_info.value.code == 2
    assert "must be a non-negative integer" in capsys.readouterr().err


def test_console_script_is_quiet_on_stderr():
    # TensorFlow's start-up chatter (oneDNN, CUDA probing) must not reach CLI users.
    result = subprocess.run([sys.executable, "-m", "bench.cli", "list"],
                            capture_output=True, text=True, check=True)
    assert result.stderr == ""
    assert "score_function" in result.stdout


def test_show_csv_writes_the_whole_table_and_nothing_else(tmp_path, capsys):
    import io

    import pandas as pd

    from bench.store import read_results
    from tests.bench.test_report_bad_numbers import row, write

    # More rows than the compact view prints (60), a NaN and a JSON key full of commas.
    rows = [row(name, theta / 10) for name in ("score_function", "trapz")
            for theta in range(40)]
    rows[3]["variance"] = float("nan")
    path = write(tmp_path, rows)
    assert cli.main(["show", str(path), "--csv"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    written = pd.read_csv(io.StringIO(captured.out), keep_default_na=False,
                          na_values=["nan"])
    table, _ = read_results(path)
    assert list(written.columns) == list(table.columns) and len(written) == 80
    pd.testing.assert_frame_equal(written, table, check_dtype=False)


SKIPPING = """
n_samples = [1, 10]
batch_sizes = ["all", 5]
n_replicates = 20
timing_repeats = 1
estimators = ["score_function", "score_function_loo", "trapz", "dependence"]
[[problems]]
name = "seed_dependence"
theta = [0.5]
"""


def test_many_skipped_combinations_are_one_line_and_listed_by_show(tmp_path):
    # Was: a line per reason on every run (nine for the default grid).
    from tests.bench.test_bad_input import gradvar

    path = tmp_path / "skipping.toml"
    path.write_text(SKIPPING)
    out = tmp_path / "results"
    code, _, err = gradvar("run", "--grid", path, "--out", out, "--workers", 1, "--no-progress")
    assert code == 0, err
    [results] = out.glob("*.parquet")
    skipped = [line for line in err.splitlines() if line.startswith("skipped")]
    assert skipped == [
        "skipped 9 combinations that do not apply, for 6 reasons (most often: 4 cells whose "
        f"batch size exceeds n_samples); gradvar show {results} --skipped lists them."]
    code, listed, _ = gradvar("show", results, "--skipped")
    lines = listed.splitlines()
    assert code == 0 and lines[0] == "skipped 9 combinations that do not apply:"
    assert lines[1] == "  4 cells whose batch size exceeds n_samples" and len(lines) == 7
    assert lines[-1].startswith("  seed_dependence dependence θ=[theta=0.5] n=10 b=5: "
                                "dependence integrates")


def test_few_skipped_reasons_are_listed(capsys):
    skipped = [("p trapz n=1 b=1", "trapz needs at least 2 samples per batch."),
               ("p score_function n=1 b=5", "batch_size > n_samples")]
    cli._print_skipped(skipped)
    assert capsys.readouterr().err.splitlines() == [
        "skipped 2 combinations that do not apply:",
        "  1 cells whose batch size exceeds n_samples",
        "  p trapz n=1 b=1: trapz needs at least 2 samples per batch."]

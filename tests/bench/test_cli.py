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


def test_lab_prints_one_row_per_setup(capsys):
    assert cli.main(["lab"]) == 0
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

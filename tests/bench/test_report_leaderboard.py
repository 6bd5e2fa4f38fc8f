"""The leaderboard (bench/leaderboard.py): each report's rows are its ranking table's
numbers and their cost per evaluation of f, biased estimators apart; gathered from several
studies into one page; bad files and an empty folder are one sentence."""

import json
import shutil

import numpy as np
import pytest

from bench import cli, grid, report, runner
from bench.report import data, leaderboard, tables
from bench.store import read_results

TOY = """
name = "toy_board"
seed = 1
n_replicates = 300
timing_repeats = 3
n_samples = [4]
estimators = ["disarm", "arm", "score_function(control_variate=loo)", "gumbel_softmax"]

[[problems]]
name = "bernoulli_toy"
t = 0.45
theta = [0.2, 0.5]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("board")
    path = runner.run(grid.parse(TOY, "toy.toml"), out / "results", progress=False)
    made = report.build(path, out / "reports" / "toy", progress=False)
    return path, made.directory


def test_a_reports_rows_are_its_ranking_and_cost_per_evaluation_of_f(built):
    path, directory = built
    study = json.loads((directory / leaderboard.FILE).read_text())
    assert study["grid"] == "toy_board" and study["version"] == leaderboard.VERSION
    frame, _ = read_results(path)
    ranking = tables.ranking(data.per_problem_sweeps(data.prepare(frame, str(path))))
    rows = {row["estimator"]: row for row in study["cells"]}
    assert set(rows) == set(ranking.estimator)
    for expected in ranking.itertuples():
        row = rows[expected.estimator]
        assert row["variance_x_time"] == pytest.approx(expected.variance_x_time)
        assert row["rank_by_time"] == expected.efficiency_rank
    at_n = frame[frame.n_samples == 4]
    disarm = at_n[at_n.estimator == "disarm"]
    assert rows["disarm"]["f_evals_per_estimate"] == 8  # two per draw
    assert rows["disarm"]["variance_x_f_evals"] == pytest.approx(
        (disarm.variance * disarm.f_evals_per_estimate).mean())
    assert rows["gumbel_softmax"]["biased"] and rows["gumbel_softmax"]["rank_by_f_evals"] == "—"
    unbiased = [rows[name] for name in ("disarm", "arm", "score_function(control_variate=loo)")]
    best = min(unbiased, key=lambda row: row["variance_x_f_evals"])
    assert best["rank_by_f_evals"] in ("1", "=1")
    assert all(row["rank_by_f_evals"] not in ("—", None) for row in unbiased)


def test_studies_are_gathered_into_one_page(built, tmp_path):
    _, directory = built
    for name in ("first", "second"):  # two reports of one grid: two studies, by folder
        shutil.copytree(directory, tmp_path / name)
    assert cli.main(["leaderboard", "--reports", str(tmp_path), "--out",
                     str(tmp_path / "all")]) == 0
    assert cli.main(["leaderboard", "--reports", str(tmp_path)]) == 0  # "all" is skipped
    summary = (tmp_path / "leaderboard" / "summary.md").read_text()
    assert "first: bernoulli_toy" in summary and "second: bernoulli_toy" in summary
    assert "Biased estimators, listed apart" in summary and "gumbel_softmax" in summary
    gathered = json.loads((tmp_path / "leaderboard" / leaderboard.FILE).read_text())
    assert [s["study"] for s in gathered["studies"]] == ["first", "second"]
    by_time = leaderboard.frames(gathered["studies"])["by_time"].set_index("estimator")
    assert "gumbel_softmax" not in by_time.index  # biased: apart, never ranked
    assert list(by_time.columns) == ["first: bernoulli_toy", "second: bernoulli_toy"]


def test_no_study_or_a_bad_file_is_one_sentence(tmp_path, capsys):
    assert cli.main(["leaderboard", "--reports", str(tmp_path)]) == 2
    assert "no report has a leaderboard.json" in capsys.readouterr().err
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / leaderboard.FILE).write_text("{not json")
    assert cli.main(["leaderboard", "--reports", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "odd/leaderboard.json: not a readable leaderboard file" in err
    assert "Traceback" not in err
    (tmp_path / "odd" / leaderboard.FILE).write_text(json.dumps({"version": 0}))
    assert cli.main(["leaderboard", "--reports", str(tmp_path)]) == 2
    assert "of another version" in capsys.readouterr().err
    (tmp_path / "odd" / leaderboard.FILE).write_text(json.dumps(
        {"kind": "study", "version": leaderboard.VERSION}))
    assert cli.main(["leaderboard", "--reports", str(tmp_path)]) == 2
    assert "without its rows" in capsys.readouterr().err


def test_a_runs_only_study_keeps_where_its_runs_end(tmp_path):
    from tests.bench.test_train_each import EACH

    path = runner.run(grid.parse(EACH, "each.toml"), tmp_path / "results", progress=False)
    made = report.build(path, tmp_path / "reports" / "each", progress=False)
    study = json.loads((made.directory / leaderboard.FILE).read_text())
    assert study["cells"] == []
    assert {row["estimator"] for row in study["training"]} == {
        "disarm", "score_function(control_variate=loo)"}
    assert all(np.isfinite(row["train_elbo"]) for row in study["training"])
    assert cli.main(["leaderboard", "--reports", str(tmp_path / "reports")]) == 0
    assert "Training with each estimator" in (
        tmp_path / "reports" / "leaderboard" / "summary.md").read_text()

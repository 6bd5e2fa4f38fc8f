"""The report of training with each estimator (bench/report/each.py): a run of training runs
only gets its figures and its final table, whose numbers are the runs' own."""

import math

import numpy as np
import pytest
import scipy.stats

from bench import grid, report, runner
from bench.report import each
from bench.store import read_results
from tests.bench.test_train_each import EACH


@pytest.fixture(scope="module")
def runs_only(tmp_path_factory):
    out = tmp_path_factory.mktemp("each_report")
    return runner.run(grid.parse(EACH, "each.toml"), out, progress=False)


def test_a_run_of_training_runs_only_has_their_figures_and_table(runs_only, tmp_path):
    built = report.build(runs_only, tmp_path / "report", progress=False)
    assert [f.name for f in built.figures] == ["train_each_objective", "train_each_variance"]
    page = built.index.read_text()
    assert "Training with each estimator: where the runs end" in page
    assert "no cells" in page and "4 runs (2 estimators × 2 seeds per problem)" in page
    assert (tmp_path / "report" / "train_each_objective.png").stat().st_size > 10_000


def test_the_final_table_is_the_runs_last_logged_values(runs_only):
    _, meta = read_results(runs_only)
    table = each.final_table(meta).set_index("estimator")
    for estimator in ("disarm", "score_function(control_variate=loo)"):
        runs = [r for r in meta["training_runs"] if r["estimator"] == estimator]
        last = [r["log"][-1] for r in runs]
        values = np.array([row["train_elbo"] for row in last])
        half = scipy.stats.t.ppf(0.975, 1) * values.std(ddof=1) / math.sqrt(2)
        row = table.loc[estimator]
        assert row["train_elbo"] == pytest.approx(values.mean())
        assert row["train_elbo ±95%"] == pytest.approx(half)
        assert row["test_bound"] == pytest.approx(np.mean([r["test_bound"] for r in last]))
        assert row["encoder variance"] == pytest.approx(np.mean(
            [r["variance:enc_w"] + r["variance:enc_b"] for r in last]))
        assert row["ms per step"] == pytest.approx(np.median(
            [1e3 * r["train_seconds"] / 30 for r in last]))
        assert row["f evals per step"] == runs[0]["f_evals_per_step"]
        assert row["runs"] == 2 and row["stopped"] == 0 and row["biased"] == ""


def test_biased_estimators_are_marked_and_drawn_dashed():
    assert each._biased("gumbel_softmax") and not each._biased("disarm")
    assert not each._biased("not an estimator")

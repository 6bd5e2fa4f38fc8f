"""The report of a training run: variance along training, the training log, the time per
estimate and the variance-along-training table, in place of the variance across θ."""

import json

import numpy as np
import pandas as pd
import pytest

from bench import grid, report, runner
from bench.report import data, figures, training
from bench.store import _write_table, read_results

TRAIN = """
name = "train-report-test"
seed = 1
n_replicates = 50
timing_repeats = 1
n_samples = [10]
estimators = ["reparameterization", "score_function"]

[training]
direction = "minimize"
optimizer = "adam"
learning_rate = 0.05
steps = 20
estimator = "reparameterization"
n_samples = 10
checkpoints = [0, 10, 20]
log_every = 5

[[problems]]
name = "gaussian_square_nd"
D = 3
theta = [{mean = 0.0, std = 2.0}]
"""
CHECKPOINTS = [0, 10, 20]
TRAINING_FIGURES = ["variance_vs_step", "training_log", "time_per_estimate"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid")
    path = folder / "train.toml"
    path.write_text(TRAIN)
    return runner.run(grid.load(path), tmp_path_factory.mktemp("results"), progress=False)


@pytest.fixture(scope="module")
def table(results):
    return read_results(results)


@pytest.fixture(scope="module")
def prepared(table):
    return data.per_problem_sweeps(data.prepare(table[0]))


@pytest.fixture(scope="module")
def built(results, tmp_path_factory):
    return report.build(results, tmp_path_factory.mktemp("report") / "out", progress=False)


@pytest.fixture(scope="module")
def colours(prepared):
    return figures.palette(data.estimator_order(prepared))


def test_training_figures_replace_variance_vs_theta(built):
    names = [f.name for f in built.figures]
    assert names[:3] == TRAINING_FIGURES
    assert "variance_vs_theta" not in names and "bias_vs_theta" in names
    for figure in built.figures:
        assert figure.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert figure.png.stat().st_size > 1000 and figure.svg.stat().st_size > 1000
    assert not (built.directory / "variance_vs_theta.png").exists()
    text = built.index.read_text()
    # One n_samples, one batch size, no exact curves along θ: nothing to apologise for.
    for name in ("variance_vs_n", "time_vs_n", "time_vs_batch", "exact_per_sample_variance"):
        assert f"figure {name} not drawn" not in text
    assert "adam" in text and "checkpoints 0, 10, 20" in text  # the lede


def test_the_step_is_the_sweep_axis(prepared):
    assert set(prepared.sweep) == {"step"}
    assert sorted(prepared.x.unique()) == CHECKPOINTS
    assert all(c["step"] == int(x) for c, x in zip(prepared.coords, prepared.x))
    key = json.loads(prepared.cell.iloc[0])
    assert len(key) == 7 and key[6] in CHECKPOINTS


def test_variance_table_holds_the_block_means_of_the_raw_frame(table, prepared):
    frame, meta = table
    tables = {name: (title, t) for name, title, _, t in training.tables(prepared, meta)}
    assert {"variance_along_training", "variance_along_training_std", "best_along_training",
            "training_runs"} <= set(tables)
    for name, block in (("variance_along_training", "mean"),
                        ("variance_along_training_std", "std")):
        title, shown = tables[name]
        assert block in title
        columns = [f"step {s}" for s in CHECKPOINTS]
        assert list(shown.columns) == ["estimator"] + columns + ["biased at"]
        rows = shown.set_index("estimator")
        expected = frame[frame.param_block == block].groupby(["estimator", "step"]).variance.mean()
        for (estimator, step), value in expected.items():
            assert float(rows.loc[estimator, f"step {step}"]) == pytest.approx(value, rel=5e-3)
    _, best = tables["best_along_training"]
    assert list(best.columns) == ["step", "∂/∂mean", "∂/∂std"]
    assert list(best.step) == [f"{s:,}" for s in CHECKPOINTS]
    # Pathwise gradients of Σ(x−k)² have a tenth of the score function's variance: best by
    # variance × time (or tied with the best) at every checkpoint. Times on a loaded machine
    # vary, so this reads the tie as well as the winner.
    for column in ("∂/∂mean", "∂/∂std"):
        assert all("reparameterization" in cell for cell in best[column]), best[column]
    variances = tables["variance_along_training"][1].set_index("estimator")
    for step in CHECKPOINTS:
        assert float(variances.loc["reparameterization", f"step {step}"]) < \
            float(variances.loc["score_function", f"step {step}"]) / 3


def test_variance_vs_step_draws_every_checkpoint(prepared, colours):
    fig = training.variance_vs_step(prepared, colours)
    lines = [line for ax in fig.axes for line in ax.get_lines() if len(line.get_xdata()) > 1]
    assert len(fig.axes) == 2 and len(lines) == 2 * 2  # 2 blocks x 2 estimators
    points = training.step_variances(prepared)
    for ax, block in zip(fig.axes, ("mean", "std")):
        assert ax.get_yscale() == "log" and block in ax.get_title()
        for line in ax.get_lines():
            assert list(line.get_xdata()) == CHECKPOINTS
            name = next(n for n, c in colours.items() if c == line.get_color())
            want = points[(points.param_block == block) & (points.estimator == name)]
            assert np.allclose(line.get_ydata(), want.sort_values("step").variance)


def test_training_log_plots_every_log_row(prepared, colours, table):
    _, meta = table
    log = meta["trajectories"][0]["log"]
    assert [row["step"] for row in log] == [0, 5, 10, 15, 20]
    fig = training.training_log(prepared, colours, meta)
    (ax,) = fig.axes  # gaussian_square_nd has no diagnostics: the objective alone
    curve = max(ax.get_lines(), key=lambda line: len(line.get_xdata()))
    assert len(curve.get_xdata()) == len(log)
    assert np.allclose(curve.get_ydata(), [row["objective"] for row in log])
    assert "minimized" in ax.get_ylabel()
    assert training.training_log(prepared, colours, {}) is None


def test_time_per_estimate_labels_the_f_evaluations(prepared, colours):
    fig = training.time_per_estimate(prepared, colours)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 2 and all("10 f evals (1 per sample)" in label for label in labels)
    assert ax.get_xscale() == "log"


def test_training_figures_are_none_without_training(prepared, colours, table):
    plain = data.prepare(table[0].drop(columns="step"))
    for draw in (training.variance_vs_step, training.time_per_estimate):
        assert draw(plain, colours) is None
    assert training.training_log(plain, colours, table[1]) is None
    assert training.tables(plain, table[1]) == []


def _retrain(frame, start_shift: float, label: str):
    """The rows of ``frame`` as if trained from another start (cell keys' θ and the
    ``theta_start`` column shifted)."""
    def key(cell):
        name, kwargs, estimator, theta, *rest = json.loads(cell)
        return json.dumps([name, kwargs, estimator, [t + start_shift for t in theta], *rest])
    return frame.assign(cell=frame.cell.map(key), theta_label=label,
                        theta_start=frame.theta_start + start_shift)


def test_several_starts_are_one_sweep_over_the_step_each(table):
    frame = table[0]
    both = pd.concat([frame, _retrain(frame, 1.0, "mean=1 (all 3), std=3 (all 3)")],
                     ignore_index=True)
    prepared = data.per_problem_sweeps(data.prepare(both))
    assert set(prepared.sweep) == {"step"} and not prepared.categorical.any()
    assert prepared.sweep_group.nunique() == 2
    assert all("\nfrom " in group for group in prepared.sweep_group)
    runs = training.with_runs(prepared).run.unique()
    assert len(runs) == 2 and all(" from " in run for run in runs)
    shown = training.variance_table(prepared, "mean")
    assert list(shown.columns[:2]) == ["run", "estimator"] and len(shown) == 2 * 2
    best = training.best_table(prepared)
    assert list(best.columns[:2]) == ["run", "step"] and len(best) == 2 * len(CHECKPOINTS)


def test_two_starts_that_read_alike_stay_two_runs(table, colours):
    """Labels shorten blocks, so two starts can share one; they are numbered, not merged."""
    frame = table[0]
    label = frame.theta_label.iloc[0]
    both = pd.concat([frame, _retrain(frame, 1e-9, label)], ignore_index=True)
    prepared = data.per_problem_sweeps(data.prepare(both))
    runs = sorted(training.with_runs(prepared).run.unique())
    assert len(runs) == 2 and runs[0].endswith("(start 1)") and runs[1].endswith("(start 2)")
    assert len(training.variance_table(prepared, "mean")) == 2 * 2
    assert training.variance_vs_step(prepared, colours) is not None


def test_a_table_without_training_gets_the_usual_figures(table, tmp_path):
    frame, meta = table
    plain = frame[frame.step == 0].drop(columns="step")
    plain = plain.assign(cell=plain.cell.map(lambda c: json.dumps(json.loads(c)[:6])))
    meta = {k: v for k, v in meta.items() if k not in ("training", "trajectories")}
    _write_table(tmp_path / "plain.parquet", plain, meta)
    built = report.build(tmp_path / "plain.parquet", tmp_path / "r", progress=False)
    # One θ, one n_samples: the figures (and notes) of any such grid, none of training's.
    assert [f.name for f in built.figures] == ["variance_vs_theta", "bias_vs_theta", "efficiency"]
    text = built.index.read_text()
    assert "figure time_vs_n not drawn" in text
    assert "variance_along_training" not in text and "Training:" not in text

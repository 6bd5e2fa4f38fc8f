"""The report on tables with bad numbers: non-finite estimates, no rows, no finite
statistics at all; atomic writing; efficiency intervals and ties.

Tables are built by hand, as ``gradvar run`` writes them (bench.metrics: a component with
any non-finite estimate has NaN statistics and ``n_nonfinite`` > 0), so no grid runs.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench import cli, report, schema
from bench.report import data, exact, figures, tables
from bench.schema import STATISTICS
from bench.store import _write_table

R = 200


def row(estimator, theta, *, variance=1.0, ci=(0.8, 1.25), bias=0.0, bias_se=0.07,
        mse=None, seconds=1e-6, spread=None, n_nonfinite=0, nan=None, n=100,
        family="seed_dependence"):
    """One results row of a scalar-θ problem (``nan``: NaN statistics; default: when
    ``n_nonfinite`` > 0, as bench.metrics writes them)."""
    low, high = spread if spread is not None else (seconds, seconds)
    values = {
        "problem": family, "problem_family": family, "estimator": estimator,
        "param": "theta", "param_block": "theta", "theta": theta, "theta_label": f"theta={theta:g}",
        "n_samples": n, "batch_size": n, "n_replicates": R, "truth": 0.2, "truth_se": 0.0,
        "truth_kind": "closed_form", "mean": 0.2 + bias, "bias": bias, "bias_se": bias_se,
        "variance": variance, "variance_ci_low": variance * ci[0],
        "variance_ci_high": variance * ci[1], "variance_ci_rel": (ci[1] - ci[0]) / 2,
        "per_sample_variance": variance * n,
        "mse": variance + bias**2 if mse is None else mse, "n_nonfinite": n_nonfinite,
        "time_per_estimate_s": seconds, "time_per_estimate_min_s": low,
        "time_per_estimate_max_s": high, "time_per_call_s": seconds * R,
        "compile_time_s": 0.5, "samples_per_s": n / seconds, "f_evals_per_estimate": n,
        "event_size": 1, "backend": "xla", "device": "cpu", "seed": 1,
        "cell": json.dumps([family, [], estimator, [theta], n, n], separators=(",", ":")),
    }
    if n_nonfinite if nan is None else nan:
        values.update(dict.fromkeys(STATISTICS, math.nan))
    return values


def write(tmp_path, rows, name="run"):
    frame = pd.DataFrame(rows)
    meta = {"run_id": name, "grid_name": "hand-made", "n_replicates": R, "backend": "xla",
            "device": "cpu", "seed": 1, "skipped": []}
    path = tmp_path / f"{name}.parquet"
    _write_table(path, frame, meta)
    return path


@pytest.fixture(autouse=True)
def few_curve_points(monkeypatch):
    monkeypatch.setattr(exact, "CURVE_POINTS", 3)  # the curves' density is not under test


def build(path, out):
    return report.build(path, out, progress=False)


def text_of(built):
    return built.index.read_text() + (built.directory / "summary.md").read_text()


# -- 1. every estimate overflows: a report that says so, written atomically ----------------

ESTIMATORS = ["score_function", "reparameterization", "naive_mc", "trapz"]


def test_no_finite_statistics_at_all_is_a_report_that_says_so(tmp_path, capsys):
    # θ = 3 of seed_dependence, where (say) every estimate overflowed.
    path = write(tmp_path, [row(name, 3.0, n_nonfinite=R) for name in ESTIMATORS])
    out = tmp_path / "report"
    assert cli.main(["report", str(path), "--out", str(out), "--no-progress"]) == 0
    text = (out / "index.html").read_text() + (out / "summary.md").read_text()
    assert "no cell has finite statistics" in text
    assert "Cells with non-finite estimates" in text and "200 of 200" in text
    assert "Traceback" not in capsys.readouterr().err


def test_an_error_leaves_nothing_half_written(tmp_path, monkeypatch):
    path = write(tmp_path, [row(name, t) for name in ESTIMATORS[:2] for t in (-1.0, -0.5)])
    out = tmp_path / "report"
    first = build(path, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report.page, "write_html", broken)
    with pytest.raises(OSError, match="disk full"):
        build(path, out)
    # The old report is intact, and nothing else is left beside it.
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "run.parquet"]
    fresh = tmp_path / "fresh"
    with pytest.raises(OSError):
        build(path, fresh)
    assert not fresh.exists()
    assert first.index == out / "index.html"


def test_a_rebuilt_report_replaces_the_old_one(tmp_path):
    path = write(tmp_path, [row(name, t) for name in ESTIMATORS[:2] for t in (-1.0, -0.5)])
    out = tmp_path / "report"
    out.mkdir()
    (out / "stale_figure.png").write_bytes(b"old")
    built = build(path, out)
    assert built.index.is_file() and not (out / "stale_figure.png").exists()
    assert all(f.png.parent == out and f.png.is_file() for f in built.figures)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "run.parquet"]


def test_a_folder_that_is_not_a_report_is_not_replaced(tmp_path):
    path = write(tmp_path, [row("score_function", -1.0)])
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(report.ReportError, match="not a gradvar report"):
        build(path, out)
    assert (out / "notes.txt").read_text() == "my notes"


# -- 2. cells with non-finite estimates: listed, never drawn, never ranked ----------------

def mixed_rows():
    return [
        # trapz: tiny MSE where finite, every estimate non-finite at θ = -0.5.
        row("trapz", -1.0, variance=0.0, ci=(0, 0), bias=0.0, bias_se=math.nan, mse=1e-12),
        row("trapz", -0.5, n_nonfinite=R),
        row("score_function", -1.0, variance=2.0),
        row("score_function", -0.5, variance=2.5),
        row("reparameterization", -1.0, variance=1.0),
        row("reparameterization", -0.5, variance=1.2),
        # An older table: 5 estimates non-finite but statistics of the finite rest.
        row("naive_mc", -1.0, variance=0.5, n_nonfinite=5, nan=False),
        row("naive_mc", -0.5, variance=0.5),
    ]


def test_cells_with_nonfinite_estimates_are_listed(tmp_path):
    built = build(write(tmp_path, mixed_rows()), tmp_path / "r")
    text = text_of(built)
    assert "Cells with non-finite estimates" in text
    listed = tables.nonfinite(data.prepare(schema.with_defaults(pd.DataFrame(mixed_rows()))))
    assert list(listed.estimator) == ["trapz", "naive_mc"]
    assert list(listed["non-finite estimates"]) == ["200 of 200", "5 of 200"]
    assert list(listed.theta) == ["theta=-0.5", "theta=-1"]
    assert {"problem", "n_samples", "batch_size"} <= set(listed.columns)


def test_nonfinite_estimators_are_never_ranked(tmp_path):
    ranking = tables.ranking(data.prepare(schema.with_defaults(pd.DataFrame(mixed_rows()))))
    by_name = ranking.set_index("estimator")
    # The trapz cell that is all NaN does not let the finite one rank it first by MSE.
    assert ranking.estimator.iloc[0] == "reparameterization"
    assert pd.isna(by_name.loc["trapz", "rank_by_mse"])
    assert pd.isna(by_name.loc["naive_mc", "rank_by_mse"])
    assert by_name.loc["trapz", "note"] == "not ranked: 200 of 200 estimates non-finite (at 1 of 2 settings)"
    assert by_name.loc["naive_mc", "note"].startswith("not ranked: 5 of 200 estimates non-finite")
    assert list(ranking.estimator[-2:]) == ["trapz", "naive_mc"]


def test_figures_skip_nonfinite_cells(tmp_path):
    frame = data.prepare(schema.with_defaults(pd.DataFrame(mixed_rows())))
    colours = figures.palette(data.estimator_order(frame))
    fig = figures.bias_vs_theta(frame, colours)
    drawn = {line.get_color(): len(line.get_xdata()) for line in fig.axes[0].get_lines()
             if len(line.get_xdata()) and line.get_marker() == "o"}
    # naive_mc's partial statistics at θ = -1 are not drawn; trapz's NaN cell neither.
    assert drawn[colours["naive_mc"]] == 1 and drawn[colours["trapz"]] == 1
    assert drawn[colours["score_function"]] == 2
    fig = figures.efficiency(frame, colours)
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.startswith("not ranked: 200 of 200 estimates non-finite") for t in labels)


# -- 3. an empty table -----------------------------------------------------------------------

def test_empty_table_says_the_grid_has_no_cells(tmp_path, capsys):
    path = write(tmp_path, pd.DataFrame([row("score_function", -1.0)]).iloc[:0])
    out = tmp_path / "r"
    assert cli.main(["report", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"gradvar: error: {path}: the results table has no rows (its grid has no "
                   "cells, or every one was skipped); nothing to report.")
    assert not out.exists()


# -- 4. efficiency with intervals, biased estimators apart, ties called ties ---------------

def efficiency_rows(spread=True):
    def timed(seconds):
        return {"seconds": seconds, "spread": (0.9 * seconds, 1.2 * seconds) if spread else None}

    return [
        # best: 1e-6 (interval 0.72e-6 ... 1.5e-6)
        row("reparameterization", -1.0, variance=1.0, **timed(1e-6)),
        # 1.2e-6 (0.864e-6 ... 1.8e-6): overlaps the best's interval, a tie
        row("score_function", -1.0, variance=1.2, **timed(1e-6)),
        # 5e-6 (3.6e-6 ... 7.5e-6): clearly worse
        row("score_function_loo", -1.0, variance=5.0, **timed(1e-6)),
        # biased and cheapest: listed apart, never ranked by efficiency
        row("naive_mc", -1.0, variance=0.1, bias=1.0, bias_se=0.02, **timed(1e-6)),
    ]


def test_efficiency_has_intervals_and_ties(tmp_path):
    ranking = tables.ranking(data.prepare(schema.with_defaults(pd.DataFrame(efficiency_rows())))).set_index("estimator")
    assert ranking.loc["reparameterization", "efficiency_low"] == pytest.approx(0.8 * 0.9e-6)
    assert ranking.loc["reparameterization", "efficiency_high"] == pytest.approx(1.25 * 1.2e-6)
    assert ranking.efficiency_rank.to_dict() == {
        "reparameterization": "=1", "score_function": "=1", "score_function_loo": "3",
        "naive_mc": "—"}
    assert ranking.loc["score_function", "note"] == "tied with the best"
    assert ranking.loc["naive_mc", "note"].startswith("biased")


def test_efficiency_without_timing_spread_uses_the_median_time(tmp_path):
    rows = efficiency_rows(spread=False)
    frame = pd.DataFrame(rows).drop(columns=["time_per_estimate_min_s", "time_per_estimate_max_s"])
    ranking = tables.ranking(data.prepare(schema.with_defaults(frame))).set_index("estimator")
    assert ranking.loc["score_function_loo", "efficiency_low"] == pytest.approx(4e-6)
    assert ranking.loc["score_function_loo", "efficiency_high"] == pytest.approx(6.25e-6)
    assert ranking.loc["score_function_loo", "efficiency_rank"] == "3"


def test_efficiency_figure_draws_intervals_and_lists_biased_apart(tmp_path):
    frame = data.prepare(schema.with_defaults(pd.DataFrame(efficiency_rows())))
    fig = figures.efficiency(frame, figures.palette(data.estimator_order(frame)))
    ax = fig.axes[0]
    assert len(ax.containers) >= 1 and any(
        type(c).__name__ == "ErrorbarContainer" for c in ax.containers)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # Ranked estimators first, best on top; the biased one in its own group below them.
    assert labels[:3] == ["=1 reparameterization", "=1 score_function", "3 score_function_loo"]
    assert labels[-1] == "naive_mc"
    assert any("biased" in t.get_text() for t in ax.texts)
    caption = report.catalog.BY_NAME["efficiency"].caption
    assert "overlaps" in caption and "tied" in caption


def test_a_block_whose_components_are_all_nonfinite(tmp_path):
    cell = json.dumps(["block_problem", [], "score_function", [0.5, 0.5], 100, 100],
                      separators=(",", ":"))
    rows = [dict(row("score_function", 0.5, n_nonfinite=R, family="block_problem"),
                 param=f"mean[{i}]", param_block="mean", cell=cell) for i in range(2)]
    frame = data.prepare(schema.with_defaults(pd.DataFrame(rows)))
    assert len(frame) == 1 and frame.nonfinite.all()
    assert list(tables.nonfinite(frame)["non-finite estimates"]) == ["200 of 200"]
    built = build(write(tmp_path, rows), tmp_path / "r")
    assert "no cell has finite statistics" in text_of(built)


def test_truths_used_without_their_cross_check_are_named(tmp_path):
    note = ("The cross-check could not resolve an error of 10% of the gradient in 'theta': "
            "only errors beyond 0.3 would have been seen, 0.2× the gradient's scale there.")
    rows = [dict(row("score_function", theta), truth_checked=theta != 8.0,
                 truth_note=note if theta == 8.0 else "") for theta in (-1.0, 8.0)]
    built = build(write(tmp_path, rows), tmp_path / "report")
    text = text_of(built)
    assert "The truth of 1 setting(s) is not checked to 10% of its gradient" in text
    assert "seed_dependence at theta=8 (The cross-check could not resolve an error" in text


def test_settings_where_f_jumps_are_named(tmp_path):
    rows = [dict(row("reparameterization", theta), f_jumps=theta == 8.0)
            for theta in (-1.0, 8.0)]
    text = text_of(build(write(tmp_path, rows), tmp_path / "report"))
    assert "f is not differentiable along the draws at 1 setting(s)" in text
    assert "seed_dependence at theta=8. Column f_jumps." in text


def test_a_report_of_a_table_whose_truths_were_all_checked_has_no_such_note(tmp_path):
    rows = [dict(row("score_function", theta), truth_checked=True) for theta in (-1.0, 0.5)]
    assert "is not checked to 10% of its gradient" not in text_of(
        build(write(tmp_path, rows), tmp_path / "report"))


# -- bias and determinism judged per cell ---------------------------------------------------

def prepared_rows(rows):
    return data.prepare(schema.with_defaults(pd.DataFrame(rows)), "hand-made").set_index(["estimator", "theta"])


def test_a_large_truth_at_one_theta_does_not_make_the_others_deterministic():
    # Was: seed_dependence at θ = 3 (truth 6.6e6) made every θ = -1 cell "deterministic"
    # (sd < 1e-6 of the family's largest truth), so naive_mc, 300 SE off there, was
    # called unbiased and ranked tied with the best.
    rows = [row("score_function", -1.0, variance=2.5e-3, bias=0.001, bias_se=0.0035),
            row("naive_mc", -1.0, variance=1e-4, bias=-0.2, bias_se=0.0007)]
    rows += [dict(row(name, 3.0, variance=1e10, bias_se=7e3), truth=6.6e6, mean=6.6e6)
             for name in ("score_function", "naive_mc")]
    frame = prepared_rows(rows)
    assert not frame.deterministic.any()
    assert frame.biased[("naive_mc", -1.0)] and not frame.biased[("score_function", -1.0)]


@pytest.mark.parametrize("misses_by_se, biased", [(1.8, False), (10.0, True)])
def test_an_exact_estimator_against_a_monte_carlo_truth_is_judged_in_its_se(misses_by_se,
                                                                            biased):
    # Was: zero variance meant "no SE", and a 1.8-SE miss of a Monte Carlo truth was biased.
    truth_se = 0.0056
    rows = [dict(row("score_function", 0.5, variance=0.0, ci=(1.0, 1.0),
                     bias=misses_by_se * truth_se, bias_se=truth_se),
                 truth_se=truth_se, truth_kind="monte_carlo"),
            dict(row("reparameterization", 0.5, bias_se=0.07), truth_se=truth_se,
                 truth_kind="monte_carlo")]
    frame = prepared_rows(rows)
    assert frame.deterministic[("score_function", 0.5)]
    assert frame.biased[("score_function", 0.5)] == biased

"""One results schema (bench.schema): what ``measure`` writes, its dtypes, older tables,
README's table; and one bias rule shared by ``gradvar run``'s summary and the report."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import cli, grid, measuring, runner, schema
from bench.report import data
from bench.store import _write_table, read_results
from bench.summary import summary

ONE_CELL = """
name = "one-cell"
seed = 5
n_replicates = 20
timing_repeats = 1
estimators = ["score_function"]
n_samples = [10]
batch_sizes = ["all"]

[[problems]]
name = "gaussian_exp"
theta = [[0.5, 1.0]]
"""

DEFAULTED = ["n_nonfinite", "time_per_estimate_min_s", "time_per_estimate_max_s",
             "timing_mode", "workers_on_host", "truth_tolerance", "truth_method",
             "truth_note", "f_jumps", "state_updates", "time_per_update_s", *schema.DERIVED]
"""The columns that tables of older versions lack and that reading fills in (the cell's
coordinates derived from its key and estimator label)."""


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("one-cell")
    return runner.run(grid.parse(ONE_CELL, "one-cell.toml"), out, progress=False)


def test_every_column_measure_writes_is_in_the_schema():
    g = grid.parse(ONE_CELL, "one-cell.toml")
    rows = measuring.measure(g.cells[0], g.settings)
    written = set(rows.columns)
    assert written - set(schema.NAMES) == set()
    # And the schema lists nothing that is not written (step: training grids only).
    assert set(schema.NAMES) - written == {"step"}


def test_the_written_table_has_schema_order_and_dtypes(table):
    raw = pd.read_parquet(table)  # as written, before read_results fills anything in
    assert list(raw.columns) == [name for name in schema.NAMES if name != "step"]
    for name in raw.columns:
        assert raw[name].dtype == schema.BY_NAME[name].dtype, name
    assert set(raw.timing_mode) == {"serial"} and set(raw.workers_on_host) == {1}


def test_conform_keeps_unknown_columns_at_the_end():
    frame = pd.DataFrame({"extra": ["x"], "seed": [1.0], "problem": ["p"], "step": [3.0]})
    conformed = schema.conform(frame)
    assert list(conformed.columns) == ["problem", "step", "seed", "extra"]
    assert conformed.seed.dtype == "int64" and conformed.step.dtype == "int64"


def test_an_old_table_is_read_with_defaults(table, tmp_path, capsys):
    frame, meta = read_results(table)
    old = frame.drop(columns=DEFAULTED)
    path = tmp_path / "old.parquet"
    _write_table(path, old, meta)
    read, _ = read_results(path)
    # The coordinates derived from the keys and labels are the ones measure wrote.
    for name in schema.DERIVED:
        pd.testing.assert_series_equal(read[name], frame[name], check_dtype=False)
    assert (read.timing_mode == "serial").all() and (read.workers_on_host == 1).all()
    assert read.workers_on_host.dtype == "int64" and (read.n_nonfinite == 0).all()
    assert (read.time_per_estimate_min_s == read.time_per_estimate_s).all()
    assert (read.time_per_estimate_max_s == read.time_per_estimate_s).all()
    data.check_columns(read, "old")  # the report can read it
    # The oldest tables have only the required columns: still readable, and shown.
    oldest = tmp_path / "oldest.parquet"
    _write_table(oldest, frame[list(schema.REQUIRED)], meta)
    assert set(read_results(oldest)[0].columns) == set(schema.REQUIRED) | set(DEFAULTED)
    assert cli.main(["show", str(oldest)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[1] == f"timed: alone, one cell at a time in one process ({len(frame)} rows)"
    header = shown[2].split()
    assert header == ["problem", "estimator", "param", "theta", "n", "batch", "truth",
                      "truth_kind", "bias", "bias_se", "variance", "mse", "nonfinite",
                      "s/estimate"]


def test_a_table_without_a_required_column_is_refused(table, tmp_path):
    frame, meta = read_results(table)
    path = tmp_path / "broken.parquet"
    _write_table(path, frame.drop(columns=["truth_se"]), meta)
    with pytest.raises(ValueError, match="lacks columns \\['truth_se'\\]"):
        read_results(path)


def test_readme_lists_exactly_the_schema_columns():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("#### Results columns", 1)[1]
    table = re.search(r"^\| column \| type \| meaning \|\n(?:\|.*\n)+", section, re.M).group(0)
    assert table == schema.markdown_table()


# -- one bias rule --------------------------------------------------------------------------

R = 1000
SECONDS = 1e-6


def cell_rows(problem, estimator, *, variance, misses_by_se=(), truth=1.0, k=1,
              bias=0.0):
    """The rows of one cell of ``problem`` (k components: a block ``mean`` when k > 1,
    else the scalar ``theta``); ``misses_by_se``: {component: bias in SE}; ``bias``: every
    other component's bias."""
    theta = [0.5] * k
    params = [f"mean[{i}]" for i in range(k)] if k > 1 else ["theta"]
    cell = json.dumps([problem, [], estimator, theta, 100, 100], separators=(",", ":"))
    bias_se = float(np.sqrt(variance / R))
    rows = []
    for index, param in enumerate(params):
        miss = dict(misses_by_se).get(index)
        b = bias if miss is None else miss * bias_se
        rows.append({
            "problem": problem, "problem_family": problem, "estimator": estimator,
            "param": param, "param_block": "mean" if k > 1 else "theta", "theta": 0.5,
            "theta_label": "0.5", "n_samples": 100, "batch_size": 100, "n_replicates": R,
            "truth": truth, "truth_kind": "closed_form", "truth_se": 0.0,
            "mean": truth + b, "bias": b, "bias_se": bias_se, "variance": variance,
            "variance_ci_low": 0.9 * variance, "variance_ci_high": 1.1 * variance,
            "variance_ci_rel": 0.1, "per_sample_variance": 100 * variance,
            "mse": variance + b**2, "n_nonfinite": 0, "f_evals_per_estimate": 100,
            "event_size": 1, "time_per_estimate_s": SECONDS, "time_per_call_s": SECONDS * R,
            "samples_per_s": 100 / SECONDS, "compile_time_s": 0.1, "backend": "xla",
            "device": "cpu", "seed": 1, "cell": cell})
    return rows


TRUTH = 0.25
CASES = {
    # problem: (the candidate's rows, flagged?). Each problem also has score_function,
    # unbiased with 100× the variance: the candidate is best by variance × time unless
    # it is flagged.
    "block_4.5_se": (dict(estimator="reparameterization", k=50, misses_by_se={7: 4.5}), False),
    "block_8_se": (dict(estimator="reparameterization", k=50, misses_by_se={7: 8.0}), True),
    "scalar_4.5_se": (dict(estimator="reparameterization", misses_by_se={0: 4.5}), True),
    # DisARM at p = ½: exact up to float32 rounding, SE ~1e-12.
    "disarm_exact": (dict(estimator="disarm", variance=1e-21, truth=TRUTH,
                          bias=0.8 * 1e-5 * TRUTH), False),
    # An sd too large to be rounding, a bias of 0.8e-5 of the truth (6 SE): rounding too.
    "within_rounding": (dict(estimator="reparameterization", variance=1e-10, truth=TRUTH,
                             bias=0.8 * 1e-5 * TRUTH), False),
    "beyond_rounding": (dict(estimator="reparameterization", variance=1e-10, truth=TRUTH,
                             bias=3e-5 * TRUTH), True),
    "relaxation": (dict(estimator="gumbel_softmax"), True),  # biased by construction
}


def bias_table() -> pd.DataFrame:
    """As read_results gives it: with the defaults and coordinates of a read table."""
    rows = []
    for problem, (candidate, _) in CASES.items():
        candidate = {"variance": 1e-4, "truth": 1.0, **candidate}
        rows += cell_rows(problem, **candidate)
        rows += cell_rows(problem, "score_function", variance=1e-2, truth=candidate["truth"],
                          k=candidate.get("k", 1))
    return schema.with_defaults(pd.DataFrame(rows))


def test_the_summary_and_the_report_flag_the_same_cells_biased():
    frame = bias_table()
    prepared = data.prepare(frame, "hand-made")
    by_report = set(zip(prepared.estimator[prepared.biased], prepared.problem[prepared.biased]))
    best = summary(frame).set_index("problem").best_by_variance_x_time
    by_summary = set()
    for problem, (candidate, _) in CASES.items():
        assert best[problem] in (candidate["estimator"], "score_function"), best[problem]
        if best[problem] != candidate["estimator"]:
            by_summary.add((candidate["estimator"], problem))
    expected = {(candidate["estimator"], problem)
                for problem, (candidate, flagged) in CASES.items() if flagged}
    assert by_report == expected
    assert by_summary == expected


def test_a_block_is_judged_by_its_worst_component_against_a_bonferroni_level():
    rows = cell_rows("p", "reparameterization", variance=1e-4, k=50, misses_by_se={3: 4.5})
    frame = schema.with_defaults(pd.DataFrame(rows))
    assert not data.prepare(frame).biased.any()
    # The same miss in a block of two components is beyond its level.
    rows = cell_rows("p", "reparameterization", variance=1e-4, k=2, misses_by_se={1: 4.5})
    assert data.prepare(schema.with_defaults(pd.DataFrame(rows))).biased.all()


def test_schema_and_coordinates_name_the_same_columns():
    from bench import coordinates

    assert set(schema.DERIVED) == set(coordinates.COLUMNS)

"""``gradvar compare``: rows matched by coordinates, variance and mean changes beyond their
intervals (Bonferroni over the tests), blocks printed compactly, exit status 0 / 1 / 2.

Hand-made tables (``tests.bench.test_report_bad_numbers.row``, written through
``bench.store``) test each rule; two real runs of a small grid at different seeds must
show no change, and the same rerun with one estimator's output perturbed must show it."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench import compare, grid, runner
from bench.store import read_results
from tests.bench.test_bad_input import gradvar, one_sentence_error
from tests.bench.test_report_bad_numbers import R, row, write

THETAS = [-1.0, -0.5, 0.0, 0.5]


def table(changes=()):
    """Rows of two estimators at four θ; ``changes``: {(estimator, θ): {column: value}}."""
    rows = [row(name, theta) for name in ("score_function", "reparameterization")
            for theta in THETAS]
    for values in rows:
        values.update(dict(changes).get((values["estimator"], values["theta"]), {}))
    return pd.DataFrame(rows)


def scaled_variance(factor):
    """A variance ``factor`` times row()'s, its interval scaled alike."""
    return {"variance": factor, "variance_ci_low": 0.8 * factor,
            "variance_ci_high": 1.25 * factor}


def test_identical_tables_match_every_row_and_change_nothing():
    comparison = compare.compare(table(), table())
    assert len(comparison.matched) == 8 and comparison.tests == 16
    assert comparison.threshold == pytest.approx(float(compare.metrics.bias_threshold(16)))
    assert not comparison.changed
    assert compare.describe(comparison)[-1] == "no change."


def test_a_variance_ratio_beyond_both_intervals_is_a_change():
    # row()'s interval (0.8, 1.25) gives se(ln v) = ln(1.5625) / 3.92 = 0.114: a ratio of
    # 2 is z = ln 2 / (0.114 √2) = 4.3, under the 16 tests' level 4.9; a ratio of 3 is 6.8.
    se = math.log(1.25 / 0.8) / (2 * compare.metrics.Z95)
    small = compare.compare(table(), table({("score_function", 0.0): scaled_variance(2.0)}))
    assert small.matched.variance_z.max() == pytest.approx(math.log(2) / (se * math.sqrt(2)))
    assert not small.changed
    large = compare.compare(table(), table({("score_function", 0.0): scaled_variance(3.0)}))
    flagged = large.matched[large.matched.variance_changed]
    assert flagged[["estimator", "theta"]].values.tolist() == [["score_function", 0.0]]
    assert not large.matched.mean_changed.any() and large.changed


def test_a_mean_shift_is_judged_by_the_means_own_errors_when_the_truths_are_equal():
    # row(): variance 1, R = 200: each mean's SE 0.0707, the difference's 0.1. bias_se 0.07
    # in the table, and a truth SE of 0.5 that must not hide a shift of 0.6 (z = 6).
    se_truth = {"truth_se": 0.5, "bias_se": math.hypot(1 / math.sqrt(R), 0.5)}
    a = table({("reparameterization", 0.5): se_truth})
    shifted = {**se_truth, "mean": 0.8, "bias": 0.6}
    comparison = compare.compare(a, table({("reparameterization", 0.5): shifted}))
    flagged = comparison.matched[comparison.matched.mean_changed]
    assert flagged[["estimator", "theta"]].values.tolist() == [["reparameterization", 0.5]]
    rounding = compare.metrics.FLOAT32_ROUNDING * 0.8  # of the largest mean
    assert flagged.mean_z.iloc[0] == pytest.approx((0.6 - rounding) / math.sqrt(2 / R))


def test_different_truths_are_listed_and_compared_by_their_biases():
    # A truth that moved by 1.0 with the estimator's mean: the bias is the same, the
    # truth differs (the runs measured different things), which is a change.
    moved = {"truth": 1.2, "mean": 1.2, "bias": 0.0}
    comparison = compare.compare(table(), table({("score_function", -1.0): moved}))
    m = comparison.matched
    assert m.truth_differs.sum() == 1 and not m.mean_changed.any() and comparison.changed
    text = "\n".join(compare.describe(comparison))
    assert "truth differs: 1 row in 1 block:" in text and "truth 0.2 → 1.2" in text


def test_float32_rounding_and_equal_deterministic_estimates_are_no_change():
    exact = {"variance": 0.0, "variance_ci_low": 0.0, "variance_ci_high": 0.0,
             "bias_se": 0.0, "mean": 0.2, "bias": 0.0}
    rounded = {**exact, "mean": 0.2 * (1 + 5e-6), "bias": 1e-6}
    comparison = compare.compare(table({("score_function", 0.5): exact}),
                                 table({("score_function", 0.5): rounded}))
    assert not comparison.changed
    off = {**exact, "mean": 0.2 * (1 + 1e-3), "bias": 2e-4}
    comparison = compare.compare(table({("score_function", 0.5): exact}),
                                 table({("score_function", 0.5): off}))
    assert comparison.matched.mean_changed.sum() == 1


def test_a_deterministic_estimator_that_became_random_is_a_variance_change():
    exact = {"variance": 0.0, "variance_ci_low": 0.0, "variance_ci_high": 0.0, "bias_se": 0.0}
    comparison = compare.compare(table({("score_function", 0.5): exact}), table())
    row_ = comparison.matched[comparison.matched.variance_changed]
    assert len(row_) == 1 and row_.variance_z.iloc[0] == np.inf
    assert "no longer deterministic" in "\n".join(compare.describe(comparison))


def test_rows_in_one_table_only_and_non_finite_cells_are_reported():
    a = table()
    b = pd.concat([table(), pd.DataFrame([row("trapz", 0.5)])], ignore_index=True)
    b = b[~((b.estimator == "score_function") & (b.theta == -1.0))]
    nan = {"n_nonfinite": 3, "mean": math.nan, "variance": math.nan, "bias": math.nan}
    b.loc[(b.estimator == "reparameterization") & (b.theta == 0.0), list(nan)] = list(nan.values())
    for frame in (a, b):
        frame.loc[(frame.estimator == "reparameterization") & (frame.theta == 0.5),
                  list(nan)] = list(nan.values())
    comparison = compare.compare(a, b)
    assert len(comparison.only_a) == 1 and len(comparison.only_b) == 1
    text = "\n".join(compare.describe(comparison))
    assert "7 rows by" in text and "1 only in A, 1 only in B." in text
    assert "only in B:\n  seed_dependence · trapz · theta=0.5 · n 100 · batch 100: 1 row" in text
    assert "non-finite estimates in B only: 1 row in 1 block:" in text
    assert "3 of 200 estimates non-finite" in text
    assert "non-finite estimates in both (not compared): 1 row." in text
    assert comparison.tests == 2 * 5 and comparison.changed


def test_cells_that_share_theta_at_one_component_are_told_apart():
    # θ = (mean, std) = (1, 1) and (1, 2): the ∂/∂mean rows share theta = 1.
    def cell(std, variance):
        key = json.dumps(["gaussian_cos", [], "score_function", [1.0, std], 10, 10])
        return [{**row("score_function", theta, variance=variance, n=10),
                 "problem": "gaussian_cos", "param": param, "param_block": param,
                 "theta_label": f"mean=1, std={std:g}", "cell": key}
                for param, theta in (("mean", 1.0), ("std", std))]

    a = pd.DataFrame(cell(1.0, 1.0) + cell(2.0, 1.0))
    b = pd.DataFrame(cell(2.0, 1.0) + cell(1.0, 5.0))  # other order, one cell changed
    comparison = compare.compare(a, b)
    m = comparison.matched
    assert len(m) == 4 and comparison.only_a.empty
    changed = m[m.variance_changed]
    assert changed.theta_label_a.unique().tolist() == ["mean=1, std=1"] and len(changed) == 2


def test_a_block_of_many_components_is_one_line_with_the_worst():
    def block(shift):
        key = json.dumps(["gaussian_square_nd", {"D": 500}, "score_function", [0.0] * 500,
                          10, 10])
        rows = [{**row("score_function", 0.0), "problem": "gaussian_square_nd(D=500)",
                 "param": f"mean[{i}]", "param_block": "mean", "theta_label": "mean=[0 ... 0]",
                 "cell": key} for i in range(500)]
        for i in range(0, 300 if shift else 0, 2):  # 150 components shifted, one most
            rows[i].update(mean=0.2 + shift * (2 if i == 42 else 1))
        return pd.DataFrame(rows)

    comparison = compare.compare(block(0.0), block(1.0))
    lines = compare.describe(comparison, limit=20)
    assert "mean changed: 150 rows in 1 block:" in lines
    [line] = [line for line in lines if "components" in line]
    assert "mean: 150 of 500 components; worst mean[42]: mean 0.2 → 2.2" in line
    assert len(lines) == 5


def test_training_checkpoints_are_coordinates():
    def at(step):  # a training run's cell key ends with the step
        frame = table().assign(step=step)
        return frame.assign(cell=frame.cell.str[:-1] + f",{step}]")

    a = pd.concat([at(0), at(100)], ignore_index=True)
    b = a.copy()
    b.loc[(b.step == 100) & (b.estimator == "score_function") & (b.theta == 0.0),
          ["mean", "bias"]] = [1.2, 1.0]
    comparison = compare.compare(a, b)
    assert len(comparison.matched) == 16
    lines = compare.describe(comparison)
    assert "mean changed: 1 row in 1 block:" in lines
    assert [line for line in lines if "· batch 100 · step 100 · theta: mean 0.2 → 1.2" in line]


def test_identical_coordinates_twice_in_one_table_is_an_error():
    a = table()
    with pytest.raises(compare.CompareError, match="table B: rows 0 and 8 have the same"):
        compare.compare(a, pd.concat([a, a.iloc[:1]], ignore_index=True))
    with pytest.raises(compare.CompareError, match="no rows in common"):
        compare.compare(a, a.assign(n_samples=7))


# -- the command: exit status and its errors -----------------------------------------------

def test_the_command_exits_1_on_a_change_0_without(tmp_path):
    before = write(tmp_path, table().to_dict("records"), name="before")
    after = write(tmp_path, table({("score_function", 0.0): scaled_variance(3.0)})
                  .to_dict("records"), name="after")
    code, out, err = gradvar("compare", before, before)
    assert (code, err) == (0, "") and out.splitlines()[-1] == "no change."
    code, out, err = gradvar("compare", before, after)
    assert code == 1 and err == ""
    assert out.splitlines()[0].startswith(f"A: {before}  run before")
    assert "variance changed: 1 row in 1 block:" in out and "(×3, z +6.8)" in out


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing.parquet", "no such results file."),
    (lambda tmp: (tmp / "plain.txt").write_text("x") and tmp / "plain.txt",
     "not a parquet results table"),
    (lambda tmp: write(tmp, table().assign(n_samples=7).to_dict("records"), name="other"),
     "no rows in common"),
])
def test_user_errors_are_one_sentence_and_exit_2(tmp_path, make, message):
    good = write(tmp_path, table().to_dict("records"), name="good")
    code, _, err = gradvar("compare", good, make(tmp_path))
    assert code == 2
    line = one_sentence_error(err)
    assert line.startswith("gradvar compare: error: ") and message in line


# -- two real runs -----------------------------------------------------------------------

SMALL = """
name = "compare-test"
seed = {seed}
n_replicates = 200
timing_repeats = 1
estimators = ["score_function", "reparameterization", "trapz"]
n_samples = [10, 100]

[[problems]]
name = "seed_dependence"
theta = [-1.0, 0.0]

[[problems]]
name = "gaussian_cos"
theta = [[1.0, 1.0]]
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return [runner.run(grid.parse(SMALL.format(seed=seed), f"seed{seed}.toml"), out,
                       progress=False) for seed in (0, 1)]


def test_a_rerun_at_another_seed_changes_nothing(runs):
    code, out, _ = gradvar("compare", *runs)
    assert code == 0, out
    assert "matched 24 rows" in out and "0 only in A, 0 only in B." in out
    assert out.splitlines()[-1] == "no change."


def test_a_perturbed_estimator_is_found(runs, tmp_path):
    # The rerun with reparameterization's estimates e' = e + c·(e - mean) + 8 SE, as a
    # broken change would give: variance × (1 + c)², mean 8 SE off.
    frame, meta = read_results(runs[1])
    hit = frame.estimator == "reparameterization"
    factor = 2.5**2
    for column in ("variance", "variance_ci_low", "variance_ci_high", "per_sample_variance"):
        frame.loc[hit, column] *= factor
    shift = 8 * np.sqrt(frame.variance / frame.n_replicates)
    frame.loc[hit, "mean"] += shift[hit]
    frame.loc[hit, "bias"] += shift[hit]
    perturbed = tmp_path / "perturbed.parquet"
    from bench.store import _write_table
    _write_table(perturbed, frame, meta)
    code, out, _ = gradvar("compare", runs[0], perturbed)
    assert code == 1, out
    comparison = compare.compare(read_results(runs[0])[0], frame)
    m = comparison.matched
    flagged = m[m.variance_changed | m.mean_changed]
    assert set(flagged.estimator) == {"reparameterization"}
    assert m[m.estimator == "reparameterization"].variance_changed.mean() > 0.5

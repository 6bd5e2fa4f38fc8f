"""The lab's setups (shared/lab/LAB.md) through estimators.lab, against exact values."""

import pytest

# LAB.md's "exact" column, in the lab's order: an independent check of our ground truth.
LAB_EXACT = [-0.0068581, 0.13913, -0.54084, 0.85259, -0.54084, 0.13913,
             0.944084, 0.944084,
             0.08469, 0.08469, 0.29560, 0.29560, 0.82806, 0.82806, 0.29560, 0.29560,
             0.08469, 0.08469,  # MC and trapz for each μ
             0.749818, 1.071658, 1.071658, 0.481330, 0.166655, 0.166655]


@pytest.fixture(scope="module")
def rows(lab_rows):
    return lab_rows(0)


def test_every_setup_is_there(rows):
    assert len(rows) == len(LAB_EXACT)
    assert len({r["key"] for r in rows}) == len(rows)
    assert [r["task"] for r in rows] == ["T1"] * 6 + ["T2"] * 12 + ["T3"] * 3 + ["T4"] + ["T5"] * 2


def test_exact_values_match_lab_md(rows):
    for row, expected in zip(rows, LAB_EXACT):
        digits = len(str(expected).split(".")[1])
        assert abs(row["exact"] - expected) <= 0.6 * 10.0**-digits, (row["setup"], row["exact"])


def test_monte_carlo_setups_within_4_se(rows):
    checked = 0
    for row in rows:
        if row["se"] is not None:
            assert abs(row["error_se"]) < 4, row
            checked += 1
    assert checked == 12


def test_trapezoidal_setups_are_accurate(rows):
    for row in rows:
        if row["se"] is None:
            assert abs(row["value"] - row["exact"]) < 1e-4 * max(1.0, abs(row["exact"])), row

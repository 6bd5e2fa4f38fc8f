"""Two results tables side by side: which cells' variance or mean changed beyond their
confidence intervals (``gradvar compare RESULTS_A RESULTS_B``), for checking a change to an
estimator or a commit against a run before it.

**Matching.** Rows are matched by their coordinates: problem, estimator, param, n_samples,
batch_size, step (training runs) and θ, where θ is the row's ``theta`` together with the
``theta`` of every other component of its cell (two cells can share θ at one component
and differ at another). The ``cell`` column only groups a table's rows into cells; its
text is never compared across tables, so tables written by versions with other cell keys
still match. Rows of one table with no partner in the other are listed, not compared.

**Tests**, per matched row whose estimates are all finite in both tables:

* variance: z = ln(v_B / v_A) / sqrt(se_A² + se_B²), se = the standard error of ln v
  read off the row's 95% interval, se = (ln variance_ci_high − ln variance_ci_low) /
  (2 · 1.96) (the interval is symmetric in ln v by construction, ``bench.metrics``). A
  variance of exactly 0 (a deterministic estimator) changed when the other is not 0;
* mean: with equal truths (the Monte Carlo references of two runs are drawn with the same
  fixed key, so they are equal, and the truth's error is common to both means and cancels
  in their difference), z = (m_B − m_A) / sqrt(v_A / R_A + v_B / R_B), the means' own
  standard errors (bias_se² − truth_se²); with different truths, the biases are compared
  instead, z = (bias_B − bias_A) / sqrt(bias_se_A² + bias_se_B²), whose SEs include both
  truths'. As in the bias rule, a difference within float32 rounding (1e-5 of the largest
  of the truth and the two means, ``metrics.FLOAT32_ROUNDING``) is not a change.

A row changed when |z| exceeds ``bench.metrics.bias_threshold(k)``, k the number of
tests made (two per compared row): the Bonferroni-corrected level of the bias rule, so
comparing a run with a rerun at another seed flags something by chance about once in
16,000 comparisons (two-sided, 2 × 3.2e-5), however large the tables.

**Also a change:** a row whose truth differs between the tables (beyond 1e-9 relative:
the runs did not measure the same thing), and a row with non-finite estimates in one
table only. Rows non-finite in both are counted and not compared.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from bench import metrics

COORDINATES = ("problem", "estimator", "param", "n_samples", "batch_size", "step", "theta")
"""The columns that say which cell and component a row is (``step``: training runs)."""
TRUTH_RTOL = 1e-9
"""Truths closer than this (relative) are the same truth: rounding of one computation."""


class CompareError(ValueError):
    """Two tables that cannot be compared; the message says why."""


@dataclasses.dataclass
class Comparison:
    """The outcome of :func:`compare`.

    Attributes:
      matched: one row per matched row, the columns of A and B with suffixes ``_a`` and
        ``_b``, the coordinates once, and the tests' ``variance_z``, ``mean_z``,
        ``variance_changed``, ``mean_changed``, ``truth_differs``, ``nonfinite_a``,
        ``nonfinite_b`` and ``compared``.
      only_a, only_b: the rows of each table with no partner in the other.
      threshold: |z| beyond which a test calls a change.
      tests: how many tests were made (the Bonferroni k).
    """

    matched: pd.DataFrame
    only_a: pd.DataFrame
    only_b: pd.DataFrame
    threshold: float
    tests: int

    @property
    def changes(self) -> pd.Series:
        """Per matched row: variance or mean changed, the truth differs, or its estimates
        are non-finite in one table only."""
        m = self.matched
        return (m.variance_changed | m.mean_changed | m.truth_differs
                | (m.nonfinite_a != m.nonfinite_b))

    @property
    def changed(self) -> bool:
        return bool(self.changes.any())


def compare(a: pd.DataFrame, b: pd.DataFrame) -> Comparison:
    """Matches the rows of two results tables and tests each pair (module docstring).

    Args:
      a, b: results tables (``bench.store.read_results``), A the reference (before).

    Returns:
      The :class:`Comparison`.

    Raises:
      CompareError: a table without rows, without the ``cell`` column, with two rows at
        the same coordinates, or no row in common.
    """
    keyed_a, keyed_b = _keyed(a, "A"), _keyed(b, "B")
    # Every column suffixed, also those only one table has (a training run's step).
    matched = keyed_a.add_suffix("_a").rename(columns={"key_a": "key"}).merge(
        keyed_b.add_suffix("_b").rename(columns={"key_b": "key"}), on="key")
    if matched.empty:
        raise CompareError("no rows in common (problem, estimator, param, n_samples, "
                           "batch_size, step and θ): compare two runs of the same grid.")
    for column in COORDINATES:
        if f"{column}_a" in matched.columns:
            matched[column] = matched[f"{column}_a"]
    only_a = keyed_a[~keyed_a.key.isin(keyed_b.key)].drop(columns="key")
    only_b = keyed_b[~keyed_b.key.isin(keyed_a.key)].drop(columns="key")

    matched["nonfinite_a"] = _nonfinite(matched, "a")
    matched["nonfinite_b"] = _nonfinite(matched, "b")
    compared = ~matched.nonfinite_a & ~matched.nonfinite_b
    matched["compared"] = compared
    matched["truth_differs"] = ~np.isclose(matched.truth_a, matched.truth_b, rtol=TRUTH_RTOL,
                                           atol=0.0, equal_nan=True)
    tests = 2 * int(compared.sum())
    threshold = float(metrics.bias_threshold(max(tests, 1)))
    matched["variance_z"] = _variance_z(matched).where(compared)
    matched["mean_z"] = _mean_z(matched).where(compared)
    matched["variance_changed"] = matched.variance_z.abs() > threshold  # NaN: False
    matched["mean_changed"] = matched.mean_z.abs() > threshold
    return Comparison(matched, only_a, only_b, threshold, tests)


def _keyed(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``frame`` with a ``key`` column: its coordinates, θ of its whole cell included."""
    if frame.empty:
        raise CompareError(f"table {name} has no rows.")
    if "cell" not in frame.columns:
        raise CompareError(f"table {name} lacks the cell column, so its rows cannot be "
                           "grouped into cells.")
    frame = frame.reset_index(drop=True)
    # θ of the whole cell as text made once per cell: a string caches its hash, where a
    # tuple of a 1,000-component cell's θ would be hashed again for every row and lookup.
    cells = frame.groupby("cell", sort=False)
    cell_theta = cells.theta.agg(lambda theta: repr(theta.tolist())).to_numpy()[
        cells.ngroup().to_numpy()]
    step = frame["step"] if "step" in frame.columns else pd.Series(-1, index=frame.index)
    columns = [frame[c].to_numpy() for c in COORDINATES if c != "step"] + [
        step.fillna(-1).to_numpy(), cell_theta]
    key = pd.Series(list(zip(*columns)), index=frame.index)
    repeated = key.duplicated(keep=False)
    if repeated.any():
        first, second = np.flatnonzero(repeated)[:2]
        raise CompareError(f"table {name}: rows {first} and {second} have the same "
                           "coordinates (problem, estimator, param, n_samples, batch_size, "
                           "step and θ); a results table has one row per cell and "
                           "component.")
    return frame.assign(key=key)


def _nonfinite(matched: pd.DataFrame, side: str) -> pd.Series:
    count = matched.get(f"n_nonfinite_{side}", pd.Series(0, index=matched.index))
    statistics = matched[[f"{c}_{side}" for c in ("mean", "variance")]]
    return (count.fillna(0) > 0) | ~np.isfinite(statistics).all(axis=1)


def _variance_z(m: pd.DataFrame) -> pd.Series:
    """z of ln(v_B / v_A) from the two intervals; ±inf when exactly one variance is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        se_a = np.log(m.variance_ci_high_a / m.variance_ci_low_a) / (2 * metrics.Z95)
        se_b = np.log(m.variance_ci_high_b / m.variance_ci_low_b) / (2 * metrics.Z95)
        z = np.log(m.variance_b / m.variance_a) / np.hypot(se_a, se_b)
    zero_a, zero_b = m.variance_a == 0, m.variance_b == 0
    z = z.where(~(zero_a & zero_b), 0.0)  # two deterministic estimates: no variance to compare
    return z.where(zero_a == zero_b, np.where(zero_a, np.inf, -np.inf))


def _mean_z(m: pd.DataFrame) -> pd.Series:
    """z of the means' difference (equal truths) or the biases' (different truths), less
    float32 rounding; ±inf for a difference of deterministic estimates."""
    same_truth = ~m.truth_differs
    difference = (m.mean_b - m.mean_a).where(same_truth, m.bias_b - m.bias_a)
    se = np.sqrt(m.variance_a / m.n_replicates_a + m.variance_b / m.n_replicates_b).where(
        same_truth, np.hypot(m.bias_se_a, m.bias_se_b))
    scale = np.fmax(m.truth_a.abs(), np.fmax(m.mean_a.abs(), m.mean_b.abs()))
    beyond = (difference.abs() - metrics.FLOAT32_ROUNDING * scale).clip(lower=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.sign(difference) * beyond / se
    return z.where(beyond != 0, 0.0)  # 0/0 for equal deterministic estimates


def describe(comparison: Comparison, names=("A", "B"), limit: int | None = None) -> list[str]:
    """The comparison as text lines: what matched, what did not, what changed. A block of
    components (``mean[0]`` ... ``mean[999]``) is one line per test: how many of its
    components changed and the worst of them.

    Args:
      comparison: from :func:`compare`.
      names: what to call the two tables.
      limit: lines per section at most (None: every one).
    """
    m, (a, b) = comparison.matched, names
    m = m.assign(components=m.groupby(["cell_a", "param_block_a"], sort=False).param
                 .transform("size"))
    lines = [f"matched {len(m):,} rows by problem, estimator, param, n_samples, batch_size, "
             f"step and θ; {len(comparison.only_a):,} only in {a}, "
             f"{len(comparison.only_b):,} only in {b}."]
    for side, rows in ((a, comparison.only_a), (b, comparison.only_b)):
        if len(rows):
            lines.append(f"only in {side}:")
            lines += _limited([f"  {_where(group)}: {_count(len(group), 'row')}"
                               for _, group in rows.groupby("cell", sort=False)], limit)
    lines.append(f"compared {int(m.compared.sum()):,} rows: {comparison.tests:,} tests "
                 f"(variance ratio, mean difference), a change when |z| > "
                 f"{comparison.threshold:.2f} (Bonferroni over the tests).")
    sections = [
        ("truth differs", m.truth_differs, None, lambda r: (
            f"truth {r.truth_a:.6g} → {r.truth_b:.6g} ({r.truth_kind_a} → {r.truth_kind_b})")),
        ("variance changed", m.variance_changed, "variance_z", lambda r: (
            f"variance {r.variance_a:.3g} → {r.variance_b:.3g} ({_ratio(r)}, "
            f"z {r.variance_z:+.1f})")),
        ("mean changed", m.mean_changed, "mean_z", lambda r: (
            f"bias {r.bias_a:.4g} → {r.bias_b:.4g} (truth {r.truth_a:.4g} → {r.truth_b:.4g}, "
            f"z {r.mean_z:+.1f})" if r.truth_differs else
            f"mean {r.mean_a:.4g} → {r.mean_b:.4g} (truth {r.truth_b:.4g}, z {r.mean_z:+.1f})")),
        (f"non-finite estimates in {a} only", m.nonfinite_a & ~m.nonfinite_b, None,
         lambda r: f"{r.n_nonfinite_a} of {r.n_replicates_a} estimates non-finite"),
        (f"non-finite estimates in {b} only", m.nonfinite_b & ~m.nonfinite_a, None,
         lambda r: f"{r.n_nonfinite_b} of {r.n_replicates_b} estimates non-finite"),
    ]
    for title, flags, worst_by, text in sections:
        if flags.any():
            changed = m[flags]
            blocks = list(_blocks(changed))
            lines.append(f"{title}: {_count(len(changed), 'row')} in "
                         f"{_count(len(blocks), 'block')}:")
            lines += _limited([_block_line(block, worst_by, text) for block in blocks], limit)
    both = m.nonfinite_a & m.nonfinite_b
    if both.any():
        lines.append(f"non-finite estimates in both (not compared): "
                     f"{_count(int(both.sum()), 'row')}.")
    lines.append(f"{int(comparison.changes.sum()):,} of {len(m):,} matched rows changed."
                 if comparison.changed else "no change.")
    return lines


def _blocks(rows: pd.DataFrame):
    """Matched rows grouped per parameter block of a cell (of table A), in table order."""
    for _, group in rows.groupby(["cell_a", "param_block_a"], sort=False):
        yield group


def _block_line(block: pd.DataFrame, worst_by: str | None, text) -> str:
    """One line per block: the row itself, or how many of its (matched) components and
    the worst."""
    worst = block.iloc[int(np.argmax(block[worst_by].abs().to_numpy()))] if worst_by \
        else block.iloc[0]
    where = _where(block, suffix="_a")
    if worst.components == 1:
        return f"  {where} · {worst.param}: {text(worst)}"
    return (f"  {where} · {worst.param_block_a}: {len(block):,} of {worst.components:,} "
            f"components; worst {worst.param}: {text(worst)}")


def _where(rows: pd.DataFrame, suffix: str = "") -> str:
    """problem · estimator · θ · n · batch (· step) of a group of rows."""
    first = rows.iloc[0]
    theta = first.get(f"theta_label{suffix}", f"theta={first.get(f'theta{suffix}'):g}")
    step = first.get("step", -1)
    at = "" if pd.isna(step) or step == -1 else f" · step {int(step)}"
    return (f"{first.problem} · {first.estimator} · {theta} · n {first.n_samples} · "
            f"batch {first.batch_size}{at}")


def _ratio(row) -> str:
    if row.variance_a == 0 or row.variance_b == 0:
        return "became deterministic" if row.variance_b == 0 else "no longer deterministic"
    return f"×{row.variance_b / row.variance_a:.3g}"


def _limited(lines: list[str], limit: int | None) -> list[str]:
    if limit is None or len(lines) <= limit:
        return lines
    return lines[:limit] + [f"  ... and {len(lines) - limit:,} more (--all lists every one)"]


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"

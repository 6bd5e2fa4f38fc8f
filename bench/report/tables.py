"""The report's tables: per-problem ranking, cells with non-finite estimates,
exact-vs-measured gaps, run metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench import metrics
from bench.report.data import at_largest_n
from bench.summary import how_timed

KEYS = ["problem_family", "estimator"]
NOT_RANKED = "—"


def ranking(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem family, every estimator at the largest n_samples (and batch size).

    Averages over the sweep and the gradient components: MSE, variance × time per
    estimate with its interval (``efficiency_low``/``_high``: the variance CI's low end ×
    the fastest timed call, its high end × the slowest), the largest |bias| in standard
    errors, and time per estimate. Ranked by MSE (``rank_by_mse``) and, among unbiased
    estimators with non-zero variance, by variance × time (``efficiency_rank``: "=1" for
    the best and every estimator whose interval overlaps the best one's, when there are
    such ties). An estimator with non-finite estimates in any of these cells is never
    ranked: its statistics are blank and ``note`` says how many estimates were non-finite.
    Variance × time averages the stochastic rows only (a deterministic block has none).
    ``settings`` says how many of the family's settings (θ, factory arguments) an
    estimator's averages cover: one measured at a few of them (a temperature sweep at two
    θ) averages over different settings than the rest.
    """
    data = at_largest_n(frame)
    stochastic = ~data.deterministic
    data = data.assign(
        efficiency=(data.variance * data.time_per_estimate_s).where(stochastic),
        efficiency_low=(data.variance_ci_low * data.time_per_estimate_min_s).where(stochastic),
        efficiency_high=(data.variance_ci_high * data.time_per_estimate_max_s).where(stochastic),
        bias_in_se=(data.bias.abs() / data.bias_se).where((data.bias_se > 0) & stochastic))
    table = data.groupby(KEYS, sort=False, as_index=False).agg(
        n_samples=("n_samples", "first"), mse=("mse", "mean"),
        variance_x_time=("efficiency", "mean"), efficiency_low=("efficiency_low", "mean"),
        efficiency_high=("efficiency_high", "mean"), max_bias_in_se=("bias_in_se", "max"),
        biased=("biased", "any"), bias_reason=("bias_reason", metrics.main_reason),
        seconds_per_estimate=("time_per_estimate_s", "median"))
    covered = data.groupby(KEYS, sort=False).setting.nunique()
    total = data.groupby("problem_family").setting.nunique()
    table["settings"] = [f"{covered[f, e]} of {total[f]}"
                         for f, e in zip(table.problem_family, table.estimator)]
    table["note"] = _nonfinite_notes(data, table)
    unranked = table.note != ""
    statistics = ["mse", "variance_x_time", "efficiency_low", "efficiency_high", "max_bias_in_se"]
    table.loc[unranked, statistics] = np.nan  # partial statistics of the finite rest
    table["biased"] = table.biased.astype("boolean").mask(unranked)
    table["rank_by_mse"] = table.groupby("problem_family").mse.rank(method="min").astype("Int64")
    table["efficiency_rank"] = NOT_RANKED
    for _, group in table[~unranked].groupby("problem_family", sort=False):
        rank_efficiency(table, group)
    columns = ["problem_family", "estimator", "n_samples", "settings", "rank_by_mse", "mse",
               "efficiency_rank", "variance_x_time", "efficiency_low", "efficiency_high",
               "max_bias_in_se", "biased", "seconds_per_estimate", "note"]
    return table[columns].sort_values(["problem_family", "rank_by_mse"], kind="stable",
                                      na_position="last").reset_index(drop=True)


def _nonfinite_notes(data: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """'not ranked: N of R estimates non-finite' per estimator with any such cell
    (N the most of any of its cells), else ''."""
    grouped = data.groupby(KEYS, sort=False)
    worst = grouped.n_nonfinite.max()
    replicates = grouped.n_replicates.max()
    bad_cells = data[data.nonfinite].groupby(KEYS, sort=False).cell.nunique()
    cells = grouped.cell.nunique()
    notes = []
    for key in zip(table.problem_family, table.estimator):
        if worst[key] == 0:
            notes.append("")
            continue
        where = f" (at {bad_cells[key]} of {cells[key]} settings)" if cells[key] > 1 else ""
        notes.append(f"not ranked: {worst[key]} of {replicates[key]} estimates non-finite{where}")
    return notes


def rank_efficiency(table: pd.DataFrame, group: pd.DataFrame) -> None:
    """Fills ``efficiency_rank`` and ``note`` of one group's rows (a family's; none
    non-finite): by ``variance_x_time`` with its interval ``efficiency_low``/``_high``,
    unbiased estimators with non-zero values only."""
    no_variance = ~(group.variance_x_time > 0)
    biased = group.biased.astype(bool)
    table.loc[group.index[biased], "note"] = [
        f"biased ({reason}): not ranked by variance × time" if reason else
        "biased: not ranked by variance × time" for reason in group.bias_reason[biased]]
    table.loc[group.index[~biased & no_variance], "note"] = \
        "deterministic: not ranked by variance × time"
    eligible = group[~biased & ~no_variance].sort_values("variance_x_time", kind="stable")
    if eligible.empty:
        return
    best = eligible.iloc[0]
    tied = (eligible.efficiency_low <= best.efficiency_high) \
        & (best.efficiency_low <= eligible.efficiency_high)
    tied.iloc[0] = True
    ranks = np.where(tied, "=1" if tied.sum() > 1 else "1",
                     (tied.sum() + (~tied).cumsum()).astype(str))
    table.loc[eligible.index, "efficiency_rank"] = ranks
    table.loc[eligible.index[tied.to_numpy()][1:], "note"] = "tied with the best"


NONFINITE_LISTED = 100
"""The most cells the table of cells with non-finite estimates lists."""


def nonfinite(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per cell with non-finite estimates, in grid order: its problem, estimator,
    θ, n_samples, batch size, the gradient components affected and how many of its R
    estimates were non-finite (the most of any component)."""
    rows = frame[frame.nonfinite]
    cells = rows.groupby("cell", sort=False).agg(
        problem=("problem", "first"), estimator=("estimator", "first"),
        theta=("theta_label", "first"), components=("param", ", ".join),
        n_samples=("n_samples", "first"), batch_size=("batch_size", "first"),
        n_nonfinite=("n_nonfinite", "max"), n_replicates=("n_replicates", "first"))
    cells["non-finite estimates"] = [f"{bad} of {total}" for bad, total
                                     in zip(cells.n_nonfinite, cells.n_replicates)]
    return cells.drop(columns=["n_nonfinite", "n_replicates"]).reset_index(drop=True)


def gap_summary(gaps: pd.DataFrame) -> dict:
    """The largest relative gap between measured and exact per-sample variance."""
    gaps = gaps[gaps.relative_gap.notna()]
    if gaps.empty:
        return {}
    worst = gaps.loc[gaps.relative_gap.abs().idxmax()]
    return {
        "points": int(len(gaps)),
        "inside_ci": int(gaps.exact_inside_ci.sum()),
        "median_abs_gap": float(gaps.relative_gap.abs().median()),
        "largest_abs_gap": float(worst.relative_gap),
        "largest_at": f"{worst.problem} · {worst.estimator} · ∂/∂{worst.param} at "
                      f"{worst.sweep} = {worst.x:g}",
        "largest_inside_ci": bool(worst.exact_inside_ci),
    }


METADATA_FIELDS = ("run_id", "grid_name", "grid_path", "seed", "backend", "device",
                   "n_replicates", "n_cells", "started", "finished", "gradvar", "tensorflow",
                   "tensorflow_probability", "numpy", "python", "platform", "git_commit")


def metadata(meta: dict, frame: pd.DataFrame) -> pd.DataFrame:
    rows = [(field, meta.get(field)) for field in METADATA_FIELDS if meta.get(field) is not None]
    rows += [("rows", len(frame)), ("skipped combinations", len(meta.get("skipped", []))),
             # Cells of one problem, estimator and sizes share one compiled program (any θ,
             # any checkpoint): its compile time is paid once.
             ("compile time, total (s)", round(float(frame.drop_duplicates(
                 ["problem", "estimator", "n_samples", "batch_size", "backend"])
                 .compile_time_s.sum()), 1)),
             ("timing", how_timed(frame))]
    cluster = meta.get("cluster")
    if cluster:
        rows += [("workers per machine", ", ".join(f"{host}: {count}" for host, count
                                                    in cluster["workers_per_host"].items())),
                 ("statistics phase (s)", cluster["statistics_s"]),
                 ("timing phase (s)", cluster["timing_s"])]
    return pd.DataFrame(rows, columns=["field", "value"])


def lab(lab_rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(lab_rows)
    return table[["task", "setup", "lab_shows", "value", "exact", "se", "error_se"]].rename(
        columns={"lab_shows": "lab shows", "se": "SE", "error_se": "error / SE"})

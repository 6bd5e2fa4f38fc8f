"""The report's tables: per-problem ranking, exact-vs-measured gaps, run metadata."""

from __future__ import annotations

import pandas as pd

from bench.report.data import at_largest_n


def ranking(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem family, every estimator at the largest n_samples (and batch size).

    Averages over the sweep and the gradient components: MSE, variance × time per
    estimate, the largest |bias| in standard errors, and time per estimate. Ranked by
    MSE; estimators with detected bias (|bias| ≥ 4 SE somewhere) are flagged, since
    their variance says nothing about their error.
    """
    data = at_largest_n(frame)
    data = data.assign(efficiency=data.variance * data.time_per_estimate_s,
                       bias_in_se=(data.bias.abs() / data.bias_se).where(
                           (data.bias_se > 0) & ~data.deterministic))
    table = data.groupby(["problem_family", "estimator"], sort=False, as_index=False).agg(
        n_samples=("n_samples", "first"), mse=("mse", "mean"),
        variance_x_time=("efficiency", "mean"), max_bias_in_se=("bias_in_se", "max"),
        biased=("biased", "any"), seconds_per_estimate=("time_per_estimate_s", "median"))
    table["rank_by_mse"] = table.groupby("problem_family").mse.rank(method="min").astype("Int64")
    return table.sort_values(["problem_family", "rank_by_mse"], kind="stable").reset_index(drop=True)


def gap_summary(gaps: pd.DataFrame) -> dict:
    """The largest relative gap between measured and exact per-sample variance."""
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
             ("compile time, total (s)", round(float(frame.drop_duplicates("cell")
                                                     .compile_time_s.sum()), 1))]
    return pd.DataFrame(rows, columns=["field", "value"])


def lab(lab_rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(lab_rows)
    return table[["task", "setup", "lab_shows", "value", "exact", "se", "error_se"]].rename(
        columns={"lab_shows": "lab shows", "se": "SE", "error_se": "error / SE"})

"""The best-of summary that ``gradvar run`` prints at the end of a run."""

from __future__ import annotations

import pandas as pd

from bench import metrics


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem (per problem and checkpoint ``step`` in a training run): the best
    estimator by MSE and by variance × time per estimate.

    Compared at each problem's largest n_samples (and, of its batch sizes, the largest),
    averaging over θ and parameter components. An estimator with non-finite estimates in
    any of those cells is not ranked. Variance × time only ranks estimators with no
    detected bias and with non-zero variance: a biased or deterministic estimator's
    variance says nothing about its error. Bias is the report's rule,
    :func:`bench.metrics.bias_flags`: per parameter block, a component off by at least
    ``bias_threshold(k)`` SE (4 SE for one component, Bonferroni over a block's k) beyond a
    float32-rounding allowance, or a deterministic one off by more than a quadrature-sized
    error; relaxations (biased by construction) always. Its interval runs from the variance
    CI's low end × the fastest timed call to the high end × the slowest; estimators whose
    interval overlaps the best one's are named as ties.
    """
    frame = frame.assign(biased=metrics.bias_flags(frame).biased)
    rows = []
    keys = ["problem", "step"] if "step" in frame.columns else ["problem"]
    for names, group in frame.groupby(keys, sort=False):
        names = names if isinstance(names, tuple) else (names,)
        largest = group[group.n_samples == group.n_samples.max()]
        largest = largest[largest.batch_size == largest.batch_size.max()]
        largest = largest.assign(
            efficiency=largest.variance * largest.time_per_estimate_s,
            efficiency_low=largest.variance_ci_low * largest.time_per_estimate_min_s,
            efficiency_high=largest.variance_ci_high * largest.time_per_estimate_max_s,
            nonfinite=largest.n_nonfinite > 0)
        by = largest.groupby("estimator").agg(
            mse=("mse", "mean"), efficiency=("efficiency", "mean"),
            efficiency_low=("efficiency_low", "mean"), efficiency_high=("efficiency_high", "mean"),
            biased=("biased", "any"), nonfinite=("nonfinite", "any"))
        excluded = int(by.nonfinite.sum())
        by = by[~by.nonfinite]
        stochastic = by[(by.efficiency > 0) & ~by.biased]
        row = {**{key: (int(v) if key == "step" else v) for key, v in zip(keys, names)},
               "n_samples": int(largest.n_samples.iloc[0]),
               "best_by_mse": by.mse.idxmin() if len(by) else "—",
               "mse": by.mse.min() if len(by) else float("nan"),
               "best_by_variance_x_time": "—", "variance_x_time": float("nan")}
        if len(stochastic):
            best = stochastic.efficiency.idxmin()
            ties = [name for name in stochastic.index if name != best
                    and stochastic.efficiency_low[name] <= stochastic.efficiency_high[best]]
            row["best_by_variance_x_time"] = best + (f" (tied: {', '.join(ties)})" if ties else "")
            row["variance_x_time"] = stochastic.efficiency[best]
        if excluded:
            row["not_ranked"] = f"{excluded} estimator(s) with non-finite estimates"
        rows.append(row)
    return pd.DataFrame(rows)


_HOW = {"serial": "alone, one cell at a time in one process",
        "exclusive": "on Dask workers, one cell at a time per machine after the statistics"}


def how_timed(frame: pd.DataFrame) -> str:
    """How the wall-clock columns were taken (schema: ``timing_mode``, ``workers_on_host``,
    ``intra_op_threads``), with how many rows each way."""
    keys = [c for c in ("timing_mode", "workers_on_host", "intra_op_threads") if c in frame]
    parts = []
    for values, group in frame.groupby(keys, sort=False, dropna=False):
        values = dict(zip(keys, values if isinstance(values, tuple) else (values,)))
        text = _HOW.get(values["timing_mode"], values["timing_mode"])
        if values["timing_mode"] != "serial":
            text += f", statistics with {values['workers_on_host']} worker(s) on the machine"
        if "intra_op_threads" in values:
            text += f", {values['intra_op_threads']} TensorFlow thread(s)"
        parts.append(f"{text} ({len(group)} rows)")
    return "; ".join(parts)


def mixed_timing(frame: pd.DataFrame) -> str | None:
    """A warning when rows were timed in different ways (a run resumed with other
    options): their wall-clock columns compare only roughly."""
    keys = [c for c in ("timing_mode", "intra_op_threads") if c in frame]
    if len(frame[keys].drop_duplicates()) < 2:
        return None
    return ("note: the rows were timed in different ways (resumed with other --workers?); "
            "times compare across them only roughly: " + how_timed(frame))

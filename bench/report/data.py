"""A results table made ready for plotting: checked columns and each problem's sweep axis.

A grid sweeps θ (one row of the table per gradient component) and, for problem
factories, their arguments (``gaussian_cos`` with ``k = [0.5, 1, ...]``). Within one
problem family the report finds the coordinates that vary across cells: when exactly
one does (θ in the lab's problems, ``mean`` in the default grid, ``k`` in the paper
grid) it becomes the family's x axis; otherwise cells are placed in order of appearance
and labelled by all their coordinates.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench.store import REQUIRED_COLUMNS, ResultsError

# Written by bench.runner beside the columns every results table has.
REPORT_COLUMNS = REQUIRED_COLUMNS + ("problem_family", "theta_label", "cell", "variance_ci_rel",
                                     "time_per_call_s")


class ReportError(ValueError):
    """A results table cannot be reported on; the message says why."""


def check_columns(frame: pd.DataFrame, where: str) -> None:
    if frame.empty:
        raise ReportError(f"{where}: the results table has no rows; nothing to report.")
    missing = [column for column in REPORT_COLUMNS if column not in frame.columns]
    if missing:
        raise ReportError(f"{where}: the results table lacks the columns {missing} that the "
                          "report needs; it was not written by `gradvar run` of this version "
                          "(re-run the grid).")


def prepare(frame: pd.DataFrame, where: str = "results") -> pd.DataFrame:
    """The table with the columns figures use added.

    Added: ``coords`` (dict of every θ component and factory argument of the cell),
    ``sweep`` (name of the family's x axis), ``x`` (the cell's value on it; when no
    single coordinate varies, the position of its ``setting``, with ``categorical`` set
    and ``sweep`` = "setting"), ``panel`` ("family · ∂/∂param"),
    ``setting`` (every coordinate, as text), ``deterministic`` (zero variance, up to
    float32 rounding) and ``biased`` (|bias| >= 4 SE, or for deterministic estimators
    more than 0.1% of the gradient).
    """
    check_columns(frame, where)
    frame = frame.copy()
    frame["coords"] = [_coords(cell, group_params) for cell, group_params in
                       zip(frame["cell"], _params_per_cell(frame))]
    frame["setting"] = [", ".join(f"{k}={v:g}" for k, v in c.items()) for c in frame.coords]
    frame["sweep"], frame["x"], frame["categorical"] = "", np.nan, False
    for family, group in frame.groupby("problem_family", sort=False):
        sweep = _sweep_axis(group.coords)
        if sweep is None:  # several coordinates vary: place settings in order of appearance
            order = {label: i for i, label in enumerate(dict.fromkeys(group.setting))}
            x, sweep = group.setting.map(order).astype(float), "setting"
        else:
            x = group.coords.map(lambda coords, s=sweep: float(coords[s]))
        frame.loc[group.index, "sweep"] = sweep
        frame.loc[group.index, "x"] = x
        frame.loc[group.index, "categorical"] = sweep == "setting"
    frame["panel"] = frame.problem_family + " · ∂/∂" + frame.param
    # Panels in grid order: families as they appear, components in θ's order.
    families = {f: i for i, f in enumerate(dict.fromkeys(frame.problem_family))}
    frame["panel_rank"] = [families[f] * 1000 + list(c).index(p) for f, c, p in
                           zip(frame.problem_family, frame.coords, frame.param)]
    # Zero variance, or float32 rounding noise: an sd below 1e-6 of the family's largest
    # gradient or of the largest sd at the same problem, component and n (an antithetic
    # pair makes ∂/∂mean of (x-k)² constant; its estimates still differ in the last bits).
    largest_sd = np.sqrt(frame.groupby(["problem_family", "param", "n_samples"])
                         .variance.transform("max"))
    largest_truth = frame.groupby("problem_family").truth.transform(lambda t: t.abs().max())
    reference = np.maximum(largest_sd, largest_truth)
    frame["deterministic"] = np.sqrt(frame.variance) <= 1e-6 * reference
    # A deterministic estimate has no SE: call it biased when it misses by more than a
    # quadrature-sized error (naive_mc returns exactly 0 where only p depends on θ).
    frame["biased"] = frame.bias.abs() >= np.where(
        frame.deterministic, 1e-3 * frame.truth.abs() + 1e-6 * reference, 4 * frame.bias_se)
    return frame


def _params_per_cell(frame):
    params = frame.groupby("cell", sort=False)["param"].agg(list)
    return frame["cell"].map(params)


def _coords(cell_key: str, params: list[str]) -> dict:
    """{θ component name: value, factory argument: value} from a cell key."""
    try:
        _, kwargs, _, theta, *_ = json.loads(cell_key)
    except (ValueError, TypeError):
        raise ReportError(f"malformed cell key {cell_key!r} in the results table.") from None
    return {**dict(zip(params, theta)), **{key: value for key, value in kwargs}}


def _sweep_axis(coords: pd.Series) -> str | None:
    keys = list(dict.fromkeys(key for c in coords for key in c))
    varying = [key for key in keys if len({c.get(key) for c in coords}) > 1]
    if len(varying) == 1:
        return varying[0]
    if not varying and len(keys) >= 1:
        return keys[0]
    return None


def at_largest_n(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem family: rows at its largest n_samples and, of those, its largest batch."""
    parts = []
    for _, group in frame.groupby("problem_family", sort=False):
        group = group[group.n_samples == group.n_samples.max()]
        parts.append(group[group.batch_size == group.batch_size.max()])
    return pd.concat(parts, ignore_index=True) if parts else frame.iloc[:0]


def middle_setting(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem family: rows of the median x (the middle setting of its sweep)."""
    parts = []
    for _, group in frame.groupby("problem_family", sort=False):
        values = sorted(group.x.unique())
        parts.append(group[group.x == values[(len(values) - 1) // 2]])
    return pd.concat(parts, ignore_index=True) if parts else frame.iloc[:0]


def estimator_order(frame: pd.DataFrame) -> list[str]:
    return sorted(frame.estimator.unique())

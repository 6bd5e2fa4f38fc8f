"""Exact per-sample variance curves (by quadrature) along each problem family's sweep.

For every estimator with a single-sample form (``estimators.truth``), the exact variance
of one sample's estimate is computed on a dense set of points of the family's x axis
(θ, or a factory argument such as ``k``) and at every measured point, so the report can
draw the curve beside the measured per-sample variances (variance × n_samples) and say
how far apart they are. Families whose sweep is not one coordinate, problems not in the
registry of this process and estimators without an exact form are skipped with a note.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from tqdm import tqdm

import estimators as E
from bench.report.data import at_largest_n
from estimators import truth

CURVE_POINTS = 25
# An exact variance this far below the largest of its problem family is zero up to
# rounding (the antithetic mean gradient of (x-k)² is exactly constant); the float32
# estimates then show rounding noise, not variance, so neither is drawn nor compared.
ZERO_RELATIVE = 1e-9


def dense_axis(measured: np.ndarray, points: int | None = None) -> np.ndarray:
    """Points spanning the measured values (log-spaced when they span a factor >= 20)."""
    points = CURVE_POINTS if points is None else points
    low, high = float(measured.min()), float(measured.max())
    if low == high:
        return np.array([low])
    if low > 0 and high / low >= 20:
        grid = np.geomspace(low, high, points)
    else:
        grid = np.linspace(low, high, points)
    return np.union1d(grid, measured)


def _problem_at(family: str, coords: dict, sweep: str, x: float):
    """The problem and θ vector of ``family`` with coordinate ``sweep`` set to ``x``."""
    coords = {**coords, sweep: x}
    arguments = E.problems.parameters(family)
    problem = E.problems.get(family, **{k: v for k, v in coords.items() if k in arguments})
    return problem, np.array([coords[name] for name in problem.param_names], dtype=np.float64)


def curves(frame: pd.DataFrame, progress: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """Exact per-sample variance rows and notes on what was skipped.

    Args:
      frame: A prepared results table (:func:`bench.report.data.prepare`).

    Returns:
      A table with columns problem_family, estimator, param, x, exact_per_sample_variance,
      measured (whether x is a measured point), zero (exactly zero up to rounding); and a
      list of notes.
    """
    notes, jobs = [], []
    stochastic = frame[~frame.deterministic]
    for family, group in stochastic.groupby("problem_family", sort=False):
        if group.categorical.iloc[0]:
            notes.append(f"{family}: no exact curve, as more than one of its coordinates "
                         "varies across the grid.")
            continue
        if family not in E.problems.names():
            notes.append(f"{family}: no exact curve, as the problem is not registered in "
                         "this process (register it before building the report).")
            continue
        sweep, coords = group.sweep.iloc[0], group.coords.iloc[0]
        measured = np.unique(group.x.to_numpy(dtype=float))
        # The batch the figures show; only batch-dependent estimators (LOO baseline) use it.
        batch = int(at_largest_n(group).batch_size.iloc[0])
        for name in sorted(group.estimator.unique()):
            if name not in E.ESTIMATORS:
                notes.append(f"{family} · {name}: no exact curve, estimator not registered.")
                continue
            jobs += [(family, sweep, coords, name, batch, x, x in measured)
                     for x in dense_axis(measured)]
    rows, skipped, reasons = [], set(), {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", truth.QuadratureWarning)
        for family, sweep, coords, name, batch, x, measured in tqdm(
                jobs, desc="exact per-sample variances", unit="point", disable=not progress,
                leave=False):
            if (family, name) in skipped:
                continue
            problem, theta = _problem_at(family, coords, sweep, x)
            try:
                variance = truth.per_sample_variance(problem, E.ESTIMATORS[name], theta, batch)
            except (NotImplementedError, E.NotApplicableError) as error:
                skipped.add((family, name))
                reasons.setdefault((name, str(error)), []).append(family)
                continue
            rows += [{"problem_family": family, "estimator": name, "param": param, "x": x,
                      "exact_per_sample_variance": float(value), "measured": measured}
                     for param, value in zip(problem.param_names, variance)]
    notes += [f"{name}: no exact curve on {', '.join(families)} ({reason})"
              for (name, reason), families in reasons.items()]
    if caught:
        notes.append(f"quadrature warned {len(caught)} times (e.g. {caught[0].message}); "
                     "those exact values may be inaccurate.")
    columns = ["problem_family", "estimator", "param", "x", "exact_per_sample_variance",
               "measured"]
    table = pd.DataFrame(rows, columns=columns)
    scale = table.groupby("problem_family").exact_per_sample_variance.transform("max")
    table["zero"] = table.exact_per_sample_variance <= ZERO_RELATIVE * scale
    zero = table[table.zero & table.measured]
    if len(zero):
        notes.append(f"{len(zero)} measured points have an exact per-sample variance of zero "
                     f"(up to rounding), e.g. {zero.estimator.iloc[0]} · ∂/∂{zero.param.iloc[0]} "
                     f"on {zero.problem_family.iloc[0]} at {zero.x.iloc[0]:g}: their measured "
                     "values are float32 rounding, left out of the figure and the gaps.")
    return table, notes


GAP_COLUMNS = ["problem", "estimator", "param", "sweep", "x", "n_samples", "measured", "exact",
               "ci_low", "ci_high", "relative_gap", "exact_inside_ci"]


def gaps(frame: pd.DataFrame, exact: pd.DataFrame) -> pd.DataFrame:
    """Measured per-sample variance against exact at each measured point.

    One row per (family, estimator, param, x) at the family's largest n_samples and
    batch size, with the relative gap (measured - exact) / exact and whether exact lies
    inside the measured variance's 95% CI (scaled by n_samples).
    """
    measured = at_largest_n(frame[~frame.deterministic])
    if measured.empty or exact.empty:
        return pd.DataFrame(columns=GAP_COLUMNS)
    joined = measured.merge(exact[exact.measured], on=["problem_family", "estimator", "param",
                                                       "x"])
    joined = joined[~joined.zero]
    n = joined.n_samples
    return pd.DataFrame({
        "problem": joined.problem, "estimator": joined.estimator, "param": joined.param,
        "sweep": joined.sweep, "x": joined.x, "n_samples": n,
        "measured": joined.per_sample_variance, "exact": joined.exact_per_sample_variance,
        "ci_low": joined.variance_ci_low * n, "ci_high": joined.variance_ci_high * n,
        "relative_gap": joined.per_sample_variance / joined.exact_per_sample_variance - 1,
        "exact_inside_ci": (joined.variance_ci_low * n <= joined.exact_per_sample_variance)
        & (joined.exact_per_sample_variance <= joined.variance_ci_high * n),
    }).reset_index(drop=True)

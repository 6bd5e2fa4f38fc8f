"""Exact per-sample variance curves (by quadrature) along each problem family's sweep.

For every estimator with a single-sample form (``estimators.truth``), the exact variance
of one sample's estimate is computed on a dense set of points of the family's x axis
(θ, or a factory argument such as ``k``) and at every measured point, so the report can
draw the curve beside the measured per-sample variances (variance × n_samples) and say
how far apart they are. A family split into one sweep per problem
(:func:`bench.report.data.per_problem_sweeps`) has a curve per problem (``sweep_group``).
Families whose sweep is not one coordinate, problems not in the registry of this process
and estimators without an exact form are skipped with a note.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from tqdm import tqdm

import estimators as E
from bench import problem_specs
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


def _problem_at(family: str, coords: dict, sweep: str, x: float, base_dir=None):
    """The problem and θ vector of ``family`` with coordinate ``sweep`` set to ``x``.

    Raises:
      ValueError: the cell's θ is not given by its coordinates (a block whose components
        differ), or the problem cannot be built.
    """
    coords = {**coords, sweep: x}
    arguments = problem_specs.parameters(family, base_dir)
    problem = problem_specs.get(family, {k: v for k, v in coords.items() if k in arguments},
                                base_dir)
    theta = {name: coords.get(name) for name in problem.param_names}
    if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in theta.values()):
        raise ValueError("its θ has blocks whose components differ")
    return problem, problem.theta_vector(theta)


def _integer_argument(family: str, sweep: str, base_dir) -> bool:
    defaults = problem_specs.parameters(family, base_dir)
    return isinstance(defaults.get(sweep), int) and not isinstance(defaults.get(sweep), bool)


def curves(frame: pd.DataFrame, progress: bool = True,
           base_dir=None) -> tuple[pd.DataFrame, list[str]]:
    """Exact per-sample variance rows and notes on what was skipped.

    Args:
      frame: A prepared results table (:func:`bench.report.data.prepare`).
      progress: Show a progress bar.
      base_dir: Where the grid's own problem files are (its folder).

    Returns:
      A table with columns problem_family, sweep_group (the family, or the problem of a
      family swept per problem), estimator, param, x, exact_per_sample_variance, measured
      (whether x is a measured point), zero (exactly zero up to rounding); and a list of
      notes.
    """
    notes, jobs = [], []
    stochastic = frame[~frame.deterministic]
    if "sweep_group" not in stochastic:
        stochastic = stochastic.assign(sweep_group=stochastic.problem_family)
    for where, group in stochastic.groupby("sweep_group", sort=False):
        family = group.problem_family.iloc[0]
        if group.categorical.iloc[0]:
            notes.append(f"{family}: no exact curve, as more than one of its coordinates "
                         "varies across the grid.")
            continue
        try:
            problem_specs.factory(family, base_dir)
        except problem_specs.ProblemSpecError as error:
            notes.append(f"{family}: no exact curve, as the problem cannot be rebuilt here "
                         f"({error})")
            continue
        sweep, coords = group.sweep.iloc[0], group.coords.iloc[0]
        integer = _integer_argument(family, sweep, base_dir)  # e.g. a dimension D
        # The batch the figures show; only batch-dependent estimators (LOO baseline) use it.
        batch = int(at_largest_n(group).batch_size.iloc[0])
        for name, rows in sorted(group.groupby("estimator")):
            try:
                E.get_estimator(name)
            except ValueError as error:
                notes.append(f"{family} · {name}: no exact curve ({error})")
                continue
            # Each estimator's curve spans the points it was measured at (a temperature
            # sweep may measure some settings at a few points of the family's axis only).
            measured = np.unique(rows.x.to_numpy(dtype=float))
            axis = dense_axis(measured)
            if integer:
                axis = np.unique(np.round(axis))
            jobs += [(where, family, sweep, coords, name, batch, x, x in measured)
                     for x in axis]
    rows, skipped, reasons, reached = [], set(), {}, {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", truth.QuadratureWarning)
        for where, family, sweep, coords, name, batch, x, measured in tqdm(
                jobs, desc="exact per-sample variances", unit="point", disable=not progress,
                leave=False):
            if (where, name) in skipped:
                continue
            try:
                problem, theta = _problem_at(family, coords, sweep, x, base_dir)
                variance = truth.per_sample_variance(problem, E.get_estimator(name), theta,
                                                     batch)
            except (NotImplementedError, ValueError) as error:
                skipped.add((where, name))
                # Curves stop at the first point without an exact value (an enumeration
                # that grows with D): say how far they go.
                upto = (f" beyond {sweep} = {reached[where, name]:g}"
                        if (where, name) in reached else "")
                reasons.setdefault((name, upto, str(error)), []).append(where)
                continue
            reached[where, name] = x
            # Blocks as in the figures: the mean over each block's components.
            per_block = pd.Series(variance).groupby(list(problem.param_blocks), sort=False).mean()
            rows += [{"problem_family": family, "sweep_group": where, "estimator": name,
                      "param": block, "x": x, "exact_per_sample_variance": float(value),
                      "measured": measured}
                     for block, value in per_block.items()]
    notes += [f"{name}: no exact curve{upto} on {', '.join(groups)} ({reason})"
              for (name, upto, reason), groups in reasons.items()]
    if caught:
        notes.append(f"quadrature warned {len(caught)} times (e.g. {caught[0].message}); "
                     "those exact values may be inaccurate.")
    columns = ["problem_family", "sweep_group", "estimator", "param", "x",
               "exact_per_sample_variance", "measured"]
    table = pd.DataFrame(rows, columns=columns)
    scale = table.groupby("sweep_group").exact_per_sample_variance.transform("max")
    table["zero"] = table.exact_per_sample_variance <= ZERO_RELATIVE * scale
    zero = table[table.zero & table.measured]
    if len(zero):
        notes.append(f"{len(zero)} measured points have an exact per-sample variance of zero "
                     f"(up to rounding), e.g. {zero.estimator.iloc[0]} · ∂/∂{zero.param.iloc[0]} "
                     f"on {zero.sweep_group.iloc[0]} at {zero.x.iloc[0]:g}: their measured "
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
    if "sweep_group" not in measured:
        measured = measured.assign(sweep_group=measured.problem_family)
    joined = measured.merge(exact[exact.measured], on=["problem_family", "sweep_group",
                                                       "estimator", "param", "x"])
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

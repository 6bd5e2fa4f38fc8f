"""Metrics of one cell from its R replicate estimates of one gradient component.

* bias = mean - truth, with standard error sqrt(sd² / R + truth_se²): a Monte Carlo
  reference truth (``truth_kind = monte_carlo``) carries its own standard error, which
  every bias test must include;
* variance (ddof=1) with a 95% confidence interval that stays honest for heavy-tailed
  estimators: score-function estimates are far from normal, so no chi-square interval.
  We use the kurtosis-aware asymptotic interval on the log scale (delta method):

      Var(s²) ≈ (m4 - (R-3)/(R-1) s⁴) / R,   se(log s²) = sqrt(Var(s²)) / s²,
      CI = s² · exp(± z_{0.975} · se(log s²)),

  which never goes below zero. Measured coverage (tests/bench/test_metrics.py, and
  20,000 simulations per row): normal 94.7% (R=1000); Student-t(5) 93.0% (R=1000),
  93.5% (R=2000). Heavier tails than t(5) undercover: look at ``variance_ci_rel``;
* per_sample_variance = variance × n_samples (comparable across n for iid averages);
* mse = mean((estimate - truth)²).

Non-finite estimates (an overflow, a NaN) are counted in ``n_nonfinite`` and never left
out quietly: a cell with any of them reports every statistic above as NaN, because the
finite rest describes a different estimator (the one that happens not to overflow). The
report lists such cells and never ranks them.

**Bias flags** (:func:`bias_flags`: one rule for ``gradvar run``'s summary and the report)
are judged per parameter block of a cell, k its components (1 for a scalar parameter). A
component is off when its |bias|, less a float32-rounding allowance of
``FLOAT32_ROUNDING`` × |truth|, is at least ``bias_threshold(k, R)`` standard errors: 4 SE for
k = 1 (a false flag once in 16,000 cells), raised with k (Bonferroni) so that a block of
2,000 unbiased components is not flagged by chance, and read off Student t with R − 1
degrees of freedom (the SE comes from the R estimates: 4.4 SE for one component at R = 50). A deterministic component (sd within
1e-6 of the largest sd at its problem, θ, component and n, or of its truth) against an
exact truth has no SE: it is off when it misses by more than a quadrature-sized error
(1e-3 of the truth, plus that 1e-6). A block is biased when any component is off; an
estimator biased by construction (``Estimator.declared_biased``: the relaxations
gumbel_softmax and straight_through) always is, whatever its measured bias, which a small
temperature can hide below the noise (:func:`declared_biased`).

**Why** (``bias_reason``, :data:`REASONS`): the most specific explanation that applies to
a flagged block: biased by construction; a pathwise estimator where the table's
``f_jumps`` says f jumps along the draws; an estimator that ignores ∇θ p; every off
component within the tolerance of the truth's check (|bias| ≤ ``truth_tolerance`` + 4 SE:
the truth may be what is off); a deterministic rule's
discretization error; else simply measured. The report's ranking says it beside "biased".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

import estimators as E
from bench import cellkey
from bench.schema import STATISTICS

Z95 = float(stats.norm.ppf(0.975))

SINGLE_COMPONENT_Z = 4.0
"""|bias| / SE beyond which a one-component estimate is called biased."""
FLOAT32_ROUNDING = 1e-5
"""Relative error of a float32 estimate's mean that is rounding, not bias: an estimator
that is exact up to rounding (DisARM on one Bernoulli at p = ½) has an SE of ~1e-12 and a
bias of ~1e-5 of the gradient, which must not count as detected bias."""
DETERMINISTIC_SD = 1e-6
"""An sd at most this fraction of the reference (module docstring) is zero up to rounding."""
QUADRATURE_ERROR = 1e-3
"""The relative miss of a deterministic estimate (a quadrature rule) that is not bias."""


def _estimator_property(estimators, name: str) -> pd.Series:
    """``estimators`` (labels, a pandas Series) -> booleans: the estimators' property
    ``name``. Labels this version does not know (a table from elsewhere) count as False."""
    def value(label):
        try:
            return bool(getattr(E.get_estimator(label), name))
        except (ValueError, TypeError):
            return False

    flags = {label: value(label) for label in estimators.unique()}
    return estimators.map(flags).astype(bool)


def declared_biased(estimators):
    """``estimators`` (labels, a pandas Series) -> booleans: biased by construction.
    Labels this version does not know (a table from elsewhere) count as not declared."""
    return _estimator_property(estimators, "declared_biased")


def bias_threshold(components, replicates=None) -> np.ndarray:
    """|bias|/SE beyond which the worst of ``components`` estimates is called biased:
    ``SINGLE_COMPONENT_Z`` for one, the Bonferroni-corrected level of the same false-flag
    rate for more. With ``replicates`` (R), the level is Student t's with R − 1 degrees
    of freedom, since the SE is estimated from the R estimates themselves: at R = 50 and
    10⁵ components the normal level (6.2) flagged an exact closed form's right answer
    (|bias| = 6.19 SE in one of 2·10⁵ pathwise components), the t level is 7.7; at R =
    1,000 the two differ by 1%."""
    tail = stats.norm.sf(SINGLE_COMPONENT_Z)  # one-sided tail at 4 SE: 3.2e-5
    level = tail / np.maximum(np.asarray(components, dtype=float), 1.0)
    if replicates is None:
        return stats.norm.isf(level)
    freedom = np.maximum(np.asarray(replicates, dtype=float) - 1.0, 1.0)
    return stats.t.isf(level, freedom)


def bias_flags(frame: pd.DataFrame) -> pd.DataFrame:
    """The bias rule (module docstring) on a results table's rows, one per gradient
    component: ``deterministic`` (every component of the row's block is), ``biased`` (the
    block is) and ``bias_reason`` (why, from ``REASONS``; "" where not biased), each its
    block's value, indexed like ``frame``.

    Needs the columns cell, estimator, param, param_block, n_samples, truth, truth_se,
    bias, bias_se and variance. Non-finite statistics (NaN) are neither deterministic nor
    off: such cells are not ranked at all.
    """
    sd = np.sqrt(frame.variance)
    settings = {cell: _setting(cell) for cell in frame.cell.unique()}
    # Per θ, component and n: one family's gradients can differ by orders of magnitude
    # across θ. The largest sd among the estimators there stands in for a zero truth (an
    # antithetic pair makes ∂/∂mean of (x-k)² constant; its estimates still differ in the
    # last bits).
    largest_sd = sd.groupby([frame.cell.map(settings), frame.param, frame.n_samples]) \
        .transform("max")
    reference = np.fmax(largest_sd, frame.truth.abs())
    deterministic = sd <= DETERMINISTIC_SD * reference
    miss = frame.bias.abs()
    beyond_rounding = (miss - FLOAT32_ROUNDING * frame.truth.abs()).clip(lower=0.0)
    z = (beyond_rounding / frame.bias_se).where(beyond_rounding != 0, 0.0)  # x/0 is inf
    block = [frame.cell, frame.param_block]
    components = frame.param.groupby(block).transform("size")
    # Against a Monte Carlo truth a deterministic estimate has the truth's SE: SE units.
    by_quadrature = deterministic & ~(frame.truth_se > 0)
    # Strictly beyond: the allowance is 0 for an exact zero truth with every sd 0, and an
    # exact estimate of it is not biased.
    off = pd.Series(np.where(by_quadrature,
                             miss > QUADRATURE_ERROR * frame.truth.abs()
                             + DETERMINISTIC_SD * reference,
                             z >= bias_threshold(components, frame.get("n_replicates"))),
                    index=frame.index)
    biased = off.groupby(block).transform("any").astype(bool) | declared_biased(frame.estimator)
    return pd.DataFrame({
        "deterministic": deterministic.groupby(block).transform("all").astype(bool),
        "biased": biased,
        "bias_reason": _reasons(frame, off, deterministic, biased, block)},
        index=frame.index)


REASONS = {
    "declared": "a relaxation: biased by construction",
    "jumps": "pathwise through a cost that jumps along the draws (f_jumps)",
    "measure": "ignores how p(x|θ) depends on θ",
    "truth": "within the tolerance of the truth's check: the truth may be off",
    "discretization": "a deterministic rule's discretization error",
    "measured": "measured beyond its standard errors",
}
"""Why a block is flagged biased, most specific first (``bias_reason``)."""


def _reasons(frame, off, deterministic, biased, block) -> pd.Series:
    """Per row, why its block is flagged (``REASONS``; "" where it is not): a property of
    the estimator on this problem where one explains it, else the truth where every off
    component misses by less than the truth's own unchecked tolerance, else what was
    measured."""
    reason = pd.Series("", index=frame.index, dtype=object)
    if not biased.any():
        return reason
    # A checked truth may still be off by up to its tolerance (10% of the gradient's
    # scale at most), far more than the bias test resolves at large R.
    within = off & (frame.bias.abs() <= frame.get("truth_tolerance", np.nan)
                    + 4 * frame.bias_se)
    only_truth = (within | ~off).groupby(block).transform("all") \
        & off.groupby(block).transform("any")
    rules = [
        ("declared", declared_biased(frame.estimator)),
        ("jumps", _estimator_property(frame.estimator, "pathwise")
         & frame.get("f_jumps", pd.Series(False, index=frame.index)).fillna(False)
         .astype(bool)),
        ("measure", _estimator_property(frame.estimator, "ignores_measure_gradient")),
        ("truth", only_truth),
        ("discretization", deterministic.groupby(block).transform("all")),
        ("measured", pd.Series(True, index=frame.index)),
    ]
    for name, applies in reversed(rules):  # the first rule that applies wins
        reason = reason.mask(applies.astype(bool), REASONS[name])
    return reason.where(biased, "")


MAIN_REASON_ORDER = ("declared", "jumps", "measure", "discretization", "measured", "truth")
"""Across an estimator's settings, a bias measured at one of them outweighs another's
that the truth's tolerance may explain."""


def main_reason(reasons) -> str:
    """The most telling of several rows' ``bias_reason`` values ("" when none)."""
    present = set(reasons)
    return next((REASONS[name] for name in MAIN_REASON_ORDER if REASONS[name] in present), "")


def _setting(cell: str) -> str:
    """A cell key without its estimator and batch size: the problem, θ, n (and step) at
    which estimators are compared (:attr:`bench.cellkey.CellKey.setting`)."""
    try:
        return cellkey.parse(cell).setting
    except cellkey.CellKeyError:
        return cell


def variance_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Sample variance and its kurtosis-aware log-scale confidence interval."""
    values = np.asarray(values, dtype=np.float64)
    count = values.size
    if count < 2:
        return math.nan, math.nan, math.nan
    deviations = (values - values.mean())[None, :]
    variance = _squares(deviations) / (count - 1)
    low, high = _variance_interval(deviations, variance, count,
                                   float(stats.norm.ppf(0.5 + level / 2)))
    return float(variance[0]), float(low[0]), float(high[0])


def cell_metrics(estimates: np.ndarray, truth, n_samples: int, truth_se=0.0) -> dict:
    """Metrics of R estimates against the truth (with its standard error ``truth_se``,
    zero for exact truths), for every component at once.

    Args:
      estimates: ``[R]`` (one component) or ``[R, d]`` (d components).
      truth, truth_se: a number, or ``[d]`` of them.
      n_samples: draws behind one estimate.

    Returns:
      {column: value} for ``[R]`` estimates; {column: array [d]} for ``[R, d]``. A
      component with any non-finite estimate has every statistic NaN (module docstring).
    """
    estimates = np.asarray(estimates, dtype=np.float64)
    one = estimates.ndim == 1
    # [d, R] rows, each contiguous: numpy sums a contiguous row pairwise, exactly as it
    # sums one component's [R] estimates, and the operations below are the ones of the
    # one-component formulas, so the numbers are the same bit for bit either way (tested).
    values = np.ascontiguousarray(estimates.reshape(estimates.shape[0], -1).T)
    d, count = values.shape
    truth = np.broadcast_to(np.asarray(truth, dtype=np.float64), (d,))
    truth_se = np.broadcast_to(np.asarray(truth_se, dtype=np.float64), (d,))
    nonfinite = np.count_nonzero(~np.isfinite(values), axis=1)
    # Non-finite components give NaN and overflow on the way; they are set NaN below.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean = values.mean(axis=1)
        deviations = values - mean[:, None]
        variance = _squares(deviations) / (count - 1) if count > 1 else np.full(d, np.nan)
        sd = values.std(axis=1, ddof=1) if count > 1 else np.full(d, np.nan)
        low, high = _variance_interval(deviations, variance, count)
        half_width = np.where(variance == 0, 0.0, (high - low) / (2 * variance))
        columns = {
            "truth": truth.copy(),
            "mean": mean,
            "bias": mean - truth,
            "bias_se": np.sqrt(_square(sd) / count + _square(truth_se)),
            "truth_se": truth_se.copy(),
            "variance": variance,
            "variance_ci_low": low,
            "variance_ci_high": high,
            "variance_ci_rel": half_width,
            "per_sample_variance": variance * n_samples,
            "mse": np.mean((values - truth[:, None]) ** 2, axis=1),
            "n_nonfinite": nonfinite.astype(np.int64),
        }
    bad = nonfinite > 0
    for column in STATISTICS:
        columns[column] = np.where(bad, np.nan, columns[column])
    if one:
        return {column: (int(value[0]) if column == "n_nonfinite" else float(value[0]))
                for column, value in columns.items()}
    return columns


def _variance_interval(deviations, variance, count, z: float = Z95) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """The interval's bounds (module docstring) for rows of ``deviations`` [d, R] with
    sample variances ``variance`` [d]; 0 for a zero variance."""
    if count < 2:
        nan = np.full(len(variance), np.nan)
        return nan, nan
    fourth = np.mean(deviations**4, axis=1)
    var_of_variance = np.maximum(fourth - (count - 3) / (count - 1) * _square(variance),
                                 0.0) / count
    with np.errstate(divide="ignore", invalid="ignore"):
        half = z * np.sqrt(var_of_variance) / variance
    zero = variance == 0.0
    return (np.where(zero, 0.0, variance * _exp(-half)),
            np.where(zero, 0.0, variance * _exp(half)))


def _squares(deviations: np.ndarray) -> np.ndarray:
    """Each row's sum of squares [d], as ``row @ row`` (BLAS's dot) computes it: numpy's
    matmul of a row by itself is that dot, an einsum sums in another order."""
    return np.matmul(deviations[:, None, :], deviations[:, :, None])[:, 0, 0]


def _square(values: np.ndarray) -> np.ndarray:
    """``value ** 2`` of each value as Python computes it (the C library's pow, which
    differs from numpy's x · x in the last bit for ~1 value in 4,000)."""
    return np.fromiter((value**2 for value in values.tolist()), float, count=len(values))


def _exp(values: np.ndarray) -> np.ndarray:
    """``math.exp`` of each value (numpy's own exp differs from it in the last bit for
    ~5% of arguments); numpy's where math.exp would overflow or the value is NaN."""
    with np.errstate(over="ignore"):
        out = np.exp(values)
    exact = np.abs(values) < 700  # NaN compares False
    out[exact] = np.fromiter(map(math.exp, values[exact].tolist()), float,
                             count=int(exact.sum()))
    return out

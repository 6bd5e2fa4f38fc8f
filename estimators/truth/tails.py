"""How heavy the tail of a Monte Carlo sample is: the Pareto shape k̂ of its largest terms.

A mean of N iid terms is trustworthy when the terms have a finite variance; when they do
not, the sample's standard error is too small and its mean drifts as N grows; when the
terms have no mean at all (E f infinite or undefined), any number is wrong. The shape k of
a generalized Pareto distribution fitted to the largest terms tells which (Vehtari,
Simpson, Gelman, Yao & Gabry, "Pareto Smoothed Importance Sampling", JMLR 2024): a tail
falling off like |t|^(-α) has k = 1/α, so

* k < ``RELIABLE`` (0.7): the mean converges at a usable rate and its SE can be trusted;
* ``RELIABLE`` ≤ k < ``NO_MEAN`` (1): the variance is (nearly) infinite: the mean exists
  but its SE cannot be trusted;
* k ≥ ``NO_MEAN``: the mean does not exist (a Cauchy's |x| has k = 1, a Student t with
  1.5 degrees of freedom has k = 1.33 for x²).

The fit is scipy's maximum-likelihood ``genpareto.fit`` on the ``min(N/5, 3√N)`` largest
|term − median| above the next one (the tail size PSIS uses). Lattice samples (a Bernoulli
cost, a cost that takes a few values up to float rounding, or whose largest terms are
mostly ties) have no tail to fit: k is reported as NaN, which every rule treats as light.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

RELIABLE = 0.7
NO_MEAN = 1.0
MIN_DISTINCT = 10
"""Fewer distinct exceedances than this: a lattice (few values), not a tail."""
TIES = 0.5
"""Fewer distinct exceedances than this fraction of them: a lattice too (a heavy tail has
no ties: its largest terms are spread out)."""


def tail_size(count: int) -> int:
    """How many of ``count`` terms form the fitted tail (PSIS: min(N/5, 3√N))."""
    return int(min(count / 5, 3 * math.sqrt(count)))


def pareto_k(values: np.ndarray) -> float:
    """k̂ of the tail of |values − median| of a 1-D sample (NaN for a lattice or a sample
    of fewer than 50 terms)."""
    values = np.asarray(values, dtype=np.float64)
    return _fit_top(np.abs(values - np.median(values)), values.size)


class TailKeeper:
    """The largest |term − center| of each column over chunks of a sample, enough to fit
    :func:`pareto_k` at the end (memory O(√N) per column, not O(N)).

    ``center`` is fixed by the first chunk (its median): the fit needs a center, not the
    sample's exact median.
    """

    def __init__(self, total: int):
        self.keep = tail_size(total) + 1
        self.total = total
        self.center = None
        self.top = None

    def add(self, chunk: np.ndarray) -> None:
        """``chunk``: ``[m, k]`` terms of the k columns."""
        chunk = np.asarray(chunk, dtype=np.float64)
        if self.center is None:
            self.center = np.median(chunk, axis=0)
        distance = np.abs(chunk - self.center)
        merged = distance if self.top is None else np.concatenate([self.top, distance])
        if len(merged) > self.keep:
            merged = -np.partition(-merged, self.keep - 1, axis=0)[: self.keep]
        self.top = merged

    def shapes(self) -> np.ndarray:
        """k̂ per column (NaN where there is no tail to fit)."""
        if self.top is None:
            return np.array([])
        return np.array([_fit_top(self.top[:, j], self.total) for j in range(self.top.shape[1])])


def _fit_top(top: np.ndarray, total: int) -> float:
    """:func:`pareto_k` from the largest terms of a sample of ``total``."""
    size = tail_size(total) if total > 50 else 0
    if size < MIN_DISTINCT:
        return math.nan
    top = np.sort(top[np.isfinite(top)])[-size - 1:]
    if top.size < size + 1:
        return math.nan
    exceedances = top[1:] - top[0]
    # Distinct beyond rounding: values with many ties (a few values plus float noise, or
    # products of lattices) are no tail to fit, and make the fit swing to any k.
    distinct = np.unique(np.round(exceedances / max(top[-1], 1e-300), 9))
    if distinct[distinct > 0].size < max(MIN_DISTINCT, TIES * exceedances.size):
        return math.nan
    scale = float(np.mean(exceedances))
    shape, _, _ = stats.genpareto.fit(exceedances / scale, floc=0)
    return float(shape)

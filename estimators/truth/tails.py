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

The fit is Zhang & Stephens' ("A New and Efficient Estimation Method for the Generalized
Pareto Distribution", Technometrics 2009) on the ``min(N/5, 3√N)`` largest |term − median|
above the next one: the estimate and tail size PSIS uses (without PSIS's prior toward
k = ½, which suits importance ratios, not a general sample). A posterior mean over a grid of
candidate values, it is as accurate as maximum likelihood (within 0.01 of scipy's
``genpareto.fit`` on tails of 1,536 terms) and needs no iterative optimizer, which made the
fits a sixth of a truth's check (one per direction and statistic; docs/PERFORMANCE.md).

Lattice samples (a Bernoulli cost, a cost that takes a few values up to float rounding, or
whose largest terms are mostly ties) have no tail to fit: k is reported as NaN, which
every rule treats as light.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

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
    # products of lattices) are no tail to fit, and make the fit swing to any k. Ties are
    # judged between neighbouring terms relative to their size, not to the largest: under
    # a tail as heavy as k = 2 the largest term is ~10⁹ times the threshold.
    distinct = np.count_nonzero(np.diff(top) > 1e-9 * np.abs(top[1:]))  # above top[0]'s
    if distinct < max(MIN_DISTINCT, TIES * exceedances.size):
        return math.nan
    return _zhang_stephens(exceedances[exceedances > 0])


def _zhang_stephens(exceedances: np.ndarray) -> float:
    """The generalized Pareto shape k (> 0: heavy, as scipy's ``c``) of positive
    exceedances: the profile likelihood of b = −k/σ on Zhang & Stephens' grid of
    m = 30 + ⌊√n⌋ values below 1/max x, weighted into the posterior mean of b, at which
    k = mean log(1 − b x)."""
    x = np.sort(exceedances) / np.max(exceedances)  # k is scale-free
    n = x.size
    m = 30 + int(math.sqrt(n))
    quartile = x[max(int(n / 4 + 0.5) - 1, 0)]
    b = 1 + (1 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))) / (3 * quartile)  # [m], < 1/max x
    shape = np.log1p(-b[:, None] * x[None, :]).mean(axis=1)  # [m]: k at each b
    with np.errstate(divide="ignore", invalid="ignore"):  # b = 0 exactly: 0/0
        profile = n * (np.log(-b / shape) - shape - 1)  # the log-likelihood there
    profile = np.where(np.isfinite(profile), profile, -np.inf)
    weights = np.exp(profile - special.logsumexp(profile))
    return float(np.mean(np.log1p(-np.sum(weights * b) * x)))

"""The figure of K-sample bounds (problems with a ``multi_sample``: IWAE): the
signal-to-noise ratio of each estimator's gradient against K (Rainforth et al. 2018: the
pathwise gradient of q's parameters loses signal as the bound tightens; Tucker et al. 2019:
DReG's gains it), with its data function for tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report import figures
from bench.report.data import at_largest_n, finite_cells
from bench.report.discrete import _problem


def _samples(family: str, arguments: str) -> int | None:
    problem = _problem(family, arguments)
    multi = getattr(problem, "multi_sample", None)
    return None if multi is None else multi.samples


def snr_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of K-sample-bound problems at their largest n_samples, with ``K`` and the
    signal-to-noise ratio of one estimate, ``snr`` = |mean| / sd, and its 95% interval
    (normal theory: sd(snr) ≈ √((1 + snr²/2) / R)); only problem families measured at two
    or more K."""
    data = at_largest_n(finite_cells(frame))
    data = data[~data.deterministic]
    samples = pd.Series([_samples(f, a) for f, a in zip(data.problem_family,
                                                        data.problem_args)],
                        index=data.index, dtype=object)
    data = data[samples.notna().to_numpy()].assign(K=samples[samples.notna()].astype(int))
    if data.empty:
        return data.assign(snr=[], low=[], high=[])
    snr = data["mean"].abs() / np.sqrt(data.variance)
    se = np.sqrt((1 + snr**2 / 2) / data.n_replicates)
    data = data.assign(snr=snr, low=np.maximum(snr - 1.96 * se, 0.0), high=snr + 1.96 * se)
    spread = data.groupby("problem_family").K.transform("nunique")
    return data[spread >= 2]


def snr_vs_samples(frame, colours):
    points = snr_points(frame)
    if points.empty:
        return None
    points = points.assign(panel=points.problem_family + " · ∂/∂" + points.param)
    panels = list(dict.fromkeys(points.panel))
    fig, axes = figures.facets(panels, 2, "Signal-to-noise ratio |mean| / sd of one estimate "
                                          "against the samples K of the bound (log scales, "
                                          "95% intervals)")
    names = [n for n in colours if n in set(points.estimator)]
    for panel, ax in axes.items():
        group = points[points.panel == panel]
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        figures._errorbars(ax, group, "K", "snr", "low", "high",
                           {n: colours[n] for n in names}, log_x=True)
        ax.set(xlabel="K (samples in the bound)", ylabel="SNR of one estimate")
        ax.set_title(f"{panel}   (n = {int(group.n_samples.iloc[0]):,})", fontsize="medium")
    figures.legend(fig, {n: colours[n] for n in names})
    return fig

"""Figures for estimators of categorical latents (bench/grids/categorical.toml), with their
data: how variance per evaluation of f and bias move with the peakedness of the logits
and with the number of categories C, and a table of which estimator to use when.

Cells count when their problem's measure is categorical (``tfd.Categorical`` or
``tfd.OneHotCategorical``, one variable or an Independent of V) and the problem says where
its start puts the mass (a ``peak`` argument: category 0's probability, 0 for flat logits,
whose category 0 then holds 1/C; ``categorical_toy``, ``categorical_mean_power``). Each
figure is None when the table has no such cells, so reports of other grids do not change.

* :func:`variance_vs_peak`: variance × f evaluations per estimate against category 0's
  mass, one panel per problem (its arguments but the peak);
* :func:`variance_vs_categories`: the same against C, one panel per peak;
* :func:`bias_vs_peak`: ‖bias‖ / ‖true gradient‖ against category 0's mass, with the size
  noise alone gives it (``bias_norm_floor``);
* :func:`bias_vs_temperature`: ‖bias‖ / ‖true gradient‖ of the estimators with a
  temperature against it, measured and, where the estimate is a function of the discrete
  draw (ReinMax), exact by enumeration;
* :func:`which_estimator`: per problem and peak, the best unbiased estimator per evaluation
  of f (with its ties), RLOO's variance at the same cost, and the biased estimator of least
  MSE per evaluation with its relative bias.
"""

from __future__ import annotations

import functools
import textwrap

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

import estimators as E
from estimators.gradients import categorical as latents
from bench import coordinates
from bench.report import figures
from bench.report.data import at_largest_n, finite_cells
from bench.report.discrete import _problem

RLOO = "score_function(control_variate=loo)"


@functools.lru_cache(maxsize=None)
def _categories(name: str, kwargs: str) -> tuple | None:
    """(V, C) of a problem whose measure is categorical at its start, else None."""
    problem = _problem(name, kwargs)
    if problem is None or problem.start is None:
        return None
    try:
        found = latents.view(problem.distribution(problem.theta_vector("start")))
    except Exception:  # noqa: BLE001 - a start outside the domain: not drawn here
        return None
    return None if found is None else found[1:]


def _default_temperature(label: str) -> bool:
    """An estimator without a temperature, or at its identity's default one."""
    estimator = E.get_estimator(label)
    settings = dict(estimator.settings)
    if "temperature" not in settings:
        return True
    defaults = {name: default for name, default, *_ in estimator.identity.settings}
    return settings["temperature"] == defaults["temperature"]


def points(frame: pd.DataFrame, default_temperatures: bool = True) -> pd.DataFrame:
    """Rows of categorical problems with a ``peak`` argument at their largest n_samples,
    with ``V``, ``C``, ``mass`` (category 0's probability at the start), ``base`` (the
    problem's name without the peak), ``efficiency`` (variance × f evaluations per
    estimate, with ``efficiency_low``/``_high`` from the variance's 95% interval) and
    ``relative_bias`` / ``relative_floor`` (‖bias‖ and √ΣSE² over ‖true gradient‖)."""
    data = at_largest_n(finite_cells(frame))
    columns = ["V", "C", "peak", "mass", "base", "efficiency", "efficiency_low", "efficiency_high",
               "relative_bias", "relative_floor"]
    if data.empty:
        return data.assign(**{c: [] for c in columns})
    shapes = pd.Series([_categories(f, a) for f, a in zip(data.problem_family,
                                                          data.problem_args)],
                       index=data.index, dtype=object)
    arguments = data.problem_args.map(coordinates.arguments)
    keep = shapes.notna()
    if default_temperatures:
        keep &= data.estimator.map(_default_temperature)
    data, shapes, arguments = data[keep], shapes[keep], arguments[keep]
    if data.empty:
        return data.assign(**{c: [] for c in columns})
    data = _whole_cells(data)
    shapes, arguments = shapes[data.index], arguments[data.index]
    C = shapes.map(lambda s: s[1])
    # NaN: a problem without a peak argument (categorical_vae), in tables only.
    peak = arguments.map(lambda a: float(a["peak"]) if "peak" in a else np.nan)
    cost = data.f_evals_per_estimate
    return data.assign(
        V=shapes.map(lambda s: s[0]), C=C, peak=peak,
        mass=np.where(peak > 0, peak, np.where(peak == 0, 1.0 / C, np.nan)),
        base=[_without(f, a, "peak") for f, a in zip(data.problem_family, arguments)],
        efficiency=data.variance * cost, efficiency_low=data.variance_ci_low * cost,
        efficiency_high=data.variance_ci_high * cost,
        relative_bias=data.bias_norm / data.truth_norm,
        relative_floor=data.bias_norm_floor / data.truth_norm)


def _whole_cells(data: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: a problem of several parameter blocks (the VAE's encoder, decoder,
    prior) has one row per block; the cell's variance and MSE are then the means over all
    its components, its bias, truth and noise norms over all of them, its flags any
    block's."""
    if not data.cell.duplicated().any():
        return data
    weights = data.components.astype(float)
    weighted = ["variance", "variance_ci_low", "variance_ci_high", "mse"]
    squared = ["bias_norm", "truth_norm", "bias_norm_floor"]
    parts = data.assign(**{c: data[c] * weights for c in weighted},
                        **{c: data[c] ** 2 for c in squared}, weight=weights)
    grouped = parts.groupby("cell", sort=False)
    sums = grouped[weighted + squared + ["weight"]].sum(min_count=1)
    first = grouped.first()
    for column in weighted:
        first[column] = sums[column] / sums.weight
    for column in squared:
        first[column] = np.sqrt(sums[column])
    first["biased"] = grouped.biased.any()
    rows = first.reset_index()
    rows.index = data.drop_duplicates("cell").index  # keep the first block's row labels
    return rows


def _without(family: str, arguments: dict, *names: str) -> str:
    kept = {k: v for k, v in arguments.items() if k not in names}
    return E.problems.label(family, kept)


def _style(label: str) -> str:
    return "--" if E.get_estimator(label).declared_biased else "-"


ZERO_RELATIVE = 1e-9
"""A variance this far below the largest of its panel is zero up to float32 rounding
(IndeCateR on one variable, a set of every category): noted, not drawn on the log axis."""


def _zero_note(group, x: str, y: str) -> tuple[pd.DataFrame, str]:
    """The rows worth drawing, and a line naming the zero ones with where they are."""
    zero = group[y] <= ZERO_RELATIVE * group[y].max()
    notes = [f"{label} ({x} = " + ", ".join(f"{v:.3g}" for v in sorted(rows[x])) + ")"
             for label, rows in group[zero].groupby("estimator", sort=False)]
    note = textwrap.fill("zero variance (exact): " + "; ".join(notes), 50) if notes else ""
    return group[~zero], ("\n" + note if note else "")


def _lines(ax, group, x: str, y: str, colours, low=None, high=None) -> dict:
    shown = {}
    for label, rows in group.groupby("estimator", sort=False):
        rows = rows.sort_values(x)
        colour = colours[label]
        shown[label] = colour
        ax.plot(rows[x], rows[y], color=colour, linestyle=_style(label), marker="o",
                markersize=4, linewidth=1.2)
        if low is not None:
            ax.errorbar(rows[x], rows[y], yerr=np.clip([rows[y] - rows[low],
                                                        rows[high] - rows[y]], 0, None),
                        color=colour, fmt="none", elinewidth=0.8, capsize=2)
    return shown


def _biased_key() -> list:
    return [Line2D([], [], color="0.3", linestyle="--", label="biased (by construction)")]


def _efficiency_figure(data, panel: str, x: str, suptitle: str, xscale: str, xlabel: str,
                       tick_text, colours):
    """Variance × f evaluations against ``x``, one panel per value of column ``panel``
    (those where x takes two values or more); None when there are none."""
    data = data[data.groupby(panel)[x].transform("nunique") > 1]
    if data.empty:
        return None
    fig, axes = figures.facets(list(dict.fromkeys(data[panel])), 2, suptitle)
    shown = {}
    for name, ax in axes.items():
        group, zero = _zero_note(data[data[panel] == name], x, "efficiency")
        shown.update(_lines(ax, group, x, "efficiency", colours, "efficiency_low",
                            "efficiency_high"))
        ax.set(xscale=xscale, yscale="log", xlabel=xlabel, ylabel="variance × f evaluations")
        ax.set_title(name + zero, fontsize="medium")
        ticks = np.unique(group[x])
        ax.set_xticks(ticks, [tick_text(t) for t in ticks])
        ax.minorticks_off()
    figures.legend(fig, shown, _biased_key())
    return fig


def variance_vs_peak(frame, colours):
    data = points(frame).dropna(subset=["mass"])
    if data.empty:
        return None
    return _efficiency_figure(
        data, "base", "mass", "Variance × evaluations of f per estimate against the mass of "
        "category 0 (lower is better; 95% CIs)", "logit", "P(category 0) at the start",
        lambda t: f"{t:.3g}", colours)


def variance_vs_categories(frame, colours):
    data = points(frame).dropna(subset=["mass"])
    if data.empty:
        return None
    data = data.assign(panel=data.problem_family + " at P(category 0) = "
                       + data.mass.map(lambda m: f"{m:.3g}").where(data.peak > 0,
                                                                    "1/C (flat)"))
    return _efficiency_figure(
        data, "panel", "C", "Variance × evaluations of f per estimate against the number of "
        "categories C (lower is better)", "log", "categories C", lambda t: str(int(t)),
        colours)


SIGNIFICANT = 3.0
"""‖bias‖ above this many √ΣSE² (its size from noise alone: E‖bias‖² = ΣSE² for an unbiased
estimator) is a measured bias; below it the point is drawn hollow."""


def _bias_points(ax, rows, x: str, colour) -> None:
    rows = rows.sort_values(x)
    ax.plot(rows[x], rows.relative_bias, color=colour, linestyle=_style(rows.estimator.iloc[0]),
            linewidth=1.0)
    # A zero-variance estimate (IndeCateR on one variable) has no noise, only float32
    # rounding: 1e-5 of the gradient, the allowance the bias flags make for it too.
    real = rows.relative_bias > np.maximum(SIGNIFICANT * rows.relative_floor, 1e-5)
    ax.plot(rows[x][real], rows.relative_bias[real], color=colour, marker="o", markersize=5,
            linestyle="none")
    ax.plot(rows[x][~real], rows.relative_bias[~real], color=colour, marker="o",
            markersize=5, linestyle="none", markerfacecolor="white")


def _hollow_key() -> list:
    return [Line2D([], [], color="0.3", marker="o", linestyle="none", label="measured bias"),
            Line2D([], [], color="0.3", marker="o", linestyle="none", markerfacecolor="white",
                   label=f"within noise (≤ {SIGNIFICANT:g} √ΣSE²)")]


def bias_vs_peak(frame, colours):
    data = points(frame).dropna(subset=["mass"])
    if data.empty:
        return None
    data = data[data.groupby("base").mass.transform("nunique") > 1]
    data = data[data.relative_bias > 0]
    if data.empty:
        return None
    panels = list(dict.fromkeys(data.base))
    fig, axes = figures.facets(panels, 2, "‖bias‖ / ‖true gradient‖ against the mass of "
                                          "category 0 (hollow: within the estimator's own "
                                          "noise)")
    shown = {}
    for base, ax in axes.items():
        group = data[data.base == base]
        for label, rows in group.groupby("estimator", sort=False):
            shown[label] = colours[label]
            _bias_points(ax, rows, "mass", colours[label])
        ax.set(xscale="logit", yscale="log", xlabel="P(category 0) at the start",
               ylabel="‖bias‖ / ‖gradient‖", title=base)
        ticks = np.unique(group.mass)
        ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
        ax.minorticks_off()
    figures.legend(fig, shown, _biased_key() + _hollow_key())
    return fig


@functools.lru_cache(maxsize=None)
def _start_label(name: str, kwargs: str) -> str | None:
    """The ``theta_label`` of the problem's start (cells measured there get exact lines)."""
    problem = _problem(name, kwargs)
    return problem.parameters.describe(problem.theta_vector("start"))


@functools.lru_cache(maxsize=None)
def _exact_relative_bias(name: str, kwargs: str, label: str, batch: int) -> float | None:
    """‖exact mean − true gradient‖ / ‖true gradient‖ at the problem's start, where the
    estimator's mean is summed exactly (None elsewhere)."""
    problem = _problem(name, kwargs)
    try:
        mean, _ = E.get_estimator(label).exact_moments(problem, "start", batch)
    except (NotImplementedError, ValueError):
        return None
    truth = problem.true_gradient("start")
    return float(np.linalg.norm(mean - truth) / np.linalg.norm(truth))


def temperature_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of :func:`points` (every temperature) of estimators measured at two
    temperatures or more on a problem and start, with ``identity`` and ``exact``."""
    data = points(frame, default_temperatures=False)
    if data.empty or "temperature" not in data:
        return data.assign(identity=[], exact=[])
    data = data[data.temperature.notna()].assign(identity=lambda d: d.estimator_identity)
    data = data[data.groupby(["problem", "identity"]).temperature.transform("nunique") >= 2]
    exact = [_exact_relative_bias(f, a, label, int(b)) if t == _start_label(f, a) else None
             for f, a, label, b, t in zip(data.problem_family, data.problem_args,
                                         data.estimator, data.batch_size, data.theta_label)]
    return data.assign(exact=pd.Series(exact, index=data.index, dtype=float))


def bias_vs_temperature(frame, colours):
    data = temperature_points(frame)
    data = data[data.relative_bias > 0]
    if data.empty:
        return None
    panels = list(dict.fromkeys(data.problem))
    fig, axes = figures.facets(panels, 2, "‖bias‖ / ‖true gradient‖ of the relaxed "
                                          "estimators against their temperature: measured "
                                          "(points; hollow: within noise), exact by "
                                          "enumeration (crosses)")
    shown = {}
    for problem, ax in axes.items():
        group = data[data.problem == problem]
        for identity, rows in group.groupby("identity", sort=False):
            colour = colours[rows.estimator.iloc[0]]
            shown[identity] = colour
            _bias_points(ax, rows, "temperature", colour)
            rows = rows.sort_values("temperature")
            ax.plot(rows.temperature, rows.exact, color=colour, marker="x", markersize=8,
                    linestyle="none")
        ax.set(xscale="log", yscale="log", xlabel="temperature",
               ylabel="‖bias‖ / ‖gradient‖")
        ax.set_title(problem.replace(", peak", ",\npeak"), fontsize="medium")
        ticks = np.unique(group.temperature)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    figures.legend(fig, shown, _hollow_key() + [
        Line2D([], [], color="0.3", marker="x", linestyle="none", label="exact (enumerated)")])
    return fig


def which_estimator(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem (and peak): the estimators unbiased by design (all but the relaxations,
    ReinMax and Gumbel-Rao) that are exact here (zero variance), else the one of least
    variance × f evaluations and those whose 95% intervals overlap it; RLOO's value and its
    ratio to the best; the biased estimator of least MSE × f evaluations with its relative
    bias; and the unbiased ones the sample flagged as biased (at peaked logits a category
    seen a few times in a cell's draws makes the sample's standard errors too small)."""
    data = points(frame)
    rows = []
    for problem, group in data.groupby("problem", sort=False):
        by_design = group.estimator.map(lambda label: E.get_estimator(label).declared_biased)
        unbiased = group[~by_design.astype(bool)].sort_values("efficiency")
        biased = group[by_design.astype(bool)].assign(
            mse_x_f=lambda d: d.mse * d.f_evals_per_estimate).sort_values("mse_x_f")
        mass = group.mass.iloc[0]
        row = {"problem": problem, "P(category 0)": "—" if np.isnan(mass) else f"{mass:.3g}"}
        zero = unbiased.efficiency <= ZERO_RELATIVE * unbiased.efficiency.max()
        if zero.any():
            row.update({"best unbiased per f": "exact: " + ", ".join(unbiased.estimator[zero]),
                        "variance × f": "0", "tied (95% CIs overlap)": "—"})
        elif not unbiased.empty:
            best = unbiased.iloc[0]
            tied = unbiased[(unbiased.efficiency_low <= best.efficiency_high)].estimator
            row.update({"best unbiased per f": best.estimator,
                        "variance × f": f"{best.efficiency:.3g}",
                        "tied (95% CIs overlap)": ", ".join(tied.iloc[1:]) or "—"})
        rloo = unbiased[unbiased.estimator == RLOO]
        if len(rloo) and not zero.any():
            ratio = rloo.efficiency.iloc[0] / unbiased.efficiency.iloc[0]
            row["RLOO variance × f (× best)"] = f"{rloo.efficiency.iloc[0]:.3g} ({ratio:.3g}×)"
        elif len(rloo):
            row["RLOO variance × f (× best)"] = f"{rloo.efficiency.iloc[0]:.3g} (best: exact)"
        if not biased.empty:
            least = biased.iloc[0]
            row.update({"least MSE × f, biased": least.estimator,
                        "its ‖bias‖/‖gradient‖": f"{least.relative_bias:.2g}"})
        flagged = unbiased[unbiased.biased.astype(bool)].estimator
        row["flagged by the sample"] = ", ".join(flagged) or "—"
        rows.append(row)
    return pd.DataFrame(rows)


def tables(frame: pd.DataFrame) -> list[tuple[str, str, str, pd.DataFrame]]:
    table = which_estimator(frame)
    if table.empty:
        return []
    return [("which_categorical_estimator", "Which categorical estimator, when",
             "Per problem and start (category 0's mass), at the largest n_samples: among the "
             "estimators unbiased by design, those exact here (zero variance), else the one "
             "with the least variance × evaluations of f per estimate (the variance of an "
             "estimate costing one evaluation of f) and those tied with it (95% intervals "
             "overlap), and RLOO's value at equal cost with its ratio to the best; among the "
             "biased ones (relaxations, ReinMax, Gumbel-Rao) the one with the least MSE × f "
             "evaluations, with its ‖bias‖ / ‖true gradient‖. 'flagged by the sample': "
             "unbiased estimators whose cells the bias test flagged; at peaked logits a "
             "category other than 0 appears a few times in a cell's draws, so the sample "
             "standard errors understate the noise (their unbiasedness is checked exactly, by "
             "enumeration, in the test suite). Drawn from this table's measurements.",
             table)]

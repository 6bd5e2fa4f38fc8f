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
    keep = shapes.notna() & arguments.map(lambda a: "peak" in a or "C" in a)
    if default_temperatures:
        keep &= data.estimator.map(_default_temperature)
    data, shapes, arguments = data[keep], shapes[keep], arguments[keep]
    if data.empty:
        return data.assign(**{c: [] for c in columns})
    C = shapes.map(lambda s: s[1])
    peak = arguments.map(lambda a: float(a.get("peak", 0.0)))
    cost = data.f_evals_per_estimate
    return data.assign(
        V=shapes.map(lambda s: s[0]), C=C, peak=peak, mass=np.where(peak > 0, peak, 1.0 / C),
        base=[_without(f, a, "peak") for f, a in zip(data.problem_family, arguments)],
        efficiency=data.variance * cost, efficiency_low=data.variance_ci_low * cost,
        efficiency_high=data.variance_ci_high * cost,
        relative_bias=data.bias_norm / data.truth_norm,
        relative_floor=data.bias_norm_floor / data.truth_norm)


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


def variance_vs_peak(frame, colours):
    data = points(frame)
    data = data[data.groupby("base").mass.transform("nunique") > 1]
    if data.empty:
        return None
    panels = list(dict.fromkeys(data.base))
    fig, axes = figures.facets(panels, 2, "Variance × evaluations of f per estimate against "
                                          "the mass of category 0 (lower is better; 95% CIs)")
    shown = {}
    for base, ax in axes.items():
        group, zero = _zero_note(data[data.base == base], "mass", "efficiency")
        shown.update(_lines(ax, group, "mass", "efficiency", colours, "efficiency_low",
                            "efficiency_high"))
        ax.set(xscale="logit", yscale="log", xlabel="P(category 0) at the start",
               ylabel="variance × f evaluations")
        ax.set_title(base + zero, fontsize="medium")
        ticks = np.unique(group.mass)
        ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
        ax.minorticks_off()
    figures.legend(fig, shown, _biased_key())
    return fig


def variance_vs_categories(frame, colours):
    data = points(frame)
    data = data.assign(panel=data.problem_family + " at P(category 0) = "
                       + data.mass.map(lambda m: f"{m:.3g}").where(data.peak > 0,
                                                                    "1/C (flat)"))
    data = data[data.groupby("panel").C.transform("nunique") > 1]
    if data.empty:
        return None
    panels = list(dict.fromkeys(data.panel))
    fig, axes = figures.facets(panels, 2, "Variance × evaluations of f per estimate against "
                                          "the number of categories C (lower is better)")
    shown = {}
    for panel, ax in axes.items():
        group, zero = _zero_note(data[data.panel == panel], "C", "efficiency")
        shown.update(_lines(ax, group, "C", "efficiency", colours, "efficiency_low",
                            "efficiency_high"))
        ax.set(xscale="log", yscale="log", xlabel="categories C",
               ylabel="variance × f evaluations")
        ax.set_title(panel + zero, fontsize="medium")
        ticks = np.unique(group.C)
        ax.set_xticks(ticks, [str(int(t)) for t in ticks])
        ax.minorticks_off()
    figures.legend(fig, shown, _biased_key())
    return fig


def bias_vs_peak(frame, colours):
    data = points(frame)
    data = data[data.groupby("base").mass.transform("nunique") > 1]
    if data.empty:
        return None
    panels = list(dict.fromkeys(data.base))
    fig, axes = figures.facets(panels, 2, "‖bias‖ / ‖true gradient‖ against the mass of "
                                          "category 0; grey: the size noise alone gives "
                                          "‖bias‖ (√ΣSE²), the largest of the estimators'")
    shown = {}
    for base, ax in axes.items():
        group = data[data.base == base]
        shown.update(_lines(ax, group, "mass", "relative_bias", colours))
        floor = group.groupby("mass").relative_floor.max()
        ax.fill_between(floor.index, 0, floor.to_numpy(), color="0.85", zorder=0)
        ax.set(xscale="logit", yscale="log", xlabel="P(category 0) at the start",
               ylabel="‖bias‖ / ‖gradient‖", title=base)
        ticks = np.unique(group.mass)
        ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
        ax.minorticks_off()
    figures.legend(fig, shown, _biased_key())
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
    if data.empty:
        return None
    panels = list(dict.fromkeys(data.problem))
    fig, axes = figures.facets(panels, 2, "‖bias‖ / ‖true gradient‖ of the relaxed "
                                          "estimators against their temperature: measured "
                                          "(points), exact by enumeration (crosses)")
    shown = {}
    for problem, ax in axes.items():
        group = data[data.problem == problem]
        for identity, rows in group.groupby("identity", sort=False):
            rows = rows.sort_values("temperature")
            colour = colours[rows.estimator.iloc[0]]
            shown[identity] = colour
            ax.plot(rows.temperature, rows.relative_bias, color=colour, marker="o",
                    markersize=4, linewidth=1.2)
            ax.plot(rows.temperature, rows.exact, color=colour, marker="x", markersize=7,
                    linestyle="none")
        floor = group.groupby("temperature").relative_floor.max()
        ax.fill_between(floor.index, 0, floor.to_numpy(), color="0.85", zorder=0)
        ax.set(xscale="log", yscale="log", xlabel="temperature",
               ylabel="‖bias‖ / ‖gradient‖")
        ax.set_title(problem.replace(", peak", ",\npeak"), fontsize="medium")
        ticks = np.unique(group.temperature)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    figures.legend(fig, shown, [Line2D([], [], color="0.3", marker="x", linestyle="none",
                                       label="exact (enumerated)")])
    return fig


def which_estimator(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem (and peak): the unbiased estimator of least variance × f evaluations
    and those whose 95% intervals overlap it, RLOO's at the same cost and its ratio to the
    best, and the biased estimator of least MSE × f evaluations with its relative bias."""
    data = points(frame)
    rows = []
    for problem, group in data.groupby("problem", sort=False):
        unbiased = group[~group.biased.astype(bool) & (group.efficiency > 0)] \
            .sort_values("efficiency")
        biased = group[group.biased.astype(bool)].assign(
            mse_x_f=lambda d: d.mse * d.f_evals_per_estimate).sort_values("mse_x_f")
        row = {"problem": problem, "P(category 0)": f"{group.mass.iloc[0]:.3g}"}
        if not unbiased.empty:
            best = unbiased.iloc[0]
            tied = unbiased[(unbiased.efficiency_low <= best.efficiency_high)].estimator
            row.update({"best unbiased per f": best.estimator,
                        "variance × f": f"{best.efficiency:.3g}",
                        "tied (95% CIs overlap)": ", ".join(tied.iloc[1:]) or "—"})
            rloo = unbiased[unbiased.estimator == RLOO]
            row["RLOO variance × f (× best)"] = (
                f"{rloo.efficiency.iloc[0]:.3g} ({rloo.efficiency.iloc[0] / best.efficiency:.3g}×)"
                if len(rloo) else "—")
        if not biased.empty:
            least = biased.iloc[0]
            row.update({"least MSE × f, biased": least.estimator,
                        "its ‖bias‖/‖gradient‖": f"{least.relative_bias:.2g}"})
        rows.append(row)
    return pd.DataFrame(rows)


def tables(frame: pd.DataFrame) -> list[tuple[str, str, str, pd.DataFrame]]:
    table = which_estimator(frame)
    if table.empty:
        return []
    return [("which_categorical_estimator", "Which categorical estimator, when",
             "Per problem and start (category 0's mass), at the largest n_samples: the "
             "unbiased estimator with the least variance × evaluations of f per estimate (the "
             "variance of an estimate costing one evaluation of f), those tied with it (95% "
             "intervals overlap), RLOO's value at equal cost and its ratio to the best; and "
             "among the biased estimators (relaxations, ReinMax, Gumbel-Rao) the one with the "
             "least MSE × f evaluations, with its ‖bias‖ / ‖true gradient‖. Drawn from this "
             "table's measurements.", table)]

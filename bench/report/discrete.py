"""Figures for estimators of discrete latents (bench/grids/discrete.toml), with their data.

Four figures, each None when the table has nothing for it (so reports of other grids do
not change):

* :func:`variance_vs_probability`: per-sample variance against p = P(b = 1) on problems
  whose measure is one Bernoulli (``bernoulli_toy``), measured points and exact lines
  (:func:`probability_curves`), as in the REBAR / RELAX / ARM papers;
* :func:`bias_vs_temperature`: the bias of estimators with a ``temperature`` setting (the
  relaxations) against it, measured and exact (:func:`temperature_curves`);
* :func:`efficiency_per_f_eval`: variance × evaluations of f per estimate, the variance of
  an estimate that costs one evaluation of f (:func:`f_eval_efficiency`);
* :func:`variance_along_warmup`: learned estimators' per-sample variance against the
  state updates before they were measured (:func:`warmup_points`).

The data functions return plain tables, so tests can compare the lines with
``estimators.truth`` without looking at pixels. Exact values are cached per (problem, θ,
estimator, batch): a figure drawn twice computes them once.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import tensorflow_probability as tfp
import matplotlib.ticker
from matplotlib.lines import Line2D

import estimators as E
from bench import coordinates, metrics, problem_specs
from bench.report import figures
from bench.report.data import at_largest_n, cell_theta, finite_cells
from bench.report.tables import NOT_RANKED, rank_efficiency

DISCRETE_IDENTITIES = frozenset(name for name, identity in E.IDENTITIES.items()
                                if identity.discrete_latents)
"""Identities made for discrete latents (``Identity.discrete_latents``): a problem measured
with one of them gets a panel in :func:`efficiency_per_f_eval`."""

CURVE_POINTS = 30
"""Points of each exact line (θ evenly spaced between the measured ends), plus the measured
ones."""

ZERO_RELATIVE = 1e-9
"""An exact variance this far below the largest of its panel is zero (up to rounding)."""


# -- problems of the table's cells ----------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _problem(name: str, kwargs: str):
    """The problem of a cell (``kwargs`` as JSON); None when it cannot be rebuilt here (a
    grid's own problem file, which the figures are not told where to find)."""
    try:
        return problem_specs.get(name, coordinates.arguments(kwargs), None)
    except Exception:  # noqa: BLE001 - any failure to rebuild means: no exact line
        return None


def _cell_problem(rows: pd.DataFrame) -> tuple[str, str]:
    """(problem family, its arguments as JSON) of a cell's rows: :func:`_problem`'s
    arguments, from the columns ``problem_family`` and ``problem_args``."""
    return rows.problem_family.iloc[0], rows.problem_args.iloc[0]


@functools.lru_cache(maxsize=None)
def _bernoulli_probability(name: str, kwargs: str, theta: tuple) -> float | None:
    """p = P(b = 1) when the problem's measure is a single Bernoulli with one parameter,
    else None."""
    problem = _problem(name, kwargs)
    if problem is None or problem.dim != 1:
        return None
    try:
        dist = problem.distribution(np.asarray(theta))
    except Exception:  # noqa: BLE001 - θ outside the problem's domain
        return None
    if not isinstance(dist, tfp.distributions.Bernoulli) or dist.event_shape.rank:
        return None
    return float(dist.probs_parameter())


def _cell_probability(family: str, arguments: str, theta: float) -> float | None:
    """p of a cell's single Bernoulli (its ``problem_family`` and ``problem_args``), θ its
    one component (its row's ``theta``)."""
    return _bernoulli_probability(family, arguments, (float(theta),))


@functools.lru_cache(maxsize=None)
def _exact_variance(name: str, kwargs: str, label: str, theta: tuple, batch: int):
    """Exact per-sample variance [d] (None when there is none)."""
    try:
        return E.truth.per_sample_variance(_problem(name, kwargs), E.get_estimator(label),
                                           np.asarray(theta), batch)
    except (NotImplementedError, ValueError):
        return None


@functools.lru_cache(maxsize=None)
def _exact_bias(name: str, kwargs: str, label: str, theta: tuple, batch: int):
    """Exact mean minus the true gradient [d] (None when there is no exact mean)."""
    problem = _problem(name, kwargs)
    try:
        mean, _ = E.get_estimator(label).exact_moments(problem, np.asarray(theta), batch)
    except (NotImplementedError, ValueError):
        return None
    return np.asarray(mean, dtype=float) - problem.true_gradient(np.asarray(theta))


def _default_settings(label: str) -> bool:
    """True for an estimator at its identity's default settings (or without settings)."""
    return figures._base_label(label) == label


# -- variance against p ------------------------------------------------------------------

def probability_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Measured rows of the variance-vs-p figure: cells of single-Bernoulli problems at
    their largest n_samples, estimators at their default settings, with ``p`` added."""
    data = at_largest_n(finite_cells(frame))
    if data.empty:
        return data.assign(p=[])
    data = data[[_default_settings(label) for label in data.estimator]]
    p = pd.Series([_cell_probability(*where) for where in zip(data.problem_family,
                                                              data.problem_args, data.theta)],
                  index=data.index, dtype=object)
    return data[p.notna().to_numpy()].assign(p=p[p.notna()].astype(float))


def probability_curves(frame: pd.DataFrame, points: int | None = None) -> pd.DataFrame:
    """Exact per-sample variance along p, per problem and estimator of
    :func:`probability_points`: θ at ``points`` (default ``CURVE_POINTS``) values evenly
    spaced between the measured ends, and at the measured ones, each with its p.

    Returns columns problem, estimator, theta, p, exact_per_sample_variance, zero (zero up
    to rounding, relative to the largest of its problem). Estimators without an exact
    variance there have no rows.
    """
    points = CURVE_POINTS if points is None else points
    measured = probability_points(frame)
    rows = []
    for problem_name, group in measured.groupby("problem", sort=False):
        name, kwargs = _cell_problem(group)
        thetas = group.theta.to_numpy(float)
        axis = np.union1d(np.linspace(thetas.min(), thetas.max(), points), thetas)
        for label, rows_of in group.groupby("estimator", sort=False):
            batch = int(rows_of.batch_size.iloc[0])
            for theta in axis:
                variance = _exact_variance(name, kwargs, label, (float(theta),), batch)
                if variance is None:
                    break
                rows.append({"problem": problem_name, "estimator": label, "theta": theta,
                             "p": _bernoulli_probability(name, kwargs, (float(theta),)),
                             "exact_per_sample_variance": float(variance[0])})
    table = pd.DataFrame(rows, columns=["problem", "estimator", "theta", "p",
                                        "exact_per_sample_variance"])
    scale = table.groupby("problem").exact_per_sample_variance.transform("max")
    return table.assign(zero=table.exact_per_sample_variance <= ZERO_RELATIVE * scale)


def variance_vs_probability(frame, colours):
    measured = probability_points(frame)
    measured = measured[~measured.deterministic]
    if measured.empty:
        return None
    curves = probability_curves(frame)
    problems = list(dict.fromkeys(measured.sort_values("panel_rank", kind="stable").problem))
    fig, axes = figures.facets(problems, 2, "Per-sample variance against p = P(b = 1): exact "
                                            "(lines) and measured (points, 95% CI); log scale")
    names = [n for n in colours if n in set(measured.estimator)]
    for problem, ax in axes.items():
        group = measured[measured.problem == problem].assign(
            low=lambda d: d.variance_ci_low * d.n_samples,
            high=lambda d: d.variance_ci_high * d.n_samples)
        lines = curves[curves.problem == problem]
        positive = np.concatenate([group.low[group.low > 0],
                                   lines.exact_per_sample_variance[~lines.zero]])
        floor = 10 ** np.floor(np.log10(positive.min()) - 0.3) if positive.size else 1e-12
        ax.set_yscale("log")
        for name in names:
            curve = lines[lines.estimator == name].sort_values("p")
            if curve.empty:
                continue
            values = np.where(curve.zero, floor, curve.exact_per_sample_variance)
            ax.plot(curve.p, values, color=colours[name], linewidth=1.3)
            zeros = curve[curve.zero]
            ax.plot(zeros.p, np.full(len(zeros), floor), linestyle="none", marker="v",
                    markersize=7, color=colours[name])
        figures._errorbars(ax, group, "p", "per_sample_variance", "low", "high",
                           {n: colours[n] for n in names}, connect=False, step=0.004)
        ax.set_ylim(bottom=floor)
        ax.set(xlim=(0, 1), xlabel="p = P(b = 1)", ylabel="per-sample variance\n(variance × n)")
        ax.set_title(f"{problem} · ∂/∂{group.param.iloc[0]}   "
                     f"(n = {int(group.n_samples.iloc[0]):,})", fontsize="medium")
    figures.legend(fig, {n: colours[n] for n in names},
                   [Line2D([], [], color="0.3", label="exact"),
                    Line2D([], [], color="0.3", marker="o", linestyle="none",
                           label="measured ± 95% CI"),
                    Line2D([], [], color="0.3", marker="v", linestyle="none",
                           label="exact zero (drawn at the floor)")])
    return fig


# -- variance along the warm-up of learned estimators --------------------------------------

@functools.lru_cache(maxsize=None)
def _learner(label: str) -> str | None:
    """A learned estimator's label without its own warm-up count; None when stateless."""
    try:
        estimator = E.get_estimator(label)
    except (ValueError, TypeError):
        return None
    return estimator.with_warmup(None).label if estimator.stateful else None


def warmup_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the variance-along-warm-up figure, one per cell: learned estimators at
    their largest n_samples, at settings (problem, θ) where the table has them at two or
    more warm-up counts (``state_updates``), with ``learner`` (the label without the
    count) and the per-sample variance (variance × n_samples) and its CI, means over the
    cell's components."""
    data = at_largest_n(finite_cells(frame))
    data = data[~data.deterministic]
    learner = pd.Series([_learner(label) for label in data.estimator], index=data.index,
                        dtype=object)
    data = data[learner.notna().to_numpy()].assign(learner=learner[learner.notna()])
    if data.empty:
        return data.assign(per_sample=[], low=[], high=[])
    cells = (data.assign(per_sample=data.variance * data.n_samples,
                         low=data.variance_ci_low * data.n_samples,
                         high=data.variance_ci_high * data.n_samples)
             .groupby(["problem", "theta_label", "learner", "state_updates", "estimator"],
                      sort=False)[["per_sample", "low", "high"]].mean().reset_index())
    counts = cells.groupby(["problem", "theta_label", "learner"]).state_updates.transform(
        "nunique")
    return cells[counts >= 2].reset_index(drop=True)


def variance_along_warmup(frame, colours):
    points = warmup_points(frame)
    if points.empty:
        return None
    points = points.assign(panel=points.problem + " · " + points.theta_label)
    panels = list(dict.fromkeys(points.panel))
    fig, axes = figures.facets(panels, 2, "Per-sample variance of learned estimators against "
                                          "the state updates before they are measured "
                                          "(warm-up); log scales, 95% CI")
    learners = list(dict.fromkeys(points.learner))
    palette = {name: colours.get(name) or colours[points[points.learner == name].estimator
                                                  .iloc[0]] for name in learners}
    for panel, ax in axes.items():
        group = points[points.panel == panel]
        ax.set_yscale("log")
        ax.set_xscale("symlog", linthresh=1.0)
        # One line per learner (its label without the count), not per estimator label.
        figures._errorbars(ax, group.assign(estimator=group.learner), "state_updates",
                           "per_sample", "low", "high", palette, step=0.0)
        ax.set(xlabel="state updates before measuring (warm-up batches)",
               ylabel="per-sample variance\n(variance × n)")
        ax.set_title(panel, fontsize="medium")
    figures.legend(fig, palette)
    return fig


# -- bias against temperature -------------------------------------------------------------

def temperature_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Measured rows of the bias-vs-temperature figure: at each (problem, θ), the
    estimators with a ``temperature`` setting measured at two temperatures or more, with
    ``identity`` and ``temperature`` added."""
    data = at_largest_n(finite_cells(frame))
    if data.empty:
        return data.assign(identity=[], temperature=[])
    data = data[data.temperature.notna().to_numpy()].assign(
        identity=lambda d: d.estimator_identity)
    swept = data.groupby(["problem", "setting", "param", "identity"]).temperature \
        .transform("nunique") >= 2
    return data[swept]


def temperature_curves(frame: pd.DataFrame, points: int = 25) -> pd.DataFrame:
    """Exact bias (exact mean − true gradient) along the temperature, for every series of
    :func:`temperature_points` of a scalar parameter: ``points`` temperatures evenly spaced
    on a log scale between the measured ends, and the measured ones.

    Returns columns problem, setting, param, identity, temperature, exact_bias.
    """
    measured = temperature_points(frame)
    rows = []
    keys = ["problem", "setting", "param", "identity"]
    for (problem_name, setting, param, identity), group in measured.groupby(keys, sort=False):
        if group.components.iloc[0] != 1:  # a block's bias is its worst component's
            continue
        name, kwargs = _cell_problem(group)
        problem = _problem(name, kwargs)
        theta = cell_theta(frame, group.cell.iloc[0])  # None: a block of several components
        if problem is None or theta is None:
            continue
        index = list(problem.param_blocks).index(param)
        temperatures = group.temperature.to_numpy(float)
        axis = np.union1d(np.geomspace(temperatures.min(), temperatures.max(), points),
                          temperatures)
        batch = int(group.batch_size.iloc[0])
        for temperature in axis:
            label = E.get_estimator(identity, temperature=float(temperature)).label
            bias = _exact_bias(name, kwargs, label, tuple(theta.tolist()), batch)
            if bias is None:
                break
            rows.append({"problem": problem_name, "setting": setting, "param": param,
                         "identity": identity, "temperature": float(temperature),
                         "exact_bias": float(bias[index])})
    return pd.DataFrame(rows, columns=["problem", "setting", "param", "identity",
                                       "temperature", "exact_bias"])


def bias_vs_temperature(frame, colours):
    measured = temperature_points(frame)
    if measured.empty:
        return None
    curves = temperature_curves(frame)
    measured = measured.assign(panel_key=measured.problem + "\0" + measured.setting + "\0"
                               + measured.param)
    panels = list(dict.fromkeys(measured.sort_values("panel_rank", kind="stable").panel_key))
    fig, axes = figures.facets(panels, 2, "Bias against temperature: measured (points, "
                                          "±2 SE) and exact (lines)")
    identities = list(dict.fromkeys(measured.sort_values("identity").identity))
    shown = {}
    for key, ax in axes.items():
        group = measured[measured.panel_key == key]
        problem_name, setting, param = key.split("\0")
        lines = curves[(curves.problem == problem_name) & (curves.setting == setting)
                       & (curves.param == param)]
        for offset, identity in enumerate(identities):
            rows = group[group.identity == identity].sort_values("temperature")
            if rows.empty:
                continue
            colour = colours.get(identity, colours[rows.estimator.iloc[0]])
            shown[identity] = colour
            curve = lines[lines.identity == identity]
            ax.plot(curve.temperature, curve.exact_bias, color=colour, linewidth=1.3)
            xs = figures._dodge(rows.temperature.to_numpy(float), offset, len(identities), True)
            ax.errorbar(xs, rows.bias, yerr=2 * rows.bias_se.fillna(0), color=colour,
                        marker="o", markersize=4, capsize=2.5, linestyle="none", elinewidth=1)
        ax.axhline(0.0, color="0.3", linewidth=0.8)
        ax.set(xscale="log", xlabel="temperature", ylabel="bias (mean − exact gradient)")
        ticks = np.unique(group.temperature)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        p = _cell_probability(group.problem_family.iloc[0], group.problem_args.iloc[0],
                              group.theta.iloc[0])
        where = group.theta_label.iloc[0] + (f" (p = {p:.3g})" if p is not None else "")
        ax.set_title(f"{problem_name} · ∂/∂{param}\nat {where}   "
                     f"(n = {int(group.n_samples.iloc[0]):,})", fontsize="medium")
    figures.legend(fig, shown, [Line2D([], [], color="0.3", label="exact bias"),
                                Line2D([], [], color="0.3", marker="o", linestyle="none",
                                       label="measured ± 2 SE")])
    return fig


# -- variance × evaluations of f ----------------------------------------------------------

def f_eval_efficiency(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem measured with an estimator for discrete latents (``DISCRETE_IDENTITIES``),
    at its largest n_samples, every estimator measured at all of the problem's settings:
    the mean over the settings (and components) of variance × f evaluations per estimate,
    with the same mean of its 95% CI bounds. For a family swept in dimension, only its
    largest problem. Ranked as the efficiency figure ranks (ties with the best =1; biased
    estimators, measured or by construction, not ranked).

    Returns columns problem, problem_family, estimator, f_per_sample, n_samples,
    variance_x_f_evals, low, high, biased, rank, note.
    """
    data = at_largest_n(frame)
    discrete = data.groupby("problem").estimator_identity.transform(
        lambda identities: bool(set(identities) & set(DISCRETE_IDENTITIES)))
    data = data[discrete.astype(bool)]
    if data.empty:
        return pd.DataFrame(columns=["problem", "problem_family", "estimator", "f_per_sample",
                                     "n_samples", "variance_x_f_evals", "low", "high",
                                     "biased", "rank", "note"])
    largest = data.groupby("problem_family").event_size.transform("max")
    data = data[data.event_size == largest]
    settings = data.groupby("problem").setting.transform("nunique")
    complete = data.groupby(["problem", "estimator"]).setting.transform("nunique") == settings
    data = data[complete]
    cost = data.f_evals_per_estimate
    data = data.assign(efficiency=data.variance * cost, efficiency_low=data.variance_ci_low * cost,
                       efficiency_high=data.variance_ci_high * cost)
    table = data.groupby(["problem", "estimator"], sort=False, as_index=False).agg(
        problem_family=("problem_family", "first"), n_samples=("n_samples", "first"),
        f_evals=("f_evals_per_estimate", "first"), variance_x_time=("efficiency", "mean"),
        efficiency_low=("efficiency_low", "mean"), efficiency_high=("efficiency_high", "mean"),
        biased=("biased", "any"), bias_reason=("bias_reason", metrics.main_reason),
        nonfinite=("nonfinite", "any"))
    table["f_per_sample"] = table.f_evals / table.n_samples
    table["note"] = np.where(table.nonfinite, "not ranked: non-finite estimates", "")
    table.loc[table.nonfinite, ["variance_x_time", "efficiency_low", "efficiency_high"]] = np.nan
    table["efficiency_rank"] = NOT_RANKED
    for _, group in table[~table.nonfinite].groupby("problem", sort=False):
        rank_efficiency(table, group)
    table["note"] = table.note.str.replace("variance × time", "variance × f evaluations")
    table = table.rename(columns={"variance_x_time": "variance_x_f_evals",
                                  "efficiency_low": "low", "efficiency_high": "high",
                                  "efficiency_rank": "rank"})
    return table[["problem", "problem_family", "estimator", "f_per_sample", "n_samples",
                  "variance_x_f_evals", "low", "high", "biased", "rank", "note"]]


def efficiency_per_f_eval(frame, colours):
    table = f_eval_efficiency(frame)
    drawn = np.isfinite(table.variance_x_f_evals.astype(float)) & (table.variance_x_f_evals > 0)
    problems = [p for p in dict.fromkeys(table.problem) if drawn[table.problem == p].any()]
    if not problems:
        return None
    fig, axes = figures.facets(problems, 2, "Variance × evaluations of f per estimate (lower "
                                            "is better): the variance at a cost of one "
                                            "evaluation of f\nranked; =1: tied with the best; "
                                            "hatched: biased, not ranked", panel_width=6.6)
    for problem, ax in axes.items():
        group = table[table.problem == problem]
        shown = group.estimator + " · " + group.f_per_sample.map(lambda k: f"{k:g}") + " f"
        named = {s: colours[e] for s, e in zip(shown, group.estimator)}
        # The efficiency figure's panel, on this table's columns.
        panel = group.assign(estimator=shown, variance_x_time=group.variance_x_f_evals,
                             efficiency_low=group.low, efficiency_high=group.high,
                             efficiency_rank=group["rank"])
        figures._efficiency_panel(ax, panel, drawn, named)
        ax.set(xlabel="variance × f evaluations per estimate",
               title=f"{problem}   (n = {int(group.n_samples.iloc[0]):,})")
    return fig


# -- tables -------------------------------------------------------------------------------

def tables(frame: pd.DataFrame) -> list[tuple[str, str, str, pd.DataFrame]]:
    """The report's tables of the figures above, as (name, title, caption, table); none
    when the table has no data for them."""
    out = []
    points = probability_points(frame)
    if not points.empty:
        curves = probability_curves(frame)
        exact_at = curves.assign(exact=curves.exact_per_sample_variance.where(~curves.zero, 0.0)) \
            .set_index(["problem", "estimator", "theta"]).exact
        cells = []
        for row in points.itertuples():
            value = exact_at.get((row.problem, row.estimator, row.theta), np.nan)
            cells.append({"problem": row.problem, "estimator": row.estimator,
                          "p": f"{row.p:.3g}",
                          "value": f"{row.per_sample_variance:.3g} ({value:.3g})"})
        table = pd.DataFrame(cells)
        order = sorted(table.p.unique(), key=float)
        table = table.pivot_table(index=["problem", "estimator"], columns="p", values="value",
                                  aggfunc="first", sort=False)[order].reset_index()
        table.columns = ["problem", "estimator"] + [f"p = {p}" for p in order]
        out.append(("variance_at_p", "Per-sample variance against p: measured (exact)",
                    "The points and lines of 'Variance against the Bernoulli probability': "
                    "measured per-sample variance (variance × n_samples) at each p, and in "
                    "brackets the exact one (0: exactly zero; a measured value there is "
                    "float32 rounding).", table))
    measured = temperature_points(frame)
    if not measured.empty:
        table = measured.merge(temperature_curves(frame), how="left",
                               on=["problem", "setting", "param", "identity", "temperature"])
        table = table.sort_values(["problem", "setting", "identity", "temperature"],
                                  kind="stable")
        table = pd.DataFrame({
            "problem": table.problem, "θ": table.theta_label, "param": table.param,
            "estimator": table.identity, "temperature": table.temperature,
            "bias": table.bias, "bias_se": table.bias_se, "exact_bias": table.exact_bias,
            "bias / SE": table.bias / table.bias_se,
            "(bias − exact) / SE": (table.bias - table.exact_bias) / table.bias_se})
        out.append(("bias_at_temperature", "Bias against temperature: measured and exact",
                    "The points and lines of 'Bias against temperature': measured bias with "
                    "its standard error, the exact bias (exact mean − exact gradient), and "
                    "the measured bias from zero and from the exact bias in standard errors.",
                    table.reset_index(drop=True)))
    efficiency = f_eval_efficiency(frame)
    if len(efficiency):
        out.append(("efficiency_per_f_eval_table", "Efficiency per evaluation of f",
                    "The bars of 'Efficiency per evaluation of f': per problem, variance × f "
                    "evaluations per estimate (mean over the settings), its 95% interval, the "
                    "evaluations of f per sample, and the rank among unbiased estimators.",
                    efficiency.drop(columns=["problem_family"])))
    return out

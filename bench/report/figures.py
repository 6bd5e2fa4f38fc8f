"""The report's figures, one function each: prepared results table -> matplotlib Figure.

Every function takes the table from :func:`bench.report.data.prepare` and returns a
figure, or None when the table has nothing to show for it (a grid with one n_samples has
no variance-vs-n figure). Panels are "problem family · ∂/∂parameter"; colours are fixed
per estimator across figures; log axes drop non-positive values (deterministic
estimators have zero variance), which each caption says. Cells with non-finite estimates
are never drawn (:func:`bench.report.data.finite_cells`): their statistics are NaN, or, in
older tables, those of the finite rest; the efficiency figure names them as not ranked.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI machines

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

import estimators as E  # noqa: E402
from bench.report.data import at_largest_n, finite_cells, middle_setting  # noqa: E402
from bench.report.page import FIGURE_AREA_PX  # noqa: E402
from bench.report.tables import NOT_RANKED, ranking  # noqa: E402

PANEL_WIDTH, PANEL_HEIGHT = 4.6, 3.3
DPI = 100
"""Pixels per inch of the report's PNG files."""
MAX_WIDTH = FIGURE_AREA_PX / DPI
"""Inches: the widest figure the page shows at its own size in a 1,500-px window."""
LABEL_CHAR_WIDTH = 0.075
"""Inches per character of a tick label at the report's font size (0.072 measured)."""


def theme() -> None:
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.85)


def palette(estimators: list[str]) -> dict[str, tuple]:
    """A colour per estimator label. Labels that differ only in an identity's own settings
    (``gumbel_softmax``, ``gumbel_softmax(temperature=0.1)``, …) share a hue: the
    default settings get the hue itself, smaller values lighter shades, larger ones darker;
    so a temperature sweep does not use up (and repeat) the ten distinct colours."""
    groups: dict[str, list[str]] = {}
    for name in estimators:
        groups.setdefault(_base_label(name), []).append(name)
    if len(groups) == len(estimators):
        colours = sns.color_palette("tab10", max(len(estimators), 3))
        return dict(zip(estimators, colours))
    shaded = {}
    for (base, members), colour in zip(groups.items(),
                                       sns.color_palette("tab10", max(len(groups), 3))):
        shaded.update(_shades(base, members, colour))
    return {name: shaded[name] for name in estimators}


def _base_label(label: str) -> str:
    """The label at the identity's default settings (itself when it has none or is unknown)."""
    try:
        estimator = E.get_estimator(label)
    except (ValueError, TypeError):
        return label
    return dataclasses.replace(estimator, settings=()).label


def _settings(label: str) -> tuple:
    try:
        return tuple(value for _, value in E.get_estimator(label).settings)
    except (ValueError, TypeError):
        return ()


def _shades(base: str, members: list[str], colour) -> dict[str, tuple]:
    """Lighter shades of ``colour`` below the default settings, darker above."""
    default = _settings(base)
    ordered = sorted(members, key=_settings)
    anchor = sum(_settings(m) < default for m in ordered)  # where the default sits
    rgb = np.asarray(colour, dtype=float)
    shades = {}
    for index, name in enumerate(ordered):
        if name == base:
            shades[name] = tuple(rgb)
            continue
        steps = index - anchor + (index >= anchor and base not in members)
        amount = min(0.22 * abs(steps), 0.66)
        target = np.ones(3) if steps < 0 else np.zeros(3)
        shades[name] = tuple(rgb + (target - rgb) * amount)
    return shades


def facets(panels: list[str], ncols: int, suptitle: str, panel_width: float = PANEL_WIDTH):
    """A figure with one axes per panel, no empty axes; returns (fig, {panel: ax}). The
    title is wrapped to the figure's width.

    At most ``ncols`` columns of ``panel_width`` inches, fewer where they would make the
    figure wider than ``MAX_WIDTH``: the page would shrink it, or constrained layout would
    squeeze the panels until the last column ran off the figure's edge.
    """
    ncols = max(1, min(ncols, len(panels), int(MAX_WIDTH // panel_width)))
    nrows = math.ceil(len(panels) / ncols)
    if ncols == 1:  # room for the title, and for a legend of two columns below one panel
        panel_width = max(panel_width, 6.4)
    size = (min(panel_width * ncols, MAX_WIDTH), PANEL_HEIGHT * nrows + 0.9)
    fig, axes = plt.subplots(nrows, ncols, figsize=size,
                             squeeze=False, layout="constrained")
    for ax in axes.flat[len(panels):]:
        ax.remove()
    width = max(40, int(fig.get_figwidth() * 10.5))  # characters of the large font per line
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in suptitle.split("\n")),
                 fontsize="large")
    return fig, dict(zip(panels, axes.flat))


def legend(fig, colours: dict, extra: list[Line2D] = ()) -> None:
    handles = [Line2D([], [], color=c, marker="o", label=name) for name, c in colours.items()]
    handles += list(extra)
    # As many columns as fit the figure's width (estimator names are long): about 0.075 in
    # per character of the longest label at the legend's font size, plus the marker.
    longest = max((len(h.get_label()) for h in handles), default=20)
    fit = max(1, int(fig.get_figwidth() // max(2.6, 0.6 + 0.075 * longest)))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), fit),
               frameon=False)


def bar_panel_width(labels, bars: float = 3.0) -> float:
    """Inches for a panel of horizontal bars with tick labels ``labels`` (lines split at
    newlines): the longest line, and ``bars`` for the bars and their value labels."""
    longest = max((len(line) for label in labels for line in str(label).split("\n")),
                  default=0)
    return max(PANEL_WIDTH, LABEL_CHAR_WIDTH * longest + bars)


def panel_columns(frame: pd.DataFrame) -> int:
    """Parameters per family (≤ 3): mean and std side by side, as in Mohamed et al."""
    per_family = frame.groupby("problem_family").param.nunique()
    return int(min(max(per_family.max(), 2), 3))


def _panels(data: pd.DataFrame, suptitle: str):
    """One axes per panel of ``data``: returns (fig, [(panel, ax, rows of that panel)])."""
    panels = list(dict.fromkeys(data.sort_values("panel_rank", kind="stable").panel))
    fig, axes = facets(panels, panel_columns(data), suptitle)
    return fig, [(panel, ax, data[data.panel == panel]) for panel, ax in axes.items()]


def _axis_labels(ax, group: pd.DataFrame, ylabel: str) -> None:
    sweep = group.sweep.iloc[0]
    ax.set_xlabel(sweep)
    ax.set_ylabel(ylabel)
    if group.categorical.iloc[0]:
        labels = group.drop_duplicates("x").sort_values("x")
        ax.set_xticks(labels.x, labels.setting, rotation=20, fontsize="small")
    elif group.x.nunique() == 1:  # one setting: its value, with the dodged points around it
        x = float(group.x.iloc[0])
        ax.set_xticks([x], [f"{x:g}"])
        ax.set_xlim(x - 0.12, x + 0.12)
    elif _log_x(group.x):
        ax.set_xscale("log")


def _log_x(values) -> bool:
    values = np.asarray(values, dtype=float)
    return bool(values.min() > 0 and values.max() / values.min() >= 20)


def _dodge(x: np.ndarray, index: int, count: int, log: bool, step: float = 0.012) -> np.ndarray:
    """Shifts an estimator's points sideways so error bars of equal x do not overlap: by
    ``step`` of the axis span per estimator, all of them within ±4% of it."""
    if count < 2 or x.size == 0:
        return x
    offset = (index - (count - 1) / 2) * min(step, 0.08 / (count - 1))
    if log:
        return x * np.exp(offset * max(np.log(x.max() / x.min()), 1.0))
    span = x.max() - x.min() or 1.0
    return x + offset * span


def _errorbars(ax, group, x, y, low, high, colours, log_x=False, connect=True, step=0.012):
    names = [n for n in colours if n in set(group.estimator)]
    for index, name in enumerate(names):
        rows = group[group.estimator == name].sort_values(x)
        keep = (rows[y] > 0) if ax.get_yscale() == "log" else np.isfinite(rows[y])
        rows = rows[keep]
        if rows.empty:
            continue
        xs = _dodge(rows[x].to_numpy(float), index, len(names), log_x, step)
        values = rows[y].to_numpy(float)
        yerr = np.vstack([values - rows[low].to_numpy(float), rows[high].to_numpy(float) - values])
        ax.errorbar(xs, values, yerr=np.clip(yerr, 0, None), color=colours[name], marker="o",
                    markersize=4, capsize=2.5, linewidth=1.2 if connect else 0,
                    elinewidth=1, label=name)


def variance_vs_theta(frame, colours):
    frame = finite_cells(frame)
    data = at_largest_n(frame[~frame.deterministic])
    if data.empty:
        return None
    fig, panels = _panels(data, "Variance of the gradient estimate across each problem's sweep "
                                "(log scale; bars: 95% CI)")
    for panel, ax, group in panels:
        ax.set_yscale("log")
        _errorbars(ax, group, "x", "variance", "variance_ci_low", "variance_ci_high", colours,
                   log_x=_log_x(group.x))
        _axis_labels(ax, group, "variance")
        ax.set_title(f"{panel}   (n = {int(group.n_samples.iloc[0]):,})", fontsize="medium")
    legend(fig, {k: v for k, v in colours.items() if k in set(data.estimator)})
    return fig


def variance_vs_n(frame, colours):
    frame = finite_cells(frame)
    data = middle_setting(frame[~frame.deterministic & (frame.batch_size == frame.n_samples)])
    if data.empty or data.n_samples.nunique() < 2:
        return None
    fig, panels = _panels(data, "Variance vs n_samples (log-log, one batch) at the middle of each "
                                "sweep; dashed: slope 1/n")
    for panel, ax, group in panels:
        ax.set_xscale("log")
        ax.set_yscale("log")
        _errorbars(ax, group, "n_samples", "variance", "variance_ci_low", "variance_ci_high",
                   colours, log_x=True)
        positive = group[group.variance > 0]
        if not positive.empty:
            level = float(np.median(positive.variance * positive.n_samples))
            ns = np.array([group.n_samples.min(), group.n_samples.max()], dtype=float)
            ax.plot(ns, level / ns, color="0.45", linestyle="--", linewidth=1)
        ax.set_xlabel("n_samples")
        ax.set_ylabel("variance")
        row = group.iloc[0]
        ax.set_title(f"{panel}   ({row.sweep} = {_setting(row)})", fontsize="medium")
    legend(fig, {k: v for k, v in colours.items() if k in set(data.estimator)},
           [Line2D([], [], color="0.45", linestyle="--", label="∝ 1/n")])
    return fig


def variance_vs_dimension(frame, colours):
    """Per-sample variance against the event dimension D, for families whose grid sweeps
    it: the mean over each block's components (points, mean of their 95% CI bounds) and
    the largest component (dotted)."""
    frame = finite_cells(frame)
    data = at_largest_n(frame[~frame.deterministic])
    families = [f for f, g in data.groupby("problem_family", sort=False)
                if g.event_size.nunique() > 1]
    data = data[data.problem_family.isin(families)]
    if data.empty:
        return None
    data = data.assign(low=data.variance_ci_low * data.n_samples,
                       high=data.variance_ci_high * data.n_samples,
                       largest=data.variance_max * data.n_samples)
    fig, panels = _panels(data, "Per-sample variance vs dimension D (log-log; dotted: the "
                                "largest component)")
    for panel, ax, group in panels:
        ax.set_xscale("log")
        ax.set_yscale("log")
        _errorbars(ax, group, "event_size", "per_sample_variance", "low", "high", colours,
                   log_x=True)
        for name, rows in group.groupby("estimator"):
            rows = rows.sort_values("event_size")
            ax.plot(rows.event_size, rows.largest, color=colours[name], linestyle=":",
                    linewidth=1)
        ax.set(xlabel="dimension D", ylabel="per-sample variance\n(variance × n)")
        ax.set_title(f"{panel}   (n = {int(group.n_samples.iloc[0]):,})", fontsize="medium")
    legend(fig, {k: v for k, v in colours.items() if k in set(data.estimator)},
           [Line2D([], [], color="0.3", linestyle=":", label="largest component")])
    return fig


def _setting(row) -> str:
    return row.setting if row.categorical else f"{row.x:g}"


def bias_vs_theta(frame, colours):
    data = at_largest_n(finite_cells(frame))
    if data.empty:
        return None
    fig, panels = _panels(data, "Bias (mean estimate − true gradient) with ±2 SE bands")
    for panel, ax, group in panels:
        log_x = _log_x(group.x) and not group.categorical.iloc[0]
        names = [n for n in colours if n in set(group.estimator)]
        for index, name in enumerate(names):
            rows = group[group.estimator == name].sort_values("x")
            xs = _dodge(rows.x.to_numpy(float), index, len(names), log_x)
            bias, band = rows.bias.to_numpy(float), 2 * rows.bias_se.fillna(0).to_numpy(float)
            if len(xs) == 1:  # a band needs two points: a bar instead
                ax.errorbar(xs, bias, yerr=band, color=colours[name], marker="o",
                            markersize=4, capsize=2.5, elinewidth=1)
                continue
            ax.plot(xs, bias, color=colours[name], marker="o", markersize=4, linewidth=1.2)
            ax.fill_between(xs, bias - band, bias + band, color=colours[name], alpha=0.18,
                            linewidth=0)
        ax.axhline(0.0, color="0.3", linewidth=0.8)
        _axis_labels(ax, group, "bias")
        biased = biased_names(group[group.biased].estimator.unique())
        title = f"{panel}   (n = {int(group.n_samples.iloc[0]):,})"
        if biased:  # named under the title, in red, where no data can hide it
            text = textwrap.fill("biased: " + ", ".join(biased), 62)
            title += "\n" * (text.count("\n") + 1)
            ax.text(0.5, 1.0, text, transform=ax.transAxes, ha="center", va="bottom",
                    fontsize="small", color="firebrick", linespacing=1.5)
        ax.set_title(title, fontsize="medium")
    legend(fig, {k: v for k, v in colours.items() if k in set(data.estimator)})
    return fig


def biased_names(labels) -> list[str]:
    """Sorted labels, those that differ only in settings named once: "gumbel_softmax
    (5 settings)" for the default and four temperatures."""
    groups: dict[str, list[str]] = {}
    for label in sorted(labels):
        groups.setdefault(_base_label(label), []).append(label)
    # No-break spaces: a wrapped line never splits "gumbel_softmax (5 settings)".
    return [members[0] if len(members) == 1 else f"{base}\u00a0({len(members)}\u00a0settings)"
            for base, members in groups.items()]


def _per_cell(frame):
    """One row per cell (timing is per cell, not per gradient component)."""
    return frame.drop_duplicates("cell")


def _timing(data, axis: str, families: list[str], suptitle: str, xlabel: str, colours):
    """Median seconds per estimate against ``axis``, one panel per family, log-log."""
    data = data.groupby(["problem_family", "estimator", axis], as_index=False,
                        sort=False).time_per_estimate_s.median()
    fig, axes = facets(families, 3, suptitle)
    for family, ax in axes.items():
        group = data[data.problem_family == family]
        for name, rows in group.sort_values(axis).groupby("estimator"):
            ax.plot(rows[axis], rows.time_per_estimate_s, marker="o", markersize=4,
                    color=colours[name])
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="seconds per estimate",
               title=family)
    legend(fig, {k: v for k, v in colours.items() if k in set(data.estimator)})
    return fig


def time_vs_n(frame, colours):
    frame = finite_cells(frame)
    data = _per_cell(frame[frame.batch_size == frame.n_samples])
    if data.n_samples.nunique() < 2:
        return None
    return _timing(data, "n_samples", list(dict.fromkeys(data.problem_family)),
                   "Time per estimate vs n_samples (one batch; median over the sweep)",
                   "n_samples", colours)


def time_vs_batch(frame, colours):
    data = _per_cell(at_largest_n_all_batches(finite_cells(frame)))
    families = [f for f, g in data.groupby("problem_family", sort=False)
                if g.batch_size.nunique() > 1]
    if not families:
        return None
    return _timing(data, "batch_size", families, "Time per estimate vs batch size at each "
                   "problem's largest n_samples (median over the sweep)",
                   "batch size (samples per batch)", colours)


def at_largest_n_all_batches(frame):
    parts = [g[g.n_samples == g.n_samples.max()]
             for _, g in frame.groupby("problem_family", sort=False)]
    return pd.concat(parts) if parts else frame


def efficiency(frame, colours):
    """The ranking's variance × time with its interval, per family: ranked estimators
    best first (labelled by rank, "=1" for ties with the best), then, apart, the biased
    ones (hatched, unranked) and those with non-finite estimates (named, not drawn)."""
    table = ranking(frame)
    drawn = np.isfinite(table.variance_x_time) & (table.variance_x_time > 0)
    families = [f for f in dict.fromkeys(frame.problem_family)
                if drawn[table.problem_family == f].any()]
    if not families:
        return None
    # Labels like "=1 score_function(control_variate=batch_optimal)": three such panels
    # are wider than the page, so fewer columns of panels wide enough for them.
    width = bar_panel_width(f"=10 {name}" for name in table.estimator)
    fig, axes = facets(families, 3, "Efficiency: variance × time per estimate (lower is "
                                    "better), with intervals\nranked; =1: tied with the best; "
                                    "hatched: biased, not ranked", panel_width=width)
    for family, ax in axes.items():
        _efficiency_panel(ax, table[table.problem_family == family], drawn, colours)
    return fig


def _efficiency_panel(ax, group, drawn, colours) -> None:
    group = group.sort_values("variance_x_time", kind="stable")
    ranked = group[group.efficiency_rank != NOT_RANKED]
    biased = group[drawn.loc[group.index] & group.biased.fillna(False).astype(bool)]
    excluded = group[group.note.str.startswith("not ranked")]
    bars = pd.concat([ranked, biased])
    gap = int(not biased.empty)  # a row for the biased group's heading
    positions = np.arange(len(bars)) + gap * (np.arange(len(bars)) >= len(ranked))
    values = bars.variance_x_time.to_numpy(float)
    lows = bars.efficiency_low.to_numpy(float)
    highs = np.fmax(bars.efficiency_high.to_numpy(float), values)
    # Bars from a whole decade below the lowest interval end, on whole decades, so lengths
    # compare on the log scale and the axis has labelled major ticks only.
    floor = 10.0 ** (np.floor(np.log10(np.nanmin(np.where(lows > 0, lows, values)))) - 1)
    ceiling = 10.0 ** np.ceil(np.log10(np.nanmax(highs)) + 0.4)
    ax.barh(positions, values - floor, left=floor, color=[colours[n] for n in bars.estimator],
            hatch=["//" if i >= len(ranked) else "" for i in range(len(bars))],
            edgecolor="0.25", linewidth=0.5)
    ax.errorbar(values, positions, xerr=np.clip([values - lows, highs - values], 0, None),
                fmt="none", ecolor="0.15", elinewidth=1, capsize=3)
    for position, value, high in zip(positions, values, highs):
        ax.text(high * 1.15, position, f"{value:.2g}", va="center", fontsize="small")
    side = ax.get_yaxis_transform()  # x in axes fractions, y in data
    labels = [f"{rank} {name}" for rank, name in zip(ranked.efficiency_rank, ranked.estimator)]
    if gap:
        labels += [""] + list(biased.estimator)
        ax.text(0.01, len(ranked), "biased, not ranked:",
                transform=side, va="center", fontsize="small", color="firebrick")
    for name, note in zip(excluded.estimator, excluded.note):
        ax.text(0.01, len(labels), note.split(" (at ")[0], transform=side, va="center", fontsize="small",
                color="0.3")
        labels.append(name)
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # best on top
    ax.set(xscale="log", xlim=(floor, ceiling), xlabel="variance × seconds per estimate",
           title=f"{group.problem_family.iloc[0]}   (n = {int(group.n_samples.iloc[0]):,})")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(axis="y", visible=False)


def exact_per_sample_variance(frame, exact, colours):
    frame = finite_cells(frame)
    if exact.empty or frame.empty:
        return None
    data = at_largest_n(frame[~frame.deterministic])
    zero = exact[exact.zero & exact.measured][["problem_family", "sweep_group", "estimator",
                                               "param", "x"]]
    data = data.merge(zero, how="left", indicator=True)
    data = data[data.pop("_merge") == "left_only"]  # rounding noise where exact is zero
    # Zero up to rounding has no place on a log axis: the line breaks there.
    exact = exact.assign(exact_per_sample_variance=exact.exact_per_sample_variance
                         .where(~exact.zero))
    exact_panels = exact.sweep_group + " · ∂/∂" + exact.param
    panels = [p for p in dict.fromkeys(data.sort_values("panel_rank", kind="stable").panel)
              if ((exact_panels == p) & ~exact.zero).any()]
    if not panels:
        return None
    fig, axes = facets(panels, panel_columns(data),
                       "Per-sample variance: exact by quadrature (lines) and measured "
                       "(points, 95% CI)")
    for panel, ax in axes.items():
        group = data[data.panel == panel]
        lines = exact[exact_panels == panel]
        ax.set_yscale("log")
        log_x = _log_x(group.x)
        names = [n for n in colours if n in set(lines[~lines.zero].estimator)]
        for name in names:
            curve = lines[lines.estimator == name].sort_values("x")
            ax.plot(curve.x, curve.exact_per_sample_variance, color=colours[name], linewidth=1.4,
                    marker="_" if curve.exact_per_sample_variance.notna().sum() == 1 else None,
                    markersize=18)
        points = group[group.estimator.isin(names)].assign(
            low=group.variance_ci_low * group.n_samples, high=group.variance_ci_high * group.n_samples)
        _errorbars(ax, points, "x", "per_sample_variance", "low", "high",
                   {n: colours[n] for n in names}, log_x=log_x, connect=False)
        _axis_labels(ax, group, "per-sample variance\n(variance × n)")
        ax.set_title(f"{panel}   (n = {int(group.n_samples.iloc[0]):,})", fontsize="medium")
    legend(fig, {k: v for k, v in colours.items() if k in set(exact[~exact.zero].estimator)},
           [Line2D([], [], color="0.3", label="exact (quadrature)"),
            Line2D([], [], color="0.3", marker="o", linestyle="none", label="measured ± 95% CI")])
    return fig

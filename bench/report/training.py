"""Figures and tables of training runs (a grid with a ``[training]`` table, bench/training.py).

A training run trains θ of a problem from a starting θ with one estimator and measures
every listed estimator at θ of each checkpoint: its table has a ``step`` column, its
cell keys end with the step (the key's θ is the run's start), and its metadata keeps the
settings (``training``) and each run's log (``trajectories``). Each figure is None for
other tables, so their reports do not change:

* :func:`variance_vs_step`: the variance of each estimator along training, one row of
  panels per run and one panel per parameter block (Mohamed et al. 2020, §8: Bayesian
  logistic regression);
* :func:`training_log`: the objective J(θ) with ±2 standard errors and the problem's
  diagnostics (accuracy) against the step, from ``metadata["trajectories"]``; it is called
  with the metadata: ``training_log(prepared, colours, meta)``;
* :func:`time_per_estimate`: the median time per estimate over the checkpoints, with the
  evaluations of f per estimate (measure-valued: 3D + 1 per sample).

:func:`tables` gives the variance along training per block (estimators × checkpoints) and
the runs' summary. The data functions return plain tables (:func:`step_variances`), so
tests can compare them with the raw results.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.report import figures
from bench.training import LOG_KEYS  # the log's own columns; the rest are diagnostics
from bench.report.data import at_largest_n, finite_cells, training_runs



def is_training(frame: pd.DataFrame) -> bool:
    """True for the (raw or prepared) table of a training run."""
    return "step" in frame.columns and bool(frame["step"].notna().any())


# -- training runs --------------------------------------------------------------------------

def with_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a training table with ``run`` added: the training run (problem and
    starting θ) each belongs to (:func:`bench.report.data.training_runs`), and ``step`` as
    an integer."""
    frame = frame[frame.step.notna()]
    return frame.assign(run=training_runs(frame), step=frame.step.astype(int))


def _runs(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame.sort_values("panel_rank", kind="stable").run)) \
        if "panel_rank" in frame else list(dict.fromkeys(frame.run))


def _blocks(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame.param_block))


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _panel(text: str, ax) -> str:
    """A panel title wrapped to its panel's width (a long problem name would run into the
    next panel's), at about 11 characters of the title's font per inch."""
    inches = ax.get_position().width * ax.figure.get_figwidth()
    return textwrap.fill(text, max(20, int(inches * 11)), break_long_words=False)


def _wrap(text: str, fig) -> str:
    width = max(40, int(fig.get_figwidth() * 10.5))
    return "\n".join(textwrap.fill(line, width) for line in text.split("\n"))


def _grid(rows: int, ncols: int, suptitle: str, panel_width: float = figures.PANEL_WIDTH):
    """A figure of ``rows`` × ``ncols`` axes (a row per training run), at most
    ``figures.MAX_WIDTH`` wide: many blocks make narrower panels, not a figure the page
    shrinks."""
    if ncols == 1:  # room for the title and the legend
        panel_width = max(panel_width, 6.4)
    panel_width = min(panel_width, figures.MAX_WIDTH / ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(panel_width * ncols,
                                                   figures.PANEL_HEIGHT * rows + 1.0),
                             squeeze=False, layout="constrained")
    fig.suptitle(_wrap(suptitle, fig), fontsize="large")
    return fig, axes


# -- variance along training ----------------------------------------------------------------

def step_variances(frame: pd.DataFrame) -> pd.DataFrame:
    """The points of :func:`variance_vs_step`: per run, block, estimator and checkpoint (at
    the problem's largest n_samples and batch size), the mean over the block's components
    of the variance and of its 95% CI bounds; stochastic cells with finite estimates only.

    Returns columns run, param_block, estimator, step, n_samples, components, variance,
    variance_ci_low, variance_ci_high.
    """
    columns = ["run", "param_block", "estimator", "step", "n_samples", "components",
               "variance", "variance_ci_low", "variance_ci_high"]
    if not is_training(frame):
        return pd.DataFrame(columns=columns)
    data = at_largest_n(finite_cells(frame))
    data = data[~data.deterministic & np.isfinite(data.variance) & (data.variance > 0)]
    if data.empty:
        return pd.DataFrame(columns=columns)
    return with_runs(data).sort_values(["step"], kind="stable")[columns].reset_index(drop=True)


def variance_vs_step(frame, colours):
    """Variance along training: a row of panels per training run, a panel per parameter
    block; per estimator the mean over the block's components of the variance (line and
    markers at the checkpoints, log scale) and the mean of their 95% CI bounds (band)."""
    if not is_training(frame):
        return None
    points = step_variances(frame)
    if points.empty:
        return None
    order = with_runs(frame)
    runs = [r for r in _runs(order) if r in set(points.run)]
    blocks = {run: [b for b in _blocks(order[order.run == run]) if
                    ((points.run == run) & (points.param_block == b)).any()] for run in runs}
    ncols = max(len(b) for b in blocks.values())
    fig, axes = _grid(len(runs), ncols, "Variance of each estimator along training (log "
                                        "scale): mean over each block's components; band: "
                                        "mean of their 95% CI bounds")
    for row, run in enumerate(runs):
        for col in range(len(blocks[run]), ncols):
            axes[row, col].remove()
        for col, block in enumerate(blocks[run]):
            ax = axes[row, col]
            group = points[(points.run == run) & (points.param_block == block)]
            ax.set_yscale("log")
            for name in [n for n in colours if n in set(group.estimator)]:
                rows = group[group.estimator == name].sort_values("step")
                steps = rows.step.to_numpy(float)
                values = rows.variance.to_numpy(float)
                low = rows.variance_ci_low.to_numpy(float)
                high = rows.variance_ci_high.to_numpy(float)
                low = np.where(low > 0, low, values / 10)  # a log axis has no room for ≤ 0
                if len(rows) == 1:  # a band needs two checkpoints: a bar instead
                    ax.errorbar(steps, values, yerr=np.clip([values - low, high - values], 0,
                                                            None),
                                color=colours[name], marker="o", markersize=4, capsize=2.5)
                    continue
                ax.plot(steps, values, color=colours[name], marker="o", markersize=4,
                        linewidth=1.3)
                ax.fill_between(steps, low, high, color=colours[name], alpha=0.15,
                                linewidth=0)
            checkpoints = np.unique(group.step)
            positive = checkpoints[checkpoints > 0]
            if len(positive) > 1 and positive.max() / positive.min() >= 20:
                # Checkpoints are usually dense early, where θ moves fast (0, 100, 250, ...,
                # 5000): linear up to the first one, logarithmic after.
                ax.set_xscale("symlog", linthresh=float(positive.min()), linscale=0.6)
            if len(checkpoints) <= 10:
                ax.set_xticks(checkpoints, [f"{s:,}" for s in checkpoints],
                              rotation=45 if len(checkpoints) > 5 else 0, fontsize="small")
                ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            if len(checkpoints) == 1:
                ax.set_xlim(checkpoints[0] - 1, checkpoints[0] + 1)
            components = int(group.components.iloc[0])
            ax.set(xlabel="training step", ylabel="variance" + (
                f"\n(mean over {components} components)" if components > 1 else ""))
            problem, _, start = run.partition(" from ")
            ax.set_title(_panel(f"{problem} · ∂/∂{block}   "
                                f"(n = {int(group.n_samples.iloc[0]):,})", ax)
                         + (f"\n{_short('from ' + start, 60)}" if start else ""),
                         fontsize="medium")
    figures.legend(fig, {k: v for k, v in colours.items() if k in set(points.estimator)},
                   [Patch(color="0.5", alpha=0.3, label="mean of the components' 95% CI "
                                                        "bounds")])
    return fig


# -- training log ---------------------------------------------------------------------------

def diagnostics(log: list[dict]) -> list[str]:
    """The problem-specific columns of a training log (accuracy, ...), numbers only."""
    names = dict.fromkeys(key for row in log for key in row if key not in LOG_KEYS)
    return [name for name in names
            if all(isinstance(row.get(name), (int, float)) and not isinstance(row.get(name), bool)
                   for row in log if name in row)]


def objective_label(settings: dict, log: list[dict]) -> str:
    """The objective's y label: an ELBO when maximizing E[f] − penalty."""
    penalised = any(row.get("penalty", 0) for row in log)
    direction = settings.get("direction")
    if direction == "maximize" and penalised:
        return "objective J(θ) (ELBO)"
    if direction == "maximize":
        return "objective J(θ) = E[f], maximized"
    if direction == "minimize":
        return "objective J(θ), minimized" if penalised else "objective J(θ) = E[f], minimized"
    return "objective J(θ)"


def _trajectory_label(trajectory: dict, several: bool) -> str:
    problem = trajectory.get("problem", "?")
    return f"{problem} from {trajectory.get('theta_label')}" if several else problem


def training_log(frame, colours, meta=None):
    """The training log of each run (a row of panels per run): the objective J(θ) against
    the step with ±2 standard errors (from the logged ``eval_samples`` draws), and each of
    the problem's diagnostics; dotted lines at the checkpoints."""
    meta = meta or {}
    trajectories = [t for t in meta.get("trajectories") or [] if t.get("log")]
    if not is_training(frame) or not trajectories:
        return None
    settings = meta.get("training") or {}
    problems = [t.get("problem") for t in trajectories]
    names = [diagnostics(t["log"]) for t in trajectories]
    ncols = 1 + max(len(n) for n in names)
    colour = colours.get(settings.get("estimator"), (0.2, 0.2, 0.2))
    rate = settings.get("learning_rate")
    fig, axes = _grid(len(trajectories), ncols, (
        f"Training log: objective J(θ) (±2 SE) and diagnostics against the step; "
        f"{settings.get('optimizer', '?')}, learning rate "
        f"{rate if rate is None else f'{rate:g}'} ({settings.get('schedule', '?')}), trained "
        f"with {settings.get('estimator', '?')} at n = {settings.get('n_samples', '?')}"),
        panel_width=figures.PANEL_WIDTH + 0.4)
    checkpoints = [int(s) for s in settings.get("checkpoints") or []]
    for row, (trajectory, diagnostic) in enumerate(zip(trajectories, names)):
        log = pd.DataFrame(trajectory["log"]).sort_values("step", kind="stable")
        several = problems.count(trajectory.get("problem")) > 1
        run = _trajectory_label(trajectory, several)
        for col in range(1 + len(diagnostic), ncols):
            axes[row, col].remove()
        panels = [("objective", objective_label(settings, trajectory["log"]))] \
            + [(name, name) for name in diagnostic]
        for col, (column, label) in enumerate(panels):
            ax = axes[row, col]
            for step in checkpoints:
                ax.axvline(step, color="0.6", linestyle=":", linewidth=0.9)
            rows = log[log[column].notna()] if column in log else log.iloc[:0]
            steps = rows.step.to_numpy(float)
            values = rows[column].to_numpy(float)
            ax.plot(steps, values, color=colour, linewidth=1.3,
                    marker="o" if len(rows) <= 40 else None, markersize=3)
            if column == "objective" and "objective_se" in rows:
                band = 2 * rows.objective_se.fillna(0).to_numpy(float)
                ax.fill_between(steps, values - band, values + band, color=colour, alpha=0.2,
                                linewidth=0)
                _focus(ax, values - band, values + band)
            ax.set(xlabel="training step", ylabel=label)
            problem, _, start = run.partition(" from ")
            ax.set_title(_panel(f"{problem} · {column}", ax)
                         + (f"\n{_short('from ' + start, 60)}" if start else ""),
                         fontsize="medium")
    figures.legend(fig, {}, [
        Line2D([], [], color=colour, label=f"logged value (trained with "
                                            f"{settings.get('estimator', '?')})"),
        Patch(color=colour, alpha=0.3, label="±2 SE of J(θ)"),
        Line2D([], [], color="0.6", linestyle=":", label="checkpoints (estimators measured)")])
    return fig


def _focus(ax, low: np.ndarray, high: np.ndarray) -> None:
    """y limits that show the later, slower part of a curve whose first values are far away
    (an ELBO from the prior falls by orders of magnitude in a few steps): the range of the
    last 90% of the log, widened to include the start when it is not 5× that range away."""
    if len(low) < 10:
        return
    tail = slice(len(low) // 10, None)
    bottom, top = np.nanmin(low[tail]), np.nanmax(high[tail])
    span = top - bottom
    if not np.isfinite(span) or span <= 0:
        return
    if np.nanmin(low) >= bottom - 5 * span and np.nanmax(high) <= top + 5 * span:
        return
    ax.set_ylim(bottom - 0.08 * span, top + 0.08 * span)
    ax.text(0.98, 0.02, "first steps off the scale", transform=ax.transAxes, ha="right",
            va="bottom", fontsize="small", color="0.35")


# -- time per estimate ----------------------------------------------------------------------

def step_times(frame: pd.DataFrame) -> pd.DataFrame:
    """The bars of :func:`time_per_estimate`: per problem and estimator (at its largest
    n_samples and batch size, cells with finite estimates), the median over the
    checkpoints of the time per estimate, the fastest and slowest timed call over them,
    and the evaluations of f per estimate and per sample."""
    columns = ["problem", "estimator", "n_samples", "seconds", "fastest", "slowest",
               "f_evals", "f_per_sample"]
    if not is_training(frame):
        return pd.DataFrame(columns=columns)
    data = at_largest_n(finite_cells(frame)).drop_duplicates("cell")
    if data.empty:
        return pd.DataFrame(columns=columns)
    table = data.groupby(["problem", "estimator"], sort=False, as_index=False).agg(
        n_samples=("n_samples", "first"), seconds=("time_per_estimate_s", "median"),
        fastest=("time_per_estimate_min_s", "min"), slowest=("time_per_estimate_max_s", "max"),
        f_evals=("f_evals_per_estimate", "median"))
    table["f_per_sample"] = table.f_evals / table.n_samples
    return table[columns]


def _seconds(value: float) -> str:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e9:.3g} ns"


def time_per_estimate(frame, colours):
    """Per problem, horizontal bars of the median time per estimate over the checkpoints
    (log scale; bars: fastest to slowest timed call), fastest on top, each labelled with
    its evaluations of f per estimate and per sample."""
    table = step_times(frame)
    table = table[np.isfinite(table.seconds.astype(float)) & (table.seconds > 0)]
    if table.empty:
        return None
    problems = list(dict.fromkeys(table.problem))
    fig, axes = figures.facets(problems, 2, "Time per estimate: median over the checkpoints "
                                            "(log scale; error bars: fastest to slowest timed "
                                            "call), with evaluations of f per estimate",
                               panel_width=7.2)
    for problem, ax in axes.items():
        group = table[table.problem == problem].sort_values("seconds", kind="stable")
        positions = np.arange(len(group))
        values = group.seconds.to_numpy(float)
        fastest = np.fmin(group.fastest.to_numpy(float), values)
        slowest = np.fmax(group.slowest.to_numpy(float), values)
        floor = 10.0 ** (np.floor(np.log10(fastest[fastest > 0].min() if (fastest > 0).any()
                                           else values.min())) - 1)
        ceiling = slowest.max() * 10 ** 0.8  # room for the times
        ax.barh(positions, values - floor, left=floor,
                color=[colours.get(n, "0.5") for n in group.estimator], edgecolor="0.25",
                linewidth=0.5)
        ax.errorbar(values, positions, xerr=np.clip([values - fastest, slowest - values], 0,
                                                    None),
                    fmt="none", ecolor="0.15", elinewidth=1, capsize=3)
        for position, value, high in zip(positions, values, slowest):
            ax.text(high * 1.2, position, _seconds(value), va="center", fontsize="small")
        ax.set_yticks(positions, [f"{name}\n{f_evals:,.0f} f evals ({per_sample:.3g} per sample)"
                                  for name, f_evals, per_sample in
                                  zip(group.estimator, group.f_evals, group.f_per_sample)])
        ax.set_ylim(len(group) - 0.5, -0.5)  # fastest on top
        ax.set(xscale="log", xlim=(floor, ceiling), xlabel="seconds per estimate",
               title=_panel(f"{problem}   (n = {int(group.n_samples.iloc[0]):,})", ax))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(axis="y", visible=False)
    return fig


# -- tables ---------------------------------------------------------------------------------

def _g(value) -> str:
    """3 significant digits; "—" for a missing value."""
    return "—" if value is None or not np.isfinite(value) else f"{value:.3g}"


def _best(rows: pd.DataFrame) -> str:
    """The estimator of ``rows`` (one run, block and checkpoint) with the least variance ×
    time among stochastic ones not flagged biased, and those whose interval (CI low end ×
    fastest call to high end × slowest) overlaps its own; "—" when there is none."""
    eligible = rows[~rows.biased_any & ~rows.deterministic & ~rows.nonfinite
                    & (rows.variance > 0)]
    if eligible.empty:
        return "—"
    efficiency = eligible.variance * eligible.time_per_estimate_s
    low = eligible.variance_ci_low * eligible.time_per_estimate_min_s
    high = eligible.variance_ci_high * eligible.time_per_estimate_max_s
    best = efficiency.idxmin()
    ties = [name for index, name in eligible.estimator.items()
            if index != best and low[index] <= high[best] and low[best] <= high[index]]
    return eligible.estimator[best] + (f" (tied: {', '.join(ties)})" if ties else "")


def variance_table(frame: pd.DataFrame, block: str) -> pd.DataFrame:
    """Variance along training of one parameter block: a row per (run and) estimator, a
    column per checkpoint ("step 0", ...), the mean over the block's components of the
    variance at the problem's largest n_samples (3 significant digits; "—": non-finite
    estimates), ``biased at`` the checkpoints where the estimator is flagged biased (in
    any block)."""
    data = with_runs(at_largest_n(frame))
    flagged = data.groupby(["cell"]).biased.transform("any")
    data = data.assign(biased_any=flagged)[data.param_block == block]
    runs = _runs(data)
    steps = sorted(data.step.unique())
    columns = [f"step {s:,}" for s in steps]
    out = []
    for run in runs:
        group = data[data.run == run]
        for name in dict.fromkeys(sorted(group.estimator)):
            rows = group[group.estimator == name].set_index("step")
            entry = {"run": run, "estimator": name}
            for step, column in zip(steps, columns):
                value = rows.variance.get(step, np.nan)
                if step in rows.index and rows.nonfinite[step]:
                    value = np.nan
                entry[column] = _g(value)
            biased = [f"{s:,}" for s in rows.index[rows.biased_any.to_numpy(bool)]]
            entry["biased at"] = ", ".join(biased)
            out.append(entry)
    table = pd.DataFrame(out, columns=["run", "estimator"] + columns + ["biased at"])
    if len(runs) == 1:
        table = table.drop(columns="run")
    return table


def best_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (run and) checkpoint, a column per parameter block: the estimator with the least
    variance × time per estimate among those not flagged biased (:func:`_best`)."""
    data = with_runs(at_largest_n(frame))
    data = data.assign(biased_any=data.groupby(["cell"]).biased.transform("any"))
    runs, blocks = _runs(data), _blocks(data)
    out = []
    for run in runs:
        group = data[data.run == run]
        for step in sorted(group.step.unique()):
            entry = {"run": run, "step": f"{step:,}"}
            for block in blocks:
                entry[f"∂/∂{block}"] = _best(group[(group.step == step)
                                                   & (group.param_block == block)])
            out.append(entry)
    table = pd.DataFrame(out, columns=["run", "step"] + [f"∂/∂{b}" for b in blocks])
    return table.drop(columns="run") if len(runs) == 1 else table


def runs_table(meta: dict) -> pd.DataFrame:
    """One row per training run: start, training seconds, the objective (± SE) at the first
    and last logged step, and the diagnostics at the last."""
    rows = []
    for trajectory in meta.get("trajectories") or []:
        log = sorted(trajectory.get("log") or [], key=lambda row: row["step"])
        entry = {"problem": trajectory.get("problem"), "start": trajectory.get("theta_label"),
                 "train seconds": trajectory.get("train_seconds")}
        if log:
            first, last = log[0], log[-1]
            entry[f"J at step {first['step']:,}"] = \
                f"{first['objective']:.4g} ± {first.get('objective_se', np.nan):.2g}"
            entry["last step"] = last["step"]
            entry["J at the last step"] = \
                f"{last['objective']:.4g} ± {last.get('objective_se', np.nan):.2g}"
            for name in diagnostics(log):
                entry[f"{name} at the last step"] = last.get(name)
        rows.append(entry)
    return pd.DataFrame(rows)


def tables(frame: pd.DataFrame, meta: dict) -> list[tuple[str, str, str, pd.DataFrame]]:
    """The report's training tables, as (name, title, caption, table); none for other
    tables. ``frame`` is prepared (:func:`bench.report.data.prepare`)."""
    if not is_training(frame):
        return []
    out = []
    blocks = _blocks(frame)
    for index, block in enumerate(blocks):
        name = "variance_along_training" + ("" if index == 0 else f"_{block}")
        title = "Variance along training" + (f": ∂/∂{block}" if len(blocks) > 1 else "")
        out.append((name, title,
                    f"Variance of each estimator at each checkpoint (the points of 'Variance "
                    f"along training'): for ∂/∂{block}, the mean over its components of the "
                    "per-component variance, at the largest n_samples; — for non-finite "
                    "estimates. 'biased at': checkpoints where the estimator misses the truth "
                    "(any block; its variance then understates its error).",
                    variance_table(frame, block)))
    out.append(("best_along_training", "Best estimator along training",
                "At each checkpoint and for each parameter block: the estimator with the "
                "least variance × time per estimate (the mean over the block's components) "
                "among those not flagged biased there, with those whose interval (variance CI "
                "× timing spread) overlaps its own as ties: the ranking can change as θ "
                "moves.", best_table(frame)))
    runs = runs_table(meta)
    if len(runs):
        out.append(("training_runs", "Training runs",
                    "Each training run: its start, seconds spent estimating and updating, and "
                    "the objective J(θ) (± its standard error) at the first and last logged "
                    "step, with the problem's diagnostics at the last.", runs))
    return out


def lede(meta: dict) -> str:
    """A sentence on the training settings, for the report's lede ("" without them)."""
    settings = meta.get("training")
    if not settings:
        return ""
    checkpoints = ", ".join(f"{int(s):,}" for s in settings.get("checkpoints", []))
    schedule = settings.get("schedule")
    runs = len(meta.get("trajectories") or [])
    rate, steps = settings.get("learning_rate"), settings.get("steps")
    rate = f"{rate:g}" if isinstance(rate, (int, float)) else "?"
    steps = f"{steps:,}" if isinstance(steps, int) else "?"
    goal = {"maximize": "maximizing", "minimize": "minimizing"}.get(settings.get("direction"),
                                                                    "optimizing")
    return (f" Training: θ trained {goal} J(θ) by {settings.get('optimizer', '?')} (learning "
            f"rate {rate}{f', {schedule} schedule' if schedule else ''}) for {steps} "
            f"steps with {settings.get('estimator', '?')} at "
            f"n = {settings.get('n_samples', '?')} samples per step, from each starting θ "
            f"({runs} run{'s' if runs != 1 else ''}); every estimator is measured at θ of the "
            f"checkpoints {checkpoints}, so the generic figures' x axis is the training step. "
            "Exact per-sample variance curves are not drawn: θ moves along the run.")

"""Figures and tables of training with each estimator (a grid's ``[train_each]`` table,
bench/train_each.py): one training run per problem, estimator and seed, logged along the
way, kept in the table's metadata (``training_runs``; the settings in ``train_each``).

* :func:`objective_by_estimator`: the training-set objective (for the VAEs the ELBO over
  every training image, ``train_elbo``; else J(θ)) against the step, the seconds spent in
  updates and the evaluations of f: per estimator the mean over seeds (line) and their
  range (band), a row per problem;
* :func:`variance_by_estimator`: the training estimator's variance along its own run, summed
  over the encoder's blocks (the blocks the noise flows through: for the VAEs ``enc_*``)
  and per block, mean over seeds and range;
* :func:`tables`: the runs' final values per problem and estimator (train objective, test
  bound, variance, seconds and evaluations of f per step) with 95% intervals over seeds.

:func:`runs_frame` is the tidy table behind them: a row per run and logged step.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

import estimators as E
from bench.report import figures

OBJECTIVES = ("train_elbo", "objective")
"""The logged column a run's progress is drawn from: the first present."""
ENCODER_PREFIX = "enc_"
"""Blocks whose variance the encoder total sums (the VAEs' encoder); without any, all."""


def runs_frame(meta: dict) -> pd.DataFrame:
    """A row per run and logged step: problem, estimator, seed, step, ``f_evals`` (step ×
    evaluations of f per step), ``stopped`` (why a diverging run ended, else ""), and the
    log's columns (``train_seconds``, ``objective``, diagnostics, ``variance``,
    ``variance:<block>``)."""
    rows = []
    for run in meta.get("training_runs") or []:
        for entry in run.get("log") or []:
            rows.append({"problem": run["problem"], "estimator": run["estimator"],
                         "seed": run["seed"], "f_evals": entry["step"] * (run.get(
                             "f_evals_per_step") or np.nan), "stopped": run.get("stopped") or "",
                         "steps_done": run.get("steps", np.nan), **entry})
    return pd.DataFrame(rows)


def estimators(meta: dict) -> list[str]:
    """The estimators that trained runs, in order of first appearance."""
    return list(dict.fromkeys(run["estimator"] for run in meta.get("training_runs") or []))


def _objective(frame: pd.DataFrame) -> str | None:
    return next((name for name in OBJECTIVES if name in frame and frame[name].notna().any()),
                None)


def _encoder_blocks(frame: pd.DataFrame) -> list[str]:
    blocks = [c[len("variance:"):] for c in frame.columns if c.startswith("variance:")]
    chosen = [b for b in blocks if b.startswith(ENCODER_PREFIX)]
    return chosen or blocks


def _biased(label: str) -> bool:
    try:
        return E.get_estimator(label).declared_biased
    except ValueError:
        return False


def _lines(ax, frame, x: str, y: str, colours, log: bool = False) -> None:
    """Per estimator: the mean over seeds of ``y`` against the mean of ``x`` at each step
    (line), and the seeds' range (band)."""
    for name in [n for n in colours if n in set(frame.estimator)]:
        rows = frame[frame.estimator == name]
        grouped = rows.groupby("step")
        mean = grouped[[x, y]].mean()
        low, high = grouped[y].min(), grouped[y].max()
        style = "--" if _biased(name) else "-"
        ax.plot(mean[x], mean[y], style, color=colours[name], linewidth=1.4,
                marker="o", markersize=2.5)
        ax.fill_between(mean[x], low, high, color=colours[name], alpha=0.15, linewidth=0)
    if log:
        ax.set_yscale("log")


def _legend(fig, colours, names) -> None:
    handles = [Line2D([], [], color=colours[n], linestyle="--" if _biased(n) else "-",
                      label=n + (" (biased)" if _biased(n) else "")) for n in names]
    handles.append(Patch(color="0.5", alpha=0.3, label="range over seeds"))
    figures.legend(fig, {}, handles)


def objective_by_estimator(frame, colours, meta=None):
    """The training objective against step, seconds and evaluations of f (module
    docstring); None without training runs."""
    runs = runs_frame(meta or {})
    if not len(runs) or _objective(runs) is None:
        return None
    colours = _colours(colours, runs)
    problems = list(dict.fromkeys(runs.problem))
    fig, axes = plt.subplots(len(problems), 3, squeeze=False, layout="constrained",
                             figsize=(3 * figures.PANEL_WIDTH, figures.PANEL_HEIGHT
                                      * len(problems) + 1.0))
    fig.suptitle(_wrap("Training with each estimator: the training objective (mean over "
                       "seeds; band: their range) against the step, the seconds spent in "
                       "updates and the evaluations of f", fig), fontsize="large")
    for row, problem in enumerate(problems):
        rows = runs[runs.problem == problem]
        column = _objective(rows.dropna(axis=1, how="all")) or "objective"
        for col, (x, label) in enumerate((("step", "training step"),
                                          ("train_seconds", "seconds in updates"),
                                          ("f_evals", "evaluations of f"))):
            ax = axes[row, col]
            _lines(ax, rows, x, column, colours)
            _focus(ax, rows[column].to_numpy(float), rows.step.to_numpy(float))
            ax.set(xlabel=label, ylabel=column)
            ax.set_title(_title(problem, ax), fontsize="medium")
    _legend(fig, colours, [n for n in colours if n in set(runs.estimator)])
    return fig


def variance_by_estimator(frame, colours, meta=None):
    """The training estimator's variance along its run: encoder total and per encoder
    block (module docstring); None without logged variances."""
    runs = runs_frame(meta or {})
    if not len(runs) or "variance" not in runs:
        return None
    colours = _colours(colours, runs)
    problems = list(dict.fromkeys(runs.problem))
    blocks = {problem: _encoder_blocks(runs[runs.problem == problem].dropna(axis=1, how="all"))
              for problem in problems}
    # The total, then the problem's own blocks (at most three: a deep encoder has many).
    panels = {problem: [("total", blocks[problem])] + [(b, [b]) for b in blocks[problem][:3]]
              if len(blocks[problem]) > 1 else [("total", blocks[problem])]
              for problem in problems}
    ncols = max(len(p) for p in panels.values())
    fig, axes = plt.subplots(len(problems), ncols, squeeze=False, layout="constrained",
                             figsize=(ncols * figures.PANEL_WIDTH,
                                      figures.PANEL_HEIGHT * len(problems) + 1.2))
    fig.suptitle(_wrap("Variance of each training estimator along its own run (log scale): "
                       "a block's components' variances summed, from independent estimates at "
                       "θ of the step on the problem's own minibatch; the line is the mean "
                       "over seeds, the band their range", fig), fontsize="large")
    for row, problem in enumerate(problems):
        rows = runs[runs.problem == problem]
        for col in range(len(panels[problem]), ncols):
            axes[row, col].remove()
        for col, (name, members) in enumerate(panels[problem]):
            ax = axes[row, col]
            values = rows.assign(value=rows[[f"variance:{b}" for b in members]].sum(
                axis=1, min_count=len(members)))
            _lines(ax, values[values.value > 0], "step", "value", colours, log=True)
            whole = "encoder" if members[0].startswith(ENCODER_PREFIX) else "all of θ"
            what = (f"{whole}: " + ", ".join(members)) if name == "total" else name
            ax.set(xlabel="training step", ylabel="variance (summed)")
            ax.set_title(_title(f"{problem} · {what}", ax), fontsize="medium")
    _legend(fig, colours, [n for n in colours if n in set(runs.estimator)])
    return fig


def _wrap(text: str, fig) -> str:
    from bench.report.training import _wrap as wrap  # one wrapping rule for titles

    return wrap(text, fig)


def _colours(colours: dict, runs: pd.DataFrame) -> dict:
    """The report's colours, and new ones for estimators only the runs have."""
    missing = [n for n in dict.fromkeys(runs.estimator) if n not in colours]
    if not missing:
        return colours
    return {**colours, **figures.palette(missing)}


def _title(problem: str, ax) -> str:
    from bench.report.training import _panel  # one wrapping rule for panel titles

    return _panel(problem, ax)


def _focus(ax, values: np.ndarray, steps: np.ndarray) -> None:
    """y limits from the values after the first tenth of training, where an objective
    that starts far below has flattened (the start is off the top or bottom)."""
    later = values[np.isfinite(values) & (steps >= 0.1 * np.nanmax(steps))]
    if len(later) >= 2 and np.ptp(later) > 0:
        pad = 0.08 * np.ptp(later)
        ax.set_ylim(later.min() - pad, later.max() + pad)


def final_table(meta: dict) -> pd.DataFrame:
    """Per problem and estimator, over its seeds at the last logged step: the objective and
    test bound (mean and 95% t interval), the encoder variance (mean), milliseconds and
    evaluations of f per step, runs and runs stopped by divergence."""
    runs = runs_frame(meta)
    if not len(runs):
        return pd.DataFrame()
    out = []
    for (problem, estimator), rows in runs.groupby(["problem", "estimator"], sort=False):
        own = rows.dropna(axis=1, how="all")  # a problem's own columns (grids may mix kinds)
        column, blocks = _objective(own), _encoder_blocks(own)
        last = rows.sort_values("step").groupby("seed").tail(1)
        row = {"problem": problem, "estimator": estimator,
               "biased": "yes" if _biased(estimator) else "", "runs": len(last),
               "stopped": int((last.stopped != "").sum()),
               "last step": int(last.steps_done.min())}
        for name, label in ((column, column), ("test_bound", "test_bound")):
            if name is not None and name in last and last[name].notna().any():
                mean, half = _interval(last[name].to_numpy(float))
                row[label] = mean
                row[f"{label} ±95%"] = half
        if blocks and "variance" in last:
            row["encoder variance"], row["encoder variance ±95%"] = _interval(
                last[[f"variance:{b}" for b in blocks]].sum(
                    axis=1, min_count=len(blocks)).to_numpy(float))
        steps = last.step.replace(0, np.nan)
        row["ms per step"] = float(np.nanmedian(1e3 * last.train_seconds / steps))
        row["f evals per step"] = float((last.f_evals / steps).median())
        out.append(row)
    return pd.DataFrame(out)


def _interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95% t interval (NaN for fewer than two values)."""
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return (float(values.mean()) if len(values) else math.nan), math.nan
    half = scipy.stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(
        len(values))
    return float(values.mean()), float(half)


def tables(meta: dict) -> list[tuple[str, str, str, pd.DataFrame]]:
    """The report's tables of training with each estimator; none without runs."""
    table = final_table(meta)
    if table.empty:
        return []
    settings = meta.get("train_each") or {}
    return [("train_each_final", "Training with each estimator: where the runs end",
             f"Per problem and estimator, over its {settings.get('seeds', '?')} seeds at the "
             "last logged step: the training-set objective and the test bound, means with "
             "the half-width of their 95% t interval; the encoder's variance (summed over "
             "its blocks' components, all of θ's for a problem without encoder blocks; mean "
             "over seeds and its interval); median milliseconds "
             "and evaluations "
             "of f per update. Biased estimators (relaxations) are marked: they optimize "
             "another objective than the one logged. 'stopped': runs whose estimates stopped "
             "being finite (the run ends there).", table)]


def lede(meta: dict) -> str:
    """A sentence on the runs, for the report's lede ("" without them)."""
    settings, runs = meta.get("train_each"), meta.get("training_runs") or []
    if not settings or not runs:
        return ""
    inner = settings.get("settings", {})
    return (f" Training with each estimator: {len(runs)} runs ({len(settings.get('estimators', []))}"
            f" estimators × {settings.get('seeds')} seeds per problem), each "
            f"{inner.get('steps', '?'):,} {inner.get('optimizer', '?')} steps (learning rate "
            f"{inner.get('learning_rate', '?')}) at n = {inner.get('n_samples', '?')} samples "
            "per step, on a fresh minibatch each step for a problem on data.")

"""Reports of a results table: seaborn figures, a self-contained HTML page, summary.md.

    from bench import report
    index = report.build("results/20261125-120000-default.parquet")  # reports/<run_id>/index.html

:func:`build` reads the table, computes the exact per-sample variance curves by
quadrature, draws every figure that the table has data for (PNG and SVG each), and
writes ``index.html`` (figures embedded, opens from disk) and ``summary.md`` (the
figures by file name, the ranking and the exact-vs-measured gaps). Everything is written
into a temporary folder beside the destination, which replaces it only once complete: an
error leaves the previous report (or nothing) in place, never half a report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from bench.report import data, discrete, exact, figures, page, tables, training
from bench.report.data import ReportError
from bench.store import current_umask, read_results

__all__ = ["ReportError", "build", "Report"]

FIGURES = [
    ("variance_vs_step", "Variance along training",
     "Training runs (Mohamed et al. 2020, §8): θ is trained with one estimator and every "
     "estimator is measured at θ of each checkpoint. A row of panels per training run, a "
     "panel per parameter block: the variance of the R replicate estimates at the largest "
     "n_samples, per gradient component and averaged over the block's components, against "
     "the training step (markers at the checkpoints; the step axis is linear up to the "
     "first checkpoint after 0 and logarithmic beyond it when checkpoints span decades). "
     "The variance is on a log scale. The band is the mean of "
     "the components' 95% CI bounds, not a confidence interval of the mean (which would be "
     "narrower). Deterministic (zero-variance) cells and cells with non-finite estimates are "
     "not drawn. Lower is better at equal cost (see the time per estimate): the variance "
     "where training actually goes, not at θ picked by hand. The ranking can change along "
     "the run (Mohamed et al. 2020, §8): a delta-method control variate, a second-order "
     "Taylor expansion of f around the mean of q, helps only where that expansion fits f "
     "over q's spread, so it can hurt at a wide start and help a lot once q has "
     "concentrated; measure-valued gradients can come close to pathwise ones, at 3D + 1 "
     "evaluations of f per sample (see 'Time per estimate along training').",
     training.variance_vs_step),
    ("training_log", "Training log",
     "The training run itself: the objective J(θ) (an ELBO, E[f] − penalty, when maximizing "
     "with a penalty) from the logged draws at θ of each step, with a ±2 standard-error "
     "band, and the problem's diagnostics (e.g. held-in accuracy of logistic regression) "
     "against the step; dotted lines mark the checkpoints where the estimators are "
     "measured. When the first steps are far off the later scale, the y axis shows the "
     "later part (said in the panel). A flat, converged curve means the later checkpoints "
     "measure the estimators near the optimum.", training.training_log),
    ("time_per_estimate", "Time per estimate along training",
     "Seconds per estimate (the median of timed calls divided by R, compilation excluded) "
     "at each problem's largest n_samples, median over the checkpoints, fastest on top, log "
     "scale; error bars from the fastest to the slowest timed call at any checkpoint. Each "
     "bar is labelled with the evaluations of f per estimate and per sample: measure-valued "
     "gradients evaluate f 3D + 1 times per sample (D the dimension of x), so their low "
     "variance (close to pathwise in Mohamed et al. 2020) costs that much more; times of a "
     "few µs are mostly overhead.", training.time_per_estimate),
    ("variance_vs_theta", "Variance across the sweep",
     "Variance of the R replicate estimates at each problem's largest n_samples, per gradient "
     "component (for a block of parameters: the mean over its components, and of their CI "
     "bounds), on a log scale, with 95% confidence intervals (kurtosis-aware, log scale). "
     "Deterministic estimators (zero variance) are not drawn.", figures.variance_vs_theta),
    ("variance_vs_n", "Variance vs n_samples",
     "Variance against the number of samples per estimate (one batch), at the middle setting "
     "of each sweep. An average of n iid terms falls as 1/n: parallel to the dashed line.",
     figures.variance_vs_n),
    ("variance_vs_dimension", "Variance vs dimension",
     "Per-sample variance (variance × n_samples) at each problem's largest n_samples against "
     "the dimension D of x, for problems whose grid sweeps it (e.g. bench/grids/dimension.toml)."
     " Each block of parameters (mean, std, ...) is one panel: points are the mean over its D "
     "components with the mean of their 95% CI bounds, the dotted line the largest component. "
     "Score-function variance grows with D; pathwise variance does not (Mohamed et al. 2020).",
     figures.variance_vs_dimension),
    ("bias_vs_theta", "Bias across the sweep",
     "Mean estimate minus the true gradient (exact, or a Monte Carlo reference whose own "
     "standard error the bands include: truth_kind), with ±2 standard-error bands, at each "
     "problem's largest n_samples (for a block of parameters: its component farthest from "
     "the truth in SE). An unbiased estimator's band covers zero; estimators that miss by 4 "
     "SE or more (more for blocks: the level is corrected for their number of components) "
     "are named in red above the panel (naive_mc, where p depends on θ, drops ∇θ p).",
     figures.bias_vs_theta),
    ("time_vs_n", "Time per estimate vs n_samples",
     "Wall-clock seconds per estimate (the median of timed calls divided by R; compilation "
     "excluded), one batch, median over the sweep.", figures.time_vs_n),
    ("time_vs_batch", "Time per estimate vs batch size",
     "The same time at each problem's largest n_samples, against the samples per batch: "
     "small batches loop more, large ones need more memory.", figures.time_vs_batch),
    ("efficiency", "Efficiency ranking",
     "Variance × time per estimate at the largest n_samples, averaged over the sweep: the "
     "cost of reaching a given variance. Lower is better. Error bars: from the low end of "
     "the variance's 95% CI × the fastest timed call to its high end × the slowest, averaged "
     "the same way. Ranked among unbiased estimators: one whose interval overlaps the best "
     "one's is tied with the best, and all of them are ranked =1; the rest follow by their "
     "point value. Biased estimators (hatched) are listed apart, below, unranked: their "
     "variance understates their error. Estimators with non-finite estimates are named as "
     "not ranked; deterministic ones (zero variance) are not drawn.", figures.efficiency),
    ("variance_vs_probability", "Variance against the Bernoulli probability",
     "Per-sample variance (variance × n_samples) against p = P(b = 1) on problems whose "
     "measure is one Bernoulli (bernoulli_toy; Tucker et al. 2017, Grathwohl et al. 2018, Yin "
     "& Zhou 2019), one panel per problem, at its largest n_samples, estimators at their "
     "default settings (a temperature sweep is in the next figure). Points: measured, with "
     "95% CIs; lines: the exact per-sample variance (estimators.truth) on a dense grid of θ. "
     "Log scale: a zero variance (DisARM at p = 0.5, where its antithetic pair is always "
     "(0, 1) and every draw gives the same estimate) is drawn at the bottom edge of the "
     "panel (▼); a measured zero (float32 rounding) is not drawn. Not per f evaluation: ARM "
     "and DisARM evaluate f twice per sample, REBAR three times (see the last figure).",
     discrete.variance_vs_probability),
    ("bias_vs_temperature", "Bias against temperature",
     "Bias (mean estimate − exact gradient) of the estimators with a temperature setting "
     "(gumbel_softmax, straight_through: relaxations, biased by construction) against the "
     "temperature (log scale), at each problem and θ where the grid sweeps it: measured "
     "points with ±2 standard errors, and the exact bias (exact mean of the estimator − "
     "exact gradient) as a line. The bias vanishes only as the temperature goes to 0, where "
     "the variance of the relaxed gradient grows.", discrete.bias_vs_temperature),
    ("efficiency_per_f_eval", "Efficiency per evaluation of f",
     "Variance × evaluations of f per estimate (= per-sample variance × f evaluations per "
     "sample): the variance of an estimate that costs one evaluation of f, for the problems "
     "measured with estimators for discrete latents; each label says the evaluations per "
     "sample (ARM, DisARM: 2; REBAR: 3). Mean over each problem's settings (θ) and "
     "components; a family swept in dimension is shown at its largest D. Error bars: the "
     "same mean of the 95% CI bounds. Ranked among unbiased estimators: one whose interval "
     "overlaps the best one's is tied with it (=1). Biased estimators (hatched; measured, "
     "or by construction: the relaxations) are listed apart, unranked. Estimators measured "
     "at only some of a problem's settings (a temperature sweep) are left out.",
     discrete.efficiency_per_f_eval),
]
OPTIONAL = {"variance_vs_probability", "bias_vs_temperature", "efficiency_per_f_eval",
            "variance_vs_step", "training_log", "time_per_estimate"}
"""Figures of particular grids (bench/grids/discrete.toml, training runs): not noted when
not drawn."""

WITH_METADATA = {"training_log"}
"""Figures drawn from the run's metadata too: called as ``draw(prepared, colours, meta)``."""

NOT_IN_TRAINING = {"variance_vs_theta", "variance_vs_probability", "bias_vs_temperature"}
"""Figures not drawn for a training run: variance_vs_step replaces variance_vs_theta, and
the others place cells by their key's θ, a training run's start rather than θ at the
checkpoint."""

QUIET_IN_TRAINING = {"variance_vs_n", "time_vs_n", "time_vs_batch", "exact_per_sample_variance",
                     "variance_vs_dimension"}
"""Figures of several n_samples, batch sizes or dimensions, or of exact curves along θ
(not computed for a training run: its θ moves along the steps): not noted when a training
run has no data for them."""


EXACT_FIGURE = "exact_per_sample_variance"
"""The figure drawn from exact per-sample variance curves, the slowest part of a report."""


def figure_names() -> list[str]:
    """Every figure a report can have, by name (README's figure table), in report order."""
    from bench.report import lab_figures

    return [name for name, *_ in FIGURES] + [EXACT_FIGURE] + list(lab_figures.FIGURES)


def chosen_figures(names) -> list[str]:
    """``names`` checked against :func:`figure_names`, in the order asked, repeats dropped.

    Raises:
      ReportError: no name, or a name that is not a figure's.
    """
    known = figure_names()
    names = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        what = f"unknown figure {unknown[0]!r}" if unknown else "no figure named"
        raise ReportError(f"--only: {what}; give one or more of {', '.join(known)}, "
                          "separated by commas.")
    return names


class Report:
    """What :func:`build` wrote, and how long it took."""

    def __init__(self, index: Path, figures: list, seconds: float, gaps):
        self.index, self.figures, self.seconds, self.gaps = index, figures, seconds, gaps

    @property
    def directory(self) -> Path:
        return self.index.parent


def build(results, out_dir=None, progress: bool = True, only=None) -> Report:
    """Builds the report of one results table.

    Args:
      results: Path of a ``results/<run_id>.parquet`` written by ``gradvar run``.
      out_dir: Directory to write (replaced once the new report is complete); default
        ``reports/<run_id>``.
      progress: Show a progress bar while exact curves are computed.
      only: Names of the figures to build (:func:`figure_names`); default every one the
        table has data for. A named figure that cannot be drawn is noted in the report.
        The tables are built either way; the exact-vs-measured gaps only with
        ``exact_per_sample_variance``, whose exact curves they need.

    Returns:
      A :class:`Report` (``.index`` is the path of index.html).

    Raises:
      ReportError: the file is not a gradvar results table, lacks columns or rows,
        ``out_dir`` exists and is not a report, or ``only`` names no figure or an unknown
        one.
    """
    started = time.perf_counter()
    only = chosen_figures(only) if only is not None else None  # before any work
    frame, meta = read_results(results)
    prepared = data.per_problem_sweeps(data.prepare(frame, str(results)))
    run_id = meta.get("run_id", Path(results).stem)
    out = Path(out_dir) if out_dir is not None else Path("reports") / run_id
    with _staging(out) as staging:
        files, gaps = _write(staging, prepared, frame, meta, run_id, progress, only)
    files = [dataclasses.replace(f, png=out / f.png.name, svg=out / f.svg.name) for f in files]
    return Report(out / "index.html", files, time.perf_counter() - started, gaps)


def _write(out: Path, prepared, frame, meta: dict, run_id: str, progress: bool, only):
    """Writes every file of the report into ``out`` (of the figures, those in ``only``
    unless it is None); returns (figure files, gaps)."""
    measured = data.finite_cells(prepared)
    base_dir = meta.get("grid_dir") or None  # where the grid's own problem files are
    # A training run's key θ is the start, not θ at the checkpoint: no curves. Nor are
    # they computed (minutes on a large grid) for a report --only without their figure.
    if training.is_training(prepared) or (only is not None and EXACT_FIGURE not in only):
        exact_rows, notes = exact.curves(measured.iloc[:0], progress=False)  # no curves
    else:
        exact_rows, notes = exact.curves(measured, progress=progress, base_dir=base_dir)
    gaps = exact.gaps(measured, exact_rows)
    if only is not None:
        notes.append(f"Only the figures asked for were built (--only {','.join(only)}).")
    files = _draw(out, prepared, exact_rows, meta, notes, only)
    report_tables = _tables(prepared, frame, meta, gaps)
    skipped = meta.get("skipped", [])
    if skipped:
        notes.append(f"{len(skipped)} combinations of the grid do not apply and were skipped "
                     f"(e.g. {skipped[0][0]}: {skipped[0][1]}).")
    for note in (_unchecked_truths(frame), _jumping_costs(frame)):
        if note:
            notes.append(note)
    title, lede = f"gradvar report: {run_id}", _lede(prepared, meta)
    page.write_html(out / "index.html", title, lede, files, report_tables, notes)
    page.write_markdown(out / "summary.md", title, lede, files, report_tables, notes)
    return files, gaps


def _unchecked_truths(frame) -> str | None:
    """A note naming the settings whose truth is not checked to 10% of its gradient, each
    with what its check could resolve or why it could not (``truth_note``)."""
    if "truth_checked" not in frame.columns or frame.truth_checked.all():
        return None
    rows = frame[~frame.truth_checked.astype(bool)]
    label = "theta_label" if "theta_label" in rows else "theta"
    settings = rows.drop_duplicates(["problem", label])
    notes = settings.truth_note if "truth_note" in settings else pd.Series("", settings.index)
    where = "; ".join(f"{r.problem} at {getattr(r, label)}"
                      + (f" ({_first_sentence(note)})" if note else "")
                      for r, note in zip(settings.head(5).itertuples(), notes.head(5)))
    more = f"; and {len(settings) - 5} more" if len(settings) > 5 else ""
    return (f"The truth of {len(settings)} setting(s) is not checked to 10% of its gradient "
            f"(its Monte Carlo cross-check was too weak or inconclusive there, and bias "
            f"flags against it may be the truth's own error): {where}{more}. Columns "
            "truth_checked, truth_tolerance, truth_note.")


def _jumping_costs(frame) -> str | None:
    """A note naming the settings where f jumps along the draws (``f_jumps``)."""
    if "f_jumps" not in frame.columns or not frame.f_jumps.any():
        return None
    label = "theta_label" if "theta_label" in frame else "theta"
    settings = frame[frame.f_jumps.astype(bool)].drop_duplicates(["problem", label])
    where = "; ".join(f"{r.problem} at {getattr(r, label)}" for r in settings.head(5)
                      .itertuples())
    more = f"; and {len(settings) - 5} more" if len(settings) > 5 else ""
    return (f"f is not differentiable along the draws at {len(settings)} setting(s) (finite "
            f"differences of E f found a jump, step or rounding in x): pathwise estimates "
            f"there miss the jumps and are biased, and the truth is not a pathwise one: "
            f"{where}{more}. Column f_jumps.")


def _first_sentence(text: str) -> str:
    head = text.split(". ")[0].rstrip(".")
    return head if len(head) <= 220 else head[:217] + "…"


def _draw(out: Path, prepared, exact_rows, meta: dict, notes: list[str], only=None) -> list:
    """Draws every figure the table has data for into ``out`` (those in ``only``, unless it
    is None); notes the others (with ``only``, every one asked for and not drawn)."""
    from bench.report import lab_figures

    figures.theme()
    colours = figures.palette(data.estimator_order(prepared))
    trained = training.is_training(prepared)
    wanted = (lambda name: True) if only is None else only.__contains__
    # Figures of particular grids are noted as missing only when asked for by name.
    quiet = set() if only is not None else OPTIONAL | (QUIET_IN_TRAINING if trained else set())
    not_here = {name: "it is not drawn for a training run" for name in NOT_IN_TRAINING
                if trained}
    if not meta.get("lab"):
        not_here.update(dict.fromkeys(lab_figures.FIGURES, "the run has no lab setups "
                                                           "(lab_setups = true in its grid)"))
    for name in only or ():
        if name in not_here:
            notes.append(f"figure {name} not drawn: {not_here[name]}.")
    drawn = [(name, title, caption,
              draw(prepared, colours, meta) if name in WITH_METADATA else draw(prepared, colours))
             for name, title, caption, draw in FIGURES
             if wanted(name) and name not in not_here]
    if wanted(EXACT_FIGURE):
        drawn.append((EXACT_FIGURE, "Per-sample variance: exact and measured",
                      "Exact variance of one sample's estimate, by quadrature (lines), and the "
                      "measured per-sample variance (variance × n_samples) with its 95% CI "
                      "(points), at each problem's largest n_samples. A point whose CI misses "
                      "its line is a discrepancy worth a look.",
                      figures.exact_per_sample_variance(prepared, exact_rows, colours)))
    drawn += [(name, title, caption, draw(meta["lab"]))
              for name, (draw, title, caption) in lab_figures.FIGURES.items()
              if wanted(name) and name not in not_here]
    files = []
    for name, title, caption, fig in drawn:
        if fig is None and name in quiet:
            continue
        if fig is None:
            notes.append(f"figure {name} not drawn: the table has no data for it "
                         "(e.g. a single n_samples or batch size).")
            continue
        png, svg = out / f"{name}.png", out / f"{name}.svg"
        fig.savefig(png, dpi=figures.DPI)
        fig.savefig(svg)
        plt.close(fig)
        files.append(page.FigureFile(name, title, caption, png, svg))
    return files


TABLES_NOT_IN_TRAINING = {"variance_at_p", "bias_at_temperature"}
"""Tables of the figures in ``NOT_IN_TRAINING``."""


def _tables(prepared, frame, meta: dict, gaps) -> list:
    report_tables = [page.Table(*entry) for entry in training.tables(prepared, meta)]
    listed = tables.nonfinite(prepared)
    if len(listed):
        cells = prepared.cell.nunique()
        more = (f" The first {tables.NONFINITE_LISTED} are listed."
                if len(listed) > tables.NONFINITE_LISTED else "")
        report_tables.append(page.Table(
            "nonfinite", "Cells with non-finite estimates",
            f"{len(listed)} of {cells} cells have estimates that are not finite (an overflow "
            "or a NaN): their statistics are not computed, they are drawn in no figure and "
            "never ranked. 'non-finite estimates' counts them among the cell's R (for several "
            "gradient components, the most of any)." + more,
            listed.head(tables.NONFINITE_LISTED)))
    report_tables.append(page.Table(
        "ranking", "Ranking per problem",
        "Each problem at its largest n_samples and batch size, averaged over the sweep and "
        "gradient components (blocks: their mean); ranked by MSE. efficiency_rank ranks "
        "variance × time per estimate among unbiased estimators with non-zero variance; "
        "efficiency_low/high is its interval (variance CI low end × fastest timed call, high "
        "end × slowest), and estimators whose interval overlaps the best one's share rank =1 "
        "(tied with the best). biased: |bias| ≥ 4 SE at some setting (for a block, its worst "
        "component, with the level corrected for the number of components). settings: how many "
        "of the family's settings an estimator's averages cover (fewer than the others: not "
        "comparable with them). Estimators with non-finite estimates in any of these cells "
        "are not ranked.",
        tables.ranking(prepared)))
    skipped = TABLES_NOT_IN_TRAINING if training.is_training(prepared) else set()
    report_tables += [page.Table(*entry) for entry in discrete.tables(prepared)
                      if entry[0] not in skipped]
    summary = tables.gap_summary(gaps)
    if summary:
        report_tables.append(page.Table(
            "exact_gaps", "Measured vs exact per-sample variance",
            f"{summary['points']} measured points; exact inside the 95% CI at "
            f"{summary['inside_ci']} of them; median |relative gap| "
            f"{summary['median_abs_gap']:.1%}; largest {summary['largest_abs_gap']:+.1%} "
            f"({summary['largest_at']}, exact {'inside' if summary['largest_inside_ci'] else 'outside'}"
            " the CI). Rows: the 15 largest gaps.",
            gaps.reindex(gaps.relative_gap.abs().sort_values(ascending=False).index).head(15)))
    if meta.get("lab"):
        report_tables.append(page.Table(
            "lab", "The lab's setups", "The lab's five functions (estimators.lab) on the setups "
            "of its notebook, run with this grid's seed; error / SE is (value − exact) / "
            "standard error.", tables.lab(meta["lab"])))
    report_tables.append(page.Table("metadata", "Run metadata", "Where and how the table was "
                                    "measured.", tables.metadata(meta, frame)))
    return report_tables


def _lede(prepared, meta: dict) -> str:
    cells = prepared.cell.nunique()
    lede = (f"Grid '{meta.get('grid_name')}': {cells} cells, "
            f"{meta.get('n_replicates')} replicate estimates each, backend {meta.get('backend')} "
            f"on {meta.get('device')}. Variance and bias figures are faceted by problem family "
            "(by problem when each of a family's problems sweeps the same coordinate, e.g. θ "
            "at two values of t) and gradient component (∂/∂parameter), time and efficiency "
            "by problem family; x is the coordinate the grid sweeps.")
    bad = prepared[prepared.nonfinite].cell.nunique()
    if bad == cells:
        lede += (f" Every one of the {cells} cells has non-finite estimates: no cell has finite "
                 "statistics, so nothing measured is drawn or ranked; see 'Cells with "
                 "non-finite estimates'.")
    elif bad:
        lede += (f" {bad} of {cells} cells have non-finite estimates: they are listed under "
                 "'Cells with non-finite estimates' and left out of every figure and ranking.")
    return lede + training.lede(meta)


REPORT_FILES = (".png", ".svg", ".html", ".md")
"""What a folder may hold for a new report to replace it: a report's own files."""


@contextlib.contextmanager
def _staging(out: Path):
    """A temporary folder beside ``out``, renamed into its place when the block succeeds
    (an existing report is replaced only then) and removed when it fails."""
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".building"))
    try:
        staging.chmod(0o777 & ~current_umask())  # a folder's usual mode, not mkdtemp's private 0700
        yield staging
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ReportError(f"{out}: exists and is not a folder; give --out a folder for the "
                          "report.")
    foreign = [p.name for p in out.iterdir() if p.is_dir() or p.suffix not in REPORT_FILES]
    if foreign:
        raise ReportError(f"{out}: exists and is not a gradvar report (it holds {foreign[0]!r}), "
                          "so it is not replaced; give --out a new folder or remove it.")


def _replace(staging: Path, out: Path) -> None:
    """Renames ``staging`` to ``out``, moving an existing ``out`` aside until it is done."""
    if not out.exists():
        os.rename(staging, out)
        return
    old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
    os.rename(out, old)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)

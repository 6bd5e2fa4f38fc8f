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

from bench.report import leaderboard
from bench.report import (categorical, data, discrete, each, exact, figures, page, tables,
                          training)
from bench.report.catalog import EXACT_FIGURE, FIGURES, Figure, figure_names
from bench.report.data import ReportError
from bench.store import current_umask, read_results

__all__ = ["ReportError", "build", "Report", "Figure", "FIGURES", "figure_names"]

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
    run_id = meta.get("run_id", Path(results).stem)
    out = Path(out_dir) if out_dir is not None else Path("reports") / run_id
    if frame.empty and meta.get("training_runs"):  # a grid of training runs only
        with _staging(out) as staging:
            files, gaps = _write_runs_only(staging, frame, meta, run_id, only), None
    else:
        prepared = data.per_problem_sweeps(data.prepare(frame, str(results)))
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
    leaderboard.write_study(out, prepared, meta)
    return files, gaps


def _write_runs_only(out: Path, frame, meta: dict, run_id: str, only) -> list:
    """The report of a run with training runs and no cells: their figures and tables."""
    figures.theme()
    names = [f.name for f in FIGURES if f.draw in (each.objective_by_estimator,
                                                      each.variance_by_estimator)]
    notes = [f"figure {name} not drawn: the run has training runs only, no cells."
             for name in only or () if name not in names]
    files = _draw(out, frame, None, meta, notes, [n for n in names if only is None
                                                  or n in only])
    report_tables = [page.Table(*entry) for entry in each.tables(meta)]
    report_tables.append(page.Table("metadata", "Run metadata", "Where and how the table was "
                                    "measured.", tables.metadata(meta, frame)))
    title = f"gradvar report: {run_id}"
    lede = f"Grid '{meta.get('grid_name')}': no cells." + each.lede(meta)
    page.write_html(out / "index.html", title, lede, files, report_tables, notes)
    page.write_markdown(out / "summary.md", title, lede, files, report_tables, notes)
    leaderboard.write_study(out, frame, meta)
    return files


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
    figures.theme()
    cells = data.estimator_order(prepared) if "estimator" in prepared else []
    colours = figures.palette(sorted(set(cells) | set(each.estimators(meta))))
    trained = training.is_training(prepared)
    wanted = (lambda name: True) if only is None else only.__contains__
    not_here = {}
    for figure in FIGURES:
        if trained and figure.training == "never":
            not_here[figure.name] = "it is not drawn for a training run"
        elif figure.inputs == "lab" and not meta.get("lab"):
            not_here[figure.name] = "the run has no lab setups (lab_setups = true in its grid)"
    for name in only or ():
        if name in not_here:
            notes.append(f"figure {name} not drawn: {not_here[name]}.")
    files = []
    for figure in FIGURES:
        if not wanted(figure.name) or figure.name in not_here:
            continue
        fig = figure.render(prepared, colours, meta, exact_rows)
        # Figures of particular grids are noted as missing only when asked for by name.
        quiet = only is None and (figure.particular or (trained and figure.training == "quiet"))
        if fig is None and quiet:
            continue
        if fig is None:
            notes.append(f"figure {figure.name} not drawn: the table has no data for it "
                         "(e.g. a single n_samples or batch size).")
            continue
        png, svg = out / f"{figure.name}.png", out / f"{figure.name}.svg"
        fig.savefig(png, dpi=figures.DPI)
        fig.savefig(svg)
        plt.close(fig)
        files.append(page.FigureFile(figure.name, figure.title, figure.caption, png, svg))
    return files


TABLES_NOT_IN_TRAINING = {"variance_at_p", "bias_at_temperature", "which_categorical_estimator"}
"""Tables of the figures not drawn for a training run (``Figure.training == "never"``)."""


def _tables(prepared, frame, meta: dict, gaps) -> list:
    report_tables = [page.Table(*entry) for entry in training.tables(prepared, meta)]
    report_tables += [page.Table(*entry) for entry in each.tables(meta)]
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
    report_tables += [page.Table(*entry) for entry in categorical.tables(prepared)
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
    return lede + training.lede(meta) + each.lede(meta)


REPORT_FILES = (".png", ".svg", ".html", ".md", ".json")
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

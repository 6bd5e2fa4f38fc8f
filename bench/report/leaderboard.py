"""The leaderboard: every committed study's estimators side by side, per task
(``gradvar leaderboard``; issue 28).

A report (:mod:`bench.report`) writes ``leaderboard.json`` beside its ``summary.md``: its
study's rows, one per task (problem family) and estimator, from the same numbers as its
ranking table (:func:`bench.report.tables.ranking`: each family at its largest n_samples,
averaged over its settings and gradient components, training checkpoints included):

* ``variance_x_time`` with its interval (the variance CI's low end × the fastest timed
  call, its high end × the slowest) and its rank among the family's unbiased estimators
  ("=1": tied with the best, intervals overlapping);
* ``variance_x_f_evals``: the variance of an estimate that costs one evaluation of f
  (variance × evaluations of f per estimate), its interval (the variance CI × the count,
  exact) and its rank likewise;
* ``biased``: flagged |bias| ≥ 4 SE (corrected for the number of components) or biased by
  construction (relaxations): listed apart, never ranked;

and, for a study that trains with each estimator (``[train_each]``), one row per problem
and estimator of where its runs end (:func:`bench.report.each.final_table`).

:func:`gather` reads every ``reports/*/leaderboard.json`` and :func:`write` makes
``reports/leaderboard/``: ``index.html`` and ``summary.md`` (an estimator × task table of
ranks by variance × time, the same by evaluations of f, the biased estimators apart, and
the training runs) and ``leaderboard.json`` (every row, for other tools).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report import each, tables
from bench.report.data import at_largest_n

FILE = "leaderboard.json"
VERSION = 1


def rows(prepared: pd.DataFrame, meta: dict, study: str) -> dict:
    """A study's leaderboard rows (module docstring), from its prepared table and metadata."""
    cells = []
    if len(prepared):
        ranked = tables.ranking(prepared)
        per_f = _per_f_eval(prepared)
        for row in ranked.itertuples(index=False):
            f_row = per_f.get((row.problem_family, row.estimator), {})
            cells.append({
                "task": row.problem_family, "estimator": row.estimator,
                "n_samples": int(row.n_samples), "biased": bool(row.biased)
                if row.biased is not pd.NA else None,
                "variance_x_time": _number(row.variance_x_time),
                "variance_x_time_low": _number(row.efficiency_low),
                "variance_x_time_high": _number(row.efficiency_high),
                "rank_by_time": row.efficiency_rank,
                "seconds_per_estimate": _number(row.seconds_per_estimate),
                **f_row, "note": row.note})
        _rank_by_f_evals(cells)
    trained = each.final_table(meta)
    training = [{key: _number(value) if isinstance(value, float) else value
                 for key, value in record.items()}
                for record in trained.to_dict("records")] if len(trained) else []
    return {"kind": "study", "version": VERSION, "study": study, "grid": meta.get("grid_name"),
            "run_id": meta.get("run_id"), "git_commit": meta.get("git_commit"),
            "cells": cells, "training": training}


def _number(value):
    """A float for JSON (None for NaN: JSON has no NaN)."""
    if value is None or value is pd.NA:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _per_f_eval(prepared: pd.DataFrame) -> dict:
    """{(family, estimator): variance × f evaluations per estimate, with its interval}."""
    data = at_largest_n(prepared)
    data = data[~data.deterministic]
    if data.empty:
        return {}
    evals = data.f_evals_per_estimate.astype(float)
    data = data.assign(per_f=data.variance * evals, per_f_low=data.variance_ci_low * evals,
                       per_f_high=data.variance_ci_high * evals)
    grouped = data.groupby(["problem_family", "estimator"], sort=False).agg(
        per_f=("per_f", "mean"), low=("per_f_low", "mean"), high=("per_f_high", "mean"),
        evals=("f_evals_per_estimate", "median"))
    return {key: {"variance_x_f_evals": _number(r.per_f),
                  "variance_x_f_evals_low": _number(r.low),
                  "variance_x_f_evals_high": _number(r.high),
                  "f_evals_per_estimate": _number(r.evals)}
            for key, r in grouped.iterrows()}


def _rank_by_f_evals(cells: list[dict]) -> None:
    """``rank_by_f_evals`` of each row, as the ranking table ranks variance × time."""
    if not cells:
        return
    table = pd.DataFrame(cells)
    table = table.assign(
        problem_family=table.task, variance_x_time=table.get("variance_x_f_evals"),
        efficiency_low=table.get("variance_x_f_evals_low"),
        efficiency_high=table.get("variance_x_f_evals_high"),
        bias_reason="", efficiency_rank=tables.NOT_RANKED,
        biased=table.biased.fillna(True))
    eligible = table.rank_by_time.notna() & (table.rank_by_time != tables.NOT_RANKED)
    for _, group in table[eligible | table.biased.astype(bool)].groupby("problem_family",
                                                                         sort=False):
        tables.rank_efficiency(table, group)
    for cell, rank in zip(cells, table.efficiency_rank):
        cell["rank_by_f_evals"] = rank


def write_study(out: Path, prepared: pd.DataFrame, meta: dict) -> None:
    """``leaderboard.json`` of one report (:func:`gather` names the study by its folder)."""
    study = meta.get("grid_name") or meta.get("run_id") or ""
    (Path(out) / FILE).write_text(json.dumps(rows(prepared, meta, study), indent=1) + "\n")


def gather(reports: Path) -> list[dict]:
    """Every study's rows under ``reports`` (``*/leaderboard.json``), by study name.

    Raises:
      ValueError: a file that is not a leaderboard of this version.
    """
    studies = []
    for path in sorted(Path(reports).glob(f"*/{FILE}")):
        try:
            study = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: not a readable leaderboard file ({error}).") from None
        if isinstance(study, dict) and study.get("kind") == "leaderboard":
            continue  # a gathered leaderboard, not a study
        if not isinstance(study, dict) or study.get("version") != VERSION \
                or study.get("kind") != "study":
            raise ValueError(f"{path}: a leaderboard file of another version; rebuild its "
                             "report (gradvar report).")
        if not (isinstance(study.get("cells"), list)
                and isinstance(study.get("training"), list)):
            raise ValueError(f"{path}: a leaderboard file without its rows (cells, "
                             "training); rebuild its report (gradvar report).")
        # Named by its folder: two reports of one grid (a rerun) stay two studies.
        studies.append({**study, "study": path.parent.name})
    return studies


def _interval(value, low, high) -> str:
    if value is None:
        return "—"
    if low is None or high is None:
        return f"{value:.3g}"
    return f"{value:.3g} [{low:.3g}, {high:.3g}]"


def frames(studies: list[dict]) -> dict[str, pd.DataFrame]:
    """The leaderboard's tables from the gathered studies: ``by_time`` and ``by_f_evals``
    (estimator × task ranks, unbiased estimators), ``values`` (every unbiased row with its
    intervals), ``biased`` (the biased rows, apart) and ``training`` (where the runs of
    training with each estimator end)."""
    cells = pd.DataFrame([{**cell, "study": study["study"]} for study in studies
                          for cell in study.get("cells", [])])
    training = pd.DataFrame([{"study": study["study"], **row} for study in studies
                             for row in study.get("training", [])])
    out = {}
    if len(cells):
        cells["task"] = cells.study + ": " + cells.task
        biased = cells.biased.fillna(False).astype(bool)
        unbiased = cells[~biased]
        for name, column in (("by_time", "rank_by_time"), ("by_f_evals", "rank_by_f_evals")):
            pivot = unbiased.pivot_table(index="estimator", columns="task", values=column,
                                         aggfunc="first").fillna(tables.NOT_RANKED)
            out[name] = pivot.reset_index()
        out["values"] = pd.DataFrame({
            "task": unbiased.task, "estimator": unbiased.estimator,
            "n_samples": unbiased.n_samples,
            "variance × time [95%]": [_interval(v, lo, hi) for v, lo, hi in zip(
                unbiased.variance_x_time, unbiased.variance_x_time_low,
                unbiased.variance_x_time_high)],
            "rank (time)": unbiased.rank_by_time,
            "variance × f evals [95%]": [_interval(v, lo, hi) for v, lo, hi in zip(
                unbiased.get("variance_x_f_evals", pd.Series(None, unbiased.index)),
                unbiased.get("variance_x_f_evals_low", pd.Series(None, unbiased.index)),
                unbiased.get("variance_x_f_evals_high", pd.Series(None, unbiased.index)))],
            "rank (f evals)": unbiased.get("rank_by_f_evals"),
            "note": unbiased.note})
        flagged = cells[biased]
        out["biased"] = pd.DataFrame({
            "task": flagged.task, "estimator": flagged.estimator,
            "variance × time": [_interval(v, None, None) for v in flagged.variance_x_time],
            "note": flagged.note})
    if len(training):
        out["training"] = training
    return out


CAPTIONS = {
    "by_time": ("Rank by variance × time", "Per task (study: problem family), each unbiased "
                "estimator's rank by variance × time per estimate among the task's unbiased "
                "estimators; =1: its interval overlaps the best one's. — : not measured there, "
                "or not ranked (non-finite estimates, no variance)."),
    "by_f_evals": ("Rank by variance × evaluations of f", "The same by the variance of an "
                   "estimate that costs one evaluation of f (ARM and DisARM pay 2 per draw, "
                   "REBAR and RELAX 3)."),
    "values": ("The values behind the ranks", "Each task at its largest n_samples, averaged "
               "over its settings, gradient components and (training studies) checkpoints; "
               "95% intervals from the variance's CI and the timing spread."),
    "biased": ("Biased estimators, listed apart", "|bias| ≥ 4 SE somewhere in the task "
               "(components corrected for) or biased by construction (relaxations): a low "
               "variance does not make them better, so they are not ranked."),
    "training": ("Training with each estimator", "Where each estimator's training runs end "
                 "(bench/train_each.py): means over seeds with the half-width of their 95% t "
                 "interval, milliseconds and evaluations of f per update."),
}


def write(reports: Path, out: Path | None = None) -> Path:
    """``out`` (default ``reports/leaderboard``): index.html, summary.md and
    leaderboard.json from every study under ``reports``; returns index.html's path.

    Raises:
      ValueError: no study has a leaderboard file, or one is unreadable.
    """
    from bench.report import page

    reports = Path(reports)
    out = Path(out) if out is not None else reports / "leaderboard"
    studies = gather(reports)
    if not studies:
        raise ValueError(f"{reports}: no report has a {FILE}; build the studies' reports "
                         "first (gradvar report, make paper / dimension / discrete / blr / vae).")
    tables_out = frames(studies)
    report_tables = [page.Table(name, *CAPTIONS[name], frame)
                     for name, frame in tables_out.items()]
    names = ", ".join(study["study"] for study in studies)
    lede = (f"gradvar's leaderboard: the studies under {reports} ({names}) side by side. "
            "Unbiased "
            "estimators are ranked per task by variance × cost, the cost in seconds and in "
            "evaluations of f; biased ones are listed apart.")
    out.mkdir(parents=True, exist_ok=True)
    page.write_html(out / "index.html", "gradvar leaderboard", lede, [], report_tables, [])
    page.write_markdown(out / "summary.md", "gradvar leaderboard", lede, [], report_tables, [])
    (out / FILE).write_text(json.dumps({"kind": "leaderboard", "version": VERSION,
                                        "studies": studies}, indent=1) + "\n")
    return out / "index.html"

"""Runs a grid: every cell measured (:mod:`bench.measuring`) into the durable store.

A serial run (``workers=1``) measures and times one cell after another in this process; on
a Dask cluster (:mod:`bench.distributed`) the statistics of every cell come first, in
parallel, and the timed calls after, one cell at a time per machine. A training grid's
cells are measured at checkpoints of its training runs (:mod:`bench.trajectories`), which
train up to each checkpoint as its first cell comes. Either way this process alone
writes: each finished cell before the next, so ``--resume`` finishes an interrupted run
with the same numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import itertools
import platform
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

import estimators as E
from bench import distributed, lab_setups, train_each
from bench.grid import Grid, parse
from bench.measuring import CellError, measure, time_cell
from bench.store import ResultsError, RunStore
from bench.trajectories import Trajectories
import tensorflow as tf  # after estimators: its TensorFlow settings come first
import tensorflow_probability as tfp

__all__ = ["CellError", "RunInterrupted", "run", "resume", "new_run_id", "run_metadata"]


class RunInterrupted(Exception):
    """Ctrl-C during a run; every finished cell is already stored."""

    def __init__(self, store: RunStore, done: int, total: int, untimed: int = 0,
                 runs: tuple[int | None, int] = (None, 0)):
        waiting = f" ({untimed} more have their statistics, awaiting timing)" if untimed else ""
        trained = (f" and {runs[0]} of {runs[1]} training runs (the one in progress stored "
                   "where it stopped)" if runs[0] is not None else "")
        super().__init__(f"interrupted after {done} of {total} cells{trained}{waiting}")
        self.store, self.done, self.total = store, done, total


@contextlib.contextmanager
def _stop_between_cells():
    """First Ctrl-C: finish the cell in flight, then stop. A second one stops at once.

    Letting the cell finish keeps the interrupt out of TensorFlow and pyarrow calls, where
    it could surface as some other exception or leave a half-written file.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_interrupt(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after the cells or training step in progress (Ctrl-C again to stop "
              "now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_metadata(grid: Grid, run_id: str) -> dict:
    return {
        "run_id": run_id, "grid_name": grid.name, "grid_path": grid.path, "grid": grid.source,
        "grid_dir": grid.base_dir, "user_files": grid.user_files(),
        "seed": grid.seed, "backend": grid.backend, "n_replicates": grid.n_replicates,
        "n_cells": len(grid.cells), "skipped": [list(s) for s in grid.skipped],
        "gradvar": E.__version__, "tensorflow": tf.__version__,
        "tensorflow_probability": tfp.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "device": E.DEVICE, "git_commit": _git_commit(), "started": _now(),
        **({"training": dataclasses.asdict(grid.training)} if grid.training else {}),
        **({"train_each": dataclasses.asdict(grid.train_each)} if grid.train_each else {}),
    }


TIMINGS_EVERY_S = 10.0
"""How often a cluster run's driver stores the timing phase's results (a kill -9 loses at
most this much timing, never statistics)."""


def new_run_id(grid: Grid, out_dir: Path | None = None) -> str:
    """``<date>-<time>-<grid name>``, with a suffix if ``out_dir`` already has that run."""
    run_id = f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{grid.name}"
    if out_dir is not None:
        stem, index = run_id, 1
        while (store := RunStore(out_dir, run_id)).parts.exists() or store.table.exists():
            index += 1
            run_id = f"{stem}-{index}"
    return run_id


def run(grid: Grid, out_dir: Path, run_id: str | None = None, progress: bool = True,
        resume: bool = False, workers: int | None = 1, scheduler: str | None = None,
        on_start: Callable[[int], None] | None = None) -> Path:
    """Runs every cell of ``grid`` into a new run (named ``run_id``, default
    :func:`new_run_id`), or with ``resume`` finishes the existing store of ``run_id``.

    ``workers`` > 1 runs the cells on a local Dask cluster of that many processes (None:
    :func:`bench.distributed.default_workers`), and ``scheduler`` (``tcp://HOST:PORT``) on an existing
    cluster (:mod:`bench.distributed`); the statistics are the same either way, bit for
    bit. ``on_start(workers)`` is called once the cluster answers, before anything is
    stored.

    Raises:
      ValueError: ``workers`` is not positive. ResultsError: the run exists already (or,
      with ``resume``, cannot be resumed). CellError, RunInterrupted: as the cells run.
    """
    if workers is None:
        workers = 1 if scheduler is not None else distributed.default_workers(grid)[0]
    if workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers}.")
    out_dir = Path(out_dir)
    run_id = run_id or new_run_id(grid, out_dir)
    store = RunStore(out_dir, run_id)
    if not resume and (store.parts.exists() or store.table.exists()):
        raise ResultsError(f"run {run_id} already exists in {out_dir}; resume it with "
                           f"--resume {run_id}, or start a new run.")
    cluster = contextlib.nullcontext()
    if workers > 1 or scheduler is not None:  # first: a cluster that fails starts nothing
        cluster = distributed.client(workers, scheduler)
    with cluster as dask_client:
        if on_start is not None:
            on_start(workers)
        if not resume:
            store.start(run_metadata(grid, run_id))
        return _run(grid, store, dask_client, progress)


def _run(grid: Grid, store: RunStore, dask_client, progress: bool) -> Path:
    trajectories = Trajectories(grid, store)
    with _stop_between_cells() as stop:
        try:
            if dask_client is None:
                _run_serial(grid, store, trajectories, stop, progress)
            else:
                _run_on_cluster(grid, store, trajectories, stop, progress, dask_client)
            if grid.train_each is not None:  # after the cells: their timings run alone
                if dask_client is None:
                    _train_serial(grid, store, stop, progress)
                else:
                    _train_on_cluster(grid, store, stop, progress, dask_client)
        except KeyboardInterrupt:
            timings = store.timings()
            done = [store.done(cell.key) or cell.key in timings for cell in grid.cells]
            untimed = sum(store.untimed(cell.key) and not finished
                          for cell, finished in zip(grid.cells, done))
            runs = len(grid.train_runs) - len(_unfinished_runs(grid, store)) \
                if grid.train_runs else None
            raise RunInterrupted(store, sum(done), len(grid.cells), untimed,
                                 (runs, len(grid.train_runs))) from None
    metadata = {**store.metadata(), "finished": _now()}
    if grid.lab_setups:
        metadata["lab"] = store.read_json("lab")
    if store.read_json("cluster") is not None:
        metadata["cluster"] = store.read_json("cluster")
    if grid.training is not None:
        metadata["trajectories"] = trajectories.records()
    if grid.train_each is not None:
        metadata["training_runs"] = train_each.records(grid, store)
    return store.finish([cell.key for cell in grid.cells], metadata)


def _bar(grid: Grid, done: int, progress: bool, phase: str | None = None) -> tqdm:
    return tqdm(total=len(grid.cells), initial=done, unit="cell", disable=not progress,
                dynamic_ncols=True, file=sys.stderr, desc=phase)


def _show_phase(bar: tqdm, label: str) -> Callable[[str], None]:
    """A function that puts ``label: <phase>`` on the bar: a large cell spends seconds
    in each phase of :func:`measure`, and in writing its rows."""
    def show(phase: str) -> None:
        bar.set_postfix_str(f"{label}: {phase}", refresh=True)
    return show


def _run_serial(grid: Grid, store: RunStore, trajectories, stop, progress: bool) -> None:
    """One cell after another in this process, each timed right after its statistics. A
    resumed cluster run's cells whose statistics are stored are only timed."""
    timings = store.timings()
    todo = [cell for cell in grid.cells if not store.done(cell.key) and cell.key not in timings]
    with _bar(grid, len(grid.cells) - len(todo), progress) as bar:
        for cell in todo:
            if stop.is_set():
                raise KeyboardInterrupt
            theta = None
            if cell.step is not None:
                theta = trajectories.theta_at(cell, stop, bar)
            show = _show_phase(bar, cell.label)
            try:
                if store.untimed(cell.key):
                    show("timing")
                    timings[cell.key] = time_cell(cell, grid.settings, theta)
                    store.write_timings(timings)
                else:
                    rows = measure(cell, grid.settings, theta, on_phase=show)
                    show(f"writing {len(rows):,} rows")
                    store.write_cell(cell.key, rows)
            except CellError as error:
                raise CellError(str(error), store) from None
            bar.update()
        trajectories.finish(stop, bar)
        _lab(grid, store, stop, bar)


def _training_bar(grid: Grid, todo: list, progress: bool) -> tqdm:
    runs = len(grid.train_runs)
    return tqdm(total=runs, initial=runs - len(todo), unit="run", desc="training",
                disable=not progress, dynamic_ncols=True, file=sys.stderr)


def _unfinished_runs(grid: Grid, store: RunStore) -> list:
    return [run for run in grid.train_runs
            if not train_each.finished(store.read_json(run.name), grid.train_each)]


def _train_serial(grid: Grid, store: RunStore, stop, progress: bool) -> None:
    """Every unfinished run of the grid's ``[train_each]``, one after another in this
    process (bench/train_each.py)."""
    each, todo = grid.train_each, _unfinished_runs(grid, store)
    with _training_bar(grid, todo, progress) as bar:
        for run in todo:
            if stop.is_set():
                raise KeyboardInterrupt

            def show(step, run=run):
                bar.set_postfix_str(f"{run.label}: step {step} of {each.settings.steps}",
                                    refresh=True)

            show(0)
            try:
                train_each.train(run, each, grid.seed, grid.backend, store.read_json(run.name),
                                 functools.partial(store.write_json, run.name), stop, show)
            except ValueError as error:
                raise CellError(f"training {run.label}: {error}", store) from None
            bar.update()


def _train_on_cluster(grid: Grid, store: RunStore, stop, progress: bool, dask_client) -> None:
    """Every unfinished run of the grid's ``[train_each]`` on the cluster, one task each;
    this process alone stores their states (a halted task returns where its run stopped)."""
    each, todo = grid.train_each, _unfinished_runs(grid, store)
    counts = distributed.hosts(dask_client)
    spec = (each, grid.seed, grid.backend, grid.user_files())
    with _training_bar(grid, todo, progress) as bar:

        def stored(group, result):
            for run in group.cells:
                if run.key in result:
                    store.write_json(run.name, result[run.key])
                    bar.update(train_each.finished(result[run.key], each))

        try:
            distributed.run_phase(dask_client, distributed.training_task, spec,
                                  (distributed.Group([run], [store.read_json(run.name)])
                                   for run in todo),
                                  counts, stored, stop, sum(counts.values()))
        except CellError as error:  # the resume hint needs the store
            raise CellError(str(error), store) from None


def _lab(grid: Grid, store: RunStore, stop, bar) -> None:
    """The lab's own setups, if the grid asks for them (once per run)."""
    if grid.lab_setups and store.read_json("lab") is None:
        if stop.is_set():
            raise KeyboardInterrupt
        bar.set_postfix_str("the lab's own setups", refresh=True)
        store.write_json("lab", lab_setups.run_lab(grid.seed))


def _run_on_cluster(grid: Grid, store: RunStore, trajectories, stop, progress: bool,
                    dask_client) -> None:
    """Statistics of every cell in parallel, then their timing one cell at a time per
    machine (:mod:`bench.distributed`). Only this process writes."""
    spec = (grid.settings, grid.user_files())
    timings = store.timings()
    todo = [cell for cell in grid.cells if not store.done(cell.key) and cell.key not in timings]
    fresh = [cell for cell in todo if not store.untimed(cell.key)]
    resumed = [cell for cell in todo if store.untimed(cell.key)]
    to_time = distributed.groups_of(resumed, [trajectories.theta_at(cell, stop, None)
                                              if cell.step is not None else None
                                              for cell in resumed])

    def phase_one(bar):
        """Groups of cells to measure; a training grid's trains up to each checkpoint first."""
        if grid.training is None:
            yield from distributed.groups_of(fresh)
            return
        for _, batch in itertools.groupby(fresh, key=lambda cell: (cell.trajectory, cell.step)):
            batch = list(batch)
            theta = trajectories.theta_at(batch[0], stop, bar)
            yield from distributed.groups_of(batch, [theta] * len(batch))

    counts = distributed.hosts(dask_client)
    distributed.size_threads(dask_client, counts)  # before any cell reaches a worker
    window = 2 * sum(counts.values())  # enough queued that no worker waits for the driver

    def stored(group, result):
        measured = result["rows"]  # the whole group, unless the run was interrupted
        for key, rows in measured.items():
            bar.set_postfix_str(f"storing {len(rows):,} rows", refresh=True)
            store.write_untimed(key, rows)
        kept = [index for index, cell in enumerate(group.cells) if cell.key in measured]
        to_time.append(distributed.Group([group.cells[i] for i in kept],
                                         [group.thetas[i] for i in kept], result["worker"]))
        bar.update(len(measured))

    flushed = [time.monotonic()]

    def timed(group, result):
        timings.update(result)
        bar.update(len(result))
        # Written every few seconds, not per cell: other work would slow the timed calls.
        if time.monotonic() - flushed[0] > TIMINGS_EVERY_S:
            store.write_timings(timings)
            flushed[0] = time.monotonic()

    # What the finished table's metadata says of the cluster (this session's, on a resume).
    cluster = {"workers_per_host": counts, "statistics_s": None, "timing_s": None}
    try:
        started = time.perf_counter()
        with _bar(grid, len(grid.cells) - len(fresh), progress, "statistics") as bar, \
                distributed.phases_shown(dask_client, bar):
            distributed.run_phase(dask_client, distributed.statistics_task, spec,
                                  phase_one(bar), counts, stored, stop, window)
            trajectories.finish(stop, bar)  # the rest of training, before timing starts
        cluster["statistics_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        with _bar(grid, len(grid.cells) - len(todo), progress, "timing") as bar:
            try:
                distributed.run_phase(dask_client, distributed.timing_task, spec,
                                      iter(to_time), counts, timed, stop, window)
            finally:  # also on Ctrl-C: what was timed stays timed
                store.write_timings(timings)
            cluster["timing_s"] = round(time.perf_counter() - started, 3)
            store.write_json("cluster", cluster)
            _lab(grid, store, stop, bar)
    except CellError as error:
        raise CellError(str(error), store) from None


def resume(run_ref: str, out_dir: Path, progress: bool = True, workers: int | None = 1,
           scheduler: str | None = None, on_start: Callable[[int], None] | None = None) -> Path:
    """Finishes an interrupted run (its id or ``.parts`` path) with the grid it started with."""
    store = RunStore.locate(run_ref, out_dir)
    metadata = store.metadata()
    grid = parse(metadata["grid"], metadata["grid_path"], metadata.get("grid_dir"))
    now = grid.user_files()
    changed = [path for path, digest in metadata.get("user_files", {}).items()
               if now.get(path) != digest]
    if changed:
        raise ResultsError(f"run {store.run_id}: {changed[0]} changed since the run started, so "
                           "resuming would mix cells of two different problems; start a new "
                           "run (or restore the file).")
    return run(grid, store.out_dir, store.run_id, progress, resume=True, workers=workers,
               scheduler=scheduler, on_start=on_start)

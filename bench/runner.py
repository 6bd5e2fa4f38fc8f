"""Runs a grid: every cell's replicate estimates -> metrics rows -> durable store.

Per cell: fetch the compiled program (compiling on first use of its shapes; that time is
reported as ``compile_time_s``, outside the timed region), compute the R estimates once at
the cell's seed (derived from the run seed and the cell's key, so numbers do not depend on
cell order or resumption), then time ``timing_repeats`` further identical calls and keep
the median. One row per parameter component. That is a serial run (``workers=1``); on a
Dask cluster (:mod:`bench.distributed`) the statistics of every cell come first, in
parallel, and the timed calls after, one cell at a time per machine.

A training grid (``[training]``, :mod:`bench.training`) measures its cells at checkpoints
of a training run: before a checkpoint's first cell the run trains up to it, storing its
state, and the cells are measured at the θ reached; their rows carry ``step`` and θ at
that step (``theta_label`` names the start). Training to the last step completes the
training log, which the finished table keeps in its metadata (``trajectories``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import itertools
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

import estimators as E
from bench import cores, lab_setups, metrics, problem_specs, schema, training
from bench.grid import Cell, Grid, parse
from bench.store import ResultsError, RunStore
import tensorflow as tf  # after estimators: its TensorFlow settings come first
import tensorflow_probability as tfp


class CellError(Exception):
    """A cell cannot be measured (e.g. its truth disagrees with Monte Carlo); every
    finished cell is already stored."""

    def __init__(self, message: str, store: RunStore | None = None):
        super().__init__(message)
        self.store = store


class RunInterrupted(Exception):
    """Ctrl-C during a run; every finished cell is already stored."""

    def __init__(self, store: RunStore, done: int, total: int, untimed: int = 0):
        waiting = f" ({untimed} more have their statistics, awaiting timing)" if untimed else ""
        super().__init__(f"interrupted after {done} of {total} cells{waiting}")
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


def user_files(grid: Grid) -> dict[str, str]:
    """{path: sha256} of the files behind the grid's own problem factories."""
    files = {}
    for spec in dict.fromkeys(cell.problem for cell in grid.cells):
        path = problem_specs.source_file(spec, grid.base_dir or None)
        if path is not None:
            files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def run_metadata(grid: Grid, run_id: str) -> dict:
    return {
        "run_id": run_id, "grid_name": grid.name, "grid_path": grid.path, "grid": grid.source,
        "grid_dir": grid.base_dir, "user_files": user_files(grid),
        "seed": grid.seed, "backend": grid.backend, "n_replicates": grid.n_replicates,
        "n_cells": len(grid.cells), "skipped": [list(s) for s in grid.skipped],
        "gradvar": E.__version__, "tensorflow": tf.__version__,
        "tensorflow_probability": tfp.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "device": E.DEVICE, "git_commit": _git_commit(), "started": _now(),
        **({"training": dataclasses.asdict(grid.training)} if grid.training else {}),
    }


def _compiled(cell: Cell, grid: Grid, theta: np.ndarray, call: bool = True):
    """``cell``'s compiled program and its estimates at the cell's seed (the first call of
    new shapes compiles; that time is the program's ``compile_time_s``). ``call=False``:
    no estimates (None), but the program compiled (by a first call) if it was not yet."""
    try:
        program = E.program(cell.estimator, cell.problem_obj, theta, cell.n_samples,
                            grid.n_replicates, cell.batch_size, grid.backend)
        if call or program.compile_time_s is None:
            estimates = program(theta, cell.seed(grid.seed))
            return program, estimates if call else None
        return program, None
    except ValueError as error:  # the problem's own functions, named in one sentence
        raise CellError(f"{cell.label}: {error}") from None
    except tf.errors.ResourceExhaustedError:
        raise CellError(f"{cell.label}: out of memory; lower n_replicates or batch_size.") \
            from None


def _intra_op_threads() -> int:
    """The threads TensorFlow's kernels may use in this process (its default: the cores)."""
    return (tf.config.threading.get_intra_op_parallelism_threads()
            or int(os.environ.get("TF_NUM_INTRAOP_THREADS") or 0)
            or cores())


def _theta(cell: Cell, theta) -> np.ndarray:
    return np.asarray(cell.theta if theta is None else theta, dtype=np.float64)


def time_cell(cell: Cell, grid: Grid, theta=None) -> dict:
    """The wall-clock columns of ``cell``: the median (and fastest, slowest) of
    ``timing_repeats`` calls of its compiled program, compiled and warmed up first if
    this process has not run it yet. Callers make sure nothing else runs meanwhile."""
    theta = _theta(cell, theta)
    program, _ = _compiled(cell, grid, theta, call=False)
    return _timed_calls(program, cell, grid, theta)


def _timed_calls(program, cell: Cell, grid: Grid, theta: np.ndarray) -> dict:
    """The wall-clock columns from ``timing_repeats`` calls of a compiled ``program``."""
    seed = cell.seed(grid.seed)
    times = []
    for _ in range(grid.timing_repeats):
        started = time.perf_counter()
        program(theta, seed)
        times.append(time.perf_counter() - started)
    per_call = statistics.median(times)
    return {
        "time_per_estimate_s": per_call / grid.n_replicates,
        # The spread of the timed calls: timings of a few µs are mostly noise, and the
        # efficiency ranking's intervals need to know how much.
        "time_per_estimate_min_s": min(times) / grid.n_replicates,
        "time_per_estimate_max_s": max(times) / grid.n_replicates,
        "time_per_call_s": per_call,
        "samples_per_s": cell.n_samples * grid.n_replicates / per_call,
    }


UNTIMED = dict.fromkeys(schema.WALL_CLOCK, float("nan"))
TIMINGS_EVERY_S = 10.0
"""How often a cluster run's driver stores the timing phase's results (a kill -9 loses at
most this much timing, never statistics)."""
"""The wall-clock columns of a cell whose timing phase is still to come."""


def measure(cell: Cell, grid: Grid, theta=None, timed: bool = True,
            workers_on_host: int = 1,
            on_phase: Callable[[str], None] | None = None) -> pd.DataFrame:
    """The metric rows (one per parameter component) of one cell, at ``theta`` (default
    the cell's own; a training checkpoint's θ is the trajectory's), as a DataFrame.

    ``timed``: take the wall-clock columns right away (``timing_mode`` "serial": nothing
    else runs); otherwise they are NaN and ``timing_mode`` is "exclusive", for a separate
    timing phase (:func:`time_cell`) to fill in. ``workers_on_host``: the worker
    processes sharing the machine meanwhile (compile time is taken here). ``on_phase``
    is told each phase as it starts ("estimates", "timing", "truth", "statistics"), for a
    progress bar: a cell of 10⁵ components spends seconds in each.

    Raises:
      CellError: the cell cannot be measured (its problem fails, its truth is refused,
        or it does not fit in memory).
    """
    phase = on_phase or (lambda name: None)
    problem = cell.problem_obj
    theta = _theta(cell, theta)
    phase("estimates")
    program, estimates = _compiled(cell, grid, theta)
    if timed:
        phase("timing")
    timing = _timed_calls(program, cell, grid, theta) if timed else UNTIMED
    phase("truth")
    try:
        truth = problem.truth(theta)
    except ValueError as error:  # TruthError, or a problem that fails in float64
        raise CellError(f"{cell.label}: {error}") from None
    phase("statistics")
    # One value per parameter component ([d] arrays), then one value for the whole cell:
    # a new column is one line in either.
    per_component = {
        "param": problem.param_labels, "param_block": problem.param_blocks, "theta": theta,
        **metrics.cell_metrics(estimates, truth.gradient, cell.n_samples,
                               truth_se=truth.gradient_se),
        "truth_checked": truth.component_checked, "truth_tolerance": truth.tolerance,
    }
    per_cell = {
        "problem": problem.name, "problem_family": cell.problem,
        **({} if cell.step is None else {"step": cell.step}),
        "estimator": cell.estimator,
        "theta_label": problem.describe_theta(cell.theta),  # a training run's start
        "n_samples": cell.n_samples, "batch_size": cell.batch_size,
        "n_replicates": grid.n_replicates,
        "truth_kind": truth.kind, "truth_method": truth.method, "truth_note": truth.note,
        "f_jumps": truth.smooth is False,
        "f_evals_per_estimate": program.estimator.f_evals_per_estimate(
            problem, theta, cell.n_samples, cell.batch_size),
        "event_size": int(np.prod(problem.event_shape(theta), dtype=int)),
        **timing,
        "compile_time_s": program.compile_time_s,
        "timing_mode": "serial" if timed else "exclusive",
        "workers_on_host": workers_on_host, "intra_op_threads": _intra_op_threads(),
        "backend": grid.backend, "device": E.DEVICE, "seed": cell.seed(grid.seed),
        "cell": cell.table_key,
    }
    return schema.columns_frame(per_component, per_cell)


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
        from bench import distributed

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
        from bench import distributed

        cluster = distributed.client(workers, scheduler)
    with cluster as dask_client:
        if on_start is not None:
            on_start(workers)
        if not resume:
            store.start(run_metadata(grid, run_id))
        return _run(grid, store, dask_client, progress)


def _run(grid: Grid, store: RunStore, dask_client, progress: bool) -> Path:
    trajectories = _Trajectories(grid, store)
    with _stop_between_cells() as stop:
        try:
            if dask_client is None:
                _run_serial(grid, store, trajectories, stop, progress)
            else:
                _run_on_cluster(grid, store, trajectories, stop, progress, dask_client)
        except KeyboardInterrupt:
            timings = store.timings()
            done = [store.done(cell.key) or cell.key in timings for cell in grid.cells]
            untimed = sum(store.untimed(cell.key) and not finished
                          for cell, finished in zip(grid.cells, done))
            raise RunInterrupted(store, sum(done), len(grid.cells), untimed) from None
    metadata = {**store.metadata(), "finished": _now()}
    if grid.lab_setups:
        metadata["lab"] = store.read_json("lab")
    if store.read_json("cluster") is not None:
        metadata["cluster"] = store.read_json("cluster")
    if grid.training is not None:
        metadata["trajectories"] = trajectories.records()
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
                    timings[cell.key] = time_cell(cell, grid, theta)
                    store.write_timings(timings)
                else:
                    rows = measure(cell, grid, theta, on_phase=show)
                    show(f"writing {len(rows):,} rows")
                    store.write_cell(cell.key, rows)
            except CellError as error:
                raise CellError(str(error), store) from None
            bar.update()
        trajectories.finish(stop, bar)
        _lab(grid, store, stop, bar)


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
    from bench import distributed

    spec = (grid.source, grid.path, grid.base_dir, user_files(grid))
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
    window = 2 * sum(counts.values())  # enough queued that no worker waits for the driver

    def stored(group, result):
        measured = result["rows"]  # the whole group, unless the run was interrupted
        for key, rows in measured.items():
            bar.set_postfix_str(f"storing {len(rows):,} rows", refresh=True)
            store.write_untimed(key, rows)
        to_time.append(distributed.Group(
            [key for key in group.keys if key in measured],
            [theta for key, theta in zip(group.keys, group.thetas) if key in measured],
            result["worker"]))
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


class _Trajectories:
    """The training runs of a training grid, loaded from the store or started fresh."""

    def __init__(self, grid: Grid, store: RunStore):
        self.grid, self.store, self.runs = grid, store, {}
        self.cells = {}  # trajectory key -> its first cell (problem, arguments, start)
        for cell in grid.cells:
            if cell.trajectory is not None:
                self.cells.setdefault(cell.trajectory, cell)

    def get(self, key: str) -> training.Trajectory:
        if key not in self.runs:
            cell = self.cells[key]
            state = self.store.read_json(training.trajectory_name(key))
            try:
                self.runs[key] = training.Trajectory(
                    cell.problem_obj, cell.theta, self.grid.training, self.grid.seed, key,
                    self.grid.backend, state)
            except ValueError as error:
                raise CellError(f"training {cell.problem_obj.name}: {error}", self.store) \
                    from None
        return self.runs[key]

    def _advance(self, run: training.Trajectory, cell: Cell, to_step: int, stop, bar) -> None:
        """Trains ``run`` to ``to_step``, storing its state then (or where it stopped)."""
        total = self.grid.training.steps
        name = cell.problem_obj.name

        def show(step):
            bar.set_postfix_str(f"training {name}: step {step} of {total}", refresh=True)

        show(run.step)
        try:
            reached = run.advance(to_step, stop, show)
        except training.TrainingError as error:
            # Resuming would meet the same step again: the grid must change, so no resume hint.
            raise CellError(f"{name}: {error}") from None
        except ValueError as error:  # the problem's own functions at a θ reached in training
            raise CellError(f"{name}: training at step {run.step}: {error}") from None
        self.store.write_json(training.trajectory_name(run.key), run.state)
        if not reached:
            raise KeyboardInterrupt

    def theta_at(self, cell: Cell, stop, bar) -> np.ndarray:
        """θ of ``cell``'s checkpoint, training up to it first if need be."""
        run = self.get(cell.trajectory)
        if str(cell.step) not in run.state["checkpoints"]:
            self._advance(run, cell, cell.step, stop, bar)
        return run.theta_at(cell.step)

    def finish(self, stop, bar) -> None:
        """Every run trained to its last step (the rest of the training log)."""
        for key, cell in self.cells.items():
            run = self.get(key)
            if run.step < self.grid.training.steps:
                self._advance(run, cell, self.grid.training.steps, stop, bar)

    def records(self) -> list[dict]:
        """What the finished table keeps of each run: where it started, θ at each
        checkpoint and the training log."""
        out = []
        for key, cell in self.cells.items():
            run = self.get(key)
            problem = cell.problem_obj
            out.append({
                "problem": problem.name, "problem_family": cell.problem,
                "start": list(cell.theta), "theta_label": problem.describe_theta(cell.theta),
                "train_seed": run.train_seed, "train_seconds": run.state["train_seconds"],
                "checkpoints": run.state["checkpoints"], "log": run.state["log"]})
        return out


def resume(run_ref: str, out_dir: Path, progress: bool = True, workers: int | None = 1,
           scheduler: str | None = None, on_start: Callable[[int], None] | None = None) -> Path:
    """Finishes an interrupted run (its id or ``.parts`` path) with the grid it started with."""
    store = RunStore.locate(run_ref, out_dir)
    metadata = store.metadata()
    grid = parse(metadata["grid"], metadata["grid_path"], metadata.get("grid_dir"))
    now = user_files(grid)
    changed = [path for path, digest in metadata.get("user_files", {}).items()
               if now.get(path) != digest]
    if changed:
        raise ResultsError(f"run {store.run_id}: {changed[0]} changed since the run started, so "
                           "resuming would mix cells of two different problems; start a new "
                           "run (or restore the file).")
    return run(grid, store.out_dir, store.run_id, progress, resume=True, workers=workers,
               scheduler=scheduler, on_start=on_start)

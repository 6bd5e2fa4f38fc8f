"""Runs a grid: every cell's replicate estimates -> metrics rows -> durable store.

Per cell: fetch the compiled program (compiling on first use of its shapes; that time is
reported as ``compile_time_s``, outside the timed region), compute the R estimates once at
the cell's seed (derived from the run seed and the cell's key, so numbers do not depend on
cell order or resumption), then time ``timing_repeats`` further identical calls and keep
the median. One row per parameter component.

A training grid (``[training]``, :mod:`bench.training`) measures its cells at checkpoints
of a training run: before a checkpoint's first cell the run trains up to it, storing its
state, and the cells are measured at the θ reached; their rows carry ``step`` and θ at
that step (``theta_label`` names the start). Training to the last step completes the
training log, which the finished table keeps in its metadata (``trajectories``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import datetime as dt
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

import estimators as E
from bench import lab_setups, metrics, problem_specs, training
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

    def __init__(self, store: RunStore, done: int, total: int):
        super().__init__(f"interrupted after {done} of {total} cells")
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
        print("\nstopping after the current cell or training step (Ctrl-C again to stop now)",
              file=sys.stderr)

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


def measure(cell: Cell, grid: Grid, theta=None) -> list[dict]:
    """The metric rows (one per parameter component) of one cell, at ``theta`` (default
    the cell's own; a training checkpoint's θ is the trajectory's)."""
    problem = cell.problem_obj
    theta = np.asarray(cell.theta if theta is None else theta, dtype=np.float64)
    seed = cell.seed(grid.seed)
    try:
        program = E.program(cell.estimator, problem, theta, cell.n_samples,
                            grid.n_replicates, cell.batch_size, grid.backend)
        estimates = program(theta, seed)  # compiles on the first call of these shapes
    except ValueError as error:  # the problem's own functions, named in one sentence
        raise CellError(f"{cell.label}: {error}") from None
    except tf.errors.ResourceExhaustedError:
        raise CellError(f"{cell.label}: out of memory; lower n_replicates or batch_size.") \
            from None
    times = []
    for _ in range(grid.timing_repeats):
        started = time.perf_counter()
        program(theta, seed)
        times.append(time.perf_counter() - started)
    per_call = statistics.median(times)
    try:
        truth = problem.truth(theta)
    except ValueError as error:  # TruthError, or a problem that fails in float64
        raise CellError(f"{cell.label}: {error}") from None
    f_evals = program.estimator.f_evals_per_estimate(problem, theta, cell.n_samples,
                                                     cell.batch_size)
    label = problem.describe_theta(cell.theta)  # a training run's start
    at = {} if cell.step is None else {"step": cell.step}
    event_size = int(np.prod(problem.event_shape(theta), dtype=int))
    rows = []
    for index, (param, block) in enumerate(zip(problem.param_labels, problem.param_blocks)):
        rows.append({
            "problem": problem.name, "problem_family": cell.problem, **at,
            "estimator": cell.estimator, "param": param, "param_block": block,
            "theta": float(theta[index]), "theta_label": label,
            "n_samples": cell.n_samples, "batch_size": cell.batch_size,
            "n_replicates": grid.n_replicates,
            **metrics.cell_metrics(estimates[:, index], truth.gradient[index], cell.n_samples,
                                   truth_se=truth.gradient_se[index]),
            "truth_kind": truth.kind, "truth_checked": bool(truth.checked),
            "f_evals_per_estimate": f_evals, "event_size": event_size,
            "time_per_estimate_s": per_call / grid.n_replicates,
            # The spread of the timed calls: timings of a few µs are mostly noise, and
            # the efficiency ranking's intervals need to know how much.
            "time_per_estimate_min_s": min(times) / grid.n_replicates,
            "time_per_estimate_max_s": max(times) / grid.n_replicates,
            "time_per_call_s": per_call,
            "compile_time_s": program.compile_time_s,
            "samples_per_s": cell.n_samples * grid.n_replicates / per_call,
            "backend": grid.backend, "device": E.DEVICE, "seed": seed, "cell": cell.key,
        })
    return rows


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
        resume: bool = False) -> Path:
    """Runs every cell of ``grid`` into a new run (named ``run_id``, default
    :func:`new_run_id`), or with ``resume`` finishes the existing store of ``run_id``."""
    out_dir = Path(out_dir)
    run_id = run_id or new_run_id(grid, out_dir)
    store = RunStore(out_dir, run_id)
    if not resume:
        if store.parts.exists() or store.table.exists():
            raise ResultsError(f"run {run_id} already exists in {out_dir}; resume it with "
                               f"--resume {run_id}, or start a new run.")
        store.start(run_metadata(grid, run_id))
    todo = [cell for cell in grid.cells if not store.done(cell.key)]
    done = len(grid.cells) - len(todo)
    trajectories = _Trajectories(grid, store)
    with tqdm(total=len(grid.cells), initial=done, unit="cell", disable=not progress,
              dynamic_ncols=True, file=sys.stderr) as bar, _stop_between_cells() as stop:
        try:
            for cell in todo:
                if stop.is_set():
                    raise KeyboardInterrupt
                theta = None
                if cell.step is not None:
                    theta = trajectories.theta_at(cell, stop, bar)
                bar.set_postfix_str(cell.label, refresh=True)
                try:
                    rows = measure(cell, grid, theta)
                except CellError as error:
                    raise CellError(str(error), store) from None
                store.write_cell(cell.key, rows)
                done += 1
                bar.update()
            trajectories.finish(stop, bar)
            if grid.lab_setups and store.read_json("lab") is None:
                if stop.is_set():
                    raise KeyboardInterrupt
                bar.set_postfix_str("the lab's own setups", refresh=True)
                store.write_json("lab", lab_setups.run_lab(grid.seed))
        except KeyboardInterrupt:
            raise RunInterrupted(store, done, len(grid.cells)) from None
    metadata = {**store.metadata(), "finished": _now()}
    if grid.lab_setups:
        metadata["lab"] = store.read_json("lab")
    if grid.training is not None:
        metadata["trajectories"] = trajectories.records()
    return store.finish([cell.key for cell in grid.cells], metadata)


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


def resume(run_ref: str, out_dir: Path, progress: bool = True) -> Path:
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
    return run(grid, store.out_dir, store.run_id, progress, resume=True)


FLOAT32_ROUNDING = 1e-5
"""Relative error of a float32 estimate's mean that is rounding, not bias: an estimator
that is exact up to rounding (DisARM on one Bernoulli at p = ½) has an SE of ~1e-12 and a
bias of ~1e-5 of the gradient, which must not count as detected bias."""


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem (per problem and checkpoint ``step`` in a training run): the best
    estimator by MSE and by variance × time per estimate.

    Compared at each problem's largest n_samples (and, of its batch sizes, the largest),
    averaging over θ and parameter components. An estimator with non-finite estimates in
    any of those cells is not ranked. Variance × time only ranks estimators with no detected
    bias (every |bias| < 4 SE + float32 rounding), not biased by construction (a
    relaxation), and with non-zero variance: a biased or deterministic estimator's variance
    says nothing about its error. Its interval runs from the variance CI's low end
    × the fastest timed call to the high end × the slowest; estimators whose interval
    overlaps the best one's are named as ties.
    """
    rows = []
    keys = ["problem", "step"] if "step" in frame.columns else ["problem"]
    for names, group in frame.groupby(keys, sort=False):
        names = names if isinstance(names, tuple) else (names,)
        largest = group[group.n_samples == group.n_samples.max()]
        largest = largest[largest.batch_size == largest.batch_size.max()]
        t_min = largest.get("time_per_estimate_min_s", largest.time_per_estimate_s)
        t_max = largest.get("time_per_estimate_max_s", largest.time_per_estimate_s)
        largest = largest.assign(efficiency=largest.variance * largest.time_per_estimate_s,
                                 efficiency_low=largest.variance_ci_low * t_min,
                                 efficiency_high=largest.variance_ci_high * t_max,
                                 biased=~(largest.bias.abs() < 4 * largest.bias_se
                                          + FLOAT32_ROUNDING * largest.truth.abs())
                                 | metrics.declared_biased(largest.estimator),
                                 nonfinite=largest.n_nonfinite > 0)
        by = largest.groupby("estimator").agg(
            mse=("mse", "mean"), efficiency=("efficiency", "mean"),
            efficiency_low=("efficiency_low", "mean"), efficiency_high=("efficiency_high", "mean"),
            biased=("biased", "any"), nonfinite=("nonfinite", "any"))
        excluded = int(by.nonfinite.sum())
        by = by[~by.nonfinite]
        stochastic = by[(by.efficiency > 0) & ~by.biased]
        row = {**{key: (int(v) if key == "step" else v) for key, v in zip(keys, names)},
               "n_samples": int(largest.n_samples.iloc[0]),
               "best_by_mse": by.mse.idxmin() if len(by) else "—",
               "mse": by.mse.min() if len(by) else float("nan"),
               "best_by_variance_x_time": "—", "variance_x_time": float("nan")}
        if len(stochastic):
            best = stochastic.efficiency.idxmin()
            ties = [name for name in stochastic.index if name != best
                    and stochastic.efficiency_low[name] <= stochastic.efficiency_high[best]]
            row["best_by_variance_x_time"] = best + (f" (tied: {', '.join(ties)})" if ties else "")
            row["variance_x_time"] = stochastic.efficiency[best]
        if excluded:
            row["not_ranked"] = f"{excluded} estimator(s) with non-finite estimates"
        rows.append(row)
    return pd.DataFrame(rows)

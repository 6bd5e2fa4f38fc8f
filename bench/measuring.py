"""Measuring one cell: its R estimates, their statistics and truth, and its timed calls.

Per cell: fetch the compiled program (compiling on first use of its shapes; that time is
reported as ``compile_time_s``, outside the timed region), compute the R estimates once at
the cell's seed (derived from the run seed and the cell's key, so numbers do not depend on
cell order or resumption), then time ``timing_repeats`` further identical calls and keep
the median. One row per parameter component.

Everything here takes a resolved :class:`bench.grid.Cell` (problem, estimator and θ as an
array, computed once when the grid was parsed) and the grid's
:class:`bench.grid.Settings`; θ is the cell's own unless a training checkpoint gives
another.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

import estimators as E
from bench import coordinates, cores, metrics, schema
from bench.grid import Cell, Settings
import tensorflow as tf  # after estimators: its TensorFlow settings come first


class CellError(Exception):
    """A cell cannot be measured (e.g. its truth disagrees with Monte Carlo); every
    finished cell is already stored (``store``: where, once the runner knows)."""

    def __init__(self, message: str, store=None):
        super().__init__(message)
        self.store = store


UNTIMED = dict.fromkeys(schema.WALL_CLOCK, float("nan"))
"""The wall-clock columns of a cell whose timing phase is still to come."""


def _compiled(cell: Cell, settings: Settings, theta: np.ndarray, call: bool = True):
    """``cell``'s compiled program, its estimator state (None for a stateless estimator)
    and its estimates at the cell's seed (the first call of new shapes compiles; that time
    is the program's ``compile_time_s``). ``call=False``: no estimates (None), but the
    program compiled (by a first call) if it was not yet.

    A stateful estimator's state starts at ``init_state(θ)`` and is updated on
    ``cell.warmup_batches`` fresh batches (keys from :meth:`Cell.warmup_seed`, distinct
    from the measuring seed) before the estimates, which hold it fixed."""
    try:
        program = E.program(cell.estimator_obj, cell.problem_obj, theta, cell.n_samples,
                            settings.n_replicates, cell.batch_size, settings.backend)
        state = None
        if program.stateful:
            state = program.init_state(theta)
            state = program.warm_up(theta, state, batches=cell.warmup_batches,
                                    seed=cell.warmup_seed(settings.seed))
        if call or program.compile_time_s is None:
            estimates = program(theta, cell.seed(settings.seed), state=state)
            return program, state, estimates if call else None
        return program, state, None
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
    """θ to measure at: the cell's validated array, or a training checkpoint's."""
    return cell.theta_array if theta is None else np.asarray(theta, dtype=np.float64)


def time_cell(cell: Cell, settings: Settings, theta=None) -> dict:
    """The wall-clock columns of ``cell``: the median (and fastest, slowest) of
    ``timing_repeats`` calls of its compiled program, compiled and warmed up first if
    this process has not run it yet. Callers make sure nothing else runs meanwhile."""
    theta = _theta(cell, theta)
    program, state, _ = _compiled(cell, settings, theta, call=False)
    return _timed_calls(program, state, cell, settings, theta)


def _timed_calls(program, state, cell: Cell, settings: Settings, theta: np.ndarray) -> dict:
    """The wall-clock columns from ``timing_repeats`` calls of a compiled ``program``
    (with the estimator's warmed-up ``state``: the calls that were measured), and for a
    stateful estimator as many timed updates of that state on one batch."""
    seed = cell.seed(settings.seed)
    times = []
    for _ in range(settings.timing_repeats):
        started = time.perf_counter()
        program(theta, seed, state=state)
        times.append(time.perf_counter() - started)
    per_call = statistics.median(times)
    updates = []
    for _ in range(settings.timing_repeats if program.stateful else 0):
        started = time.perf_counter()
        program.warm_up(theta, state, batches=1, seed=cell.warmup_seed(settings.seed))
        updates.append(time.perf_counter() - started)
    return {
        "time_per_update_s": (statistics.median(updates) / settings.n_replicates if updates
                              else float("nan")),
        "time_per_estimate_s": per_call / settings.n_replicates,
        # The spread of the timed calls: timings of a few µs are mostly noise, and the
        # efficiency ranking's intervals need to know how much.
        "time_per_estimate_min_s": min(times) / settings.n_replicates,
        "time_per_estimate_max_s": max(times) / settings.n_replicates,
        "time_per_call_s": per_call,
        "samples_per_s": cell.n_samples * settings.n_replicates / per_call,
    }


def measure(cell: Cell, settings: Settings, theta=None, timed: bool = True,
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
    program, state, estimates = _compiled(cell, settings, theta)
    if timed:
        phase("timing")
    timing = _timed_calls(program, state, cell, settings, theta) if timed else UNTIMED
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
        "theta_start": cell.theta_array,
        **metrics.cell_metrics(estimates, truth.gradient, cell.n_samples,
                               truth_se=truth.gradient_se),
        "truth_checked": truth.component_checked, "truth_tolerance": truth.tolerance,
    }
    per_cell = {
        "problem": problem.name, "problem_family": cell.problem,
        "problem_args": coordinates.arguments_text(cell.kwargs),
        **({} if cell.step is None else {"step": cell.step}),
        "estimator": cell.estimator, **coordinates.estimator_columns(cell.estimator_obj),
        "state_updates": cell.warmup_batches if program.stateful else 0,
        "theta_label": cell.theta_label,  # a training run's start
        "n_samples": cell.n_samples, "batch_size": cell.batch_size,
        "n_replicates": settings.n_replicates,
        "truth_kind": truth.kind, "truth_method": truth.method, "truth_note": truth.note,
        "f_jumps": truth.smooth is False,
        "f_evals_per_estimate": program.estimator.f_evals_per_estimate(
            problem, theta, cell.n_samples, cell.batch_size),
        "event_size": int(np.prod(problem.event_shape(theta), dtype=int)),
        **timing,
        "compile_time_s": program.compile_time_s,
        "timing_mode": "serial" if timed else "exclusive",
        "workers_on_host": workers_on_host, "intra_op_threads": _intra_op_threads(),
        "backend": settings.backend, "device": E.DEVICE, "seed": cell.seed(settings.seed),
        "cell": cell.table_key,
    }
    return schema.columns_frame(per_component, per_cell)

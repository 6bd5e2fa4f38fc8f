"""A training grid's training runs during a run: loaded from the store or started fresh,
trained up to each checkpoint as its cells come, their state stored at each checkpoint.

:mod:`bench.training` is one training run (its optimizer, keyed steps and state); this
module is the runner's view of all of a grid's runs: which run a cell belongs to, θ at
its checkpoint, and what the finished table keeps of each run.
"""

from __future__ import annotations

import numpy as np

from bench import training
from bench.grid import Cell, Grid
from bench.measuring import CellError
from bench.store import RunStore


class Trajectories:
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
                    training.training_problem(cell.problem_obj, cell.problem, cell.kwargs,
                                     cell.base_dir), cell.theta_array, self.grid.training,
                    self.grid.seed, key, self.grid.backend, state)
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
                "start": list(cell.theta), "theta_label": cell.theta_label,
                "train_seed": run.train_seed, "train_seconds": run.state["train_seconds"],
                "checkpoints": run.state["checkpoints"], "log": run.state["log"]})
        return out

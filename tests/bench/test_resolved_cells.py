"""A grid cell is resolved once (issue 26): when the grid is parsed, each cell gets its
problem, estimator and θ as a validated array, which the run, the Dask workers and the
engine's calls use; nothing in ``bench`` converts or validates θ again."""

import pickle
import sys

import numpy as np
import pytest

import estimators as E
from bench import grid, runner

SMALL = """
name = "resolved"
seed = 2
n_replicates = 20
timing_repeats = 1
estimators = ["score_function", "reparameterization"]
n_samples = [10, 20]

[[problems]]
name = "gaussian_square_nd"
D = 3
theta = [{mean = 0.5, std = 1.0}, {mean = [0.0, 0.1, 0.2], std = 2.0}]

[[problems]]
name = "seed_dependence"
theta = [-1.0, 0.5]
"""

VALIDATING = ("theta_vector", "describe_theta", "validate")
"""The Problem methods that validate θ (describe_theta and validate call theta_vector)."""


@pytest.fixture
def counted(monkeypatch):
    """{method: calls made from bench's own code} while the test runs; calls the engine
    makes inside ``estimators`` are not bench's, and are counted under "all"."""
    counts = dict.fromkeys(VALIDATING + ("all",), 0)

    def counting(name, method):
        def wrapper(self, *args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if name == "theta_vector":
                counts["all"] += 1
            if caller.startswith("bench."):
                counts[name] += 1
            return method(self, *args, **kwargs)
        return wrapper

    for name in VALIDATING:
        monkeypatch.setattr(E.Problem, name, counting(name, getattr(E.Problem, name)))
    validate = E.params.Parameters.vector  # the validation itself, whoever asks for it
    counts["validations"] = 0
    counts["validated"] = []

    def validation(self, *args, **kwargs):
        counts["validations"] += 1
        counts["validated"].append(args[0] if args else kwargs.get("theta"))
        return validate(self, *args, **kwargs)

    monkeypatch.setattr(E.params.Parameters, "vector", validation)
    return counts


def test_theta_is_validated_once_per_cell(counted, tmp_path):
    g = grid.parse(SMALL, "resolved.toml")
    assert len(g.cells) == 16
    thetas = {(cell.problem, cell.theta) for cell in g.cells}
    # Parsing: θ validated once per θ value of each entry (Problem.validated_theta),
    # shared by that θ's cells; bench converts nothing itself.
    assert counted["validations"] == len(thetas) == 4, counted["validated"]
    assert counted["theta_vector"] == counted["describe_theta"] == 0
    parsed = dict(counted)
    runner.run(g, tmp_path, progress=False)
    # The run: no validation from bench at all; the cells carry θ as an array.
    assert {name: counted[name] - parsed[name] for name in VALIDATING} == \
        dict.fromkeys(VALIDATING, 0)
    # And in all: the engine takes the cells' validated θ as it is, so θ is validated
    # once per θ value of the grid (4 here, for 16 cells), the engine's checks included.
    assert counted["validations"] == len(thetas) == 4, counted["validated"]


def test_a_cell_carries_its_resolution():
    g = grid.parse(SMALL, "resolved.toml")
    cell = g.cells[0]
    assert cell.theta_array.dtype == np.float64 and not cell.theta_array.flags.writeable
    assert cell.theta_array.tolist() == list(cell.theta) == [0.5] * 3 + [1.0] * 3
    assert cell.problem_obj is E.problems.get("gaussian_square_nd", D=3)
    assert cell.estimator_obj.label == cell.estimator
    assert cell.theta_label == cell.problem_obj.describe_theta(cell.theta)
    cells_of_program = [c for c in g.cells if c.program_key == cell.program_key]
    assert len(cells_of_program) == 2 and cells_of_program[1].theta != cell.theta


def test_a_cell_sent_to_a_worker_brings_theta_not_the_grid():
    """What a Dask worker receives: the cell's spec, θ's array and keys; its problem and
    estimator objects are looked up there, once per process."""
    cell = grid.parse(SMALL, "resolved.toml").cells[5]
    state = cell.__getstate__()
    assert "problem_obj" in cell.__dict__ and "problem_obj" not in state
    assert "theta_array" in state and "source" not in state
    copy = pickle.loads(pickle.dumps(cell))
    assert copy == cell and copy.key == cell.key and copy.seed(7) == cell.seed(7)
    assert np.array_equal(copy.theta_array, cell.theta_array)
    assert copy.problem_obj is cell.problem_obj  # the same process: the cached problem

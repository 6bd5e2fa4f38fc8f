"""Grid files: validation errors name the file and key; expansion; skipped combinations."""

import numpy as np
import pytest

from bench import grid

VALID = """
n_replicates = 10
estimators = ["score_function", "trapz", "reparameterization"]
n_samples = [1, 10]
batch_sizes = ["all", 5]

[[problems]]
name = "gaussian_cos"
k = [1, 2]
theta = [[1.0, 1.0]]

[[problems]]
name = "poisson_square"
theta = [2.0]
"""


def test_valid_grid_expands_and_lists_skipped():
    g = grid.parse(VALID, "g.toml")
    # gaussian: 2 k × 3 estimators × {n=1 b=1, n=10 b=10, n=10 b=5}, minus trapz at n=1
    # and at n=10 b=5 (a quadrature rule takes no batches). poisson: score_function only.
    assert len(g.cells) == 2 * (3 * 3 - 2) + 3
    reasons = {reason for _, reason in g.skipped}
    assert any("trapz is a quadrature rule" in r for r in reasons)
    assert "batch_size > n_samples" in reasons
    assert any("TFP does not reparameterize Poisson" in r for r in reasons)
    assert any("discrete distribution (Poisson)" in r for r in reasons)
    assert len({c.key for c in g.cells}) == len(g.cells)


def test_bundled_grids_are_valid(tmp_path, monkeypatch):
    # vae_mnist.toml reads the user's MNIST from mnist.npz in the current directory: here
    # random images of MNIST's shapes, for parsing (its θ starts and its data's checks).
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 256, (120, 28, 28), np.uint8),
             x_test=rng.integers(0, 256, (20, 28, 28), np.uint8))
    monkeypatch.chdir(tmp_path)
    for path in grid.bundled():
        parsed = grid.load(path)
        assert parsed.cells or parsed.train_runs, path


@pytest.mark.parametrize("text, message", [
    ("n_sample = [1]\n" + VALID, r"g.toml: n_sample: unknown key; allowed keys are"),
    (VALID.replace("n_replicates = 10", "n_replicates = 'ten'"),
     r"g.toml: n_replicates: must be an integer, got 'ten'"),
    ('lab_setups = "yes"\n' + VALID, r"g.toml: lab_setups: must be true or false, got 'yes'"),
    (VALID.replace("n_replicates = 10", "n_replicates = 0"),
     r"g.toml: n_replicates: must be a positive integer, got 0"),
    (VALID.replace('"trapz"', '"trapezoid"'),
     r"g.toml: estimators\[1\]: unknown estimator 'trapezoid'; choose one of: arm, arms"),
    (VALID.replace('name = "poisson_square"', 'name = "poisson"'),
     r"g.toml: problems\[1\].name: unknown problem 'poisson'; choose one of:"),
    (VALID.replace("k = [1, 2]", "kk = [1, 2]"),
     r"g.toml: problems\[0\].kk: unknown key for problem 'gaussian_cos'; allowed keys are "
     r"estimators, k, name, theta"),
    (VALID.replace("theta = [[1.0, 1.0]]", "theta = [1.0]"),
     r"g.toml: problems\[0\].theta: theta must have 2 value"),
    (VALID.replace('batch_sizes = ["all", 5]', 'batch_sizes = ["half"]'),
     r'g.toml: batch_sizes: must be a positive integer or "all"'),
    (VALID.replace('n_samples = [1, 10]\n', ''), r"g.toml: n_samples: is required"),
    ("n_samples = [1\n", r"g.toml: not valid TOML"),
    (VALID.replace("n_replicates = 10", 'backend = "tpu"'),
     r"g.toml: backend: must be one of xla, graph, eager, got 'tpu'"),
])
def test_invalid_grids(text, message):
    with pytest.raises(grid.GridError, match=message):
        grid.parse(text, "g.toml")


def test_unknown_grid_name_lists_bundled():
    with pytest.raises(grid.GridError, match=r"no such grid file or bundled grid \(bundled: "):
        grid.resolve("nonexistent")


def test_cell_seed_depends_on_run_seed_and_cell_only():
    cells = grid.parse(VALID, "g.toml").cells
    assert cells[0].seed(0) == grid.parse(VALID, "other.toml").cells[0].seed(0)
    assert cells[0].seed(0) != cells[0].seed(1)
    assert cells[0].seed(0) != cells[1].seed(0)

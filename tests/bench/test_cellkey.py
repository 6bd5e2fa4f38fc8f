"""The table's cell key: full for a small θ (as every earlier table), a digest beyond."""

import json

import pytest

from bench import cellkey, grid, schema

SMALL = """
n_samples = [10]
n_replicates = 4
estimators = ["score_function"]
[[problems]]
name = "gaussian_cos"
theta = [[0.5, 1.0]]
"""


def test_a_small_theta_keeps_the_full_key():
    cell = grid.parse(SMALL).cells[0]
    assert cell.table_key == cell.key
    parsed = cellkey.parse(cell.table_key)
    assert parsed.theta == [0.5, 1.0] and parsed.theta_id == "[0.5,1.0]"
    assert (parsed.problem, parsed.estimator, parsed.n_samples, parsed.batch_size,
            parsed.step) == ("gaussian_cos", "score_function", 10, 10, None)


def test_a_long_theta_is_replaced_by_its_digest():
    theta = [0.5] * 100 + [1.0] * 100
    full = json.dumps(["gaussian_square_nd", [["D", 100]], "score_function", theta, 10, 10,
                       3], separators=(",", ":"))
    key = cellkey.build("gaussian_square_nd", (("D", 100),), "score_function", theta, 10,
                        10, 3)
    assert len(key) < 120 and cellkey.compact(full) == key
    parsed, old = cellkey.parse(key), cellkey.parse(full)
    assert parsed.theta is None and old.theta == theta
    assert parsed.theta_id == old.theta_id == cellkey.theta_digest(theta)
    assert parsed.theta_id.endswith(":200") and parsed.step == old.step == 3
    assert parsed.setting == old.setting  # one setting, whichever version wrote the key
    other = cellkey.build("gaussian_square_nd", (("D", 100),), "score_function",
                          [0.5] * 100 + [1.5] * 100, 10, 10, 3)
    assert cellkey.parse(other).theta_id != parsed.theta_id


def test_the_boundary_is_full_theta_max():
    at = cellkey.build("p", (), "e", [1.0] * cellkey.FULL_THETA_MAX, 1, 1)
    beyond = cellkey.build("p", (), "e", [1.0] * (cellkey.FULL_THETA_MAX + 1), 1, 1)
    assert cellkey.parse(at).theta is not None and cellkey.parse(beyond).theta is None


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '["p",[],"e",7,1,1]',
                                  '["p",[],"e","md5:x",1,1]'])
def test_what_is_not_a_key_is_refused(text):
    with pytest.raises(cellkey.CellKeyError, match="malformed cell key"):
        cellkey.parse(text)
    assert cellkey.compact(text) == text


def test_keys_and_seeds_are_computed_once_and_unchanged():
    cell = grid.parse(SMALL).cells[0]
    assert cell.key is cell.key  # cached
    # The seed of this cell before issue 25 (sha256 of "<run seed>|<key>").
    import hashlib
    expected = int.from_bytes(hashlib.sha256(f"7|{cell.key}".encode()).digest()[:8],
                              "little") & (2**62 - 1)
    assert cell.seed(7) == expected and cell.seed(7) == expected
    assert cell.seed(0) != expected


WIDE = """
n_samples = [10]
n_replicates = 20
timing_repeats = 1
estimators = ["reparameterization", "score_function"]
[[problems]]
name = "gaussian_square_nd"
D = 40
theta = [{mean = 0.5, std = 1.0}]
"""


def test_a_table_with_full_keys_reads_and_reports_as_a_compact_one(tmp_path):
    # A table of this version (digests: θ has 80 components) and the same table as
    # versions before issue 25 wrote it (the full key on every row).
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench import runner, store
    from bench.report import data

    g = grid.parse(WIDE, "wide.toml")
    path = runner.run(g, tmp_path, progress=False)
    table = pq.read_table(path)
    new, _ = store.read_results(path)
    full = {cell.table_key: cell.key for cell in g.cells}
    assert set(new.cell) == set(full) and all(len(key) < 120 for key in full)
    old_path = tmp_path / "old.parquet"
    old_keys = [full[key] for key in table.column("cell").to_pylist()]
    pq.write_table(table.set_column(table.schema.get_field_index("cell"), "cell",
                                    pa.array(old_keys)), old_path)
    old, _ = store.read_results(old_path)
    assert old.equals(new)
    assert data.prepare(schema.with_defaults(pq.read_table(old_path).to_pandas())).coords.tolist() \
        == data.prepare(new).coords.tolist() == [{"mean": 0.5, "std": 1.0, "D": 40}] * 4


def test_the_reports_coordinates_come_from_the_columns():
    """The report reads a cell's coordinates from columns; a table of an earlier version
    gets them from its keys when it is read (bench.coordinates.derive), once."""
    import pandas as pd

    from bench import coordinates
    from bench.report import data

    theta = [0.1 * (i + 1) for i in range(40)] + [1.0] * 40
    blocks = ["mean"] * 40 + ["std"] * 40

    def rows(step=None):
        key = cellkey.build("gaussian_square_nd", (("D", 40),), "score_function", theta, 10,
                            10, step)
        return pd.DataFrame({"cell": key, "estimator": "score_function", "param_block": blocks,
                             "theta": theta, "theta_label": "mean=[0.1, …], std=1",
                             "step": step})

    plain, trained = rows(), rows(step=5)
    frame = coordinates.derive(pd.concat([plain, trained], ignore_index=True))
    assert frame.problem_args.unique().tolist() == ['{"D":40}']
    coords = data._coords_per_cell(frame)
    assert coords[plain.cell[0]] == {"mean": "[0.1, 0.2, 0.3, …]", "std": 1.0, "D": 40}
    # A training run's θ is its start, which a digest does not spell out: its label.
    assert frame[frame.step == 5].theta_start.isna().all()
    assert coords[trained.cell[0]] == {"start": "mean=[0.1, …], std=1", "D": 40, "step": 5}
    # A table of this version holds the start: the coordinates read it.
    written = frame.assign(theta_start=theta * 2)
    assert data._coords_per_cell(written)[trained.cell[0]] == \
        {"mean": "[0.1, 0.2, 0.3, …]", "std": 1.0, "D": 40, "step": 5}

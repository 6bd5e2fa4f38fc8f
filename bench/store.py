"""Durable result storage: one file per finished cell, one table per finished run.

While a run is in progress every finished cell is written to
``<out>/<run_id>.parts/<cell-hash>.parquet`` by write-to-temporary, fsync and atomic
rename, before the next cell starts; so a run killed at any moment (even SIGKILL) loses at
most the cells in flight. ``--resume`` skips the cells whose files exist. A run on a Dask
cluster (:mod:`bench.distributed`) first stores each cell's statistics as
``<cell-hash>.untimed.parquet`` (wall-clock columns NaN), and the timing phase's results
in one file, ``timing.json`` (:meth:`RunStore.write_timings`). At the end the
parts are combined, in grid order, into ``<out>/<run_id>.parquet``, whose schema metadata
(key ``gradvar``) holds the run metadata and the grid itself; once that table is durable
(fsynced and renamed into place) the ``.parts`` folder is removed. A run stopped between
the two leaves both: the table says the run is complete, and the parts are never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench import cellkey, schema

METADATA_KEY = b"gradvar"


class ResultsError(ValueError):
    """A file is not a readable gradvar results table."""


def current_umask() -> int:
    """The process's umask (reading it means setting it: put it straight back)."""
    current = os.umask(0)
    os.umask(current)
    return current


def _atomic_write(path: Path, write) -> None:
    """Writes via ``write(tmp_path)``, fsyncs, then renames over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(tmp)
        # mkstemp makes 0600 files; results are meant to be shared like any file the user
        # writes, so give them the permissions the user's umask gives new files.
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _write_table(path: Path, frame: pd.DataFrame, metadata: dict | None = None) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata is not None:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()})
    _atomic_write(path, lambda tmp: pq.write_table(table, tmp))


class RunStore:
    """The files of one run under ``out_dir``."""

    def __init__(self, out_dir: Path, run_id: str):
        self.out_dir, self.run_id = Path(out_dir), run_id
        self.parts = self.out_dir / f"{run_id}.parts"
        self.table = self.out_dir / f"{run_id}.parquet"

    @classmethod
    def locate(cls, run: str, out_dir: Path) -> "RunStore":
        """The store of an unfinished run, by run id or path to its ``.parts`` directory."""
        path = Path(run)
        if path.is_dir() and not path.name.endswith(".parts"):
            raise ResultsError(f"{run}: is a directory but not a run; give a run id or its "
                               "folder of finished cells, <out>/<run_id>.parts.")
        if path.suffix in (".parts", ".parquet"):
            path = path.with_suffix("")
        if path.parent == Path(".") and not Path(run).exists():
            path = Path(out_dir) / path.name  # a bare run id: look in --out
        store = cls(path.parent, path.name)
        if store.table.exists():  # written last: its parts may remain, the run is finished
            raise ResultsError(f"run {store.run_id} is already complete: {store.table}; "
                               "there is nothing to resume.")
        if not (store.parts / "run.json").exists():
            if store.parts.is_dir():
                raise ResultsError(f"{store.parts}: has no run record (run.json), so it is not "
                                   "an unfinished gradvar run; start a new run instead.")
            raise ResultsError(f"no unfinished run {run!r} in {store.out_dir} (looked for "
                               f"{store.parts}/run.json).")
        return store

    def start(self, metadata: dict) -> None:
        self.parts.mkdir(parents=True, exist_ok=True)
        _write_text(self.parts / "run.json", json.dumps(metadata, indent=1))

    def metadata(self) -> dict:
        return json.loads((self.parts / "run.json").read_text())

    @staticmethod
    def _name(cell_key: str) -> str:
        return hashlib.sha256(cell_key.encode()).hexdigest()[:20] + ".parquet"

    def done(self, cell_key: str) -> bool:
        return (self.parts / self._name(cell_key)).exists()

    def write_cell(self, cell_key: str, rows: pd.DataFrame | list[dict]) -> None:
        """Stores a finished cell's rows (:func:`bench.measuring.measure`'s frame)."""
        _write_table(self.parts / self._name(cell_key), pd.DataFrame(rows))

    def _untimed(self, cell_key: str) -> Path:
        return self.parts / self._name(cell_key).replace(".parquet", ".untimed.parquet")

    def untimed(self, cell_key: str) -> bool:
        """Whether the cell's statistics are stored, awaiting their timing phase."""
        return self._untimed(cell_key).exists()

    def write_untimed(self, cell_key: str, rows: pd.DataFrame | list[dict]) -> None:
        _write_table(self._untimed(cell_key), pd.DataFrame(rows))

    def write_json(self, name: str, value) -> None:
        """Stores an extra part of the run (e.g. the lab's rows) as ``<name>.json``."""
        _write_text(self.parts / f"{name}.json", json.dumps(value, indent=1))

    def read_json(self, name: str):
        """An extra part written by :meth:`write_json`, or None if there is none yet."""
        path = self.parts / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def timings(self) -> dict:
        """{cell key: wall-clock columns} of the cells a cluster's timing phase has timed."""
        return self.read_json("timing") or {}

    def write_timings(self, timings: dict) -> None:
        """Stores the timing phase's results so far, in one file: the driver writes it
        while the phase runs, so it writes rarely (the machine is being timed)."""
        self.write_json("timing", timings)

    def _cell(self, cell_key: str, timings: dict) -> pd.DataFrame:
        """A finished cell's rows: its own part, or its statistics and their timing."""
        part = self.parts / self._name(cell_key)
        if part.exists() or cell_key not in timings:
            return pd.read_parquet(part)
        frame = pd.read_parquet(self._untimed(cell_key))
        for column, value in timings[cell_key].items():
            frame[column] = value
        return frame

    def finish(self, cell_keys: list[str], metadata: dict) -> Path:
        timings = self.timings()
        frames = [self._cell(key, timings) for key in cell_keys]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=list(schema.REQUIRED))
        _write_table(self.table, schema.conform(frame), metadata)
        shutil.rmtree(self.parts, ignore_errors=True)  # everything is in the durable table
        return self.table


def read_results(path) -> tuple[pd.DataFrame, dict]:
    """A results table and its run metadata; columns that tables of older versions lack
    are filled in (:func:`bench.schema.with_defaults`), and their cell keys are given the
    compact form (:func:`bench.cellkey.compact`).

    Raises:
      ResultsError: missing file, not parquet, not written by gradvar, or missing columns.
    """
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"{path}: no such results file.")
    if path.is_dir():
        raise ResultsError(f"{path}: is a directory; give a results table, "
                           "<out>/<run_id>.parquet.")
    try:
        # The cell key as a dictionary: tables written before issue 25 repeat a key of the
        # whole θ on every row (80 KB at D = 10⁴), read once per cell this way.
        table = pq.read_table(path, read_dictionary=["cell"])
    except (pa.ArrowInvalid, OSError) as error:
        raise ResultsError(f"{path}: not a parquet results table ({error}).") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ResultsError(f"{path}: a parquet file, but not a gradvar results table "
                           "(no gradvar metadata).")
    frame = table.to_pandas()
    if "cell" in frame:
        frame["cell"] = cellkey.compact_column(frame["cell"])
    missing = [c for c in schema.REQUIRED if c not in frame.columns]
    if missing:
        raise ResultsError(f"{path}: results table lacks columns {missing}.")
    return schema.with_defaults(frame), json.loads(raw)

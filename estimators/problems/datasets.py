"""Data sets for the model problems: loaded, checked and prepared once per source.

``features_and_labels(source)`` returns ``(X [N, F + 1], y [N])`` float64: features
z-scored column by column (mean 0, standard deviation 1 over the N rows) with a column of
ones appended for the bias, and 0/1 labels. ``source`` is ``"breast_cancer"``
(scikit-learn's bundled copy of the Wisconsin diagnostic data, 569 × 30, read offline) or
the path of a CSV file: a header row of column names, numeric feature columns (quoted or
not), the last column the 0/1 label.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np

BUILT_IN = ("breast_cancer",)


class DataError(ValueError):
    """A data set that cannot be used; the message names the source and the problem."""


@functools.lru_cache(maxsize=8)
def features_and_labels(source: str) -> tuple[np.ndarray, np.ndarray]:
    """The prepared design matrix with its bias column, and the labels (module docstring).

    Raises:
      DataError: an unknown name, a missing or malformed file, labels that are not 0/1,
        a constant feature (it cannot be z-scored) or too few rows.
    """
    if source in BUILT_IN:
        from sklearn.datasets import load_breast_cancer  # bundled with scikit-learn

        bunch = load_breast_cancer()
        features, labels = bunch.data.astype(np.float64), bunch.target.astype(np.float64)
    else:
        features, labels = _read_csv(source)
    return _prepare(features, labels, source)


def _read_csv(source: str) -> tuple[np.ndarray, np.ndarray]:
    """The features and labels of a CSV file: its first row the header, each row after
    it a record of numbers (quoted or not; blank lines skipped).

    Raises:
      DataError: not a .csv path, no such file, not CSV text, no header or no data row,
        a first row of numbers (no header: it would be taken for one and a record lost),
        a row of another width than the header, or a value that is not a finite number.
    """
    path = data_file(source, ".csv", "give 'breast_cancer' or the path of a .csv file (header "
                     "row, numeric features, the last column the 0/1 label)")
    # The csv module strips the quotes that spreadsheets put around numbers ("1.5").
    records = []  # (line number, cells), blank lines left out
    try:
        with path.open(newline="") as file:
            reader = csv.reader(file, skipinitialspace=True)  # `1, "2"` as `1,"2"`
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    records.append((reader.line_num, cells))
    except (csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"data {source!r}: is not a readable CSV text file ({error}).") \
            from None
    if len(records) < 2:
        raise DataError(f"data {source!r}: needs a header row and at least one data row.")
    (_, header), rows = records[0], records[1:]
    if all(_number(cell) is not None for cell in header):
        shown = ",".join(header[:4]) + (",..." if len(header) > 4 else "")
        raise DataError(f"data {source!r}: the first row must be a header of column names "
                        f"(the label column last), but it is all numbers ({shown}).")
    width = len(header)
    if width < 2:
        raise DataError(f"data {source!r}: the header names {width} column; give at least "
                        "one feature and the label, separated by commas.")
    values = []
    for number, cells in rows:
        if len(cells) != width:
            raise DataError(f"data {source!r}: line {number} has {len(cells)} values, the "
                            f"header {width}.")
        parsed = [_number(cell) for cell in cells]
        if None in parsed:
            raise DataError(f"data {source!r}: line {number} has a value that is not a "
                            "number.")
        values.append(parsed)
    table = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(table)):
        raise DataError(f"data {source!r}: has missing or infinite values.")
    return table[:, :-1], table[:, -1]


def data_file(source: str, suffix: str, expected: str) -> Path:
    """The path a ``data`` argument names, checked: DataError (``expected`` saying what to
    give) unless it ends in ``suffix`` and is a file."""
    path = Path(source)
    if path.suffix.lower() != suffix:
        raise DataError(f"data {source!r}: {expected}.")
    if not path.is_file():
        raise DataError(f"data {source!r}: no such file.")
    return path


def _number(cell: str) -> float | None:
    """A cell's number (surrounding spaces allowed), or None when it is not one."""
    try:
        return float(cell)
    except ValueError:
        return None


def _prepare(features, labels, source):
    if len(labels) < 2:
        raise DataError(f"data {source!r}: needs at least 2 rows, has {len(labels)}.")
    if not np.all((labels == 0) | (labels == 1)):
        raise DataError(f"data {source!r}: the last column is the label and must be 0 or 1, "
                        f"got {sorted(set(np.unique(labels).tolist()) - {0.0, 1.0})[:3]}.")
    spread = features.std(axis=0)
    constant = np.flatnonzero(spread == 0)
    if constant.size:
        raise DataError(f"data {source!r}: feature column {int(constant[0]) + 1} is constant, "
                        "so it cannot be z-scored; drop it (the bias column is added for you).")
    standard = (features - features.mean(axis=0)) / spread
    return np.concatenate([standard, np.ones((len(labels), 1))], axis=1), labels

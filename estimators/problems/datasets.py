"""Data sets for the model problems: loaded, checked and prepared once per source.

``features_and_labels(source)`` returns ``(X [N, F + 1], y [N])`` float64: features
z-scored column by column (mean 0, standard deviation 1 over the N rows) with a column of
ones appended for the bias, and 0/1 labels. ``source`` is ``"breast_cancer"``
(scikit-learn's bundled copy of the Wisconsin diagnostic data, 569 × 30, read offline) or
the path of a CSV file: a header row, numeric feature columns, the last column the 0/1
label.
"""

from __future__ import annotations

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
    path = Path(source)
    if path.suffix.lower() != ".csv":
        raise DataError(f"data {source!r}: give 'breast_cancer' or the path of a .csv file "
                        "(header row, numeric features, the last column the 0/1 label).")
    if not path.is_file():
        raise DataError(f"data {source!r}: no such file.")
    lines = path.read_text().splitlines()
    rows = [line for line in lines[1:] if line.strip()]
    if not lines or not rows:
        raise DataError(f"data {source!r}: needs a header row and at least one data row.")
    width = len(lines[0].split(","))
    if width < 2:
        raise DataError(f"data {source!r}: the header names {width} column; give at least "
                        "one feature and the label, separated by commas.")
    values = []
    for number, line in enumerate(rows, start=2):
        cells = line.split(",")
        if len(cells) != width:
            raise DataError(f"data {source!r}: line {number} has {len(cells)} values, the "
                            f"header {width}.")
        try:
            values.append([float(cell) for cell in cells])
        except ValueError:
            raise DataError(f"data {source!r}: line {number} has a value that is not a "
                            "number.") from None
    table = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(table)):
        raise DataError(f"data {source!r}: has missing or infinite values.")
    return table[:, :-1], table[:, -1]


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

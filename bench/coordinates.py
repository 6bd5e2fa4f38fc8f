"""A cell's coordinates as typed columns of the results table (issue 26).

Each row carries where its cell sits, so that nothing downstream decodes the ``cell``
key: the problem's factory arguments (``problem_args``, a JSON object whose values keep
their types: ``{"D":3,"k":1.0}``, ``{}`` without arguments), θ where the cell starts
(``theta_start``, one component per row like ``theta``: the cell's own θ, or in a
training run the run's start; so θ is stored once per cell, O(D), however many
components), and the estimator's options (``estimator_identity``, ``sampling``,
``control_variate`` and the numeric settings ``temperature`` and ``eta``, NaN where the
identity has no such setting).

:func:`cell_columns` makes them for a resolved cell; :func:`derive` fills them in for a
table written before they existed (from its cell keys, parsed by :mod:`bench.cellkey`,
and its estimator labels), once, where tables are read (:func:`bench.schema.with_defaults`).
"""

from __future__ import annotations

import functools
import hashlib
import json

import numpy as np
import pandas as pd

from bench import cellkey

SETTINGS = ("temperature", "eta")
"""The identities' numeric settings, each a column (NaN where an identity has none)."""
ESTIMATOR_COLUMNS = ("estimator_identity", "sampling", "control_variate") + SETTINGS
COLUMNS = ("problem_args", "theta_start") + ESTIMATOR_COLUMNS


def arguments_text(kwargs) -> str:
    """``problem_args`` of factory arguments ((name, value), ...), in the grid's order."""
    return json.dumps(dict(kwargs), separators=(",", ":"))


@functools.lru_cache(maxsize=1024)
def _arguments(text: str) -> tuple:
    return tuple(json.loads(text).items())


def arguments(text: str) -> dict:
    """The factory arguments of a ``problem_args`` value (a dict in the grid's order)."""
    return dict(_arguments(text))


def estimator_columns(estimator) -> dict:
    """The estimator-option columns of an :class:`estimators.Estimator`."""
    settings = dict(estimator.settings)
    return {"estimator_identity": estimator.identity.name, "sampling": estimator.sampling,
            "control_variate": estimator.control_variate,
            **{name: float(settings.get(name, np.nan)) for name in SETTINGS}}


def theta_ids(frame: pd.DataFrame) -> pd.Series:
    """Per row, an identity of its cell's starting θ (``theta_start``): rows of cells
    that start at the same θ get the same text (a digest of its float64 values)."""
    digests = frame.groupby("cell", sort=False).theta_start.agg(
        lambda values: hashlib.sha256(values.to_numpy(np.float64).tobytes()).hexdigest()[:16])
    return frame.cell.map(digests).astype("str")


def derive(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the coordinate columns it lacks (a table of an earlier version)
    derived from its cell keys and estimator labels; ``theta_start`` is NaN where a
    training run's key holds a digest of its start. Tables without cell keys are given
    the columns as missing values."""
    missing = [name for name in COLUMNS if name not in frame.columns]
    if not missing:
        return frame
    frame = frame.copy()
    keys = {}
    if "cell" in frame.columns:
        for key in frame.cell.unique():
            try:
                keys[key] = cellkey.parse(key)
            except cellkey.CellKeyError:
                pass
    if "problem_args" in missing:
        texts = {key: arguments_text(parsed.arguments) for key, parsed in keys.items()}
        frame["problem_args"] = frame.cell.map(texts).fillna("{}") if keys else "{}"
    if "theta_start" in missing:
        frame["theta_start"] = _starts(frame, keys)
    if any(name in missing for name in ESTIMATOR_COLUMNS):
        labels = frame.estimator if "estimator" in frame.columns else pd.Series(
            "", index=frame.index)
        options = {label: _options(label) for label in labels.unique()}
        for name in ESTIMATOR_COLUMNS:
            if name in missing:
                frame[name] = labels.map({label: values[name]
                                          for label, values in options.items()})
    return frame


def _starts(frame: pd.DataFrame, keys: dict) -> np.ndarray:
    """``theta_start`` of an earlier table: θ itself outside training runs; a training
    run's start from its key when the key spells it out."""
    if "theta" not in frame.columns:
        return np.full(len(frame), np.nan)
    starts = frame.theta.to_numpy(dtype=np.float64).copy()
    if "step" not in frame.columns or not keys:
        return starts
    trained = frame.step.notna().to_numpy() & frame.cell.isin(list(keys)).to_numpy()
    if not trained.any():
        return starts
    rows = frame.loc[trained, ["cell"]]
    position = rows.groupby("cell", sort=False).cumcount().to_numpy()
    starts[trained] = [keys[cell].theta[index] if keys[cell].theta is not None else np.nan
                       for cell, index in zip(rows.cell, position)]
    return starts


def _options(label: str) -> dict:
    """The option columns of an estimator label (missing values when it is not one)."""
    import estimators as E  # only for tables of earlier versions: TensorFlow is heavy

    try:
        return estimator_columns(E.get_estimator(label))
    except (ValueError, TypeError, KeyError):
        return {"estimator_identity": None, "sampling": None, "control_variate": None,
                **dict.fromkeys(SETTINGS, np.nan)}

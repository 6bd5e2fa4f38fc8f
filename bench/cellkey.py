"""A cell's key in a results table (the ``cell`` column): built and parsed here only.

A cell's full key (:attr:`bench.grid.Cell.key`) is the JSON text
``[problem, arguments, estimator, θ, n_samples, batch_size(, step)]``; seeds and the
run's stored parts derive from it, so it never changes. The table carries it on every
row, and θ of ``gaussian_square_nd(D=100000)`` is 200,000 numbers: ~1.6 MB of text per
row. So a table's key keeps θ itself only up to ``FULL_THETA_MAX`` components (then it
is the full key, as every table of earlier versions has it) and beyond that holds a
digest of θ in its place::

    ["gaussian_square_nd",[["D",100000]],"reparameterization","sha256:3f1c…:200000",10,10]

``sha256:<first 16 hex digits of the sha256 of θ's JSON list>:<components>``: two cells
at the same θ have the same digest, so cells can still be compared at one setting. θ
itself is in the table's ``theta`` column, one component per row.

:func:`parse` reads both forms (and full keys of any length written by earlier
versions); :func:`compact` turns any key into the table form, so a table that mixes the
two (a run resumed across versions) groups as one.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json

FULL_THETA_MAX = 64
"""The most θ components a table's key spells out (every bundled grid but `dimension`
stays below: its keys read as they always did)."""
DIGEST_PREFIX = "sha256:"


class CellKeyError(ValueError):
    """A string is not a cell key."""


@dataclasses.dataclass(frozen=True)
class CellKey:
    """A parsed cell key. ``theta`` is θ's values, or None when the key holds a digest;
    ``theta_id`` identifies θ either way (the digest for θ beyond ``FULL_THETA_MAX``
    components, whichever form the key had)."""

    problem: str
    arguments: list  # [[name, value], ...]
    estimator: str
    theta: list | None
    theta_id: str
    n_samples: int
    batch_size: int
    step: int | None = None

    @property
    def setting(self) -> str:
        """The key without its estimator and batch size: the problem, θ, n (and step) at
        which estimators are compared."""
        step = [] if self.step is None else [self.step]
        return json.dumps([self.problem, self.arguments, self.theta_id, self.n_samples,
                           *step])


def _text(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def theta_digest(theta) -> str:
    """``sha256:<16 hex digits>:<components>`` of θ (a sequence of floats)."""
    values = list(theta)
    digest = hashlib.sha256(_text(values).encode()).hexdigest()[:16]
    return f"{DIGEST_PREFIX}{digest}:{len(values)}"


def full(problem: str, arguments, estimator: str, theta, n_samples: int, batch_size: int,
         step: int | None = None) -> str:
    """A cell's full key (θ spelled out however long): what seeds and stored parts derive
    from, so its text never changes."""
    key = [problem, [list(kv) for kv in arguments], estimator, list(theta), n_samples,
           batch_size]
    return _text(key + ([step] if step is not None else []))


def build(problem: str, arguments, estimator: str, theta, n_samples: int, batch_size: int,
          step: int | None = None) -> str:
    """A table's key for these cell fields (``arguments``: ((name, value), ...))."""
    values = list(theta)
    key = [problem, [list(kv) for kv in arguments], estimator,
           values if len(values) <= FULL_THETA_MAX else theta_digest(values),
           n_samples, batch_size]
    return _text(key + ([step] if step is not None else []))


@functools.lru_cache(maxsize=256)  # callers parse unique keys; old keys can be long
def parse(key: str) -> CellKey:
    """A table's key (either form) as a :class:`CellKey`.

    Raises:
      CellKeyError: ``key`` is not a cell key.
    """
    try:
        problem, arguments, estimator, theta, n_samples, batch_size, *step = json.loads(key)
    except (ValueError, TypeError):
        raise CellKeyError(f"malformed cell key {key[:80]!r}.") from None
    if isinstance(theta, str):
        if not theta.startswith(DIGEST_PREFIX):
            raise CellKeyError(f"malformed cell key {key[:80]!r}: θ is neither values nor a "
                               "digest.")
        values, theta_id = None, theta
    elif isinstance(theta, list):
        values = theta
        theta_id = theta_digest(theta) if len(theta) > FULL_THETA_MAX else _text(theta)
    else:
        raise CellKeyError(f"malformed cell key {key[:80]!r}: θ is neither values nor a digest.")
    return CellKey(problem, arguments, estimator, values, theta_id, n_samples, batch_size,
                   step[0] if step else None)


def compact(key: str) -> str:
    """``key`` in the table's form (a full key of a long θ gets its digest); other text
    is returned as it is."""
    try:
        parsed = parse(key)
    except CellKeyError:
        return key
    if parsed.theta is not None and len(parsed.theta) > FULL_THETA_MAX:
        return build(parsed.problem, parsed.arguments, parsed.estimator, parsed.theta,
                     parsed.n_samples, parsed.batch_size, parsed.step)
    return key


def compact_column(cells):
    """A pandas Series of keys with every key :func:`compact`: one parse per distinct
    key (a categorical column is mapped through its categories)."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(cells, sort=False)
    compacted = np.array([compact(key) for key in uniques] + [None], dtype=object)
    return pd.Series(compacted[codes], index=cells.index, name=cells.name, dtype="str")

"""Keyed, stateless randomness.

Every random draw in gradvar comes from ``tf.random.stateless_*`` ops keyed by a ``[2]``
int32 seed with an explicit algorithm (``RNG_ALG``, Philox: see ``_runtime``), so the
same arguments give the same numbers (per backend: XLA's draws differ from graph/eager
draws for the same key, a known TensorFlow behaviour).
"""

from __future__ import annotations

import numpy as np

from estimators._runtime import RNG_ALG as ALG
from estimators._runtime import tf


def seed_pair(seed) -> np.ndarray:
    """A user seed (an int, or two ints) as the ``[2]`` int32 key stateless ops take.

    Raises:
      TypeError: if ``seed`` is not an integer or a pair of integers.
      ValueError: if it is negative.
    """
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be an integer or a pair of integers, got {seed!r}.")
    if isinstance(seed, (int, np.integer)):
        value = int(seed)
        if value < 0:
            raise ValueError(f"seed must be a non-negative integer, got {value}.")
        # Split into two 31-bit halves so every Python int below 2**62 keys uniquely.
        return np.array([value & 0x7FFFFFFF, (value >> 31) & 0x7FFFFFFF], dtype=np.int32)
    try:
        pair = np.asarray(seed)
    except Exception:  # noqa: BLE001 - any unconvertible object is the user's mistake
        pair = None
    if pair is None or pair.shape != (2,) or not np.issubdtype(pair.dtype, np.integer):
        raise TypeError(f"seed must be an integer or a pair of integers, got {seed!r}.")
    return pair.astype(np.int32)


def fold_in(key, data):
    """Derives an independent key from ``key`` and an integer ``data`` (e.g. a batch index)."""
    return tf.random.experimental.stateless_fold_in(key, data, alg=ALG)


__all__ = ["ALG", "seed_pair", "fold_in"]

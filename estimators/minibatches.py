"""The data a problem's f reads, one minibatch at a time.

A model on data (the discrete VAEs, :mod:`estimators.problems.vae`) computes f on a
minibatch x_1..x_M of its training rows. Training on fresh minibatches must not trace and
compile the estimators' programs again for every minibatch, so the minibatch is not a
constant of the problem's functions but a ``tf.Variable`` they read
(:meth:`Minibatches.read`), which a training run moves with :meth:`Minibatches.select`
before each update (``bench/training.py``). Compiled programs read the variable's current
value at every call.

The problem's **own** minibatch, ``home`` (rows ``home·M`` onwards), is the one its truth is
computed on: away from it the truth is refused (:meth:`Minibatches.check_home`), since an
exact gradient cached for one minibatch is wrong for another.

Which minibatch an update sees is a function of the training seed and the step alone
(:meth:`Minibatches.for_step`: each epoch is a keyed permutation of the minibatches), so a
resumed run sees the same data. Rows given as probabilities (``dynamic=True``: grey
levels for dynamic binarization, Salakhutdinov & Murray 2008) are binarized afresh at
every selection, keyed by the selection's key.

>>> import numpy as np
>>> from estimators.minibatches import Minibatches
>>> data = Minibatches(np.arange(12.0).reshape(6, 2), size=2)
>>> data.count, data.read("float64").numpy().tolist()
(3, [[0.0, 1.0], [2.0, 3.0]])
>>> data.select(2); data.read("float64").numpy().tolist(), data.at_home
([[8.0, 9.0], [10.0, 11.0]], False)
"""

from __future__ import annotations

import threading

import numpy as np

from estimators._runtime import tf


class Minibatches:
    """Rows of data in minibatches of ``size``, one of them current (module docstring).

    Args:
      rows: ``[N, ...]`` numbers, one row per example (at least ``size`` of them).
      size: Rows per minibatch, M.
      home: The problem's own minibatch (rows ``home·size`` onwards), current at first.
      dynamic: Rows are probabilities in [0, 1]; each selection draws 0/1 values from
        them (dynamic binarization), keyed by its ``key`` (the home minibatch's by
        ``(0, home)``).

    Raises:
      ValueError: ``size`` not a whole number from 1 to N, or ``home`` past the last
        minibatch.
    """

    def __init__(self, rows, size: int, home: int = 0, dynamic: bool = False):
        rows = np.asarray(rows, dtype=np.float64)
        if isinstance(size, bool) or size != int(size) or not 1 <= size <= len(rows):
            raise ValueError(f"size must be a whole number from 1 to the {len(rows)} rows, "
                             f"got {size!r}.")
        self.rows, self.size, self.dynamic = rows, int(size), bool(dynamic)
        self.count = len(rows) // self.size
        if isinstance(home, bool) or home != int(home) or not 0 <= home < self.count:
            raise ValueError(f"home must be a minibatch from 0 to {self.count - 1}, got "
                             f"{home!r}.")
        self.home = int(home)
        self._lock = threading.Lock()
        self._current = None
        self._variable = tf.Variable(self._values(self.home, (0, self.home)),
                                     trainable=False, name="minibatch")
        self._current = self.home

    @property
    def at_home(self) -> bool:
        """Whether the current minibatch is the problem's own."""
        return self._current == self.home

    def read(self, dtype) -> tf.Tensor:
        """The current minibatch ``[M, ...]`` in ``dtype``: call it inside the problem's
        functions, so that compiled programs read the variable, not a constant."""
        return tf.cast(self._variable, dtype)

    def select(self, index: int, key: tuple[int, int] | None = None) -> None:
        """Makes minibatch ``index`` current; ``key`` seeds dynamic binarization (default:
        the home minibatch's key when ``index`` is home, else ``(0, index)``)."""
        index = int(index)
        if not 0 <= index < self.count:
            raise ValueError(f"index must be a minibatch from 0 to {self.count - 1}, got "
                             f"{index}.")
        if key is None:
            key = (0, index)
        with self._lock:
            if index == self._current and not self.dynamic:
                return
            self._variable.assign(self._values(index, key))
            self._current = index if (not self.dynamic or key == (0, index)) else None

    def select_home(self) -> None:
        """Makes the problem's own minibatch current again."""
        self.select(self.home)

    def for_step(self, seed: int, step: int) -> int:
        """The minibatch update ``step`` of a run keyed by ``seed`` trains on: epochs of
        ``count`` steps, each a permutation of the minibatches keyed by (seed, epoch)."""
        epoch, position = divmod(int(step), self.count)
        order = np.random.default_rng([int(seed), epoch]).permutation(self.count)
        return int(order[position])

    def check_home(self, what: str) -> None:
        """Raises ValueError when the current minibatch is not the problem's own.

        Args:
          what: What was asked for, for the message (e.g. "the truth of problem 'vae'").
        """
        if not self.at_home:
            raise ValueError(f"{what} is computed on the problem's own minibatch "
                             f"({self.home}), and another is current; call "
                             "problem.minibatches.select_home() first.")

    def _values(self, index: int, key) -> np.ndarray:
        rows = self.rows[index * self.size:(index + 1) * self.size]
        if not self.dynamic:
            return rows
        uniform = np.random.default_rng([int(key[0]), int(key[1])]).uniform(size=rows.shape)
        return (uniform < rows).astype(np.float64)

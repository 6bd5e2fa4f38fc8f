"""θ's layout: named scalars or named blocks, one flat vector inside the engine.

A problem declares its parameters one of two ways:

* ``param_names=("mean", "std")``: named scalars, as in the lab. ``dist`` and ``cost``
  receive θ as a tensor: ``[...]`` when there is one parameter, ``[..., d]`` (pick
  components with ``theta[..., i]``) when there are several.
* ``params={"mean": D, "log_scale": D}``: named blocks with sizes. ``dist`` and ``cost``
  receive a mapping block name -> tensor ``[..., size]``.

Either way the engine works on one flat vector of length d = Σ sizes, in declaration
order, and estimates are ``[R, d]`` in that order. Components are labelled ``"mean"``
(a named scalar) or ``"mean[3]"`` (a component of a block).

θ is accepted as a number (when d = 1), a flat sequence of d numbers, or a mapping with
every name: a number per named scalar; per block, a number (broadcast to the block) or
``size`` numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class Block:
    """One named parameter: a scalar (``size`` 1, ``scalar`` True) or a block of ``size``."""

    name: str
    size: int
    scalar: bool
    start: int

    @property
    def stop(self) -> int:
        return self.start + self.size

    @property
    def labels(self) -> tuple[str, ...]:
        if self.scalar:
            return (self.name,)
        return tuple(f"{self.name}[{i}]" for i in range(self.size))


class Parameters:
    """The layout of θ (see the module docstring).

    Args:
      param_names: Names of scalar parameters (the lab's style), or None.
      params: Mapping block name -> size, or None. Exactly one of the two is used;
        ``params`` wins when both are given by :class:`estimators.Problem` (which checks).
    """

    def __init__(self, param_names=None, params=None):
        if params is not None:
            if not isinstance(params, Mapping) or not params:
                raise ValueError("params must be a non-empty mapping from block name to "
                                 f"size, e.g. {{'mean': 3, 'log_scale': 3}}, got {params!r}.")
            blocks, start = [], 0
            for name, size in params.items():
                _check_name(name, "params")
                if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                    raise ValueError(f"params['{name}'] must be a positive integer size, "
                                     f"got {size!r}.")
                blocks.append(Block(name, int(size), False, start))
                start += int(size)
            self.as_mapping = True
        else:
            names = ("theta",) if param_names is None else param_names
            if isinstance(names, str):
                names = (names,)
            names = tuple(names)
            if not names:
                raise ValueError("param_names must name at least one parameter.")
            for name in names:
                _check_name(name, "param_names")
            if len(set(names)) != len(names):
                raise ValueError(f"param_names must be distinct, got {list(names)}.")
            blocks = [Block(name, 1, True, i) for i, name in enumerate(names)]
            self.as_mapping = False
        self.blocks = tuple(blocks)
        self.dim = sum(block.size for block in self.blocks)
        self.labels = tuple(label for block in self.blocks for label in block.labels)
        self.block_of = tuple(block.name for block in self.blocks for _ in range(block.size))

    @property
    def names(self) -> tuple[str, ...]:
        """The scalar or block names, in order."""
        return tuple(block.name for block in self.blocks)

    @property
    def sizes(self) -> dict[str, int]:
        return {block.name: block.size for block in self.blocks}

    # -- θ in, θ out ------------------------------------------------------------------------

    def vector(self, theta, problem: str = "", bounds: Mapping | None = None) -> np.ndarray:
        """Validates θ and returns it as a float64 array ``[d]``.

        Raises:
          ValueError: wrong length or keys, non-finite values, values outside ``bounds``.
          TypeError: θ is not numeric.
        """
        where = f" for problem '{problem}'" if problem else ""
        if isinstance(theta, Mapping):
            vector = self._from_mapping(theta, where)
        else:
            try:
                vector = np.asarray(theta, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise TypeError(f"theta must be a number or a sequence of {self.dim} numbers "
                                f"({self._describe()}), or a mapping of those names, got "
                                f"{_short(theta)}.") from None
            if vector.shape != (self.dim,):
                raise ValueError(f"theta must have {self.dim} value(s) ({self._describe()})"
                                 f"{where}, got {vector.size}.")
        if not np.all(np.isfinite(vector)):
            bad = self.labels[int(np.flatnonzero(~np.isfinite(vector))[0])]
            raise ValueError(f"theta must be finite, got {_short(vector.tolist())} "
                             f"(first non-finite: '{bad}').")
        for block in self.blocks:
            low, high = (bounds or {}).get(block.name, (None, None))
            values = vector[block.start:block.stop]
            for limit, inside, word in ((low, values > low if low is not None else None, ">"),
                                        (high, values < high if high is not None else None,
                                         "<")):
                if inside is not None and not np.all(inside):
                    first = int(np.flatnonzero(~inside)[0])  # in NumPy: θ may have 10⁵ values
                    raise ValueError(f"theta '{block.labels[first]}' must be {word} {limit}"
                                     f"{where}, got {values[first]}.")
        return vector

    def _from_mapping(self, theta: Mapping, where: str) -> np.ndarray:
        missing = [n for n in self.names if n not in theta]
        extra = [k for k in theta if k not in self.names]
        if missing or extra:
            raise ValueError(f"theta{where} must give exactly {list(self.names)}, got keys "
                             f"{list(theta)}.")
        parts = []
        for block in self.blocks:
            try:
                values = np.asarray(theta[block.name], dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise TypeError(f"theta['{block.name}'] must be a number"
                                + ("" if block.scalar else f" or {block.size} numbers")
                                + f", got {_short(theta[block.name])}.") from None
            if values.size == 1:
                values = np.full(block.size, values[0])
            if values.size != block.size:
                wanted = "a number" if block.scalar else f"a number or {block.size} numbers"
                raise ValueError(f"theta['{block.name}']{where} must be {wanted}, got "
                                 f"{values.size} values.")
            parts.append(values)
        return np.concatenate(parts)

    def unpack(self, theta):
        """θ with a trailing axis ``[..., d]`` in the form ``dist`` and ``cost`` take."""
        if self.as_mapping:
            return {block.name: theta[..., block.start:block.stop] for block in self.blocks}
        return theta[..., 0] if self.dim == 1 else theta

    def mapping(self, vector) -> dict:
        """θ ``[d]`` as {name: float for a scalar, array for a block}."""
        vector = np.asarray(vector, dtype=np.float64)
        return {block.name: (float(vector[block.start]) if block.scalar
                             else vector[block.start:block.stop].copy())
                for block in self.blocks}

    def describe(self, vector) -> str:
        """A short text of θ: ``mean=1, std=0.5``, or ``mean=0.3 (all 31)`` for a block whose
        components are equal, ``mean=[0.1, 0.2, …] (31)`` otherwise."""
        parts = []
        for name, value in self.mapping(vector).items():
            if np.ndim(value) == 0:
                parts.append(f"{name}={value:g}")
            elif np.all(value == value[0]):
                parts.append(f"{name}={value[0]:g}" + (f" (all {value.size})" if value.size > 1
                                                       else ""))
            else:
                head = ", ".join(f"{v:g}" for v in value[:3])
                parts.append(f"{name}=[{head}{', …' if value.size > 3 else ''}] ({value.size})")
        return ", ".join(parts)

    def _describe(self) -> str:
        return ", ".join(b.name if b.scalar else f"{b.name}: {b.size}" for b in self.blocks)

    def __eq__(self, other):
        return isinstance(other, Parameters) and (self.blocks, self.as_mapping) == \
            (other.blocks, other.as_mapping)

    def __hash__(self):
        return hash((self.blocks, self.as_mapping))

    def __repr__(self):
        if self.as_mapping:
            return f"Parameters(params={self.sizes})"
        return f"Parameters(param_names={self.names})"


def _check_name(name, field):
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{field} must use identifiers as names (letters, digits, _), "
                         f"got {name!r}.")


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def is_scalar(value) -> bool:
    """A real number (not a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer,
                                                              np.floating)) \
        and math.isfinite(float(value))

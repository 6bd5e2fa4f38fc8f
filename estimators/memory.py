"""How much memory one compiled call needs, and a refusal before it cannot fit.

A call holds one batch of draws for every replicate at once: tensors of shape
``[batch_size, R, event_size]`` for the draws and ``[batch_size, R, d]`` for the per-draw
scores and gradients, plus ``[R, d]`` for θ, the estimates and their gradients. The model,
linear in every size (D enters through ``event_size`` and ``d``),

    bytes ≈ 4 · (PER_VALUE · batch_size · R · (event_size + d)      the batch
                 + PER_DRAW · batch_size · R                         f, log p per draw
                 + PER_COMPONENT · R · d)                            θ, estimates
            + COMPILE                                                XLA's compilation
            + 4 · 4 · max(HESSIAN_CHUNK_ELEMENTS, R · event_size)    delta method only

was fitted to peaks measured on CPU under XLA: the resident memory a fresh process gains
in the first call of a program (compilation included), after a small call of the same
estimator has loaded TensorFlow and XLA (``tests/estimators/test_memory.py`` measures two
such peaks; ``docs/PERFORMANCE.md`` has the peaks the model was fitted to: within 2x of
each and above it). At one event dimension and
two parameters (R = 10⁶, batches of 10) the draws' per-replicate values dominate:
score_function with the batch-optimal baseline peaked at 4.8 and measure_valued at 3.6
float32 values per b · R · (event_size + d), which ``PER_DRAW`` covers. REBAR (4.8 per
value on 200 Bernoullis: two uniforms per coordinate, three evaluations of f) and
measure-valued gradients (3D + 1 evaluations of f per sample; measured at D = 1 only)
have their own ``PER_VALUE``. The delta method's Hessian diagonal is computed in chunks
of ``HESSIAN_CHUNK_ELEMENTS`` (coordinates × R × D; at least one coordinate at a time),
linear in D; before issue 25 the model counted an [R, D, D] Hessian, which refused
every delta-method call at D = 10⁴ (60 GB).

Without this check a call of 10⁸ replicates grows until the operating system kills the
process (4 GB after 7 s was seen); with it, a one-sentence error says how to fix the call.
"""

from __future__ import annotations

import os

import numpy as np

PER_VALUE = 1.5
"""Float32 temporaries per value of a batch (measured 0.95-1.72 at D = 10³-10⁵)."""
PER_DRAW = 10
"""Float32 values per draw and replicate besides the batch's (f, log p, baselines)."""
PER_COMPONENT = 4
"""Float32 values per replicate and parameter component (θ tiled, estimates, gradients)."""
COMPILE = 32 * 2**20
"""Bytes of compilation and buffers that do not grow with the call's sizes."""

SHARE = 0.8
"""The share of the available memory one call may plan to use."""


def required_bytes(n_replicates: int, batch_size: int, event_size: int, dim: int,
                   extra_values: float = 0.0, per_value: float = PER_VALUE) -> int:
    """An upper estimate of the peak memory of one compiled call, in bytes (module
    docstring); ``per_value``: the estimator's temporaries per value of a batch;
    ``extra_values``: float32 values a control variate holds besides
    (``ControlVariate.memory_values``: the delta method's Hessian chunks)."""
    values = (per_value * batch_size * n_replicates * (event_size + dim)
              + PER_DRAW * batch_size * n_replicates + PER_COMPONENT * n_replicates * dim
              + extra_values)
    return int(4 * values) + COMPILE


def available_bytes() -> int | None:
    """Memory the operating system can give this process now (Linux ``MemAvailable``,
    else the physical memory), or None when neither can be read."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check(label: str, n_replicates: int, batch_size: int, event_size: int, dim: int,
          extra_values: float = 0.0, available: int | None = None,
          per_value: float = PER_VALUE) -> None:
    """Refuses, before anything is allocated, a call that cannot fit in memory.

    Raises:
      ValueError: the estimate exceeds ``SHARE`` of the available memory; the message
        says by how much and which arguments to lower.
    """
    needed = required_bytes(n_replicates, batch_size, event_size, dim, extra_values, per_value)
    available = available_bytes() if available is None else available
    if available is None or needed <= SHARE * available:
        return
    fits = max(int((SHARE * available - COMPILE) / ((needed - COMPILE) / n_replicates)), 0)
    raise ValueError(
        f"{label} needs about {_gb(needed)} of memory (a batch of {batch_size:,} draws for each "
        f"of {n_replicates:,} replicates at once), more than the {_gb(available)} this machine "
        f"has available; lower n_replicates (about {fits:,} fit) or batch_size.")


def check_call(estimator, problem, theta, n_replicates: int, batch_size: int,
               available: int | None = None, label: str | None = None) -> None:
    """:func:`check` for ``estimator`` (an :class:`estimators.Estimator`) on ``problem`` at
    θ: the event size comes from the problem, the temporaries per value and a control
    variate's own memory from what the estimator declares (``Estimator.memory_per_value``,
    ``Estimator.memory_values``); ``label`` names the call in the error (default: the
    estimator and the problem)."""
    event_size = int(np.prod(problem.event_shape(theta), dtype=int))
    per_value = estimator.memory_per_value or PER_VALUE
    if callable(per_value):  # temporaries that grow with the problem (IndeCateR's V·C draws)
        per_value = per_value(problem, problem.theta_vector(theta))
    check(label or f"{estimator.label} on problem '{problem.name}'", n_replicates, batch_size,
          event_size, problem.dim, extra_values=estimator.memory_values(n_replicates, event_size),
          available=available, per_value=per_value)


def _gb(count: float) -> str:
    return f"{count / 2**30:.1f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"

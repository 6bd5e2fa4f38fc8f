"""How much memory one compiled call needs, and a refusal before it cannot fit.

A call holds one batch of draws for every replicate at once: tensors of shape
``[batch_size, R, event_size]`` for the draws and ``[batch_size, R, d]`` for the per-draw
scores and gradients, plus ``[R, d]`` estimates. The model

    bytes ≈ 4 · (FACTOR · batch_size · R · (event_size + d) + 4 · R · d)
            + 4 · 3 · R · event_size²         (the delta method's Hessians)

with ``FACTOR = 8`` float32 temporaries per value bounds every peak measured on CPU under
XLA (tests/estimators/test_memory.py measures one): the largest ratio of measured peak to
``4 · batch_size · R · (event_size + d)`` was 4.8 (score_function with the batch-optimal
baseline), 2.4 for reparameterization, 3.7 for the score function; 4.8 for REBAR on 200
Bernoullis (two uniforms per coordinate, three evaluations of f), 1.6 for ARM and DisARM.

Without this check a call of 10⁸ replicates grows until the operating system kills the
process (4 GB after 7 s was seen); with it, a one-sentence error says how to fix the call.
"""

from __future__ import annotations

import os

import numpy as np

FACTOR = 8
"""Float32 temporaries per value of a batch (an upper bound of the measured 2.4–4.8)."""

SHARE = 0.8
"""The share of the available memory one call may plan to use."""


def required_bytes(n_replicates: int, batch_size: int, event_size: int, dim: int,
                   delta: bool = False) -> int:
    """An upper estimate of the peak memory of one compiled call, in bytes."""
    values = FACTOR * batch_size * n_replicates * (event_size + dim) + 4 * n_replicates * dim
    if delta:
        values += 3 * n_replicates * event_size**2
    return 4 * values


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
          delta: bool = False, available: int | None = None) -> None:
    """Refuses, before anything is allocated, a call that cannot fit in memory.

    Raises:
      ValueError: the estimate exceeds ``SHARE`` of the available memory; the message
        says by how much and which arguments to lower.
    """
    needed = required_bytes(n_replicates, batch_size, event_size, dim, delta)
    available = available_bytes() if available is None else available
    if available is None or needed <= SHARE * available:
        return
    fits = max(int(SHARE * available / (needed / n_replicates)), 0)
    raise ValueError(
        f"{label} needs about {_gb(needed)} of memory (a batch of {batch_size:,} draws for each "
        f"of {n_replicates:,} replicates at once), more than the {_gb(available)} this machine "
        f"has available; lower n_replicates (about {fits:,} fit) or batch_size.")


def check_call(estimator, problem, theta, n_replicates: int, batch_size: int,
               available: int | None = None, label: str | None = None) -> None:
    """:func:`check` for ``estimator`` (an :class:`estimators.Estimator`) on ``problem`` at
    θ: the event size and the delta method's Hessians come from them; ``label`` names the
    call in the error (default: the estimator and the problem)."""
    check(label or f"{estimator.label} on problem '{problem.name}'", n_replicates, batch_size,
          int(np.prod(problem.event_shape(theta), dtype=int)), problem.dim,
          delta=estimator.control_variate == "delta", available=available)


def _gb(count: float) -> str:
    return f"{count / 2**30:.1f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"

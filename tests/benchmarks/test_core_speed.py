"""Speed gates: the compiled core against the RNG floor, and the lab's batches speedup.

No absolute times (machines and their load differ): each gate is a ratio between two
things timed in the same run. The floor draws the same n × R Philox normals the core
draws, with the same sampler and backend (XLA: ``estimators.standard_normal``; graph:
TensorFlow's stateless normal, as TFP's samplers draw outside XLA), and only sums them;
an estimator adds a cost function and a gradient, so it should stay within a small factor
of it. The trap this guards against: under XLA on CPU, TensorFlow's default stateless RNG
("auto_select") compiles to a generator ~30x slower than Philox (estimators/_rng.py),
which would put the core far past the bound.

Compilation stays out of the timings (a warm-up call of each). The gate is the median of
``PAIRS`` ratios core / floor, each from two calls timed one right after the other: load
from other processes hits both sides of a pair alike, and a burst spoils a few pairs, not
the median. Measured under load (MAX_CORE_OVER_FLOOR's comment), the statistic moves
little, and a core twice as slow doubles it. pytest-benchmark still times the core alone
(its JSON under results/benchmarks/, conftest.py), but the gate does not read it. Before: minimum core time over minimum time of the XLA floor, for the graph
backend too, which compared TensorFlow's normal op with the XLA sampler, and two minima
taken minutes apart; under load it reached 5.55 against the bound 5.0.
"""

import numpy as np
import pytest

from bench.asv import workloads
from bench.lab_setups import batches_experiment

N_SAMPLES = N_REPLICATES = 1000
ROUNDS = 15
PAIRS = 31
MAX_CORE_OVER_FLOOR = 1.75  # measured 0.93-1.47x under load; 2x slower, 1.99x and up
MIN_LAB_SPEEDUP = 200.0    # a CI gate far below the 5,000x target; measured ~9,000x
# MAX_CORE_OVER_FLOOR, from the statistic below (median of 31 paired ratios) measured 6
# times per case (both estimators, both backends) on the 2-core machine on 2026-12-03,
# with two other test suites and a full `pytest` running (load average 6-9):
#                                       as it was      one core also kept busy by a loop
#   the core                            1.10-1.47x     0.93-1.46x
#   the core run twice (2x slower)      2.15-3.05x     1.99-2.89x
# The bound sits between the highest of the first row and the lowest of the second (1.19x
# above one, 1.14x below the other). The statistic it replaced (minimum core time over
# minimum XLA-floor time, 15 rounds each) ranged 1.22-5.28x in the same conditions, the
# graph backend's 3.1-5.3x; with the auto_select trap (XLA) the core took 24x the floor.


def paired_ratio(core, floor, pairs=PAIRS) -> float:
    """The median over ``pairs`` rounds of core time / floor time, the two timed one right
    after the other (``workloads.alternating_seconds``: each after an untimed call of its
    own, so neither pays for the other's spinning threads)."""
    return float(np.median([c / f for c, f in workloads.alternating_seconds([core, floor],
                                                                              pairs)]))


def test_rng_floor(benchmark):
    benchmark.pedantic(workloads.rng_floor(N_SAMPLES, N_REPLICATES), rounds=ROUNDS,
                       warmup_rounds=1, iterations=1)


@pytest.mark.parametrize("backend", ["xla", "graph"])
@pytest.mark.parametrize("estimator", ["reparameterization", "score_function"])
def test_core_is_within_a_small_factor_of_the_rng_floor(benchmark, estimator, backend):
    core = workloads.core(estimator, N_SAMPLES, N_REPLICATES, backend=backend)
    floor = workloads.rng_floor(N_SAMPLES, N_REPLICATES, backend=backend)
    # The core's own times for pytest-benchmark's record; the gate does not read them, and
    # holds with pytest-benchmark disabled too.
    benchmark.pedantic(core, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    ratio = paired_ratio(core, floor)
    benchmark.extra_info.update(core_over_floor=ratio, pairs=PAIRS)
    assert ratio < MAX_CORE_OVER_FLOOR, (
        f"{estimator} ({backend}) at {N_SAMPLES}x{N_REPLICATES} takes {ratio:.2f}x the time "
        f"of drawing its random numbers ({backend} floor; median of {PAIRS} paired calls; "
        f"bound {MAX_CORE_OVER_FLOOR}x): is every draw Philox?")


def test_lab_batches_experiment_speedup(benchmark):
    # The lab's loop of 1,000 eager calls against one compiled call of 1,000 replicates.
    # The experiment times both sides itself, so this benchmark's own time is the whole
    # experiment, and the gate holds even with pytest-benchmark disabled.
    result = benchmark.pedantic(batches_experiment, kwargs={"repeats": 10}, rounds=1,
                                iterations=1)
    benchmark.extra_info.update(result)
    assert result["speedup"] > MIN_LAB_SPEEDUP, result

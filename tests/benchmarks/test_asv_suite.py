"""The asv suite (bench/asv/) imports, skips what cannot run, and covers every estimator.

asv is not needed: its benchmark classes are plain Python, driven here as asv would.
"""

import pytest

import estimators as E
from bench.asv import bench_core, bench_variance, workloads



def test_every_registered_estimator_is_benchmarked():
    missing = sorted(set(E.ESTIMATORS) - set(workloads.ESTIMATORS))
    assert not missing, f"add {missing} to ESTIMATORS in bench/asv/workloads.py"


NEEDS_BATCHES = [e.name for e in E.ESTIMATORS.values() if e.min_batch > 1]


@pytest.mark.parametrize("build", [
    lambda: workloads.core("no_such_estimator", 10, 2),  # e.g. an older commit in history
    pytest.param(lambda: workloads.core(NEEDS_BATCHES[0], 10, 2, batch_size=1),
                 marks=pytest.mark.skipif(not NEEDS_BATCHES, reason="none needs batches")),
    pytest.param(lambda: workloads.rng_floor(10, 2, device="gpu"),
                 marks=pytest.mark.skipif(bool(E.GPUS), reason="this machine has a GPU")),
])
def test_what_cannot_run_is_skipped(build):
    with pytest.raises(NotImplementedError):  # asv's signal to skip, not to fail
        build()


def test_a_timing_benchmark_runs_as_asv_drives_it():
    benchmark = bench_core.Estimators()
    benchmark.setup("naive_mc", 1000, "xla", "cpu")
    benchmark.time_estimates("naive_mc", 1000, "xla", "cpu")


def test_deterministic_estimator_tracks_zero_variance():
    assert bench_variance.PerSampleVariance().track_per_sample_variance("trapz") == 0.0


def test_speed_ratios_are_tracked_as_asv_drives_them():
    benchmark = bench_core.Ratios()
    benchmark.rounds = 3
    benchmark.setup("score_function", "rng_floor")
    assert 0 < benchmark.track_speed_ratio("score_function", "rng_floor") < float("inf")

"""bench.asv.figures' timing loop: every run once to warm up, then per round an untimed
call right before each timed one (so a run is not charged for the previous run's
spinning threads), and the medians in the order the runs were given."""

import itertools

from bench.asv import figures


def test_alternating_medians_warms_each_timed_call_and_keeps_the_order(monkeypatch):
    calls = []
    clock = itertools.count()
    monkeypatch.setattr(figures.workloads.time, "perf_counter", lambda: float(next(clock)))

    def run(name, cost):
        def call():
            calls.append(name)
            for _ in range(cost):  # each call advances the fake clock `cost` more ticks
                next(clock)
        return call

    medians = figures.alternating_medians([run("a", 0), run("b", 4)], rounds=3)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert medians == (1.0, 5.0)

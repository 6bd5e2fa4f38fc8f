"""bench.asv.figures: its timing loop (every run once to warm up, then per round an
untimed call right before each timed one, so a run is not charged for the previous run's
spinning threads; the medians in the order the runs were given), the closing table of
targets, and its arguments."""

import itertools

import pytest

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

    medians = figures.workloads.alternating_medians([run("a", 0), run("b", 4)], rounds=3)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 3
    assert medians == (1.0, 5.0)


def test_a_target_is_met_at_its_bound_and_below_it_where_lower_is_better():
    assert figures.Target("speed", 0.8, 0.8).met
    assert not figures.Target("speed", 0.79, 0.8).met
    assert figures.Target("memory", 1.49, 1.5, unit=" GB", below=True).met
    assert not figures.Target("memory", 1.5, 1.5, unit=" GB", below=True).met
    assert figures.Target("lab", 4999.0, 5000.0).row() == \
        "| lab | 4,999x | ≥ 5,000x | NOT MET |"


def test_the_run_ends_with_every_target_of_the_tables_it_printed(monkeypatch, capsys):
    sections = {"core": lambda rounds: [figures.Target("core", rounds / 10, 0.8)],
                "normals": lambda rounds: [],
                "memory": lambda rounds: [figures.Target("memory", 1.6, 1.5, " GB", True)]}
    monkeypatch.setattr(figures, "SECTIONS", sections)
    targets = figures.main(["--rounds", "9"])
    assert [t.met for t in targets] == [True, False]
    out = capsys.readouterr().out
    assert "| core | 0.90x | ≥ 0.80x | met |" in out
    assert "| memory | 1.60 GB | < 1.50 GB | NOT MET |" in out
    assert figures.main(["--only", "normals"]) == []
    assert "| workload |" not in capsys.readouterr().out


@pytest.mark.parametrize("rounds", ["0", "-3", "abc", "2.5"])
def test_rounds_must_be_a_whole_number_of_at_least_one(rounds, capsys):
    with pytest.raises(SystemExit):
        figures.main(["--rounds", rounds])
    assert f"--rounds: must be a whole number of at least 1, got '{rounds}'" in \
        capsys.readouterr().err

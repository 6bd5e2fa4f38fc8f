"""Saves each run's pytest-benchmark data as JSON under results/benchmarks/ (gitignored).

pytest-benchmark writes JSON only when given ``--benchmark-json=PATH``, and reads that
option once, before this conftest is loaded in a plain ``pytest`` run (tests/benchmarks
is found during collection), so setting the option here would come too late. Instead the
path is handed to its session just before it saves, unless the user gave one. This
relies on pytest-benchmark's session object (``config._benchmarksession``, 5.x).
"""

import datetime

import pytest


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    benchmarks = getattr(session.config, "_benchmarksession", None)
    # With no benchmark run, pytest-benchmark warns that there is nothing to save, and
    # the suite turns warnings into errors.
    if benchmarks is not None and benchmarks.benchmarks and not benchmarks.json \
            and not benchmarks.disabled:
        folder = session.config.rootpath / "results" / "benchmarks"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        benchmarks.json = folder / f"pytest-{stamp}.json"
    yield

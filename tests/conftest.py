"""Shared test helpers: statistics of replicate estimates against exact values, and results
tables without their timings (the part of a run that must repeat exactly)."""

import gc
import os
import signal
import subprocess
import time
import warnings


def _one_share_of_the_cores_per_worker() -> None:
    """Under pytest-xdist, TensorFlow's thread pools sized to this worker's share of the
    cores (as ``bench.distributed`` sizes a Dask worker's): two workers with a pool of two
    threads each on two cores spin against each other. TensorFlow reads these variables
    when it starts, so this runs before ``estimators`` imports it; a user's own win."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if workers > 1:
        from bench import cores

        threads = str(max(1, cores() // workers))
        for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            os.environ.setdefault(name, threads)


_one_share_of_the_cores_per_worker()
from bench.cli import _lighter_tensorflow_import  # noqa: E402 - no TensorFlow in bench.cli

_lighter_tensorflow_import()  # as the `gradvar` command runs

import numpy as np  # noqa: E402 - after the threads are set
import pytest  # noqa: E402

import estimators as E  # noqa: E402
from bench.schema import COLUMNS  # noqa: E402


def z_scores(estimates: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(mean - truth) / standard error, per parameter component."""
    mean = estimates.mean(axis=0)
    se = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    return (mean - truth) / se


def assert_within_se(estimates, truth, k=5.0, float_tol=1e-5):
    """Each component's mean within k standard errors of truth, plus float32 rounding.

    Estimates are computed in float32: sums over thousands of terms carry rounding of
    ~1e-6 relative, which decides when an estimator is (nearly) exact for a component
    and its standard error vanishes (e.g. pathwise on a linear cost). ``float_tol``
    (relative, floored at 1 in absolute) covers that and nothing statistical.
    """
    truth = np.asarray(truth, dtype=float)
    mean = estimates.mean(axis=0)
    se = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    for component, (m, s, t) in enumerate(zip(mean, se, truth)):
        allowed = k * s + float_tol * max(1.0, abs(t))
        assert abs(m - t) < allowed, \
            f"component {component}: mean {m} vs exact {t} ({abs(m - t):.3g} > {allowed:.3g}; SE {s:.3g})"


def variance_se(values):
    """The sample variance (ddof 1) per component and its standard error, from the
    sample's fourth moment."""
    count = len(values)
    deviations = values - values.mean(axis=0)
    sample = (deviations**2).sum(axis=0) / (count - 1)
    fourth = (deviations**4).mean(axis=0)
    return sample, np.sqrt(np.maximum(fourth - (count - 3) / (count - 1) * sample**2, 0.0)
                           / count)


def variance_z(values, variance):
    """(sample variance - variance) / its standard error, per component."""
    sample, se = variance_se(values)
    return (sample - variance) / se, sample


def assert_within_reference(problem, theta, values, k=5.5):
    """Every component within k combined SE (the estimates' and the Monte Carlo
    reference's own) of the reference; 5.5 for a block of tens of components."""
    reference = problem.truth(theta)
    assert reference.kind == "monte_carlo"
    se = np.hypot(values.std(axis=0, ddof=1) / np.sqrt(len(values)), reference.gradient_se)
    z = (values.mean(axis=0) - reference.gradient) / se
    assert np.max(np.abs(z)) < k, np.max(np.abs(z))


def stateless_random_ops(function) -> list[tuple[str, int]]:
    """(op type, algorithm) of every stateless random op a traced ``tf.function`` (or a
    function it calls) creates; algorithm 1 is Philox."""
    graph = function.get_concrete_function().graph
    found = []
    for inner in [graph, *[f.graph for f in graph._functions.values()]]:
        for op in inner.get_operations():
            if op.type.startswith("StatelessRandom") and op.type.endswith("V2"):
                found.append((op.type, int(op.inputs[-1].op.get_attr("value").int_val[0])))
    return found


TIMING = [column.name for column in COLUMNS if column.group == "timing"]
"""The columns that differ between two runs of the same grid: what the clock says, and how
and where it was read (serial or on Dask workers)."""


def statistics_of(path):
    """A results table without its timing columns, in a fixed row order."""
    from bench.store import read_results

    frame, _ = read_results(path)
    return frame.drop(columns=TIMING).sort_values(["cell", "param"]).reset_index(drop=True)


def with_keys(text: str, keep: tuple[str, ...], **changes) -> str:
    """A grid's TOML ``text`` with the lines of keys in ``changes`` replaced (a value of
    None removes the line); lines starting with ``keep`` are never touched."""
    lines = []
    for line in text.splitlines():
        name = line.split("=")[0].strip()
        if name in changes and not line.startswith(keep):
            if changes[name] is not None:
                lines.append(f"{name} = {changes[name]}")
            continue
        lines.append(line)
    return "\n".join(lines)


class StopAfter:
    """A stop flag that is set after ``count`` checks (one check per training update)."""

    def __init__(self, count):
        self.count = count

    def is_set(self):
        self.count -= 1
        return self.count < 0


def killed_after_parts(command: list[str], out, parts: int, patience_s: float) -> str:
    """Runs ``command`` (a ``gradvar run`` writing into ``out``), kills it with SIGKILL
    once ``parts`` cell parts are stored (or after ``patience_s``), and returns the run id
    to resume."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline and len(list(out.glob("*.parts/*.parquet"))) < parts:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return next(out.glob("*.parts")).name.removesuffix(".parts")


@pytest.fixture(autouse=True)
def _quiet_expected_bias_warning(request):
    """naive_mc warns on θ-dependent measures by design; tests that check it are marked."""
    if request.node.get_closest_marker("bias_warning"):
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", E.BiasedEstimatorWarning)
        yield


@pytest.fixture(autouse=True, scope="module")
def _release_problems_after_each_module():
    """Problems built by name are kept for reuse (``estimators.problems.build``), and with
    them every program compiled for them; a pytest-xdist worker runs dozens of test files.
    Dropping them after each module releases what that module compiled (a module that
    needs a problem again rebuilds it). Its effect on the workers' peak was not measured
    apart: docs/PERFORMANCE.md's earlier attempt at freeing programs saw none."""
    yield
    from estimators import problems

    problems._INSTANCES.clear()
    gc.collect()


def pytest_collection_modifyitems(items):
    """Tests that time code with pytest-benchmark are ``serial``: ``make test`` runs them in
    a second phase, alone, after the others ran on two workers (pytest-benchmark disables
    itself under xdist, and a timing taken next to another worker's tests measures load)."""
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="session")
def lab_rows(tmp_path_factory, worker_id, testrun_uid):
    """``seed -> bench.lab_setups.run_lab(seed)``, each seed run once per test run (the
    lab's 24 setups take ~20 s; the lab's, the CLI's and the report's tests share them,
    across pytest-xdist workers through a file in the run's temporary directory); callers
    get copies."""
    from bench.lab_setups import run_lab  # the function itself: tests patch it with rows

    # Under xdist the workers' temporary directories share a parent (new for each local
    # run; remote workers' may hold earlier runs', hence the run's id in the name).
    shared = None if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    computed: dict[int, list] = {}

    def rows(seed: int = 0) -> list[dict]:
        if seed not in computed:
            computed[seed] = run_lab(seed) if shared is None else \
                _computed_once(shared / f"lab-rows-{testrun_uid}-{seed}.pickle",
                               lambda: run_lab(seed))
        return [dict(row) for row in computed[seed]]

    return rows


def _computed_once(path, compute):
    """``compute()`` by the first process to get here, read back from ``path`` by the
    others (which wait for it)."""
    import fcntl
    import pickle

    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return pickle.loads(path.read_bytes())
        value = compute()
        partial = path.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(value))
        os.replace(partial, path)  # whole or absent, should this process be killed
        return value

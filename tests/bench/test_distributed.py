"""Grids on Dask distributed: the same statistics, bit for bit, as a serial run, through a
local cluster, a killed worker, an existing cluster started with Dask's own command line,
a resumed timing phase and a training grid."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pandas as pd
import pytest

from bench import cli, cores, distributed, grid, measuring, runner
from bench.store import RunStore, read_results
from tests.bench.test_training import TINY
from tests.conftest import statistics_of

SMALL = """
name = "small"
seed = 11
n_replicates = 100
timing_repeats = 2
estimators = ["score_function", "reparameterization"]
n_samples = [10, 40]
batch_sizes = ["all"]

[[problems]]
name = "seed_dependence"
theta = [-1.0, 0.5]

[[problems]]
name = "gaussian_square"
theta = [[0.5, 1.0], [1.0, 2.0]]
"""

def statistics(path) -> pd.DataFrame:
    """Every column but the wall-clock ones and how they were taken."""
    frame = statistics_of(path)
    assert "variance" in frame.columns and "workers_on_host" not in frame.columns
    return frame


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    return runner.run(grid.parse(SMALL, "small.toml"), out, progress=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dask_cluster():
    """A cluster started with Dask's own commands (``dask scheduler``; ``dask worker
    --nworkers 2 --nthreads 1``: two single-threaded worker processes under nannies, which
    restart a killed one), shared by the tests that drive a cluster at its address. The
    workers stop on their own a minute after the scheduler is gone, the scheduler after
    half an hour without clients (should this process die without terminating them)."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    dask = [sys.executable, "-m", "dask"]
    scheduler = subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port",
                                         address.rsplit(":", 1)[1], "--no-dashboard",
                                         "--idle-timeout", "1800"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    workers = subprocess.Popen(dask + ["worker", address, "--nworkers", "2", "--nthreads", "1",
                                       "--no-dashboard", "--death-timeout", "60"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": path})
    try:
        yield types.SimpleNamespace(scheduler_address=address)
    finally:
        for process in (workers, scheduler):
            process.terminate()
        for process in (workers, scheduler):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def cluster(dask_cluster):
    """The shared cluster with both its workers up (a test may have killed one, which its
    nanny restarts)."""
    from distributed import Client

    with Client(dask_cluster.scheduler_address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
    return dask_cluster


def test_a_local_cluster_of_two_processes_gives_the_serial_statistics(serial, tmp_path):
    path = runner.run(grid.parse(SMALL, "small.toml"), tmp_path, progress=False, workers=2)
    pd.testing.assert_frame_equal(statistics(path), statistics(serial))
    frame, _ = read_results(path)
    serial_frame, _ = read_results(serial)
    assert set(frame.timing_mode) == {"exclusive"} and set(frame.workers_on_host) == {2}
    assert set(frame.intra_op_threads) == {max(1, cores() // 2)}
    assert set(serial_frame.timing_mode) == {"serial"}
    assert set(serial_frame.workers_on_host) == {1}
    for column in ("time_per_call_s", "time_per_estimate_s", "compile_time_s", "samples_per_s"):
        assert (frame[column] > 0).all(), column
    assert not list(tmp_path.glob("*.parts")), "the parts go once the table is durable"


def _worker_processing_a_task(dask_client, deadline):
    """The address and pid of a worker with a task in flight."""
    pids = dask_client.run(os.getpid)
    while time.monotonic() < deadline:
        busy = [address for address, tasks in dask_client.processing().items() if tasks]
        if busy:
            return busy[0], pids[busy[0]]
        time.sleep(0.02)
    raise AssertionError("no worker ever had a task in flight")


def test_a_worker_killed_mid_run_costs_only_its_cells_in_flight(serial, cluster, tmp_path):
    from distributed import Client

    killed = {}

    def kill_a_busy_worker():
        with Client(cluster.scheduler_address) as watcher:
            # Wait until the run has stored a few cells, then kill a worker mid-task.
            deadline = time.monotonic() + 120
            while not list(tmp_path.glob("*.parts/*.untimed.parquet")):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            address, pid = _worker_processing_a_task(watcher, deadline)
            killed.update(address=address, pid=pid, stored=len(list(
                tmp_path.glob("*.parts/*.untimed.parquet"))))
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    path = runner.run(grid.parse(SMALL, "small.toml"), tmp_path, progress=False,
                      scheduler=cluster.scheduler_address)
    killer.join()
    assert killed and 0 < killed["stored"] < len(grid.parse(SMALL, "small.toml").cells)
    pd.testing.assert_frame_equal(statistics(path), statistics(serial))
    frame, _ = read_results(path)
    assert frame.time_per_call_s.notna().all()


@pytest.mark.parametrize("on_cluster", [True, False], ids=["cluster", "serial"])
def test_cells_stored_untimed_go_straight_to_timing_on_resume(serial, cluster, tmp_path,
                                                              on_cluster):
    g = grid.parse(SMALL, "small.toml")
    run_id = "interrupted-after-statistics"
    store = RunStore(tmp_path, run_id)
    store.start(runner.run_metadata(g, run_id))
    for cell in g.cells[:5]:
        store.write_untimed(cell.key, measuring.measure(cell, g.settings, timed=False, workers_on_host=3))
    # Two of them were timed too, before the interruption.
    store.write_timings({cell.key: measuring.time_cell(cell, g.settings) for cell in g.cells[:2]})
    # The untimed rows are stored exactly: the timing phase only fills the clock columns.
    marked = {cell.key for cell in g.cells[:5]}
    where = {"scheduler": cluster.scheduler_address} if on_cluster else {}
    path = runner.resume(run_id, tmp_path, progress=False, **where)
    pd.testing.assert_frame_equal(statistics(path), statistics(serial))
    frame, _ = read_results(path)
    assert frame.time_per_call_s.notna().all()
    # Those five kept their stored statistics (the marker: 3 workers on the machine).
    assert set(frame[frame.cell.isin(marked)].workers_on_host) == {3}
    assert set(frame[~frame.cell.isin(marked)].workers_on_host) == {2 if on_cluster else 1}


def test_a_training_grid_trains_on_the_driver_and_measures_checkpoints_on_workers(cluster,
                                                                                  tmp_path):
    g = grid.parse(TINY, "tiny.toml")
    serial_path = runner.run(g, tmp_path / "serial", progress=False)
    path = runner.run(g, tmp_path / "cluster", progress=False,
                      scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(statistics(path), statistics(serial_path))
    _, meta = read_results(path)
    _, serial_meta = read_results(serial_path)
    for run, serial_run in zip(meta["trajectories"], serial_meta["trajectories"], strict=True):
        assert run["checkpoints"] == serial_run["checkpoints"]
        assert [{k: v for k, v in entry.items() if k != "train_seconds"} for entry in run["log"]] \
            == [{k: v for k, v in entry.items() if k != "train_seconds"}
                for entry in serial_run["log"]]


def test_scheduler_option_runs_on_a_cluster_started_with_dasks_own_commands(serial, cluster,
                                                                           tmp_path):
    grid_file = tmp_path / "small.toml"
    grid_file.write_text(SMALL)
    out = tmp_path / "results"
    assert cli.main(["run", "--grid", str(grid_file), "--out", str(out), "--scheduler",
                     cluster.scheduler_address, "--no-progress"]) == 0
    (path,) = out.glob("*.parquet")
    pd.testing.assert_frame_equal(statistics(path), statistics(serial))
    frame, _ = read_results(path)
    assert set(frame.timing_mode) == {"exclusive"} and set(frame.workers_on_host) == {2}


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_workers_must_be_a_positive_integer(value, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "--workers", value])
    assert stop.value.code == 2
    assert "argument --workers: must be a positive integer, got" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"],
     "--workers cannot be combined with --scheduler"),
    *[(["--scheduler", address], "give the scheduler's address as `dask scheduler` prints "
                                 "it, tcp://HOST:PORT")
      for address in ("127.0.0.1:8786", "inproc://x", "tcp://127.0.0.1", "tcp://host:99999",
                      "tcp://host:port", "tls://127.0.0.1:8786")],
    (["--workers", str(cores() + 1)], f"so at most {cores()} local worker processes"),
], ids=["both", "no-protocol", "inproc", "no-port", "port-out-of-range", "port-not-a-number",
        "tls", "more-workers-than-cores"])
def test_bad_cluster_options_are_one_sentence(arguments, message, tmp_path, capsys):
    assert cli.main(["run", "--out", str(tmp_path / "out"), "--no-progress", *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1, error
    assert not (tmp_path / "out").exists(), "a usage error is found before anything starts"


@pytest.mark.parametrize("address, expected", [
    ("tcp://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
    ("tcp://scheduler.example.org:8786/", "tcp://scheduler.example.org:8786"),
    ("tcp://[::1]:08786", "tcp://[::1]:8786"),
])
def test_scheduler_addresses_as_dask_takes_them(address, expected):
    assert distributed.scheduler_address(address) == expected


def test_a_scheduler_nobody_listens_on_is_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(distributed, "SCHEDULER_PATIENCE_S", 1.0)  # the wait is not under test
    address = f"tcp://127.0.0.1:{_free_port()}"
    assert cli.main(["run", "--out", str(tmp_path), "--scheduler", address,
                     "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert f"--scheduler {address}: cannot connect" in error and "Traceback" not in error
    assert "resume with" not in error, "no run is announced before the cluster answers"
    assert not list(tmp_path.iterdir()), "nothing is started before the cluster answers"


def test_groups_share_a_compiled_program():
    g = grid.parse(SMALL, "small.toml")
    groups = distributed.groups_of(g.cells)
    assert sum(len(group.keys) for group in groups) == len(g.cells)
    # Two θ per problem: every program is asked for twice.
    assert {len(group.keys) for group in groups} == {2}


def test_ctrl_c_lets_each_task_finish_only_its_cell_in_progress(cluster):
    """After Ctrl-C (``stop``) the tasks in flight, running or queued behind the timing
    lock, return the cells they finished; the rest of their cells are left for --resume."""
    from distributed import Client, Lock

    def slow_task(spec, cells, thetas, counts, halt):
        with Lock("test-one-at-a-time"):  # as the timing phase: queued tasks wait here
            done = {}
            for cell, _ in distributed._until_halted(cells, thetas, halt):
                time.sleep(0.3)
                done[cell.key] = 1
            return done

    groups = [distributed.Group([types.SimpleNamespace(key=f"{g}/{i}") for i in range(10)],
                                [None] * 10)
              for g in range(4)]
    stop, results = threading.Event(), {}

    def on_result(group, result):
        results[group.keys[0].split("/")[0]] = result
        stop.set()  # Ctrl-C once the first task is in

    with Client(cluster.scheduler_address) as dask_client, pytest.raises(KeyboardInterrupt):
        distributed.run_phase(dask_client, slow_task, None, iter(groups), {}, on_result,
                              stop, window=4)
    assert sorted(len(result) for result in results.values())[-1] == 10  # the first, whole
    # Every other task in flight returned early: at most the cell it was in when stopped.
    assert len(results) == 4
    assert sum(len(result) for result in results.values()) <= 10 + 3


@pytest.mark.parametrize("exception, shown", [
    (measuring.CellError("seed_dependence/score_function n=10: the cost is NaN"), False),
    (ZeroDivisionError("division by zero"), True),  # a bug: the worker's log keeps it
])
def test_workers_leave_a_cell_error_to_the_driver(exception, shown):
    import logging

    record = logging.LogRecord(
        "distributed.worker", logging.ERROR, __file__, 1,
        "Compute Failed\nKey:       %s\nState:     %s\nTask:  %s\nException: %r\n"
        "Traceback: %r\n", ("statistics_task-1", "executing", "<task>", repr(exception), ""),
        None)
    assert distributed._CellErrorsLeftToTheDriver().filter(record) is shown


class _FakeClient:
    """What the checks ask a Dask client: worker info and a function run on each."""

    def __init__(self, nthreads=1, versions=None):
        self.nthreads, self.versions = nthreads, versions

    def scheduler_info(self, n_workers):
        return {"workers": {"tcp://10.0.0.5:4000": {"nthreads": self.nthreads,
                                                    "host": "10.0.0.5"}}}

    def run(self, function):
        return {"tcp://10.0.0.5:4000": self.versions or function()}


def test_a_worker_with_several_threads_gets_a_warning(capsys):
    distributed._warn_of_threaded_workers(_FakeClient(nthreads=1))
    assert capsys.readouterr().err == ""
    distributed._warn_of_threaded_workers(_FakeClient(nthreads=4))
    assert "start workers with `dask worker ADDRESS --nthreads 1`" in capsys.readouterr().err


def test_a_worker_running_other_gradvar_source_is_refused():
    distributed._check_versions(_FakeClient())  # the same process: the same everything
    other = {**distributed._worker_versions(), "gradvar source": "0123456789abcdef"}
    with pytest.raises(distributed.ClusterError,
                       match="worker tcp://10.0.0.5:4000 has gradvar source 0123456789abcdef"):
        distributed._check_versions(_FakeClient(versions=other))


@pytest.mark.parametrize("cells, components, cores, expected", [
    (2, 20_000, 2, 1),        # the D = 10⁴ grid: a cluster would start longer than it runs
    (99, 2, 2, 1),            # few cells
    (100, 2, 2, 2),           # enough small cells: one worker per core
    (1275, 2, 8, 8),
    (500, 10_000, 8, 1),      # large cells: one process holds them and their truth once
    (500, 9_999, 8, 8),
    (1275, 2, 1, 1),          # one core
])
def test_the_default_workers_depend_on_the_grid(monkeypatch, cells, components, cores,
                                                expected):
    import types

    import bench

    monkeypatch.setattr(bench, "cores", lambda: cores)
    cell = types.SimpleNamespace(theta=(0.5,) * components)
    workers, why = distributed.default_workers(types.SimpleNamespace(cells=[cell] * cells))
    assert workers == expected and why


def test_workers_phases_show_on_the_drivers_bar():
    class Client:
        def subscribe_topic(self, topic, handler):
            self.topic, self.handler = topic, handler

        def unsubscribe_topic(self, topic):
            self.topic = None

    class Bar:
        def set_postfix_str(self, text, refresh=True):
            self.text = text

    client, bar = Client(), Bar()
    with distributed.phases_shown(client, bar):
        assert client.topic == distributed.PHASE_TOPIC
        client.handler((0.0, {"worker": "w1", "cell": "a", "phase": "truth"}))
        client.handler((1.0, {"worker": "w2", "cell": "b", "phase": "estimates"}))
        assert bar.text == "b: estimates | a: truth"
        client.handler((2.0, {"worker": "w1", "cell": "c", "phase": "estimates"}))
        assert bar.text == "c: estimates | b: estimates"
    assert client.topic is None


def test_a_cluster_run_reports_each_cells_phases(cluster, tmp_path):
    from distributed import Client

    g = grid.parse(SMALL, "small.toml")
    runner.run(g, tmp_path, progress=False, scheduler=cluster.scheduler_address)
    with Client(cluster.scheduler_address) as client:
        events = [message for _, message in client.get_events(distributed.PHASE_TOPIC)]
    for cell in g.cells:
        phases = [event["phase"] for event in events if event["cell"] == cell.label]
        assert phases[-3:] == ["estimates", "truth", "statistics"], cell.label


def test_training_runs_are_one_task_each_and_give_the_serial_numbers(cluster, tmp_path):
    from tests.bench.test_train_each import EACH

    g = grid.parse(EACH, "each.toml")
    serial_path = runner.run(g, tmp_path / "serial", progress=False)
    path = runner.run(g, tmp_path / "cluster", progress=False,
                      scheduler=cluster.scheduler_address)

    def logs(p):
        return [[{k: v for k, v in row.items() if k != "train_seconds"} for row in run["log"]]
                for run in read_results(p)[1]["training_runs"]]

    assert logs(path) == logs(serial_path)

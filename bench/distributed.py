"""A grid's cells on a Dask distributed cluster: statistics in parallel, then timing alone.

``gradvar run --workers N`` starts a local cluster of N single-threaded worker processes
(:func:`local_cluster`); ``gradvar run --scheduler tcp://HOST:PORT`` uses a cluster
started with Dask's own command line (``dask scheduler``, ``dask worker ADDRESS
--nthreads 1``). The driver (the ``gradvar`` process) is the only one that writes: workers
return rows, the driver stores them, so no shared filesystem is needed.

**Two phases, so that no wall-clock column is taken while other cells compete for the
cores.**

1. *Statistics*, in parallel. Cells that share a compiled program (the same problem,
   estimator, n_samples and batch size at different θ) go to one worker as one task, so a
   program is compiled once per cluster, not once per worker. The worker compiles
   (``compile_time_s``, taken while ``workers_on_host`` workers share the machine), computes
   the R estimates at the cell's seed and returns the rows with the wall-clock columns
   empty. The driver stores each cell as soon as its rows arrive (``<cell>.untimed``).
2. *Timing*, once every statistic is in: each group of cells goes back to the worker that
   compiled it, and a per-machine Dask lock lets one worker at a time on each machine take
   its ``timing_repeats`` timed calls, while the other workers there wait. A worker that
   lost its programs (it was restarted) compiles again before timing, outside the timed
   region. Rows record ``timing_mode = "exclusive"``.

Statistics are identical, bit for bit, to a serial run's: a cell's seed depends only on
the cell, and XLA's and TensorFlow's CPU kernels do not change their arithmetic with the
number of threads (tests/bench/test_distributed.py compares every statistics column).

**Threads.** A worker sets TensorFlow's intra- and inter-op thread pools (and OpenMP's) to
⌊cores / workers on its machine⌋, at least 1, before it first imports TensorFlow (a
worker plugin, :func:`size_threads`, registered before any cell is sent: unpickling a
cell imports TensorFlow), so workers × threads do not oversubscribe the cores.

**Failures.** A worker that dies mid-task (killed, out of memory) costs only its tasks in
flight, which Dask runs again on another worker (a task that kills three workers is given
up: ``distributed.scheduler.allowed-failures``). The driver stops as in a serial run: the
first Ctrl-C lets the tasks in flight finish and be stored, a second stops at once; every
stored cell survives and ``--resume`` finishes the run, also with another number of
workers.

**Training grids** train on the driver (a training run is sequential: each checkpoint's θ
depends on every step before it) and send each checkpoint's cells to the workers as soon
as the run reaches it.
"""

from __future__ import annotations

import contextlib
import time
import hashlib
import importlib.metadata
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from distributed import WorkerPlugin

import bench

DIST_PACKAGES = ("gradvar", "tensorflow", "tensorflow-probability", "numpy")
"""Packages whose versions must agree between the driver and every worker."""


class ClusterError(ValueError):
    """The cluster cannot be used (no scheduler there, no workers, other versions)."""


# --------------------------------------------------------------------------- workers


_CHECKED_FILES: set = set()
"""The user-file digests this worker process has checked against its own copies."""


def _configure_threads(workers_on_host: int) -> None:
    """TensorFlow's thread pools sized to this worker's share of the cores; only
    possible before TensorFlow is imported in this process, hence environment variables
    (read by TensorFlow when it starts its thread pools)."""
    if "tensorflow" in sys.modules:
        return
    threads = str(max(1, bench.cores() // max(1, workers_on_host)))
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = threads


def _this_host() -> str:
    from distributed import get_worker

    return _host(get_worker().address)


def _host(address: str) -> str:
    """``tcp://10.0.0.5:40123`` -> ``10.0.0.5`` (as the scheduler names a worker's host)."""
    return address.split("://")[-1].rsplit(":", 1)[0]


def _check_user_files(user_files: dict) -> None:
    """The grid's own problem files here are the driver's (compared once per process).

    Raises:
      CellError: a file differs (or is missing) on this worker's machine.
    """
    key = repr(sorted(user_files.items()))
    if key in _CHECKED_FILES:
        return
    from bench.measuring import CellError

    for name, digest in user_files.items():
        try:
            here = hashlib.sha256(Path(name).read_bytes()).hexdigest()
        except OSError:
            here = None
        if here != digest:
            raise CellError(
                f"worker on {_this_host()}: {name} differs from the driver's copy; "
                "every machine needs the same problem files at the same path.")
    _CHECKED_FILES.add(key)


def _until_halted(cells: list, thetas: list, halt: str) -> Iterator[tuple]:
    """(cell, θ) pairs of a task, until the driver sets the Dask event ``halt`` (Ctrl-C):
    the cell in progress finishes, the rest of the task is left for ``--resume``."""
    from distributed import Event

    event = Event(halt)
    for cell, theta in zip(cells, thetas):
        if event.is_set():
            return
        yield cell, theta


def statistics_task(spec: tuple, cells: list, thetas: list, counts: dict,
                    halt: str) -> dict:
    """Phase 1 on a worker: {"worker": address, "rows": {cell key: rows (a DataFrame)}},
    untimed (only the cells measured before ``halt`` was set). ``spec``: the grid's
    :class:`bench.grid.Settings` and its user files' digests; ``cells``: resolved cells."""
    from distributed import get_worker

    host = _this_host()
    _configure_threads(counts.get(host, 1))
    from bench.measuring import measure  # imports TensorFlow: after its threads are set

    settings, user_files = spec
    _check_user_files(user_files)
    worker = get_worker()
    rows = {cell.key: measure(cell, settings, theta, timed=False,
                              workers_on_host=counts.get(host, 1),
                              on_phase=_phase_events(worker, cell))
            for cell, theta in _until_halted(cells, thetas, halt)}
    return {"worker": worker.address, "rows": rows}


def training_task(spec: tuple, runs: list, states: list, counts: dict, halt: str) -> dict:
    """Training runs of a ``[train_each]`` grid on a worker (one per task):
    {run key: its state}, at the last step or where ``halt`` stopped it. ``spec``: the
    grid's :class:`bench.train_each.EachTraining`, run seed, backend and user files'
    digests; ``states``: each run's stored state (None: from its start)."""
    from distributed import Event

    host = _this_host()
    _configure_threads(counts.get(host, 1))
    from bench import train_each  # imports TensorFlow: after its threads are set

    each, seed, backend, user_files = spec
    _check_user_files(user_files)
    stop = _Polled(Event(halt))
    found = {}
    for run, state in zip(runs, states):
        if stop.is_set():
            break
        try:
            found[run.key] = train_each.train(run, each, seed, backend, state,
                                              lambda state, key=run.key: found.update(
                                                  {key: state}), stop)
        except KeyboardInterrupt:  # halted: the state saved where it stopped is returned
            break
        except ValueError as error:  # the problem's own functions: one sentence, as serially
            from bench.measuring import CellError

            raise CellError(f"training {run.label}: {error}") from None
    return found


class _Polled:
    """A Dask event read at most once a second (each read asks the scheduler), for a
    training loop that asks before every update."""

    def __init__(self, event):
        self.event, self.read_at, self.value = event, -1.0, False

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self.value and now - self.read_at > 1.0:
            self.value, self.read_at = self.event.is_set(), now
        return self.value


PHASE_TOPIC = "gradvar-phase"
"""The Dask event topic on which workers say which phase of which cell they are in."""


def _phase_events(worker, cell) -> Callable[[str], None]:
    """``measure``'s ``on_phase`` on a worker: an event the driver's progress bar shows
    (:func:`phases_shown`); a large cell spends seconds in each phase."""
    label = cell.label

    def on_phase(phase: str) -> None:
        worker.log_event(PHASE_TOPIC, {"worker": worker.address, "cell": label,
                                       "phase": phase})
    return on_phase


@contextlib.contextmanager
def phases_shown(dask_client, bar) -> Iterator[None]:
    """Shows the workers' phase events (:data:`PHASE_TOPIC`) on ``bar``'s postfix, the
    latest one first, while the block runs."""
    latest: dict = {}

    def show(event) -> None:  # called on the client's event loop thread
        _, message = event
        latest.pop(message["worker"], None)  # the newest last
        latest[message["worker"]] = f"{message['cell']}: {message['phase']}"
        bar.set_postfix_str(" | ".join(reversed(list(latest.values()))), refresh=True)

    dask_client.subscribe_topic(PHASE_TOPIC, show)
    try:
        yield
    finally:
        dask_client.unsubscribe_topic(PHASE_TOPIC)


def timing_task(spec: tuple, cells: list, thetas: list, counts: dict,
                halt: str) -> dict:
    """Phase 2 on a worker: {cell key: wall-clock columns}, timed while this worker holds
    its machine's timing lock (only the cells timed before ``halt`` was set)."""
    from distributed import Lock

    host = _this_host()
    _configure_threads(counts.get(host, 1))
    from bench.measuring import time_cell  # imports TensorFlow: after its threads are set

    settings, user_files = spec
    _check_user_files(user_files)
    with Lock(f"gradvar-timing-{host}"):
        return {cell.key: time_cell(cell, settings, theta)
                for cell, theta in _until_halted(cells, thetas, halt)}


def _worker_versions() -> dict:
    """Runs on each worker (without importing TensorFlow, whose threads are not set yet):
    the packages' versions and a digest of gradvar's own source (two checkouts of one
    version may differ)."""
    versions = {}
    for name in DIST_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["gradvar source"] = _source_digest()
    return versions


def _source_digest() -> str:
    """sha256 over the ``.py`` files of the ``bench`` and ``estimators`` packages."""
    import importlib.util

    digest = hashlib.sha256()
    for package in ("bench", "estimators"):
        root = Path(importlib.util.find_spec(package).submodule_search_locations[0])
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- clusters


CLUSTER_MIN_CELLS = 100
"""The fewest cells for which ``gradvar run`` starts a local cluster by default: a
cluster takes ~15-20 s to start and each worker imports TensorFlow, while even the
default grid's 1,275 cells gained little from two workers of a 2-core machine
(docs/PERFORMANCE.md, "bench"), so a grid of fewer cells is done sooner in one process."""
LARGE_CELL_COMPONENTS = 10_000
"""θ components from which a cell counts as large: its rows, estimates and truth are each
seconds and hundreds of MB, which every worker would hold in its own process (and the
truth at one θ would be computed once per worker that measures a cell there)."""


def default_workers(grid) -> tuple[int, str]:
    """How many local worker processes ``gradvar run`` uses without ``--workers``, and why:
    one per core, or 1 (no cluster) for a grid of fewer than ``CLUSTER_MIN_CELLS`` cells
    or with a cell of ``LARGE_CELL_COMPONENTS`` θ components or more."""
    available = bench.cores()
    if available == 1:
        return 1, "one core"
    if len(grid.cells) < CLUSTER_MIN_CELLS:
        return 1, (f"{len(grid.cells)} cells, fewer than {CLUSTER_MIN_CELLS}: quicker than "
                   "starting a cluster")
    largest = max(len(cell.theta) for cell in grid.cells)
    if largest >= LARGE_CELL_COMPONENTS:
        return 1, (f"cells of {largest:,} θ components: one process holds them once and "
                   "computes each truth once")
    return available, f"one per core ({available})"


class _SizedThreads(WorkerPlugin):
    """Sizes each worker's TensorFlow threads (:func:`_configure_threads`) when it starts,
    before a task arrives: unpickling a task's cells imports TensorFlow. Applied to every
    worker, including one the nanny restarts."""

    name = "gradvar-sized-threads"

    def __init__(self, counts: dict):
        self.counts = dict(counts)

    def setup(self, worker):
        _configure_threads(self.counts.get(_host(worker.address), 1))


def size_threads(dask_client, counts: dict) -> None:
    """Every worker's TensorFlow threads sized to its share of its machine's cores
    (``counts``: :func:`hosts`), before any cell is sent."""
    dask_client.register_plugin(_SizedThreads(counts))


class _IgnoreInterrupts(WorkerPlugin):
    """A worker plugin for the local cluster's workers: Ctrl-C in the terminal reaches the
    whole process group, and only the driver may act on it (finishing the tasks in flight).
    Applied to every worker, including one the nanny restarts after a crash."""

    name = "gradvar-ignore-interrupts"

    def setup(self, worker):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


class _CellErrorsLeftToTheDriver(logging.Filter):
    """Drops a worker's "Compute Failed" log record of a :class:`bench.measuring.CellError` (a
    user's mistake, e.g. a cost that is NaN at some θ): the driver reports it as one
    sentence, the worker's dump of the task and traceback would only bury it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (str(record.msg).startswith("Compute Failed")
                    and "CellError(" in str(record.args[3] if len(record.args or ()) > 3
                                            else ""))


class _QuietCellErrors(WorkerPlugin):
    """Installs :class:`_CellErrorsLeftToTheDriver` on every worker of the cluster."""

    name = "gradvar-quiet-cell-errors"

    def setup(self, worker):
        worker_logger = logging.getLogger("distributed.worker")
        if not any(isinstance(f, _CellErrorsLeftToTheDriver) for f in worker_logger.filters):
            worker_logger.addFilter(_CellErrorsLeftToTheDriver())


@contextlib.contextmanager
def _interrupts_ignored():
    """SIGINT ignored while the local cluster spawns its first workers, which inherit it
    (so no Ctrl-C reaches them before the plugin is in place)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_ADDRESS = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})/?")


def scheduler_address(address: str) -> str:
    """``address`` as Dask takes it, ``tcp://HOST:PORT``, checked before any connection.

    Raises:
      ClusterError: anything but a tcp:// address with a host and a port in 1-65535.
    """
    match = _ADDRESS.fullmatch(address.strip())
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ClusterError(f"--scheduler {address}: give the scheduler's address as "
                           "`dask scheduler` prints it, tcp://HOST:PORT (e.g. "
                           "tcp://127.0.0.1:8786).")
    return f"tcp://{match['host']}:{int(match['port'])}"


def check_workers(workers: int) -> None:
    """A local cluster has at most one worker process per core.

    Raises:
      ClusterError: ``workers`` is not in 1 .. the cores this process may use.
    """
    if not 1 <= workers <= bench.cores():
        raise ClusterError(
            f"--workers {workers}: this machine gives gradvar {bench.cores()} core(s), so at most "
            f"{bench.cores()} local worker processes (more would only compete for the cores); for "
            "more, start workers on other machines and use --scheduler.")


SCHEDULER_PATIENCE_S = 10.0
"""How long ``--scheduler`` waits for something to listen at the address: a scheduler
started just before gets to come up."""


def _reachable(address: str) -> None:
    """Fails within ``SCHEDULER_PATIENCE_S`` (Dask's client retries for longer) when nothing
    listens at ``address``."""
    import socket
    import time

    patience_s = SCHEDULER_PATIENCE_S
    match = _ADDRESS.fullmatch(address)
    host, port = match["host"].strip("[]"), int(match["port"])
    deadline = time.monotonic() + patience_s
    while True:
        try:
            socket.create_connection((host, port), timeout=patience_s).close()
            return
        except OSError as error:
            if time.monotonic() < deadline and isinstance(error, ConnectionRefusedError):
                time.sleep(0.25)
                continue
            raise ClusterError(
                f"--scheduler {address}: cannot connect ({error.strerror or error}); start a "
                "scheduler with `dask scheduler` and give the address it prints "
                "(tcp://HOST:PORT).") from None


@contextlib.contextmanager
def client(workers: int | None = None, scheduler: str | None = None) -> Iterator:
    """A Dask client: of a new local cluster of ``workers`` single-threaded processes, or
    of the existing cluster at ``scheduler``. Checks that workers run the driver's versions.

    Raises:
      ClusterError: no scheduler at that address, no worker within a minute, or a worker
        with other versions of gradvar, TensorFlow, TFP or NumPy.
    """
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if scheduler is None:
            check_workers(workers)
            try:
                with _interrupts_ignored():
                    cluster = stack.enter_context(LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=":0", silence_logs=logging.ERROR))
            except RuntimeError as error:  # "Nanny failed to start", the cause in the log
                raise ClusterError(
                    f"the local cluster's {workers} worker processes did not start ({error}); "
                    "a script that runs a grid with workers > 1 must do so under `if __name__ "
                    "== \"__main__\":` (each worker imports the script), or use workers=1."
                ) from None
            dask_client = stack.enter_context(Client(cluster))
            dask_client.register_plugin(_IgnoreInterrupts())
        else:
            scheduler = scheduler_address(scheduler)
            _reachable(scheduler)
            try:
                dask_client = stack.enter_context(Client(scheduler, timeout="10s"))
            except (OSError, TimeoutError, ValueError) as error:
                raise ClusterError(f"--scheduler {scheduler}: cannot connect ({error}); start "
                                   "one with `dask scheduler` and give the address it prints "
                                   "(tcp://HOST:PORT).") from None
            try:
                dask_client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                raise ClusterError(f"--scheduler {scheduler}: no worker connected within a "
                                   f"minute; start one with `dask worker {scheduler} "
                                   "--nthreads 1`.") from None
            _warn_of_threaded_workers(dask_client)
        _check_versions(dask_client)
        dask_client.register_plugin(_QuietCellErrors())
        yield dask_client


def _check_versions(dask_client) -> None:
    mine = _worker_versions()
    for address, versions in dask_client.run(_worker_versions).items():
        for name, version in versions.items():
            if version != mine.get(name):
                raise ClusterError(
                    f"worker {address} has {name} {version}, the driver {mine.get(name)}; "
                    "install the same gradvar and packages on every machine.")


def _warn_of_threaded_workers(dask_client) -> None:
    """gradvar sizes TensorFlow's threads per worker process and times one cell per
    machine; a worker with several threads runs several cells in one process."""
    threaded = {address: info["nthreads"] for address, info
                in dask_client.scheduler_info(n_workers=-1)["workers"].items()
                if info["nthreads"] > 1}
    if threaded:
        address, nthreads = next(iter(threaded.items()))
        print(f"gradvar: warning: {len(threaded)} worker(s) run several cells at once (e.g. "
              f"{address}, {nthreads} threads); start workers with `dask worker ADDRESS "
              "--nthreads 1` (and --nworkers for more processes) so that TensorFlow's threads "
              "are sized per cell.", file=sys.stderr)


def hosts(dask_client) -> dict[str, int]:
    """{host: task slots (worker threads) on it}: how many workers share each machine."""
    counts: dict[str, int] = {}
    for info in dask_client.scheduler_info(n_workers=-1)["workers"].values():
        counts[info["host"]] = counts.get(info["host"], 0) + info["nthreads"]
    return counts


# --------------------------------------------------------------------------- the driver


@dataclass
class Group:
    """Cells sharing one compiled program, sent to a worker as one task."""

    cells: list = field(default_factory=list)  # resolved cells (bench.grid.Cell)
    thetas: list = field(default_factory=list)
    worker: str | None = None  # the worker whose process compiled it (phase 1)

    @property
    def keys(self) -> list[str]:
        return [cell.key for cell in self.cells]


def groups_of(cells, thetas=None) -> list[Group]:
    """``cells`` grouped by compiled program, in order of first appearance."""
    groups: dict[tuple, Group] = {}
    for index, cell in enumerate(cells):
        group = groups.setdefault(cell.program_key, Group())
        group.cells.append(cell)
        group.thetas.append(None if thetas is None else thetas[index])
    return list(groups.values())


def run_phase(dask_client, task: Callable, spec: tuple, groups: Iterator[Group],
              counts: dict, on_result: Callable, stop, window: int) -> None:
    """Runs ``task`` on every group (``groups`` may compute them lazily, e.g. by training)
    with at most ``window`` tasks in flight, calling ``on_result(group, result)`` as each
    finishes. After ``stop`` is set no task is submitted, the tasks in flight finish the
    cell they are measuring and return what they have (which is stored), the rest is left
    for ``--resume``; then KeyboardInterrupt. A second Ctrl-C raises at once."""
    import uuid

    from distributed import Event, wait

    halt = f"gradvar-halt-{uuid.uuid4().hex}"
    in_flight: dict = {}
    groups = iter(groups)
    exhausted = halted = False
    try:
        while True:
            while not exhausted and not stop.is_set() and len(in_flight) < window:
                try:
                    group = next(groups, None)
                except KeyboardInterrupt:  # training noticed the Ctrl-C: drain, then stop
                    if not stop.is_set():
                        raise
                    exhausted = True
                    break
                if group is None:
                    exhausted = True
                    break
                options = ({"workers": [group.worker], "allow_other_workers": True}
                           if group.worker else {})
                future = dask_client.submit(task, spec, group.cells, group.thetas, counts,
                                            halt, pure=False, **options)
                in_flight[future] = group
            if stop.is_set() and not halted:
                Event(halt, client=dask_client).set()
                halted = True
            if not in_flight:
                break
            try:
                done, _ = wait(list(in_flight), timeout=0.5, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            for future in done:
                group = in_flight.pop(future)
                on_result(group, future.result())  # a task's exception re-raised here
        if halted:
            raise KeyboardInterrupt
    finally:
        for future in in_flight:
            future.cancel()
        if halted:
            with contextlib.suppress(Exception):  # the cluster may be gone by now
                Event(halt, client=dask_client).clear()


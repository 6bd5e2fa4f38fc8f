"""The README's performance figures, from one process: ``python -m bench.asv.figures``.

asv times each number in a process of its own, at different moments; this prints the
ratios the targets are stated in, both sides timed in one process with calls
alternating, so that load from other work on a shared machine hits both alike:

* compiled core samples/s against the RNG floor at 1,000 × 1,000 (target ≥ 0.7x);
* the normal samplers: gradvar's against TensorFlow's and uniforms alone, 10^6 draws
  averaged, XLA and graph, float32 and float64;
* XLA against graph mode at every shape bench_core times (target: XLA at least as fast);
* the lab's batches experiment, loop against one compiled call (target ≥ 1,000x);
* peak memory of the largest case, 10^8 samples × 10 replicates in batches of 10^5, in a
  fresh process, since a process's peak includes everything it did before (< 1.5 GB;
  read from /proc, so Linux only).

Times are medians of ``--rounds`` alternating calls after a warm-up that compiles.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from bench.lab_setups import batches_experiment

from . import bench_core, workloads

N = R = 1000
LARGEST = ("reparameterization", 10**8, 10, 10**5)


def paired_medians(first, second, rounds: int) -> tuple[float, float]:
    """Median seconds of ``first`` and ``second``, called alternately after a warm-up."""
    first(), second()
    pairs = [(workloads.seconds(first, 1)[0], workloads.seconds(second, 1)[0])
             for _ in range(rounds)]
    return tuple(statistics.median(side) for side in zip(*pairs))


def core_against_floor(rounds: int) -> None:
    print(f"\n| estimator (XLA, n = R = {N:,}) | core samples/s | floor samples/s | core/floor |")
    print("|---|---|---|---|")
    floor = workloads.rng_floor(N, R)
    for estimator in ("reparameterization", "score_function"):
        core_s, floor_s = paired_medians(workloads.core(estimator, N, R), floor, rounds)
        print(f"| {estimator} | {N * R / core_s:.3g} | {N * R / floor_s:.3g} | "
              f"{floor_s / core_s:.2f}x |", flush=True)


def xla_against_graph(rounds: int) -> None:
    print("\n| estimator | batch_size | XLA ms | graph ms | graph/XLA |")
    print("|---|---|---|---|---|")
    shapes = [(name, None) for name in bench_core.Estimators.params[0]]
    shapes += [(name, batch) for name in bench_core.Batching.params[0]
               for batch in bench_core.Batching.params[2]]
    for estimator, batch in shapes:
        try:
            xla, graph = (workloads.core(estimator, N, R, batch, backend)
                          for backend in ("xla", "graph"))
        except NotImplementedError:
            continue
        xla_s, graph_s = paired_medians(xla, graph, rounds)
        print(f"| {estimator} | {batch or 'all'} | {xla_s * 1e3:.2f} | {graph_s * 1e3:.2f} | "
              f"{graph_s / xla_s:.2f}x |", flush=True)


def normal_samplers(rounds: int, n: int = 10**6) -> None:
    print(f"\n| draw and average {n:,} | backend | float32 ms | float64 ms |")
    print("|---|---|---|---|")
    for backend in ("xla", "graph"):
        runs = {(sampler, dtype): workloads.draw_and_average(sampler, n, dtype, backend)
                for sampler in workloads.DRAWS for dtype in ("float32", "float64")}
        for run in runs.values():
            run()  # compiles
        times = {key: [] for key in runs}
        for _ in range(rounds):  # every sampler once a round, so load hits all alike
            for key, run in runs.items():
                times[key] += workloads.seconds(run, 1)
        for sampler in workloads.DRAWS:
            row = [statistics.median(times[sampler, dtype]) * 1e3
                   for dtype in ("float32", "float64")]
            print(f"| {sampler} | {backend} | {row[0]:.2f} | {row[1]:.2f} |", flush=True)


def lab_speedup() -> None:
    result = batches_experiment()
    print(f"\nlab batches experiment (1,000 x 16): loop {result['loop_s']:.2f} s, compiled "
          f"{result['vectorized_s'] * 1e3:.2f} ms: {result['speedup']:,.0f}x", flush=True)


def peak_memory() -> None:
    name, n, replicates, batch = LARGEST
    # VmHWM is the peak of the child's own address space; its ru_maxrss would also count
    # this process's memory, copied into it by fork before exec.
    code = ("from bench.asv import workloads; "
            f"workloads.core({name!r}, {n}, {replicates}, {batch})(); "
            "print(next(line.split()[1] for line in open('/proc/self/status') "
            "if line.startswith('VmHWM')))")
    child = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                           text=True)
    peak_gb = int(child.stdout.split()[-1]) * 1024 / 1e9  # kB
    print(f"\npeak memory, {name} n={n:.0e} R={replicates} batch={batch:.0e} (XLA, "
          f"fresh process, TensorFlow included): {peak_gb:.2f} GB", flush=True)


SECTIONS = {
    "core": core_against_floor,
    "xla": xla_against_graph,
    "normals": normal_samplers,
    "lab": lambda rounds: lab_speedup(),
    "memory": lambda rounds: peak_memory(),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="timed calls per side")
    parser.add_argument("--only", choices=sorted(SECTIONS), help="print one table")
    args = parser.parse_args(argv)
    for name, section in SECTIONS.items():
        if args.only in (None, name):
            section(args.rounds)


if __name__ == "__main__":
    main()

"""The README's performance figures, from one process: ``python -m bench.asv.figures``.

asv times each number in a process of its own, at different moments; this prints the
ratios the targets are stated in, both sides timed in one process with calls
alternating, so that load from other work on a shared machine hits both alike:

* the compiled core against the RNG floor at 1,000 × 1,000 (target ≥ 0.8x) and against
  the same estimator written in JAX, when the ``compare`` extra is installed (≥ 1.2x);
* every estimator's evaluations of f per second against the floor's draws (≥ 0.5x);
* the normal samplers: gradvar's against TensorFlow's and uniforms alone, 10^6 draws
  averaged, XLA and graph, float32 and float64;
* XLA against graph mode at every shape bench_core times (target: XLA at least as fast);
* the lab's batches experiment, loop against one compiled call (target ≥ 5,000x);
* peak memory of the largest case, 10^8 samples × 10 replicates in batches of 10^5, in a
  fresh process, since a process's peak includes everything it did before (< 1.5 GB;
  read from /proc, so Linux only).

Times are medians of ``--rounds`` alternating calls after a warm-up that compiles, each
timed call preceded by an untimed one of the same program (:func:`bench.asv.workloads.alternating_medians`).
Every ratio is a speed ratio (the other side's time over ours: > 1 means gradvar is
faster). The run ends with the targets and whether this run met each (:class:`Target`).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

from bench.lab_setups import batches_experiment

from . import bench_core, jax_reference, workloads

N = R = 1000
LARGEST = ("reparameterization", 10**8, 10, 10**5)
HEADLINE = jax_reference.ESTIMATORS
"""The estimators timed against JAX and the floor; the per-f target covers the others."""
SPEEDS = "ratios are speeds: the other side's time over ours, > 1 means gradvar is faster"


@dataclasses.dataclass(frozen=True)
class Target:
    """One of the targets the tables measure, with this run's value: met when
    ``measured ≥ bound`` (or ``< bound`` where ``below``)."""

    workload: str
    measured: float
    bound: float
    unit: str = "x"
    below: bool = False

    @property
    def met(self) -> bool:
        return self.measured < self.bound if self.below else self.measured >= self.bound

    def row(self) -> str:
        sign = "<" if self.below else "≥"
        digits = 0 if self.bound >= 100 else 2
        return (f"| {self.workload} | {self.measured:,.{digits}f}{self.unit} | {sign} "
                f"{self.bound:,.{digits}f}{self.unit} | {'met' if self.met else 'NOT MET'} |")


def core_against_floor(rounds: int) -> list[Target]:
    """The headline: the core against the RNG floor and, with the ``compare`` extra,
    against the same estimator written in JAX (targets ≥ 0.8x the floor, ≥ 1.2x JAX).

    JAX is timed twice: in the rotation with the core and the floor, and alone in a fresh
    process where TensorFlow runs nothing. Sharing two cores with TensorFlow's runtime
    slowed JAX by up to 2x in some runs (docs/PERFORMANCE.md), so the ratio is taken
    against the faster of the two: JAX is never charged for our threads.
    """
    jax = jax_reference.available()
    print(f"\n| estimator (XLA, n = R = {N:,}) | core ms | floor ms | JAX ms, alternating "
          "| JAX ms, alone | core speed vs floor | core speed vs JAX |")
    print("|---|---|---|---|---|---|---|")
    floor = workloads.rng_floor(N, R)
    targets = []
    for estimator in HEADLINE:
        runs = [workloads.core(estimator, N, R), floor]
        if jax:
            runs.append(jax_reference.core(estimator, N, R))
        times = workloads.alternating_medians(runs, rounds)
        core_s, floor_s = times[:2]
        targets.append(Target(f"{estimator} vs the RNG floor", floor_s / core_s, 0.8))
        if jax:
            alone_s = jax_alone(estimator, rounds)
            jax_s = min(times[2], alone_s)
            jax_text = (f"{times[2] * 1e3:.2f} | {alone_s * 1e3:.2f}", f"{jax_s / core_s:.2f}x")
            targets.append(Target(f"{estimator} vs JAX", jax_s / core_s, 1.2))
        else:
            jax_text = ("not installed (make compare) | -", "-")
        print(f"| {estimator} | {core_s * 1e3:.2f} | {floor_s * 1e3:.2f} | {jax_text[0]} | "
              f"{floor_s / core_s:.2f}x | {jax_text[1]} |", flush=True)
    jax_name = f"JAX {jax_reference.version()}, jit(grad), its default PRNG, taken at the " \
        "faster of its two times; " if jax else ""
    print(f"({jax_name}{SPEEDS})")
    return targets


def jax_alone(estimator: str, rounds: int) -> float:
    """Median seconds of the JAX version in a fresh process that runs nothing else."""
    code = ("from bench.asv import jax_reference, workloads; "
            f"print(workloads.alternating_medians([jax_reference.core({estimator!r}, {N}, "
            f"{R})], {rounds})[0])")
    child = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                           text=True)
    return float(child.stdout.split()[-1])


def per_evaluation_of_f(rounds: int) -> list[Target]:
    """Every estimator's evaluations of f per second against the floor's draws per second
    (target ≥ 0.5x): what an estimator costs per use of the cost function, beyond the
    random numbers. Estimators for discrete latents are timed on bernoulli_toy; those of a
    K-sample bound on iwae_gaussian(K=4), whose one f is a function of K draws, against
    the floor drawing those K (``workloads.draws_per_f``)."""
    print(f"\n| estimator (XLA, n = R = {N:,}, one batch) | f evals / estimate | draws / f | "
          "core ms | floor ms | f evals/s ÷ (floor draws/s ÷ draws per f) |")
    print("|---|---|---|---|---|---|")
    floors = {1: workloads.rng_floor(N, R)}
    ratios = {}
    for estimator in bench_core.Estimators.params[0]:
        try:
            core = workloads.core(estimator, N, R)
        except NotImplementedError:
            continue
        evals, draws = workloads.f_evals(estimator, N), workloads.draws_per_f(estimator)
        if draws not in floors:
            floors[draws] = workloads.rng_floor(N * draws, R)
        core_s, floor_s = workloads.alternating_medians([core, floors[draws]], rounds)
        ratio = ratios[estimator] = (evals * R / core_s) / (N * R / floor_s)
        print(f"| {estimator} | {evals:,} | {draws} | {core_s * 1e3:.2f} | "
              f"{floor_s * 1e3:.2f} | {ratio:.2f}x |", flush=True)
    others = {name: ratio for name, ratio in ratios.items() if name not in HEADLINE}
    slowest = min(others, key=others.get)
    return [Target(f"every other estimator, f evals/s vs floor draws/s (slowest: {slowest})",
                   others[slowest], 0.5)]


def xla_against_graph(rounds: int) -> list[Target]:
    print("\n| estimator | batch_size | XLA ms | graph ms | XLA speed vs graph |")
    print("|---|---|---|---|---|")
    shapes = [(name, None) for name in bench_core.Estimators.params[0]]
    shapes += [(name, batch) for name in bench_core.Batching.params[0]
               for batch in bench_core.Batching.params[2]]
    ratios = {}
    for estimator, batch in shapes:
        try:
            xla, graph = (workloads.core(estimator, N, R, batch, backend)
                          for backend in ("xla", "graph"))
        except NotImplementedError:
            continue
        xla_s, graph_s = workloads.alternating_medians([xla, graph], rounds)
        ratios[estimator, batch or "all"] = graph_s / xla_s
        print(f"| {estimator} | {batch or 'all'} | {xla_s * 1e3:.2f} | {graph_s * 1e3:.2f} | "
              f"{graph_s / xla_s:.2f}x |", flush=True)
    slowest = min(ratios, key=ratios.get)
    return [Target(f"XLA vs graph at every shape (slowest: {slowest[0]}, batch_size "
                   f"{slowest[1]})", ratios[slowest], 1.0)]


def normal_samplers(rounds: int, n: int = 10**6) -> list[Target]:
    print(f"\n| draw and average {n:,} | backend | float32 ms | float64 ms |")
    print("|---|---|---|---|")
    for backend in ("xla", "graph"):
        runs = {(sampler, dtype): workloads.draw_and_average(sampler, n, dtype, backend)
                for sampler in workloads.DRAWS for dtype in ("float32", "float64")}
        times = dict(zip(runs, workloads.alternating_medians(list(runs.values()), rounds)))
        for sampler in workloads.DRAWS:
            row = [times[sampler, dtype] * 1e3 for dtype in ("float32", "float64")]
            print(f"| {sampler} | {backend} | {row[0]:.2f} | {row[1]:.2f} |", flush=True)
    return []  # no target: what the floor stands on


def lab_speedup() -> list[Target]:
    result = batches_experiment()
    print(f"\nlab batches experiment (1,000 x 16): loop {result['loop_s']:.2f} s, compiled "
          f"{result['vectorized_s'] * 1e3:.2f} ms: {result['speedup']:,.0f}x", flush=True)
    return [Target("lab batches experiment, loop vs one compiled call", result["speedup"],
                   5000.0)]


def peak_memory() -> list[Target]:
    name, n, replicates, batch = LARGEST
    # VmHWM is the peak of the child's own address space; its ru_maxrss would also count
    # this process's memory, copied into it by fork before exec.
    # JAX blocked: with the compare extra installed, `import tensorflow` imports it too
    # (tf.lite's util tries `from jax import jit`), ~0.15 GB of peak that is neither
    # gradvar's nor there for anyone without the extra (docs/PERFORMANCE.md).
    code = ("import sys; sys.modules['jax'] = None; "
            "from bench.asv import workloads; "
            f"workloads.core({name!r}, {n}, {replicates}, {batch})(); "
            "print(next(line.split()[1] for line in open('/proc/self/status') "
            "if line.startswith('VmHWM')))")
    child = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                           text=True)
    peak_gb = int(child.stdout.split()[-1]) * 1024 / 1e9  # kB
    print(f"\npeak memory, {name} n={n:.0e} R={replicates} batch={batch:.0e} (XLA, "
          f"fresh process, TensorFlow included): {peak_gb:.2f} GB", flush=True)
    return [Target(f"peak memory, {n:.0e} samples x {replicates} replicates in batches of "
                   f"{batch:.0e}", peak_gb, 1.5, unit=" GB", below=True)]


def vae_training_step(rounds: int) -> list[Target]:
    """A training step of the digits VAE with DisARM (D = 64, two antithetic pairs, Adam) as
    a ``[train_each]`` run takes it, against the same step written in JAX (target ≥ 1.2x),
    JAX timed alternating and alone as in :func:`core_against_floor`."""
    jax = jax_reference.available()
    steps = workloads.VAE_STEPS_PER_CALL
    print(f"\n| digits VAE, DisARM, D = 64, n = 2, batch 50 ({steps} steps a call) | gradvar ms "
          "/ step | JAX ms / step, alternating | JAX ms / step, alone | gradvar speed vs JAX |")
    print("|---|---|---|---|---|")
    targets = []
    for decoder in ("linear", "nonlinear"):
        runs = [workloads.vae_steps(decoder)]
        if jax:
            runs.append(jax_reference.vae_disarm_steps(decoder))
        times = workloads.alternating_medians(runs, rounds)
        ours = times[0] / steps * 1e3
        if jax:
            code = ("from bench.asv import jax_reference, workloads; print(workloads."
                    f"alternating_medians([jax_reference.vae_disarm_steps({decoder!r})], "
                    f"{rounds})[0])")
            child = subprocess.run([sys.executable, "-c", code], check=True,
                                   capture_output=True, text=True)
            alone = float(child.stdout.split()[-1]) / steps * 1e3
            theirs = min(times[1] / steps * 1e3, alone)
            text = f"{times[1] / steps * 1e3:.2f} | {alone:.2f} | {theirs / ours:.2f}x"
            targets.append(Target(f"digits VAE step, DisARM, {decoder}, vs JAX",
                                  theirs / ours, 1.2))
        else:
            text = "not installed (make compare) | - | -"
        print(f"| {decoder} | {ours:.2f} | {text} |", flush=True)
    print(f"({SPEEDS})")
    return targets


SECTIONS = {
    "core": core_against_floor,
    "per_f": per_evaluation_of_f,
    "xla": xla_against_graph,
    "normals": normal_samplers,
    "lab": lambda rounds: lab_speedup(),
    "memory": lambda rounds: peak_memory(),
    "vae": vae_training_step,
}


def rounds_argument(text: str) -> int:
    """``--rounds``: a whole number ≥ 1 (a median needs at least one timed call)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def main(argv=None) -> list[Target]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.asv.figures",
        description="The README's performance tables: each ratio timed in one process, "
                    "calls alternating, then the targets and whether this run met them.")
    parser.add_argument("--rounds", type=rounds_argument, default=51,
                        help="timed calls per side of each ratio; the tables show their medians "
                             "(default: 51)")
    parser.add_argument("--only", choices=sorted(SECTIONS),
                        help="print this table only (default: all of them)")
    args = parser.parse_args(argv)
    targets = []
    for name, section in SECTIONS.items():
        if args.only in (None, name):
            targets += section(args.rounds)
    if targets:
        print("\n| workload | this run | target | |\n|---|---|---|---|")
        for target in targets:
            print(target.row())
    return targets


if __name__ == "__main__":
    main()

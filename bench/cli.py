"""The ``gradvar`` command line.

    gradvar lab [--seed N] [--timing]   the PPDL lab's setups against exact values
    gradvar list                        problems and estimators

TensorFlow is imported only by the subcommands that need it, so ``gradvar --help``
answers at once.
"""

from __future__ import annotations

import argparse
import sys


def _format(value, spec, width):
    return f"{'—':>{width}}" if value is None else format(value, spec)


def cmd_lab(args) -> int:
    from bench import lab_setups

    print("The PPDL lab's setups through estimators.lab; exact values by closed form or "
          "quadrature.\nerror/SE = (value - exact) / standard error of the Monte Carlo "
          "result; trapz rows are deterministic (—).\n")
    header = f"{'task':4}  {'setup':70}  {'lab shows':>9}  {'value':>10}  {'exact':>10}  " \
             f"{'SE':>9}  {'error/SE':>8}"
    print(header)
    print("-" * len(header))
    for row in lab_setups.run_lab(seed=args.seed):
        print(f"{row['task']:4}  {row['setup']:70}  {row['lab_shows']:>9g}  {row['value']:>10.6f}  "
              f"{row['exact']:>10.6f}  {_format(row['se'], '9.2e', 9)}  "
              f"{_format(row['error_se'], '+8.2f', 8)}")
    if args.timing:
        result = lab_setups.batches_experiment(seed=args.seed)
        print("\nBatches experiment: 1,000 estimates of 16 samples, f=exp(θ|x|), θ=-0.05, p=N(1,1)")
        print(f"  lab loop, 1,000 eager GradientTape calls: {result['loop_s']:.3f} s  "
              f"(mean {result['loop_mean']:.5f})")
        print(f"  estimate('naive_mc', n_samples=16, n_replicates=1000): "
              f"{result['vectorized_s'] * 1e3:.3f} ms median of 20 calls, compile "
              f"{result['compile_s']:.2f} s apart  (mean {result['vectorized_mean']:.5f})")
        print(f"  speed-up: {result['speedup']:,.0f}x   exact: {result['exact']:.6f}")
    return 0


def cmd_list(args) -> int:
    import estimators as E

    print("Problems (estimators.problems.get(name, **kwargs)):")
    for name in E.problems.names():
        kwargs = ", ".join(f"{k}={v:g}" for k, v in E.problems.parameters(name).items())
        print(f"  {name + (f'({kwargs})' if kwargs else ''):26} {E.problems.summary(name)}")
    print("\nEstimators (estimators.ESTIMATORS):")
    for name, estimator in sorted(E.ESTIMATORS.items()):
        print(f"  {name:26} {estimator.summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradvar",
        description="Benchmark Monte Carlo gradient estimators against exact ground truth.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lab = commands.add_parser("lab", help="run the PPDL lab's setups against exact values")
    lab.add_argument("--seed", type=_non_negative_int, default=0,
                     help="base seed for the Monte Carlo setups (default 0)")
    lab.add_argument("--timing", action="store_true",
                     help="also time the lab's 1,000 x 16 batches loop against one vectorized call")
    lab.set_defaults(handler=cmd_lab)
    listing = commands.add_parser("list", help="list problems and estimators")
    listing.set_defaults(handler=cmd_list)
    return parser


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

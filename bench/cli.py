"""The ``gradvar`` command line.

    gradvar run [--grid FILE] [--out DIR] [--resume RUN] [--report]
                [--workers N | --scheduler tcp://HOST:PORT]
                                        sweep a grid into a results table (and report it)
    gradvar report RESULTS [--out DIR] [--only FIGURE[,FIGURE]]
                                        figures + self-contained HTML (reports/<run_id>/)
    gradvar show RESULTS [--all | --csv | --skipped]
                                        print a run's table compactly (--all: every row;
                                        --csv: the whole table as CSV on stdout;
                                        --skipped: its grid's combinations that did not apply)
    gradvar compare RESULTS_A RESULTS_B [--all]
                                        cells whose variance or mean changed beyond their
                                        intervals; exit 1 if any, 0 if none (for CI)
    gradvar lab [--seed N] [--timing]   the PPDL lab's setups against exact values
    gradvar list                        problems, estimators and bundled grids

TensorFlow is imported only by the subcommands that need it, so ``gradvar --help``
answers at once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
from pathlib import Path

from bench import cores

COMPARE_SHOWN = 20
"""Lines per section of ``gradvar compare`` without ``--all``."""
SKIPPED_REASONS_LISTED = 3
"""Reasons for skipped combinations that ``gradvar run`` lists; more are one line."""


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


def cmd_run(args) -> int:
    usage = _run_usage_error(args)
    if usage:
        print(f"gradvar run: error: {usage}", file=sys.stderr)
        return 2
    from bench import distributed, grid as grids, runner
    from bench.store import ResultsError

    # No --workers: runner.default_workers decides from the grid (and says why).
    where = dict(workers=args.workers, scheduler=args.scheduler, progress=not args.no_progress)

    def describe(workers):
        print(_describe_workers(workers, args.scheduler, args.workers is None), file=sys.stderr)

    try:
        if args.resume:
            print(f"resuming {args.resume}", file=sys.stderr)
            path = runner.resume(args.resume, Path(args.out), on_start=describe, **where)
        else:
            grid = grids.load(args.grid or "default")
            runs = (f", {len(grid.train_runs)} training runs ({grid.train_each.settings.steps} "
                    "steps each)" if grid.train_runs else "")
            print(f"grid {grid.name} ({grid.path}): {len(grid.cells)} cells, "
                  f"{grid.n_replicates} replicates each, backend {grid.backend}{runs}",
                  file=sys.stderr)
            if not grid.cells and not grid.train_runs:
                _print_skipped(grid.skipped, every=True)
                raise grids.GridError(
                    f"{grid.path}: no cells to run: all {len(grid.skipped)} combinations were "
                    "skipped (reasons above); change n_samples, batch_sizes or estimators.")
            run_id = runner.new_run_id(grid, Path(args.out))
            if grid.skipped:
                _print_skipped(grid.skipped, results=Path(args.out) / f"{run_id}.parquet")

            def started(workers):  # once the cluster (if any) is up: nothing stored before
                print(f"run {run_id}: finished cells go to {Path(args.out) / run_id}.parts; "
                      f"if interrupted, resume with: gradvar run --out {args.out} --resume "
                      f"{run_id}", file=sys.stderr)
                if args.workers is None and not args.scheduler:
                    print(f"workers: {distributed.default_workers(grid)[1]} (--workers N to "
                          "choose)", file=sys.stderr)
                describe(workers)

            path = runner.run(grid, Path(args.out), run_id=run_id, on_start=started, **where)
    except (grids.GridError, ResultsError, distributed.ClusterError) as error:
        print(f"gradvar: error: {error}", file=sys.stderr)
        return 2
    except runner.CellError as error:
        print(f"gradvar: error: {error}", file=sys.stderr)
        if error.store is not None:
            print(f"finished cells are saved in {error.store.parts}; after fixing the problem, "
                  f"resume with: gradvar run --resume {error.store.parts.resolve()}",
                  file=sys.stderr)
        return 2
    except runner.RunInterrupted as stop:
        print(f"\n{stop}; finished cells are saved in {stop.store.parts}. Resume with:\n"
              f"  gradvar run --resume {stop.store.parts.resolve()}", file=sys.stderr)
        return 130
    except OSError as error:
        print(f"gradvar: error: cannot write the results in {args.out}: {error.strerror or error}"
              f" ({error.filename or args.out}).", file=sys.stderr)
        return 2
    import pandas as pd

    from bench.store import read_results
    from bench.summary import mixed_timing, summary

    frame, meta = read_results(path)
    print(f"\nresults: {path}  ({len(frame)} rows)")
    if meta.get("training"):
        print(f"training: {_describe_training(meta)}")
    if meta.get("training_runs"):
        count = len(meta["training_runs"])
        print(f"training runs: {count} (their logs are in the table's metadata; the report "
              "draws them)" if count != 1 else "training runs: 1 (its log is in the table's "
              "metadata; the report draws it)")
    if len(frame):
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(summary(frame).to_string(index=False, float_format="{:.3g}".format))
    note = mixed_timing(frame)
    if note:
        print(note)
    if args.report:
        return _report(path, None, progress=not args.no_progress)
    return 0


def _describe_workers(workers: int, scheduler: str | None, chosen: bool = False) -> str:
    if scheduler:
        return (f"cells run on the Dask cluster at {scheduler}: statistics in parallel, then "
                "timing one cell at a time per machine")
    if workers == 1:
        return "cells run one by one in this process" + ("" if chosen else " (--workers 1)")
    return (f"cells run on a local Dask cluster of {workers} worker processes: statistics in "
            "parallel, then timing one cell at a time")


def _run_usage_error(args) -> str | None:
    """A mistake in ``gradvar run``'s arguments, found before TensorFlow is imported."""
    if args.resume and args.grid:
        return ("--grid cannot be combined with --resume: a resumed run uses the grid it "
                "started with (kept in its run record).")
    if args.scheduler and args.workers:
        return ("--workers cannot be combined with --scheduler: an existing cluster has the "
                "workers started for it (dask worker ADDRESS --nthreads 1).")
    from bench import distributed

    try:
        if args.scheduler is not None:
            args.scheduler = distributed.scheduler_address(args.scheduler)
        if args.workers is not None:
            distributed.check_workers(args.workers)
    except distributed.ClusterError as error:
        return str(error)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return f"--out {args.out}: is a file; give a directory for the results (created if missing)."
    return None


def _print_skipped(skipped, results: Path | None = None, every: bool = False,
                   file=None) -> None:
    """The grid's combinations that do not apply, on stderr (or ``file``): a line per
    reason when there are at most ``SKIPPED_REASONS_LISTED`` (or ``every``), else one line
    with the count, the most common reason and the command that lists every one,
    ``gradvar show RESULTS --skipped``."""
    file = file or sys.stderr
    lines = _skipped_lines(skipped)
    head = f"skipped {len(skipped)} combination{'s' if len(skipped) != 1 else ''} that do " \
           "not apply"
    if every or len(lines) <= SKIPPED_REASONS_LISTED:
        print(f"{head}:", *(text for _, text in lines), sep="\n", file=file)
        return
    _, example = max(lines, key=lambda line: line[0])
    print(f"{head}, for {len(lines)} reasons (most often: {example.strip()}); gradvar show "
          f"{results or 'RESULTS'} --skipped lists them.", file=file)


def _skipped_lines(skipped) -> list[tuple[int, str]]:
    """(how many, text) per reason of :func:`_print_skipped`."""
    # A batch larger than n_samples is the one-batch cell again: count, don't list.
    oversized = [s for s in skipped if s[1] == "batch_size > n_samples"]
    lines = []
    if oversized:
        lines.append((len(oversized), f"  {len(oversized)} cells whose batch size exceeds "
                                      "n_samples"))
    rest = [s for s in skipped if s[1] != "batch_size > n_samples"]
    return lines + [(count, f"  {label}: {reason}")
                    for count, label, reason in _group_skipped(rest)]


def _report(results, out, progress: bool, only: str | None = None) -> int:
    from bench import report
    from bench.store import ResultsError

    print(f"building the report of {results} ...", file=sys.stderr)
    try:
        built = report.build(results, out, progress=progress,
                             only=None if only is None else only.split(","))
    except (report.ReportError, ResultsError) as error:
        print(f"gradvar: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"gradvar: error: cannot write the report: {error}", file=sys.stderr)
        return 2
    print(f"report: {built.index}  ({len(built.figures)} figures, PNG and SVG beside it, "
          f"summary.md; built in {built.seconds:.1f} s)")
    return 0


def cmd_leaderboard(args) -> int:
    from bench.report import leaderboard

    try:
        index = leaderboard.write(Path(args.reports), args.out and Path(args.out))
    except ValueError as error:
        print(f"gradvar: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"gradvar: error: cannot write the leaderboard: {error}", file=sys.stderr)
        return 2
    print(f"leaderboard: {index}  (summary.md and leaderboard.json beside it)")
    return 0


def cmd_report(args) -> int:
    return _report(args.results, args.out, progress=not args.no_progress, only=args.only)


def _group_skipped(skipped):
    """(count, label, reason) per reason (which names the estimator and the problem), so
    long grids stay readable."""
    groups = {}
    for label, reason in skipped:
        groups.setdefault(reason, []).append(label)
    for reason, labels in groups.items():
        yield len(labels), (labels[0] if len(labels) == 1
                            else f"{len(labels)} cells, e.g. {labels[0]}"), reason


def cmd_show(args) -> int:
    from bench.schema import SHOWN
    from bench.store import ResultsError, read_results
    from bench.summary import how_timed

    try:
        frame, meta = read_results(args.results)
    except ResultsError as error:
        print(f"gradvar: error: {error}", file=sys.stderr)
        return 2
    if args.skipped:
        skipped = meta.get("skipped") or []
        if skipped:
            _print_skipped(skipped, every=True, file=sys.stdout)
        else:
            print(f"run {meta.get('run_id')}: no combination of its grid was skipped.")
        return 0
    if args.csv:
        # Only the table on stdout, every row and column at full precision, so that
        # `gradvar show r.parquet --csv > r.csv` is the table and nothing else. A missing
        # number is written "nan", so that it differs from an empty note.
        frame.to_csv(sys.stdout, index=False, na_rep="nan")
        return 0
    print(f"run {meta.get('run_id')}  grid {meta.get('grid_name')}  backend {meta.get('backend')}"
          f"  device {meta.get('device')}  TF {meta.get('tensorflow')}  "
          f"started {meta.get('started')}  finished {meta.get('finished')}")
    if frame.empty:
        print(f"gradvar: error: {args.results}: the results table has no rows (every cell of "
              "its grid was skipped); nothing to show.", file=sys.stderr)
        return 2
    if meta.get("training"):
        print(f"training: {_describe_training(meta)}")
    print(f"timed: {how_timed(frame)}")
    columns = [c for c in SHOWN if c in frame.columns]
    shown = frame[columns].rename(columns=SHOWN)
    print(shown.to_string(index=False, float_format="{:.4g}".format,
                          max_rows=None if args.all else 60))
    return 0


def cmd_compare(args) -> int:
    """Exit status 0 when nothing changed, 1 when something did (for scripts and CI), 2
    for a user error."""
    from bench import compare
    from bench.store import ResultsError, read_results

    try:
        (frame_a, meta_a), (frame_b, meta_b) = read_results(args.a), read_results(args.b)
        comparison = compare.compare(frame_a, frame_b)
    except ResultsError as error:
        print(f"gradvar compare: error: {error}", file=sys.stderr)
        return 2
    except compare.CompareError as error:
        print(f"gradvar compare: error: {args.a} and {args.b}: {error}", file=sys.stderr)
        return 2
    for name, path, meta in (("A", args.a, meta_a), ("B", args.b, meta_b)):
        print(f"{name}: {path}  run {meta.get('run_id')}  grid {meta.get('grid_name')}  "
              f"seed {meta.get('seed')}  git {(meta.get('git_commit') or '?')[:12]}")
    for line in compare.describe(comparison, limit=None if args.all else COMPARE_SHOWN):
        print(line)
    return 1 if comparison.changed else 0


def _describe_training(meta: dict) -> str:
    """One line on a training run's settings and where each run ended."""
    t = meta["training"]
    text = (f"{t['direction']} with {t['optimizer']} (lr {t['learning_rate']:g}, "
            f"{t['schedule']}), {t['steps']} steps of {t['estimator']} at n = {t['n_samples']}; "
            f"checkpoints {', '.join(map(str, t['checkpoints']))}")
    for run in meta.get("trajectories", []):
        first, last = (run["log"][0], run["log"][-1]) if run["log"] else (None, None)
        if last:
            extra = "".join(f", {k} {v:.4g}" for k, v in last.items() if k not in (
                "step", "learning_rate", "objective", "objective_se", "expected_f", "penalty",
                "train_seconds"))
            text += (f"\n  {run['problem']} from [{run['theta_label']}]: objective "
                     f"{first['objective']:.4g} ± {first['objective_se']:.2g} at step "
                     f"{first['step']}, {last['objective']:.4g} ± {last['objective_se']:.2g} "
                     f"at step {last['step']}{extra}; {run['train_seconds']:.1f} s of training")
    return text


def cmd_list(args) -> int:
    import estimators as E
    from bench import grid as grids

    def rows(pairs):
        # A name wider than the column gets its description on the next line; descriptions
        # wrap to the terminal instead of running off it.
        pairs = list(pairs)
        width = min(max(len(name) for name, _ in pairs), 34) + 2
        columns = max(shutil.get_terminal_size((100, 24)).columns, 60)
        indent = " " * (2 + width)
        for name, text in pairs:
            lines = textwrap.wrap(text, columns - len(indent)) or [""]
            if len(name) + 2 > width:  # a long signature wraps at its commas
                for part in textwrap.wrap(name, columns - 2, subsequent_indent="    ",
                                          break_long_words=False):
                    print(f"  {part}")
                lines_to_print = lines
            else:
                print(f"  {name:{width}}{lines[0]}")
                lines_to_print = lines[1:]
            for line in lines_to_print:
                print(indent + line)

    print("Problems (estimators.problems.get(name, **kwargs); in grids: name = \"...\"):")

    def signature(name):
        kwargs = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in E.problems.parameters(name).items())
        return name + (f"({kwargs})" if kwargs else "")

    rows((signature(name), E.problems.summary(name)) for name in E.problems.names())
    print("  (your own: \"my_problems.py:factory\" or \"package.module:factory\")")
    print("\nEstimators (E.get_estimator(name, **options); in grids: a name, a label or "
          "{name = ..., option = ...}):")
    rows((name, estimator.identity.summary if name == estimator.label
          else f"= {estimator.label}") for name, estimator in sorted(E.ESTIMATORS.items()))
    print("\nOptions (values; the identities they combine with):")
    def combines(identity: str, option: str, value: str) -> bool:
        try:  # the estimator registry decides: an option value an identity cannot take
            E.get_estimator(identity, **{option: value})  # is a NotApplicableError
        except (E.NotApplicableError, ValueError, TypeError):
            return False
        return True

    def option_rows():
        for option, values in E.OPTIONS.items():
            for value in values:
                takers = [name for name in E.IDENTITIES if combines(name, option, value)]
                summary = (E.SAMPLINGS[value].summary if option == "sampling"
                           else E.CONTROL_VARIATES[value].summary)
                yield f"{option}={value}", f"{summary} [{', '.join(takers)}]"
        settings = {}
        for name, identity in E.IDENTITIES.items():
            for setting, default, meaning, low, *kind in identity.settings:
                settings.setdefault((setting, default, meaning, low, tuple(kind)),
                                    []).append(name)
        for (setting, default, meaning, low, kind), takers in settings.items():
            allowed = f"a number > {low:g}" if low is not None else "a number"
            if kind == ("flag",):
                allowed = "0 or 1"
            elif kind:
                allowed = allowed.replace("a number", "a whole number")
            yield (f"{setting}=<number>", f"{meaning}: {allowed}, default {default:g} "
                                          f"[{', '.join(takers)}]")

    rows(option_rows())
    print("\nBundled grids (gradvar run --grid NAME):")
    rows((path.stem, _grid_description(path)) for path in grids.bundled())
    return 0


def _grid_description(path) -> str:
    """A grid file's ``description``, else the first line of its leading comment."""
    import tomllib

    try:
        description = tomllib.loads(path.read_text()).get("description")
    except (tomllib.TOMLDecodeError, OSError):
        description = None
    if isinstance(description, str) and description:
        return description
    return path.read_text().splitlines()[0].lstrip("# ")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradvar",
        description="Benchmark Monte Carlo gradient estimators against exact ground truth.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run a grid into results/<run_id>.parquet")
    run.add_argument("--grid", help="grid file or bundled grid name (default: default)")
    run.add_argument("--out", default="results", help="results directory (default: results)")
    run.add_argument("--resume", metavar="RUN",
                     help="finish an interrupted run (its id, or its .parts directory)")
    run.add_argument("--report", action="store_true",
                     help="then build its report in reports/<run_id>/ and print the path")
    run.add_argument("--workers", type=_positive_int, metavar="N",
                     help="worker processes of a local Dask cluster (default: the machine's "
                          f"cores, {cores()} here, for a grid of many cells, none of them large; "
                          "else 1: the cells one by one in this process)")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="run on an existing Dask cluster (dask scheduler / dask worker)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(handler=cmd_run)
    report = commands.add_parser(
        "report", help="figures and a self-contained HTML report of a results table")
    report.add_argument("results", help="a results .parquet file (from gradvar run)")
    report.add_argument("--out", metavar="DIR",
                        help="directory to write into (default: reports/<run_id>)")
    report.add_argument("--only", metavar="FIGURE[,FIGURE]",
                        help="build only these figures (names as in README's figure table, "
                             "e.g. variance_vs_theta,efficiency); the tables are built as ever")
    report.add_argument("--no-progress", action="store_true", help="no progress bar")
    report.set_defaults(handler=cmd_report)
    show = commands.add_parser("show", help="print a results table compactly")
    show.add_argument("results", help="a results .parquet file")
    what = show.add_mutually_exclusive_group()
    what.add_argument("--all", action="store_true", help="print every row")
    what.add_argument("--csv", action="store_true",
                      help="write the whole table (every row and column) as CSV to stdout "
                           "instead: gradvar show RESULTS --csv > results.csv")
    what.add_argument("--skipped", action="store_true",
                      help="list the grid's combinations that did not apply, by reason, "
                           "instead of the table")
    show.set_defaults(handler=cmd_show)
    comparison = commands.add_parser(
        "compare", help="which cells' variance or mean changed between two results tables "
                        "(exit 1 if any, 0 if none: for scripts and CI)")
    comparison.add_argument("a", metavar="RESULTS_A", help="the reference results .parquet "
                                                           "(before)")
    comparison.add_argument("b", metavar="RESULTS_B", help="the results .parquet to check "
                                                           "(after)")
    comparison.add_argument("--all", action="store_true",
                            help=f"list every changed block (default: the first {COMPARE_SHOWN} "
                                 "of each section)")
    comparison.set_defaults(handler=cmd_compare)
    lab = commands.add_parser("lab", help="run the PPDL lab's setups against exact values")
    lab.add_argument("--seed", type=_non_negative_int, default=0,
                     help="base seed for the Monte Carlo setups (default 0)")
    lab.add_argument("--timing", action="store_true",
                     help="also time the lab's 1,000 x 16 batches loop against one vectorized call")
    lab.set_defaults(handler=cmd_lab)
    listing = commands.add_parser("list", help="list problems and estimators")
    listing.set_defaults(handler=cmd_list)
    board = commands.add_parser(
        "leaderboard", help="gather the studies' reports into one leaderboard page")
    board.add_argument("--reports", default="reports", metavar="DIR",
                       help="where the studies' reports are (default: reports); each report "
                            "with a leaderboard.json is a study")
    board.add_argument("--out", metavar="DIR",
                       help="directory to write into (default: DIR/leaderboard)")
    board.set_defaults(handler=cmd_leaderboard)
    return parser


def _integer_at_least(low: int, meaning: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {meaning} integer, got {text!r}") \
                from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be a {meaning} integer, got {value}")
        return value

    return parse


_positive_int = _integer_at_least(1, "positive")
_non_negative_int = _integer_at_least(0, "non-negative")


def _lighter_tensorflow_import() -> None:
    """TensorFlow's import loads Keras 3's optimizers eagerly (scikit-learn with them),
    about a fifth of the import; gradvar uses no Keras. Unless it is set,
    ``TF_USE_LEGACY_KERAS=1`` has it load tf-keras's (installed for TFP) instead, in
    gradvar's processes and the Dask workers they start. A problem module that reads
    ``tf.keras`` gets tf-keras (Keras 2) there."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def main(argv=None) -> int:
    _lighter_tensorflow_import()
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into a reader that stopped early (`gradvar show ... | head`).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())

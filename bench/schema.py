"""The columns of a results table: one definition, from which every module takes its lists.

A results table has one row per (problem, estimator, θ, parameter component, n_samples,
batch_size[, training checkpoint]); :data:`COLUMNS` lists its columns in the order written,
each with its dtype, its group and a one-line meaning with units (README.md's "Results
columns" table is :func:`markdown_table`, and a test keeps the two the same). The sets the
other modules need are derived from the columns' flags:

* :data:`REQUIRED`: what every readable table has (tables of older versions included);
* :data:`REPORT`: what ``gradvar report`` needs;
* :data:`SHOWN`: what ``gradvar show`` prints, with its short display names;
* :data:`STATISTICS`: what describes the R estimates, all NaN when any is non-finite;
* :data:`WALL_CLOCK`: the timed columns, taken alone on the machine (``timing_mode``);
* :data:`DERIVED`: the cell's coordinates (:mod:`bench.coordinates`), which older tables
  lack and reading derives from their cell keys and estimator labels.

:func:`with_defaults` fills the columns that older tables lack; :func:`conform` puts a
frame's columns into schema order with schema dtypes.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from bench import coordinates

GROUPS = ("identity", "truth", "statistics", "cost", "timing", "provenance")
DTYPES = {"str": "str", "int": "int64", "float": "float64", "bool": "bool"}
"""Schema type -> the pandas dtype a table holds it in."""


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of DTYPES
    group: str  # one of GROUPS
    meaning: str  # one line, with units
    required: bool = False  # every readable table has it
    report: bool = False  # the report needs it (besides the required ones)
    show: str | None = None  # its name in `gradvar show`, if shown
    statistic: bool = False  # describes the R estimates: NaN when any is non-finite
    wall_clock: bool = False  # a timed column
    default: object = None  # the value of a table written before the column existed
    default_from: str | None = None  # ... or the column that stands in for it
    derived: bool = False  # a coordinate an older table's cell key or label gives

    @property
    def dtype(self) -> str:
        return DTYPES[self.type]


def _columns(group: str, *specs) -> tuple[Column, ...]:
    return tuple(Column(name, type_, group, meaning, **flags)
                 for name, type_, meaning, flags in specs)


_IDENTITY = _columns(
    "identity",
    ("problem", "str", "the problem, with its factory arguments (`bernoulli_toy(t=0.45)`)",
     dict(required=True, show="problem")),
    ("problem_family", "str", "the problem or factory the grid names", dict(report=True)),
    ("problem_args", "str", "the factory arguments the grid gave, a JSON object whose values "
     "keep their types (`{\"D\":3,\"k\":1.0}`; `{}` for none)",
     dict(derived=True, report=True)),
    ("step", "int", "training runs only: the checkpoint (updates made) at which the cell was "
     "measured", dict(show="step")),
    ("estimator", "str", "the estimator's label", dict(required=True, show="estimator")),
    ("estimator_identity", "str", "the estimator's gradient identity (`score_function`)",
     dict(derived=True, report=True)),
    ("sampling", "str", "the estimator's sampling: iid, antithetic or qmc", dict(derived=True)),
    ("control_variate", "str", "the estimator's control variate: none, loo, batch_optimal or "
     "delta", dict(derived=True)),
    ("temperature", "float", "the identity's `temperature` setting (NaN: it has none)",
     dict(derived=True, report=True)),
    ("eta", "float", "the identity's `eta` setting (NaN: it has none)", dict(derived=True)),
    ("param", "str", "the gradient component (`mean`, or `mean[3]` of a block)",
     dict(required=True, show="param")),
    ("param_block", "str", "the component's parameter block (`mean`)", dict(required=True)),
    ("theta", "float", "θ at this component (in a training run, θ at the checkpoint)",
     dict(required=True, show="theta")),
    ("theta_start", "float", "θ at this component where the cell starts: `theta`, or in a "
     "training run the run's start (NaN in older tables whose key holds a digest of it)",
     dict(derived=True, report=True)),
    ("theta_label", "str", "the cell's θ as text (in a training run, the run's start)",
     dict(report=True)),
    ("n_samples", "int", "draws per estimate", dict(required=True, show="n")),
    ("batch_size", "int", "draws per batch within one estimate",
     dict(required=True, show="batch")),
    ("n_replicates", "int", "R, the independent estimates behind the statistics",
     dict(required=True)),
    ("state_updates", "int", "updates of a stateful estimator's state (a learned control "
     "variate) on fresh batches before its estimates, the grid's `warmup_batches`; 0 for "
     "a stateless estimator", dict(default=0)),
    ("cell", "str", "the cell's key: JSON [problem, arguments, estimator, θ, n_samples, "
     "batch_size(, step)]; a θ of more than 64 components is a digest, "
     "\"sha256:<16 hex>:<components>\" (θ itself is the `theta` column; `bench.cellkey`)",
     dict(report=True)),
)
_TRUTH = _columns(
    "truth",
    ("truth", "float", "the true gradient component", dict(required=True, show="truth")),
    ("truth_kind", "str", "how the truth was obtained: closed_form, quadrature, enumeration "
     "or monte_carlo", dict(required=True, show="truth_kind")),
    ("truth_se", "float", "the truth's standard error (0 unless monte_carlo)",
     dict(required=True)),
    ("truth_checked", "bool", "whether the truth's cross-check could have seen an error of "
     "10% of the gradient's scale (max(|∇ᵢ|, rms ∇)) in this component and found none "
     "(False: too weak, inconclusive or not run; `truth_note` says why)", {}),
    ("truth_tolerance", "float", "the smallest error in this component alone that the "
     "truth's cross-check would have caught (inf: none could)", dict(default=float("nan"))),
    ("truth_method", "str", "how the truth was checked (exact kinds: the checks that ran) or "
     "obtained (monte_carlo: pathwise or score_function)", dict(default="")),
    ("truth_note", "str", "what limited the truth's check or what it found (\"\" when "
     "nothing)", dict(default="")),
    ("f_jumps", "bool", "finite differences found f not differentiable along the draws at "
     "this θ (a jump, step or rounding in x): pathwise estimates are biased here",
     dict(default=False)),
)
_STATISTICS = _columns(
    "statistics",
    ("mean", "float", "mean of the R estimates", dict(required=True, statistic=True)),
    ("bias", "float", "mean − truth", dict(required=True, statistic=True, show="bias")),
    ("bias_se", "float", "the bias's standard error, √(sd²/R + truth_se²)",
     dict(required=True, statistic=True, show="bias_se")),
    ("variance", "float", "variance of one estimate (ddof 1)",
     dict(required=True, statistic=True, show="variance")),
    ("variance_ci_low", "float", "low end of the variance's 95% interval (kurtosis-aware, "
     "log-scale delta method)", dict(required=True, statistic=True)),
    ("variance_ci_high", "float", "high end of that interval",
     dict(required=True, statistic=True)),
    ("variance_ci_rel", "float", "that interval's half-width ÷ the variance",
     dict(report=True, statistic=True, show="ci_rel")),
    ("per_sample_variance", "float", "variance × n_samples: comparable across n",
     dict(required=True, statistic=True)),
    ("mse", "float", "mean squared error of one estimate against the truth",
     dict(required=True, statistic=True, show="mse")),
    ("n_nonfinite", "int", "estimates that are not finite; when > 0 every statistic is NaN "
     "(the cell is never ranked)", dict(show="nonfinite", default=0)),
)
_COST = _columns(
    "cost",
    ("f_evals_per_estimate", "int", "evaluations of f behind one estimate (derivatives not "
     "counted)", dict(required=True)),
    ("event_size", "int", "the dimension D of x (1 for scalar events)", dict(report=True)),
)
_TIMING = _columns(
    "timing",
    ("time_per_estimate_s", "float", "seconds per estimate: the median timed call ÷ R",
     dict(required=True, wall_clock=True, show="s/estimate")),
    ("time_per_estimate_min_s", "float", "seconds per estimate of the fastest timed call",
     dict(wall_clock=True, default_from="time_per_estimate_s")),
    ("time_per_estimate_max_s", "float", "seconds per estimate of the slowest timed call",
     dict(wall_clock=True, default_from="time_per_estimate_s")),
    ("time_per_call_s", "float", "seconds of the median timed call (R estimates)",
     dict(report=True, wall_clock=True)),
    ("samples_per_s", "float", "draws per second: n_samples × R ÷ the median call",
     dict(required=True, wall_clock=True)),
    ("time_per_update_s", "float", "a stateful estimator's seconds per replicate to update "
     "its state on one fresh batch: the median of `timing_repeats` timed updates ÷ R (NaN "
     "for a stateless estimator); its `state_updates` cost that many times more",
     dict(wall_clock=True, default=float("nan"))),
    ("compile_time_s", "float", "seconds of tracing and XLA compilation of the cell's shapes, "
     "outside the timing", dict(required=True)),
    ("timing_mode", "str", "\"serial\": measured and timed alone, one cell at a time in one "
     "process; \"exclusive\": statistics on Dask workers, then timed one cell at a time per "
     "machine", dict(default="serial")),
    ("workers_on_host", "int", "cells that could run at once on the machine (Dask worker "
     "threads) while the statistics and compile time were taken (1 for serial)",
     dict(default=1)),
    ("intra_op_threads", "int", "threads TensorFlow's kernels could use in the cell's "
     "process", {}),
)
_PROVENANCE = _columns(
    "provenance",
    ("backend", "str", "how the estimator ran: xla, graph or eager", dict(required=True)),
    ("device", "str", "the device TensorFlow ran on", dict(required=True)),
    ("seed", "int", "the cell's seed, derived from the run seed and the cell's key",
     dict(required=True)),
)

COLUMNS: tuple[Column, ...] = _IDENTITY + _TRUTH + _STATISTICS + _COST + _TIMING + _PROVENANCE
"""Every column of a results table, in the order written."""
BY_NAME = {column.name: column for column in COLUMNS}
NAMES = tuple(BY_NAME)

REQUIRED = tuple(c.name for c in COLUMNS if c.required)
"""The columns every readable results table has, older versions' included."""
REPORT = REQUIRED + tuple(c.name for c in COLUMNS if c.report)
"""The columns ``gradvar report`` needs."""
SHOWN = {c.name: c.show for c in COLUMNS if c.show}
"""The columns ``gradvar show`` prints (those a table has), with their display names."""
STATISTICS = tuple(c.name for c in COLUMNS if c.statistic)
"""The columns that describe the R estimates; all NaN when any estimate is non-finite."""
WALL_CLOCK = tuple(c.name for c in COLUMNS if c.wall_clock)
"""The timed columns (NaN until a cell's timing phase has run)."""
DERIVED = tuple(c.name for c in COLUMNS if c.derived)
"""The cell's coordinates as columns (:mod:`bench.coordinates`)."""


def with_defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the columns that older tables lack filled in: no count of non-finite
    estimates (none were counted: 0), no timing spread (the median stands in for both
    ends), no ``timing_mode`` ("serial": every run was) or ``workers_on_host`` (1). Missing
    values of those columns are filled the same way. The cell's coordinates (``derived``
    columns) come from its key and estimator label (:func:`bench.coordinates.derive`).
    Applied once, where a table is read (:func:`bench.store.read_results`)."""
    frame = coordinates.derive(frame.copy())
    for column in COLUMNS:
        if column.default is None and column.default_from is None:
            continue
        fill = frame[column.default_from] if column.default_from else column.default
        if column.name not in frame:
            frame[column.name] = fill
        frame[column.name] = frame[column.name].fillna(fill).astype(column.dtype)
    return frame


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its schema columns in schema order and schema dtypes, any other
    columns after them as they were. Raises ValueError for a value its dtype cannot hold
    (a missing int)."""
    known = [name for name in NAMES if name in frame.columns]
    extra = [name for name in frame.columns if name not in BY_NAME]
    frame = frame[known + extra]
    return frame.astype({name: BY_NAME[name].dtype for name in known})


def columns_frame(per_component: dict, per_cell: dict) -> pd.DataFrame:
    """A cell's rows: ``per_component`` columns (sequences of one value per parameter
    component) beside ``per_cell`` values (repeated on every row), in schema order, any
    other columns after them.

    Raises:
      ValueError: the per-component columns differ in length.
    """
    lengths = {len(values) for values in per_component.values()}
    if len(lengths) != 1:
        raise ValueError(f"per-component columns of different lengths {sorted(lengths)}.")
    data = {**per_component, **per_cell}
    order = [name for name in NAMES if name in data] + [n for n in data if n not in BY_NAME]
    return pd.DataFrame({name: data[name] for name in order},
                        index=pd.RangeIndex(lengths.pop()))


def markdown_table() -> str:
    """README.md's "Results columns" table: column, type, meaning."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type} | {c.meaning} |" for c in COLUMNS]
    return "\n".join(lines) + "\n"

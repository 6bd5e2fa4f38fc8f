"""A results table made ready for plotting: checked columns, blocks aggregated, and each
problem family's sweep axis.

**Blocks.** A results table has one row per gradient component; a problem with parameter
blocks (``mean[0]`` … ``mean[999]``) would need a panel per component. As Mohamed et al.
(2020, §8) do, the report shows one row per (cell, block) instead: the variance (and its
95% interval bounds, per-sample variance, MSE, truth) is the **mean over the block's
components**, ``variance_max`` their largest, and the bias is that of the component
farthest from its truth in standard errors (``bias``/``bias_se`` of the worst component,
its |bias|/SE in ``max_abs_z``). Scalar parameters are their own block of one. A block's
``n_nonfinite`` is that of its component with the most non-finite estimates. For a bias of
the whole block, ``bias_norm`` = ‖bias‖ and ``truth_norm`` = ‖truth‖ (Euclidean over its
components), with ``bias_norm_floor`` = √Σ SE², the size ‖bias‖ takes from noise alone.

**Non-finite estimates.** A row with ``n_nonfinite`` > 0 has no trustworthy statistics
(``gradvar run`` writes NaN for them; older tables hold statistics of the finite rest,
which describe a different estimator). :func:`prepare` marks such rows ``nonfinite``;
figures draw :func:`finite_cells` only, and the ranking lists them as not ranked.

**Older tables** get the columns they lack from :func:`bench.schema.with_defaults`, applied
once where a table is read (:func:`bench.store.read_results`): the median
``time_per_estimate_s`` stands in for the timing spread (``_min_s`` / ``_max_s``),
``timing_mode`` is "serial", ``workers_on_host`` 1, and the cell's coordinates
(``problem_args``, ``theta_start``, the estimator's options) come from its key and label.
The report reads those columns; it never decodes a cell key.

**Bias flags** are :func:`bench.metrics.bias_flags`, the rule ``gradvar run``'s summary
applies too. A block of k components (k = 1 for a scalar parameter) is flagged biased when
any component's |bias|, less a float32-rounding allowance (1e-5 of its truth), is at least
``bias_threshold(k)`` standard errors: 4 SE for one component (a false flag once in 16,000
cells), raised with k (Bonferroni) so that a block of 2,000 unbiased components is not
flagged by chance. A deterministic component (zero variance up to float32 rounding) against
an exact truth has no SE: it is flagged when it misses by more than a quadrature-sized
error (1e-3 of its truth). An estimator biased by construction (a relaxation:
``Estimator.declared_biased``) is always flagged.

**Sweep axis.** A grid sweeps θ and, for problem factories, their arguments. Within one
problem family the coordinates that vary across cells (θ's scalars and blocks whose
components are all equal, factory arguments, and in a training run the checkpoint
``step``, θ being the run's start, ``theta_start``) decide the x axis: when exactly one varies it
is the axis (a training run of one start: the step); otherwise cells are placed in order
of appearance and labelled by all their coordinates. :func:`per_problem_sweeps` then
gives such a family one panel per problem when each of its problems sweeps the same single
coordinate (``bernoulli_toy`` at t = 0.499 and t = 0.45, each over θ): ``sweep_group``
names the cells that share an x axis (the family, or for those families the problem).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench import coordinates, metrics, schema


class ReportError(ValueError):
    """A results table cannot be reported on; the message says why."""


def check_columns(frame: pd.DataFrame, where: str) -> None:
    if frame.empty:
        raise ReportError(f"{where}: the results table has no rows (its grid has no cells, or "
                          "every one was skipped); nothing to report.")
    missing = [column for column in schema.REPORT if column not in frame.columns]
    if missing:
        raise ReportError(f"{where}: the results table lacks the columns {missing} that the "
                          "report needs; it was not written by `gradvar run` of this version "
                          "(re-run the grid).")


def aggregate_blocks(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, parameter block): see the module docstring."""
    frame = frame.copy()
    z = (frame.bias.abs() / frame.bias_se).where(frame.bias_se > 0)
    # No SE (a deterministic estimate): z is 0 when it is exact, infinite when it misses.
    frame["abs_z"] = np.where(z.notna(), z, np.where(frame.bias.isna(), np.nan,
                                                     np.where(frame.bias == 0, 0.0, np.inf)))
    frame["components"] = 1
    frame["variance_max"] = frame.variance
    frame["bias_norm"], frame["truth_norm"] = frame.bias**2, frame.truth**2
    frame["bias_norm_floor"] = frame.bias_se**2
    norms = ["bias_norm", "truth_norm", "bias_norm_floor"]
    frame["max_abs_z"] = frame.abs_z
    sizes = frame.groupby(["cell", "param_block"], sort=False).param.transform("size")
    single, blocks = frame[sizes == 1].copy(), frame[sizes > 1]
    single["param"] = single.param_block  # "mean[0]" of a block of one is the block "mean"
    single[norms] = np.sqrt(single[norms])
    if blocks.empty:
        return single.drop(columns="abs_z")
    means = ["truth", "mean", "variance", "variance_ci_low", "variance_ci_high",
             "per_sample_variance", "mse", "truth_se", "theta"]
    keys = ["cell", "param_block"]
    grouped = blocks.groupby(keys, sort=False)
    # A block whose components all lack a bias (non-finite estimates) has no worst one:
    # its first component stands in, NaN bias and all.
    worst = blocks.loc[blocks.abs_z.fillna(-1.0).groupby([blocks[k] for k in keys],
                                                         sort=False).idxmax(),
                       keys + ["bias", "bias_se"]]
    summary = grouped.agg(**{c: (c, "mean") for c in means},
                          variance_max=("variance", "max"), max_abs_z=("abs_z", "max"),
                          components=("param", "size"), n_nonfinite=("n_nonfinite", "max"),
                          **{c: (c, lambda v: float(np.sqrt(v.sum()))
                                 if v.notna().all() else np.nan) for c in norms})
    first = grouped.first().drop(columns=means + norms + [
        "variance_max", "max_abs_z", "components", "n_nonfinite", "bias", "bias_se", "abs_z",
        "param"], errors="ignore")
    merged = first.join(summary).reset_index().merge(worst, on=keys)
    merged["param"] = merged.param_block
    merged["variance_ci_rel"] = (merged.variance_ci_high - merged.variance_ci_low) \
        / (2 * merged.variance)
    order = frame.drop_duplicates(keys)[keys].reset_index(drop=True).reset_index()
    combined = pd.concat([single.drop(columns="abs_z"), merged], ignore_index=True)
    combined = combined.merge(order, on=keys).sort_values("index", kind="stable")
    return combined.drop(columns="index").reset_index(drop=True)


def prepare(frame: pd.DataFrame, where: str = "results") -> pd.DataFrame:
    """The table, blocks aggregated, with the columns figures use added.

    Added: ``coords`` (dict of the cell's θ scalars, constant blocks and factory
    arguments), ``sweep`` (name of the family's x axis), ``x`` (the cell's value on it;
    when no single coordinate varies, the position of its ``setting``, with
    ``categorical`` set and ``sweep`` = "setting"), ``sweep_group`` (the cells that share
    the x axis: the family; see :func:`per_problem_sweeps`), ``panel`` ("family · ∂/∂param"),
    ``setting`` (every coordinate, as text), ``deterministic`` (zero variance, up to
    float32 rounding), ``biased`` and ``nonfinite`` (module docstring); and from
    :func:`aggregate_blocks` ``components``, ``variance_max``, ``max_abs_z``. Older
    tables get the columns they lack (module docstring).
    """
    check_columns(frame, where)
    coords = _coords_per_cell(frame)
    # The identity of each cell's start, before blocks are aggregated (training runs).
    frame = frame.assign(start_id=coordinates.theta_ids(frame))
    frame = aggregate_blocks(frame.join(metrics.bias_flags(frame)))
    frame["coords"] = frame["cell"].map(coords)
    frame["setting"] = [", ".join(f"{k}={_text(v)}" for k, v in c.items()) for c in frame.coords]
    frame["sweep"], frame["x"], frame["categorical"] = "", np.nan, False
    for family, group in frame.groupby("problem_family", sort=False):
        sweep = _sweep_axis(group.coords)
        if sweep is None:  # several coordinates vary: place settings in order of appearance
            order = {label: i for i, label in enumerate(dict.fromkeys(group.setting))}
            x, sweep = group.setting.map(order).astype(float), "setting"
        else:
            x = group.coords.map(lambda c, s=sweep: _number(c.get(s)))
        frame.loc[group.index, "sweep"] = sweep
        frame.loc[group.index, "x"] = x
        frame.loc[group.index, "categorical"] = sweep == "setting"
    frame["sweep_group"] = frame.problem_family
    _set_panels(frame)
    frame["nonfinite"] = frame.n_nonfinite > 0
    return frame


def _set_panels(frame: pd.DataFrame) -> None:
    """``panel`` ("sweep group · ∂/∂param") and ``panel_rank``: panels in grid order,
    families as they appear, then their problems (for split families), then blocks in θ's
    order."""
    frame["panel"] = frame.sweep_group + " · ∂/∂" + frame.param
    families = {f: i for i, f in enumerate(dict.fromkeys(frame.problem_family))}
    groups, blocks = {}, {}
    for family, group, block in zip(frame.problem_family, frame.sweep_group, frame.param_block):
        if group not in groups.setdefault(family, []):
            groups[family].append(group)
        if block not in blocks.setdefault(family, []):
            blocks[family].append(block)
    frame["panel_rank"] = [families[f] * 1000 + groups[f].index(g) * len(blocks[f])
                           + blocks[f].index(b)
                           for f, g, b in zip(frame.problem_family, frame.sweep_group,
                                              frame.param_block)]


SPLIT_PROBLEMS = 6
"""The most problems of one family that :func:`per_problem_sweeps` draws side by side."""


def per_problem_sweeps(frame: pd.DataFrame) -> pd.DataFrame:
    """A prepared table whose families with no single sweep axis get one per problem.

    A family whose cells vary in more than one coordinate is placed by setting (labels on
    a categorical axis). When instead every one of its problems (at most
    ``SPLIT_PROBLEMS`` of them, each a factory call such as ``bernoulli_toy(t=0.45)``)
    varies in the same single numeric coordinate, each problem becomes its own panel
    (``sweep_group`` = the problem, ``panel`` = "problem · ∂/∂param") with that coordinate
    as x: two grids of θ at t = 0.499 and t = 0.45 are two panels over θ, not 18 labels.
    In a training run a problem trained from several starting θ is split the same way
    into its runs (:func:`training_runs`), each over the step. Other rows are returned
    unchanged.
    """
    frame = frame.copy()
    for family, group in frame[frame.categorical].groupby("problem_family", sort=False):
        splits = [group.problem]
        if "step" in group.columns and group.step.notna().all():
            # Its start on a second line of the panel titles: "problem\nfrom <θ>".
            splits.append(training_runs(group).str.replace(" from ", "\nfrom ", regex=False))
        for labels in splits:
            problems = [rows for _, rows in group.groupby(labels, sort=False)]
            if len(problems) > SPLIT_PROBLEMS:
                continue
            axes = {_sweep_axis(rows.coords) for rows in problems}
            sweep = axes.pop() if len(axes) == 1 else None
            if sweep is None or any(rows.coords.map(lambda c, s=sweep: _hashable(c.get(s)))
                                    .nunique() < 2 for rows in problems):
                continue
            frame.loc[group.index, "sweep"] = sweep
            frame.loc[group.index, "x"] = group.coords.map(lambda c, s=sweep: _number(c.get(s)))
            frame.loc[group.index, "categorical"] = False
            frame.loc[group.index, "sweep_group"] = labels
            break
    _set_panels(frame)
    return frame


def training_runs(frame: pd.DataFrame) -> pd.Series:
    """The training run of each row of a training table: its problem, and, when the
    problem was trained from several starting θ (the θ of the cell keys), "problem from
    <starting θ>", numbered "(start k)" when two starts read alike."""
    starts = frame.start_id if "start_id" in frame.columns else coordinates.theta_ids(frame)
    several = starts.groupby(frame.problem).transform("nunique") > 1
    names = frame.problem + " from " + frame.theta_label.astype(str)
    # Labels shorten blocks (their first values): two starts may share one. Number them.
    shared = starts.groupby(names).transform("nunique") > 1
    order = {start: index + 1 for index, start in enumerate(dict.fromkeys(starts))}
    names = names.where(~shared, names + " (start " + starts.map(order).astype(str) + ")")
    return frame.problem.where(~several, names)


def cell_theta(frame: pd.DataFrame, cell: str) -> np.ndarray | None:
    """θ of ``cell`` in component order: its rows' ``theta`` column (a results table, or a
    prepared one whose blocks are each one component; in a training table θ at the
    checkpoint); None for a prepared table's cell with a block of several components
    (its rows hold block means)."""
    rows = frame[frame.cell == cell]
    if "components" not in rows or (rows.components == 1).all():
        return rows.theta.to_numpy(dtype=float)
    return None


def finite_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a prepared table whose R estimates are all finite: the ones to draw."""
    return frame[~frame.nonfinite]


def _coords_per_cell(frame: pd.DataFrame) -> dict:
    """cell key -> {θ scalar or constant block: value, varying block: text, argument: value,
    and in a training run ``step``: the checkpoint}, from the cell's coordinate columns.

    θ comes from the cell's rows (``theta_start``: the cell's θ, in a training run the
    run's start, the same at every step), block by block, without a Python loop over
    components; a start that an older table does not hold (NaN: its key held a digest) is
    named by its label (``start``). The arguments are ``problem_args``, and the step is a
    coordinate: a training run's sweep axis is the step."""
    known = frame.theta_start.notna().groupby(frame.cell, sort=False).transform("all")
    rows = frame.loc[known.to_numpy(dtype=bool), ["cell", "param_block", "theta_start"]]
    coords = _theta_coords(rows.rename(columns={"theta_start": "theta"}))
    cells = frame.drop_duplicates("cell")
    steps = cells.step if "step" in cells.columns else pd.Series(np.nan, cells.index)
    for cell, label, args, step in zip(cells.cell, cells.theta_label, cells.problem_args,
                                       steps):
        entry = coords.get(cell, {"start": label})
        entry.update(coordinates.arguments(args))
        if pd.notna(step):
            entry["step"] = int(step)
        coords[cell] = entry
    return coords


def _theta_coords(rows: pd.DataFrame) -> dict:
    """cell -> {block: its value when all its components are equal, else the text of
    its first values} from rows (cell, param_block, theta), in order of appearance."""
    keys = ["cell", "param_block"]
    by_block = rows.groupby(keys, sort=False).theta
    heads = rows.groupby(keys, sort=False).head(3).groupby(keys, sort=False).theta.agg(list)
    blocks = pd.DataFrame({"first": by_block.first(), "constant": by_block.nunique() == 1,
                           "size": by_block.size(), "head": heads})
    coords: dict = {}
    for (cell, block), row in blocks.iterrows():
        if row["constant"]:
            value = row["first"]
        else:
            head = ", ".join(f"{v:g}" for v in row["head"])
            value = f"[{head}, …]" if row["size"] > 3 else f"[{head}]"
        coords.setdefault(cell, {})[block] = value
    return coords


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else str(value)


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else np.nan


def _sweep_axis(coords: pd.Series) -> str | None:
    keys = list(dict.fromkeys(key for c in coords for key in c))
    varying = [key for key in keys if len({_hashable(c.get(key)) for c in coords}) > 1]
    numeric = [key for key in keys if all(np.isfinite(_number(c.get(key))) for c in coords)]
    if len(varying) == 1 and varying[0] in numeric:
        return varying[0]
    if not varying and numeric:
        return numeric[0]
    return None


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def at_largest_n(frame: pd.DataFrame) -> pd.DataFrame:
    """Per problem family: rows at its largest n_samples and, of those, its largest batch."""
    parts = []
    for _, group in frame.groupby("problem_family", sort=False):
        group = group[group.n_samples == group.n_samples.max()]
        parts.append(group[group.batch_size == group.batch_size.max()])
    return pd.concat(parts, ignore_index=True) if parts else frame.iloc[:0]


def middle_setting(frame: pd.DataFrame) -> pd.DataFrame:
    """Per sweep group (problem family): rows of the median x (the middle setting of its
    sweep)."""
    parts = []
    for _, group in frame.groupby("sweep_group", sort=False):
        values = sorted(group.x.unique())
        parts.append(group[group.x == values[(len(values) - 1) // 2]])
    return pd.concat(parts, ignore_index=True) if parts else frame.iloc[:0]


def estimator_order(frame: pd.DataFrame) -> list[str]:
    return sorted(frame.estimator.unique())

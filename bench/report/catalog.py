"""Every figure a report can draw: one :class:`Figure` record each, registered here once.

A record says what the figure is called (its file name and ``--only``'s name), its title
and caption on the page, how it is drawn, when it applies (every grid, particular grids,
training runs or not, lab runs) and what to look for in it: README.md's figure table
("Reading a report") is :func:`markdown_table`, kept the same by a test, as
:mod:`bench.schema` does for the results columns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bench.report import bounds, categorical, discrete, each, figures, lab_figures, training

INPUTS = ("table", "table+meta", "exact", "lab")
"""What a figure is drawn from: the prepared table (``draw(prepared, colours)``), the
table and the run's metadata (``draw(prepared, colours, meta)``), the table and the exact
curves (``draw(prepared, exact_rows, colours)``), or the lab's rows (``draw(lab_rows)``)."""
TRAINING = ("drawn", "quiet", "never")
"""A figure in a training run: drawn as in any run; "quiet": not noted when the run has
no data for it (several n, batch sizes, dimensions, or exact curves along θ, which a
training run's moving θ has not); "never": not drawn (variance_vs_step replaces
variance_vs_theta, and the others place cells by θ, a training run's start)."""


@dataclasses.dataclass(frozen=True)
class Figure:
    """One figure of a report."""

    name: str
    title: str
    caption: str  # on the page, under the figure
    draw: Callable  # see INPUTS; returns a matplotlib figure, or None without data
    look_for: str  # README's figure table
    inputs: str = "table"  # one of INPUTS
    particular: bool = False  # of particular grids: not noted when it is not drawn
    training: str = "drawn"  # one of TRAINING

    def __post_init__(self):
        if self.inputs not in INPUTS or self.training not in TRAINING:
            raise ValueError(f"figure {self.name}: inputs must be one of {INPUTS} and "
                             f"training one of {TRAINING}.")

    def render(self, prepared, colours, meta: dict, exact_rows):
        """The figure (None when the table has no data for it)."""
        if self.inputs == "table+meta":
            return self.draw(prepared, colours, meta)
        if self.inputs == "exact":
            return self.draw(prepared, exact_rows, colours)
        if self.inputs == "lab":
            return self.draw(meta["lab"])
        return self.draw(prepared, colours)


EXACT_FIGURE = "exact_per_sample_variance"
"""The figure drawn from exact per-sample variance curves, the slowest part of a report."""

FIGURES: tuple[Figure, ...] = (
    Figure(
        "variance_vs_step", "Variance along training",
        "Training runs (Mohamed et al. 2020, §8): θ is trained with one estimator and every "
        "estimator is measured at θ of each checkpoint. A row of panels per training run, a "
        "panel per parameter block: the variance of the R replicate estimates at the largest "
        "n_samples, per gradient component and averaged over the block's components, against "
        "the training step (markers at the checkpoints; the step axis is linear up to the "
        "first checkpoint after 0 and logarithmic beyond it when checkpoints span decades). "
        "The variance is on a log scale. The band is the mean of "
        "the components' 95% CI bounds, not a confidence interval of the mean (which would be "
        "narrower). Deterministic (zero-variance) cells and cells with non-finite estimates are "
        "not drawn. Lower is better at equal cost (see the time per estimate): the variance "
        "where training actually goes, not at θ picked by hand. The ranking can change along "
        "the run (Mohamed et al. 2020, §8): a delta-method control variate, a second-order "
        "Taylor expansion of f around the mean of q, helps only where that expansion fits f "
        "over q's spread, so it can hurt at a wide start and help a lot once q has "
        "concentrated; measure-valued gradients can come close to pathwise ones, at 3D + 1 "
        "evaluations of f per sample (see 'Time per estimate along training').",
        training.variance_vs_step,
        look_for=('only for training runs (`[training]`, e.g. `gradvar run --grid blr`): each '
                  "estimator's variance at the checkpoints along training (in place of "
                  '`variance_vs_theta`)'),
        particular=True),
    Figure(
        "training_log", "Training log",
        "The training run itself: the objective J(θ) (an ELBO, E[f] − penalty, when maximizing "
        "with a penalty) from the logged draws at θ of each step, with a ±2 standard-error "
        "band, and the problem's diagnostics (e.g. held-in accuracy of logistic regression) "
        "against the step; dotted lines mark the checkpoints where the estimators are "
        "measured. When the first steps are far off the later scale, the y axis shows the "
        "later part (said in the panel). A flat, converged curve means the later checkpoints "
        "measure the estimators near the optimum.",
        training.training_log,
        look_for=('only for training runs: the training log (objective ± 2 SE, diagnostics) '
                  'against the step'),
        particular=True, inputs="table+meta"),
    Figure(
        "time_per_estimate", "Time per estimate along training",
        "Seconds per estimate (the median of timed calls divided by R, compilation excluded) "
        "at each problem's largest n_samples, median over the checkpoints, fastest on top, log "
        "scale; error bars from the fastest to the slowest timed call at any checkpoint. Each "
        "bar is labelled with the evaluations of f per estimate and per sample: measure-valued "
        "gradients evaluate f 3D + 1 times per sample (D the dimension of x), so their low "
        "variance (close to pathwise in Mohamed et al. 2020) costs that much more; times of a "
        "few µs are mostly overhead.",
        training.time_per_estimate,
        look_for=('only for training runs: seconds per estimate with the evaluations of f it '
                  'costs'),
        particular=True),
    Figure(
        "variance_vs_theta", "Variance across the sweep",
        "Variance of the R replicate estimates at each problem's largest n_samples, per gradient "
        "component (for a block of parameters: the mean over its components, and of their CI "
        "bounds), on a log scale, with 95% confidence intervals (kurtosis-aware, log scale). "
        "Deterministic estimators (zero variance) are not drawn.",
        figures.variance_vs_theta,
        look_for=('variance of one estimate (log y, 95% CI bars) across the sweep, at the largest '
                  'n'),
        training="never"),
    Figure(
        "variance_vs_n", "Variance vs n_samples",
        "Variance against the number of samples per estimate (one batch), at the middle setting "
        "of each sweep. An average of n iid terms falls as 1/n: parallel to the dashed line.",
        figures.variance_vs_n,
        look_for=('log-log against n_samples: iid averages run parallel to the dashed 1/n line'),
        training="quiet"),
    Figure(
        "variance_vs_dimension", "Variance vs dimension",
        "Per-sample variance (variance × n_samples) at each problem's largest n_samples against "
        "the dimension D of x, for problems whose grid sweeps it (e.g. bench/grids/dimension.toml)."
        " Each block of parameters (mean, std, ...) is one panel: points are the mean over its D "
        "components with the mean of their 95% CI bounds, the dotted line the largest component. "
        "Score-function variance grows with D; pathwise variance does not (Mohamed et al. 2020).",
        figures.variance_vs_dimension,
        look_for=('per-sample variance against the dimension D of x (grids that sweep it), mean '
                  "over a block's components and (dotted) the largest"),
        training="quiet"),
    Figure(
        "bias_vs_theta", "Bias across the sweep",
        "Mean estimate minus the true gradient (exact, or a Monte Carlo reference whose own "
        "standard error the bands include: truth_kind), with ±2 standard-error bands, at each "
        "problem's largest n_samples (for a block of parameters: its component farthest from "
        "the truth in SE). An unbiased estimator's band covers zero; estimators that miss by 4 "
        "SE or more (more for blocks: the level is corrected for their number of components) "
        "are named in red above the panel (naive_mc, where p depends on θ, drops ∇θ p).",
        figures.bias_vs_theta,
        look_for=('mean − exact with ±2 SE bands: unbiased bands cover 0; biased estimators are '
                  'named in red (naive_mc where p depends on θ)')),
    Figure(
        "time_vs_n", "Time per estimate vs n_samples",
        "Wall-clock seconds per estimate (the median of timed calls divided by R; compilation "
        "excluded), one batch, median over the sweep.",
        figures.time_vs_n,
        look_for=('seconds per estimate (compilation excluded) against n'),
        training="quiet"),
    Figure(
        "time_vs_batch", "Time per estimate vs batch size",
        "The same time at each problem's largest n_samples, against the samples per batch: "
        "small batches loop more, large ones need more memory.",
        figures.time_vs_batch,
        look_for=('seconds per estimate against samples per batch'),
        training="quiet"),
    Figure(
        "efficiency", "Efficiency ranking",
        "Variance × time per estimate at the largest n_samples, averaged over the sweep: the "
        "cost of reaching a given variance. Lower is better. Error bars: from the low end of "
        "the variance's 95% CI × the fastest timed call to its high end × the slowest, averaged "
        "the same way. Ranked among unbiased estimators: one whose interval overlaps the best "
        "one's is tied with the best, and all of them are ranked =1; the rest follow by their "
        "point value. Biased estimators (hatched) are listed apart, below, unranked: their "
        "variance understates their error. Estimators with non-finite estimates are named as "
        "not ranked; deterministic ones (zero variance) are not drawn.",
        figures.efficiency,
        look_for=('variance × time per estimate (lower is better) with an interval: the variance '
                  "CI's low end × the fastest timed call to its high end × the slowest. Ranked "
                  "among unbiased estimators; an estimator whose interval overlaps the best one's "
                  'is tied with the best, and all of them are ranked `=1`. Biased estimators '
                  '(hatched) are listed apart, below, unranked; deterministic ones (zero '
                  'variance) are not drawn')),
    Figure(
        "variance_vs_probability", "Variance against the Bernoulli probability",
        "Per-sample variance (variance × n_samples) against p = P(b = 1) on problems whose "
        "measure is one Bernoulli (bernoulli_toy; Tucker et al. 2017, Grathwohl et al. 2018, Yin "
        "& Zhou 2019), one panel per problem, at its largest n_samples, estimators at their "
        "default settings (a temperature sweep is in the next figure). Points: measured, with "
        "95% CIs; lines: the exact per-sample variance (estimators.truth) on a dense grid of θ. "
        "Log scale: a zero variance (DisARM at p = 0.5, where its antithetic pair is always "
        "(0, 1) and every draw gives the same estimate) is drawn at the bottom edge of the "
        "panel (▼); a measured zero (float32 rounding) is not drawn. Not per f evaluation: ARM "
        "and DisARM evaluate f twice per sample, REBAR three times (see the last figure).",
        discrete.variance_vs_probability,
        look_for=('grids with one-Bernoulli problems (`bernoulli_toy`): per-sample variance '
                  "against p = σ(θ), measured (points, CIs) and exact (lines); DisARM's exact "
                  'zero at p = ½ is drawn at the floor (▼)'),
        particular=True, training="never"),
    Figure(
        "variance_along_warmup", "Variance along the warm-up of learned estimators",
        "Learned estimators (rebar_learned, relax, double_cv_learned, or a learned control "
        "variate) update their state on fresh batches before they are measured; a grid sweeps "
        "the count with the estimator option warmup_batches (the rows' state_updates). Per "
        "panel one problem and θ, per line one learned estimator: its per-sample variance "
        "(variance × n_samples, the mean over the cell's components) with 95% CIs against the "
        "updates made, on log scales (0 updates at the left edge: the starting state, which is "
        "fixed REBAR for rebar_learned and relax, RLOO for double_cv_learned). Every state "
        "gives an unbiased estimator, so the variance is what the updates buy; each update "
        "costs as much as an estimate or more (time_per_update_s).",
        discrete.variance_along_warmup,
        look_for=('grids that sweep a learned estimator\'s `warmup_batches`: per-sample variance '
                  'against the state updates before measuring'),
        particular=True, training="never"),
    Figure(
        "snr_vs_samples", "Signal-to-noise ratio against the samples of a bound",
        "Problems that are K-sample importance-weighted bounds (IWAE: iwae_gaussian, "
        "iwae_bernoulli) measured at several K: per gradient component, the signal-to-noise "
        "ratio of one estimate, |mean| / sd over the R replicates, against K, with a 95% "
        "interval from normal theory (√((1 + SNR²/2) / R)). As K grows the bound tightens and "
        "the true gradient of q's parameters shrinks: the plain pathwise gradient's noise "
        "shrinks more slowly, so its SNR falls (Rainforth et al. 2018), while DReG removes the "
        "score term's noise and its SNR grows with K (Tucker et al. 2019; on iwae_gaussian after "
        "a dip from K = 1 to 4). STL is biased for K > 1 "
        "(see the bias figures), so its SNR is not a fair comparison there.",
        bounds.snr_vs_samples,
        look_for=('grids with K-sample bounds (`iwae_gaussian`, `iwae_bernoulli`) at several K: '
                  "each estimator's signal-to-noise ratio against K (pathwise falls, DReG rises)"),
        particular=True, training="never"),
    Figure(
        "bias_vs_temperature", "Bias against temperature",
        "Bias (mean estimate − exact gradient) of the estimators with a temperature setting "
        "(gumbel_softmax, straight_through: relaxations, biased by construction) against the "
        "temperature (log scale), at each problem and θ where the grid sweeps it: measured "
        "points with ±2 standard errors, and the exact bias (exact mean of the estimator − "
        "exact gradient) as a line. The bias vanishes only as the temperature goes to 0, where "
        "the variance of the relaxed gradient grows.",
        discrete.bias_vs_temperature,
        look_for=('the relaxations (`gumbel_softmax`, `straight_through`) swept in `temperature`: '
                  'measured bias ±2 SE and the exact bias (line)'),
        particular=True, training="never"),
    Figure(
        "efficiency_per_f_eval", "Efficiency per evaluation of f",
        "Variance × evaluations of f per estimate (= per-sample variance × f evaluations per "
        "sample): the variance of an estimate that costs one evaluation of f, for the problems "
        "measured with estimators for discrete latents; each label says the evaluations per "
        "sample (ARM, DisARM: 2; REBAR: 3). Mean over each problem's settings (θ) and "
        "components; a family swept in dimension is shown at its largest D. Error bars: the "
        "same mean of the 95% CI bounds. Ranked among unbiased estimators: one whose interval "
        "overlaps the best one's is tied with it (=1). Biased estimators (hatched; measured, "
        "or by construction: the relaxations) are listed apart, unranked. Estimators measured "
        "at only some of a problem's settings (a temperature sweep) are left out.",
        discrete.efficiency_per_f_eval,
        look_for=('estimators of discrete latents: variance × evaluations of f per estimate (ARM, '
                  'DisARM pay 2 per sample, REBAR 3), ranked like `efficiency`; biased ones (the '
                  'relaxations, always) hatched and unranked'),
        particular=True),
    Figure(
        "categorical_variance_vs_peak", "Categorical: variance per f evaluation against peakedness",
        "Problems of categorical latents started at logits that give category 0 a mass "
        "(argument peak; flat logits: 1/C), at their largest n_samples: variance × "
        "evaluations of f per estimate (the variance of an estimate costing one evaluation of "
        "f; IndeCateR pays V·C per draw, Rao-Blackwellized SG its summed states per batch) "
        "against that mass (logit scale), with 95% CIs; one panel per problem. Dashed: biased "
        "by construction (relaxations, ReinMax, Gumbel-Rao), whose variance is not the whole "
        "error (next figures). As the mass concentrates, summing the likely states "
        "(Rao-Blackwellized SG) and sampling without replacement (the unordered set "
        "estimator) leave little to sample.",
        categorical.variance_vs_peak,
        look_for=('categorical latents started at peaked logits (`peak`): variance × f '
                  'evaluations against category 0\'s mass, per estimator'),
        particular=True, training="never"),
    Figure(
        "categorical_variance_vs_categories", "Categorical: variance per f evaluation against C",
        "The same measure against the number of categories C (one panel per start: flat, or "
        "category 0 holding the peak's mass). IndeCateR's cost grows with C.",
        categorical.variance_vs_categories,
        look_for=('categorical toys at several C: variance × f evaluations against C'),
        particular=True, training="never"),
    Figure(
        "categorical_bias_vs_peak", "Categorical: bias against peakedness",
        "‖bias‖ / ‖true gradient‖ (bias over the whole parameter block, truth exact by "
        "enumeration or closed form) against category 0's mass. A point is hollow when ‖bias‖ "
        "is within 3 × √ΣSE² of its cell (for an unbiased estimator E‖bias‖² = ΣSE²): no bias "
        "measurable there; filled points are measured biases. Caveat at peaked logits: a "
        "category other than 0 may appear only a few times in a cell's draws, so the sample "
        "standard errors of REINFORCE-type estimators understate their noise there (their "
        "unbiasedness is tested exactly, by enumeration, in tests/estimators/"
        "test_categorical.py).",
        categorical.bias_vs_peak,
        look_for=('categorical latents: relative bias against the peak, with the noise floor '
                  '(grey)'),
        particular=True, training="never"),
    Figure(
        "categorical_bias_vs_temperature", "Categorical: bias against temperature",
        "‖bias‖ / ‖true gradient‖ of the estimators with a temperature (Gumbel-softmax, "
        "straight-through, Gumbel-Rao, ReinMax) against it, per problem: measured (points; "
        "hollow: within 3 × √ΣSE², no bias measurable) and, where the estimate is a function of the discrete draw "
        "(ReinMax), exact by summing over every state (crosses). ReinMax at temperature 1 is "
        "exact on costs quadratic in the one-hot draw (a second-order method), not on others.",
        categorical.bias_vs_temperature,
        look_for=('relaxed categorical estimators swept in `temperature`: relative bias, '
                  'measured and exact (ReinMax)'),
        particular=True, training="never"),
    Figure(
        "train_each_objective", "Training with each estimator",
        "One training run per estimator and seed (the grid's [train_each]): the training-set "
        "objective (for the VAEs the ELBO over every training image, from fixed draws) against "
        "the step, the seconds spent in updates (logging excluded) and the evaluations of f; "
        "the line is the mean over seeds, the band their range. Dashed: biased estimators "
        "(relaxations), which follow another objective's gradient. Per second and per "
        "evaluation of f, an estimator that costs more per step must do more per step to win.",
        each.objective_by_estimator,
        look_for=("training with each estimator (`[train_each]`): the objective against step, "
                  "seconds and evaluations of f, mean over seeds with their range; dashed: "
                  "biased estimators"),
        inputs="table+meta", particular=True),
    Figure(
        "train_each_variance", "Variance along each estimator's own training",
        "The variance of each training estimator at θ along its own run (log scale), from "
        "independent estimates on the problem's own minibatch at each logged step: summed "
        "over the encoder's blocks (the parameters the estimators' noise flows through), and "
        "per block; mean over seeds, band: their range.",
        each.variance_by_estimator,
        look_for=("training with each estimator: the encoder gradient's variance along each "
                  "estimator's own run (total and per block), mean over seeds"),
        inputs="table+meta", particular=True),
    Figure(
        EXACT_FIGURE, "Per-sample variance: exact and measured",
        "Exact variance of one sample's estimate, by quadrature (lines), and the measured "
        "per-sample variance (variance × n_samples) with its 95% CI (points), at each "
        "problem's largest n_samples. A point whose CI misses its line is a discrepancy "
        "worth a look.",
        figures.exact_per_sample_variance,
        look_for=("exact per-sample variance by quadrature (lines) through the measured "
                  "variance × n (points with CIs): a CI that misses its line is a "
                  "discrepancy"),
        inputs="exact", training="quiet"),
    *(Figure(name, title, caption, draw, inputs="lab",
             look_for=("only for grids with `lab_setups = true` (`gradvar run --grid lab`): "
                       f"the lab's {name[len('lab_'):]}.png, redrawn with measured and exact "
                       "values in the titles"))
      for name, (draw, title, caption) in lab_figures.FIGURES.items()),
)
"""Every figure, in report order."""
BY_NAME = {figure.name: figure for figure in FIGURES}


def figure_names() -> list[str]:
    """Every figure a report can have, by name, in report order."""
    return list(BY_NAME)


def markdown_table() -> str:
    """README.md's figure table: figure, what to look for."""
    lines = ["| figure | what to look for |", "|---|---|"]
    lines += [f"| `{figure.name}` | {figure.look_for} |" for figure in FIGURES]
    return "\n".join(lines) + "\n"

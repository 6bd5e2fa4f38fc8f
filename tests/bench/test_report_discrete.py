"""The report of a discrete grid: variance against p, bias against temperature, variance ×
f evaluations; the exact lines they draw are the exact values of estimators.truth."""

import numpy as np
import pandas as pd
import pytest

import estimators as E
from bench import grid, report, runner
from bench.report import data, discrete, exact, figures
from bench.store import read_results

LOGIT_08 = 1.3862943611198906  # logit(0.8)

TINY = f"""
name = "discrete-test"
seed = 5
n_replicates = 200
timing_repeats = 1
n_samples = [10]
estimators = ["score_function", "disarm", "gumbel_softmax"]

[[problems]]
name = "bernoulli_toy"
t = [0.499, 0.45]
theta = [0.0, {LOGIT_08}]

[[problems]]
name = "bernoulli_toy"
t = 0.45
theta = [{LOGIT_08}]
estimators = [{{name = "gumbel_softmax", temperature = [0.1, 1.0]}}]

[[problems]]
name = "bernoulli_quadratic"
D = [1, 4]
theta = [{{logits = 0.5}}]
estimators = ["score_function", "arm", "straight_through"]

[[problems]]
name = "bernoulli_toy"
t = 0.499
theta = [0.0]
estimators = [{{name = "relax", warmup_batches = [0, 20]}}]
"""
NEW = ["variance_vs_probability", "bias_vs_temperature", "efficiency_per_f_eval",
       "variance_along_warmup"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return runner.run(grid.parse(TINY, "discrete-test.toml"), tmp_path_factory.mktemp("results"),
                      progress=False)


@pytest.fixture(scope="module")
def prepared(results):
    return data.per_problem_sweeps(data.prepare(read_results(results)[0]))


@pytest.fixture(scope="module")
def built(results, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # the curves' density is not under test
        patch.setattr(exact, "CURVE_POINTS", 5)
        patch.setattr(discrete, "CURVE_POINTS", 5)
        return report.build(results, tmp_path_factory.mktemp("report") / "out", progress=False)


def test_the_discrete_figures_are_drawn(built):
    names = [f.name for f in built.figures]
    for name in NEW + ["variance_vs_dimension", "exact_per_sample_variance"]:
        assert name in names
    for figure in built.figures:
        assert figure.png.stat().st_size > 1000 and figure.svg.stat().st_size > 1000
    summary = (built.directory / "summary.md").read_text()
    assert all(f"]({name}.png)" in summary for name in NEW)


def test_variance_lines_are_the_exact_per_sample_variance(prepared):
    curves = discrete.probability_curves(prepared, points=4)
    # One panel per problem, default settings only: no gumbel_softmax(temperature=0.1).
    assert set(curves.problem) == {"bernoulli_toy(t=0.499)", "bernoulli_toy(t=0.45)"}
    assert set(curves.estimator) == {"score_function", "disarm", "gumbel_softmax"}
    problem = E.problems.get("bernoulli_toy", t=0.45)
    for label in ("disarm", "gumbel_softmax"):
        line = curves[(curves.problem == problem.name) & (curves.estimator == label)]
        assert len(line) == 4  # 4 evenly spaced θ, the measured ends among them
        row = line.iloc[1]  # an interior point, not a measured one
        expected = E.truth.per_sample_variance(problem, E.get_estimator(label),
                                               np.array([row.theta]), 10)
        assert row.exact_per_sample_variance == pytest.approx(float(expected[0]), rel=1e-9)
        assert row.p == pytest.approx(1 / (1 + np.exp(-row.theta)), rel=1e-6)
    # DisARM on one Bernoulli at p = 0.5: zero variance, drawn at the floor.
    disarm = curves[curves.estimator == "disarm"]
    assert disarm[disarm.p == pytest.approx(0.5)].zero.all()
    assert not disarm[disarm.p > 0.6].zero.any()


def test_measured_points_are_at_p_of_their_theta(prepared):
    points = discrete.probability_points(prepared)
    assert sorted(np.round(points.p.unique(), 6)) == [0.5, 0.8]
    assert not points.estimator.str.contains("temperature").any()


def test_bias_lines_are_the_exact_bias(prepared):
    points = discrete.temperature_points(prepared)
    assert set(points.identity) == {"gumbel_softmax"}
    assert sorted(points.temperature) == [0.1, 0.5, 1.0]  # the default 0.5 is a point too
    curves = discrete.temperature_curves(prepared, points=3)
    assert sorted(curves.temperature.round(6).unique()) == pytest.approx(
        sorted({0.1, 0.5, 1.0, round(float(np.sqrt(0.1)), 6)}))
    problem = E.problems.get("bernoulli_toy", t=0.45)
    theta = np.array([LOGIT_08])
    for temperature in (0.1, 1.0):
        estimator = E.get_estimator("gumbel_softmax", temperature=temperature)
        mean, _ = estimator.exact_moments(problem, theta, 10)
        expected = float(mean[0] - problem.true_gradient(theta)[0])
        drawn = curves[np.isclose(curves.temperature, temperature)].exact_bias
        assert drawn.to_numpy() == pytest.approx([expected], rel=1e-9)
        assert abs(expected) > 0.005  # biased by construction, visibly so at p = 0.8
    # The measured bias agrees with the exact one (R = 200: within 4 SE).
    merged = points.merge(curves, on=["problem", "setting", "param", "identity", "temperature"])
    assert len(merged) == 3
    assert ((merged.bias - merged.exact_bias).abs() < 4 * merged.bias_se).all()


def test_efficiency_per_f_eval_is_variance_times_f_evaluations(prepared):
    table = discrete.f_eval_efficiency(prepared).set_index(["problem", "estimator"])
    # The quadratic at its largest D only; the temperature sweep (one θ of two) left out.
    assert "bernoulli_quadratic(D=1, t=0.499)" not in set(table.index.get_level_values(0))
    assert not any("temperature" in e for e in table.index.get_level_values(1))
    arm = table.loc[("bernoulli_quadratic(D=4, t=0.499)", "arm")]
    assert arm.f_per_sample == 2
    rows = prepared[(prepared.problem == "bernoulli_quadratic(D=4, t=0.499)")
                    & (prepared.estimator == "arm")]
    assert arm.variance_x_f_evals == pytest.approx(float((rows.variance * 20).mean()))
    assert arm.low < arm.variance_x_f_evals < arm.high
    relaxed = table.loc[("bernoulli_toy(t=0.45)", "gumbel_softmax")]
    assert relaxed.biased and relaxed["rank"] == "—" and relaxed.f_per_sample == 1
    ranks = table.loc["bernoulli_toy(t=0.45)"]["rank"]
    assert set(ranks[ranks != "—"]) <= {"1", "2", "=1"}


def test_each_t_is_its_own_panel_over_theta(results, prepared):
    toy = prepared[prepared.problem_family == "bernoulli_toy"]
    assert not toy.categorical.any() and set(toy.sweep) == {"logit"}
    assert set(toy.panel) == {"bernoulli_toy(t=0.499) · ∂/∂logit",
                              "bernoulli_toy(t=0.45) · ∂/∂logit"}
    assert sorted(toy.x.unique()) == [0.0, LOGIT_08]
    # prepare() alone still places settings of several varying coordinates by label.
    assert data.prepare(read_results(results)[0]).query(
        "problem_family == 'bernoulli_toy'").categorical.all()


def test_exact_gaps_cover_both_problems(built):
    gaps = built.gaps
    assert {"bernoulli_toy(t=0.499)", "bernoulli_toy(t=0.45)"} <= set(gaps.problem)
    assert (gaps.exact > 0).all() and gaps.exact_inside_ci.mean() >= 0.7


def test_settings_share_a_hue_and_colours_do_not_repeat():
    labels = sorted(["arm", "disarm", "rebar", "score_function", "straight_through",
                     "score_function(control_variate=loo)", "gumbel_softmax"]
                    + [f"{name}(temperature={t})" for name in ("gumbel_softmax", "straight_through")
                       for t in ("0.1", "0.25", "1", "2")])
    colours = figures.palette(labels)
    assert len(set(colours.values())) == len(labels)
    base = np.asarray(colours["gumbel_softmax"])
    light, dark = (np.asarray(colours[f"gumbel_softmax(temperature={t})"]) for t in ("0.1", "2"))
    assert light.sum() > base.sum() > dark.sum()
    # Without settings the palette is as before: tab10 in order.
    plain = ["a", "b", "c"]
    assert figures.palette(plain) == dict(zip(plain, figures.sns.color_palette("tab10", 3)))


def test_tables_without_discrete_data_draw_none_of_the_new_figures(prepared):
    colours = figures.palette(data.estimator_order(prepared))
    quadratic = prepared[prepared.problem_family == "bernoulli_quadratic"]
    assert discrete.variance_vs_probability(quadratic, colours) is None  # not one Bernoulli
    assert discrete.bias_vs_temperature(quadratic, colours) is None
    score = quadratic[quadratic.estimator == "score_function"]
    assert discrete.efficiency_per_f_eval(score, colours) is None
    assert isinstance(discrete.f_eval_efficiency(score), pd.DataFrame)


def test_the_report_tables_carry_the_figures_numbers(built, prepared):
    names = [name for name, *_ in discrete.tables(prepared)]
    assert names == ["variance_at_p", "bias_at_temperature", "efficiency_per_f_eval_table"]
    text = built.index.read_text()
    assert all(f'id="{name}"' in text for name in names)
    variance = {name: table for name, _, _, table in discrete.tables(prepared)}["variance_at_p"]
    disarm = variance.set_index(["problem", "estimator"]).loc[("bernoulli_toy(t=0.45)", "disarm")]
    assert disarm["p = 0.5"].endswith("(0)")  # exact zero at p = 0.5


def test_the_discrete_panels_follow_the_identities_declaration():
    # Identity.discrete_latents, not a list of names, decides who gets the per-f panel.
    from bench.report import discrete

    assert discrete.DISCRETE_IDENTITIES == {"arm", "disarm", "arms", "arms_gaussian",
                                            "double_cv", "double_cv_learned", "rebar",
                                            "rebar_learned", "relax",
                                            "gumbel_softmax", "straight_through",
                                            "indecater", "rao_blackwell", "unordered_set",
                                            "arsm", "reinmax", "gumbel_rao"}


def test_warm_up_points_are_the_learned_cells_per_sample_variance(results, prepared):
    # The estimator's own warmup_batches reach the table as state_updates, and the figure's
    # points are its variance × n per count, under the label without the count.
    table = read_results(results)[0]
    learned = table[table.estimator.str.startswith("relax")]
    assert dict(zip(learned.estimator, learned.state_updates)) == {
        "relax(warmup_batches=0)": 0, "relax(warmup_batches=20)": 20}
    points = discrete.warmup_points(prepared)
    assert set(points.learner) == {"relax"} and sorted(points.state_updates) == [0, 20]
    for _, row in points.iterrows():
        cell = learned[learned.estimator == row.estimator]
        assert row.per_sample == pytest.approx(float(cell.variance.iloc[0]) * 10)
        assert row.low < row.per_sample < row.high
    assert discrete.warmup_points(prepared[prepared.estimator == "disarm"]).empty

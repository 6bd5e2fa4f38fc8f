"""The report: figures, the self-contained HTML page and summary.md from a results table."""

import html.parser
import json

import matplotlib.pyplot as plt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import estimators as E
from bench import cli, grid, report, runner, schema
from bench.report import data, exact, figures, lab_figures, page
from bench.store import METADATA_KEY, read_results

TINY = """
name = "report-test"
seed = 0
n_replicates = 200
timing_repeats = 1
estimators = ["score_function", "reparameterization", "naive_mc", "trapz"]
n_samples = [10, 100]
batch_sizes = ["all", 10]
lab_setups = true

[[problems]]
name = "seed_dependence"
theta = [-1.0, -0.5]

[[problems]]
name = "gaussian_cos"
k = [1.0, 2.0]
theta = [[1.0, 1.0]]

[[problems]]
name = "gaussian_square"           # antithetic pairs make ∂/∂mean exactly constant
k = [0.0, 1.0]
theta = [[1.0, 1.0]]
estimators = ["reparameterization_antithetic"]
"""
GENERIC = ["variance_vs_theta", "variance_vs_n", "bias_vs_theta", "time_vs_n", "time_vs_batch",
           "efficiency", "exact_per_sample_variance"]
LAB = ["lab_expectation_value", "lab_expectation_value_dists", "lab_comparison_expected"]


@pytest.fixture(scope="module")
def results(tmp_path_factory, lab_rows):
    with pytest.MonkeyPatch.context() as patch:  # the session's lab rows: computed once
        patch.setattr(runner.lab_setups, "run_lab", lab_rows)
        return runner.run(grid.parse(TINY, "report-test.toml"),
                          tmp_path_factory.mktemp("results"), progress=False)


@pytest.fixture(scope="module")
def built(results, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exact, "CURVE_POINTS", 5)  # the curves' density is not under test
        return report.build(results, tmp_path_factory.mktemp("report") / "out", progress=False)


def test_every_figure_is_written_as_png_and_svg(built):
    assert [f.name for f in built.figures] == GENERIC + LAB
    for figure in built.figures:
        for path in (figure.png, figure.svg):
            assert path.parent == built.directory and path.stat().st_size > 1000, path
        assert figure.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert figure.svg.read_text().lstrip().startswith("<?xml")


def test_every_figure_fits_the_page_width(built):
    # Shown at its own size in a 1,500-px window: neither shrunk by the page nor cut.
    from PIL import Image

    for figure in built.figures:
        with Image.open(figure.png) as image:
            assert image.width <= page.FIGURE_AREA_PX, figure.name


def test_efficiency_panels_with_long_labels_stay_inside_the_figure():
    # Was: three columns of panels labelled "=1 score_function(control_variate=
    # batch_optimal)" in a 13.8-in figure; constrained layout squeezed them and the third
    # column ran off the right edge (the default grid's report).
    from tests.bench.test_report_bad_numbers import row

    labels = ["score_function", "score_function(control_variate=batch_optimal)",
              "score_function(control_variate=loo)", "reparameterization",
              "reparameterization(sampling=antithetic)", "reparameterization(sampling=qmc)",
              "measure_valued", "naive_mc"]
    rows = [row(name, theta, variance=1.0 + index, bias=0.5 if name == "naive_mc" else 0.0,
                family=family, seconds=1e-6 * (index + 1))
            for family in ("seed_fixed", "seed_dependence", "gaussian_cos")
            for index, name in enumerate(labels) for theta in (-1.0, 1.0)]
    prepared = data.prepare(schema.with_defaults(pd.DataFrame(rows)))
    figures.theme()
    fig = figures.efficiency(prepared, figures.palette(labels))
    fig.set_dpi(figures.DPI)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert fig.bbox.width <= page.FIGURE_AREA_PX
    assert len(fig.axes) == 3
    for ax in fig.axes:
        box = ax.get_tightbbox(renderer)  # the panel with its tick labels and texts
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width, (ax.get_title(), box)
        assert ax.bbox.width > 150  # bars, not a sliver
    plt.close(fig)


class _References(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.refs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [(tag, name, value) for name, value in attrs if name in ("src", "href")]


def test_index_html_is_self_contained(built):
    text = built.index.read_text()
    parser = _References()
    parser.feed(text)
    images = [value for tag, name, value in parser.refs if name == "src"]
    assert len(images) == len(built.figures)
    assert all(value.startswith("data:image/png;base64,") for value in images)
    for tag, name, value in parser.refs:
        if name == "href":  # in-page anchors and the figure files beside index.html only
            assert value.startswith("#") or (built.directory / value).is_file(), value
    assert not {"script", "link", "iframe", "object"} & set(parser.tags)
    assert "http://" not in text and "https://" not in text and "url(" not in text


def test_html_has_the_ranking_and_metadata_tables(built, results):
    text = built.index.read_text()
    _, meta = read_results(results)
    for anchor in ('id="ranking"', 'id="metadata"', 'id="exact_gaps"', 'id="lab"'):
        assert anchor in text
    assert meta["run_id"] in text and "seed_dependence" in text


def test_summary_md_lists_every_figure_and_the_ranking(built):
    text = (built.directory / "summary.md").read_text()
    for figure in built.figures:
        assert f"]({figure.name}.png)" in text
    assert "## Ranking per problem" in text and "| problem_family" in text


def test_naive_mc_is_flagged_biased_where_p_depends_on_theta(built, results):
    frame = data.prepare(read_results(results)[0])
    ranking = report.tables.ranking(frame).set_index(["problem_family", "estimator"])
    assert ranking.loc[("seed_dependence", "naive_mc"), "biased"]
    assert not ranking.loc[("seed_dependence", "score_function"), "biased"]
    assert not ranking.loc[("seed_dependence", "reparameterization"), "biased"]
    # Antithetic ∂/∂mean of (x-k)² is constant: float32 rounding, neither variance nor bias.
    antithetic = E.get_estimator("reparameterization_antithetic").label
    assert not ranking.loc[("gaussian_square", antithetic), "biased"]


def test_exact_curves_pass_through_every_measured_point(built):
    gaps = built.gaps
    # seed_dependence: 3 stochastic estimators x 2 θ; gaussian_cos: 2 x 2 k x 2 components;
    # gaussian_square: antithetic's ∂/∂std at 2 k (its ∂/∂mean has exact variance zero).
    assert len(gaps) == 3 * 2 + 2 * 2 * 2 + 2
    assert (gaps.exact > 0).all() and gaps.relative_gap.notna().all()
    # Measured per-sample variance (variance x n) agrees with quadrature: with R = 200 the
    # 95% CIs are about ±20% wide, so most contain the exact value (a factor-of-n slip in
    # either would leave none inside).
    assert gaps.exact_inside_ci.mean() >= 0.75
    assert gaps.relative_gap.abs().median() < 0.15


def test_exactly_zero_variance_is_rounding_not_compared(results):
    frame = data.prepare(read_results(results)[0])
    table, notes = exact.curves(frame[frame.problem_family == "gaussian_square"], progress=False)
    by_param = table.groupby("param").zero.all()
    assert by_param["mean"] and not table[table.param == "std"].zero.any()
    assert any("exact per-sample variance of zero" in note for note in notes)


def test_sweep_axis_is_the_coordinate_that_varies(results):
    frame = data.prepare(read_results(results)[0])
    sweeps = frame.groupby("problem_family").sweep.first().to_dict()
    assert sweeps == {"seed_dependence": "theta", "gaussian_cos": "k", "gaussian_square": "k"}
    assert sorted(frame[frame.problem_family == "gaussian_cos"].x.unique()) == [1.0, 2.0]


def test_lab_figure_titles_carry_measured_and_exact_values(results):
    rows = read_results(results)[1]["lab"]
    keyed = {row["key"]: row for row in rows}
    fig = lab_figures.comparison_expected(rows)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 5
    for title, mu in zip(titles, (-50, -25, 0, 25, 50)):
        assert f"{keyed[f't2_mc_{mu}']['exact']:.5f}" in title
        assert f"MC={keyed[f't2_mc_{mu}']['value']:.4f}" in title
        assert f"TRAPZ={keyed[f't2_trapz_{mu}']['value']:.4f}" in title


def _rewrite(results, path, drop):
    table = pq.read_table(results)
    pq.write_table(table.drop_columns(drop), path)
    return path


@pytest.mark.parametrize("column", ["variance_ci_low", "cell"])
def test_table_missing_columns_is_a_one_line_error(results, tmp_path, capsys, column):
    broken = _rewrite(results, tmp_path / "broken.parquet", [column])
    assert cli.main(["report", str(broken), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gradvar: error:") and column in err
    assert not (tmp_path / "r" / "index.html").exists()


def test_foreign_parquet_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    assert cli.main(["report", str(path), "--no-progress"]) == 2
    assert "not a gradvar results table" in capsys.readouterr().err


def test_cli_report_prints_the_index_path(results, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(exact, "CURVE_POINTS", 3)
    out = tmp_path / "cli"
    # One figure: every figure is drawn by the module's report (``built``); this is the CLI.
    assert cli.main(["report", str(results), "--out", str(out), "--no-progress",
                     "--only", "efficiency"]) == 0
    assert f"report: {out / 'index.html'}" in capsys.readouterr().out
    assert (out / "index.html").is_file()


def test_only_builds_the_named_figures_and_no_exact_curves(results, tmp_path, monkeypatch):
    curves, sizes = exact.curves, []

    def counted(frame, **options):
        sizes.append(len(frame))
        return curves(frame, **options)

    monkeypatch.setattr(exact, "curves", counted)
    only = ["efficiency", "lab_comparison_expected", "variance_vs_theta", "efficiency"]
    built = report.build(results, tmp_path / "r", progress=False, only=only)
    names = ["variance_vs_theta", "efficiency", "lab_comparison_expected"]  # report order
    assert [f.name for f in built.figures] == names
    assert sorted(p.stem for p in built.directory.glob("*.png")) == sorted(names)
    assert sizes == [0]  # the exact curves (minutes on a large grid) only for their figure
    text = built.index.read_text()
    assert "Only the figures asked for were built (--only efficiency,lab_comparison_expected," \
           "variance_vs_theta)." in text
    assert 'id="ranking"' in text  # the tables as ever


def test_only_notes_a_named_figure_that_cannot_be_drawn(results, tmp_path, capsys,
                                                        monkeypatch):
    monkeypatch.setattr(exact, "CURVE_POINTS", 3)
    out = tmp_path / "r"
    assert cli.main(["report", str(results), "--out", str(out), "--no-progress", "--only",
                     "exact_per_sample_variance,variance_vs_probability"]) == 0
    assert "(1 figures," in capsys.readouterr().out
    text = (out / "index.html").read_text()
    assert "figure variance_vs_probability not drawn: the table has no data for it" in text
    assert (out / "exact_per_sample_variance.png").is_file()


@pytest.mark.parametrize("only, what", [
    ("efficiency,variance_vs_thetta", "unknown figure 'variance_vs_thetta'"),
    ("Efficiency", "unknown figure 'Efficiency'"),
    (",", "no figure named"),
])
def test_only_with_an_unknown_figure_is_a_one_line_error(results, tmp_path, capsys, only,
                                                         what):
    out = tmp_path / "r"
    assert cli.main(["report", str(results), "--out", str(out), "--no-progress",
                     "--only", only]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"gradvar: error: --only: {what}; give one or more of "
                   f"{', '.join(report.figure_names())}, separated by commas.")
    assert "variance_vs_theta, variance_vs_n" in err and "lab_comparison_expected" in err
    assert not out.exists()


def test_empty_table_is_an_error(results, tmp_path):
    table = pq.read_table(results)
    empty = table.slice(0, 0).replace_schema_metadata(table.schema.metadata)
    pq.write_table(empty, tmp_path / "empty.parquet")
    with pytest.raises(report.ReportError, match="no rows"):
        report.build(tmp_path / "empty.parquet", tmp_path / "r", progress=False)


def test_bundled_report_grids_are_valid():
    assert grid.load("paper").cells and grid.load("lab").lab_setups


DEGENERATE = """
name = "degenerate"
n_replicates = 20
timing_repeats = 1
estimators = ["trapz"]
n_samples = [10]

[[problems]]
name = "seed_fixed"
mu = [0.0, 1.0]            # mu and θ both vary: settings are placed by their labels
theta = [-0.5, 0.5]
"""


def test_deterministic_only_table_with_two_varying_coordinates(tmp_path):
    results = runner.run(grid.parse(DEGENERATE, "degenerate.toml"), tmp_path, progress=False)
    frame = data.prepare(read_results(results)[0])
    assert frame.categorical.all() and frame.setting.nunique() == 4
    built = report.build(results, tmp_path / "r", progress=False)
    # Nothing stochastic to plot but the bias figure (and timing has one n, one batch).
    assert [f.name for f in built.figures] == ["bias_vs_theta"]
    assert "not drawn" in built.index.read_text()


def test_readme_lists_exactly_the_report_figures():
    """README's figure table is bench.report.catalog's (as the columns table is the schema's)."""
    import re
    from pathlib import Path

    from bench.report import catalog

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Reading a report", 1)[1]
    table = re.search(r"^\| figure \| what to look for \|\n(?:\|.*\n)+", section, re.M).group(0)
    assert table == catalog.markdown_table()
    assert catalog.figure_names() == [figure.name for figure in catalog.FIGURES]

"""Grids (core v2): estimator option tables, θ as block tables, problems from the user's own
files, and a run and report of a user problem."""

import textwrap

import numpy as np
import pytest

from bench import cli, grid, runner
from bench.store import RunStore, read_results

MY_PROBLEMS = '''
"""Problems of the user's own, next to the grid file."""

import estimators
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def logistic(scale: float = 1.0):
    """f = log(1 + exp(-scale x)) under N(mean, std^2): quadrature truth."""
    return estimators.Problem(
        name=f"logistic(scale={scale:g})",
        dist=lambda t: tfd.Normal(t[..., 0], t[..., 1]),
        cost=lambda x, t: tf.math.softplus(-scale * x),
        param_names=("mean", "std"), bounds={"std": (0.0, None)})


def blocks(D: int = 2):
    """f = softplus(sum x) under N(mean, I) in D dimensions: a Monte Carlo reference."""
    return estimators.Problem(
        name=f"blocks(D={D})", params={"mean": D},
        dist=lambda t: tfd.MultivariateNormalDiag(t["mean"], tf.ones_like(t["mean"])),
        cost=lambda x, t: tf.math.softplus(tf.reduce_sum(x, -1)),
        reference_samples=20_000)


def not_a_problem(scale: float = 1.0):
    return {"scale": scale}


def raises(scale: float = 1.0):
    raise RuntimeError("cannot build this one")


NOT_CALLABLE = 3
'''

ESTIMATOR_TABLES = """
n_replicates = 10
backend = "graph"
estimators = [
    "reparameterization",
    {name = "score_function", control_variate = ["none", "loo", "delta"]},
]
n_samples = [10]

[[problems]]
name = "gaussian_cos"
theta = [[1.0, 1.0]]
"""


def write_user_folder(folder, grid_text, problems=MY_PROBLEMS):
    (folder / "my_problems.py").write_text(problems)
    path = folder / "grid.toml"
    path.write_text(textwrap.dedent(grid_text))
    return path


# -- estimator option tables ----------------------------------------------------------------------

def test_option_tables_expand_to_labels():
    g = grid.parse(ESTIMATOR_TABLES, "g.toml")
    assert [c.estimator for c in g.cells] == [
        "reparameterization", "score_function", "score_function(control_variate=loo)",
        "score_function(control_variate=delta)"]
    assert g.skipped == ()


def test_option_tables_sweep_every_combination():
    text = ESTIMATOR_TABLES.replace(
        '{name = "score_function", control_variate = ["none", "loo", "delta"]}',
        '{name = ["reparameterization", "score_function"], control_variate = ["none", "delta"]}')
    labels = [c.estimator for c in grid.parse(text, "g.toml").cells]
    assert labels == ["reparameterization", "reparameterization(control_variate=delta)",
                      "score_function", "score_function(control_variate=delta)"]


def test_labels_and_tables_of_the_same_estimator_are_one_cell():
    text = ESTIMATOR_TABLES.replace(
        '"reparameterization",',
        '"score_function(control_variate=loo)", {name = "score_function_loo"},')
    labels = [c.estimator for c in grid.parse(text, "g.toml").cells]
    assert labels == ["score_function(control_variate=loo)", "score_function",
                      "score_function(control_variate=delta)"]


def test_tables_set_their_estimators_own_n_samples_and_batch_sizes():
    text = ESTIMATOR_TABLES.replace("n_samples = [10]", 'n_samples = [1, 10]\n'
                                                        'batch_sizes = ["all", 5]').replace(
        TABLE, '{name = ["score_function_loo", "trapz"], n_samples = [10, 20], '
               'batch_sizes = ["all"]}, {name = "score_function_loo", n_samples = [20], '
               'batch_sizes = [10]}')
    g = grid.parse(text, "g.toml")
    loo = "score_function(control_variate=loo)"
    assert [(c.estimator, c.n_samples, c.batch_size) for c in g.cells] == [
        ("reparameterization", 1, 1), ("reparameterization", 10, 10),
        ("reparameterization", 10, 5), (loo, 10, 10), (loo, 20, 20), ("trapz", 10, 10),
        ("trapz", 20, 20), (loo, 20, 10)]
    assert g.skipped == (("gaussian_cos(k=1) reparameterization θ=[mean=1, std=1] n=1 b=5",
                          "batch_size > n_samples"),)


def test_the_default_grid_asks_only_for_what_applies_and_keeps_its_cells():
    # Its tables give each estimator its own n_samples and batch sizes; the cells are those
    # of every estimator at every n in [1, 10, 100, 1000] and batch size in ["all", 10]
    # that applies (475 such combinations were skipped and listed on every run).
    default = grid.load("default")
    text = default.source
    start, end = text.index("batch_sizes = "), text.index("[[problems]]")
    names = sorted({c.estimator for c in default.cells})
    every = text[:start] + 'batch_sizes = ["all", 10]\nestimators = ' + repr(names) + \
        "\n\n" + text[end:]
    cross = grid.parse(every, "every.toml")
    assert len(default.cells) == 1275 and default.skipped == ()
    assert sorted(c.key for c in default.cells) == sorted(c.key for c in cross.cells)
    assert len(cross.skipped) == 475


def test_numeric_settings_sweep_in_tables():
    text = textwrap.dedent('''
        n_samples = [10]
        estimators = [{name = ["gumbel_softmax", "straight_through"], temperature = [0.1, 0.5, 2]},
                      "rebar(eta=0.5)", {name = "rebar", eta = 0.5, temperature = "0.5"}]
        [[problems]]
        name = "bernoulli_toy"
        theta = [0.0]
    ''')
    labels = [c.estimator for c in grid.parse(text, "g.toml").cells]
    assert labels == ["gumbel_softmax(temperature=0.1)", "gumbel_softmax",
                      "gumbel_softmax(temperature=2)", "straight_through(temperature=0.1)",
                      "straight_through", "straight_through(temperature=2)", "rebar(eta=0.5)"]


TABLE = '{name = "score_function", control_variate = ["none", "loo", "delta"]}'


@pytest.mark.parametrize("table, message", [
    pytest.param('{name = "score_function", control_variate = ["none", "lo"]}',
                 r"^g\.toml: estimators\[1\]: control_variate must be one of none, loo, "
                 r"batch_optimal, delta, got 'lo'\.$", id="unknown-value"),
    pytest.param('{name = "score_function", baseline = "loo"}',
                 r"^g\.toml: estimators\[1\]: unknown estimator option 'baseline' for "
                 r"score_function; its options are sampling, control_variate\.$",
                 id="unknown-option"),
    pytest.param('{name = "reparameterization", sampling = ["iid", "sobol"]}',
                 r"^g\.toml: estimators\[1\]: sampling must be one of iid, antithetic, qmc, got "
                 r"'sobol'\.$", id="unknown-sampling"),
    pytest.param('{control_variate = "loo"}',
                 r"^g\.toml: estimators\[1\]: an estimator table needs a name", id="no-name"),
    pytest.param('{name = "score_function", control_variate = 2}',
                 r"^g\.toml: estimators\[1\]: control_variate must be one of none, loo, "
                 r"batch_optimal, delta, got 2\.$", id="a-number-for-a-named-option"),
    pytest.param('{name = "score_function", control_variate = ["none", 2]}',
                 r"^g\.toml: estimators\[1\]\.control_variate: must be a string or a list of "
                 r"strings \(a number or a list of numbers for a numeric setting such as "
                 r"temperature\), got \['none', 2\]\.$", id="mixed-list"),
    pytest.param('{name = "gumbel_softmax", temperature = [0.5, 0]}',
                 r"^g\.toml: estimators\[1\]: temperature \(the relaxation's temperature λ\) "
                 r"of gumbel_softmax must be a number above 0, got 0\.$", id="zero-temperature"),
    pytest.param('{name = "gumbel_softmax", temperature = true}',
                 r"^g\.toml: estimators\[1\]\.temperature: must be a string", id="boolean"),
    pytest.param('{name = "trapz", n_samples = []}',
                 r"^g\.toml: estimators\[1\]\.n_samples: must list at least one positive "
                 r"integer, got \[\]\.$", id="no-n_samples"),
    pytest.param('{name = "trapz", n_samples = 10}',
                 r"^g\.toml: estimators\[1\]\.n_samples: must list at least one positive "
                 r"integer, got 10\.$", id="n_samples-not-a-list"),
    pytest.param('{name = "trapz", batch_sizes = ["all", 0]}',
                 r'^g\.toml: estimators\[1\]\.batch_sizes: must be a positive integer or '
                 r'"all", got 0\.$', id="zero-batch"),
    pytest.param('{name = "reinforce"}',
                 r"^g\.toml: estimators\[1\]: unknown estimator 'reinforce'; choose one of: ",
                 id="unknown-name"),
])
def test_bad_option_tables(table, message):
    assert TABLE in ESTIMATOR_TABLES
    with pytest.raises(grid.GridError, match=message) as caught:
        grid.parse(ESTIMATOR_TABLES.replace(TABLE, table), "g.toml")
    assert "\n" not in str(caught.value)


def test_impossible_combination_is_skipped_and_listed():
    text = ESTIMATOR_TABLES.replace(
        '"reparameterization",', '{name = "reparameterization", control_variate = "loo"},')
    g = grid.parse(text, "g.toml")
    assert [c.estimator for c in g.cells] == [
        "score_function", "score_function(control_variate=loo)",
        "score_function(control_variate=delta)"]
    assert g.skipped == (("reparameterization(control_variate=loo)",
                          "reparameterization does not combine with control_variate=loo; it "
                          "takes control_variate=none or delta."),)


def test_impossible_option_pairs_inside_one_table_are_skipped():
    text = ESTIMATOR_TABLES.replace(
        'control_variate = ["none", "loo", "delta"]',
        'sampling = ["iid", "antithetic"], control_variate = ["none", "loo"]')
    g = grid.parse(text, "g.toml")
    assert [c.estimator for c in g.cells] == [
        "reparameterization", "score_function", "score_function(control_variate=loo)",
        "score_function(sampling=antithetic)"]
    assert [label for label, _ in g.skipped] == [
        "score_function(sampling=antithetic, control_variate=loo)"]
    assert "takes sampling=iid, not antithetic" in g.skipped[0][1]


def test_a_table_with_nothing_applicable_is_an_error():
    text = ESTIMATOR_TABLES.replace(TABLE, '{name = "reparameterization", control_variate = '
                                           '["loo", "batch_optimal"]}')
    text = text.replace('    "reparameterization",\n', "")
    with pytest.raises(grid.GridError, match=r"^g\.toml: estimators: no estimator left: every "
                                             r"combination of options is inapplicable "
                                             r"\(reparameterization\(control_variate=loo\): "
                                             r"reparameterization does not combine with "
                                             r"control_variate=loo; .*\)\.$"):
        grid.parse(text, "g.toml")


# -- θ as tables of blocks ------------------------------------------------------------------------

BLOCKS_GRID = """
n_replicates = 10
backend = "graph"
estimators = ["reparameterization"]
n_samples = [10]

[[problems]]
name = "gaussian_square_nd"
D = 2
theta = [{mean = 1.0, std = 1.0}, {mean = [0.5, -0.5], std = 2.0}, [0.0, 0.1, 0.2, 0.3]]
"""


def test_theta_tables_expand_to_vectors():
    g = grid.parse(BLOCKS_GRID, "g.toml")
    assert [c.theta for c in g.cells] == [(1.0, 1.0, 1.0, 1.0), (0.5, -0.5, 2.0, 2.0),
                                          (0.0, 0.1, 0.2, 0.3)]
    assert g.cells[0].problem_obj.param_labels == ("mean[0]", "mean[1]", "std[0]", "std[1]")


@pytest.mark.parametrize("theta, message", [
    pytest.param("{mean = 1.0}", r"theta for problem 'gaussian_square_nd\(D=2, k=1\)' must give "
                                 r"exactly \['mean', 'std'\], got keys \['mean'\]\.$",
                 id="missing-block"),
    pytest.param("{mean = [1.0, 2.0, 3.0], std = 1.0}",
                 r"theta\['mean'\] for problem 'gaussian_square_nd\(D=2, k=1\)' must be a number "
                 r"or 2 numbers, got 3 values\.$", id="block-too-long"),
    pytest.param("{mean = 0.0, std = [1.0, -1.0]}",
                 r"theta 'std\[1\]' must be > 0.0 for problem 'gaussian_square_nd\(D=2, k=1\)', "
                 r"got -1.0\.$", id="bound-on-a-component"),
    pytest.param("1.0", r"theta must have 4 value\(s\) \(mean: 2, std: 2\)", id="a-number"),
])
def test_bad_theta_tables(theta, message):
    text = BLOCKS_GRID.replace("theta = [{mean = 1.0, std = 1.0}, {mean = [0.5, -0.5], std = 2.0}, "
                               "[0.0, 0.1, 0.2, 0.3]]", f"theta = [{theta}]")
    with pytest.raises(grid.GridError, match=r"^g\.toml: problems\[0\]\.theta: " + message):
        grid.parse(text, "g.toml")


# -- problems from the user's own files -----------------------------------------------------------

USER_GRID = """
n_replicates = 10
backend = "graph"
estimators = ["score_function", "reparameterization"]
n_samples = [10]

[[problems]]
name = "my_problems.py:logistic"
scale = [1, 2]
theta = [[0.5, 1.0]]
"""


def test_user_factory_next_to_the_grid(tmp_path):
    g = grid.load(write_user_folder(tmp_path, USER_GRID))
    assert [(c.problem, c.kwargs, c.estimator) for c in g.cells] == [
        ("my_problems.py:logistic", (("scale", 1),), "score_function"),
        ("my_problems.py:logistic", (("scale", 1),), "reparameterization"),
        ("my_problems.py:logistic", (("scale", 2),), "score_function"),
        ("my_problems.py:logistic", (("scale", 2),), "reparameterization"),
    ]
    names = [c.problem_obj.name for c in g.cells]
    assert names == ["logistic(scale=1)"] * 2 + ["logistic(scale=2)"] * 2
    assert all(c.base_dir == str(tmp_path.resolve()) for c in g.cells)
    # One problem object per argument set, shared by its cells.
    assert g.cells[2].problem_obj is g.cells[3].problem_obj


@pytest.mark.parametrize("as_module", [False, True], ids=["file.py:f", "module:f"])
def test_an_edited_problem_file_is_imported_again(tmp_path, monkeypatch, as_module):
    """A long-lived process (a Dask worker) must run the file as it is now, not the
    version it imported first."""
    from bench import problem_specs

    module = f"edited_problem_{int(as_module)}"
    path = tmp_path / f"{module}.py"
    spec = f"{module}:make" if as_module else f"{path.name}:make"
    monkeypatch.syspath_prepend(str(tmp_path))
    body = "import estimators\n\ndef make():\n    return estimators.problems.factory('{}')()\n"
    path.write_text(body.format("seed_dependence"))
    first = problem_specs.get(spec, {}, tmp_path)
    path.write_text(body.format("seed_dependence") + "X = 1\n")
    second = problem_specs.get(spec, {}, tmp_path)
    assert problem_specs.factory(spec, tmp_path).__globals__["X"] == 1
    assert second is not first  # rebuilt from the new factory
    assert problem_specs.get(spec, {}, tmp_path) is second  # and cached while unchanged


def test_user_factory_keys_are_checked_against_its_signature(tmp_path):
    path = write_user_folder(tmp_path, USER_GRID.replace("scale = [1, 2]", "slope = 1"))
    with pytest.raises(grid.GridError, match=r"problems\[0\]\.slope: unknown key for problem "
                                             r"'my_problems.py:logistic'; allowed keys are "
                                             r"estimators, name, scale, theta, train_each\.$"):
        grid.load(path)


@pytest.mark.parametrize("name, problems, message", [
    pytest.param("missing.py:logistic", MY_PROBLEMS,
                 r"problems\[0\]\.name: problem 'missing.py:logistic': no file .*missing.py",
                 id="missing-file"),
    pytest.param("my_problems.py:logit", MY_PROBLEMS,
                 r"problems\[0\]\.name: problem 'my_problems.py:logit': my_problems.py defines no "
                 r"'logit'\.$", id="missing-function"),
    pytest.param("my_problems.py:NOT_CALLABLE", MY_PROBLEMS,
                 r"problems\[0\]\.name: problem 'my_problems.py:NOT_CALLABLE': "
                 r"my_problems.py:NOT_CALLABLE is not callable", id="not-callable"),
    pytest.param("my_problems.py:logistic", "import estimators\nraise ImportError('no scipy "
                 "here')\n", r"problems\[0\]\.name: problem 'my_problems.py:logistic': importing "
                 r".*my_problems.py failed with ImportError: no scipy here$",
                 id="raises-at-import"),
    pytest.param("my_problems.py:logistic", "def logistic(scale: float = 1.0)\n",
                 r"problems\[0\]\.name: problem 'my_problems.py:logistic': importing "
                 r".*my_problems.py failed with SyntaxError", id="syntax-error"),
    pytest.param("my_problems.py:not_a_problem", MY_PROBLEMS,
                 r"problems\[0\]: problem factory 'my_problems.py:not_a_problem' must return an "
                 r"estimators.Problem, got dict\.$", id="returns-not-a-problem"),
    pytest.param("my_problems.py:raises", MY_PROBLEMS,
                 r"problems\[0\]: problem 'my_problems.py:raises': the factory raised "
                 r"RuntimeError: cannot build this one$", id="factory-raises"),
    pytest.param("my_problems.py:", MY_PROBLEMS,
                 r"problems\[0\]\.name: problem 'my_problems.py:': write 'file.py:function' or "
                 r"'package.module:function'\.$", id="no-function-name"),
    pytest.param("no_such_package.problems:logistic", MY_PROBLEMS,
                 r"problems\[0\]\.name: problem 'no_such_package.problems:logistic': no module "
                 r"'no_such_package'", id="missing-module"),
])
def test_bad_user_problem_specs(tmp_path, name, problems, message):
    text = USER_GRID.replace('"my_problems.py:logistic"', f'"{name}"')
    path = write_user_folder(tmp_path, text, problems)
    with pytest.raises(grid.GridError, match=r"^" + str(path).replace(".", r"\.") + ": "
                                             + message) as caught:
        grid.load(path)
    assert "\n" not in str(caught.value)


def test_user_problem_with_a_broken_dist_is_a_grid_error(tmp_path):
    problems = MY_PROBLEMS + '''

def scalars(D: int = 3):
    return estimators.Problem(name="scalars", params={"mean": D},
                              dist=lambda t: tfd.Normal(t["mean"], 1.0),
                              cost=lambda x, t: tf.reduce_sum(x**2, -1))
'''
    text = USER_GRID.replace('"my_problems.py:logistic"', '"my_problems.py:scalars"') \
        .replace("scale = [1, 2]", "").replace("[[0.5, 1.0]]", "[{mean = 0.5}]")
    path = write_user_folder(tmp_path, text, problems)
    with pytest.raises(grid.GridError, match=r"tfd\.Independent"):
        grid.load(path)


# -- a run and a report of user problems -----------------------------------------------------------

RUN_GRID = """
name = "user-run"
n_replicates = 50
timing_repeats = 1
backend = "graph"
estimators = ["score_function", "reparameterization"]
n_samples = [20]

[[problems]]
name = "my_problems.py:logistic"
scale = 2
theta = [[0.5, 1.0], [-0.5, 1.0]]

[[problems]]
name = "my_problems.py:blocks"
D = 2
estimators = ["score_function"]
theta = [{mean = 0.25}]
"""


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user_grid")
    g = grid.load(write_user_folder(folder, RUN_GRID))
    path = runner.run(g, tmp_path_factory.mktemp("results"), progress=False)
    return folder, path


def test_run_of_user_problems_writes_the_v2_columns(user_run):
    _, path = user_run
    frame, meta = read_results(path)
    assert meta["n_cells"] == 5
    logistic = frame[frame.problem_family == "my_problems.py:logistic"]
    assert len(logistic) == 2 * 2 * 2  # estimators × θ × components
    assert set(logistic.problem) == {"logistic(scale=2)"}
    assert (logistic.param_block == logistic.param).all()
    assert (logistic.truth_kind == "quadrature").all() and (logistic.truth_se == 0).all()
    assert (logistic.f_evals_per_estimate == 20).all() and (logistic.event_size == 1).all()

    blocks = frame[frame.problem_family == "my_problems.py:blocks"]
    assert blocks.param.tolist() == ["mean[0]", "mean[1]"]
    assert blocks.param_block.tolist() == ["mean", "mean"]
    assert (blocks.truth_kind == "monte_carlo").all() and (blocks.truth_se > 0).all()
    assert (blocks.event_size == 2).all() and (blocks.f_evals_per_estimate == 20).all()
    # The reference's standard error enters the bias test.
    assert (blocks.bias_se**2 >= blocks.truth_se**2).all()
    np.testing.assert_allclose(blocks.bias_se**2,
                               blocks.variance / blocks.n_replicates + blocks.truth_se**2,
                               rtol=1e-9)


def test_bias_of_user_problems_is_small(user_run):
    _, path = user_run
    frame, _ = read_results(path)
    assert (frame.bias.abs() < 5 * frame.bias_se).all(), \
        frame[["problem", "estimator", "param", "bias", "bias_se"]]


def test_report_of_user_problems_rebuilds_them_from_the_grid_folder(user_run, tmp_path, capsys):
    _, path = user_run
    out = tmp_path / "report"
    assert cli.main(["report", str(path), "--out", str(out), "--no-progress"]) == 0
    assert f"report: {out / 'index.html'}" in capsys.readouterr().out
    summary = (out / "summary.md").read_text()
    assert "my_problems.py:logistic" in summary
    assert "cannot be rebuilt" not in summary
    assert (out / "exact_per_sample_variance.png").exists()


def test_user_problem_with_a_broken_cost_is_a_grid_error(tmp_path):
    problems = MY_PROBLEMS + '''

def summed(scale: float = 1.0):
    return estimators.Problem(name="summed", dist=lambda t: tfd.Normal(t, scale),
                              cost=lambda x, t: tf.reduce_sum(x**2))
'''
    text = USER_GRID.replace('"my_problems.py:logistic"', '"my_problems.py:summed"') \
        .replace("scale = [1, 2]", "").replace("[[0.5, 1.0]]", "[0.5]")
    path = write_user_folder(tmp_path, text, problems)
    with pytest.raises(grid.GridError, match=r"problems\[0\]: problem 'summed': cost\(x, theta\) "
                                             r"returned a single number that changes with x"):
        grid.load(path)


def test_resume_refuses_when_the_problem_file_changed(tmp_path, capsys):
    # A resumed run would mix cells of the old and the new problem under one name.
    folder = tmp_path / "user"
    folder.mkdir()
    path = write_user_folder(folder, USER_GRID)
    def interrupted(*args):  # stopped after its last cell, before the final table
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunStore, "finish", interrupted)
        with pytest.raises(KeyboardInterrupt):
            runner.run(grid.load(path), tmp_path / "out", run_id="r", progress=False)
    parts = tmp_path / "out" / "r.parts"
    assert parts.is_dir() and not (tmp_path / "out" / "r.parquet").exists()
    (folder / "my_problems.py").write_text(MY_PROBLEMS + "\n# edited\n")
    assert cli.main(["run", "--resume", str(parts), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "my_problems.py changed since the run started" in err and "Traceback" not in err

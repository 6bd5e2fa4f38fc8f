"""The README's "Add an estimator" walkthrough, run as written (issue 26).

The file in the README is a learned control variate written only through the public
protocol; these tests import it from the README text itself, so the walkthrough cannot
drift from what works.
"""

import contextlib
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import estimators as E

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- add-an-estimator:"
NAME = "learned_spread"
R, N, WARMUP = 4000, 16, 100


def walkthrough_source() -> str:
    """The python block after the README's add-an-estimator marker."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index(MARKER):]
    return re.search(r"```python\n(.*?)```", after, re.S).group(1)


@contextlib.contextmanager
def walkthrough(directory: Path):
    """The README's file imported as a user would (it registers ``learned_spread``); the
    registration is removed after the block, so other tests see the built-in registry."""
    path = directory / "my_control_variate.py"
    path.write_text(walkthrough_source(), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("my_control_variate", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["my_control_variate"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("my_control_variate", None)
        if NAME in E.CONTROL_VARIATES:
            E.unregister_control_variate(NAME)


@pytest.fixture(scope="module")
def estimator(tmp_path_factory):
    with walkthrough(tmp_path_factory.mktemp("walkthrough")):
        yield E.get_estimator("naive_mc", control_variate=NAME)


@pytest.fixture(scope="module")
def estimates(estimator):
    problem = E.problems.get("seed_fixed")
    return {warmup: E.estimate(estimator, problem, 1.0, N, R, seed=11, warmup_batches=warmup)
            for warmup in (0, WARMUP)}


def test_the_walkthrough_registers_a_stateful_estimator(estimator):
    assert estimator.stateful and estimator.label == f"naive_mc(control_variate={NAME})"
    assert E.get_estimator("score_function", control_variate=NAME).stateful
    with pytest.raises(E.NotApplicableError, match="does not combine with"):
        E.get_estimator("reparameterization", control_variate=NAME)


@pytest.mark.parametrize("warmup", [0, WARMUP], ids=["initial-state", "after-warm-up"])
def test_unbiased_within_5_se(estimates, warmup):
    truth = E.problems.get("seed_fixed").truth(1.0).gradient[0]  # closed form
    sample = estimates[warmup][:, 0]
    assert abs(sample.mean() - truth) < 5 * sample.std(ddof=1) / np.sqrt(R)


def test_variance_is_lower_after_warm_up(estimates):
    # Direction: after < before, by a one-sided F test at level 1e-6 (measured here:
    # 3.9 before, 0.92 after); replicates learn on their own draws, so both are
    # variances of R independent estimates.
    before, after = (estimates[w][:, 0].var(ddof=1) for w in (0, WARMUP))
    assert before / after > stats.f.ppf(1 - 1e-6, R - 1, R - 1)


def test_the_walkthrough_runs_where_f_ignores_theta(estimator):
    # naive_mc on a vector problem whose f does not take θ: a draw's estimate is zero
    # (no connected gradient), which the update must take as zero, not fail on.
    problem = E.problems.get("gaussian_square_nd", D=3)
    g = E.estimate(estimator, problem, [0.5] * 3 + [1.0] * 3, N, 20, warmup_batches=3)
    assert g.shape == (20, 6) and np.isfinite(g).all()


def test_the_initial_state_is_the_plain_estimator(estimator):
    problem = E.problems.get("seed_fixed")
    plain = E.estimate("naive_mc", problem, 1.0, N, 50, seed=2)
    np.testing.assert_allclose(E.estimate(estimator, problem, 1.0, N, 50, seed=2), plain,
                               rtol=1e-6)


def test_state_stays_in_the_compiled_program(estimator):
    problem = E.problems.get("seed_fixed")
    program = E.program(estimator, problem, 1.0, N, 8)
    state = program.init_state(1.0)
    assert {key: value.shape for key, value in state["control_variate"].items()} \
        == {"gh": (8, 1), "hh": (8,)}
    for batches in (1, 5, 0, 3):
        state = program.warm_up(1.0, state, batches, seed=batches)
    estimates, stepped = program.step(1.5, 4, state)
    assert estimates.shape == (8, 1) and not np.array_equal(stepped["control_variate"]["hh"],
                                                            state["control_variate"]["hh"])
    program(0.5, seed=1, state=stepped)
    counts = {name: function.experimental_get_tracing_count()
              for name, function in program._stateful_functions.items()}
    assert counts == {"init": 1, "warm_up": 1, "step": 1} and program.trace_count == 2
    # trace_count: the estimates' own program, and the step that holds it.


def test_a_cost_branching_on_a_tensor_trains_the_state_as_the_plain_cost(estimator):
    # Programs trace without autograph; a cost that needs it is traced again with it,
    # its state's programs (init, warm-up, step) too.
    from tests.estimators.test_engine import _branching, _gaussian_problem, _squared

    results = []
    for name, cost in (("plain", _squared), ("branching", _branching)):
        program = E.program(estimator, _gaussian_problem(name, cost), 0.3, N, 8)
        state = program.warm_up(0.3, None, 4, seed=1)
        estimates, state = program.step(0.3, 2, state)
        results.append((program(0.3, seed=3, state=state), estimates,
                        state["control_variate"]["hh"], program._autograph))
    (plain, *plain_rest, plain_autograph), (branching, *rest, autograph) = results
    np.testing.assert_array_equal(branching, plain)
    for ours, theirs in zip(rest, plain_rest):
        np.testing.assert_array_equal(ours, theirs)
    assert (plain_autograph, autograph) == (False, True)


def test_bad_state_and_warm_up_are_refused_in_a_sentence(estimator):
    problem = E.problems.get("seed_fixed")
    program = E.program(estimator, problem, 1.0, N, 8)
    with pytest.raises(ValueError, match=r"^state: .* takes the state its init_state "):
        program(1.0, state={"control_variate": {"gh": np.zeros((3, 1)), "hh": np.zeros(3)}})
    with pytest.raises(ValueError, match="^warmup_batches must be a whole number of at least 0"):
        E.estimate(estimator, problem, 1.0, N, 8, warmup_batches=-1)
    with pytest.raises(ValueError, match="^batches must be a whole number"):
        program.warm_up(1.0, program.init_state(1.0), 2.5)
    with pytest.raises(ValueError, match="is stateless and takes no state"):
        E.program("naive_mc", problem, 1.0, N, 8)(1.0, state={"x": 1})
    with pytest.raises(ValueError, match="already registered"):
        E.register_control_variate(E.CONTROL_VARIATES[NAME])
    with pytest.raises(ValueError, match="is one of gradvar's own and stays"):
        E.unregister_control_variate("loo")
    with pytest.raises(ValueError, match="^no control variate named 'nope' is registered"):
        E.unregister_control_variate("nope")

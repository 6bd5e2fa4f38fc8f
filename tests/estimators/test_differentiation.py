"""Forward and reverse mode: the engine's choice (estimators/engine.py) and that both give
the same estimates, up to float32 rounding, on every estimator that may use forward mode
and on measures whose sampling TFP differentiates implicitly (Beta, Gamma)."""

import numpy as np
import pytest

import estimators as E
from estimators._runtime import tf, tfd
from estimators.engine import FORWARD_MIN_BATCH, Program, choose_differentiation

NORMAL = E.problems.get("seed_dependence")
BETA = E.Problem(name="beta_square", dist=lambda t: tfd.Beta(1.0 + t, 2.0),
                 cost=lambda x, t: x**2)  # a concentration of exactly 1 at θ = 0
GAMMA = E.Problem(name="gamma_log", dist=lambda t: tfd.Gamma(2.0 + t, 1.5),
                  cost=lambda x, t: tf.math.log1p(x) * (1.0 + t))
BERNOULLI = E.problems.get("bernoulli_toy", t=0.45)


CASES = [
    pytest.param("reparameterization", NORMAL, -1.0, id="reparameterization-normal"),
    pytest.param("reparameterization_antithetic", NORMAL, -1.0, id="antithetic-normal"),
    pytest.param("reparameterization_qmc", NORMAL, -1.0, id="qmc-normal"),
    pytest.param("reparameterization(control_variate=delta)", NORMAL, 0.5, id="pathwise-delta"),
    pytest.param("score_function", NORMAL, -1.0, id="score_function-normal"),
    pytest.param("score_function_loo", NORMAL, -1.0, id="loo-normal"),
    pytest.param("score_function(control_variate=delta)", NORMAL, 0.5, id="score-delta"),
    pytest.param("rebar", BERNOULLI, 0.4054651081, id="rebar-bernoulli"),
    pytest.param("reparameterization", BETA, 0.0, id="reparameterization-beta-implicit"),
    pytest.param("score_function", BETA, 0.0, id="score_function-beta-at-1"),
    pytest.param("reparameterization", GAMMA, 0.3, id="reparameterization-gamma-implicit"),
    pytest.param("score_function", GAMMA, 0.3, id="score_function-gamma"),
]


IMPLICIT = {"reparameterization-beta-implicit", "reparameterization-gamma-implicit",
            "score_function-beta-at-1", "score_function-gamma"}


@pytest.mark.parametrize("label, problem, theta", CASES)
def test_forward_and_reverse_mode_agree(label, problem, theta, request):
    estimator = E.get_estimator(label)
    assert estimator.forward_mode
    programs = {mode: Program(estimator, problem, 200, 16, 200, "xla", differentiation=mode)
                for mode in ("forward", "reverse")}
    estimates = {mode: program(theta, 5) for mode, program in programs.items()}
    # TFP draws Gamma and Beta with custom gradients (implicit reparameterization), which
    # forward mode would skip (0.200 against the exact 0.153 below): traced again in
    # reverse mode.
    implicit = request.node.callspec.id in IMPLICIT
    assert programs["forward"].differentiation == ("reverse" if implicit else "forward")
    scale = max(1.0, float(np.abs(estimates["reverse"]).max()))
    np.testing.assert_allclose(estimates["forward"], estimates["reverse"], rtol=0,
                               atol=2e-5 * scale)
    assert np.all(np.isfinite(estimates["forward"]))
    assert np.unique(estimates["forward"]).size > 1  # replicates, not copies


def test_forward_mode_in_a_loop_of_batches_agrees():
    estimator = E.get_estimator("score_function")
    estimates = [Program(estimator, NORMAL, 400, 16, 200, "xla", differentiation=mode)(-1.0, 2)
                 for mode in ("forward", "reverse")]
    np.testing.assert_allclose(*estimates, rtol=0, atol=2e-5)


@pytest.mark.parametrize("label, problem, batch, backend, expected", [
    pytest.param("reparameterization", NORMAL, FORWARD_MIN_BATCH, "xla", "forward",
                 id="pathwise-xla"),
    pytest.param("score_function", NORMAL, 1000, "xla", "forward", id="score-xla"),
    pytest.param("rebar", BERNOULLI, 1000, "xla", "forward", id="rebar-xla"),
    pytest.param("score_function", NORMAL, FORWARD_MIN_BATCH - 1, "xla", "reverse",
                 id="small-batches"),
    pytest.param("score_function", NORMAL, 1000, "graph", "reverse", id="graph"),
    pytest.param("score_function", NORMAL, 1000, "eager", "reverse", id="eager"),
    pytest.param("measure_valued", NORMAL, 1000, "xla", "reverse", id="measure_valued"),
    pytest.param("trapz", NORMAL, 1000, "xla", "reverse", id="trapz"),
    pytest.param("score_function_batch_optimal", NORMAL, 1000, "xla", "reverse",
                 id="batch_optimal"),
    pytest.param("gumbel_softmax", BERNOULLI, 1000, "xla", "reverse", id="relaxation"),
    pytest.param("score_function", E.problems.get("gaussian_square"), 1000, "xla", "reverse",
                 id="two-parameters"),
])
def test_the_engine_chooses_forward_mode_only_where_it_was_faster(label, problem, batch,
                                                                  backend, expected):
    assert choose_differentiation(E.get_estimator(label), problem, batch, backend) == expected


def test_programs_record_their_mode():
    program = E.program("reparameterization", NORMAL, -1.0, 1000, n_replicates=4)
    assert program.differentiation == "forward"
    assert E.program("reparameterization", NORMAL, -1.0, 1000, n_replicates=4,
                     batch_size=10).differentiation == "reverse"


def test_a_mode_that_does_not_exist_or_apply_is_refused():
    estimator = E.get_estimator("score_function")
    for wrong in ("sideways", "Forward", [], 1):
        with pytest.raises(ValueError, match="differentiation must be"):
            Program(estimator, NORMAL, 100, 4, 100, "xla", differentiation=wrong)
    with pytest.raises(ValueError, match="one parameter"):
        Program(estimator, E.problems.get("gaussian_square"), 100, 4, 100, "xla",
                differentiation="forward")
    with pytest.raises(ValueError, match="compiled backend"):
        Program(estimator, NORMAL, 100, 4, 100, "eager", differentiation="forward")


def _custom_cost(x, theta):
    @tf.custom_gradient
    def doubled_slope(x):  # value x², declared derivative 4x (twice the true one)
        return x**2, lambda upstream: upstream * 4.0 * x

    return doubled_slope(x) + 0.0 * theta


def test_a_custom_gradient_is_applied_whatever_mode_is_asked():
    """E[x²] under N(θ, 1) with ∂f/∂x declared as 4x: the declared gradient gives
    E[4x] = 4θ; forward mode would have differentiated x² instead (2θ)."""
    problem = E.Problem(name="declared_slope", dist=lambda t: tfd.Normal(t, 1.0),
                        cost=_custom_cost)
    program = Program(E.get_estimator("reparameterization"), problem, 1000, 200, 1000, "xla",
                      differentiation="forward")
    estimates = program(0.5, 1)[:, 0]
    assert program.differentiation == "reverse" and program.trace_count == 2
    se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - 2.0) < 5 * se


def test_the_exact_gradient_under_beta_one_in_the_engine_s_own_choice():
    """Pathwise on Beta(1 + θ, 2), f = x², θ = 0: ∇θ E f = 22/144 exactly
    (tests/estimators/test_log_prob_gradients.py)."""
    estimates = E.estimate("reparameterization", BETA, 0.0, n_samples=1000, n_replicates=200,
                           seed=4)[:, 0]
    se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - 22 / 144) < 5 * se


def _mapped_cost(x, theta):
    return tf.map_fn(lambda row: tf.sin(row) * row, x) + 0.0 * theta


def _scanned_cost(x, theta):
    return tf.scan(lambda carry, row: tf.sin(row) * row, x) + 0.0 * theta


def _recomputed_cost(x, theta):
    return tf.recompute_grad(lambda z: tf.sin(z) * z)(x) + 0.0 * theta


@pytest.mark.parametrize("cost", [_mapped_cost, _scanned_cost, _recomputed_cost],
                         ids=["map_fn", "scan", "recompute_grad"])
def test_costs_forward_mode_cannot_trace_run_in_reverse_mode(cost):
    """TensorFlow's forward mode fails on tf.map_fn / tf.scan / tf.recompute_grad, which
    reverse mode differentiates: the engine's choice must not turn them into errors."""
    problem = E.Problem(name=f"sin_{cost.__name__}", dist=lambda t: tfd.Normal(t, 1.0),
                        cost=lambda x, t: tf.sin(x) * x)
    looped = E.Problem(name=f"looped{cost.__name__}", dist=lambda t: tfd.Normal(t, 1.0),
                       cost=cost)
    program = E.program("reparameterization", looped, 0.5, 1000, n_replicates=200)
    estimates = program(0.5, 1)[:, 0]
    assert program.differentiation == "reverse"
    se = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - problem.true_gradient(0.5)[0]) < 5 * se


def test_the_cache_of_input_tensors_stays_small_over_a_sweep_of_theta():
    program = E.program("score_function", NORMAL, -1.0, 100, n_replicates=4)
    for theta in np.linspace(-2.0, 1.0, 200):
        program(float(theta), 0)
    assert len(program._inputs) <= 64

"""Truths that know their limits: costs with jumps, supports that move with θ, expectations
that do not exist, pathwise estimates through a step, and a cross-check whose power is
stated. Every case has a closed-form answer: the truth is right within 5 SE, or it is
refused or marked unchecked with a sentence saying why; never checked and wrong."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

import estimators as E
from estimators._rng import tracing_rng
from estimators.truth import check, draws

tfd = tfp.distributions
MEAN = np.array([0.3, -0.2, 0.1])


def assert_right(reference, exact, se_multiple=5.0):
    """Within ``se_multiple`` SE of ``exact`` (an exact truth: to 1e-6)."""
    exact = np.asarray(exact, dtype=float)
    if reference.exact:
        np.testing.assert_allclose(reference.gradient, exact, rtol=1e-6, atol=1e-8)
    else:
        assert np.all(np.abs(reference.gradient - exact) <= se_multiple * reference.gradient_se
                      + 1e-9), (reference.gradient, exact, reference.gradient_se)


def gaussian_vector(name, cost, **extra):
    return E.Problem(name=name, params={"mean": 3},
                     dist=lambda t: tfd.MultivariateNormalDiag(t["mean"],
                                                               tf.ones_like(t["mean"])),
                     cost=cost, **extra)


# -- jumps --------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0.05, 0.2, 1.0])
def test_a_jump_under_a_vector_measure_gets_the_score_function_reference(size):
    # f = Σ x² + c·1[x_0 > 0]: ∂/∂mean_0 E f = 2 mean_0 + c φ(mean_0). The pathwise
    # reference misses c φ(mean_0) (0.019 at c = 0.05: 5 of its SEs).
    problem = gaussian_vector(f"jump_{size}", lambda x, t, c=size: tf.reduce_sum(x**2, -1)
                              + c * tf.cast(x[..., 0] > 0, x.dtype))
    reference = problem.truth({"mean": MEAN})
    exact = 2 * MEAN + np.array([size * stats.norm.pdf(MEAN[0]), 0.0, 0.0])
    assert reference.kind == "monte_carlo" and reference.method == "score_function"
    assert reference.smooth is False and "not differentiable along the draws" in reference.note
    assert_right(reference, exact)


def test_a_rounding_under_a_vector_measure_is_seen_and_referenced_right():
    # f = round(x_1): ∂/∂mean_1 E f = Σ_k φ(k + ½ − mean_1); the pathwise gradient is 0.
    problem = gaussian_vector("rounding", lambda x, t: tf.round(x[..., 1]))
    reference = problem.truth({"mean": MEAN})
    exact = [0.0, sum(stats.norm.pdf(k + 0.5 - MEAN[1]) for k in range(-10, 10)), 0.0]
    assert reference.smooth is False and reference.method == "score_function"
    assert_right(reference, exact)


def test_a_pathwise_reference_asked_for_on_a_jump_is_refused():
    problem = gaussian_vector("asked_pathwise", lambda x, t: tf.cast(x[..., 0] > 0, x.dtype),
                              reference="pathwise")
    with pytest.raises(E.TruthError, match=r"not differentiable along the draws .* the pathwise "
                                           r"reference you asked for would miss the jumps; use "
                                           r"reference='score_function'"):
        problem.truth({"mean": MEAN})


def test_the_score_function_reference_can_be_asked_for():
    problem = gaussian_vector("asked_score", lambda x, t: tf.reduce_sum(x**2, -1),
                              reference="score_function", reference_samples=200_000)
    reference = problem.truth({"mean": MEAN})
    assert reference.method == "score_function" and reference.checked
    assert_right(reference, 2 * MEAN)


def test_an_unknown_reference_is_one_sentence():
    with pytest.raises(ValueError, match=r"^reference must be one of auto, pathwise, "
                                         r"score_function, got 'exact'\.$"):
        gaussian_vector("bad", lambda x, t: x[..., 0], reference="exact")


@pytest.mark.parametrize("size", [0.05, 0.5, 2.0])
def test_a_scalar_jump_has_an_exact_truth_and_is_seen(size):
    # f = x² + c·1[x > 0.5] under N(θ, 1): ∇ = 2θ + c φ(0.5 − θ), by quadrature.
    problem = E.Problem(name=f"scalar_jump_{size}", dist=lambda t: tfd.Normal(t, 1.0),
                        cost=lambda x, t, c=size: x**2 + c * tf.cast(x > 0.5, x.dtype),
                        breakpoints=(0.5,))
    reference = problem.truth(0.2)
    assert reference.kind == "quadrature" and reference.checked
    assert_right(reference, [0.4 + size * stats.norm.pdf(0.3)])
    assert reference.smooth is False


@pytest.mark.parametrize("cost", [
    pytest.param(lambda x, t: tf.cast(x > 0, x.dtype), id="indicator"),
    pytest.param(lambda x, t: tf.round(2 * x), id="round"),
    pytest.param(lambda x, t: tf.floor(x), id="floor"),
])
def test_pathwise_through_a_step_warns_and_is_biased(cost):
    problem = E.Problem(name="step", dist=lambda t: tfd.Normal(t, 1.0), cost=cost)
    with pytest.warns(E.BiasedEstimatorWarning, match=r"reparameterization differentiates f "
                                                      r"along the draws, but on problem 'step' "
                                                      r"f is not differentiable"):
        pathwise = E.estimate("reparameterization", problem, 0.3, n_samples=100,
                              n_replicates=200)
    np.testing.assert_array_equal(pathwise, 0.0)  # the step's derivative: zero everywhere
    truth = problem.true_gradient(0.3)
    assert truth[0] > 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the score function is unbiased: no warning
        score = E.estimate("score_function", problem, 0.3, n_samples=100, n_replicates=2000)
    assert abs(score.mean() - truth[0]) < 5 * score.std() / np.sqrt(len(score))


def test_pathwise_through_a_step_of_a_vector_warns():
    problem = gaussian_vector("vector_step", lambda x, t: tf.cast(x[..., 2] > 0, x.dtype))
    with pytest.warns(E.BiasedEstimatorWarning, match="mean\\[2\\]"):
        E.estimate("reparameterization", problem, {"mean": MEAN}, n_samples=10)


def test_pathwise_through_a_smooth_cost_does_not_warn():
    problem = gaussian_vector("smooth", lambda x, t: tf.reduce_sum(tf.abs(x), -1))  # a kink
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        E.estimate("reparameterization", problem, {"mean": MEAN}, n_samples=10)
    assert check.smoothness(problem, MEAN).smooth is True


def test_a_jump_of_f_in_theta_itself_is_seen_and_the_reference_refused():
    # f = Σ x² + 1[x_0 > 2 mean_0]: autodiff's ∇θ f misses the jump in θ, so the score
    # function is as wrong as the pathwise gradient (it gave +0.38 for the true −0.38).
    problem = gaussian_vector("theta_jump", lambda x, t: tf.reduce_sum(x**2, -1)
                              + tf.cast(x[..., 0] > 2 * t["mean"][..., 0:1][..., 0],
                                        x.dtype))
    with pytest.raises(E.TruthError, match=r"not differentiable in θ .* a jump of f in θ "
                                           r"itself.* no unbiased Monte Carlo reference"):
        problem.truth({"mean": MEAN})
    with pytest.warns(E.BiasedEstimatorWarning, match=r"score_function takes f's gradient in "
                                                      r"θ by autodiff"):
        E.estimate("score_function", problem, {"mean": MEAN}, n_samples=10)


def test_a_jump_of_f_in_theta_with_a_closed_form_is_checked_by_differences():
    exact = 2 * MEAN - np.array([stats.norm.pdf(MEAN[0]), 0.0, 0.0])

    def value(t):
        return tf.reduce_sum(t["mean"] ** 2 + 1.0) + tf.cast(
            tfp.distributions.Normal(0.0, 1.0).cdf(-tf.cast(t["mean"][0], tf.float32)),
            t["mean"].dtype)

    problem = gaussian_vector("theta_jump_exact", lambda x, t: tf.reduce_sum(x**2, -1)
                              + tf.cast(x[..., 0] > 2 * t["mean"][..., 0:1][..., 0], x.dtype),
                              exact_value=value)
    reference = problem.truth({"mean": MEAN})
    assert reference.method == "finite_difference" and "not differentiable in θ" in reference.note
    np.testing.assert_allclose(reference.gradient, exact, rtol=1e-5)


def test_a_jump_next_to_a_heavy_tail_is_still_seen():
    # exp(x_0²/2.5) has a finite mean but a heavy tail (k = 0.8); the jump in x_1 must not
    # be hidden by it.
    problem = gaussian_vector("heavy_and_jump", lambda x, t: tf.exp(x[..., 0] ** 2 / 2.5)
                              + tf.cast(x[..., 1] > 0, x.dtype))
    reference = problem.truth({"mean": MEAN})
    assert reference.smooth is False and reference.method == "score_function"
    assert not reference.checked


# -- supports that move with θ ------------------------------------------------------------------

def test_a_moving_support_with_a_step_gets_the_boundary_term():
    # E_{Uniform(0, θ)} 1[x > ½] = 1 − 1/(2θ): ∇ = 1/(2θ²), all of it from the moving edge
    # (the pathwise gradient of the step is 0 on every draw; it used to be the truth, 0 ± 0).
    problem = E.Problem(name="uniform_step", dist=lambda t: tfd.Uniform(tf.zeros_like(t), t),
                        cost=lambda x, t: tf.cast(x > 0.5, x.dtype), bounds={"theta": (0, None)})
    reference = problem.truth(1.25)
    assert reference.kind == "quadrature" and reference.checked
    assert_right(reference, [1 / (2 * 1.25**2)])


def test_a_moving_lower_edge_with_a_window():
    # Pareto(3, scale θ): P(x > 2) = (θ/2)³ for θ < 2, ∇ = 3θ²/8.
    problem = E.Problem(name="pareto_step", dist=lambda t: tfd.Pareto(3.0, t),
                        cost=lambda x, t: tf.cast(x > 2.0, x.dtype),
                        window=lambda v: (v[0], 1e4), bounds={"theta": (0, None)})
    reference = problem.truth(1.0)
    assert reference.kind == "quadrature"
    assert_right(reference, [3 / 8])


def test_a_moving_vector_support_with_a_smooth_cost_has_a_checked_reference():
    # Independent Uniform(0, θ_i), f = Σ x_i²: ∇ = 2θ/3, the boundary term carried by the
    # pathwise draws x = θ u; finite differences (valid on a moving support) check it.
    problem = E.Problem(name="uniform_vector", params={"high": 2},
                        dist=lambda t: tfd.Independent(
                            tfd.Uniform(tf.zeros_like(t["high"]), t["high"]), 1),
                        cost=lambda x, t: tf.reduce_sum(x**2, -1), bounds={"high": (0, None)})
    theta = np.array([1.0, 2.0])
    assert problem.support_depends_on_theta(theta)
    reference = problem.truth(theta)
    assert reference.method == "pathwise" and reference.checked
    assert_right(reference, 2 * theta / 3)


def test_a_moving_vector_support_with_a_jump_is_refused():
    problem = E.Problem(name="uniform_vector_step", params={"high": 2},
                        dist=lambda t: tfd.Independent(
                            tfd.Uniform(tf.zeros_like(t["high"]), t["high"]), 1),
                        cost=lambda x, t: tf.reduce_sum(tf.cast(x > 0.5, x.dtype), -1),
                        bounds={"high": (0, None)})
    with pytest.raises(E.TruthError, match=r"not differentiable along the draws .* support of "
                                           r"p\(x\|θ\) moves with θ, .* no unbiased Monte Carlo "
                                           r"reference exists here"):
        problem.truth([1.0, 2.0])


# -- expectations that do not exist ---------------------------------------------------------------

@pytest.mark.parametrize("dist, cost", [
    pytest.param(lambda t: tfd.StudentT(1.5, t, 1.0), lambda x, t: x**2, id="t1.5-square"),
    pytest.param(lambda t: tfd.Cauchy(t, 1.0), lambda x, t: tf.abs(x), id="cauchy-abs"),
])
def test_a_scalar_expectation_that_does_not_exist_is_refused(dist, cost):
    problem = E.Problem(name="no_mean", dist=dist, cost=cost)
    with pytest.raises(E.TruthError, match=r"E f does not appear to exist: .* Pareto k̂ = "):
        problem.truth(0.5)


def test_a_vector_expectation_that_does_not_exist_is_refused():
    problem = E.Problem(name="no_mean_vector", params={"loc": 2},
                        dist=lambda t: tfd.Independent(tfd.StudentT(1.5, t["loc"], 1.0), 1),
                        cost=lambda x, t: tf.reduce_sum(x**2, -1))
    with pytest.raises(E.TruthError, match="E f does not appear to exist"):
        problem.truth([0.5, 0.5])


def test_a_truncated_integral_of_an_infinite_expectation_is_refused():
    # With a window the Cauchy's |x| integrates to a finite number, which grows with the
    # window: the check's draws look infinite-mean, so the window is widened and the
    # growth seen.
    problem = E.Problem(name="cauchy_window", dist=lambda t: tfd.Cauchy(t, 1.0),
                        cost=lambda x, t: tf.abs(x), window=(-1e3, 1e3))
    with pytest.raises(E.TruthError, match=r"E f does not appear to exist: its integral keeps growing"):
        problem.truth(0.5)


def test_an_infinite_variance_reference_is_unchecked_not_refused():
    # Student t with 1.25 degrees of freedom: E x exists (the gradient is 1), its variance
    # does not (k = 0.8): the reference's SE cannot be trusted.
    problem = E.Problem(name="t1.25", dist=lambda t: tfd.StudentT(1.25, t, 1.0),
                        cost=lambda x, t: x)
    reference = problem.truth(0.5)
    assert not reference.checked and "heavy-tailed" in reference.note
    np.testing.assert_allclose(reference.gradient, [1.0], rtol=1e-9)  # ∂x/∂loc = 1 per draw


# -- power ---------------------------------------------------------------------------------------

def test_a_weak_check_says_so():
    # 200 Bernoullis, f = (1/D) Σ (b_i − t)²: the score function's per-component noise is
    # ~25% of the gradient after 65,536 draws, so the enumeration's (right) truth cannot be
    # vouched for at 10%.
    problem = E.problems.get("bernoulli_quadratic", D=200, t=0.45)
    reference = problem.truth(np.zeros(200))
    assert not reference.checked
    assert np.all(np.isfinite(reference.tolerance))
    assert np.all(reference.tolerance > check.POWER * np.abs(reference.gradient))
    assert "could not resolve an error of 10% of the gradient" in reference.note


def test_a_strong_check_states_its_tolerance():
    problem = E.problems.get("gaussian_square")
    reference = problem.truth([0.5, 1.0])
    assert reference.checked and reference.note == ""
    assert np.all(reference.tolerance <= check.POWER * check.scale_of(reference.gradient))
    assert np.all(reference.tolerance > 0)


def test_a_check_at_many_parameters_is_linear_in_them():
    # 2,000 parameters: per-component checks are weak, the block and random directions
    # are not; the truth still gets a stated, finite tolerance per component.
    problem = E.problems.get("gaussian_square_nd", D=1000)
    reference = problem.truth({"mean": 0.5, "std": 1.0})
    assert reference.kind == "closed_form"
    assert reference.tolerance.shape == (2000,) and np.all(np.isfinite(reference.tolerance))
    assert "pathwise" in reference.method and "finite_difference" in reference.method


def test_the_differences_pass_is_one_loop_body_with_common_random_numbers():
    # 4K evaluations of f in one loop body, not K unrolled copies: the traced graph does
    # not grow with the number of directions K. With f = Σx + Σθ under N(θ, I), x(θ) =
    # θ + z: every shifted draw from x's own key (common random numbers) moves f by exactly
    # 2 Σ offset, and f at the fixed draws by Σ offset, offset by offset.
    problem = gaussian_vector("one_body", lambda x, t: tf.reduce_sum(x, -1)
                              + tf.reduce_sum(t["mean"], -1))
    count, m = 8, 16
    sizes = {}
    with tracing_rng():
        for k in (1, count):
            chunk = draws._difference_chunk(problem, m, k, moving=True)
            sizes[k] = len(chunk.get_concrete_function().graph.get_operations())
        offsets = np.zeros((len(draws.OFFSETS), count, 3))
        offsets[:, :, 0] = 0.01 * (10 * np.arange(len(draws.OFFSETS))[:, None]
                                   + np.arange(1, count + 1)[None, :])  # all distinct
        f, shifted, held, _, _ = chunk(tf.constant(MEAN), tf.constant([3, 4]),
                                       tf.constant(offsets))
    assert sizes[1] == sizes[count], sizes
    moved = offsets.sum(axis=-1)[:, None, :]  # [4, 1, K]
    np.testing.assert_allclose(shifted - f.numpy()[None, :, None],
                               np.broadcast_to(2 * moved, shifted.shape), atol=1e-12)
    np.testing.assert_allclose(held - f.numpy()[None, :, None],
                               np.broadcast_to(moved, held.shape), atol=1e-12)


def test_every_pass_of_a_kind_runs_one_program_and_uses_exactly_its_draws(monkeypatch):
    # Chunks of 16 draws for the differences (133 for the gradients), so that passes of 5
    # draws, of a chunk and a bit and of three chunks all run; each kind of pass traces one
    # program of a full chunk, and a pass's statistics are those of its own draws (the
    # first rows of its last chunk, none of the rest), output by output.
    # f depends on θ at fixed x through θ³, so the differences in θ have an O(h²) error
    # that varies from draw to draw (theta_error), as do the differences of E f.
    problem = gaussian_vector("one_program", lambda x, t: tf.reduce_sum(x**2 + x * t["mean"]**3,
                                                                        -1))
    evaluations = 1 + 2 * len(draws.OFFSETS) * 3
    monkeypatch.setattr(draws, "CHUNK_ELEMENTS",
                        16 * evaluations * draws.numbers_per_draw(problem, MEAN))
    directions, steps = np.eye(3), np.full(3, 1e-2)
    chunk, gradient_chunk = (draws._chunk_size(problem, MEAN, e) for e in (evaluations, 3))
    assert (chunk, gradient_chunk) == (16, 16 * evaluations // 3)
    seed = (7, 8)
    head = int(tf.random.experimental.stateless_fold_in(tf.constant(seed), 0,
                                                        alg="philox")[0])
    offsets = tf.constant(np.asarray(draws.OFFSETS)[:, None, None] * steps[None, :, None]
                          * directions[None, :, :])

    def direct(program, n, *args):  # each output over three chunks' draws, the first n
        with tracing_rng():
            calls = [[t.numpy() for t in program(tf.constant(MEAN), tf.constant([head, i]),
                                                 *args)] for i in range(3)]
        joined = [np.concatenate(parts, axis=1 if parts[0].ndim == 3 else 0)
                  for parts in zip(*calls)]  # the draws' axis: 1 of [4, m, K], else 0
        return [t[:, :n] if t.ndim == 3 else t[:n] for t in joined]

    for n in (5, chunk + 3, 3 * chunk):
        terms = draws.difference_terms(problem, MEAN, n, seed, directions, steps)
        f, shifted, held, pathwise, cost_gradient = direct(
            draws._difference_chunk(problem, chunk, 3, moving=True), n, offsets)
        richardson, theta_error = draws._richardson(held, steps, problem, "")
        theta_jumps = richardson - cost_gradient @ directions.T
        differences = draws._richardson(shifted, steps, problem, "")[0]
        assert terms.samples == n
        np.testing.assert_allclose(terms.theta_error, theta_error.mean(axis=0), rtol=1e-9)
        for statistic, values in ((terms.f, f), (terms.theta_jumps, theta_jumps),
                                  (terms.differences, differences),
                                  (terms.jumps, differences - pathwise @ directions.T)):
            np.testing.assert_allclose(statistic.mean, values.reshape(n, -1).mean(axis=0),
                                       rtol=1e-9, atol=1e-12)
    for n in (5, gradient_chunk + 3):
        gradient = draws.gradient_terms(problem, MEAN, n, seed, pathwise=True)
        f, score, pathwise = direct(draws._gradient_chunk(problem, gradient_chunk, True, True),
                                    n, tf.constant(0.0, tf.float64))
        np.testing.assert_allclose(gradient.pathwise.mean, pathwise.mean(axis=0), rtol=1e-9)
        np.testing.assert_allclose(gradient.score.mean, score.mean(axis=0), rtol=1e-9)
    kinds = [name[0] for name in draws._compiled[problem] if isinstance(name, tuple)]
    assert sorted(kinds) == ["difference_terms", "gradient_terms"], kinds


def test_a_wrong_closed_form_at_many_parameters_is_caught_along_a_block():
    # A closed form whose value is right at std = 1 but whose gradient is 0.03 too large in
    # every std component (1.5% of it): far below any one component's noise, but the sum
    # over the block sees it.
    def exact(t):
        return tf.reduce_sum(t["std"] ** 2 + (t["mean"] - 1.0) ** 2 + 0.03 * (t["std"] - 1.0))

    problem = E.Problem(name="wrong_nd", params={"mean": 1000, "std": 1000},
                        dist=lambda t: tfd.MultivariateNormalDiag(t["mean"], t["std"]),
                        cost=lambda x, t: tf.reduce_sum((x - 1.0) ** 2, -1), exact_value=exact,
                        bounds={"std": (0.0, None)})
    with pytest.raises(E.TruthError, match=r"(sum over block 'std'|gradient 'std)"):
        problem.truth({"mean": 0.5, "std": 1.0})


def test_a_window_that_cuts_a_finite_tail_is_widened_until_the_integral_settles():
    # f = exp(x²/2.2) under N(0, 1): E f = √(1/(1 − 2/2.2)) = √11 exists, but the draws'
    # tail is heavy (k ≈ 0.9) and a window of ±12 misses part of it.
    problem = E.Problem(name="wide_tail", dist=lambda t: tfd.Normal(t, 1.0),
                        cost=lambda x, t: tf.exp(x**2 / 2.2), window=(-12.0, 12.0))
    reference = problem.truth(0.0)
    np.testing.assert_allclose(reference.value, np.sqrt(11.0), rtol=1e-6)

"""The Bernoulli VAE problem (issue 28): its ELBO summed over the codes against a NumPy
brute force, every unbiased discrete estimator within 5 SE of the exact gradient on it,
and one-sentence errors for arguments it cannot take."""

import itertools

import numpy as np
import pytest

import estimators as E
from estimators.problems import images, vae
from tests.conftest import assert_within_se


def _numpy_network(theta, side, sizes, inputs):
    values = inputs
    count = len(sizes) - 1
    for index in range(1, count + 1):
        suffix = "" if count == 1 else str(index)
        weights = theta[f"{side}_w{suffix}"].reshape(sizes[index - 1], sizes[index])
        values = values @ weights + theta[f"{side}_b{suffix}"]
        if index < count:
            values = np.where(values > 0, values, 0.3 * values)
    return values


def _log_bernoulli(values, logits):
    return (values * logits - np.logaddexp(0.0, logits)).sum(-1)


@pytest.mark.parametrize("decoder", ["linear", "nonlinear"])
def test_the_exact_elbo_is_a_brute_force_sum_over_codes(decoder):
    problem = E.problems.get("bernoulli_vae", latents=3, batch=3, batch_index=2,
                             decoder=decoder, hidden=5)
    theta = vae.initial_theta(problem, seed=4)
    theta["prior_logits"] = np.array([0.3, -0.8, 1.1])
    x = images.binary_images("digits")[0][6:9]  # batch_index 2 of 3 images
    widths = [64, 3] if decoder == "linear" else [64, 5, 5, 3]
    encoder = 1 / (1 + np.exp(-_numpy_network(theta, "enc", widths, x)))  # [3, 3]
    total = 0.0
    for m in range(3):
        for code in itertools.product((0.0, 1.0), repeat=3):
            b = np.array(code)
            q = np.prod(np.where(b > 0, encoder[m], 1 - encoder[m]))
            decoded = _numpy_network(theta, "dec", widths[::-1], b)
            f = _log_bernoulli(x[m], decoded) + _log_bernoulli(b, theta["prior_logits"]) \
                - np.log(q)
            total += q * f / 3
    np.testing.assert_allclose(problem.true_value(theta), total, rtol=1e-12)
    # The cost at one draw is the same integrand, per image, averaged.
    codes = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    value = problem.cost_values(problem.distribution(problem.theta_vector(theta)),
                                codes.reshape(1, 1, 9), problem.theta_vector(theta)[None])
    expected = np.mean([_log_bernoulli(x[m], _numpy_network(theta, "dec", widths[::-1],
                                                            codes[m]))
                        + _log_bernoulli(codes[m], theta["prior_logits"])
                        - _log_bernoulli(codes[m], np.log(encoder[m] / (1 - encoder[m])))
                        for m in range(3)])
    np.testing.assert_allclose(np.asarray(value).ravel()[0], expected, rtol=1e-5)


@pytest.mark.parametrize("label", ["score_function(control_variate=loo)", "disarm", "arms",
                                   "rebar", "double_cv"])
def test_unbiased_estimators_on_a_small_vae(label):
    # Every component (encoder, decoder, prior: 3 × 64 + ... = 406) within 5 SE of the
    # exact gradient; the decoder and prior components come by the pathwise route.
    problem = E.problems.get("bernoulli_vae", latents=3, batch=4)
    theta = vae.initial_theta(problem, seed=2)
    values = E.estimate(label, problem, theta, n_samples=8, n_replicates=1000, seed=5)
    assert_within_se(values, problem.truth(theta).gradient, float_tol=1e-5)


def test_the_vae_refuses_arguments_it_cannot_take():
    def refused(message, **arguments):
        with pytest.raises(ValueError) as error:
            E.problems.get("bernoulli_vae", **arguments)
        assert message in str(error.value) and "\n" not in str(error.value), error.value

    refused("argument decoder must be one of 'linear', 'nonlinear', got 'conv'",
            decoder="conv")
    refused("argument latents must be a whole number of at least 1, got 0", latents=0)
    refused("batch_index 30 is past the data: 1497 training images make 29 minibatches of 50 "
            "(batch_index 0 to 28)", batch_index=30)
    refused("give 'digits' or the path of a .npz file", data="mnist")
    refused("argument binarize must be one of 'threshold', 'dynamic'", binarize="otsu")
    with pytest.raises(ValueError, match="initial_theta takes a bernoulli_vae problem, got "
                                         "problem 'bernoulli_toy"):
        vae.initial_theta(E.problems.get("bernoulli_toy"))


def test_beyond_sixteen_latents_the_truth_is_a_labelled_monte_carlo_reference():
    problem = E.problems.get("bernoulli_vae", latents=17, batch=2)
    assert problem.exact_value is None
    assert E.truth.kind(problem, vae.initial_theta(problem)) == "monte_carlo"


def test_theta_start_is_the_problems_own_starting_point():
    problem = E.problems.get("bernoulli_vae", latents=2, batch=2)
    np.testing.assert_array_equal(problem.theta_vector("start"),
                                  problem.theta_vector(vae.initial_theta(problem, seed=0)))
    with pytest.raises(TypeError, match=r"^theta must be a number or a sequence of .*, got "
                                        r"'begin'\.$"):
        problem.theta_vector("begin")
    with pytest.raises(ValueError, match=r"^theta \"start\": problem 'bernoulli_toy\(t=0.499\)' "
                                         r"has no starting point of its own; give θ as numbers\.$"):
        E.problems.get("bernoulli_toy").theta_vector("start")

"""Monte Carlo in float64: the cross-check of every exact value, and the reference where
no exact value exists.

**Cross-check.** A closed form can be mistyped and a quadrature window can miss mass.
Every exact value and gradient is therefore compared with a quick Monte Carlo estimate
(``CHECK_SAMPLES`` draws, the score-function estimator, which is unbiased for any
measure and cost): a gap beyond ``CHECK_SE`` standard errors raises :class:`TruthError`
instead of handing out a number that may be wrong.

**Reference** (``truth_kind = "monte_carlo"``, for problems with neither a closed form nor
a quadrature or enumeration: continuous vector events, large discrete supports). The
gradient is the mean of ``problem.reference_samples`` iid single-sample estimates, with
its standard error (sd / √n), from

* the pathwise estimator when TFP reparameterizes the measure: usually the lowest
  variance, but wrong for a cost that is not differentiable in x, so it is cross-checked
  against the score function as above;
* otherwise the score function with a constant baseline, the mean of f over an
  independent pilot batch (independent of the draws, so the estimate stays unbiased).

Draws are chunked (memory O(chunk · D)); each chunk is a graph traced once per problem,
so checks at many θ of one problem cost a few milliseconds each.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from estimators import measure
from estimators._runtime import tf, tracing_rng
from estimators.truth.integrands import ZERO, measure64, tiled
from estimators.truth.integrate import _compiled

CHECK_SAMPLES = 2**16
CHECK_SE = 6.0
DOMINATED = 0.25
"""One draw of the 2^16 carrying a quarter of Σ(term²): the sample's SE then rests on one
point and cannot be trusted. Measured largest shares: 0.003-0.11 where the check is sound
(gaussian_cos, gaussian_square, Gamma(2, 1.5) and Exponential(2) with f = x², gaussian_exp
k = 10 far from p's mass, seed_dependence θ ≤ 3: 0.23), 0.34-0.58 where a correct closed form
failed it (seed_dependence θ = 4 ... 7, lognormal-like f)."""
CHUNK_ELEMENTS = 2**21  # draws × event size per chunk
_CHECK_KEY = (20261130, 1)
_REFERENCE_KEY = (20261130, 2)


class TruthError(ValueError):
    """An exact value disagrees with Monte Carlo, or no reference can be computed."""


@dataclasses.dataclass(frozen=True)
class Moments:
    """Mean and standard error of f and of a gradient estimator's single-sample estimate."""

    value: float
    value_se: float
    gradient: np.ndarray  # [d]
    gradient_se: np.ndarray  # [d]
    samples: int
    estimator: str
    dominance: float = 0.0  # the largest share of Σ(term²) one draw carries (f or a gradient)

    @property
    def dominated(self) -> bool:
        """Whether a few draws carry the sample's second moment: the integrand is
        heavy-tailed at this θ, so the mean is likely far off and its SE too small."""
        return not self.dominance <= DOMINATED

    @property
    def one_outcome(self) -> bool:
        """Whether every draw gave the same f and the same gradient estimate (no spread
        beyond rounding): the sample saw one outcome and knows nothing of rarer ones."""
        negligible = 1e-7  # float64 rounding of mean(x²) - mean(x)², relative to the mean
        return (self.value_se <= negligible * abs(self.value)
                and bool(np.all(self.gradient_se <= negligible * np.abs(self.gradient))))


def sample_moments(problem, vector, n_samples: int, estimator: str, seed=_CHECK_KEY,
                   baseline: float = 0.0) -> Moments:
    """Mean and SE of f and of single-sample gradient estimates over ``n_samples`` draws.

    ``estimator``: "score_function" (f - baseline) ∇θ log p + ∇θ f over fixed draws, or
    "pathwise" ∇θ f(x(θ), θ) through TFP's reparameterized draws.
    """
    theta = tf.constant(vector, tf.float64)
    size = measure.event_size(problem.distribution(vector))
    chunk = int(max(256, min(n_samples, CHUNK_ELEMENTS // size)))
    key = tf.constant(seed, tf.int32)
    sums = np.zeros(2 + 2 * problem.dim)
    largest = np.zeros(1 + problem.dim)  # the largest term² of f and of each gradient
    done, index = 0, 0
    with tracing_rng():
        while done < n_samples:
            m = min(chunk, n_samples - done)
            f, g = _chunk(problem, theta, m, tf.random.experimental.stateless_fold_in(
                key, index, alg="philox"), estimator, baseline)
            sums += np.concatenate([[f.sum(), (f**2).sum()], g.sum(0), (g**2).sum(0)])
            largest = np.fmax(largest, np.concatenate([[np.max(f**2)], np.max(g**2, axis=0)]))
            done, index = done + m, index + 1
    mean_f, mean_f2 = sums[0] / n_samples, sums[1] / n_samples
    mean_g = sums[2:2 + problem.dim] / n_samples
    mean_g2 = sums[2 + problem.dim:] / n_samples
    scale = n_samples / max(n_samples - 1, 1) / n_samples
    return Moments(
        value=float(mean_f), value_se=float(np.sqrt(max(mean_f2 - mean_f**2, 0.0) * scale)),
        gradient=mean_g, gradient_se=np.sqrt(np.maximum(mean_g2 - mean_g**2, 0.0) * scale),
        samples=n_samples, estimator=estimator,
        dominance=_largest_share(largest, sums[[1, *range(2 + problem.dim, 2 + 2 * problem.dim)]]))


def _largest_share(largest, total) -> float:
    """max over f and the gradient components of (largest term²) / Σ term²."""
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(total > 0, largest / total, 0.0)
    return float(np.max(np.where(np.isfinite(shares), shares, 1.0)))


def _chunk(problem, theta, m: int, key, estimator: str, baseline: float):
    """f and single-sample gradients ``([m], [m, d])`` of m draws, traced once per problem,
    estimator and chunk size (graph mode: checks at many θ of one problem stay cheap)."""
    cache = _compiled.setdefault(problem, {})
    name = ("monte_carlo", estimator, m)
    if name not in cache:
        def chunk(theta, key, baseline):
            theta_m = tiled(theta, tf.zeros([m]))  # [m, d]
            with tf.GradientTape() as tape:
                tape.watch(theta_m)
                dist = measure64(problem, theta_m)
                shape = [] if dist.batch_shape.rank != 0 else [m]
                x = dist.sample(shape, seed=key)  # [m, *event]
                if estimator == "pathwise":
                    values = problem.cost_values(dist, x, theta_m)  # [m]
                    surrogate = values
                else:
                    x = tf.stop_gradient(x)
                    values = problem.cost_values(dist, x, theta_m)  # [m]
                    surrogate = tf.stop_gradient(values - baseline) * dist.log_prob(x) + values
            gradient = tape.gradient(surrogate, theta_m, unconnected_gradients=ZERO)  # [m, d]
            return values, gradient

        cache[name] = tf.function(chunk, autograph=False, input_signature=[
            tf.TensorSpec([problem.dim], tf.float64), tf.TensorSpec([2], tf.int32),
            tf.TensorSpec([], tf.float64)])
    values, gradient = cache[name](theta, key, tf.constant(baseline, tf.float64))
    return values.numpy(), gradient.numpy()


def check(problem, vector, value: float | None, gradient: np.ndarray, kind: str) -> bool:
    """Raises TruthError when ``value``/``gradient`` (obtained by ``kind``) disagree with a
    quick score-function Monte Carlo estimate by more than ``CHECK_SE`` standard errors.

    Returns:
      True when checked; False when the check is inconclusive (``Moments.dominated``, or
      a gap where every draw gave the same values: ``Moments.one_outcome``).
    """
    estimator = _check_estimator(problem, vector)
    if estimator is None:
        return False  # a support that moves with θ and no reparameterization: nothing unbiased
    if not np.all(np.isfinite(gradient)) or (value is not None and not np.isfinite(value)):
        raise TruthError(f"problem '{problem.name}' at theta={_short(vector)}: the {kind} truth "
                         "is not finite (it overflows float64 or is undefined there); choose θ "
                         "where E f and its gradient are finite.")
    mc = sample_moments(problem, vector, CHECK_SAMPLES, estimator)
    if mc.dominated:
        return False  # inconclusive: a gap would be noise, agreement would prove nothing
    try:
        _compare(problem, vector, kind, value, gradient, mc,
                 _HINTS.get(kind, "check the problem's definition"))
    except TruthError:
        if mc.one_outcome:
            # Every draw gave the same f and gradient (a Bernoulli with p = 3e-7): outcomes
            # rarer than 1/CHECK_SAMPLES were never seen, so a gap says nothing.
            return False
        raise
    return True


def _check_estimator(problem, vector) -> str | None:
    """The score function, unbiased for any measure whose support does not move with θ;
    where it moves, the pathwise estimator (if TFP reparameterizes the measure)."""
    if not problem.support_depends_on_theta(vector):
        return "score_function"
    return "pathwise" if measure.is_reparameterized(problem.distribution(vector)) else None


_HINTS = {
    "closed_form": "the closed form exact_value (or the problem's dist or cost) may be wrong",
    "quadrature": "the integration window may miss mass or cut a singularity; pass "
                  "window=(low, high) covering the mass of p(x|θ) f(x, θ)",
    "enumeration": "the summation window may miss mass; pass window=(low, high) covering "
                   "the support where p(x|θ) f(x, θ) matters",
    "monte_carlo": "the pathwise reference assumes f is differentiable in x; a cost with "
                   "jumps needs a measure TFP does not reparameterize, or a closed form",
}


def _compare(problem, vector, kind, value, gradient, mc: Moments, hint: str) -> None:
    tolerance_g = CHECK_SE * mc.gradient_se + 1e-9 * (1.0 + np.abs(gradient))
    gap = np.abs(np.asarray(gradient) - mc.gradient)
    if value is not None:
        tolerance_v = CHECK_SE * mc.value_se + 1e-9 * (1.0 + abs(value))
        if not abs(value - mc.value) <= tolerance_v:
            raise TruthError(
                f"problem '{problem.name}' at theta={_short(vector)}: the {kind} value "
                f"{value:.6g} disagrees with a Monte Carlo check {mc.value:.6g} ± "
                f"{mc.value_se:.2g} ({mc.samples:,} draws): {hint}.")
    if not np.all(gap <= tolerance_g):
        worst = int(np.nanargmax(np.where(np.isfinite(gap), gap / tolerance_g, np.inf)))
        raise TruthError(
            f"problem '{problem.name}' at theta={_short(vector)}: the {kind} gradient "
            f"'{problem.param_labels[worst]}' = {gradient[worst]:.6g} disagrees with a Monte "
            f"Carlo check {mc.gradient[worst]:.6g} ± {mc.gradient_se[worst]:.2g} "
            f"({mc.samples:,} {mc.estimator} draws): {hint}.")


def reference(problem, vector) -> Moments:
    """The Monte Carlo reference gradient and value with standard errors (module docstring).

    Raises:
      TruthError: the pathwise reference disagrees with the score-function check.
    """
    dist = problem.distribution(vector)
    if measure.is_reparameterized(dist):
        result = sample_moments(problem, vector, problem.reference_samples, "pathwise",
                                seed=_REFERENCE_KEY)
        if _check_estimator(problem, vector) != "score_function":
            return result  # a moving support: the score function would be the wrong check
        check_mc = sample_moments(problem, vector, CHECK_SAMPLES, "score_function")
        combined = dataclasses.replace(
            check_mc, gradient_se=np.sqrt(check_mc.gradient_se**2 + result.gradient_se**2),
            value_se=float(np.hypot(check_mc.value_se, result.value_se)))
        _compare(problem, vector, "monte_carlo", result.value, result.gradient, combined,
                 _HINTS["monte_carlo"])
        return result
    if _check_estimator(problem, vector) is None:
        raise TruthError(f"problem '{problem.name}': the support of p(x|θ) moves with θ and "
                         "TFP does not reparameterize it, so no unbiased Monte Carlo reference "
                         "exists here; give the problem a closed form (exact_value).")
    pilot = sample_moments(problem, vector, min(4096, problem.reference_samples),
                           "score_function", seed=(_REFERENCE_KEY[0], 3))
    return sample_moments(problem, vector, problem.reference_samples, "score_function",
                          seed=_REFERENCE_KEY, baseline=pilot.value)


def _short(vector) -> str:
    values = np.asarray(vector).tolist()
    return str(values) if len(values) <= 6 else f"[{', '.join(f'{v:g}' for v in values[:4])}, …]"

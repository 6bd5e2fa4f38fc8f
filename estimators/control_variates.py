"""Control variates: terms with a known expectation subtracted from an estimator.

Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine Learning",
JMLR 21(132), 2020, Section 7. Each keeps the estimator unbiased.

* ``none``.
* ``loo`` (score function, iid draws): the baseline b_i = mean of f over the *other* B-1
  draws of the batch (RLOO; Kool et al. 2019). Independent of x_i, so unbiased; the
  variance depends on the batch size B (the baseline improves with B) and its large-B
  limit is the constant baseline E f: a large gain when |E f| is large against the
  spread of f, a loss for a component whose optimal baseline is far from E f
  (gaussian_exp k=10 at θ = (1, 1), ∂std: per-sample variance 0.041 against 0.009
  without a baseline). Exact variance at batch size B: :func:`leave_one_out_moments`.
* ``batch_optimal`` (score function, iid draws): the variance-minimizing constant baseline
  per component j of θ, b_j = E[f s_j²] / E[s_j²] with s = ∇θ log p, estimated from the
  other B-1 draws (the in-batch estimate including x_i would correlate with x_i and bias
  the gradient). Unbiased; no exact variance (a ratio of sums). The ratio is itself
  noisy when f s² is heavy-tailed, so at moderate B it can lose to the LOO mean
  (gaussian_square k=-3 at θ = (1, 1), B = 100: per-sample variance of the mean
  component 153 against 143, although its large-batch limit is 134 against 138).
* ``delta`` (score function or pathwise, any sampling): the delta method (Paisley, Blei &
  Jordan 2012; Mohamed et al. §7.1). h(x) is the second-order Taylor expansion of
  f(·, θ) around the mean μ of p(x|θ), its coefficients cut from θ:

      h(x) = f(μ) + ∇f(μ)ᵀ(x - μ) + ½ (x - μ)ᵀ H(μ) (x - μ),
      E_p[h] = f(μ) + ½ tr(H(μ) Cov_p(x))   (+ terms whose value and gradient vanish at θ)

  and the estimators become
  score function  (f - h) ∇θ log p + ∇θ f + ∇θ E_p[h],
  pathwise        ∇θ f(x(θ), θ) - ∇θ h(x(θ)) + ∇θ E_p[h].
  Needs the mean and variance of p (TFP's ``mean()``/``variance()``) and independent
  coordinates for vector events (diagonal covariance); f twice differentiable in x for a
  gain (any f keeps it unbiased). For vector events, (x - μ)ᵀH(x - μ) comes from one
  Hessian-vector product per draw and tr(H Cov) from the Hessian's diagonal, computed in
  chunks of coordinates. It gains most where f is nearly quadratic over the spread of p
  (late in training, a concentrated posterior) and little at the prior.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from estimators import measure, truth
from estimators._runtime import tf
from estimators.errors import NotApplicableError
from estimators.sampling import SAMPLINGS
from estimators.truth import integrands

ZERO = tf.UnconnectedGradients.ZERO
HESSIAN_CHUNK_ELEMENTS = 2**22  # coordinates × R × D at once for the Hessian's diagonal
DELTA_TEMPORARIES = 4
"""Float32 tensors of a Hessian chunk's size alive at once (basis, columns, product)."""


@dataclasses.dataclass(frozen=True)
class ControlVariate:
    """A control variate (module docstring).

    Attributes:
      name: Option value (``control_variate=name``).
      summary: One line for listings.
      forms: The identities it combines with, by ``Identity.form`` ("score": fixed draws
        with a score term, which a baseline scales; "pathwise"; "fixed"; "joint").
      samplings: The sampling schemes it works with.
      min_batch: Smallest batch it needs.
      terms: ``(identity, problem, dist, x, theta, context, state) -> [n, R]`` per-draw
        surrogate terms; ``context`` is the :class:`estimators.protocol.Context` (its
        ``prepared`` is what ``prepare`` returned), ``state`` this control variate's
        state (None when stateless).
      prepare: ``(problem, theta [R, d]) -> prepared``: work that depends on θ only, done
        once per call of a program instead of once per batch (the delta method's
        expansion); None when there is none.
      surrogate: ``(identity, problem, theta, n, key, context, state) -> [R]`` for
        control variates that build the estimate themselves (batch_optimal); else None.
      per_sample: ``identity -> per-sample surrogate`` for exact moments by integration
        over x, or None when the estimate is not a mean of iid terms.
      exact_moments: ``(problem, θ [d], batch_size) -> (mean, variance)`` of its own.
      check: ``(label, problem, dist) -> None`` raising NotApplicableError.
      forward_mode: Keeps an identity's forward-mode programs (``Identity.forward_mode``);
        False where that was measured slower.
      f_evals_per_batch: Evaluations of f it adds per batch (the delta method: f at μ).
      memory_values: ``(n_replicates, event_size) -> float32 values`` it holds beyond
        the engine's model (:mod:`estimators.memory`), or None.
      init: ``(problem, theta [R, d]) -> state`` for a control variate that learns
        (a dict of tensors with leading axis R), else None.
      update: ``(identity, problem, dist, x, theta, context, state) -> state``: one step
        on a fresh batch of draws x ``[n, R, *event]`` (cut from θ); None when stateless.
    """

    name: str
    summary: str
    forms: tuple[str, ...] = ("score",)
    samplings: tuple[str, ...] = ("iid", "antithetic", "qmc")
    min_batch: int = 1
    terms: Callable | None = None
    prepare: Callable | None = None
    surrogate: Callable | None = None
    per_sample: Callable | None = None
    exact_moments: Callable | None = None
    check: Callable | None = None
    forward_mode: bool = True
    f_evals_per_batch: int = 0
    memory_values: Callable | None = None
    init: Callable | None = None
    update: Callable | None = None

    def __post_init__(self):
        if (self.terms is None) == (self.surrogate is None):
            raise ValueError(f"control variate {self.name!r} needs exactly one of terms= "
                             "(per-draw terms) or surrogate= (the whole estimate).")
        if (self.init is None) != (self.update is None):
            raise ValueError(f"control variate {self.name!r}: a learned control variate "
                             "needs both init= and update=, a stateless one neither.")

    @property
    def stateful(self) -> bool:
        return self.init is not None


# -- leave-one-out baselines ----------------------------------------------------------------

def leave_one_out_sum(values):
    """Σ_{k≠i} values_k along axis 0, as ``total - values_i`` in float64.

    In float64 the subtraction's error is ~1e-16 · |values_i|, below float32's rounding
    of the result unless one value exceeds the sum of the others ~10⁸-fold. Exclusive
    cumulative sums from both ends avoid even that, but XLA on CPU lowers a cumsum to a
    reduce-window over the whole axis, O(n²): 3.9x slower at 1,000 × 1,000
    (``docs/PERFORMANCE.md``)."""
    wide = tf.cast(values, tf.float64)
    return tf.cast(tf.reduce_sum(wide, axis=0, keepdims=True) - wide, values.dtype)


def _loo_terms(identity, problem, dist, x, theta, context=None, state=None):
    n = x.shape[0]
    baseline = leave_one_out_sum(tf.stop_gradient(problem.cost_values(dist, x, theta))) \
        / (n - 1)  # [n, R]
    return identity.per_sample(problem, dist, x, theta) \
        - tf.stop_gradient(baseline) * dist.log_prob(x)  # [n, R]


def leave_one_out_moments(problem, vector, batch_size):
    """Exact mean and per-sample variance of the leave-one-out score-function estimate.

    Within a batch of B draws the estimate is ``(1/B) Σ_i [(f_i - b_i) s_i + h_i]`` with
    ``b_i`` the mean of f over the other B-1 draws, ``s = ∇θ log p`` and ``h = ∇θ f``:
    a U-statistic of order 2 with kernel ``k(x, y) = ψ(x) - f(y) s(x)``, ``ψ = f s + h``.
    Its variance is ``2/(B(B-1)) · (2(B-2) ζ1 + ζ2)`` (Hoeffding) with
    ``ζ1 = Var(ψ - F s)/4``, F = E f (the large-batch limit is the score function with
    the constant baseline E f) and ``ζ2 = Var(k(x, y) + k(y, x))/4``; both reduce to
    one-dimensional moments of f, s and ψ, integrated over x. Returns
    ``B × Var(one batch's estimate)`` = ``n × Var(estimate from n samples)``.

    Raises:
      NotImplementedError: ``batch_size`` is None (the variance depends on it), or no
        quadrature or enumeration applies.
      ValueError: ``batch_size`` < 2.
    """
    if batch_size is None:
        raise NotImplementedError(
            "the leave-one-out baseline's variance depends on the batch size; pass "
            "batch_size=B to truth.per_sample_variance")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2, got {batch_size!r}.")
    size = int(batch_size)
    moments = truth.integrate_terms(problem, vector, "score_terms", integrands.score_terms)
    f1, f2 = moments[0], moments[1]
    s2, psi1, psi2, psi_s, f_s = moments[2:].reshape(5, problem.dim)
    zeta1 = (psi2 - 2 * f1 * psi_s + f1**2 * s2 - psi1**2) / 4
    zeta2 = (2 * psi2 - 2 * psi1**2 - 4 * f1 * psi_s + 2 * f2 * s2 + 2 * f_s**2) / 4
    batch_variance = 2.0 / (size * (size - 1)) * (2 * (size - 2) * zeta1 + zeta2)
    return psi1, size * np.maximum(batch_variance, 0.0)


def scores(problem, theta, x):
    """``∇θ log p(x_i|θ)`` of each draw: ``[n, R, d]`` for x ``[n, R, *event]``, θ
    ``[R, d]``; None when p does not depend on θ at all."""
    theta_n = tf.broadcast_to(theta, tf.concat([tf.shape(x)[:1], tf.shape(theta)], 0))  # [n, R, d]
    with tf.GradientTape() as tape:
        tape.watch(theta_n)
        log_prob = problem.measure(theta_n).log_prob(x)  # [n, R]
    return tape.gradient(log_prob, theta_n)  # [n, R, d] or None


def _batch_optimal_surrogate(identity, problem, theta, n, key, context=None, state=None):
    """Score function with the leave-one-out optimal baseline per component: ``[R]``.

    The estimate is formed explicitly (``[R, d]``) and returned as ``Σ_j ĝ_j θ_j`` with
    ĝ cut from θ, whose θ-gradient is ĝ; the ∇θ f term is differentiated as usual.
    """
    del identity, context, state  # the score function's, stateless
    dist = problem.measure(theta)
    x = SAMPLINGS["iid"].draw(problem, dist, theta, n, key, False)  # [n, R, *event]
    score = scores(problem, theta, x)  # [n, R, d]
    if score is None:
        # No score term. Building it anyway gives XLA cumulative sums of a constant
        # zero tensor to fold at compile time: minutes at n = 16,000 (measured 390 s).
        return tf.reduce_mean(problem.cost_values(dist, x, theta), axis=0)  # [R]
    score = tf.stop_gradient(score)
    values = tf.stop_gradient(problem.cost_values(dist, x, theta))[..., tf.newaxis]  # [n, R, 1]
    squares = score**2  # [n, R, d]
    baseline = tf.math.divide_no_nan(leave_one_out_sum(values * squares),
                                     leave_one_out_sum(squares))  # [n, R, d]
    estimate = tf.stop_gradient(tf.reduce_mean((values - baseline) * score, axis=0))  # [R, d]
    return tf.reduce_sum(estimate * theta, axis=-1) \
        + tf.reduce_mean(problem.cost_values(dist, x, theta), axis=0)  # [R]


# -- the delta method -----------------------------------------------------------------------

class _Expansion:
    """The second-order Taylor expansion h of f(·, θ) at the mean of p(x|θ).

    Its coefficients (f(μ), ∇f(μ) and H(μ)'s diagonal) depend on θ only, so the engine
    computes them once per call (``coefficients``, cut from θ) and every batch reuses
    them; the mean and variance of p are rebuilt per batch with their path to θ.
    """

    def __init__(self, problem, dist, theta, coefficients=None):
        self.problem, self.dist = problem, dist
        self.fixed = tf.stop_gradient(theta)
        self.mean = tf.convert_to_tensor(dist.mean())  # [R, *event], differentiable in θ
        self.variance = tf.convert_to_tensor(dist.variance())
        if dist.batch_shape.rank == 0:  # a measure written without θ: add the replicate axis
            shape = tf.concat([tf.shape(theta)[:1], tf.shape(self.mean)], 0)
            self.mean = tf.broadcast_to(self.mean, shape)
            self.variance = tf.broadcast_to(self.variance, shape)
        self.mu = tf.stop_gradient(self.mean)
        self.vector = measure.event_rank(dist) == 1
        if coefficients is None:
            coefficients = self._coefficients()
        self.f0, self.g0, self.h_diagonal = coefficients

    def _coefficients(self):
        """(f(μ) [R], ∇f(μ) [R, *event], diag H(μ) [R, *event]), cut from θ."""
        with tf.GradientTape() as outer:
            outer.watch(self.mu)
            with tf.GradientTape() as inner:
                inner.watch(self.mu)
                f0 = self._f(self.mu)  # [R]
            g0 = inner.gradient(f0, self.mu, unconnected_gradients=ZERO)  # [R, *event]
        if self.vector:
            diagonal = self._hessian_diagonal()  # [R, D]
        else:
            diagonal = outer.gradient(g0, self.mu, unconnected_gradients=ZERO)  # [R]
        return tuple(tf.stop_gradient(t) for t in (f0, g0, diagonal))

    def _f(self, y):
        return self.problem.cost_values(self.dist, y, self.fixed)

    def _hvp(self, vectors):
        """H(μ) v for v ``[k, R, D]`` (reverse over reverse): ``[k, R, D]``."""
        y = self.mu + tf.zeros_like(vectors)
        with tf.GradientTape() as outer:
            outer.watch(y)
            with tf.GradientTape() as inner:
                inner.watch(y)
                values = self._f(y)  # [k, R]
            gradient = inner.gradient(values, y, unconnected_gradients=ZERO)
            directional = tf.reduce_sum(gradient * vectors, axis=-1)  # [k, R]
        return outer.gradient(directional, y, unconnected_gradients=ZERO)

    def _hessian_diagonal(self):
        size = int(self.mu.shape[-1])
        replicates = int(self.mu.shape[0] or 1)
        chunk = int(max(1, min(size, HESSIAN_CHUNK_ELEMENTS // (replicates * size))))
        chunks = -(-size // chunk)

        def block(index):
            coordinates = tf.minimum(index * chunk + tf.range(chunk), size - 1)  # [c]
            basis = tf.one_hot(coordinates, size, dtype=self.mu.dtype)[:, tf.newaxis, :]
            columns = self._hvp(basis + tf.zeros_like(self.mu))  # [c, R, D]
            return tf.reduce_sum(columns * basis, axis=-1)  # [c, R]: H_jj

        if chunks == 1:
            return tf.transpose(block(0))[:, :size]
        parts = tf.TensorArray(self.mu.dtype, size=chunks)
        _, parts = tf.while_loop(lambda i, _: i < chunks,
                                 lambda i, acc: (i + 1, acc.write(i, block(i))),
                                 (tf.constant(0), parts), parallel_iterations=1)
        return tf.transpose(tf.reshape(parts.stack(), [chunks * chunk, -1]))[:, :size]

    def value(self, x):
        """h(x) for draws ``[n, R, *event]``, differentiable in x (gradient ∇f(μ) + H(x - μ))."""
        u = tf.cast(x, self.mu.dtype) - self.mu
        if not self.vector:
            return self.f0 + self.g0 * u + 0.5 * self.h_diagonal * u**2
        product = tf.stop_gradient(self._hvp(tf.stop_gradient(u)))  # H u: [n, R, D]
        quadratic = tf.reduce_sum(u * product, axis=-1)
        # Value ½ uᵀHu, gradient Hu: the stopped half cancels the doubled derivative.
        quadratic = quadratic - 0.5 * tf.stop_gradient(quadratic)
        return self.f0 + tf.reduce_sum(self.g0 * u, axis=-1) + quadratic

    def expectation(self):
        """E_{p(x|θ)}[h], differentiable in θ through p's mean and variance: ``[R]``."""
        shift = self.mean - self.mu  # zero, with the mean's path to θ
        trace = 0.5 * self.h_diagonal * self.variance
        if self.vector:
            return self.f0 + tf.reduce_sum(self.g0 * shift + trace, axis=-1)
        return self.f0 + self.g0 * shift + trace


def _delta_per_sample(identity, coefficients=None):
    def per_sample(problem, dist, x, theta):
        expansion = _Expansion(problem, dist, theta, coefficients)
        if identity.pathwise:
            return problem.cost_values(dist, x, theta) - expansion.value(x) \
                + expansion.expectation()
        values = problem.cost_values(dist, x, theta)
        return tf.stop_gradient(values - expansion.value(x)) * dist.log_prob(x) + values \
            + expansion.expectation()
    return per_sample


def _delta_prepare(problem, theta):
    """The expansion's coefficients at θ ``[R, d]``, once per call of a program."""
    expansion = _Expansion(problem, problem.measure(theta), theta)
    return expansion.f0, expansion.g0, expansion.h_diagonal


def _delta_terms(identity, problem, dist, x, theta, context=None, state=None):
    return _delta_per_sample(identity, context.prepared)(problem, dist, x, theta)


def _delta_memory(n_replicates: int, event_size: int) -> float:
    """The Hessian chunks' float32 tensors alive at once (basis, columns, product)."""
    return DELTA_TEMPORARIES * max(HESSIAN_CHUNK_ELEMENTS, n_replicates * event_size)


def _delta_check(label, problem, dist):
    if measure.event_rank(dist) > 1:
        raise NotApplicableError(
            f"{label} expands f around the mean of a scalar or vector event, but problem "
            f"'{problem.name}' draws {dist.event_shape.as_list()} (one-hot categorical "
            "variables); use control_variate=loo.")
    if measure.event_rank(dist) == 1 and measure.base(dist) is dist \
            and not measure.is_normal_family(dist):
        raise NotApplicableError(
            f"{label} expands f around the mean with E[h] from the variances, which needs "
            f"independent coordinates (tfd.Independent or tfd.MultivariateNormalDiag), but "
            f"problem '{problem.name}' has a {type(dist).__name__}.")
    try:
        dist.mean(), dist.variance()
    except NotImplementedError:
        raise NotApplicableError(
            f"{label} needs the mean and variance of p(x|θ), which TFP does not give for "
            f"the {type(dist).__name__} of problem '{problem.name}'.") from None


def _none_terms(identity, problem, dist, x, theta, context=None, state=None):
    return identity.per_sample(problem, dist, x, theta)


CONTROL_VARIATES = {
    "none": ControlVariate("none", "no control variate",
                           forms=("score", "pathwise", "fixed", "joint"), terms=_none_terms,
                           per_sample=lambda identity: identity.per_sample),
    "loo": ControlVariate(
        "loo", "leave-one-out batch mean of f as baseline (RLOO)", samplings=("iid",),
        min_batch=2, terms=_loo_terms, exact_moments=leave_one_out_moments),
    "batch_optimal": ControlVariate(
        "batch_optimal", "leave-one-out estimate of the optimal baseline E[f s²]/E[s²] per "
        "component", samplings=("iid",), min_batch=2,
        surrogate=_batch_optimal_surrogate, forward_mode=False,
        exact_moments=truth.no_exact_form(
            "the leave-one-out optimal baseline is a ratio of sums over the batch, with no "
            "exact variance by quadrature")),
    "delta": ControlVariate(
        "delta", "second-order Taylor expansion of f at the mean of p, with its exact "
        "expectation (delta method)", forms=("score", "pathwise"), terms=_delta_terms,
        prepare=_delta_prepare, per_sample=_delta_per_sample, check=_delta_check,
        f_evals_per_batch=1, memory_values=_delta_memory),
}

__all__ = ["CONTROL_VARIATES", "ControlVariate", "leave_one_out_moments", "leave_one_out_sum",
           "scores"]

"""A problem: an expectation E_{p(x|θ)}[f(x, θ)] whose gradient in θ we estimate.

A problem bundles the measure ``p(x|θ)`` (a callable θ -> ``tfd.Distribution``), the
cost ``f(x, θ)``, the parameter names, an integration window for the quadrature-based
estimators, and exact ground truth: a closed form where one exists, otherwise adaptive
quadrature (continuous x) or summation (discrete x) over the window.

Shape convention, so that problems read like the lab's code:

* a problem with one parameter receives θ as a tensor of scalars: ``dist=lambda theta:
  tfd.Normal(theta, 1.)`` and ``cost=lambda x, theta: tf.exp(theta * tf.abs(x))``;
* a problem with ``d > 1`` parameters receives θ with a trailing axis of length ``d``
  and picks components with ``theta[..., i]``.

gradvar evaluates these functions on batches (θ of shape ``[R]`` or ``[R, d]``, x of
shape ``[n, R]``), so they must be written with broadcasting TensorFlow ops.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np

from estimators._tf import tf, tfd

# Classes whose samples are integers even when TFP stores them as floats.
_DISCRETE = tuple(
    getattr(tfd, name)
    for name in (
        "Bernoulli", "BetaBinomial", "Binomial", "Categorical", "DirichletMultinomial",
        "FiniteDiscrete", "Geometric", "Multinomial", "NegativeBinomial", "OneHotCategorical",
        "Poisson", "QuantizedDistribution", "Skellam", "Zipf",
    )
    if hasattr(tfd, name)
)

WINDOW_STDDEVS = 12.0
"""Default integration window: mean ± this many standard deviations of p(x|θ)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """An expectation ``E_{p(x|θ)}[f(x, θ)]`` with exact ground truth for its gradient.

    Args:
      name: Short identifier, used in tables and figures.
      dist: Callable ``theta -> tfd.Distribution`` with scalar events.
      cost: Callable ``(x, theta) -> Tensor``, elementwise in ``x``.
      param_names: Names of θ's components; its length is the dimension ``d``.
      window: ``(low, high)`` for the trapezoidal estimators and for quadrature, or a
        callable ``theta (np.ndarray [d]) -> (low, high)``. Default: the mean of
        ``p(x|θ)`` ± 12 standard deviations.
      exact_value: Optional closed form ``theta -> E[f]`` in TensorFlow ops (θ as for
        ``dist``); gradients of it by autodiff give the exact gradient.
      bounds: Open interval allowed for each named parameter, e.g.
        ``{"std": (0, None)}``; ``None`` means unbounded.
      breakpoints: x where the integrand is not smooth (e.g. ``0`` for ``|x|``); they
        help adaptive quadrature.
      description: One line for listings.

    Example:

    >>> import tensorflow as tf, tensorflow_probability as tfp
    >>> import estimators as E
    >>> p = E.Problem(name="mine", dist=lambda theta: tfp.distributions.Normal(theta, 1.),
    ...               cost=lambda x, theta: x ** 2)
    >>> p.true_gradient(1.5)   # d/dθ (θ² + 1), by quadrature
    array([3.])
    """

    name: str
    dist: Callable
    cost: Callable
    param_names: tuple[str, ...] = ("theta",)
    window: tuple[float, float] | Callable | None = None
    exact_value: Callable | None = None
    bounds: Mapping[str, tuple[float | None, float | None]] = dataclasses.field(
        default_factory=dict)
    breakpoints: tuple[float, ...] = ()
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty string, got {self.name!r}.")
        for field in ("dist", "cost"):
            if not callable(getattr(self, field)):
                raise TypeError(f"{field} must be callable, got {getattr(self, field)!r}.")
        if isinstance(self.param_names, str):
            object.__setattr__(self, "param_names", (self.param_names,))
        object.__setattr__(self, "param_names", tuple(self.param_names))
        if not self.param_names:
            raise ValueError("param_names must name at least one parameter.")
        unknown = set(self.bounds) - set(self.param_names)
        if unknown:
            raise ValueError(f"bounds name unknown parameters {sorted(unknown)}; "
                             f"the parameters are {list(self.param_names)}.")
        if self.window is not None and not callable(self.window):
            object.__setattr__(self, "window", _check_window(self.window, "window"))
        object.__setattr__(self, "breakpoints", tuple(float(b) for b in self.breakpoints))

    # -- parameters ---------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Number of parameters d."""
        return len(self.param_names)

    def theta_vector(self, theta) -> np.ndarray:
        """Validates θ and returns it as a float64 array of shape ``[d]``.

        Accepts a number (one-parameter problems), a sequence of ``d`` numbers or a
        mapping from parameter name to value.

        Raises:
          ValueError: wrong length, non-finite values or values outside ``bounds``.
          TypeError: θ is not numeric.
        """
        if isinstance(theta, Mapping):
            missing = [n for n in self.param_names if n not in theta]
            extra = [k for k in theta if k not in self.param_names]
            if missing or extra:
                raise ValueError(f"theta for problem '{self.name}' must give exactly "
                                 f"{list(self.param_names)}, got keys {list(theta)}.")
            theta = [theta[n] for n in self.param_names]
        try:
            vector = np.asarray(theta, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise TypeError(f"theta must be a number or a sequence of {self.dim} numbers "
                            f"({', '.join(self.param_names)}), got {theta!r}.") from None
        if vector.shape != (self.dim,):
            raise ValueError(f"theta must have {self.dim} value(s) "
                             f"({', '.join(self.param_names)}) for problem '{self.name}', "
                             f"got {vector.size}.")
        if not np.all(np.isfinite(vector)):
            raise ValueError(f"theta must be finite, got {vector.tolist()}.")
        for name, value in zip(self.param_names, vector):
            low, high = self.bounds.get(name, (None, None))
            if low is not None and not value > low:
                raise ValueError(f"theta '{name}' must be > {low} for problem "
                                 f"'{self.name}', got {value}.")
            if high is not None and not value < high:
                raise ValueError(f"theta '{name}' must be < {high} for problem "
                                 f"'{self.name}', got {value}.")
        return vector

    def unpack(self, theta):
        """θ with a trailing axis ``[..., d]`` in the form ``dist`` and ``cost`` take."""
        return theta[..., 0] if self.dim == 1 else theta

    def distribution(self, theta, dtype=tf.float64) -> tfd.Distribution:
        """``p(x|θ)`` at one θ, built in ``dtype``."""
        vector = tf.constant(self.theta_vector(theta), dtype=dtype)
        return self.dist(self.unpack(vector))

    # -- properties of the measure --------------------------------------------------------

    def is_discrete(self, theta) -> bool:
        """Whether x takes integer values (no density to integrate or differentiate)."""
        d = self.distribution(theta, tf.float32)
        return isinstance(d, _DISCRETE) or d.dtype.is_integer

    def is_reparameterized(self, theta) -> bool:
        """Whether TFP can differentiate samples of ``p(x|θ)`` with respect to θ."""
        d = self.distribution(theta, tf.float32)
        return d.reparameterization_type == tfd.FULLY_REPARAMETERIZED

    def measure_depends_on_theta(self, theta) -> bool:
        """Whether ``p(x|θ)`` changes with θ (detected from ∇θ log p at a few draws)."""
        vector = tf.constant(self.theta_vector(theta), dtype=tf.float64)
        x = tf.stop_gradient(self.dist(self.unpack(vector)).sample(
            16, seed=tf.constant([7, 11], tf.int32)))
        with tf.GradientTape() as tape:
            tape.watch(vector)
            log_prob = tf.reduce_sum(self.dist(self.unpack(vector)).log_prob(x))
        score = tape.gradient(log_prob, vector)
        return score is not None and bool(np.any(score.numpy() != 0.0))

    def integration_window(self, theta) -> tuple[float, float]:
        """The ``(low, high)`` window for trapezoidal estimators and quadrature at θ."""
        vector = self.theta_vector(theta)
        if callable(self.window):
            return _check_window(self.window(vector), f"window({vector.tolist()})")
        if self.window is not None:
            return self.window
        d = self.distribution(vector)
        try:
            mean, std = float(d.mean()), float(d.stddev())
        except (NotImplementedError, TypeError, ValueError):
            raise ValueError(f"problem '{self.name}' needs an explicit window=(low, high): "
                             f"its distribution {type(d).__name__} has no mean/stddev "
                             "to derive one from.") from None
        if not (math.isfinite(mean) and math.isfinite(std)):
            raise ValueError(f"problem '{self.name}' needs an explicit window=(low, high): "
                             f"its distribution's mean or stddev is not finite at {vector}.")
        return (mean - WINDOW_STDDEVS * std, mean + WINDOW_STDDEVS * std)

    # -- ground truth ---------------------------------------------------------------------

    def true_value(self, theta) -> float:
        """Exact ``E_{p(x|θ)}[f(x, θ)]``: closed form if given, else quadrature."""
        from estimators import truth

        return truth.value(self, theta)

    def true_gradient(self, theta) -> np.ndarray:
        """Exact ``∇θ E_{p(x|θ)}[f(x, θ)]`` as an array ``[d]``."""
        from estimators import truth

        return truth.gradient(self, theta)


def _check_window(window, what) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a pair (low, high) of numbers, got {window!r}.") \
            from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{what} must be finite with low < high, got {(low, high)}.")
    return (low, high)

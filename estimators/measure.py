"""What gradvar needs to know about a measure p(x|θ): its events, support and mass.

* **Events** are scalars (``event_shape []``) or vectors (``event_shape [D]``:
  ``tfd.MultivariateNormalDiag``, ``tfd.Independent(tfd.Normal(...), 1)``,
  ``tfd.Independent(tfd.Bernoulli(...), 1)``, ...). Draws for R replicates are
  ``[n, R]`` or ``[n, R, D]``.
* **Support** (scalar events): continuous supports come from TFP's default event-space
  bijector (the image of the real line: (0, ∞) for a Gamma, (0, 1) for a Beta); integer
  supports from the distribution's family ({0, 1} for a Bernoulli, {0, ..., N} for a
  Binomial, {0, 1, ...} for a Poisson). Quadrature, summation and the trapezoidal
  estimators never evaluate p outside it: a Bernoulli's log-mass formula is finite at
  x = 2, and summing it there once gave a "true gradient" of 4972.5 instead of 0.4.
* **Where the mass is** (:func:`default_window`): mean ± 12 standard deviations, widened
  until each tail outside holds less than ``TAIL_MASS`` where the CDF is known, and
  clipped to the support. Never (-∞, ∞): quadrature there silently returns ~0 for a
  narrow density far from 0.
* **Normal families** (:func:`location_scale`): ``tfd.Normal``,
  ``tfd.MultivariateNormalDiag`` and ``tfd.Independent(tfd.Normal)``, written as
  x = loc + scale · ε; the antithetic, QMC and measure-valued estimators need this form.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from estimators._runtime import tf, tfd

WINDOW_STDDEVS = 12.0
"""The default window starts at the mean ± this many standard deviations."""

TAIL_MASS = 1e-13
"""The default window grows until each tail outside it holds less than this mass."""

WIDEST = 1e4
"""... but never beyond this many spreads from the center; heavier tails (a Cauchy's)
get no quadrature (see ``heavy_tailed``)."""

MAX_ENUMERATION = 2**16
"""Largest support (points, or joint configurations of a vector event) summed exactly."""

# Families whose draws are integers even when TFP stores them as floats.
_DISCRETE = tuple(
    getattr(tfd, name)
    for name in (
        "Bernoulli", "BetaBinomial", "Binomial", "Categorical", "DirichletMultinomial",
        "FiniteDiscrete", "Geometric", "Multinomial", "NegativeBinomial", "OneHotCategorical",
        "Poisson", "QuantizedDistribution", "Skellam", "Zipf",
    )
    if hasattr(tfd, name)
)


@dataclasses.dataclass(frozen=True)
class Support:
    """The support of a scalar event: an interval of the reals or of the integers, or a
    finite set of points.

    Attributes:
      low, high: Bounds (may be ±inf); closed for integers, open or closed for reals.
      integer: Whether the support is a set of integers.
      points: The points of a finite support that is not an integer range, else None.
    """

    low: float
    high: float
    integer: bool
    points: tuple[float, ...] | None = None

    @property
    def finite(self) -> bool:
        return self.points is not None or (self.integer and math.isfinite(self.low)
                                           and math.isfinite(self.high))

    def size(self) -> float:
        if self.points is not None:
            return len(self.points)
        return self.high - self.low + 1 if self.finite else math.inf

    def clip(self, low: float, high: float) -> tuple[float, float]:
        return max(low, self.low), min(high, self.high)


def event_rank(dist) -> int:
    return int(dist.event_shape.rank)


def event_size(dist) -> int:
    """D for vector events, 1 for scalar events."""
    return int(np.prod(dist.event_shape.as_list())) if event_rank(dist) else 1


def base(dist):
    """The scalar distribution behind ``tfd.Independent(scalar, 1)``, or ``dist`` itself."""
    if isinstance(dist, tfd.Independent) and event_rank(dist.distribution) == 0:
        return dist.distribution
    return dist


def is_discrete(dist) -> bool:
    """Whether draws are integers (or integer vectors): no density to integrate."""
    inner = base(dist)
    if isinstance(inner, tfd.Independent):  # V one-hot categorical variables, draws [V, C]
        inner = inner.distribution
    return isinstance(inner, _DISCRETE) or dist.dtype.is_integer or inner.dtype.is_integer


def is_reparameterized(dist) -> bool:
    return dist.reparameterization_type == tfd.FULLY_REPARAMETERIZED


def support(dist) -> Support | None:
    """The support of the scalar distribution ``dist`` (or of each coordinate of an
    ``Independent`` vector), or None when gradvar cannot tell (an unusual discrete family:
    give the problem a ``window``)."""
    dist = base(dist)
    if is_discrete(dist):
        return _integer_support(dist)
    try:
        bijector = dist.experimental_default_event_space_bijector()
        edges = bijector.forward(tf.constant([-np.inf, np.inf], dtype=dist.dtype))
        low, high = (float(v) for v in np.asarray(edges).reshape(-1)[:2])
    except (NotImplementedError, TypeError, ValueError, AttributeError):
        return Support(-math.inf, math.inf, False)
    if math.isnan(low) or math.isnan(high):
        return Support(-math.inf, math.inf, False)
    return Support(min(low, high), max(low, high), False)


def _integer_support(dist) -> Support | None:
    def largest(value):
        return float(np.max(np.asarray(tf.convert_to_tensor(value))))

    if isinstance(dist, tfd.Bernoulli):
        return Support(0.0, 1.0, True)
    if isinstance(dist, (tfd.Binomial, tfd.BetaBinomial)):
        return Support(0.0, largest(dist.total_count), True)
    if isinstance(dist, tfd.Categorical):
        categories = int(dist.logits_parameter().shape[-1])
        return Support(0.0, float(categories - 1), True)
    if isinstance(dist, tfd.FiniteDiscrete):
        points = tuple(float(v) for v in np.unique(np.asarray(dist.outcomes)))
        return Support(points[0], points[-1], False, points)
    if isinstance(dist, (tfd.Poisson, tfd.Geometric, tfd.NegativeBinomial)):
        return Support(0.0, math.inf, True)
    if isinstance(dist, tfd.Zipf):
        return Support(1.0, math.inf, True)
    if isinstance(dist, tfd.Skellam):
        return Support(-math.inf, math.inf, True)
    return None


def default_window(dist) -> tuple[float, float]:
    """Where the mass of the scalar distribution ``dist`` lies (see the module docstring).

    Raises:
      ValueError: the mean or standard deviation is missing or not finite and no
        quantile is known: the problem needs an explicit ``window``.
    """
    bounds = support(dist)
    if bounds is not None and bounds.finite and bounds.size() <= MAX_ENUMERATION:
        return (bounds.low, bounds.high)
    center, spread = _center_spread(dist)
    low, high = center - WINDOW_STDDEVS * spread, center + WINDOW_STDDEVS * spread
    low, high = _widen_to_tail_mass(dist, low, high, spread)
    if bounds is not None:
        low, high = bounds.clip(low, high)
    if bounds is not None and bounds.integer:
        return float(math.floor(low)), float(math.ceil(high))
    return _off_the_edges(dist, bounds, low, high)


def _off_the_edges(dist, bounds, low, high):
    """Moves a window edge that sits on a finite edge of the support just inside it (to the
    TAIL_MASS / 10 quantile): densities and their θ-gradients are often singular there (∂/∂α of
    a Gamma density at x = 0 is 0 · log 0), and grid estimators evaluate the edges."""
    if bounds is None:
        return low, high
    edges = []
    for edge, level in ((low, TAIL_MASS / 10), (high, 1.0 - TAIL_MASS / 10)):
        on_support_edge = math.isfinite(edge) and edge in (bounds.low, bounds.high)
        if on_support_edge:
            try:
                moved = float(dist.quantile(tf.constant(level, dist.dtype)))
            except (NotImplementedError, TypeError, ValueError, AttributeError):
                moved = math.nan
            if not (math.isfinite(moved) and low < moved < high):
                moved = edge + (1e-9 if edge == low else -1e-9) * (high - low)
            edge = moved
        edges.append(edge)
    return edges[0], edges[1]


def _center_spread(dist) -> tuple[float, float]:
    try:
        center, spread = float(dist.mean()), float(dist.stddev())
        if math.isfinite(center) and math.isfinite(spread) and spread > 0:
            return center, spread
    except (NotImplementedError, TypeError, ValueError):
        pass
    try:  # heavy tails (no finite moments): the quartiles place the window instead
        q1, median, q3 = (float(dist.quantile(tf.constant(q, dist.dtype)))
                          for q in (0.25, 0.5, 0.75))
        if all(math.isfinite(v) for v in (q1, median, q3)) and q3 > q1:
            return median, (q3 - q1) / 1.349
    except (NotImplementedError, TypeError, ValueError, AttributeError):
        pass
    raise ValueError(f"its distribution {type(dist).__name__} has no finite mean and "
                     "standard deviation (or quantiles) to place an integration window "
                     "around; give the problem window=(low, high).")


def _widen_to_tail_mass(dist, low, high, spread):
    """Pushes each edge out until the tail beyond it holds < TAIL_MASS (when the CDF is
    known; heavy-tailed measures need it: 12 sd of a Geometric(0.1) leaves 2e-6), but not
    beyond ``WIDEST`` spreads from the center: a Cauchy's would reach ±10¹²."""
    center = 0.5 * (low + high)
    for _ in range(40):
        below, above = tail_masses(dist, low, high)
        if not (math.isfinite(below) and math.isfinite(above)):
            return low, high
        if below < TAIL_MASS and above < TAIL_MASS:
            return low, high
        if below >= TAIL_MASS:
            low = max(low - max(spread, high - low), center - WIDEST * spread)
        if above >= TAIL_MASS:
            high = min(high + max(spread, high - low), center + WIDEST * spread)
        if high - low >= 2 * WIDEST * spread:
            return low, high
    return low, high


def tail_masses(dist, low: float, high: float) -> tuple[float, float]:
    """P(x < low), P(x > high) for a scalar distribution, or (nan, nan) without a CDF."""
    try:
        below = float(dist.cdf(tf.constant(low, dist.dtype)))
        above = float(dist.survival_function(tf.constant(high, dist.dtype)))
    except (NotImplementedError, TypeError, ValueError):
        return math.nan, math.nan
    return below, above


def heavy_tailed(dist, low: float, high: float) -> bool:
    """Whether more than TAIL_MASS lies beyond (low, high) on either side (False when the
    CDF is unknown)."""
    below, above = tail_masses(dist, low, high)
    return (math.isfinite(below) and below >= TAIL_MASS) or \
        (math.isfinite(above) and above >= TAIL_MASS)


def parameters_out_of_range(dist) -> list[str]:
    """Parameters of ``dist`` outside the range TFP's family allows (a Bernoulli's probs
    = 1.3, a Normal's scale = -1), as ``"probs = 1.3"`` texts; TFP computes numbers for
    them without complaint unless ``validate_args`` is set. Checked through each
    parameter's default constraining bijector (its inverse is not finite outside the
    range); wrappers (``Independent``, transformed distributions) are looked through."""
    inner = getattr(dist, "distribution", None)
    found = parameters_out_of_range(inner) if inner is not None else []
    try:
        properties = type(dist).parameter_properties(dtype=tf.float64)
    except (NotImplementedError, TypeError, AttributeError):
        return found
    for name, prop in properties.items():
        value = dist.parameters.get(name)
        if value is None or name == "distribution" or callable(value):
            continue
        try:
            value = tf.cast(tf.convert_to_tensor(value), tf.float64)
            inverse = prop.default_constraining_bijector_fn().inverse(value)
        except (NotImplementedError, TypeError, ValueError, AttributeError):
            continue
        if not bool(np.all(np.isfinite(np.asarray(inverse)))):
            values = np.asarray(value).reshape(-1)
            bad = values[~np.isfinite(np.asarray(inverse).reshape(-1))] \
                if np.asarray(inverse).size == values.size else values
            found.append(f"{name} = {bad[0]:g}")
    return found


def support_edges(dist):
    """The edges of a scalar continuous support as a tensor ``[2]`` with their path to the
    distribution's parameters (±inf for an unbounded side), or None when unknown. For a
    vector of independent coordinates (``tfd.Independent`` of a scalar family) the edges of
    every coordinate, ``[2, D]``."""
    inner = base(dist)
    vector = inner is not dist
    try:
        bijector = inner.experimental_default_event_space_bijector()
        ends = tf.constant([-np.inf, np.inf], dtype=inner.dtype)
        edges = bijector.forward(ends[:, tf.newaxis] if vector else ends)
    except (NotImplementedError, TypeError, ValueError, AttributeError):
        return None
    if vector:
        return edges if edges.shape.rank == 2 else None
    return tf.reshape(edges, [-1])[:2] if edges.shape.num_elements() else None


# Families that TFP samples along their quantile (implicit) path, so that the exact
# pathwise moments by quadrature, which differentiate x along -∇θF(x|θ)/p(x|θ), describe
# the estimator TFP runs. Location-scale families (x = loc + scale·ε), monotone maps of
# them, and the Gamma family (implicit reparameterization) are; a Beta (a ratio of two
# Gammas), a StudentT (a Normal over a Gamma) or a TruncatedNormal are not: their
# per-sample variance along TFP's path differs (measured: Beta(1.5, 2), log1p(x): 0.0025
# against 0.0014 along the quantile path).
QUANTILE_PATH_FAMILIES = tuple(
    getattr(tfd, name) for name in (
        "Normal", "Gamma", "Exponential", "Uniform", "Laplace", "Logistic", "Gumbel",
        "HalfNormal", "LogNormal", "Weibull", "Cauchy")
    if hasattr(tfd, name))


def scale_points(dist, low: float, high: float) -> list[float]:
    """Points at center ± spread·4^k inside (low, high): subdividing a wide window there
    lets adaptive quadrature find a narrow peak in a window widened for heavy tails (a
    Cauchy's reaches ±10¹²)."""
    try:
        center, spread = _center_spread(dist)
    except ValueError:
        return []
    points, step = [], spread
    while step < (high - low):
        points += [p for p in (center - step, center + step) if low < p < high]
        step *= 4.0
    return points


def location_scale(dist):
    """``(loc, scale)`` of a Normal family, broadcast to the draws' batch and event shape,
    as tensors that keep their path to θ; None for any other measure."""
    inner = base(dist)
    if isinstance(inner, tfd.Normal):
        loc, scale = tf.convert_to_tensor(inner.loc), tf.convert_to_tensor(inner.scale)
    elif isinstance(dist, tfd.MultivariateNormalDiag):
        loc, scale = tf.convert_to_tensor(dist.loc), tf.convert_to_tensor(dist.scale.diag)
    else:
        return None
    return loc + tf.zeros_like(scale), scale + tf.zeros_like(loc)


def is_normal_family(dist) -> bool:
    inner = base(dist)
    return isinstance(inner, tfd.Normal) or isinstance(dist, tfd.MultivariateNormalDiag)


def sample_shape(dist, n: int, n_replicates) -> list:
    """The ``sample`` shape giving ``[n, R, *event]`` draws: a measure written without θ
    (``tfd.Normal(0., 1.)``) has no replicate axis, so it gets one."""
    return [n] if dist.batch_shape.rank != 0 else [n, n_replicates]

"""Registry of built-in problems (factories taking keyword arguments).

>>> import estimators as E
>>> p = E.problems.get("gaussian_cos", k=2.0)
>>> p.param_names
('mean', 'std')

Built-ins:

* ``seed_fixed(mu=0)``: f = exp(θ|x|), p = N(mu, 1) independent of θ (lab T3).
* ``seed_dependence()``: f = exp(θ|x|), p = N(θ, 1) (lab T4/T5).
* ``gaussian_square(k=1)``, ``gaussian_exp(k=1)``, ``gaussian_cos(k=1)``: the cost
  families (x-k)², exp(-k x²), cos(k x) of Mohamed, Rosca, Figurnov & Mnih,
  "Monte Carlo Gradient Estimation in Machine Learning", JMLR 2020 (Figs. 2-3), under
  N(mean, std²) with θ = (mean, std).
* ``poisson_square(k=2)``: f = (x-k)², p = Poisson(θ): a discrete measure, where only
  the score function and naive estimators apply.

Every built-in has a closed form; ``tests/estimators/test_problems.py`` checks each
against quadrature.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

from estimators._tf import tf, tfd
from estimators.problem import Problem

_FACTORIES: dict[str, Callable[..., Problem]] = {}
_SUMMARIES: dict[str, str] = {}
_INSTANCES: dict[tuple, Problem] = {}


def register(name: str, summary: str = ""):
    """Decorator adding a problem factory ``(**kwargs) -> Problem`` under ``name``."""
    def decorate(factory):
        if name in _FACTORIES:
            raise ValueError(f"a problem named '{name}' is already registered.")
        _FACTORIES[name] = factory
        _SUMMARIES[name] = summary or (factory.__doc__ or "").strip().splitlines()[0]
        return factory
    return decorate


def names() -> list[str]:
    """Names of the registered problems, sorted."""
    return sorted(_FACTORIES)


def summary(name: str) -> str:
    """One line describing problem ``name``."""
    _factory(name)
    return _SUMMARIES[name]


def parameters(name: str) -> dict[str, object]:
    """The keyword arguments problem ``name`` takes, with their defaults."""
    return {p.name: p.default for p in inspect.signature(_factory(name)).parameters.values()}


def get(name: str, **kwargs) -> Problem:
    """The problem ``name`` built with ``kwargs`` (the same object for the same arguments).

    Raises:
      ValueError: unknown name (listing the valid ones) or unknown keyword argument.
    """
    factory = _factory(name)
    allowed = parameters(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no keyword arguments"
        raise ValueError(f"problem '{name}' got unknown argument(s) {unknown}; it takes: {takes}.")
    for key, value in kwargs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ValueError(f"problem '{name}' argument {key} must be a finite number, "
                             f"got {value!r}.")
    key = (name, tuple(sorted((k, float(v)) for k, v in kwargs.items())))
    if key not in _INSTANCES:
        _INSTANCES[key] = factory(**{k: float(v) for k, v in kwargs.items()})
    return _INSTANCES[key]


def _factory(name):
    try:
        return _FACTORIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown problem {name!r}; choose one of: {', '.join(names())}.") \
            from None


def _label(name, kwargs):
    return name if not kwargs else name + "(" + ", ".join(f"{k}={v:g}" for k, v in kwargs.items()) + ")"


def _expected_exp_abs(theta, m):
    """E_{N(m,1)}[exp(θ|x|)] = e^{θm+θ²/2} Φ(m+θ) + e^{-θm+θ²/2} Φ(θ-m)."""
    return (tf.exp(theta * m + theta**2 / 2) * _normal_cdf(m + theta)
            + tf.exp(-theta * m + theta**2 / 2) * _normal_cdf(theta - m))


def _normal_cdf(z):
    return 0.5 * tf.math.erfc(-z / math.sqrt(2.0))


@register("seed_fixed", "f = exp(θ|x|), p = N(mu, 1) independent of θ (lab T3)")
def seed_fixed(mu: float = 0.0) -> Problem:
    return Problem(
        name=_label("seed_fixed", {"mu": mu}) if mu else "seed_fixed",
        dist=lambda theta: tfd.Normal(mu, 1.0),
        cost=lambda x, theta: tf.exp(theta * tf.abs(x)),
        exact_value=lambda theta: _expected_exp_abs(theta, mu),
        breakpoints=(0.0,),
        description=f"f = exp(θ|x|), p = N({mu:g}, 1) independent of θ (lab T3)",
    )


@register("seed_dependence", "f = exp(θ|x|), p = N(θ, 1) (lab T4, T5)")
def seed_dependence() -> Problem:
    return Problem(
        name="seed_dependence",
        dist=lambda theta: tfd.Normal(theta, 1.0),
        cost=lambda x, theta: tf.exp(theta * tf.abs(x)),
        exact_value=lambda theta: _expected_exp_abs(theta, theta),
        breakpoints=(0.0,),
        description="f = exp(θ|x|), p = N(θ, 1) (lab T4, T5)",
    )


def _gaussian(name, k, cost, exact_value, description):
    return Problem(
        name=_label(name, {"k": k}),
        dist=lambda theta: tfd.Normal(theta[..., 0], theta[..., 1]),
        cost=cost,
        param_names=("mean", "std"),
        exact_value=exact_value,
        bounds={"std": (0.0, None)},
        description=description,
    )


@register("gaussian_square", "f = (x-k)², p = N(mean, std²) (Mohamed et al. 2020)")
def gaussian_square(k: float = 1.0) -> Problem:
    return _gaussian(
        "gaussian_square", k,
        cost=lambda x, theta: (x - k) ** 2,
        exact_value=lambda theta: theta[1] ** 2 + (theta[0] - k) ** 2,
        description=f"f = (x-{k:g})², p = N(mean, std²)")


@register("gaussian_exp", "f = exp(-k x²), p = N(mean, std²) (Mohamed et al. 2020)")
def gaussian_exp(k: float = 1.0) -> Problem:
    def exact(theta):
        spread = 1.0 + 2.0 * k * theta[1] ** 2
        return tf.exp(-k * theta[0] ** 2 / spread) / tf.sqrt(spread)

    return _gaussian("gaussian_exp", k, cost=lambda x, theta: tf.exp(-k * x**2),
                     exact_value=exact, description=f"f = exp(-{k:g} x²), p = N(mean, std²)")


@register("gaussian_cos", "f = cos(k x), p = N(mean, std²) (Mohamed et al. 2020)")
def gaussian_cos(k: float = 1.0) -> Problem:
    return _gaussian(
        "gaussian_cos", k,
        cost=lambda x, theta: tf.cos(k * x),
        exact_value=lambda theta: tf.cos(k * theta[0]) * tf.exp(-(k * theta[1]) ** 2 / 2),
        description=f"f = cos({k:g} x), p = N(mean, std²)")


@register("poisson_square", "f = (x-k)², p = Poisson(θ): a discrete measure")
def poisson_square(k: float = 2.0) -> Problem:
    return Problem(
        name=_label("poisson_square", {"k": k}),
        dist=lambda theta: tfd.Poisson(rate=theta),
        cost=lambda x, theta: (x - k) ** 2,
        param_names=("rate",),
        exact_value=lambda theta: theta + (theta - k) ** 2,
        bounds={"rate": (0.0, None)},
        window=lambda theta: (0.0, theta[0] + 12.0 * math.sqrt(theta[0]) + 20.0),
        description=f"f = (x-{k:g})², p = Poisson(rate)",
    )

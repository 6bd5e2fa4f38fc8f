"""Registry of built-in problems (factories taking keyword arguments).

>>> import estimators as E
>>> p = E.problems.get("gaussian_cos", k=2.0)
>>> p.param_names
('mean', 'std')
>>> E.problems.get("gaussian_square_nd", D=3).param_labels[:2]
('mean[0]', 'mean[1]')

Built-ins, by module (each has a closed form, checked against quadrature or Monte Carlo
in ``tests/estimators/test_problems.py``):

* :mod:`.lab`: ``seed_fixed(mu=0)`` (f = exp(θ|x|), p = N(mu, 1) independent of θ; lab
  T3) and ``seed_dependence()`` (p = N(θ, 1); lab T4/T5).
* :mod:`.gaussian`: the cost families of Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo
  Gradient Estimation in Machine Learning", JMLR 2020 (Figs. 2-3) under N(mean, std²):
  ``gaussian_square(k)`` (x-k)², ``gaussian_exp(k)`` exp(-k x²), ``gaussian_cos(k)``
  cos(k x); and their D-dimensional versions under N(mean, diag std²) with blocks
  θ = {mean: D, std: D}, ``gaussian_square_nd(D, k)`` Σ(x_i-k)² and
  ``gaussian_cos_nd(D, k)`` Σ cos(k x_i), whose score-function variance grows with D.
* :mod:`.discrete`: ``poisson_square(k=2)``, f = (x-k)² under Poisson(θ); the binary and
  categorical toys ``bernoulli_toy(t)``, ``bernoulli_quadratic(D, t)``,
  ``categorical_toy(C)``.
* :mod:`.bounds`: K-sample importance-weighted bounds (IWAE; :mod:`estimators.multisample`),
  ``iwae_bernoulli(K, D)`` (truth by enumeration) and ``iwae_gaussian(K)`` (a
  Gauss-Hermite product rule for K ≤ 3).
* :mod:`.models`: ``logistic_regression(data="breast_cancer")``, Bayesian logistic
  regression with a Monte Carlo reference truth (:mod:`.datasets` prepares the data).
* :mod:`.vae`: ``bernoulli_vae(data="digits", latents, decoder, batch, ...)``, the minibatch
  ELBO of a VAE with Bernoulli latents on binary images (:mod:`.images`), exact by summing
  the 2^D codes of each image for D ≤ 16.

Factory arguments keep the type of their default: ``D`` is an integer, ``k`` a float;
strings and booleans are allowed for factories that take them. A user's own factory
registers with :func:`register`.
"""

from __future__ import annotations

import inspect
import math
import threading
from collections.abc import Callable

from estimators.problem import Problem

_FACTORIES: dict[str, Callable[..., Problem]] = {}
_SUMMARIES: dict[str, str] = {}
_INSTANCES: dict[tuple, Problem] = {}


def register(name: str, summary: str = ""):
    """Decorator adding a problem factory ``(**kwargs) -> Problem`` under ``name``."""
    def decorate(make):
        if name in _FACTORIES:
            raise ValueError(f"a problem named '{name}' is already registered.")
        _FACTORIES[name] = make
        _SUMMARIES[name] = summary or (make.__doc__ or "").strip().splitlines()[0]
        return make
    return decorate


def names() -> list[str]:
    """Names of the registered problems, sorted."""
    return sorted(_FACTORIES)


def summary(name: str) -> str:
    """One line describing problem ``name``."""
    factory(name)
    return _SUMMARIES[name]


def parameters(name: str) -> dict[str, object]:
    """The keyword arguments problem ``name`` takes, with their defaults."""
    return signature_defaults(factory(name))


def signature_defaults(make) -> dict[str, object]:
    """The keyword arguments a factory takes, with their defaults (None: required)."""
    return {p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in inspect.signature(make).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def get(name: str, **kwargs) -> Problem:
    """The problem ``name`` built with ``kwargs`` (the same object for the same arguments).

    Raises:
      ValueError: unknown name (listing the valid ones), unknown keyword argument, or
        an argument of the wrong kind.
    """
    return build(name, factory(name), kwargs)


def build(name: str, make, kwargs: dict, private: bool = False) -> Problem:
    """``make(**kwargs)`` with arguments checked against its signature, cached.

    ``private``: another instance, this thread's own (one per thread), for a training run
    that moves the problem's minibatch (:mod:`estimators.minibatches`) while the shared
    instance is measured elsewhere."""
    allowed = signature_defaults(make)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no keyword arguments"
        raise ValueError(f"problem '{name}' got unknown argument(s) {unknown}; it takes: {takes}.")
    arguments = {key: coerce(name, key, value, allowed[key]) for key, value in kwargs.items()}
    missing = sorted(k for k, v in allowed.items() if v is None and k not in arguments)
    if missing:
        raise ValueError(f"problem '{name}' needs argument(s) {missing}.")
    # The factory itself (not its id, which a reloaded module's new factory may reuse).
    key = (name, make, tuple(sorted(arguments.items())),
           threading.get_ident() if private else None)
    if key not in _INSTANCES:
        problem = make(**arguments)
        if not isinstance(problem, Problem):
            raise TypeError(f"problem factory '{name}' must return an estimators.Problem, got "
                            f"{type(problem).__name__}.")
        _INSTANCES[key] = problem
    return _INSTANCES[key]


def coerce(name: str, key: str, value, default):
    """A factory argument in the type of its default: int, float, str or bool (an
    argument without a default takes any of them as given)."""
    if default is None and isinstance(value, (bool, str)):
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"problem '{name}' argument {key} must be true or false, got "
                             f"{value!r}.")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"problem '{name}' argument {key} must be a string, got {value!r}.")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f"problem '{name}' argument {key} must be a finite number, "
                         f"got {value!r}.")
    if default is None:
        return value
    if isinstance(default, int):
        if float(value) != int(value):
            raise ValueError(f"problem '{name}' argument {key} must be an integer, got {value!r}.")
        return int(value)
    return float(value)


def factory(name: str):
    """The registered factory ``name``.

    Raises:
      ValueError: unknown name (listing the valid ones).
    """
    try:
        return _FACTORIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown problem {name!r}; choose one of: {', '.join(names())}.") \
            from None


def label(name, kwargs):
    """``name(k=2)``: a problem's name with its factory arguments."""
    if not kwargs:
        return name
    return name + "(" + ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) and
                                  not isinstance(v, bool) else f"{k}={v}"
                                  for k, v in kwargs.items()) + ")"


from estimators.problems import bounds, discrete, gaussian, lab, models, vae  # noqa: E402,F401  (register)
from estimators.problems import categorical_vae  # noqa: E402,F401  (register)

__all__ = ["build", "coerce", "factory", "get", "label", "names", "parameters", "register",
           "signature_defaults", "summary"]

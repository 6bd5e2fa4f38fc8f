"""Estimators: a gradient identity × a sampling scheme × a control variate.

An estimator is a *surrogate objective* (as in optax's ``monte_carlo`` and DeepMind's
``mc_gradients``): a pure function whose autodiff gradient with respect to θ is the
gradient estimate, with the one signature of :mod:`estimators.protocol`::

    surrogate(problem, theta [R, d], n, key, context, state) -> Tensor [R]

Replicate r of the result depends only on ``theta[r]`` (and its state), so one gradient
of the sum gives all R estimates. An estimator is composed from

* a **gradient identity** (:mod:`estimators.gradients`): ``score_function``,
  ``reparameterization`` (alias ``pathwise``), ``measure_valued``, ``naive_mc``,
  ``trapz``, ``dependence``; for Bernoulli and one-hot categorical latents ``arm``,
  ``disarm``, ``rebar``, ``gumbel_softmax``, ``straight_through``, some with numeric
  settings of their own (``temperature``, ``eta``);
* a **sampling** scheme (:mod:`estimators.sampling`): ``iid``, ``antithetic``, ``qmc``;
* a **control variate** (:mod:`estimators.control_variates`): ``none``, ``loo``,
  ``batch_optimal``, ``delta``, and any registered with :func:`register_control_variate`
  (a learned one carries state: :mod:`estimators.protocol`).

What a part costs or needs (extra evaluations of f, memory, support conditions, bias by
construction) is declared as data on it; nothing here tests a part's name.

>>> import estimators as E
>>> e = E.get_estimator("score_function", control_variate="delta")
>>> e.label
'score_function(control_variate=delta)'
>>> E.get_estimator("score_function_loo").label   # a preset: a registered name
'score_function(control_variate=loo)'
>>> E.get_estimator("score_function(control_variate=loo)") == E.ESTIMATORS["score_function_loo"]
True
>>> E.get_estimator("gumbel_softmax", temperature=0.1).label
'gumbel_softmax(temperature=0.1)'

Tables and figures name an estimator by its canonical ``label``: the identity, then the
options that differ from their defaults, in the order sampling, control_variate, then the
identity's settings (numbers written with ``:g``).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from estimators import _rng, measure, protocol, truth
from estimators._runtime import tf
from estimators.control_variates import CONTROL_VARIATES, ControlVariate
from estimators.errors import NotApplicableError
from estimators.gradients import IDENTITIES, Identity
from estimators.sampling import SAMPLINGS

OPTIONS = {"sampling": tuple(SAMPLINGS), "control_variate": tuple(CONTROL_VARIATES)}
"""Every option an estimator takes, with the values it accepts."""

DEFAULTS = {"sampling": "iid", "control_variate": "none"}

ALIASES = {"pathwise": "reparameterization"}

FORMS = ("score", "pathwise", "fixed")
"""The identities a registered control variate may correct, by ``Identity.form``; the
others ("joint": K coupled draws, quadrature) have no per-draw terms to correct."""


@dataclasses.dataclass(frozen=True)
class Estimator:
    """A gradient estimator: an identity with its options (see the module docstring).

    Build one with :func:`get_estimator`. Attributes and methods:

    * ``label`` (also ``name``): the canonical name used in tables;
    * ``unbiased``, ``declared_biased``, ``deterministic``, ``ignores_measure_gradient``,
      ``uses_window``, ``pathwise``, ``min_batch``: what it is and needs;
    * ``settings``: the identity's own numeric options (e.g. ``temperature``), all of them,
      defaults included; :meth:`setting` reads one;
    * :meth:`surrogate`, :meth:`check`, :meth:`exact_moments`,
      :meth:`f_evals_per_estimate`.
    """

    identity: Identity
    sampling: str = "iid"
    control_variate: str = "none"
    settings: tuple[tuple[str, float], ...] = ()
    warmup_batches: int | None = None

    def __post_init__(self):
        if self.warmup_batches is not None:
            object.__setattr__(self, "warmup_batches", _warmup_value(self, self.warmup_batches))
        for option in OPTIONS:
            value = getattr(self, option)
            if value not in OPTIONS[option]:
                raise ValueError(f"{option} must be one of {', '.join(OPTIONS[option])}, got "
                                 f"{value!r}.")
        given = dict(self.settings)
        unknown = set(given) - {name for name, *_ in self.identity.settings}
        if unknown:
            raise ValueError(_unknown_option(self.identity, sorted(unknown)[0]))
        # Every setting stored, defaults included, so equal estimators compare equal.
        object.__setattr__(self, "settings", tuple(
            (name, _setting_value(self.identity, name, given.get(name, default)))
            for name, default, *_ in self.identity.settings))

    # -- naming ----------------------------------------------------------------------------

    @property
    def options(self) -> dict:
        """The options that differ from their defaults, in canonical order (sampling,
        control_variate, the identity's own settings, then a learned estimator's
        ``warmup_batches``)."""
        options = {k: getattr(self, k) for k in OPTIONS if getattr(self, k) != DEFAULTS[k]}
        defaults = {name: default for name, default, *_ in self.identity.settings}
        options.update({name: value for name, value in self.settings
                        if value != defaults[name]})
        if self.warmup_batches is not None:
            options["warmup_batches"] = self.warmup_batches
        return options

    def with_warmup(self, batches: int | None) -> "Estimator":
        """This estimator with its own count of warm-up batches (None: none of its own;
        the caller's, or 0)."""
        return dataclasses.replace(self, warmup_batches=batches)

    def setting(self, name: str) -> float:
        """The value of one of the identity's settings (e.g. ``temperature``)."""
        settings = dict(self.settings)
        if name not in settings:
            raise ValueError(_unknown_option(self.identity, name))
        return settings[name]

    @property
    def label(self) -> str:
        options = self.options
        if not options:
            return self.identity.name
        return f"{self.identity.name}({', '.join(f'{k}={_format(v)}' for k, v in options.items())})"

    name = label

    @property
    def summary(self) -> str:
        extra = [SAMPLINGS[self.sampling].summary if "sampling" in self.options else "",
                 self.control.summary if "control_variate" in self.options else ""]
        extra = [e for e in extra if e]
        return self.identity.summary + (f" With {'; '.join(extra)}." if extra else "")

    def __repr__(self):
        return f"Estimator({self.label})"

    # -- properties ------------------------------------------------------------------------

    @property
    def unbiased(self) -> bool:
        return self.identity.unbiased  # control variates and samplings keep the mean

    @property
    def declared_biased(self) -> bool:
        """Biased by construction on every problem (a relaxation); naive_mc, biased only
        where p depends on θ, and the quadrature rules, biased by a discretization error
        that vanishes with n, are judged by their measured bias instead."""
        return self.identity.declared_biased

    @property
    def deterministic(self) -> bool:
        return self.identity.deterministic

    @property
    def ignores_measure_gradient(self) -> bool:
        return self.identity.ignores_measure_gradient

    @property
    def uses_window(self) -> bool:
        return self.identity.uses_window

    @property
    def pathwise(self) -> bool:
        return self.identity.pathwise

    @property
    def control(self) -> ControlVariate:
        return CONTROL_VARIATES[self.control_variate]

    @property
    def forward_mode(self) -> bool:
        """Whether its programs for one parameter may differentiate in forward mode
        (``estimators.engine``)."""
        return self.identity.forward_mode and self.control.forward_mode

    @property
    def min_batch(self) -> int:
        return max(self.identity.min_batch, self.control.min_batch,
                   SAMPLINGS[self.sampling].min_batch)

    @property
    def memory_per_value(self) -> float | None:
        """Float32 temporaries per value of a batch, where the identity declares more than
        the engine's default (:mod:`estimators.memory`); else None."""
        return self.identity.memory_per_value

    def memory_values(self, n_replicates: int, event_size: int) -> float:
        """Float32 values its control variate holds beyond the engine's memory model."""
        extra = self.control.memory_values
        return 0.0 if extra is None else float(extra(n_replicates, event_size))

    @property
    def stateful(self) -> bool:
        """Whether it carries state that learns batch after batch (a learned control
        variate or relaxation): :meth:`init` and :meth:`update`."""
        return self.identity.init is not None or self.control.stateful

    # -- the estimate ----------------------------------------------------------------------

    def prepare(self, problem, theta, window=None) -> protocol.Context:
        """The :class:`estimators.protocol.Context` of a call at θ ``[R, d]``: the window,
        the control variate's θ-only work (done once per call of a program and handed to
        every batch's :meth:`surrogate`) and the identity's settings."""
        control = self.control
        prepared = None
        if self.identity.form != "joint" and control.prepare is not None:
            prepared = control.prepare(problem, theta)
        return protocol.Context(window=window, prepared=prepared, settings=dict(self.settings))

    def surrogate(self, problem, theta, n: int, key, context: protocol.Context,
                  state: dict | None = None):
        """``[R]``, whose θ-gradient is the batch estimate (:mod:`estimators.protocol`);
        ``context`` is what :meth:`prepare` returned for this θ, ``state`` what
        :meth:`init` or :meth:`update` returned (None when stateless)."""
        return self._surrogate(problem, theta, n, key, context, state or {})

    @property
    def _surrogate(self):
        if self.identity.surrogate is not None:
            return self.identity.surrogate
        return protocol.mean_over_draws(self.identity, SAMPLINGS[self.sampling], self.control)

    def init(self, problem, theta) -> dict:
        """The initial state at θ ``[R, d]``: a dict of tensors with leading axis R, one
        entry per stateful part (``{}`` for a stateless estimator)."""
        state = {}
        if self.identity.init is not None:
            state[protocol.IDENTITY_STATE] = self.identity.init(problem, theta,
                                                                dict(self.settings))
        if self.control.stateful:
            state[protocol.CONTROL_STATE] = self.control.init(problem, theta)
        return state

    def update(self, problem, theta, n: int, key, context: protocol.Context, state: dict
               ) -> dict:
        """The state after one learning step on a fresh batch of ``n`` draws with ``key``
        (each stateful part updated on its own draws)."""
        state = dict(state)
        if self.identity.update is not None:
            state[protocol.IDENTITY_STATE] = self.identity.update(
                problem, theta, n, _rng.fold_in(key, 0), context,
                state[protocol.IDENTITY_STATE])
        if self.control.stateful:
            update = protocol.update_over_draws(self.identity, SAMPLINGS[self.sampling],
                                                self.control)
            state[protocol.CONTROL_STATE] = update(problem, theta, n, _rng.fold_in(key, 1),
                                                   context, state)
        return state

    def check(self, problem, theta, batch_size: int, n_samples: int | None = None) -> None:
        """Raises :class:`NotApplicableError` if this estimator cannot run on ``problem``
        at θ with this batch size (of ``n_samples`` per estimate; default ``batch_size``,
        one batch); the message says why and what would."""
        label = self.label
        n_samples = batch_size if n_samples is None else n_samples
        if self.uses_window and batch_size != n_samples:
            # Batches of a grid are coarser grids: their mean is the rule on batch_size
            # points, not on n_samples.
            raise NotApplicableError(
                f"{label} {self.identity.grid_rule or 'is a quadrature rule'} over "
                "n_samples grid points, so batch_size must equal n_samples (or be \"all\" in "
                f"a grid), got batch_size={batch_size} for n_samples={n_samples}.")
        if batch_size < self.min_batch:
            raise NotApplicableError(f"{label} needs at least {self.min_batch} samples per "
                                     f"batch, got batch_size={batch_size}.")
        vector = problem.theta_vector(theta)
        dist = problem.distribution(vector, tf.float32)
        kind = type(dist).__name__
        if self.identity.needs_density:
            if measure.is_discrete(dist):
                raise NotApplicableError(
                    f"{label} integrates a density over a grid, but problem "
                    f"'{problem.name}' has a discrete distribution ({kind}); use "
                    "score_function or naive_mc.")
            if measure.event_rank(dist):
                raise NotApplicableError(
                    f"{label} integrates a density over a one-dimensional grid, but problem "
                    f"'{problem.name}' has vector events {dist.event_shape.as_list()}.")
        if self.identity.misses_boundary_terms and problem.support_depends_on_theta(vector):
            raise NotApplicableError(
                f"{label} misses the boundary terms of the gradient when the support of "
                f"p(x|θ) moves with θ, as the {kind} of problem '{problem.name}' does; use "
                "reparameterization.")
        if self.identity.needs_reparameterization and SAMPLINGS[self.sampling].through_sample \
                and not measure.is_reparameterized(dist):
            raise NotApplicableError(
                f"{label} differentiates through samples, but TFP does not reparameterize "
                f"{kind} (problem '{problem.name}'); use score_function.")
        SAMPLINGS[self.sampling].check(label, problem, dist, batch_size)
        if self.control.check is not None:
            self.control.check(label, problem, dist)
        if self.identity.check is not None:
            self.identity.check(label, problem, dist, vector, batch_size)
        if self.identity.check_settings is not None:
            self.identity.check_settings(label, problem, dist, batch_size,
                                         **dict(self.settings))

    def f_evals_per_estimate(self, problem, theta, n_samples: int, batch_size: int) -> int:
        """Evaluations of f behind one estimate (derivatives of f are not counted; the
        time columns show what they cost)."""
        vector = problem.theta_vector(theta)
        count = self.identity.f_evals(problem, vector, n_samples)
        count += self.control.f_evals_per_batch * (n_samples // batch_size)
        if self.identity.f_evals_per_batch is not None:
            count += self.identity.f_evals_per_batch(problem, vector, **dict(self.settings)) \
                * (n_samples // batch_size)
        return int(count)

    # -- exact moments ---------------------------------------------------------------------

    def exact_moments(self, problem, vector, batch_size=None):
        """Exact mean and per-sample variance ``([d], [d])``; see
        :func:`estimators.truth.single_sample_moments`.

        Raises:
          NotImplementedError: no exact form (the message says why).
        """
        vector = problem.theta_vector(vector)
        if self.deterministic:
            return truth.gradient(problem, vector), np.zeros(problem.dim)
        if self.identity.exact_moments is not None:
            return self.identity.exact_moments(problem, vector, batch_size,
                                               **dict(self.settings))
        control = self.control
        if self.stateful:
            raise NotImplementedError(
                f"{self.label} learns: its variance depends on its state, which no "
                "integral over x knows")
        if control.exact_moments is not None:
            return control.exact_moments(problem, vector, batch_size)
        if control.per_sample is None:
            raise NotImplementedError(
                f"control_variate={control.name} declares no exact moments (its estimate is "
                "not a mean of single draws with a fixed surrogate)")
        per_sample = control.per_sample(self.identity)
        scheme = SAMPLINGS[self.sampling]
        if scheme.exact_moments is not None:
            return scheme.exact_moments(problem, vector, batch_size, per_sample,
                                        self.identity.pathwise,
                                        (self.label, self.identity, control))
        return truth.integrate_per_sample(problem, vector, per_sample, self.identity.pathwise,
                                          self.label)


# -- the registry ---------------------------------------------------------------------------

ESTIMATORS: dict[str, Estimator] = {}
"""Registry: name -> :class:`Estimator`: every identity at its defaults, and presets."""

PRESETS = {
    "score_function_loo": ("score_function", {"control_variate": "loo"}),
    "score_function_batch_optimal": ("score_function", {"control_variate": "batch_optimal"}),
    "reparameterization_antithetic": ("reparameterization", {"sampling": "antithetic"}),
    "reparameterization_qmc": ("reparameterization", {"sampling": "qmc"}),
}


def register(estimator: Estimator, name: str | None = None) -> Estimator:
    """Adds an estimator to :data:`ESTIMATORS` under ``name`` (default: its label)."""
    name = estimator.label if name is None else name
    if name in ESTIMATORS:
        raise ValueError(f"an estimator named '{name}' is already registered.")
    ESTIMATORS[name] = estimator
    return estimator


def register_control_variate(control: ControlVariate) -> ControlVariate:
    """Makes ``control`` an option: ``get_estimator(identity, control_variate=control.name)``
    for every identity whose ``form`` is in ``control.forms``.

    Raises:
      ValueError: a control variate of that name is registered, or ``control`` is not a
        :class:`estimators.control_variates.ControlVariate`.
    """
    if not isinstance(control, ControlVariate):
        raise ValueError("register_control_variate takes an "
                         f"estimators.control_variates.ControlVariate, got {control!r}.")
    if control.name in CONTROL_VARIATES:
        raise ValueError(f"a control variate named '{control.name}' is already registered.")
    if not isinstance(control.name, str) or not re.fullmatch(r"[A-Za-z_]\w*", control.name):
        raise ValueError(f"a control variate's name goes into estimator labels, so it must "
                         f"be a Python identifier, got {control.name!r}.")
    unknown = set(control.forms) - set(FORMS)
    if unknown or not control.forms:
        raise ValueError(f"forms of control variate '{control.name}' must be some of "
                         f"{', '.join(FORMS)} (identities it can correct), got "
                         f"{control.forms!r}.")
    if not control.samplings or set(control.samplings) - set(SAMPLINGS):
        raise ValueError(f"samplings of control variate '{control.name}' must be some of "
                         f"{', '.join(SAMPLINGS)}, got {control.samplings!r}.")
    CONTROL_VARIATES[control.name] = control
    OPTIONS["control_variate"] = tuple(CONTROL_VARIATES)
    return control


def unregister_control_variate(name: str) -> None:
    """Removes a control variate :func:`register_control_variate` added (the registry is
    process-wide: a notebook or a test that re-registers a changed version removes the old
    one first).

    Raises:
      ValueError: ``name`` is not registered, or is one of gradvar's own.
    """
    if name in _BUILT_IN_CONTROL_VARIATES:
        raise ValueError(f"control variate '{name}' is one of gradvar's own and stays.")
    if name not in CONTROL_VARIATES:
        raise ValueError(f"no control variate named '{name}' is registered; registered: "
                         f"{', '.join(CONTROL_VARIATES)}.")
    del CONTROL_VARIATES[name]
    OPTIONS["control_variate"] = tuple(CONTROL_VARIATES)


_BUILT_IN_CONTROL_VARIATES = frozenset(CONTROL_VARIATES)


def get_estimator(name, **options) -> Estimator:
    """An estimator by name, preset or label, with options.

    Args:
      name: A registered name (``E.ESTIMATORS``: the identities and the presets such as
        ``score_function_loo``), an alias (``pathwise``), a canonical label
        (``"score_function(control_variate=delta)"``), or an :class:`Estimator`.
      **options: ``sampling`` (iid, antithetic, qmc) and ``control_variate`` (none, loo,
        batch_optimal, delta, or one added by :func:`register_control_variate`); they
        override the preset's.

    Raises:
      ValueError: unknown name, option or value (the message lists the valid ones).
      NotApplicableError: a combination that cannot work (e.g. reparameterization with
        control_variate=loo, or loo with antithetic pairs).
    """
    if isinstance(name, Estimator):
        base = name
    else:
        if not isinstance(name, str):
            raise TypeError(f"estimator must be a name or an Estimator, got {name!r}.")
        head, parsed = _parse_label(name)
        head = ALIASES.get(head, head)
        if head not in ESTIMATORS:
            raise ValueError(f"unknown estimator {head!r}; choose one of: "
                             f"{', '.join(sorted(set(ESTIMATORS) | set(ALIASES)))}.")
        base = ESTIMATORS[head]
        options = {**parsed, **options}
    if not options:
        return base
    own = {name for name, *_ in base.identity.settings}
    settings = dict(base.settings)
    warmup = base.warmup_batches
    for option, value in options.items():
        if option in own:
            settings[option] = _setting_value(base.identity, option, value)
        elif option == WARMUP:
            warmup = value  # checked by the Estimator, against its merged options
        elif option not in OPTIONS:
            raise ValueError(_unknown_option(base.identity, option))
        elif value not in OPTIONS[option]:
            raise ValueError(f"{option} must be one of {', '.join(OPTIONS[option])}, got "
                             f"{value!r}.")
    merged = {**{k: getattr(base, k) for k in OPTIONS},
              **{k: v for k, v in options.items() if k in OPTIONS}}
    _check_combination(base.identity, merged)
    return Estimator(base.identity, **merged, settings=tuple(settings.items()),
                     warmup_batches=warmup)


WARMUP = "warmup_batches"
"""The option of a learned estimator that fixes its state updates before it is measured
(``relax(warmup_batches=300)``): in its label, so a grid can sweep it."""


def _warmup_value(estimator, value) -> int:
    """A learned estimator's own warm-up count, checked (one sentence otherwise)."""
    number = value
    if isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            number = None
    if isinstance(number, (bool, np.bool_)) or not isinstance(number, (int, np.integer)) \
            or number < 0:
        raise ValueError(f"warmup_batches of {estimator.identity.name} must be an integer "
                         f">= 0 (state updates before it is measured), got {value!r}.")
    if not estimator.stateful:
        raise NotApplicableError(
            f"{estimator.identity.name} is stateless: it has no state to warm up, so it takes "
            "no warmup_batches (learned estimators such as relax, rebar_learned or a learned "
            "control variate do).")
    return int(number)


def _unknown_option(identity: Identity, option: str) -> str:
    own = [name for name, *_ in identity.settings]
    learned = [WARMUP] if identity.init is not None else []
    return (f"unknown estimator option {option!r} for {identity.name}; its options are "
            f"{', '.join(OPTIONS)}" + (f", {', '.join(own + learned)}" if own or learned
                                       else "") + ".")


def _setting_value(identity: Identity, name: str, value) -> float:
    """A setting as a float, checked against its range (one sentence otherwise)."""
    _, _, meaning, low, *kind = next(entry for entry in identity.settings if entry[0] == name)
    number = value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        number = value.item()
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, (bool, np.bool_)) or not isinstance(number, (int, float, np.number)) \
            or not np.isfinite(number) or (low is not None and number <= low):
        allowed = f"a number above {low:g}" if low is not None else "a finite number"
        raise ValueError(f"{name} ({meaning}) of {identity.name} must be {allowed}, got "
                         f"{value!r}.")
    if kind == ["whole"] and not float(number).is_integer():
        raise ValueError(f"{name} ({meaning}) of {identity.name} must be a whole number, got "
                         f"{value!r}.")
    if kind == ["flag"] and number not in (0, 1):
        raise ValueError(f"{name} ({meaning}) of {identity.name} must be 0 or 1, got "
                         f"{value!r}.")
    return float(number)


def _format(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _parse_label(text: str):
    if "[" in text or "]" in text:
        raise ValueError(f"estimator label {text!r}: a label names one estimator, so its "
                         "options take one value each; sweep a setting with a grid table "
                         "such as {name = \"gumbel_softmax\", temperature = [0.1, 0.5]}.")
    match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*", text)
    if not match:
        raise ValueError(f"unknown estimator {text!r}; write a name such as 'score_function' "
                         "or a label such as 'score_function(control_variate=delta)'.")
    options = {}
    for part in filter(None, (p.strip() for p in (match.group(2) or "").split(","))):
        key, equals, value = part.partition("=")
        if not equals:
            raise ValueError(f"estimator label {text!r}: option {part!r} must read key=value.")
        options[key.strip()] = value.strip()
    return match.group(1), options


def _check_combination(identity: Identity, options: dict) -> None:
    label = identity.name
    if options["sampling"] not in identity.samplings:
        raise NotApplicableError(
            f"{label} does not combine with sampling={options['sampling']}; it takes "
            f"sampling={' or '.join(identity.samplings)}.")
    control = CONTROL_VARIATES[options["control_variate"]]
    if identity.form not in control.forms:
        takes = [name for name, other in CONTROL_VARIATES.items() if identity.form in other.forms]
        raise NotApplicableError(
            f"{label} does not combine with control_variate={control.name}; "
            f"it takes control_variate={' or '.join(takes)}.")
    if options["sampling"] not in control.samplings:
        raise NotApplicableError(
            f"control_variate={control.name} takes sampling="
            f"{' or '.join(control.samplings)}, not {options['sampling']}"
            + (" (it builds its baseline from the other draws of the batch, which must be "
               "independent)" if control.min_batch > 1 else "") + ".")


def get(name) -> Estimator:
    """The registered estimator ``name`` (see :func:`get_estimator`)."""
    return get_estimator(name)


for _identity in IDENTITIES.values():
    register(Estimator(_identity))
for _preset, (_head, _options) in PRESETS.items():
    register(get_estimator(_head, **_options), _preset)

__all__ = ["ALIASES", "DEFAULTS", "ESTIMATORS", "Estimator", "NotApplicableError", "OPTIONS",
           "PRESETS", "get", "get_estimator", "register", "register_control_variate",
           "unregister_control_variate"]

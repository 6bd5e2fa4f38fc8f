"""Problem names in grid files: built-ins and factories in the user's own code.

A grid's ``[[problems]]`` entry names its problem one of three ways:

* a registered problem: ``name = "gaussian_cos"`` (``gradvar list`` shows them);
* a factory in a Python file: ``name = "my_problems.py:logistic"``; the path is relative
  to the grid file's folder (then to the current directory), or absolute;
* a factory in an importable module: ``name = "my_package.problems:logistic"``.

A factory is any callable returning an :class:`estimators.Problem`; the entry's other
keys are its keyword arguments (numbers, strings or booleans; a list sweeps them), checked
against its signature. Files are imported once per process, under a module name derived
from their path, so their problems can be pickled by reference and reused by reports.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np

import estimators as E


class ProblemSpecError(ValueError):
    """A problem name cannot be resolved to a factory; the message says why."""


_modules: dict[str, object] = {}


def is_user(spec: str) -> bool:
    return isinstance(spec, str) and ":" in spec


def factory(spec: str, base_dir: str | Path | None = None):
    """The factory behind ``spec`` (see the module docstring).

    Raises:
      ProblemSpecError: unknown name, missing file or module, import failure, or a
        missing or non-callable attribute.
    """
    if not isinstance(spec, str) or not spec:
        raise ProblemSpecError(f"a problem name must be a non-empty string, got {spec!r}.")
    if not is_user(spec):
        try:
            return E.problems.factory(spec)
        except ValueError as error:
            raise ProblemSpecError(f"{error} A factory of your own is named "
                                   "'file.py:function' or 'package.module:function'.") from None
    location, _, attribute = spec.rpartition(":")
    if not location or not attribute.isidentifier():
        raise ProblemSpecError(f"problem {spec!r}: write 'file.py:function' or "
                               "'package.module:function'.")
    module = _load_file(location, base_dir, spec) if location.endswith(".py") \
        else _load_module(location, base_dir, spec)
    found = getattr(module, attribute, None)
    if found is None:
        raise ProblemSpecError(f"problem {spec!r}: {location} defines no {attribute!r}.")
    if not callable(found):
        raise ProblemSpecError(f"problem {spec!r}: {location}:{attribute} is not callable; "
                               "it must be a function returning an estimators.Problem.")
    return found


def parameters(spec: str, base_dir=None) -> dict:
    """The keyword arguments the factory takes, with their defaults (None: required)."""
    return E.problems.signature_defaults(factory(spec, base_dir))


def get(spec: str, kwargs: dict, base_dir=None, private: bool = False) -> E.Problem:
    """The problem ``spec`` built with ``kwargs`` (cached: the same object each time;
    ``private``: this thread's own instance, as :func:`estimators.problems.build`).

    Raises:
      ProblemSpecError: as :func:`factory`; ValueError/TypeError: bad arguments, or a
        factory that fails or does not return a Problem.
    """
    build = factory(spec, base_dir)
    try:
        return E.problems.build(spec, build, dict(kwargs), private)
    except (ValueError, TypeError) as error:
        raise ProblemSpecError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - a user's factory may raise anything
        raise ProblemSpecError(f"problem {spec!r}: the factory raised "
                               f"{type(error).__name__}: {_first_line(error)}") from None


def source_file(spec: str, base_dir=None) -> Path | None:
    """The file a user factory lives in (None for built-ins), for recording with a run."""
    if not is_user(spec):
        return None
    module = sys.modules.get(getattr(factory(spec, base_dir), "__module__", ""), None)
    location = getattr(module, "__file__", None)
    return Path(location).resolve() if location else None


def _candidates(location: str, base_dir) -> list[Path]:
    path = Path(location).expanduser()
    if path.is_absolute():
        return [path]
    bases = [Path(base_dir)] if base_dir else []
    found = []
    for candidate in [base / path for base in bases] + [Path.cwd() / path]:
        if candidate.resolve() not in [c.resolve() for c in found]:
            found.append(candidate)
    return found


def _load_file(location: str, base_dir, spec: str):
    for candidate in _candidates(location, base_dir):
        if candidate.is_file():
            path = candidate.resolve()
            break
    else:
        where = " or ".join(str(c) for c in _candidates(location, base_dir))
        raise ProblemSpecError(f"problem {spec!r}: no file {where}.")
    # Keyed by content as well as path: a long-lived process (a Dask worker) must not keep
    # running a problem file that was edited since it first imported it.
    key = str(path) + ":" + hashlib.sha256(path.read_bytes()).hexdigest()
    if key not in _modules:
        name = "gradvar_user_" + path.stem + "_" + hashlib.sha1(key.encode()).hexdigest()[:8]
        loader_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as error:  # noqa: BLE001 - the user's file may raise anything
            del sys.modules[name]
            raise ProblemSpecError(f"problem {spec!r}: importing {path} failed with "
                                   f"{type(error).__name__}: {_first_line(error)}") from None
        _modules[key] = module
    return _modules[key]


def _load_module(location: str, base_dir, spec: str):
    extra = [str(Path(base_dir).resolve())] if base_dir else []
    extra.append(str(Path.cwd()))
    added = [p for p in extra if p not in sys.path]
    sys.path[:0] = added
    try:
        return _current(importlib.import_module(location))
    except ModuleNotFoundError as error:
        raise ProblemSpecError(f"problem {spec!r}: no module {error.name!r} (looked on the "
                               "Python path, in the grid's folder and in the current "
                               "directory).") from None
    except Exception as error:  # noqa: BLE001 - the user's module may raise anything
        raise ProblemSpecError(f"problem {spec!r}: importing {location} failed with "
                               f"{type(error).__name__}: {_first_line(error)}") from None
    finally:
        for path in added:
            if path in sys.path:
                sys.path.remove(path)


_digests: dict[str, str] = {}


def _current(module):
    """``module``, re-executed if its file changed since this process imported it (a
    long-lived Dask worker would otherwise keep running the old code)."""
    location = getattr(module, "__file__", None)
    if not location or not Path(location).is_file():
        return module
    digest = hashlib.sha256(Path(location).read_bytes()).hexdigest()
    previous = _digests.setdefault(module.__name__, digest)
    if previous != digest:
        module = importlib.reload(module)
        _digests[module.__name__] = digest
    return module


def _first_line(error) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class OnProblem:
    """A mixin for records of work on a problem (a grid's cells, its training runs): from
    their fields ``problem`` (a spec), ``kwargs``, ``theta`` and ``base_dir``, the problem
    object and θ as a validated array, computed once per process and not sent to another
    (a Dask worker rebuilds them from the fields)."""

    _PROCESS_LOCAL: tuple[str, ...] = ("problem_obj",)
    """Cached attributes not sent to another process."""

    def __getstate__(self):
        return {name: value for name, value in self.__dict__.items()
                if name not in self._PROCESS_LOCAL}

    @functools.cached_property
    def problem_obj(self) -> E.Problem:
        return get(self.problem, dict(self.kwargs), self.base_dir or None)

    @functools.cached_property
    def theta_array(self) -> np.ndarray:
        """θ as a validated float64 array ``[d]`` (read-only); set by the grid's parser."""
        return self.problem_obj.validated_theta(self.theta)

    @functools.cached_property
    def theta_label(self) -> str:
        """θ as short text (``mean=1, std=0.5``): the table's ``theta_label``."""
        return self.problem_obj.parameters.describe(self.theta_array)


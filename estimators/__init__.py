"""gradvar's estimator library: Monte Carlo gradient estimators with ground truth.

>>> import estimators as E
>>> p = E.problems.get("seed_dependence")
>>> g = E.estimate("score_function", p, theta=-1.0, n_samples=1000, n_replicates=200)
>>> g.shape, p.true_gradient(-1.0).round(6)
((200, 1), array([0.48133]))
>>> e = E.get_estimator("score_function", control_variate="delta")
>>> E.estimate(e, p, -1.0, n_samples=100, n_replicates=50).shape
(50, 1)

Public names: :class:`Problem` (a user's problem: named scalars or parameter blocks,
scalar or vector events), :mod:`problems` (registry of built-in problems),
:data:`ESTIMATORS` (identities and presets), :func:`get_estimator` (an identity with
sampling and control-variate options), :mod:`protocol` (the one signature every
estimator's surrogate has, its state, and :func:`register_control_variate` to add a
control variate, learned ones included), :func:`estimate` and :func:`program` (the
compiled replicate engine), :mod:`truth` (values, gradients and per-sample variances,
labelled by how they were obtained), :mod:`objective` (what a training run needs besides
estimates: f at draws, a problem's penalty and diagnostics) and :mod:`lab` (the PPDL
lab's five functions).
``DEVICE`` is where programs run, ``RNG_ALG`` the bit generator of every draw,
:func:`standard_normal` the sampler of every normal draw (``_rng.normal``).

Importing the package applies gradvar's process-wide TensorFlow settings (quiet start-up,
one XLA pass off, Philox draws, exact gradients of xlogy); :mod:`estimators._runtime`
documents all four.
"""

from estimators import _runtime  # noqa: F401  (settings and the quiet TF import come first)
from estimators import lab, measure, memory, objective, problems, protocol, truth
from estimators._rng import normal as standard_normal
from estimators._runtime import DEVICE, GPUS, RNG_ALG
from estimators.control_variates import CONTROL_VARIATES, ControlVariate
from estimators.engine import BACKENDS, Program, estimate, program
from estimators.errors import BiasedEstimatorWarning, NotApplicableError
from estimators.estimator import (ESTIMATORS, OPTIONS, PRESETS, Estimator, get_estimator,
                                  register, register_control_variate)
from estimators.gradients import IDENTITIES, Identity
from estimators.problem import CostShapeError, Problem
from estimators.sampling import SAMPLINGS
from estimators.truth import TruthError

__version__ = "0.2.0"

__all__ = [
    "BACKENDS", "BiasedEstimatorWarning", "CONTROL_VARIATES", "ControlVariate",
    "CostShapeError", "DEVICE",
    "ESTIMATORS", "Estimator", "GPUS", "IDENTITIES", "Identity", "NotApplicableError",
    "OPTIONS", "PRESETS", "Problem", "Program", "RNG_ALG", "SAMPLINGS", "TruthError",
    "estimate", "get_estimator", "lab", "measure", "memory", "objective", "problems", "program",
    "protocol", "register", "register_control_variate", "standard_normal", "truth",
]

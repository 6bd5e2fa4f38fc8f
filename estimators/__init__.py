"""gradvar's estimator library: Monte Carlo gradient estimators with exact ground truth.

>>> import estimators as E
>>> p = E.problems.get("seed_dependence")
>>> g = E.estimate("score_function", p, theta=-1.0, n_samples=1000, n_replicates=200)
>>> g.shape, p.true_gradient(-1.0).round(6)
((200, 1), array([0.48133]))

Public names: :class:`Problem`, :mod:`problems` (registry of built-in problems),
:data:`ESTIMATORS` (registry of estimators), :func:`estimate`, :mod:`truth` (exact values,
gradients, per-sample variances) and :mod:`lab` (the PPDL lab's five functions).
"""

from estimators import _tf  # noqa: F401  (quiet TensorFlow import comes first)
from estimators import dependence, naive_mc, reparameterization, score_function, trapz  # noqa: F401  (register)
from estimators import antithetic, baselines, measure_valued, qmc  # noqa: F401  (register)
from estimators import lab, problems, truth
from estimators.engine import BACKENDS, BiasedEstimatorWarning, Program, estimate, program
from estimators.estimator import ESTIMATORS, Estimator, NotApplicableError, register
from estimators.problem import Problem

__version__ = "0.1.0"

__all__ = [
    "BACKENDS", "BiasedEstimatorWarning", "ESTIMATORS", "Estimator", "NotApplicableError",
    "Problem", "Program", "estimate", "lab", "problems", "program", "register", "truth",
]

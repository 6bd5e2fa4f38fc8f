"""Normal measures as location-scale families: the part shared by the estimators that
need p(x|θ) = N(loc(θ), scale(θ)²) (measure_valued, reparameterization_antithetic,
reparameterization_qmc).

These estimators write a draw as ``x = loc + scale · (θ-free noise)`` themselves, so θ
may enter loc and scale in any differentiable way: θ = (mean, std) in the gaussian_*
problems, loc only in seed_dependence (N(θ, 1)), neither in seed_fixed; autodiff
through ``loc`` and ``scale`` supplies the chain rule.
"""

from __future__ import annotations

import math

import numpy as np

from estimators._tf import tf, tfd
from estimators.estimator import NotApplicableError
from estimators.problem import Problem

SQRT_2PI = math.sqrt(2.0 * math.pi)


def location_scale(dist):
    """``(loc, scale)`` of a ``tfd.Normal`` as tensors that keep their path to θ."""
    return tf.convert_to_tensor(dist.loc), tf.convert_to_tensor(dist.scale)


def require_normal(estimator, problem: Problem, theta, batch_size: int) -> None:
    """``Estimator.extra_check``: p(x|θ) must be a ``tfd.Normal``."""
    del batch_size
    dist = problem.distribution(theta)
    if not isinstance(dist, tfd.Normal):
        raise NotApplicableError(
            f"{estimator.name} supports only a Normal p(x|θ) (θ may set its loc and scale, "
            f"as in gaussian_square/exp/cos or seed_dependence), but problem "
            f"'{problem.name}' has a {type(dist).__name__}.")


def standard_normal_density(z):
    """φ(z) in TensorFlow ops (for exact moments over noise)."""
    return tf.exp(-0.5 * z**2) / SQRT_2PI


def mirrored(t: float) -> list[np.ndarray]:
    """A kink at ``loc ± scale · v`` for a noise v > 0: ``v = |t|`` (``NoiseBlock.kinks``)."""
    return [np.array([abs(t)])]

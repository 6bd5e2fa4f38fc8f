"""Exceptions and warnings of the estimator library."""


class NotApplicableError(ValueError):
    """An estimator cannot be used on this problem, with these options or these sizes."""


class BiasedEstimatorWarning(UserWarning):
    """The estimator is biased on this problem (e.g. naive_mc when p depends on θ)."""

"""Per-sample variance of each estimator at fixed seeds, tracked across commits.

Not a timing: a change that breaks an estimator (a lost stop_gradient, a wrong
baseline) moves its variance, and asv's history shows the commit. The draws are fixed
(seed, backend), so on one machine the number changes only when the code does.
"""

from . import workloads


class PerSampleVariance:
    params = [list(workloads.ESTIMATORS)]
    param_names = ["estimator"]
    unit = "variance × n"

    def track_per_sample_variance(self, estimator):
        return workloads.per_sample_variance(estimator)

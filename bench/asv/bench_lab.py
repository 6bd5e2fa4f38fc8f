"""The lab's batches experiment: 1,000 estimates of 16 samples, loop vs one call.

The lab computes them with a Python loop of 1,000 eager calls; gradvar with one
compiled call of 1,000 replicates. The tracked number is the speedup (loop time /
median compiled call), measured in the same process. Target: at least 1,000x.
"""

from bench.lab_setups import batches_experiment


class BatchesExperiment:
    timeout = 120  # the eager loop alone takes a few seconds
    unit = "speedup (x)"

    def track_speedup(self):
        return batches_experiment()["speedup"]

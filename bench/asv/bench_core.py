"""Time of one compiled call of R = 1,000 estimates, and the RNG floor beside it.

Compilation and a warm-up call are in ``setup``, so the times are steady-state calls;
compilation cost is reported separately by the engine (``Program.compile_time_s``).
XLA should be at least as fast as graph mode at every shape here, and the core within a
small factor of the floor.

asv runs every parameter combination in a fresh process that imports TensorFlow (~5 s),
so the grids are kept lean: every estimator at one shape, batching on two of them, and
the GPU column only where there is a GPU (a skipped combination costs a process too).
"""

from . import jax_reference, workloads

N_REPLICATES = 1000
BACKENDS = ["xla", "graph"]
DEVICES = ["cpu", "gpu"] if workloads.GPUS else ["cpu"]


class Estimators:
    """Every estimator (workloads.ESTIMATORS), all n samples in one batch."""

    params = (list(workloads.ESTIMATORS), [1000], BACKENDS, DEVICES)
    param_names = ["estimator", "n_samples", "backend", "device"]

    def setup(self, estimator, n_samples, backend, device):
        self.run = workloads.core(estimator, n_samples, N_REPLICATES, None, backend, device)
        self.run()  # compiles

    def time_estimates(self, estimator, n_samples, backend, device):
        self.run()


class Batching:
    """The same n in batches: the batch loop runs inside the program (core idea 4)."""

    params = (["reparameterization", "score_function"], [1000], [100, 10], BACKENDS, DEVICES)
    param_names = ["estimator", "n_samples", "batch_size", "backend", "device"]

    def setup(self, estimator, n_samples, batch_size, backend, device):
        self.run = workloads.core(estimator, n_samples, N_REPLICATES, batch_size, backend,
                                  device)
        self.run()  # compiles

    def time_estimates(self, estimator, n_samples, batch_size, backend, device):
        self.run()


class RNGFloor:
    """n × R Philox normals drawn and summed per replicate: what the draws alone cost."""

    params = ([1000], BACKENDS, DEVICES)
    param_names = ["n_samples", "backend", "device"]

    def setup(self, n_samples, backend, device):
        self.run = workloads.rng_floor(n_samples, N_REPLICATES, backend, device)
        self.run()  # compiles

    def time_draw_and_reduce(self, n_samples, backend, device):
        self.run()


class Ratios:
    """The speed targets as ratios, tracked over commits so that a regression shows in
    asv's history whatever the machine's load that day: the core's time against the RNG
    floor's and, when JAX is installed (the ``compare`` extra), against the same
    estimator written in JAX, both sides timed alternately in one process (medians)."""

    params = (["reparameterization", "score_function"], ["rng_floor", "jax"])
    param_names = ["estimator", "against"]
    unit = "speed ratio (other's time / core's time)"
    rounds = 21

    def setup(self, estimator, against):
        if against == "jax":
            other = jax_reference.core(estimator, 1000, N_REPLICATES)  # skips without JAX
        else:
            other = workloads.rng_floor(1000, N_REPLICATES)
        core = workloads.core(estimator, 1000, N_REPLICATES)
        core_s, other_s = workloads.alternating_medians([core, other], self.rounds)
        self.ratio = other_s / core_s

    def track_speed_ratio(self, estimator, against):
        return self.ratio

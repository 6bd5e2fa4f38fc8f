"""Peak memory of the largest case: 10^8 samples × 10 replicates in batches of 10^5.

The batch loop runs inside the compiled program with one batch alive at a time, so
memory should stay O(batch_size · R) (shared/DESIGN.md, core idea 4): 10^6 floats per
batch, not 10^9. asv reports the process's peak resident set, which includes
TensorFlow itself (about 0.7 GB after import on CPU). Target: under 1.5 GB.
"""

from . import workloads


class LargestCase:
    timeout = 180  # one call takes about 10 s on a 2-core CPU, plus compilation

    def setup(self):
        # No warm-up call: peak memory is process-wide, so one more ~10 s call would
        # measure nothing new; compilation is part of what this case needs in memory.
        self.run = workloads.core("reparameterization", 10**8, 10, 10**5, "xla")

    def peakmem_reparameterization_1e8(self):
        self.run()

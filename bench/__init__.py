"""gradvar's harness: grids, runs, the results store, reports, the lab's setups and the
command line.

``bench`` imports ``estimators``, never the reverse. Importing ``bench`` itself is light
(no TensorFlow, no Dask), so ``gradvar --help`` answers at once.
"""

import os


def cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1

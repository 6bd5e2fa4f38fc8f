"""asv (airspeed velocity) benchmarks of gradvar: timing history per commit.

asv imports this directory as a package of its own (named ``asv`` inside its runner), so
modules here import each other relatively. What is measured:

* ``bench_core``: one compiled call of R = 1,000 estimates: every estimator × backend ×
  device, batching on two of them, and the RNG floor (the same Philox draws, reduced), so
  core / floor says what an estimator costs beyond its random numbers;
* ``bench_memory``: peak resident memory of the largest case (10^8 samples in batches);
* ``bench_variance``: per-sample variance at a fixed seed, per estimator: a change that
  breaks an estimator shows as a jump in history;
* ``bench_lab``: the lab's batches experiment, the Python loop against one compiled call.

Compilation and a warm-up call happen in ``setup``; ``time_`` methods only call. Run
``asv run --python=same --quick --show-stderr`` for a smoke run in the current
environment, ``asv run HEAD~5..HEAD`` for history (asv.conf.json at the repository root).
``workloads`` holds what the suite times (shared with tests/benchmarks/), and
``python -m bench.asv.figures`` prints the README's performance ratios from one process.
"""

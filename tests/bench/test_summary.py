"""How a table's rows were timed, as `gradvar show`, `gradvar run` and the report say it."""

import pandas as pd

from bench import schema
from bench.summary import how_timed, mixed_timing


def _rows(mode, workers, threads, n):
    return pd.DataFrame({"timing_mode": [mode] * n, "workers_on_host": [workers] * n,
                         "intra_op_threads": [threads] * n, "time_per_estimate_s": [1e-3] * n})


def test_a_serial_run_is_timed_alone_with_no_worker_count():
    frame = _rows("serial", 1, 2, 3)
    assert how_timed(frame) == ("alone, one cell at a time in one process, "
                                "2 TensorFlow thread(s) (3 rows)")
    assert mixed_timing(frame) is None


def test_a_run_resumed_with_other_workers_is_flagged():
    frame = pd.concat([_rows("exclusive", 2, 1, 4), _rows("serial", 1, 2, 1)])
    text = how_timed(frame)
    assert text.startswith("on Dask workers, one cell at a time per machine after the "
                           "statistics, statistics with 2 worker(s) on the machine")
    assert text.endswith("(4 rows); alone, one cell at a time in one process, "
                         "2 TensorFlow thread(s) (1 rows)")
    assert mixed_timing(frame).startswith("note: the rows were timed in different ways")


def test_tables_from_before_the_timing_columns_read_as_serial():
    old = schema.with_defaults(pd.DataFrame({"time_per_estimate_s": [1.0, 2.0]}))  # as read
    assert how_timed(old) == \
        "alone, one cell at a time in one process (2 rows)"

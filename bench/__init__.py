"""gradvar's harness: the lab's setups, the command line, and (soon) grids, runs and reports.

``bench`` imports ``estimators``, never the reverse.
"""

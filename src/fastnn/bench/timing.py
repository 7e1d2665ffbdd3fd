"""Timing: warm-up, calibration, and repetitions interleaved across contenders.

Interleaving (every contender's repetition k before anyone's k+1) spreads a shared machine's noise
bursts over all contenders instead of charging one, so the ratios of one run stay fair.
"""
import math
import time

import numpy as np


def summary(values):
    """{"median", "min", "max"} of a list of numbers."""
    return {"median": float(np.median(values)), "min": float(np.min(values)), "max": float(np.max(values))}


def round_robin(tasks, repeats, min_seconds, max_units=100, settle=0.0):
    """Time each task `repeats` times, interleaved. Returns {key: [seconds per unit, ...]} and the units.

    tasks: {key: (run, context)}: run(k) does k units of work (k epochs, k predict calls) inside `context()`,
    a context manager entered untimed (e.g. one that sets the thread count). One untimed warm-up unit per
    task sets k so that a timed repetition lasts about `min_seconds` (at most `max_units` units).
    settle: seconds to sleep before each timed run, so that the idle worker threads of the library timed
    before (OpenBLAS and OpenMP spin a while after a call) are asleep and leave the cores to this one.
    """
    units = {}
    for key, (run, context) in tasks.items():
        with context():
            start = time.perf_counter()
            run(1)
            elapsed = max(time.perf_counter() - start, 1e-9)
        units[key] = max(1, min(max_units, math.ceil(min_seconds / elapsed)))
    seconds = {key: [] for key in tasks}
    for _ in range(repeats):
        for key, (run, context) in tasks.items():
            with context():
                time.sleep(settle)
                start = time.perf_counter()
                run(units[key])
                seconds[key].append((time.perf_counter() - start) / units[key])
    return seconds, units

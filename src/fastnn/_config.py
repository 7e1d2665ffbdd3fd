"""The one owner of fastnn's thread count: every compiled kernel asks here."""
import os

from . import _threads

_num_threads = None


def _default_num_threads():
    # OpenMP's own default honours OMP_NUM_THREADS; never more than the processors we may run on.
    n = _threads.omp_max_threads()
    try:
        n = min(n, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        n = min(n, os.cpu_count() or 1)
    return max(1, n)


def get_num_threads():
    """Threads the compiled kernels use (1 when fastnn was built without OpenMP)."""
    if not _threads.openmp_enabled():
        return 1
    return _num_threads if _num_threads is not None else _default_num_threads()


def set_num_threads(n):
    """Set the threads every compiled kernel uses; None restores the default (OMP_NUM_THREADS or all cores)."""
    global _num_threads
    if n is None:
        _num_threads = None
        return
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"num_threads must be a positive integer, got {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, got {n}")
    _num_threads = n

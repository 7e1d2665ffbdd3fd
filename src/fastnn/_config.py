"""The one owner of fastnn's thread count: every compiled kernel asks here.

The count is OpenMP's own (omp_get_max_threads: OMP_NUM_THREADS, or what `set_num_threads` or
threadpoolctl's `threadpool_limits(user_api="openmp")` set), capped at the processors we may run on, so
threadpoolctl sees and controls it. While fastnn trains or predicts, the BLAS it calls (scipy's OpenBLAS, for
the products its own GEMM does not take) is held to the same count, so the two never add up.
"""
import contextlib
import os

from . import _threads

_controller = None


def _available_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def get_num_threads():
    """Threads the compiled kernels use (1 when fastnn was built without OpenMP)."""
    if not _threads.openmp_enabled():
        return 1
    return max(1, min(_threads.omp_max_threads(), _available_cpus()))


def set_num_threads(n):
    """Set the threads of every compiled kernel; None restores the default (OMP_NUM_THREADS or all cores)."""
    if n is None:
        n = int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or _available_cpus()
    elif isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"num_threads must be a positive integer, got {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, got {n}")
    if _threads.openmp_enabled():
        _threads.omp_set_threads(n)


@contextlib.contextmanager
def blas_threads(n):
    """Hold the BLAS libraries loaded in this process to at most n threads inside the block."""
    global _controller
    try:
        if _controller is None:
            from threadpoolctl import ThreadpoolController
            _controller = ThreadpoolController()
    except ImportError:  # threadpoolctl is a dependency; without it BLAS keeps its own count
        yield
        return
    blas = _controller.select(user_api="blas")
    if all(lib["num_threads"] <= n for lib in blas.info()):
        yield
        return
    with blas.limit(limits=n):
        yield

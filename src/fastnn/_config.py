"""The one owner of fastnn's thread count: every compiled kernel asks here.

The count is OpenMP's own (omp_get_max_threads: OMP_NUM_THREADS, or what `set_num_threads` or
threadpoolctl's `threadpool_limits(user_api="openmp")` set), capped at the processors we may run on, so
threadpoolctl sees and controls it. BLAS (scipy's OpenBLAS, for the products fastnn's own GEMM does not take)
runs inside fastnn's OpenMP threads, one stripe of the product per call (blas.pxd's gemm_striped), held to
one thread of its own while fastnn trains or predicts, so the two never add up.
"""
import contextlib
import os
import threading

from . import _threads

_controllers = None
_lock = threading.Lock()
_holders, _restore, _cap = 0, [], None   # blocks inside blas_threads now; the counts to put back; the cap


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


def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries loaded now (scipy's, which the kernels call, and
    NumPy's), found once: fastnn's extensions load scipy's BLAS when they are imported."""
    global _controllers
    if _controllers is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # threadpoolctl is a dependency; without it BLAS keeps its own count
            _controllers = []
        else:
            _controllers = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    return _controllers


@contextlib.contextmanager
def blas_threads(n):
    """Hold the BLAS libraries to at most n threads inside the block. The compiled kernels call BLAS from their
    own OpenMP threads and hold it to 1 (single_threaded_blas): a BLAS pool spinning beside fastnn's threads
    stalls them. The NumPy reference backend calls BLAS from one thread and holds it to the model's count.
    Nested and concurrent blocks are counted: the first to enter records the counts, each lowers them to its n
    (the smallest wins), and the last to leave restores them."""
    global _holders, _restore, _cap
    with _lock:
        if _holders == 0:
            _restore, _cap = [(lib, lib.get_num_threads() or 0) for lib in _blas_libraries()], None
        if _cap is None or n < _cap:
            for lib, t in _restore:
                if t > n:
                    lib.set_num_threads(n)
            _cap = n
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                for lib, t in _restore:
                    if t > _cap:
                        lib.set_num_threads(t)
                _restore = []


def single_threaded_blas():
    """BLAS held to one thread: the compiled kernels' setting (blas_threads)."""
    return blas_threads(1)

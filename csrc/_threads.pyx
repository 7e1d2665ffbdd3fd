"""What the OpenMP runtime says: whether fastnn was built with it, and its default thread count."""
from threads cimport FASTNN_OPENMP, omp_get_max_threads, omp_get_num_procs, omp_set_num_threads


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(FASTNN_OPENMP)


def omp_max_threads():
    """OpenMP's default team size (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return omp_get_max_threads()


def omp_num_procs():
    """Processors OpenMP may use; 1 without OpenMP."""
    return omp_get_num_procs()


def omp_set_threads(int n):
    """Set OpenMP's default team size for the calling thread (what threadpoolctl reads and sets too)."""
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    omp_set_num_threads(n)

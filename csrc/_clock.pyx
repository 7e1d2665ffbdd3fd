"""The clock the cores run at, measured by a chain of dependent integer adds (clock_probe.h): the benchmark's
FMA limit needs the real clock, and a VM's /proc/cpuinfo gives only the base one."""
from cython.parallel cimport parallel, threadid
from libc.stdlib cimport malloc, free
from threads cimport omp_get_num_threads

cdef extern from "clock_probe.h" nogil:
    const int FNN_HAVE_CLOCK_PROBE
    const int FNN_CHAIN_ADDS
    double fnn_add_chain_ghz(long turns)


def add_chain_ghz(int threads=1, long adds=200_000_000):
    """Each thread's clock in GHz, the `threads` of one OpenMP region each timing `adds` dependent adds at once
    (all busy: the clock of that many loaded cores); None where the probe is not built (not GCC/Clang on
    x86-64/AArch64). Fewer values than threads when OpenMP gave fewer (or is absent)."""
    cdef long turns = adds // FNN_CHAIN_ADDS
    cdef double* ghz
    cdef int t = 0, got = 1
    cdef int* team = &got       # written through a pointer: shared with the region, not a private copy
    if threads < 1 or adds < FNN_CHAIN_ADDS:
        raise ValueError(f"add_chain_ghz: need threads >= 1 and adds >= {FNN_CHAIN_ADDS}, got {threads}, {adds}")
    if not FNN_HAVE_CLOCK_PROBE:
        return None
    ghz = <double*>malloc(threads * sizeof(double))
    if ghz == NULL:
        raise MemoryError()
    try:
        with nogil, parallel(num_threads=threads):
            t = threadid()
            ghz[t] = fnn_add_chain_ghz(turns)
            if t == 0:
                team[0] = omp_get_num_threads()
        return [ghz[t] for t in range(got) if ghz[t] > 0]
    finally:
        free(ghz)

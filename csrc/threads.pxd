cdef extern from "fastnn_omp.h" nogil:
    const int FASTNN_OPENMP
    int omp_get_max_threads()
    int omp_get_num_threads()
    int omp_get_num_procs()
    void omp_set_num_threads(int n)


cdef inline void thread_share(int tid, int nth, Py_ssize_t n, Py_ssize_t align, Py_ssize_t* lo,
                              Py_ssize_t* hi) noexcept nogil:
    """Thread tid's part [lo, hi) of n items shared out over nth threads, its ends multiples of align (but n)"""
    lo[0] = (tid * n // nth) // align * align
    hi[0] = n if tid == nth - 1 else ((tid + 1) * n // nth) // align * align

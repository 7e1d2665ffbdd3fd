cdef extern from "fastnn_omp.h" nogil:
    const int FASTNN_OPENMP
    int omp_get_max_threads()
    int omp_get_num_threads()
    int omp_get_num_procs()
    void omp_set_num_threads(int n)

/* OpenMP behind one shim: with FASTNN_NO_OPENMP (no -fopenmp) every call is a serial no-op.
   Cython's prange already degrades to a serial loop without _OPENMP; this covers the runtime calls. */
#ifndef FASTNN_OMP_H
#define FASTNN_OMP_H
#ifdef _OPENMP
#include <omp.h>
#define FASTNN_OPENMP 1
#else
#define FASTNN_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_procs(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline void omp_set_num_threads(int n) { (void)n; }
#endif

/* Every thread of the enclosing parallel region waits here for the others (an orphaned barrier: it binds to
   whichever region calls it; outside any, or without OpenMP, it returns at once). */
static inline void fnn_barrier(void)
{
#ifdef _OPENMP
#pragma omp barrier
#endif
}
#endif

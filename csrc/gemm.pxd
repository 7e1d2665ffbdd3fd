# fastnn's own GEMM (csrc/gemm.h): C = alpha op(A) op(B) + beta C, row-major, float32, OpenMP over tiles of C,
# the micro-kernel chosen at run time (AVX-512F, AVX2+FMA or portable; FASTNN_CPU=avx2 / portable force those).
# float64 always goes to BLAS: the dense layers train in float32, and float64 is the checking dtype.
# Legend: op(A) is M x K, op(B) is K x N, C is M x N.
from cython cimport floating
from libc.stddef cimport ptrdiff_t
from blas cimport gemm, gemm_striped


cdef extern from "gemm.h" nogil:
    ctypedef void (*fnn_prep_fn)(void* ctx, int k0, int kn, int j0, int n) noexcept nogil
    ctypedef void (*fnn_epi_fn)(void* ctx, float* C, ptrdiff_t ldc, int i0, int j0, int m, int n) noexcept nogil
    void fnn_gemm_init()
    const char* fnn_cpu_path()
    int fnn_own_wide()
    int fnn_sgemm_hooked(int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float* A, ptrdiff_t lda, const float* B, ptrdiff_t ldb,
                         float beta, float* C, ptrdiff_t ldc, int nthreads,
                         fnn_prep_fn prep, void* prep_ctx, fnn_epi_fn epi, void* epi_ctx)
    int fnn_part_by_cols(int M, int N, int nth)
    void fnn_part_share(int tid, int nth, int M, int N, int* i0, int* m, int* j0, int* n)
    int fnn_sgemm_part(int tid, int nth, int trans_a, int trans_b, int M, int N, int K, float alpha,
                       const float* A, ptrdiff_t lda, const float* B, ptrdiff_t ldb, float beta, float* C,
                       ptrdiff_t ldc, fnn_prep_fn prep, void* prep_ctx, fnn_epi_fn epi, void* epi_ctx)
    enum: FNN_NARROW_N, FNN_NARROW_M
    int fnn_sgemm_narrow(int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float* A, ptrdiff_t lda, const float* B, ptrdiff_t ldb,
                         float beta, float* C, ptrdiff_t ldc)
    int fnn_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float* A, ptrdiff_t lda, const float* B, ptrdiff_t ldb,
                  float beta, float* C, ptrdiff_t ldc, int nthreads)


cdef inline bint narrow(int n) noexcept nogil:
    """True for a C too narrow for the 16-column micro-tile: own_gemm computes its transpose (fnn_sgemm_narrow)"""
    return n < FNN_NARROW_N


cdef inline void own_gemm(bint trans_a, bint trans_b, int m, int n, int k,
                          floating alpha, const floating* A, int lda,    # IN  op(A) is m x k
                          const floating* B, int ldb,                    # IN  op(B) is k x n
                          floating beta, floating* C, int ldc,           # OUT m x n
                          int num_threads) noexcept nogil:
    """C = alpha op(A) op(B) + beta C: fastnn's GEMM for float32 (BLAS if out of memory), BLAS for float64. A narrow
    C goes on the calling thread, in blocks of FNN_NARROW_M rows (each element's bits depend on k alone)."""
    cdef int i0 = 0, rows
    cdef const float* a
    if floating is float:
        if narrow(n):
            while i0 < m:
                rows = min(<int>FNN_NARROW_M, m - i0)
                a = A + i0 if trans_a else A + <Py_ssize_t>i0 * lda
                if fnn_sgemm_narrow(trans_a, trans_b, rows, n, k, alpha, a, lda, B, ldb, beta,
                                    C + <Py_ssize_t>i0 * ldc, ldc) != 0:      # out of memory: this block by BLAS
                    gemm(trans_a, trans_b, rows, n, k, alpha, a, lda, B, ldb, beta, C + <Py_ssize_t>i0 * ldc, ldc)
                i0 += rows
            return
        if fnn_sgemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, num_threads) == 0:
            return
    gemm_striped(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, num_threads)

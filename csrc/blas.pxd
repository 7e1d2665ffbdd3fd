# BLAS from scipy (no vendored BLAS): one fused, row-major GEMM on raw pointers, and the same GEMM shared out
# over fastnn's threads.
# Legend: op(A) is M x K, op(B) is K x N, C is M x N; all row-major.
from cython cimport floating
from cython.parallel cimport prange
from libc.stddef cimport ptrdiff_t
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* A, int lda,    # IN  op(A) is m x k
                      const floating* B, int ldb,                    # IN  op(B) is k x n
                      floating beta, floating* C, int ldc            # OUT m x n
                      ) noexcept nogil:
    """C = alpha op(A) op(B) + beta C, all row-major."""
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands, keep the flags.
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda, &beta, C, &ldc)


cdef enum:
    STRIPE = 512                    # rows or columns of C per BLAS call once a product is split
    STRIPED_MIN_WORK = 1 << 17      # m n k below this: one call (a fork/join would cost more than it saves)


cdef inline void gemm_striped(bint trans_a, bint trans_b, int m, int n, int k,
                              floating alpha, const floating* A, int lda,    # IN  op(A) is m x k
                              const floating* B, int ldb,                    # IN  op(B) is k x n
                              floating beta, floating* C, int ldc,           # OUT m x n
                              int num_threads) noexcept nogil:
    """gemm() on fastnn's threads: C in stripes of STRIPE columns (or rows, if C has more rows), the threads
    sharing them out, one BLAS call (on the calling thread) per stripe."""
    # BLAS's own thread pool would spin beside fastnn's OpenMP team and stall its barriers (bench/GEMM.md), so
    # fastnn holds BLAS to 1 thread (_config.single_threaded_blas) and is the only owner of threads. The stripes depend
    # on the shape alone: OpenBLAS's bits depend on the shape of each call, and must not on the thread count.
    cdef bint by_cols = n >= m
    cdef int ext = n if by_cols else m
    cdef int s, nstripes = (ext + STRIPE - 1) // STRIPE
    cdef ptrdiff_t lo
    cdef int width
    if <double>m * n * k < STRIPED_MIN_WORK or nstripes == 1:
        gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
        return
    for s in prange(nstripes, num_threads=min(num_threads, nstripes), schedule='static'):
        lo = <ptrdiff_t>s * STRIPE
        width = min(<int>STRIPE, ext - <int>lo)
        if by_cols:      # columns lo.. of C: of op(B), which are B's rows when B is transposed
            gemm(trans_a, trans_b, m, width, k, alpha, A, lda, B + (lo * ldb if trans_b else lo), ldb,
                 beta, C + lo, ldc)
        else:            # rows lo.. of C: of op(A), which are A's columns when A is transposed
            gemm(trans_a, trans_b, width, n, k, alpha, A + (lo if trans_a else lo * lda), lda, B, ldb,
                 beta, C + lo * ldc, ldc)

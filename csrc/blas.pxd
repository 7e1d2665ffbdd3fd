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


cdef inline int stripe_count(int m, int n, int k) noexcept nogil:
    """How many stripes gemm_striped cuts an m x n x k product into (1: one call)"""
    cdef int ext = n if n >= m else m
    if <double>m * n * k < STRIPED_MIN_WORK:
        return 1
    return (ext + STRIPE - 1) // STRIPE


cdef inline void stripe_block(int s, int m, int n, int* i0, int* rows, int* j0, int* cols) noexcept nogil:
    """Stripe s of C (m x n): rows [i0, i0 + rows) x columns [j0, j0 + cols). Columns when C is at least as wide
    as tall, else rows; a function of the shape alone (OpenBLAS's bits depend on each call's shape)."""
    i0[0], rows[0], j0[0], cols[0] = 0, m, 0, n
    if n >= m:
        j0[0] = s * STRIPE
        cols[0] = min(<int>STRIPE, n - j0[0])
    else:
        i0[0] = s * STRIPE
        rows[0] = min(<int>STRIPE, m - i0[0])


cdef inline void gemm_stripe(int s, int nstripes, bint trans_a, bint trans_b, int m, int n, int k,
                             floating alpha, const floating* A, int lda,    # IN  op(A) is m x k
                             const floating* B, int ldb,                    # IN  op(B) is k x n
                             floating beta, floating* C, int ldc            # OUT m x n
                             ) noexcept nogil:
    """Stripe s of nstripes (stripe_count) of C = alpha op(A) op(B) + beta C: one BLAS call on the caller's thread"""
    cdef int i0, rows, j0, cols
    if nstripes == 1:
        gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
        return
    stripe_block(s, m, n, &i0, &rows, &j0, &cols)
    # op(A)'s rows i0.. are A's columns when A is transposed; op(B)'s columns j0.., B's rows when transposed
    gemm(trans_a, trans_b, rows, cols, k, alpha, A + (i0 if trans_a else <ptrdiff_t>i0 * lda), lda,
         B + (<ptrdiff_t>j0 * ldb if trans_b else j0), ldb, beta, C + <ptrdiff_t>i0 * ldc + j0, ldc)


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
    cdef int s, nstripes = stripe_count(m, n, k)
    if nstripes == 1:
        gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
        return
    for s in prange(nstripes, num_threads=min(num_threads, nstripes), schedule='static'):
        gemm_stripe(s, nstripes, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)

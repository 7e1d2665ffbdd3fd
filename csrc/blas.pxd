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
    STRIPE_MAX = 1024               # rows or columns of C per BLAS call, at most, once a product is split
    STRIPE_MIN_SPLIT = 512          # C at least this wide (or tall) is split in at least 2 stripes
    STRIPE_ALIGN = 16               # stripe widths are multiples of this (64-byte float32 column blocks)
    STRIPED_MIN_WORK = 1 << 17      # m n k below this: one call (a fork/join would cost more than it saves)


cdef inline int stripe_width(int m, int n, int k) noexcept nogil:
    """The rows or columns of C (m x n) per stripe of gemm_striped, a function of the shape alone: C's longer side
    in near-equal stripes of at most STRIPE_MAX, at least 2 from STRIPE_MIN_SPLIT up (so that 2 threads share
    them evenly); 0: one call"""
    # Each stripe packs all of op(A) (or op(B)) again: W4's 4096-wide products cut in 8 stripes of 512 spent
    # 2.5-3% of the step's samples re-packing (bench/RESULTS.md); 4 of 1024 halve that
    cdef int ext = n if n >= m else m, count
    if <double>m * n * k < STRIPED_MIN_WORK or ext < STRIPE_MIN_SPLIT:
        return 0
    count = max(2, (ext + STRIPE_MAX - 1) // STRIPE_MAX)
    return ((ext + count - 1) // count + STRIPE_ALIGN - 1) // STRIPE_ALIGN * STRIPE_ALIGN


cdef inline int stripe_count(int m, int n, int k) noexcept nogil:
    """How many stripes gemm_striped cuts an m x n x k product into (1: one call)"""
    cdef int ext = n if n >= m else m, width = stripe_width(m, n, k)
    return 1 if width == 0 else (ext + width - 1) // width


cdef inline void stripe_block(int s, int m, int n, int k, int* i0, int* rows, int* j0, int* cols) noexcept nogil:
    """Stripe s of C (m x n, of an m x n x k product): rows [i0, i0 + rows) x columns [j0, j0 + cols). Columns
    when C is at least as wide as tall, else rows; a function of the shape alone (OpenBLAS's bits depend on each
    call's shape)."""
    cdef int width = stripe_width(m, n, k)
    i0[0], rows[0], j0[0], cols[0] = 0, m, 0, n
    if width == 0:
        return
    if n >= m:
        j0[0] = s * width
        cols[0] = min(width, n - j0[0])
    else:
        i0[0] = s * width
        rows[0] = min(width, m - i0[0])


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
    stripe_block(s, m, n, k, &i0, &rows, &j0, &cols)
    # op(A)'s rows i0.. are A's columns when A is transposed; op(B)'s columns j0.., B's rows when transposed
    gemm(trans_a, trans_b, rows, cols, k, alpha, A + (i0 if trans_a else <ptrdiff_t>i0 * lda), lda,
         B + (<ptrdiff_t>j0 * ldb if trans_b else j0), ldb, beta, C + <ptrdiff_t>i0 * ldc + j0, ldc)


cdef inline void gemm_striped(bint trans_a, bint trans_b, int m, int n, int k,
                              floating alpha, const floating* A, int lda,    # IN  op(A) is m x k
                              const floating* B, int ldb,                    # IN  op(B) is k x n
                              floating beta, floating* C, int ldc,           # OUT m x n
                              int num_threads) noexcept nogil:
    """gemm() on fastnn's threads: C in stripes (stripe_width) of columns (or rows, if C has more rows), the
    threads sharing them out, one BLAS call (on the calling thread) per stripe."""
    # BLAS's own thread pool would spin beside fastnn's OpenMP team and stall its barriers (bench/GEMM.md), so
    # fastnn holds BLAS to 1 thread (_config.single_threaded_blas) and is the only owner of threads. The stripes depend
    # on the shape alone: OpenBLAS's bits depend on the shape of each call, and must not on the thread count.
    cdef int s, nstripes = stripe_count(m, n, k)
    if nstripes == 1:
        gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
        return
    for s in prange(nstripes, num_threads=min(num_threads, nstripes), schedule='static'):
        gemm_stripe(s, nstripes, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)

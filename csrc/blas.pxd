# BLAS from scipy (no vendored BLAS): one fused, row-major GEMM on raw pointers.
from cython cimport floating
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

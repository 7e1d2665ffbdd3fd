# Dense (fully connected) layer kernels.
# Legend: N batch rows, I in-features, O out-features. All arrays row-major (C order).
# W is (I, O) as scikit-learn's coefs_. Backward accumulates (+=) into dx, dW, db;
# the caller zeroes the flat gradient buffer once per step.
from cython cimport floating
from libc.string cimport memcpy
from blas cimport gemm


cdef inline void dense_forward(floating* out,                         # OUT (N, O)
                               const floating* x,                     # IN  (N, I)
                               const floating* W,                     # IN  (I, O)
                               const floating* b,                     # IN  (O,)
                               int N, int I, int O) noexcept nogil:
    """out = x @ W + b"""
    cdef int n
    for n in range(N):          # seed every row with the bias, then one GEMM with beta = 1
        memcpy(out + <Py_ssize_t>n * O, b, O * sizeof(floating))
    gemm(False, False, N, O, I, 1, x, I, W, O, 1, out, O)


cdef inline void dense_backward(floating* dx,                         # OUT (N, I) or NULL, +=
                                floating* dW,                         # OUT (I, O) +=
                                floating* db,                         # OUT (O,)   +=
                                const floating* dout,                 # IN  (N, O)
                                const floating* x,                    # IN  (N, I) saved by forward
                                const floating* W,                    # IN  (I, O)
                                int N, int I, int O) noexcept nogil:
    """dW += x^T dout;  db += sum_rows(dout);  dx += dout W^T (skipped when dx is NULL)"""
    cdef int n, o
    cdef const floating* row
    gemm(True, False, I, O, N, 1, x, I, dout, O, 1, dW, O)
    for n in range(N):          # rows in order, so the sum is the same whatever the thread count
        row = dout + <Py_ssize_t>n * O
        for o in range(O):
            db[o] += row[o]
    if dx != NULL:
        gemm(False, True, N, I, O, 1, dout, O, W, O, 1, dx, I)

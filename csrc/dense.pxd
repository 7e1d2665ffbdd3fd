# Dense (fully connected) layer kernels.
# Legend: N batch rows, I in-features, O out-features. All arrays row-major (C order).
# W is (I, O) as scikit-learn's coefs_. Backward accumulates (+=) into dx, dW, db (and dpre);
# the caller zeroes the flat gradient buffer once per step.
#
# The three products -- forward x W (N x O x I), dW = x^T dZ (I x O x N), dX = dZ W^T (N x I x O) -- go to
# fastnn's GEMM (gemm.h) or to BLAS, whichever measured faster for that shape (use_own_gemm below), and
# the fused kernels do their elementwise work inside fastnn's GEMM passes: the forward epilogue adds the
# bias and applies the activation to each finished tile of pre while it is in cache; the backward prologue
# forms dZ = dY f'(Z) (and db) just before dZ is packed for the dW product. Threads: fastnn's GEMM splits
# the output (C) and keeps the bits the same whatever the thread count (gemm.h); the BLAS path is float64
# and the shapes where BLAS wins.
from cython cimport floating
from libc.string cimport memcpy
from libc.stddef cimport ptrdiff_t
from blas cimport gemm, gemm_striped, gemm_stripe, stripe_count, stripe_block
from gemm cimport (fnn_sgemm_hooked, fnn_sgemm_part, fnn_part_share, fnn_part_by_cols, own_gemm, narrow,
                   fnn_own_wide)

from threads cimport thread_share

cdef extern from "fastnn_omp.h" nogil:
    void fnn_barrier()
from activations cimport (_forward_range, _backward_range, activation_forward, activation_backward,
                          IDENTITY, SILU)


# ---- dispatch by measurement (bench/gemm_crossover.py; the table is in bench/GEMM.md) ----
# Measured on a 2-core Zen 3 against scipy's OpenBLAS 0.3.31 (Haswell kernels), float32, 1 thread, at every
# product of W1-W4 (batch 32-256, predict 8192): fastnn's GEMM is as fast or faster (within ~5%) except
#   - N < 8 (W1's 3-class output): the 16-column micro-tile is mostly padding, and OpenBLAS wins by ~20%
#     (of well under a microsecond) -- except, since session 9, in the form A^T B (a narrow layer's dW), which
#     goes to fastnn's GEMM on its transpose (gemm.pxd's narrow / own_gemm, no hooks): 1.15-1.86x OpenBLAS at
#     16-1024 x 1-3 x 16-256 on a Zen 1 host, where the form A B (the forward) tied or lost (0.59-1.12x;
#     bench/narrow_gemm.py, bench/GEMM.md "Narrow products");
#   - the wide layers of W4 (N >= 1024 with K or M >= 1024): OpenBLAS keeps 5-15% more of the FMA peak once
#     the operands no longer fit in L2 -- on the AVX2 kernel. The AVX-512 kernel (fnn_own_wide) beat OpenBLAS's
#     Haswell kernels at every one of these on a Zen 5 host, 1.09-1.77x on 2 threads, so there they stay ours.
# Threads: a 2-thread call of fastnn's GEMM pays a fork/join and two barriers (the shared packed B block).
# On this 2-vCPU machine, idle (bench/GEMM.md, "Threads"), 2 threads gained 1.15-1.6x from 4e6 multiply-adds
# up (W3 at batch 128), and were as often slower as faster at 5e5 (W2: 24 us against 16 for dW). Whenever
# another process held a core, a barrier waited milliseconds for a descheduled thread, so the small products
# run on one thread. (BLAS products are split without barriers: blas.pxd's gemm_striped.)

cdef enum:
    SERIAL_MAX_WORK = 1 << 22   # m n k below this: one thread
    BLAS_MIN_N = 1024           # N and (K or M) at least this: BLAS (but for fnn_own_wide)


cdef inline bint use_own_gemm(int m, int n, int k, bint trans_a, bint trans_b, int num_threads) noexcept nogil:
    """True where fastnn's float32 GEMM over C's micro-tiles (with its hooks) measured faster than OpenBLAS's sgemm
    for C (m x n) = (m x k)(k x n); False for a narrow C (n < 8): see narrow_own"""
    if narrow(n):
        return False
    if n >= BLAS_MIN_N and (k >= BLAS_MIN_N or m >= BLAS_MIN_N) and not fnn_own_wide():
        return False
    return True


cdef inline bint narrow_own(int n, bint trans_a) noexcept nogil:
    """True where a narrow float32 C = op(A) op(B) goes to fastnn's GEMM on its transpose (own_gemm, one thread):
    the A^T B form, whose transpose packs op(A)^T = A by plain row copies"""
    return narrow(n) and trans_a


cdef inline int gemm_threads(int m, int n, int k, int num_threads) noexcept nogil:
    """The threads worth using on an m x n x k product: 1 for the tiny ones"""
    if <double>m * n * k < SERIAL_MAX_WORK:
        return 1
    return num_threads


cdef inline void dense_gemm(bint trans_a, bint trans_b, int m, int n, int k,
                            floating alpha, const floating* A, int lda,    # IN  op(A) is m x k
                            const floating* B, int ldb,                    # IN  op(B) is k x n
                            floating beta, floating* C, int ldc,           # OUT m x n
                            int num_threads) noexcept nogil:
    """C = alpha op(A) op(B) + beta C, by fastnn's GEMM (a narrow C on its transpose) or BLAS as use_own_gemm
    says (float64: BLAS)"""
    if floating is float and narrow_own(n, trans_a):
        own_gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, 1)
    elif use_own_gemm(m, n, k, trans_a, trans_b, num_threads):
        own_gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, gemm_threads(m, n, k, num_threads))
    else:
        gemm_striped(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, num_threads)


# ---- the hooks fastnn's GEMM calls (float32 only) ----

cdef enum:
    FLAT_TILE_MAX = 4096        # floats (16 KB): a hook's tile of whole rows up to this size takes one activation call


ctypedef struct ForwardEpilogue:
    const float* b              # IN  (O,)
    float* post                 # OUT (N, O) f(pre), or NULL: bias only
    ptrdiff_t O
    int kind
    float param


cdef inline void forward_epilogue(void* ctx, float* pre, ptrdiff_t ldc, int i0, int j0, int m, int n) noexcept nogil:
    """On a finished tile of pre = x W (rows i0.., columns j0..): pre += b;  post = f(pre)"""
    cdef ForwardEpilogue* e = <ForwardEpilogue*>ctx
    cdef const float* bias = e.b + j0     # locals, not e's fields: a store to row cannot change them, so
    cdef float* post = e.post             # the loops vectorise
    cdef int r, j
    cdef float* row
    # a tile of whole rows, small enough to stay in L1: the activation in one call over it, not one a row (for
    # W1's 16-wide rows the call and its vector loop's set-up cost more than the row's work). Same bits.
    cdef bint flat = n == e.O and ldc == e.O and m * n <= FLAT_TILE_MAX
    for r in range(m):
        row = pre + r * ldc
        for j in range(n):
            row[j] = row[j] + bias[j]
        if post != NULL and not flat:
            _forward_range(e.kind, post + (i0 + r) * e.O + j0, row, n, e.param)
    if post != NULL and flat:
        _forward_range(e.kind, post + i0 * e.O, pre, m * n, e.param)


ctypedef struct BackwardPrologue:
    float* dpre                 # (N, O) dZ: += dpost f'(pre) when kind >= 0, else only read
    const float* dpost          # IN  (N, O)
    const float* pre            # IN  (N, O)
    const float* post           # IN  (N, O)
    float* db                   # OUT (O,) +=
    ptrdiff_t O
    int kind                    # an ActivationKind, or -1: dpre is given
    float param


cdef inline void backward_prologue(void* ctx, int k0, int kn, int j0, int n) noexcept nogil:
    """Before rows k0.. x columns j0.. of dZ are packed: dZ += dY f'(Z) there; db += those rows of dZ"""
    cdef BackwardPrologue* p = <BackwardPrologue*>ctx
    cdef float* db = p.db + j0            # locals, not p's fields: the loops vectorise
    cdef const float* dz
    cdef int k, j
    cdef ptrdiff_t row
    cdef bint flat = n == p.O and kn * n <= FLAT_TILE_MAX    # whole rows: as forward_epilogue
    if p.kind >= 0 and flat:
        row = k0 * p.O
        _backward_range(p.kind, p.dpre + row, p.dpost + row, p.pre + row, p.post + row, kn * n, p.param)
    for k in range(k0, k0 + kn):  # rows in order: each column's sum is the same whatever the thread count
        row = k * p.O + j0
        if p.kind >= 0 and not flat:
            _backward_range(p.kind, p.dpre + row, p.dpost + row, p.pre + row, p.post + row, n, p.param)
        dz = p.dpre + row
        for j in range(n):
            db[j] = db[j] + dz[j]


# ---- the kernels ----

cdef inline void _forward(floating* pre, floating* post, const floating* x, const floating* W,
                          const floating* b, int N, int I, int O, int kind, double param,
                          int num_threads) noexcept nogil:
    # post == NULL: no activation
    cdef ForwardEpilogue e
    cdef int n
    if floating is float:
        if use_own_gemm(N, O, I, False, False, num_threads):
            e.b, e.post, e.O, e.kind, e.param = b, post, O, kind, <float>param
            if fnn_sgemm_hooked(False, False, N, O, I, 1, x, I, W, O, 0, pre, O,
                                gemm_threads(N, O, I, num_threads), NULL, NULL, forward_epilogue, &e) == 0:
                return
    for n in range(N):          # seed every row with the bias, then one GEMM with beta = 1
        memcpy(pre + <Py_ssize_t>n * O, b, O * sizeof(floating))
    gemm_striped(False, False, N, O, I, 1, x, I, W, O, 1, pre, O, num_threads)
    if post != NULL:
        activation_forward(kind, post, pre, <Py_ssize_t>N * O, param, num_threads)


cdef inline void _backward(floating* dx, floating* dW, floating* db, floating* dpre, const floating* dpost,
                           const floating* x, const floating* W, const floating* pre, const floating* post,
                           int N, int I, int O, int kind, double param, int num_threads) noexcept nogil:
    # kind < 0: dpre is the given dout (only read); dpost, pre, post unused
    cdef BackwardPrologue p
    cdef int n, o
    cdef const floating* row
    cdef bint done = False
    if floating is float:
        if use_own_gemm(I, O, N, True, False, num_threads):
            p.dpre, p.dpost, p.pre, p.post, p.db, p.O, p.kind, p.param = dpre, dpost, pre, post, db, O, kind, <float>param
            done = fnn_sgemm_hooked(True, False, I, O, N, 1, x, I, dpre, O, 1, dW, O,
                                    gemm_threads(I, O, N, num_threads), backward_prologue, &p, NULL, NULL) == 0
    if not done:
        if kind >= 0:
            activation_backward(kind, dpre, dpost, pre, post, <Py_ssize_t>N * O, param, num_threads)
        dense_gemm(True, False, I, O, N, 1, x, I, dpre, O, 1, dW, O, num_threads)
        for n in range(N):      # rows in order, so the sum is the same whatever the thread count
            row = dpre + <Py_ssize_t>n * O
            for o in range(O):
                db[o] += row[o]
    if dx != NULL:
        dense_gemm(False, True, N, I, O, 1, dpre, O, W, O, 1, dx, I, num_threads)


cdef inline void dense_forward(floating* out,                         # OUT (N, O)
                               const floating* x,                     # IN  (N, I)
                               const floating* W,                     # IN  (I, O)
                               const floating* b,                     # IN  (O,)
                               int N, int I, int O, int num_threads=1) noexcept nogil:
    """out = x @ W + b"""
    _forward(out, <floating*>NULL, x, W, b, N, I, O, IDENTITY, 0, num_threads)


cdef inline void dense_backward(floating* dx,                         # OUT (N, I) or NULL, +=
                                floating* dW,                         # OUT (I, O) +=
                                floating* db,                         # OUT (O,)   +=
                                const floating* dout,                 # IN  (N, O)
                                const floating* x,                    # IN  (N, I) saved by forward
                                const floating* W,                    # IN  (I, O)
                                int N, int I, int O, int num_threads=1) noexcept nogil:
    """dW += x^T dout;  db += sum_rows(dout);  dx += dout W^T (skipped when dx is NULL)"""
    _backward(dx, dW, db, <floating*>dout, <floating*>NULL, x, W, <floating*>NULL, <floating*>NULL,
              N, I, O, -1, 0, num_threads)


cdef inline int dense_act_forward(floating* pre,                      # OUT (N, O)
                                  floating* post,                     # OUT (N, O)
                                  const floating* x,                  # IN  (N, I)
                                  const floating* W,                  # IN  (I, O)
                                  const floating* b,                  # IN  (O,)
                                  int N, int I, int O,
                                  int kind,                           # IN  an ActivationKind
                                  double param,                       # IN  LEAKY_RELU's negative_slope
                                  int num_threads) noexcept nogil:
    """pre = x @ W + b;  post = f_kind(pre); returns -1 (and writes nothing) for an unknown kind, else 0"""
    if kind < IDENTITY or kind > SILU:
        return -1
    _forward(pre, post, x, W, b, N, I, O, kind, param, num_threads)
    return 0


cdef inline int dense_act_backward(floating* dx,                      # OUT (N, I) or NULL, +=
                                   floating* dW,                      # OUT (I, O) +=
                                   floating* db,                      # OUT (O,)   +=
                                   floating* dpre,                    # OUT (N, O) +=, then read
                                   const floating* dpost,             # IN  (N, O)
                                   const floating* x,                 # IN  (N, I) saved by forward
                                   const floating* W,                 # IN  (I, O)
                                   const floating* pre,               # IN  (N, O) saved by forward
                                   const floating* post,              # IN  (N, O) saved by forward
                                   int N, int I, int O,
                                   int kind,                          # IN  an ActivationKind
                                   double param,                      # IN  LEAKY_RELU's negative_slope
                                   int num_threads) noexcept nogil:
    """dpre += dpost * f_kind'(pre);  dW += x^T dpre;  db += sum_rows(dpre);  dx += dpre W^T (dx may be NULL);
    returns -1 (and writes nothing) for an unknown kind, else 0"""
    if kind < IDENTITY or kind > SILU:
        return -1
    _backward(dx, dW, db, dpre, dpost, x, W, pre, post, N, I, O, kind, param, num_threads)
    return 0


# ---- a thread's share, for a caller that owns the parallel region (the training step) ----
# Every thread of the region calls the *_part kernel with its tid of nth; it returns once the whole layer is
# done (it ends with a barrier). Products split as fnn_sgemm_part (whole micro-tiles) or into blas.pxd's stripes,
# and the element-wise work by the same shares: the bits of the 1-thread kernels above, whatever nth.

cdef inline void _barrier(int nth) noexcept nogil:
    if nth > 1:
        fnn_barrier()


cdef inline void _forward_block(floating* pre, floating* post, const floating* x, const floating* W,
                                const floating* b, int I, int O, int i0, int m, int j0, int n, int kind,
                                double param) noexcept nogil:
    """Rows [i0, i0 + m) x columns [j0, j0 + n) of _forward by BLAS: bias, one call (beta = 1), activation"""
    cdef int r
    for r in range(i0, i0 + m):
        memcpy(pre + <Py_ssize_t>r * O + j0, b + j0, n * sizeof(floating))
    gemm(False, False, m, n, I, 1, x + <Py_ssize_t>i0 * I, I, W + j0, O, 1, pre + <Py_ssize_t>i0 * O + j0, O)
    if post != NULL:
        for r in range(i0, i0 + m):
            _forward_range(kind, post + <Py_ssize_t>r * O + j0, pre + <Py_ssize_t>r * O + j0, n, <floating>param)


cdef inline void dense_forward_part(int tid, int nth, floating* pre, floating* post, const floating* x,
                                    const floating* W, const floating* b, int N, int I, int O, int kind,
                                    double param) noexcept nogil:
    """This thread's share of _forward (post NULL: no activation); see above"""
    cdef ForwardEpilogue e
    cdef int s, ns, i0, m, j0, n
    if floating is float:
        if use_own_gemm(N, O, I, False, False, nth):
            e.b, e.post, e.O, e.kind, e.param = b, post, O, kind, <float>param
            if fnn_sgemm_part(tid, nth, False, False, N, O, I, 1, x, I, W, O, 0, pre, O, NULL, NULL,
                              forward_epilogue, &e) != 0:      # out of memory: this share by BLAS
                fnn_part_share(tid, nth, N, O, &i0, &m, &j0, &n)
                _forward_block(pre, post, x, W, b, I, O, i0, m, j0, n, kind, param)
            _barrier(nth)
            return
    ns = stripe_count(N, O, I)
    for s in range(tid * ns // nth, (tid + 1) * ns // nth):
        i0, m, j0, n = 0, N, 0, O
        if ns > 1:
            stripe_block(s, N, O, I, &i0, &m, &j0, &n)
        _forward_block(pre, post, x, W, b, I, O, i0, m, j0, n, kind, param)
    _barrier(nth)


cdef inline void _bias_grad(floating* db, const floating* dpre, int N, int O) noexcept nogil:
    """db += the rows of dpre, in order (the sum the prologue forms, whatever the thread count)"""
    cdef int r, o
    cdef const floating* row
    for r in range(N):
        row = dpre + <Py_ssize_t>r * O
        for o in range(O):
            db[o] += row[o]


cdef inline void _dW_part(int tid, int nth, floating* dW, const floating* dpre, const floating* x, int N, int I,
                          int O, bint own) noexcept nogil:
    """Its share of dW += x^T dZ, with no hooks: fastnn's GEMM (own) or blas.pxd's stripes"""
    cdef int s, ns, i0, m, j0, n
    cdef Py_ssize_t r0, r1
    if floating is float:
        if narrow_own(O, True):     # its rows of dW (the columns of x)
            thread_share(tid, nth, I, 1, &r0, &r1)
            own_gemm(True, False, <int>(r1 - r0), O, N, 1, x + r0, I, dpre, O, 1, dW + r0 * O, O, 1)
            return
        if own:
            if fnn_sgemm_part(tid, nth, True, False, I, O, N, 1, x, I, dpre, O, 1, dW, O, NULL, NULL, NULL,
                              NULL) != 0:              # out of memory: this share by BLAS
                fnn_part_share(tid, nth, I, O, &i0, &m, &j0, &n)
                gemm(True, False, m, n, N, 1, x + i0, I, dpre + j0, O, 1, dW + <Py_ssize_t>i0 * O + j0, O)
            return
    ns = stripe_count(I, O, N)
    for s in range(tid * ns // nth, (tid + 1) * ns // nth):
        gemm_stripe(s, ns, True, False, I, O, N, 1, x, I, dpre, O, 1, dW, O)


cdef inline void _dx_part(int tid, int nth, floating* dx, const floating* dpre, const floating* W, int N, int I,
                          int O) noexcept nogil:
    """Its share of dx += dZ W^T: fastnn's GEMM or blas.pxd's stripes, as dense_gemm picks"""
    cdef int s, ns, i0, m, j0, n
    if floating is float:
        if use_own_gemm(N, I, O, False, True, nth):
            if fnn_sgemm_part(tid, nth, False, True, N, I, O, 1, dpre, O, W, O, 1, dx, I, NULL, NULL, NULL,
                              NULL) != 0:
                fnn_part_share(tid, nth, N, I, &i0, &m, &j0, &n)
                gemm(False, True, m, n, O, 1, dpre + <Py_ssize_t>i0 * O, O, W + <Py_ssize_t>j0 * O, O, 1,
                     dx + <Py_ssize_t>i0 * I + j0, I)
            return
    ns = stripe_count(N, I, O)
    for s in range(tid * ns // nth, (tid + 1) * ns // nth):
        gemm_stripe(s, ns, False, True, N, I, O, 1, dpre, O, W, O, 1, dx, I)


cdef inline void dense_backward_part(int tid, int nth, floating* dx, floating* dW, floating* db, floating* dpre,
                                     const floating* dpost, const floating* x, const floating* W,
                                     const floating* pre, const floating* post, int N, int I, int O, int kind,
                                     double param) noexcept nogil:
    """This thread's share of _backward (kind < 0: dpre is given, only read); see above"""
    cdef BackwardPrologue p
    cdef int i0, m, j0, n
    cdef Py_ssize_t r0, r1
    cdef bint own = False, fused = False
    if floating is float:
        own = use_own_gemm(I, O, N, True, False, nth)
        if own and fnn_part_by_cols(I, O, nth):
            # dZ and db for its own columns just before they are packed, then its columns of dW
            fused = True
            p.dpre, p.dpost, p.pre, p.post, p.db, p.O, p.kind, p.param = dpre, dpost, pre, post, db, O, kind, <float>param
            if fnn_sgemm_part(tid, nth, True, False, I, O, N, 1, x, I, dpre, O, 1, dW, O, backward_prologue, &p,
                              NULL, NULL) != 0:                 # out of memory: this share by BLAS
                fnn_part_share(tid, nth, I, O, &i0, &m, &j0, &n)
                backward_prologue(&p, 0, N, j0, n)
                gemm(True, False, I, n, N, 1, x, I, dpre + j0, O, 1, dW + j0, O)
    if not fused:
        if kind >= 0:           # dZ = dY f'(Z), its rows; then all of it is needed
            thread_share(tid, nth, N, 1, &r0, &r1)
            _backward_range(kind, dpre + <Py_ssize_t>r0 * O, dpost + <Py_ssize_t>r0 * O, pre + <Py_ssize_t>r0 * O,
                            post + <Py_ssize_t>r0 * O, <Py_ssize_t>(r1 - r0) * O, <floating>param)
            _barrier(nth)
        if tid == 0:
            _bias_grad(db, dpre, N, O)
        _dW_part(tid, nth, dW, dpre, x, N, I, O, own)
    if dx != NULL:
        if fused:
            _barrier(nth)       # all of dZ is written
        _dx_part(tid, nth, dx, dpre, W, N, I, O)
    _barrier(nth)

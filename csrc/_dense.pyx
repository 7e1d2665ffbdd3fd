"""Python face of the dense kernels (see dense.pxd). Shapes are checked here too: never trust the caller."""
from cython cimport floating
cimport dense
cimport activations as act
from gemm cimport fnn_gemm_init
from blas cimport STRIPED_MIN_WORK
from contextlib import nullcontext

from fastnn._config import get_num_threads, single_threaded_blas

fnn_gemm_init()   # pick the GEMM micro-kernel for this CPU once, at import

# The activation kinds of the fused kernels, by the names of the activation kernels (relu -> relu_forward).
ACTIVATION_KINDS = {"identity": act.IDENTITY, "relu": act.RELU, "leaky_relu": act.LEAKY_RELU,
                    "sigmoid": act.SIGMOID, "tanh": act.TANH, "gelu": act.GELU, "softplus": act.SOFTPLUS,
                    "silu": act.SILU}


cdef int _kind(str name, kind) except -1:
    try:
        return ACTIVATION_KINDS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"{name}: unknown activation kind {kind!r}; choose one of {sorted(ACTIVATION_KINDS)}") from None


def blas_held(double work):
    """A context holding BLAS to one thread when a product of `work` = m n k may go to BLAS in stripes over
    fastnn's threads (blas.pxd's gemm_striped): smaller ones run on one BLAS thread anyway."""
    return single_threaded_blas() if work >= STRIPED_MIN_WORK else nullcontext()


cdef inline bint _is(const Py_ssize_t* shape, Py_ssize_t rows, Py_ssize_t cols):
    return shape[0] == rows and shape[1] == cols


cdef floating* _optional(str name, arr, int rows, int cols, floating* like) except? NULL:
    """&arr[0, 0] after checking arr is (rows, cols), or NULL for None. (`like` only selects the dtype.)"""
    cdef floating[:, ::1] view   # untyped argument, so that a None cannot steer the fused dispatch
    if arr is None:
        return NULL
    view = arr
    if view.shape[0] != rows or view.shape[1] != cols:
        raise ValueError(f"{name}: dx is ({view.shape[0]}, {view.shape[1]}), expected ({rows}, {cols})")
    return &view[0, 0]


def dense_forward(floating[:, ::1] out not None, const floating[:, ::1] x not None, const floating[:, ::1] W not None,
                  const floating[::1] b not None):
    """out = x @ W + b"""
    cdef int N = x.shape[0], I = x.shape[1], O = W.shape[1]
    cdef int num_threads = get_num_threads()
    if W.shape[0] != I or b.shape[0] != O or out.shape[0] != N or out.shape[1] != O or N == 0 or I == 0 or O == 0:
        raise ValueError(f"dense_forward: shapes disagree: out ({out.shape[0]}, {out.shape[1]}), x ({N}, {I}), "
                         f"W ({W.shape[0]}, {O}), b ({b.shape[0]},)")
    with blas_held(<double>N * I * O), nogil:
        dense.dense_forward(&out[0, 0], &x[0, 0], &W[0, 0], &b[0], N, I, O, num_threads)


def dense_backward(dx, floating[:, ::1] dW not None, floating[::1] db not None,
                   const floating[:, ::1] dout not None, const floating[:, ::1] x not None, const floating[:, ::1] W not None):
    """dW += x^T dout;  db += sum_rows(dout);  dx += dout W^T (dx may be None)"""
    cdef int N = x.shape[0], I = x.shape[1], O = W.shape[1]
    cdef int num_threads = get_num_threads()
    if (W.shape[0] != I or dW.shape[0] != I or dW.shape[1] != O or db.shape[0] != O
            or dout.shape[0] != N or dout.shape[1] != O or N == 0 or I == 0 or O == 0):
        raise ValueError(f"dense_backward: shapes disagree: dW ({dW.shape[0]}, {dW.shape[1]}), db ({db.shape[0]},), "
                         f"dout ({dout.shape[0]}, {dout.shape[1]}), x ({N}, {I}), W ({W.shape[0]}, {O})")
    cdef floating* dx_ptr = _optional("dense_backward", dx, N, I, &dW[0, 0])
    with blas_held(<double>N * I * O), nogil:
        dense.dense_backward(dx_ptr, &dW[0, 0], &db[0], &dout[0, 0], &x[0, 0], &W[0, 0], N, I, O, num_threads)


def dense_act_forward(floating[:, ::1] pre not None, floating[:, ::1] post not None, const floating[:, ::1] x not None,
                      const floating[:, ::1] W not None, const floating[::1] b not None, kind, double param=0.01):
    """pre = x @ W + b;  post = f_kind(pre)  (kind: an activation name; param: leaky_relu's negative_slope)"""
    cdef int N = x.shape[0], I = x.shape[1], O = W.shape[1]
    cdef int k = _kind("dense_act_forward", kind), num_threads = get_num_threads()
    if (W.shape[0] != I or b.shape[0] != O or pre.shape[0] != N or pre.shape[1] != O or post.shape[0] != N
            or post.shape[1] != O or N == 0 or I == 0 or O == 0):
        raise ValueError(f"dense_act_forward: shapes disagree: pre ({pre.shape[0]}, {pre.shape[1]}), post "
                         f"({post.shape[0]}, {post.shape[1]}), x ({N}, {I}), W ({W.shape[0]}, {O}), b ({b.shape[0]},)")
    with blas_held(<double>N * I * O), nogil:
        dense.dense_act_forward(&pre[0, 0], &post[0, 0], &x[0, 0], &W[0, 0], &b[0], N, I, O, k, param, num_threads)


def dense_act_backward(dx, floating[:, ::1] dW not None, floating[::1] db not None, floating[:, ::1] dpre not None,
                       const floating[:, ::1] dpost not None, const floating[:, ::1] x not None,
                       const floating[:, ::1] W not None, const floating[:, ::1] pre not None,
                       const floating[:, ::1] post not None, kind, double param=0.01):
    """dpre += dpost * f_kind'(pre);  dW += x^T dpre;  db += sum_rows(dpre);  dx += dpre W^T (dx may be None)"""
    cdef int N = x.shape[0], I = x.shape[1], O = W.shape[1]
    cdef int k = _kind("dense_act_backward", kind), num_threads = get_num_threads()
    if (W.shape[0] != I or not _is(dW.shape, I, O) or db.shape[0] != O or not _is(dpre.shape, N, O)
            or not _is(dpost.shape, N, O) or not _is(pre.shape, N, O) or not _is(post.shape, N, O)
            or N == 0 or I == 0 or O == 0):
        raise ValueError(f"dense_act_backward: shapes disagree: dW ({dW.shape[0]}, {dW.shape[1]}), db ({db.shape[0]},), "
                         f"dpre ({dpre.shape[0]}, {dpre.shape[1]}), dpost ({dpost.shape[0]}, {dpost.shape[1]}), "
                         f"x ({N}, {I}), W ({W.shape[0]}, {O}), pre ({pre.shape[0]}, {pre.shape[1]}), "
                         f"post ({post.shape[0]}, {post.shape[1]})")
    cdef floating* dx_ptr = _optional("dense_act_backward", dx, N, I, &dW[0, 0])
    with blas_held(<double>N * I * O), nogil:
        dense.dense_act_backward(dx_ptr, &dW[0, 0], &db[0], &dpre[0, 0], &dpost[0, 0], &x[0, 0], &W[0, 0],
                                 &pre[0, 0], &post[0, 0], N, I, O, k, param, num_threads)


def gemm_rule(int m, int n, int k, bint trans_a=False, bint trans_b=False, int num_threads=1):
    """Which GEMM the dense kernels use for a float32 m x n x k product (dense.pxd's use_own_gemm and
    gemm_threads, narrow_own): "own" (fastnn's), "own/1t" (fastnn's, on one thread: also a narrow C, n < 8, in
    the form A^T B, which it computes transposed) or "blas"."""
    if dense.narrow_own(n, trans_a):
        return "own/1t" if num_threads > 1 else "own"
    if not dense.use_own_gemm(m, n, k, trans_a, trans_b, num_threads):
        return "blas"
    return "own/1t" if num_threads > 1 and dense.gemm_threads(m, n, k, num_threads) == 1 else "own"

"""Python face of the dense kernels (see dense.pxd). Shapes are checked here too: never trust the caller."""
from cython cimport floating
cimport dense


def dense_forward(floating[:, ::1] out not None, const floating[:, ::1] x not None, const floating[:, ::1] W not None,
                  const floating[::1] b not None):
    """out = x @ W + b"""
    cdef int N = x.shape[0], I = x.shape[1], O = W.shape[1]
    if W.shape[0] != I or b.shape[0] != O or out.shape[0] != N or out.shape[1] != O or N == 0 or I == 0 or O == 0:
        raise ValueError(f"dense_forward: shapes disagree: out ({out.shape[0]}, {out.shape[1]}), x ({N}, {I}), "
                         f"W ({W.shape[0]}, {O}), b ({b.shape[0]},)")
    with nogil:
        dense.dense_forward(&out[0, 0], &x[0, 0], &W[0, 0], &b[0], N, I, O)


def dense_backward(dx, floating[:, ::1] dW not None, floating[::1] db not None,
                   const floating[:, ::1] dout not None, const floating[:, ::1] x not None, const floating[:, ::1] W not None):
    """dW += x^T dout;  db += sum_rows(dout);  dx += dout W^T (dx may be None)"""
    cdef int N = x.shape[0], I = x.shape[1], O = W.shape[1]
    cdef floating* dx_ptr = NULL
    cdef floating[:, ::1] dx_view   # dx is untyped so that a None dx cannot steer the fused dispatch
    if (W.shape[0] != I or dW.shape[0] != I or dW.shape[1] != O or db.shape[0] != O
            or dout.shape[0] != N or dout.shape[1] != O or N == 0 or I == 0 or O == 0):
        raise ValueError(f"dense_backward: shapes disagree: dW ({dW.shape[0]}, {dW.shape[1]}), db ({db.shape[0]},), "
                         f"dout ({dout.shape[0]}, {dout.shape[1]}), x ({N}, {I}), W ({W.shape[0]}, {O})")
    if dx is not None:
        dx_view = dx
        if dx_view.shape[0] != N or dx_view.shape[1] != I:
            raise ValueError(f"dense_backward: dx is ({dx_view.shape[0]}, {dx_view.shape[1]}), expected ({N}, {I})")
        dx_ptr = &dx_view[0, 0]
    with nogil:
        dense.dense_backward(dx_ptr, &dW[0, 0], &db[0], &dout[0, 0], &x[0, 0], &W[0, 0], N, I, O)

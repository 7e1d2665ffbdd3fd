"""Python face of the dropout kernels (see dropout.pxd). Shapes are checked here too: never trust the caller."""
from cython cimport floating
from libc.stdint cimport uint64_t
cimport dropout
from fastnn._config import get_num_threads


cdef int _check(str name, floating[:, ::1] a, floating[:, ::1] b, const floating[:, ::1] c) except -1:
    if not (a.shape[0] == b.shape[0] == c.shape[0] and a.shape[1] == b.shape[1] == c.shape[1]):
        raise ValueError(f"{name}: shapes disagree: ({a.shape[0]}, {a.shape[1]}), ({b.shape[0]}, {b.shape[1]}), "
                         f"({c.shape[0]}, {c.shape[1]})")
    return 0


def dropout_forward(floating[:, ::1] out not None, floating[:, ::1] mask not None, const floating[:, ::1] x not None,
                    double rate, seed, stream):
    """mask = (u >= rate) / (1 - rate) with u = splitmix64 counter hash of (seed, stream, i);  out = x * mask"""
    _check("dropout_forward", out, mask, x)
    if not 0 <= rate < 1:
        raise ValueError(f"dropout_forward: rate must be in [0, 1), got {rate}")
    cdef uint64_t s = seed, t = stream
    cdef int threads = get_num_threads()
    with nogil:
        dropout.dropout_forward(&out[0, 0], &mask[0, 0], &x[0, 0], <Py_ssize_t>x.shape[0] * x.shape[1], rate, s, t,
                                threads)


def dropout_backward(floating[:, ::1] dx not None, const floating[:, ::1] dout not None,
                     const floating[:, ::1] mask not None):
    """dx += dout * mask"""
    if not (dx.shape[0] == dout.shape[0] == mask.shape[0] and dx.shape[1] == dout.shape[1] == mask.shape[1]):
        raise ValueError(f"dropout_backward: shapes disagree: dx ({dx.shape[0]}, {dx.shape[1]}), "
                         f"dout ({dout.shape[0]}, {dout.shape[1]}), mask ({mask.shape[0]}, {mask.shape[1]})")
    with nogil:
        dropout.dropout_backward(&dx[0, 0], &dout[0, 0], &mask[0, 0], <Py_ssize_t>dx.shape[0] * dx.shape[1])

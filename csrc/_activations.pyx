"""Python face of the activation kernels (see activations.pxd). Shapes are checked here too: never trust the caller."""
from cython cimport floating
cimport activations as act

from fastnn._config import get_num_threads


cdef str _shape(const Py_ssize_t* shape):
    return f"({shape[0]}, {shape[1]})"


cdef int _forward(str name, int kind, floating[:, ::1] out, const floating[:, ::1] x,
                  double param) except -1:
    if out.shape[0] != x.shape[0] or out.shape[1] != x.shape[1]:
        raise ValueError(f"{name}: shapes disagree: out {_shape(out.shape)}, x {_shape(x.shape)}")
    cdef int num_threads = get_num_threads()
    with nogil:
        act.activation_forward(kind, &out[0, 0], &x[0, 0], x.shape[0] * x.shape[1], param, num_threads)
    return 0


cdef int _backward(str name, int kind, floating[:, ::1] dx, const floating[:, ::1] dout,
                   const floating[:, ::1] x, const floating[:, ::1] out, double param) except -1:
    if (dx.shape[0] != x.shape[0] or dx.shape[1] != x.shape[1] or dout.shape[0] != x.shape[0]
            or dout.shape[1] != x.shape[1] or out.shape[0] != x.shape[0] or out.shape[1] != x.shape[1]):
        raise ValueError(f"{name}: shapes disagree: dx {_shape(dx.shape)}, dout {_shape(dout.shape)}, "
                         f"x {_shape(x.shape)}, out {_shape(out.shape)}")
    cdef int num_threads = get_num_threads()
    with nogil:
        act.activation_backward(kind, &dx[0, 0], &dout[0, 0], &x[0, 0], &out[0, 0], x.shape[0] * x.shape[1],
                                param, num_threads)
    return 0


def identity_forward(floating[:, ::1] out not None, const floating[:, ::1] x not None):
    """out = x"""
    _forward("identity_forward", act.IDENTITY, out, x, 0)


def identity_backward(floating[:, ::1] dx not None, const floating[:, ::1] dout not None,
                      const floating[:, ::1] x not None, const floating[:, ::1] out not None):
    """dx += dout"""
    _backward("identity_backward", act.IDENTITY, dx, dout, x, out, 0)


def relu_forward(floating[:, ::1] out not None, const floating[:, ::1] x not None):
    """out = max(x, 0)  (NaN propagates)"""
    _forward("relu_forward", act.RELU, out, x, 0)


def relu_backward(floating[:, ::1] dx not None, const floating[:, ::1] dout not None,
                  const floating[:, ::1] x not None, const floating[:, ::1] out not None):
    """dx += dout * (x > 0)"""
    _backward("relu_backward", act.RELU, dx, dout, x, out, 0)


def leaky_relu_forward(floating[:, ::1] out not None, const floating[:, ::1] x not None,
                       double negative_slope=0.01):
    """out = x if x > 0 else negative_slope * x"""
    _forward("leaky_relu_forward", act.LEAKY_RELU, out, x, negative_slope)


def leaky_relu_backward(floating[:, ::1] dx not None, const floating[:, ::1] dout not None,
                        const floating[:, ::1] x not None, const floating[:, ::1] out not None,
                        double negative_slope=0.01):
    """dx += dout * (1 if x > 0 else negative_slope)"""
    _backward("leaky_relu_backward", act.LEAKY_RELU, dx, dout, x, out, negative_slope)


def sigmoid_forward(floating[:, ::1] out not None, const floating[:, ::1] x not None):
    """out = 1 / (1 + exp(-x))"""
    _forward("sigmoid_forward", act.SIGMOID, out, x, 0)


def sigmoid_backward(floating[:, ::1] dx not None, const floating[:, ::1] dout not None,
                     const floating[:, ::1] x not None, const floating[:, ::1] out not None):
    """dx += dout * out (1 - out)"""
    _backward("sigmoid_backward", act.SIGMOID, dx, dout, x, out, 0)


def tanh_forward(floating[:, ::1] out not None, const floating[:, ::1] x not None):
    """out = tanh(x)"""
    _forward("tanh_forward", act.TANH, out, x, 0)


def tanh_backward(floating[:, ::1] dx not None, const floating[:, ::1] dout not None,
                  const floating[:, ::1] x not None, const floating[:, ::1] out not None):
    """dx += dout * (1 - out^2)"""
    _backward("tanh_backward", act.TANH, dx, dout, x, out, 0)


def gelu_forward(floating[:, ::1] out not None, const floating[:, ::1] x not None):
    """out = x (1 + erf(x / sqrt 2)) / 2"""
    _forward("gelu_forward", act.GELU, out, x, 0)


def gelu_backward(floating[:, ::1] dx not None, const floating[:, ::1] dout not None,
                  const floating[:, ::1] x not None, const floating[:, ::1] out not None):
    """dx += dout * (Phi(x) + x phi(x))"""
    _backward("gelu_backward", act.GELU, dx, dout, x, out, 0)


def softplus_forward(floating[:, ::1] out not None, const floating[:, ::1] x not None):
    """out = x if x > 20 else log(1 + exp(x))"""
    _forward("softplus_forward", act.SOFTPLUS, out, x, 0)


def softplus_backward(floating[:, ::1] dx not None, const floating[:, ::1] dout not None,
                      const floating[:, ::1] x not None, const floating[:, ::1] out not None):
    """dx += dout * (1 if x > 20 else sigmoid(x))"""
    _backward("softplus_backward", act.SOFTPLUS, dx, dout, x, out, 0)


def silu_forward(floating[:, ::1] out not None, const floating[:, ::1] x not None):
    """out = x sigmoid(x)"""
    _forward("silu_forward", act.SILU, out, x, 0)


def silu_backward(floating[:, ::1] dx not None, const floating[:, ::1] dout not None,
                  const floating[:, ::1] x not None, const floating[:, ::1] out not None):
    """dx += dout * s (1 + x (1 - s)),  s = sigmoid(x)"""
    _backward("silu_backward", act.SILU, dx, dout, x, out, 0)

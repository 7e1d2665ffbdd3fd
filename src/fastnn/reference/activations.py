"""Activations in pure NumPy: the twin of csrc/activations.pxd. Legend: N batch, F features.

Forward writes out = f(x); backward accumulates dx += dout * f'(x) from the x and out forward saved.
Semantics follow PyTorch. Constants are Python floats, which NumPy treats as weak: float32 stays float32.
"""
import math

import numpy as np
from scipy.special import erfc

from .._spec import kernel

__all__ = ["identity_forward", "identity_backward", "relu_forward", "relu_backward",
           "leaky_relu_forward", "leaky_relu_backward", "sigmoid_forward", "sigmoid_backward",
           "tanh_forward", "tanh_backward", "gelu_forward", "gelu_backward",
           "softplus_forward", "softplus_backward", "silu_forward", "silu_backward"]

FORWARD = ("out:N,F:out", "x:N,F")
BACKWARD = ("dx:N,F:out", "dout:N,F", "x:N,F", "out:N,F")
SOFTPLUS_THRESHOLD = 20  # PyTorch's default: above it softplus(x) == x to working precision
SQRT1_2 = math.sqrt(0.5)
INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _sigmoid(x):
    """1 / (1 + exp(-x)), exactly 0 or 1 in the limits"""
    e = np.exp(-np.abs(x))  # <= 1: never overflows
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)


def _Phi(x):
    """(1 + erf(x / sqrt 2)) / 2, as erfc: no cancellation (1 + -1) in the left tail"""
    return 0.5 * erfc(-x * SQRT1_2)


@kernel(*FORWARD)
def identity_forward(out, x):
    """out = x"""
    out[...] = x


@kernel(*BACKWARD)
def identity_backward(dx, dout, x, out):
    """dx += dout"""
    dx += dout


@kernel(*FORWARD)
def relu_forward(out, x):
    """out = max(x, 0)  (NaN propagates)"""
    out[...] = np.where(x <= 0, 0, x)


@kernel(*BACKWARD)
def relu_backward(dx, dout, x, out):
    """dx += dout * (x > 0)"""
    dx += np.where(x <= 0, 0, dout)


@kernel(*FORWARD)
def leaky_relu_forward(out, x, negative_slope=0.01):
    """out = x if x > 0 else negative_slope * x"""
    out[...] = np.where(x > 0, x, x * x.dtype.type(negative_slope))  # slope in x's dtype, as the kernel


@kernel(*BACKWARD)
def leaky_relu_backward(dx, dout, x, out, negative_slope=0.01):
    """dx += dout * (1 if x > 0 else negative_slope)"""
    dx += np.where(x > 0, dout, dout * x.dtype.type(negative_slope))


@kernel(*FORWARD)
def sigmoid_forward(out, x):
    """out = 1 / (1 + exp(-x))"""
    out[...] = _sigmoid(x)


@kernel(*BACKWARD)
def sigmoid_backward(dx, dout, x, out):
    """dx += dout * out (1 - out)"""
    dx += dout * out * (1 - out)


@kernel(*FORWARD)
def tanh_forward(out, x):
    """out = tanh(x)"""
    np.tanh(x, out=out)


@kernel(*BACKWARD)
def tanh_backward(dx, dout, x, out):
    """dx += dout * (1 - out^2)"""
    dx += dout * (1 - out * out)


@kernel(*FORWARD)
def gelu_forward(out, x):
    """out = x (1 + erf(x / sqrt 2)) / 2"""
    out[...] = x * _Phi(x)


@kernel(*BACKWARD)
def gelu_backward(dx, dout, x, out):
    """dx += dout * (Phi(x) + x phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)"""
    with np.errstate(over="ignore"):  # x * x overflowing to inf is harmless: exp(-inf) = 0
        phi = INV_SQRT_2PI * np.exp(-0.5 * x * x)
    dx += dout * (_Phi(x) + x * phi)


@kernel(*FORWARD)
def softplus_forward(out, x):
    """out = x if x > 20 else log(1 + exp(x))"""
    linear = x > SOFTPLUS_THRESHOLD
    out[...] = np.where(linear, x, np.log1p(np.exp(np.where(linear, 0, x))))  # no exp of what it drops


@kernel(*BACKWARD)
def softplus_backward(dx, dout, x, out):
    """dx += dout * (1 if x > 20 else sigmoid(x))"""
    dx += np.where(x > SOFTPLUS_THRESHOLD, dout, dout * _sigmoid(x))


@kernel(*FORWARD)
def silu_forward(out, x):
    """out = x sigmoid(x)"""
    out[...] = x * _sigmoid(x)


@kernel(*BACKWARD)
def silu_backward(dx, dout, x, out):
    """dx += dout * s (1 + x (1 - s)),  s = sigmoid(x)"""
    s = _sigmoid(x)  # from x, not out / x: x may be 0
    dx += dout * s * (1 + x * (1 - s))

"""Inverted dropout in pure NumPy: the twin of csrc/dropout.pxd. Legend: N batch, F features.

The mask is a pure function of (seed, stream, element index) through the splitmix64 hash, so both backends
(and any thread count) draw the very same mask.
"""
import numpy as np

from .._spec import kernel

__all__ = ["dropout_forward", "dropout_backward"]

_U64 = np.uint64


def splitmix64(z):
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    z = z + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def _check_rate(rate):
    if not 0 <= rate < 1:
        raise ValueError(f"dropout_forward: rate must be in [0, 1), got {rate}")


@kernel("out:N,F:out", "mask:N,F:out", "x:N,F")
def dropout_forward(out, mask, x, rate, seed, stream):
    """mask = (u >= rate) / (1 - rate) with u = splitmix64 counter hash of (seed, stream, i);  out = x * mask"""
    _check_rate(rate)
    with np.errstate(over="ignore"):
        key = splitmix64(np.array([seed], _U64) ^ splitmix64(np.array([stream], _U64)))
        draws = splitmix64(key + np.arange(x.size, dtype=_U64)) >> _U64(11)
    threshold = _U64(int(rate * 9007199254740992.0))
    keep_scale = x.dtype.type(1.0 / (1.0 - rate))
    mask[...] = np.where(draws >= threshold, keep_scale, x.dtype.type(0)).reshape(x.shape)
    np.multiply(x, mask, out=out)


@kernel("dx:N,F:out", "dout:N,F", "mask:N,F")
def dropout_backward(dx, dout, mask):
    """dx += dout * mask"""
    dx += dout * mask

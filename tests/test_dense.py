"""Dense layer kernels against their NumPy twin and the formula."""
import numpy as np
import pytest

from helpers import check_kernel

SHAPES = [(1, 1, 1), (1, 7, 3), (5, 3, 4), (33, 17, 9), (128, 64, 10)]  # (N, I, O): N=1 and odd sizes


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("N,I,O", SHAPES)
def test_dense_forward(backend, dtype, threads, rng, N, I, O):
    x, W, b = randn(rng, (N, I), dtype), randn(rng, (I, O), dtype), randn(rng, O, dtype)
    out = np.full((N, O), np.nan, dtype)  # every element must be written
    expect = x.astype(np.float64) @ W + b
    check_kernel(backend, "dense_forward", dict(out=out, x=x, W=W, b=b), {"out": expect})


@pytest.mark.parametrize("N,I,O", SHAPES)
@pytest.mark.parametrize("with_dx", [True, False])
def test_dense_backward_accumulates(backend, dtype, threads, rng, N, I, O, with_dx):
    x, W, dout = randn(rng, (N, I), dtype), randn(rng, (I, O), dtype), randn(rng, (N, O), dtype)
    dx0, dW0, db0 = randn(rng, (N, I), dtype), randn(rng, (I, O), dtype), randn(rng, O, dtype)
    x64, dout64 = x.astype(np.float64), dout.astype(np.float64)
    expect = {"dW": dW0 + x64.T @ dout64, "db": db0 + dout64.sum(0)}
    if with_dx:
        expect["dx"] = dx0 + dout64 @ W.astype(np.float64).T
    args = dict(dx=dx0 if with_dx else None, dW=dW0, db=db0, dout=dout, x=x, W=W)
    check_kernel(backend, "dense_backward", args, expect)


def test_dense_read_only_inputs_are_accepted(backend, dtype, rng):
    x, W, b = randn(rng, (4, 3), dtype), randn(rng, (3, 2), dtype), randn(rng, 2, dtype)
    for a in (x, W, b):
        a.flags.writeable = False
    out = np.empty((4, 2), dtype)
    backend.dense_forward(out, x, W, b)
    np.testing.assert_allclose(out, x @ W + b, rtol=1e-5)

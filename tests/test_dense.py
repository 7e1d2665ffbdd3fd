"""Dense layer kernels against their NumPy twin and the formula."""
import numpy as np
import pytest

import fastnn
from helpers import TOLERANCE, check_kernel, on_thread_counts

# (N, I, O): N=1 and odd sizes; the last: a narrow output (O < 8) whose dW (fastnn's GEMM on the transpose) has
# I rows in two of its 256-row blocks, one partial
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 3, 4), (33, 17, 9), (128, 64, 10), (600, 300, 3)]


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def tolerance(dtype, expect, terms):
    """Max-relative on the scale of the terms summed, not of a result that cancelled (x W + b at I = 1 can land
    near 0)"""
    return TOLERANCE[np.dtype(dtype)] * max(1.0, np.max(terms) / np.max(abs(expect)))


@pytest.mark.parametrize("N,I,O", SHAPES)
def test_dense_forward(backend, dtype, threads, rng, N, I, O):
    x, W, b = randn(rng, (N, I), dtype), randn(rng, (I, O), dtype), randn(rng, O, dtype)
    out = np.full((N, O), np.nan, dtype)  # every element must be written
    expect = x.astype(np.float64) @ W + b
    tol = tolerance(dtype, expect, abs(x.astype(np.float64)) @ abs(W) + abs(b))
    check_kernel(backend, "dense_forward", dict(out=out, x=x, W=W, b=b), {"out": expect}, tol)


@pytest.mark.parametrize("N,I,O", SHAPES)
@pytest.mark.parametrize("with_dx", [True, False])
def test_dense_backward_accumulates(backend, dtype, threads, rng, N, I, O, with_dx):
    x, W, dout = randn(rng, (N, I), dtype), randn(rng, (I, O), dtype), randn(rng, (N, O), dtype)
    dx0, dW0, db0 = randn(rng, (N, I), dtype), randn(rng, (I, O), dtype), randn(rng, O, dtype)
    x64, dout64 = x.astype(np.float64), dout.astype(np.float64)
    expect = {"dW": dW0 + x64.T @ dout64, "db": db0 + dout64.sum(0)}
    terms = [abs(dW0) + abs(x64.T) @ abs(dout64), abs(db0) + abs(dout64).sum(0)]
    if with_dx:
        expect["dx"] = dx0 + dout64 @ W.astype(np.float64).T
        terms.append(abs(dx0) + abs(dout64) @ abs(W.astype(np.float64)).T)
    tol = max(tolerance(dtype, e, t) for e, t in zip(expect.values(), terms))
    args = dict(dx=dx0 if with_dx else None, dW=dW0, db=db0, dout=dout, x=x, W=W)
    check_kernel(backend, "dense_backward", args, expect, tol)


def test_dense_read_only_inputs_are_accepted(backend, dtype, rng):
    x, W, b = randn(rng, (4, 3), dtype), randn(rng, (3, 2), dtype), randn(rng, 2, dtype)
    for a in (x, W, b):
        a.flags.writeable = False
    out = np.empty((4, 2), dtype)
    backend.dense_forward(out, x, W, b)
    np.testing.assert_allclose(out, x @ W + b, rtol=1e-5)


# ---- fused dense + activation kernels ----

KINDS = fastnn.reference.dense.ACTIVATION_KINDS
PARAM = 0.1          # leaky_relu's negative_slope (ignored by the other kinds)
FUSED_SHAPES = SHAPES + [(130, 70, 300)]   # the last is big enough for fastnn's GEMM to use 2 threads


def act_pair(kind, dtype, rng, shape):
    """pre and post = f(pre) as forward saves them"""
    pre = randn(rng, shape, dtype)
    post = np.empty_like(pre)
    forward = getattr(fastnn.reference, f"{kind}_forward")
    forward(post, pre, PARAM) if kind == "leaky_relu" else forward(post, pre)
    return pre, post


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N,I,O", FUSED_SHAPES)
def test_dense_act_forward(backend, dtype, threads, rng, kind, N, I, O):
    x, W, b = randn(rng, (N, I), dtype), randn(rng, (I, O), dtype), randn(rng, O, dtype)
    pre, post = np.full((N, O), np.nan, dtype), np.full((N, O), np.nan, dtype)  # every element must be written
    args = dict(pre=pre, post=post, x=x, W=W, b=b, kind=kind, param=PARAM)
    expect = x.astype(np.float64) @ W + b
    tol = tolerance(dtype, expect, abs(x.astype(np.float64)) @ abs(W) + abs(b))
    check_kernel(backend, "dense_act_forward", args, {"pre": expect}, tol)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N,I,O", FUSED_SHAPES)
@pytest.mark.parametrize("with_dx", [True, False])
def test_dense_act_backward(backend, dtype, threads, rng, kind, N, I, O, with_dx):
    x, W, dpost = randn(rng, (N, I), dtype), randn(rng, (I, O), dtype), randn(rng, (N, O), dtype)
    pre, post = act_pair(kind, dtype, rng, (N, O))
    dx0, dW0, db0, dpre0 = (randn(rng, s, dtype) for s in ((N, I), (I, O), O, (N, O)))
    args = dict(dx=dx0 if with_dx else None, dW=dW0, db=db0, dpre=dpre0, dpost=dpost, x=x, W=W, pre=pre, post=post,
                kind=kind, param=PARAM)
    # dZ by the reference activation; then the products and db by the formula, each with its own tolerance
    dz = dpre0.copy()
    backward = getattr(fastnn.reference, f"{kind}_backward")
    backward(dz, dpost, pre, post, PARAM) if kind == "leaky_relu" else backward(dz, dpost, pre, post)
    dz, x64, W64 = dz.astype(np.float64), x.astype(np.float64), W.astype(np.float64)
    expect = {"dW": (dW0 + x64.T @ dz, abs(dW0) + abs(x64.T) @ abs(dz)),
              "db": (db0 + dz.sum(0), abs(db0) + abs(dz).sum(0))}
    if with_dx:
        expect["dx"] = (dx0 + dz @ W64.T, abs(dx0) + abs(dz) @ abs(W64).T)
    tol = max(tolerance(dtype, value, terms) for value, terms in expect.values())
    dpre64 = dpre0.astype(np.float64)   # dpre = dpre0 + dpost f'(pre) can cancel too: its terms' scale
    tol = max(tol, tolerance(dtype, dz, abs(dpre64) + abs(dz - dpre64)))
    check_kernel(backend, "dense_act_backward", args, {name: value for name, (value, _) in expect.items()}, tol)


@pytest.mark.parametrize("kind", KINDS)
def test_dense_act_kernels_equal_the_unfused_sequence(dtype, rng, kind):
    """The fused kernels do the same arithmetic as dense_* then the activation kernel: the same bits."""
    k = fastnn.get_backend("compiled")
    act = {"param": PARAM} if kind == "leaky_relu" else {}
    N, I, O = 130, 70, 300
    x, W, b = randn(rng, (N, I), dtype), randn(rng, (I, O), dtype), randn(rng, O, dtype)
    pre, post = np.empty((N, O), dtype), np.empty((N, O), dtype)
    k.dense_act_forward(pre, post, x, W, b, kind, PARAM)
    pre2, post2 = np.empty((N, O), dtype), np.empty((N, O), dtype)
    k.dense_forward(pre2, x, W, b)
    getattr(k, f"{kind}_forward")(post2, pre2, *act.values())
    np.testing.assert_array_equal(pre, pre2)
    np.testing.assert_array_equal(post, post2)

    dpost = randn(rng, (N, O), dtype)
    grads = [np.zeros(s, dtype) for s in ((N, I), (I, O), O, (N, O))]
    k.dense_act_backward(*grads, dpost, x, W, pre, post, kind, PARAM)
    grads2 = [np.zeros(s, dtype) for s in ((N, I), (I, O), O, (N, O))]
    getattr(k, f"{kind}_backward")(grads2[3], dpost, pre, post, *act.values())
    k.dense_backward(*grads2[:3], grads2[3], x, W)
    for a, e in zip(grads, grads2):
        np.testing.assert_array_equal(a, e)


# fastnn's GEMM split by columns (33 panels), by rows on 2 threads and columns on 3 (3 panels); on the transpose in
# 256-row blocks (3 outputs: narrow); BLAS in column stripes (W4-wide); float64's BLAS, in 2 and 3 uneven stripes
SAME_BITS_CASES = [(np.float32, (256, 300, 520)), (np.float32, (512, 300, 40)), (np.float32, (8192, 16, 3)),
                   (np.float32, (256, 1100, 1024)),
                   (np.float64, (256, 300, 520)), (np.float64, (1100, 40, 300)), (np.float64, (64, 100, 2500))]


@pytest.mark.parametrize("name", ["dense_forward", "dense_backward", "dense_act_forward", "dense_act_backward"])
@pytest.mark.parametrize("dtype, shape", SAME_BITS_CASES, ids=lambda v: str(v) if isinstance(v, tuple) else None)
def test_dense_same_bits_on_1_and_2_threads(rng, name, dtype, shape):
    N, I, O = shape
    x, W, b = randn(rng, (N, I), dtype), randn(rng, (I, O), dtype), randn(rng, O, dtype)
    pre, post = act_pair("gelu", dtype, rng, (N, O))
    dpost = randn(rng, (N, O), dtype)

    def run():
        k = fastnn.get_backend("compiled")
        o = [np.zeros(s, dtype) for s in ((N, I), (I, O), O, (N, O), (N, O))]
        if name == "dense_forward":
            k.dense_forward(o[3], x, W, b)
        elif name == "dense_backward":
            k.dense_backward(o[0], o[1], o[2], dpost, x, W)
        elif name == "dense_act_forward":
            k.dense_act_forward(o[3], o[4], x, W, b, "gelu")
        else:
            k.dense_act_backward(o[0], o[1], o[2], o[3], dpost, x, W, pre, post, "gelu")
        return o
    first, *others = on_thread_counts(run)
    for outs in others:
        for a, e in zip(outs, first):
            np.testing.assert_array_equal(a, e)


def test_dense_act_unknown_kind(backend):
    x, W, b = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), np.ones(4, np.float32)
    pre, post = np.empty((2, 4), np.float32), np.empty((2, 4), np.float32)
    with pytest.raises(ValueError, match="unknown activation kind"):
        backend.dense_act_forward(pre, post, x, W, b, "swish")
    with pytest.raises(ValueError, match="unknown activation kind"):
        backend.dense_act_backward(None, np.zeros((3, 4), np.float32), np.zeros(4, np.float32), pre, post, x, W,
                                   pre, post, 3)

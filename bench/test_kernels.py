"""Every kernel of a training step at the shapes of the workloads W1-W4 (fastnn.bench.workloads), compiled
beside its NumPy twin: pytest-benchmark groups the pair, and each group is checked equal before it is timed.

Ids: W<k>-L<l> is layer l of workload k; shapes are N (batch) x I (in) x O (out), or N x F, or P params.
"""
import zlib

import numpy as np
import pytest

import fastnn
from fastnn.bench.workloads import WORKLOADS
from fastnn.reference.dense import ACTIVATION_KINDS

BACKENDS = ["compiled", "numpy"]
DTYPE = np.float32


def _rng(case_id):
    return np.random.default_rng(zlib.crc32(case_id.encode()))  # the same inputs every run


def _normal(rng, *shape):
    return rng.standard_normal(shape, dtype=DTYPE)


def _layers():
    """(id, N, I, O, first, last) of every layer of every workload."""
    for w in WORKLOADS.values():
        for l, (i, o) in enumerate(w.shapes):
            yield f"{w.name}-L{l}-{w.batch}x{i}x{o}", w.batch, i, o, l == 0, l == len(w.shapes) - 1


LAYERS = list(_layers())
HIDDEN = [layer for layer in LAYERS if not layer[5]]
# the (N, F) of every hidden activation, each shape once (W4's two hidden layers share one)
ACT_SHAPES = list(dict.fromkeys((n, o) for _, n, _, o, _, _ in HIDDEN))
LAYER_IDS = [layer[0] for layer in LAYERS]


def dense_args(kernel, case_id, n, i, o, first, act=False):
    rng = _rng(case_id)
    x, W, b = _normal(rng, n, i), _normal(rng, i, o) / i ** 0.5, _normal(rng, o)
    if kernel.endswith("forward"):
        out = np.empty((n, o), DTYPE)
        return dict(pre=out, post=np.empty_like(out), x=x, W=W, b=b, kind="relu") if act else \
            dict(out=out, x=x, W=W, b=b)
    # backward: the first layer needs no dx (its input is the data)
    grads = dict(dx=None if first else np.zeros((n, i), DTYPE), dW=np.zeros((i, o), DTYPE), db=np.zeros(o, DTYPE))
    if not act:
        return dict(grads, dout=_normal(rng, n, o), x=x, W=W)
    pre = _normal(rng, n, o)
    return dict(grads, dpre=np.zeros((n, o), DTYPE), dpost=_normal(rng, n, o), x=x, W=W, pre=pre,
                post=np.maximum(pre, 0), kind="relu")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", ["dense_forward", "dense_backward"])
@pytest.mark.parametrize("case_id,n,i,o,first,last", LAYERS, ids=LAYER_IDS)
def test_dense(time_kernel, backend, kernel, case_id, n, i, o, first, last):
    time_kernel(backend, kernel, dense_args(kernel, case_id, n, i, o, first), f"{kernel} {case_id}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", ["dense_act_forward", "dense_act_backward"])
@pytest.mark.parametrize("case_id,n,i,o,first,last", HIDDEN, ids=[h[0] for h in HIDDEN])
def test_dense_relu(time_kernel, backend, kernel, case_id, n, i, o, first, last):
    time_kernel(backend, kernel, dense_args(kernel, case_id, n, i, o, first, act=True), f"{kernel} relu {case_id}")


# The three products of a layer's step: forward x W, dW = x^T dout, dx = dout W^T.
GEMM_PRODUCTS = {"xW": lambda n, i, o: ((n, o), (n, i), (i, o), False, False),
                 "xT_dout": lambda n, i, o: ((i, o), (n, i), (n, o), True, False),
                 "dout_WT": lambda n, i, o: ((n, i), (n, o), (i, o), False, True)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("product", list(GEMM_PRODUCTS))
@pytest.mark.parametrize("case_id,n,i,o,first,last", LAYERS, ids=LAYER_IDS)
def test_gemm(time_kernel, backend, product, case_id, n, i, o, first, last):
    c, a, b, trans_a, trans_b = GEMM_PRODUCTS[product](n, i, o)
    rng = _rng(case_id + product)
    args = dict(C=np.empty(c, DTYPE), A=_normal(rng, *a), B=_normal(rng, *b), trans_a=trans_a, trans_b=trans_b)
    time_kernel(backend, "gemm", args, f"gemm {product} {case_id}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("kind", ACTIVATION_KINDS)
@pytest.mark.parametrize("n,f", ACT_SHAPES, ids=[f"{n}x{f}" for n, f in ACT_SHAPES])
def test_activation(time_kernel, backend, direction, kind, n, f):
    case_id = f"{kind}_{direction} {n}x{f}"
    rng = _rng(case_id)
    x = _normal(rng, n, f)
    if direction == "forward":
        args = dict(out=np.empty_like(x), x=x)
    else:
        out = np.empty_like(x)
        getattr(fastnn.reference, f"{kind}_forward")(out, x)  # backward reads forward's output
        args = dict(dx=np.zeros_like(x), dout=_normal(rng, n, f), x=x, out=out)
    time_kernel(backend, f"{kind}_{direction}", args, case_id)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_softmax_cross_entropy(time_kernel, backend, direction, workload):
    n, classes = WORKLOADS[workload].batch, WORKLOADS[workload].layers[-1]
    case_id = f"cross_entropy_{direction} {workload} {n}x{classes}"
    rng = _rng(case_id)
    logits, targets = 3 * _normal(rng, n, classes), rng.integers(0, classes, n)
    out = np.empty_like(logits)
    if direction == "forward":
        args = dict(out=out, logits=logits, targets=targets)
    else:
        np.exp(logits - logits.max(axis=1, keepdims=True), out=out)
        out /= out.sum(axis=1, keepdims=True)
        args = dict(dlogits=np.zeros_like(logits), out=out, targets=targets)
    time_kernel(backend, f"cross_entropy_{direction}", args, case_id)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_optimizer_step(time_kernel, backend, optimizer, workload):
    p = WORKLOADS[workload].n_params
    case_id = f"{optimizer}_step {workload} P={p:,}"
    rng = _rng(case_id)
    params, grads = _normal(rng, p), _normal(rng, p)
    if optimizer == "adam":  # a mid-training step: moments already filled
        args = dict(params=params, exp_avg=0.1 * _normal(rng, p), exp_avg_sq=np.abs(0.01 * _normal(rng, p)),
                    max_exp_avg_sq=None, grads=grads, step=10, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                    weight_decay=0.0, amsgrad=False, maximize=False, decoupled_weight_decay=False)
    else:  # SGD with momentum, past the first step
        args = dict(params=params, momentum_buffer=_normal(rng, p), grads=grads, lr=1e-3, momentum=0.9,
                    dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, first_step=False)
    time_kernel(backend, f"{optimizer}_step", args, case_id)

"""Dense layer in pure NumPy: the twin of csrc/dense.pxd. Legend: N batch, I in-features, O out-features."""
from .._spec import kernel
from . import activations

__all__ = ["dense_forward", "dense_backward", "dense_act_forward", "dense_act_backward"]

# The activation kinds of the fused kernels, by the names of the activation kernels (relu -> relu_forward).
ACTIVATION_KINDS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softplus", "silu")


@kernel("out:N,O:out", "x:N,I", "W:I,O", "b:O")
def dense_forward(out, x, W, b):
    """out = x @ W + b"""
    out[...] = x @ W + b


@kernel("dx:N,I:out,opt", "dW:I,O:out", "db:O:out", "dout:N,O", "x:N,I", "W:I,O")
def dense_backward(dx, dW, db, dout, x, W):
    """dW += x^T dout;  db += sum_rows(dout);  dx += dout W^T (dx may be None)"""
    dW += x.T @ dout
    db += dout.sum(axis=0)
    if dx is not None:
        dx += dout @ W.T


def _activation(name, kind, direction, param):
    """The reference activation kernel `<kind>_<direction>`, with leaky_relu's slope bound."""
    if not isinstance(kind, str) or kind not in ACTIVATION_KINDS:
        raise ValueError(f"{name}: unknown activation kind {kind!r}; choose one of {sorted(ACTIVATION_KINDS)}")
    fn = getattr(activations, f"{kind}_{direction}")
    return (lambda *arrays: fn(*arrays, param)) if kind == "leaky_relu" else fn


@kernel("pre:N,O:out", "post:N,O:out", "x:N,I", "W:I,O", "b:O")
def dense_act_forward(pre, post, x, W, b, kind, param=0.01):
    """pre = x @ W + b;  post = f_kind(pre)  (kind: an activation name; param: leaky_relu's negative_slope)"""
    act = _activation("dense_act_forward", kind, "forward", param)
    dense_forward(pre, x, W, b)
    act(post, pre)


@kernel("dx:N,I:out,opt", "dW:I,O:out", "db:O:out", "dpre:N,O:out", "dpost:N,O", "x:N,I", "W:I,O", "pre:N,O",
        "post:N,O")
def dense_act_backward(dx, dW, db, dpre, dpost, x, W, pre, post, kind, param=0.01):
    """dpre += dpost * f_kind'(pre);  dW += x^T dpre;  db += sum_rows(dpre);  dx += dpre W^T (dx may be None)"""
    act = _activation("dense_act_backward", kind, "backward", param)
    act(dpre, dpost, pre, post)
    dense_backward(dx, dW, db, dpre, x, W)

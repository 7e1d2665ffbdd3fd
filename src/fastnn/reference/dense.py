"""Dense layer in pure NumPy: the twin of csrc/dense.pxd. Legend: N batch, I in-features, O out-features."""
from .._spec import kernel

__all__ = ["dense_forward", "dense_backward"]


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

"""Output activation + loss in pure NumPy: the twin of csrc/losses.pxd. Legend: N batch, O outputs.

Forward writes the output activation into `out` and returns the mean loss (PyTorch's reduction="mean":
cross-entropy over rows, the others over all N*O elements); terms are computed in the arrays' dtype and summed
in float64. Backward accumulates (+=) d(mean loss)/d(logits) into dlogits, from `out` and the targets.
"""
import numpy as np

from .._spec import kernel

__all__ = ["cross_entropy_forward", "cross_entropy_backward",
           "binary_cross_entropy_forward", "binary_cross_entropy_backward",
           "mse_forward", "mse_backward", "mae_forward", "mae_backward", "huber_forward", "huber_backward"]

FORWARD_CLASSES = ("out:N,O:out", "logits:N,O", "targets:N:index<O")
BACKWARD_CLASSES = ("dlogits:N,O:out", "out:N,O", "targets:N:index<O")
FORWARD = ("out:N,O:out", "logits:N,O", "targets:N,O")
BACKWARD = ("dlogits:N,O:out", "out:N,O", "targets:N,O")


def _mean(terms):
    return float(terms.sum(dtype=np.float64) / terms.size)


def _scale(a, value, count=None):
    """value / count (default a.size) in a's dtype: the factor the compiled kernels multiply by"""
    return a.dtype.type(value / (a.size if count is None else count))


def _identity_mean(out, logits, targets, term):
    """out = z;  return mean(term(z - y))"""
    d = logits - targets
    out[...] = logits
    return _mean(term(d))


def _check_delta(name, delta):
    if not delta > 0:  # NaN too
        raise ValueError(f"{name}: delta must be positive, got {delta:g}")


@kernel(*FORWARD_CLASSES)
def cross_entropy_forward(out, logits, targets):
    """out = softmax(z) row-wise;  return mean_n(logsumexp(z_n) - z_n[y_n])"""
    rows = np.arange(len(targets))
    k = logits.argmax(axis=1)
    m = logits[rows, k]
    z_y = logits[rows, targets]  # before out is written: out may be logits
    np.exp(logits - m[:, None], out=out)
    out[rows, k] = 0  # the max term exp(0) = 1 stays out of the sum, so that log1p sees the rest whole
    rest = out.sum(axis=1)
    out[rows, k] = 1
    out /= (1 + rest)[:, None]
    return _mean((m - z_y) + np.log1p(rest))


@kernel(*BACKWARD_CLASSES)
def cross_entropy_backward(dlogits, out, targets):
    """dlogits += (out - onehot(y)) / N"""
    g = out.copy()
    g[np.arange(len(targets)), targets] -= 1
    dlogits += g * _scale(out, 1.0, len(targets))


@kernel(*FORWARD)
def binary_cross_entropy_forward(out, logits, targets):
    """out = sigmoid(z);  return mean(max(z, 0) - z y + log1p(exp(-|z|)))"""
    e = np.exp(-np.abs(logits))  # in [0, 1]: neither the sigmoid nor the loss can overflow
    # max(z, 0) - z y as z (1 - y) or -z y: terms >= 0 (y in [0, 1]), no cancellation when the loss is near 0
    loss = _mean(np.where(logits >= 0, logits * (1 - targets), -logits * targets) + np.log1p(e))
    np.divide(np.where(logits >= 0, 1, e), 1 + e, out=out)
    return loss


@kernel(*BACKWARD)
def binary_cross_entropy_backward(dlogits, out, targets):
    """dlogits += (out - y) / (N O)"""
    dlogits += (out - targets) * _scale(out, 1.0)


@kernel(*FORWARD)
def mse_forward(out, logits, targets):
    """out = z;  return mean((z - y)^2)"""
    return _identity_mean(out, logits, targets, lambda d: d * d)


@kernel(*BACKWARD)
def mse_backward(dlogits, out, targets):
    """dlogits += 2 (z - y) / (N O)"""
    dlogits += (out - targets) * _scale(out, 2.0)


@kernel(*FORWARD)
def mae_forward(out, logits, targets):
    """out = z;  return mean(|z - y|)"""
    return _identity_mean(out, logits, targets, np.abs)


@kernel(*BACKWARD)
def mae_backward(dlogits, out, targets):
    """dlogits += sign(z - y) / (N O), sign(0) = 0 as PyTorch"""
    dlogits += np.sign(out - targets) * _scale(out, 1.0)


@kernel(*FORWARD)
def huber_forward(out, logits, targets, delta=1.0):
    """out = z;  return mean(0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta)), d = z - y"""
    _check_delta("huber_forward", delta)
    delta = logits.dtype.type(delta)

    def term(d):
        a = np.abs(d)
        return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))

    return _identity_mean(out, logits, targets, term)


@kernel(*BACKWARD)
def huber_backward(dlogits, out, targets, delta=1.0):
    """dlogits += clamp(z - y, -delta, delta) / (N O)"""
    _check_delta("huber_backward", delta)
    delta = out.dtype.type(delta)
    dlogits += np.clip(out - targets, -delta, delta) * _scale(out, 1.0)

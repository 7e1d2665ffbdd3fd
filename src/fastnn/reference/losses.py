"""Output activation + loss in pure NumPy: the twin of csrc/losses.pxd. Legend: N batch, O outputs.

Forward writes the output activation into `out` and returns the mean loss (PyTorch's reduction="mean":
cross-entropy over rows, the others over all N*O elements); with sample_weight (N,) it is the weighted mean
sum_n w_n l_n / sum_n w_n (0 when the weights sum to 0). Terms are computed in the arrays' dtype and summed
in float64. Backward accumulates (+=) d(mean loss)/d(logits) into dlogits, from `out` and the targets.
"""
import numpy as np

from .._spec import kernel

__all__ = ["softmax_forward", "cross_entropy_forward", "cross_entropy_backward",
           "binary_cross_entropy_forward", "binary_cross_entropy_backward",
           "mse_forward", "mse_backward", "mae_forward", "mae_backward", "huber_forward", "huber_backward"]

WEIGHTS = "sample_weight:N:opt"
FORWARD_CLASSES = ("out:N,O:out", "logits:N,O", "targets:N:index<O", WEIGHTS)
BACKWARD_CLASSES = ("dlogits:N,O:out", "out:N,O", "targets:N:index<O", WEIGHTS)
FORWARD = ("out:N,O:out", "logits:N,O", "targets:N,O", WEIGHTS)
BACKWARD = ("dlogits:N,O:out", "out:N,O", "targets:N,O", WEIGHTS)


def _weights(sample_weight, n):
    return np.ones(n) if sample_weight is None else sample_weight.astype(np.float64)


def _mean(terms, sample_weight):
    """sum_n w_n sum_o terms_no / (O sum w), rows summed in float64 (terms is (N,) or (N, O))"""
    rows = terms.reshape(len(terms), -1)
    w = _weights(sample_weight, len(terms))
    wsum = w.sum()
    return float((rows.sum(axis=1, dtype=np.float64) * w).sum() / (wsum * rows.shape[1])) if wsum != 0 else 0.0


def _scale(a, value, sample_weight, per_element=True):
    """(N, 1) row factors value w_n / (O sum w), rounded to a's dtype as the compiled kernels do"""
    w = _weights(sample_weight, a.shape[0])
    denominator = w.sum() * (a.shape[1] if per_element else 1)
    factors = value * w / denominator if denominator != 0 else np.zeros_like(w)
    return factors.astype(a.dtype)[:, None]


def _identity_mean(out, logits, targets, sample_weight, term):
    """out = z;  return the weighted mean of term(z - y)"""
    d = logits - targets
    out[...] = logits
    return _mean(term(d), sample_weight)


@kernel("out:N,O:out", "logits:N,O")
def softmax_forward(out, logits):
    """out = softmax(z) row-wise"""
    _softmax(out, logits)


def _softmax(out, logits):
    """out = softmax(z); returns (max z, sum of exp(z - max) without the max term) per row"""
    rows = np.arange(len(logits))
    k = logits.argmax(axis=1)
    m = logits[rows, k]
    np.exp(logits - m[:, None], out=out)
    out[rows, k] = 0  # the max term exp(0) = 1 stays out of the sum, so that log1p sees the rest whole
    rest = out.sum(axis=1)
    out[rows, k] = 1
    out /= (1 + rest)[:, None]
    return m, rest


def _check_delta(name, delta):
    if not delta > 0:  # NaN too
        raise ValueError(f"{name}: delta must be positive, got {delta:g}")


@kernel(*FORWARD_CLASSES)
def cross_entropy_forward(out, logits, targets, sample_weight=None):
    """out = softmax(z) row-wise;  return sum_n w_n (logsumexp(z_n) - z_n[y_n]) / sum_n w_n"""
    z_y = logits[np.arange(len(targets)), targets]  # before out is written: out may be logits
    m, rest = _softmax(out, logits)
    return _mean((m - z_y) + np.log1p(rest), sample_weight)


@kernel(*BACKWARD_CLASSES)
def cross_entropy_backward(dlogits, out, targets, sample_weight=None):
    """dlogits += w_n (out - onehot(y)) / sum w (w = 1 without sample_weight)"""
    g = out.copy()
    g[np.arange(len(targets)), targets] -= 1
    dlogits += g * _scale(out, 1.0, sample_weight, per_element=False)


@kernel(*FORWARD)
def binary_cross_entropy_forward(out, logits, targets, sample_weight=None):
    """out = sigmoid(z);  return mean(max(z, 0) - z y + log1p(exp(-|z|)))"""
    e = np.exp(-np.abs(logits))  # in [0, 1]: neither the sigmoid nor the loss can overflow
    # max(z, 0) - z y as z (1 - y) or -z y: terms >= 0 (y in [0, 1]), no cancellation when the loss is near 0
    loss = _mean(np.where(logits >= 0, logits * (1 - targets), -logits * targets) + np.log1p(e), sample_weight)
    np.divide(np.where(logits >= 0, 1, e), 1 + e, out=out)
    return loss


@kernel(*BACKWARD)
def binary_cross_entropy_backward(dlogits, out, targets, sample_weight=None):
    """dlogits += (out - y) / (N O)"""
    dlogits += (out - targets) * _scale(out, 1.0, sample_weight)


@kernel(*FORWARD)
def mse_forward(out, logits, targets, sample_weight=None):
    """out = z;  return weighted mean((z - y)^2)"""
    return _identity_mean(out, logits, targets, sample_weight, lambda d: d * d)


@kernel(*BACKWARD)
def mse_backward(dlogits, out, targets, sample_weight=None):
    """dlogits += 2 (z - y) / (N O)"""
    dlogits += (out - targets) * _scale(out, 2.0, sample_weight)


@kernel(*FORWARD)
def mae_forward(out, logits, targets, sample_weight=None):
    """out = z;  return weighted mean(|z - y|)"""
    return _identity_mean(out, logits, targets, sample_weight, np.abs)


@kernel(*BACKWARD)
def mae_backward(dlogits, out, targets, sample_weight=None):
    """dlogits += sign(z - y) / (N O), sign(0) = 0 as PyTorch"""
    dlogits += np.sign(out - targets) * _scale(out, 1.0, sample_weight)


@kernel(*FORWARD)
def huber_forward(out, logits, targets, delta=1.0, sample_weight=None):
    """out = z;  return mean(0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta)), d = z - y"""
    _check_delta("huber_forward", delta)
    delta = logits.dtype.type(delta)

    def term(d):
        a = np.abs(d)
        return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))

    return _identity_mean(out, logits, targets, sample_weight, term)


@kernel(*BACKWARD)
def huber_backward(dlogits, out, targets, delta=1.0, sample_weight=None):
    """dlogits += clamp(z - y, -delta, delta) / (N O)"""
    _check_delta("huber_backward", delta)
    delta = out.dtype.type(delta)
    dlogits += np.clip(out - targets, -delta, delta) * _scale(out, 1.0, sample_weight)

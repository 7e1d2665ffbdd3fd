"""Python face of the loss kernels (see losses.pxd). Shapes and class indices are checked here too: never trust
the caller. Every wrapper goes through the by-code dispatchers, so they are tested with the kernels."""
from cython cimport floating
from libc.stdint cimport int64_t
cimport losses
from losses cimport CROSS_ENTROPY, BINARY_CROSS_ENTROPY, MSE, MAE, HUBER


cdef int _check(str name, str first, floating[:, ::1] a, str second, const floating[:, ::1] b,
                const int64_t[::1] classes, const floating[:, ::1] targets) except -1:
    """a and b (N, O) non-empty; classes (N,) with every index in [0, O), or targets (N, O)"""
    cdef Py_ssize_t N = b.shape[0], O = b.shape[1], n
    cdef bint ok = a.shape[0] == N and a.shape[1] == O and N > 0 and O > 0
    if classes is not None:
        ok = ok and classes.shape[0] == N
        t = f"({classes.shape[0]},)"
    else:
        ok = ok and targets.shape[0] == N and targets.shape[1] == O
        t = f"({targets.shape[0]}, {targets.shape[1]})"
    if not ok:
        raise ValueError(f"{name}: shapes disagree: {first} ({a.shape[0]}, {a.shape[1]}), {second} ({N}, {O}), "
                         f"targets {t}")
    if classes is not None:
        for n in range(N):
            if classes[n] < 0 or classes[n] >= O:
                raise ValueError(f"{name}: targets[{n}] = {classes[n]} is not a class index in [0, {O})")
    return 0


cdef int _check_delta(str name, double delta) except -1:
    if not delta > 0:   # NaN too
        raise ValueError(f"{name}: delta must be positive, got {delta:g}")
    return 0


cdef const floating* _weights(str name, const floating[::1] weights, Py_ssize_t N) except? NULL:
    """The sample weights' pointer (NULL for None), once their length is checked"""
    if weights is None:
        return NULL
    if weights.shape[0] != N:
        raise ValueError(f"{name}: sample_weight has {weights.shape[0]} entries for {N} rows")
    return &weights[0]


cdef double _forward(str name, int kind, floating[:, ::1] out, const floating[:, ::1] logits,
                     const int64_t[::1] classes, const floating[:, ::1] targets, floating delta,
                     const floating[::1] weights) except? -1:
    _check(name, "out", out, "logits", logits, classes, targets)
    cdef const int64_t* c = &classes[0] if classes is not None else NULL
    cdef const floating* t = &targets[0, 0] if targets is not None else NULL
    cdef const floating* w = _weights(name, weights, out.shape[0])
    cdef double loss
    with nogil:
        loss = losses.loss_mean(kind, losses.loss_total(kind, &out[0, 0], &logits[0, 0], c, t, w, out.shape[0],
                                                        out.shape[1], delta),
                                losses.weight_sum(w, out.shape[0]), out.shape[1])
    return loss


cdef int _backward(str name, int kind, floating[:, ::1] dlogits, const floating[:, ::1] out,
                   const int64_t[::1] classes, const floating[:, ::1] targets, floating delta,
                   const floating[::1] weights) except -1:
    _check(name, "dlogits", dlogits, "out", out, classes, targets)
    cdef const int64_t* c = &classes[0] if classes is not None else NULL
    cdef const floating* t = &targets[0, 0] if targets is not None else NULL
    cdef const floating* w = _weights(name, weights, out.shape[0])
    with nogil:
        losses.loss_backward_rows(kind, &dlogits[0, 0], &out[0, 0], c, t, w, out.shape[0], out.shape[1], delta,
                                  losses.weight_sum(w, out.shape[0]))
    return 0


def softmax_forward(floating[:, ::1] out not None, const floating[:, ::1] logits not None):
    """out = softmax(z) row-wise"""
    if out.shape[0] != logits.shape[0] or out.shape[1] != logits.shape[1] or out.shape[0] == 0 or out.shape[1] == 0:
        raise ValueError(f"softmax_forward: shapes disagree: out ({out.shape[0]}, {out.shape[1]}), "
                         f"logits ({logits.shape[0]}, {logits.shape[1]})")
    with nogil:
        losses.softmax_forward(&out[0, 0], &logits[0, 0], out.shape[0], out.shape[1])


def cross_entropy_forward(floating[:, ::1] out not None, const floating[:, ::1] logits not None,
                          const int64_t[::1] targets not None, sample_weight=None):
    """out = softmax(z) row-wise;  return mean_n(logsumexp(z_n) - z_n[y_n])"""
    return _forward[floating]("cross_entropy_forward", CROSS_ENTROPY, out, logits, targets, None, 0, sample_weight)


def cross_entropy_backward(floating[:, ::1] dlogits not None, const floating[:, ::1] out not None,
                           const int64_t[::1] targets not None, sample_weight=None):
    """dlogits += w_n (out - onehot(y)) / sum w (w = 1 without sample_weight)"""
    _backward[floating]("cross_entropy_backward", CROSS_ENTROPY, dlogits, out, targets, None, 0, sample_weight)


def binary_cross_entropy_forward(floating[:, ::1] out not None, const floating[:, ::1] logits not None,
                                 const floating[:, ::1] targets not None, sample_weight=None):
    """out = sigmoid(z);  return mean(max(z, 0) - z y + log1p(exp(-|z|)))"""
    return _forward[floating]("binary_cross_entropy_forward", BINARY_CROSS_ENTROPY, out, logits, None, targets, 0, sample_weight)


def binary_cross_entropy_backward(floating[:, ::1] dlogits not None, const floating[:, ::1] out not None,
                                  const floating[:, ::1] targets not None, sample_weight=None):
    """dlogits += (out - y) / (N O)"""
    _backward[floating]("binary_cross_entropy_backward", BINARY_CROSS_ENTROPY, dlogits, out, None, targets, 0, sample_weight)


def mse_forward(floating[:, ::1] out not None, const floating[:, ::1] logits not None,
                const floating[:, ::1] targets not None, sample_weight=None):
    """out = z;  return mean((z - y)^2)"""
    return _forward[floating]("mse_forward", MSE, out, logits, None, targets, 0, sample_weight)


def mse_backward(floating[:, ::1] dlogits not None, const floating[:, ::1] out not None,
                 const floating[:, ::1] targets not None, sample_weight=None):
    """dlogits += 2 (z - y) / (N O)"""
    _backward[floating]("mse_backward", MSE, dlogits, out, None, targets, 0, sample_weight)


def mae_forward(floating[:, ::1] out not None, const floating[:, ::1] logits not None,
                const floating[:, ::1] targets not None, sample_weight=None):
    """out = z;  return mean(|z - y|)"""
    return _forward[floating]("mae_forward", MAE, out, logits, None, targets, 0, sample_weight)


def mae_backward(floating[:, ::1] dlogits not None, const floating[:, ::1] out not None,
                 const floating[:, ::1] targets not None, sample_weight=None):
    """dlogits += sign(z - y) / (N O), sign(0) = 0"""
    _backward[floating]("mae_backward", MAE, dlogits, out, None, targets, 0, sample_weight)


def huber_forward(floating[:, ::1] out not None, const floating[:, ::1] logits not None,
                  const floating[:, ::1] targets not None, double delta=1.0, sample_weight=None):
    """out = z;  return mean(0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta)), d = z - y"""
    _check_delta("huber_forward", delta)
    return _forward[floating]("huber_forward", HUBER, out, logits, None, targets, <floating>delta, sample_weight)


def huber_backward(floating[:, ::1] dlogits not None, const floating[:, ::1] out not None,
                   const floating[:, ::1] targets not None, double delta=1.0, sample_weight=None):
    """dlogits += clamp(z - y, -delta, delta) / (N O)"""
    _check_delta("huber_backward", delta)
    _backward[floating]("huber_backward", HUBER, dlogits, out, None, targets, <floating>delta, sample_weight)

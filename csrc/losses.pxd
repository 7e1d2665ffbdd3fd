# Output activation + loss kernels, fused: forward writes the output activation (softmax, sigmoid, identity)
# and returns the mean loss; backward adds d(mean loss)/d(logits), from what forward saved and the targets.
# Legend: N batch rows, O outputs (n = N*O for the flat helper). All arrays row-major (C order).
# Means follow PyTorch's reduction="mean": cross-entropy over the N rows, the others over all N*O elements.
# Terms are computed in the arrays' dtype and summed in double, rows in order. Backward accumulates (+=) into
# dlogits; the caller zeroes the flat gradient buffer once per step.
# Serial on purpose: the output layer is narrow (e.g. 128 x 10), so an OpenMP fork/join would cost more than
# the work, and one summation order makes the loss the same bits whatever the thread count.
from cython cimport floating
from libc.stdint cimport int64_t
from libc.math cimport exp, expf, log1p, log1pf, NAN


cdef enum Loss:                 # codes for loss_forward / loss_backward, so a C loop can hold a loss as an int
    CROSS_ENTROPY = 0
    BINARY_CROSS_ENTROPY = 1
    MSE = 2
    MAE = 3
    HUBER = 4


# ---- scalar helpers: the float functions for float, so float32 work stays in float32 ----

cdef inline floating _exp(floating t) noexcept nogil:
    """exp(t), flushed to 0 below exp(-87) = 1.6e-38 (float) / exp(-708) = 3.3e-308 (double); NaN stays NaN"""
    # glibc's expf/exp leave their fast path once the result nears the subnormal range (about 1.5x per call,
    # measured), and softmax sends every non-winning class there once the logits separate. Below the floor the
    # call is skipped: no probability near 1 can see a result that small. `<` lets a NaN logit through to the loss.
    if floating is float:
        return 0 if t < -87 else expf(t)
    else:
        return 0 if t < -708 else exp(t)


cdef inline floating _log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline void _add_scaled_difference(floating* dlogits,               # OUT (n,) +=
                                        const floating* out,             # IN  (n,)
                                        const floating* targets,         # IN  (n,)
                                        Py_ssize_t n, floating scale) noexcept nogil:
    """dlogits += (out - targets) * scale"""
    cdef Py_ssize_t i
    for i in range(n):
        dlogits[i] += (out[i] - targets[i]) * scale


# ---- softmax + cross-entropy: targets are class indices ----

cdef inline double cross_entropy_forward(floating* out,                  # OUT (N, O) softmax(logits)
                                         const floating* logits,         # IN  (N, O)
                                         const int64_t* targets,         # IN  (N,) class indices in [0, O)
                                         int N, int O) noexcept nogil:
    """out = softmax(z) row-wise;  return mean_n(logsumexp(z_n) - z_n[y_n])"""
    cdef int n, o, k
    cdef floating m, rest, s, z_y
    cdef const floating* z
    cdef floating* p
    cdef double total = 0
    for n in range(N):
        z = logits + <Py_ssize_t>n * O
        p = out + <Py_ssize_t>n * O
        k = 0
        for o in range(1, O):
            if z[o] > z[k]:
                k = o
        m = z[k]
        z_y = z[targets[n]]     # read before out is written: out may be logits
        rest = 0                # sum of exp(z - m) without the max term exp(0) = 1, so that log1p sees it whole
        for o in range(O):
            p[o] = _exp(z[o] - m)
            if o != k:
                rest += p[o]
        s = 1 + rest
        for o in range(O):
            p[o] /= s
        # logsumexp - z_y = (m - z_y) + log1p(rest): two terms >= 0, so no cancellation even when the loss is
        # near 0 (y wins clearly), and finite for any finite logits
        total += (m - z_y) + _log1p(rest)
    return total / N


cdef inline void cross_entropy_backward(floating* dlogits,               # OUT (N, O) +=
                                        const floating* out,             # IN  (N, O) softmax saved by forward
                                        const int64_t* targets,          # IN  (N,) class indices in [0, O)
                                        int N, int O) noexcept nogil:
    """dlogits += (out - onehot(y)) / N"""
    cdef int n, o
    cdef int64_t y
    cdef floating scale = 1.0 / N
    cdef Py_ssize_t row
    for n in range(N):
        row = <Py_ssize_t>n * O
        y = targets[n]
        for o in range(O):
            dlogits[row + o] += (out[row + o] - (o == y)) * scale


# ---- sigmoid + binary cross-entropy (multi-label): targets are probabilities ----

cdef inline double binary_cross_entropy_forward(floating* out,           # OUT (N, O) sigmoid(logits)
                                                const floating* logits,  # IN  (N, O)
                                                const floating* targets, # IN  (N, O) in [0, 1]
                                                int N, int O) noexcept nogil:
    """out = sigmoid(z);  return mean(max(z, 0) - z y + log1p(exp(-|z|)))"""
    cdef Py_ssize_t i, size = <Py_ssize_t>N * O
    cdef floating z, y, e
    cdef double total = 0
    for i in range(size):
        z = logits[i]
        y = targets[i]
        e = _exp(-abs(z))       # in [0, 1]: neither the sigmoid nor the loss can overflow
        # max(z, 0) - z y as z (1 - y) or -z y: terms >= 0 (y in [0, 1]), no cancellation when the loss is near 0
        total += (z * (1 - y) if z >= 0 else -z * y) + _log1p(e)
        out[i] = (1 if z >= 0 else e) / (1 + e)
    return total / size


cdef inline void binary_cross_entropy_backward(floating* dlogits,        # OUT (N, O) +=
                                               const floating* out,      # IN  (N, O) sigmoid saved by forward
                                               const floating* targets,  # IN  (N, O)
                                               int N, int O) noexcept nogil:
    """dlogits += (out - y) / (N O)"""
    _add_scaled_difference(dlogits, out, targets, <Py_ssize_t>N * O, <floating>(1.0 / (<double>N * O)))


# ---- identity output + regression losses: d = z - y ----

cdef inline double mse_forward(floating* out,                            # OUT (N, O) = logits
                               const floating* logits,                   # IN  (N, O)
                               const floating* targets,                  # IN  (N, O)
                               int N, int O) noexcept nogil:
    """out = z;  return mean((z - y)^2)"""
    cdef Py_ssize_t i, size = <Py_ssize_t>N * O
    cdef floating d
    cdef double total = 0
    for i in range(size):
        d = logits[i] - targets[i]
        out[i] = logits[i]      # a loop, not memcpy: out may be logits
        total += d * d
    return total / size


cdef inline void mse_backward(floating* dlogits,                         # OUT (N, O) +=
                              const floating* out,                       # IN  (N, O) saved by forward
                              const floating* targets,                   # IN  (N, O)
                              int N, int O) noexcept nogil:
    """dlogits += 2 (z - y) / (N O)"""
    _add_scaled_difference(dlogits, out, targets, <Py_ssize_t>N * O, <floating>(2.0 / (<double>N * O)))


cdef inline double mae_forward(floating* out,                            # OUT (N, O) = logits
                               const floating* logits,                   # IN  (N, O)
                               const floating* targets,                  # IN  (N, O)
                               int N, int O) noexcept nogil:
    """out = z;  return mean(|z - y|)"""
    cdef Py_ssize_t i, size = <Py_ssize_t>N * O
    cdef floating d
    cdef double total = 0
    for i in range(size):
        d = logits[i] - targets[i]
        out[i] = logits[i]
        total += abs(d)
    return total / size


cdef inline void mae_backward(floating* dlogits,                         # OUT (N, O) +=
                              const floating* out,                       # IN  (N, O) saved by forward
                              const floating* targets,                   # IN  (N, O)
                              int N, int O) noexcept nogil:
    """dlogits += sign(z - y) / (N O), sign(0) = 0 as PyTorch"""
    cdef Py_ssize_t i, size = <Py_ssize_t>N * O
    cdef floating d, scale = 1.0 / (<double>N * O)
    for i in range(size):
        d = out[i] - targets[i]
        dlogits[i] += ((d > 0) - (d < 0)) * scale


cdef inline double huber_forward(floating* out,                          # OUT (N, O) = logits
                                 const floating* logits,                 # IN  (N, O)
                                 const floating* targets,                # IN  (N, O)
                                 int N, int O, floating delta) noexcept nogil:
    """out = z;  return mean(0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta)), d = z - y"""
    cdef Py_ssize_t i, size = <Py_ssize_t>N * O
    cdef floating d, a, half = 0.5
    cdef double total = 0
    for i in range(size):
        d = logits[i] - targets[i]
        a = abs(d)
        out[i] = logits[i]
        total += half * d * d if a < delta else delta * (a - half * delta)
    return total / size


cdef inline void huber_backward(floating* dlogits,                       # OUT (N, O) +=
                                const floating* out,                     # IN  (N, O) saved by forward
                                const floating* targets,                 # IN  (N, O)
                                int N, int O, floating delta) noexcept nogil:
    """dlogits += clamp(z - y, -delta, delta) / (N O)"""
    cdef Py_ssize_t i, size = <Py_ssize_t>N * O
    cdef floating d, scale = 1.0 / (<double>N * O)
    for i in range(size):
        d = out[i] - targets[i]
        dlogits[i] += min(max(d, -delta), delta) * scale


# ---- by code: the switch is outside the loops ----

cdef inline double loss_forward(int kind,                                # a Loss code
                                floating* out,                           # OUT (N, O) the output activation
                                const floating* logits,                  # IN  (N, O)
                                const int64_t* classes,                  # IN  (N,)   CROSS_ENTROPY only, else NULL
                                const floating* targets,                 # IN  (N, O) the other losses, else NULL
                                int N, int O, floating delta) noexcept nogil:
    """out = activation(z);  return the mean loss `kind` (delta: HUBER only); NaN for an unknown kind"""
    if kind == CROSS_ENTROPY:
        return cross_entropy_forward(out, logits, classes, N, O)
    if kind == BINARY_CROSS_ENTROPY:
        return binary_cross_entropy_forward(out, logits, targets, N, O)
    if kind == MSE:
        return mse_forward(out, logits, targets, N, O)
    if kind == MAE:
        return mae_forward(out, logits, targets, N, O)
    if kind == HUBER:
        return huber_forward(out, logits, targets, N, O, delta)
    return NAN


cdef inline int loss_backward(int kind,                                  # a Loss code
                              floating* dlogits,                         # OUT (N, O) +=
                              const floating* out,                       # IN  (N, O) saved by forward
                              const int64_t* classes,                    # IN  (N,)   CROSS_ENTROPY only, else NULL
                              const floating* targets,                   # IN  (N, O) the other losses, else NULL
                              int N, int O, floating delta) noexcept nogil:
    """dlogits += d(mean loss `kind`)/d(logits) (delta: HUBER only); returns 0, or -1 for an unknown kind"""
    if kind == CROSS_ENTROPY:
        cross_entropy_backward(dlogits, out, classes, N, O)
    elif kind == BINARY_CROSS_ENTROPY:
        binary_cross_entropy_backward(dlogits, out, targets, N, O)
    elif kind == MSE:
        mse_backward(dlogits, out, targets, N, O)
    elif kind == MAE:
        mae_backward(dlogits, out, targets, N, O)
    elif kind == HUBER:
        huber_backward(dlogits, out, targets, N, O, delta)
    else:
        return -1
    return 0

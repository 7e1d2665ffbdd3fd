# Output activation + loss kernels, fused: forward writes the output activation (softmax, sigmoid, identity)
# and returns the mean loss; backward adds d(mean loss)/d(logits), from what forward saved and the targets.
# Legend: N batch rows, O outputs (n = N*O for the flat helper). All arrays row-major (C order).
# Means follow PyTorch's reduction="mean": cross-entropy over the N rows, the others over all N*O elements.
# Sample weights w (N,), optional (NULL: all 1), make it the weighted mean sum_n w_n l_n / sum_n w_n (over rows;
# times 1/O for the element-wise losses), as torch's class-weighted cross-entropy and np.average; a batch
# whose weights sum to 0 contributes loss 0 and no gradient. Terms are computed in the arrays' dtype and
# summed in double, rows in order. Backward accumulates (+=) into dlogits; the caller zeroes the flat
# gradient buffer once per step.
# A batch split into row shards (the training step's data-parallel path) calls the *_rows forms: loss_total
# gives a shard's unnormalised weighted sum, loss_backward_rows normalises by the whole batch's weight sum.
# Serial on purpose: the output layer is narrow (e.g. 128 x 10), so an OpenMP fork/join would cost more than
# the work, and one summation order makes the loss the same bits whatever the thread count.
from cython cimport floating
from libc.stdint cimport int64_t
from libc.math cimport exp, expf, NAN
from activations cimport _log1p


cdef enum Loss:                 # codes for loss_total / loss_backward_rows, so a C loop can hold a loss as an int
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


cdef inline double weight_sum(const floating* weights, int N) noexcept nogil:
    """sum_n w_n, rows in order; N when weights is NULL"""
    cdef double total = 0
    cdef int n
    if weights == NULL:
        return N
    for n in range(N):
        total += weights[n]
    return total


cdef inline double _mean(double total, double wsum, int O) noexcept nogil:
    return total / (wsum * O) if wsum != 0 else 0.0


cdef inline floating _row_scale(const floating* weights, int n, double wsum, double factor) noexcept nogil:
    """factor * w_n / sum w: row n's share of the mean (0 when the weights sum to 0)"""
    if wsum == 0:
        return 0
    return <floating>(factor / wsum) if weights == NULL else <floating>(factor * weights[n] / wsum)


cdef inline void _add_scaled_difference(floating* dlogits,               # OUT (N, O) +=
                                        const floating* out,             # IN  (N, O)
                                        const floating* targets,         # IN  (N, O)
                                        const floating* weights,         # IN  (N,) or NULL
                                        int N, int O, double factor, double wsum) noexcept nogil:
    """dlogits += factor w_n (out - targets) / (O wsum)"""
    cdef Py_ssize_t i, row
    cdef int n
    cdef floating scale
    for n in range(N):
        scale = _row_scale(weights, n, wsum * O, factor)
        row = <Py_ssize_t>n * O
        for i in range(row, row + O):
            dlogits[i] += (out[i] - targets[i]) * scale


# ---- softmax + cross-entropy: targets are class indices ----

cdef inline int argmax(const floating* z, int O) noexcept nogil:
    """The first index of z's largest element (NaNs never win, as in `z[o] > z[k]`)"""
    # selects, not branches: on a shuffled batch the winner is a coin toss, and a branch on it mispredicted on
    # most rows (perf: a W1 step's metric spent more time here than in its Adam update)
    cdef int o, k = 0
    cdef bint better
    cdef floating best = z[0]
    for o in range(1, O):
        better = z[o] > best
        k = o if better else k
        best = z[o] if better else best
    return k


cdef inline double _softmax_row(floating* p,                             # OUT (O,) softmax(z)
                                const floating* z,                       # IN  (O,)
                                int O, floating* z_max) noexcept nogil:
    """p = softmax(z); returns rest = sum_{o != argmax} exp(z_o - max z), and max z in z_max"""
    cdef int o, k = argmax(z, O)
    cdef floating m = z[k], denom, rest = 0   # the max term exp(0) = 1 stays out of rest: log1p sees rest whole
    for o in range(O):
        if o != k:
            p[o] = _exp(z[o] - m)
            rest += p[o]
    p[k] = 1    # exp(0), written: for an infinite max z_k - m is NaN, and an inf logit wins outright (the reference)
    denom = <floating>1 + rest  # in the dtype, as the reference: Cython makes a bare 1 the double 1.0
    for o in range(O):
        p[o] /= denom
    z_max[0] = m
    return rest


cdef inline void softmax_forward(floating* out,                          # OUT (N, O)
                                 const floating* logits,                 # IN  (N, O)
                                 int N, int O) noexcept nogil:
    """out = softmax(z) row-wise"""
    cdef int n
    cdef floating m
    for n in range(N):
        _softmax_row(out + <Py_ssize_t>n * O, logits + <Py_ssize_t>n * O, O, &m)


cdef inline double _cross_entropy_total(floating* out, const floating* logits, const int64_t* targets,
                                        const floating* weights, int N, int O) noexcept nogil:
    """out = softmax(z) row-wise;  return sum_n w_n (logsumexp(z_n) - z_n[y_n]) (its mean: / sum_n w_n)"""
    cdef int n
    cdef floating m, rest, z_y
    cdef double total = 0
    for n in range(N):
        z_y = logits[<Py_ssize_t>n * O + targets[n]]     # read before out is written: out may be logits
        rest = _softmax_row(out + <Py_ssize_t>n * O, logits + <Py_ssize_t>n * O, O, &m)
        # logsumexp - z_y = (m - z_y) + log1p(rest): two terms >= 0, so no cancellation even when the loss is
        # near 0 (y wins clearly), and finite for any finite logits
        total += ((m - z_y) + _log1p(rest)) * (1 if weights == NULL else weights[n])
    return total



cdef inline void cross_entropy_backward(floating* dlogits,               # OUT (N, O) +=
                                        const floating* out,             # IN  (N, O) softmax saved by forward
                                        const int64_t* targets,          # IN  (N,) class indices in [0, O)
                                        const floating* weights,         # IN  (N,) or NULL
                                        int N, int O, double wsum) noexcept nogil:
    """dlogits += w_n (out - onehot(y)) / wsum"""
    cdef int n, o
    cdef int64_t y
    cdef floating scale, d_y
    cdef Py_ssize_t row
    for n in range(N):
        row = <Py_ssize_t>n * O
        y = targets[n]
        scale = _row_scale(weights, n, wsum, 1.0)
        # the target's term apart, after the loop: `out - (o == y)` in the loop compiles to a branch on the label,
        # mispredicted on most rows of a shuffled batch (perf: a fifth of a W1 step's loss work). Same bits.
        d_y = dlogits[row + y] + (out[row + y] - <floating>1) * scale
        for o in range(O):
            dlogits[row + o] += out[row + o] * scale
        dlogits[row + y] = d_y


# ---- sigmoid + binary cross-entropy (multi-label): targets are probabilities ----

cdef inline double _binary_cross_entropy_total(floating* out, const floating* logits, const floating* targets,
                                               const floating* weights, int N, int O) noexcept nogil:
    """out = sigmoid(z);  return the weighted sum of max(z, 0) - z y + log1p(exp(-|z|)) (mean: / (O sum w))"""
    cdef Py_ssize_t i, row
    cdef int n
    cdef floating z, y, e
    cdef double total = 0, row_total
    for n in range(N):
        row = <Py_ssize_t>n * O
        row_total = 0
        for i in range(row, row + O):
            z = logits[i]
            y = targets[i]
            e = _exp(-abs(z))       # in [0, 1]: neither the sigmoid nor the loss can overflow
            # max(z, 0) - z y as z (1 - y) or -z y: terms >= 0 (y in [0, 1]), no cancellation near loss 0
            row_total += (z * (1 - y) if z >= 0 else -z * y) + _log1p(e)
            out[i] = (1 if z >= 0 else e) / (1 + e)
        total += row_total * (1 if weights == NULL else weights[n])
    return total



cdef inline void binary_cross_entropy_backward(floating* dlogits,        # OUT (N, O) +=
                                               const floating* out,      # IN  (N, O) sigmoid saved by forward
                                               const floating* targets,  # IN  (N, O)
                                               const floating* weights,  # IN  (N,) or NULL
                                               int N, int O, double wsum) noexcept nogil:
    """dlogits += w_n (out - y) / (O wsum)"""
    _add_scaled_difference(dlogits, out, targets, weights, N, O, 1.0, wsum)


# ---- identity output + regression losses: d = z - y ----

cdef inline double _regression_total(int kind, floating* out,            # OUT (N, O) = logits
                                       const floating* logits,           # IN  (N, O)
                                       const floating* targets,          # IN  (N, O)
                                       const floating* weights,          # IN  (N,) or NULL
                                     int N, int O, floating delta) noexcept nogil:
    """out = z;  return the weighted sum of term_kind(z - y): MSE d^2, MAE |d|, HUBER 0.5 d^2 if |d| < delta
    else delta (|d| - 0.5 delta) (mean: / (O sum w))"""
    cdef Py_ssize_t i, row
    cdef int n
    cdef floating d, a, half = 0.5
    cdef double total = 0, row_total
    for n in range(N):
        row = <Py_ssize_t>n * O
        row_total = 0
        for i in range(row, row + O):
            d = logits[i] - targets[i]
            out[i] = logits[i]      # a loop, not memcpy: out may be logits
            if kind == MSE:
                row_total += d * d
            elif kind == MAE:
                row_total += abs(d)
            else:
                a = abs(d)
                row_total += half * d * d if a < delta else delta * (a - half * delta)
        total += row_total * (1 if weights == NULL else weights[n])
    return total




cdef inline void mse_backward(floating* dlogits,                         # OUT (N, O) +=
                              const floating* out,                       # IN  (N, O) saved by forward
                              const floating* targets,                   # IN  (N, O)
                              const floating* weights,                   # IN  (N,) or NULL
                              int N, int O, double wsum) noexcept nogil:
    """dlogits += 2 w_n (z - y) / (O wsum)"""
    _add_scaled_difference(dlogits, out, targets, weights, N, O, 2.0, wsum)



cdef inline void mae_backward(floating* dlogits,                         # OUT (N, O) +=
                              const floating* out,                       # IN  (N, O) saved by forward
                              const floating* targets,                   # IN  (N, O)
                              const floating* weights,                   # IN  (N,) or NULL
                              int N, int O, double wsum) noexcept nogil:
    """dlogits += w_n sign(z - y) / (O wsum), sign(0) = 0 as PyTorch"""
    cdef Py_ssize_t i, row
    cdef int n
    cdef floating d, scale
    for n in range(N):
        scale = _row_scale(weights, n, wsum * O, 1.0)
        row = <Py_ssize_t>n * O
        for i in range(row, row + O):
            d = out[i] - targets[i]
            dlogits[i] += ((d > 0) - (d < 0)) * scale



cdef inline void huber_backward(floating* dlogits,                       # OUT (N, O) +=
                                const floating* out,                     # IN  (N, O) saved by forward
                                const floating* targets,                 # IN  (N, O)
                                const floating* weights,                 # IN  (N,) or NULL
                                int N, int O, floating delta, double wsum) noexcept nogil:
    """dlogits += w_n clamp(z - y, -delta, delta) / (O wsum)"""
    cdef Py_ssize_t i, row
    cdef int n
    cdef floating d, scale
    for n in range(N):
        scale = _row_scale(weights, n, wsum * O, 1.0)
        row = <Py_ssize_t>n * O
        for i in range(row, row + O):
            d = out[i] - targets[i]
            dlogits[i] += min(max(d, -delta), delta) * scale


# ---- by code: the switch is outside the loops ----

cdef inline double loss_total(int kind,                                  # a Loss code
                              floating* out,                             # OUT (N, O) the output activation
                              const floating* logits,                    # IN  (N, O)
                              const int64_t* classes,                    # IN  (N,)   CROSS_ENTROPY only, else NULL
                              const floating* targets,                   # IN  (N, O) the other losses, else NULL
                              const floating* weights,                   # IN  (N,) sample weights, or NULL
                              int N, int O, floating delta) noexcept nogil:
    """out = activation(z);  return the rows' weighted loss sum (loss_mean makes it the mean); NaN for an
    unknown kind"""
    if kind == CROSS_ENTROPY:
        return _cross_entropy_total(out, logits, classes, weights, N, O)
    if kind == BINARY_CROSS_ENTROPY:
        return _binary_cross_entropy_total(out, logits, targets, weights, N, O)
    if kind == MSE or kind == MAE or kind == HUBER:
        return _regression_total(kind, out, logits, targets, weights, N, O, delta)
    return NAN


cdef inline double loss_mean(int kind, double total, double wsum, int O) noexcept nogil:
    """The mean loss of a batch from its loss_total and its weight sum: over rows for cross-entropy, else over
    all elements"""
    return _mean(total, wsum, 1 if kind == CROSS_ENTROPY else O)


cdef inline int loss_backward_rows(int kind,                             # a Loss code
                                   floating* dlogits,                    # OUT (N, O) +=
                                   const floating* out,                  # IN  (N, O) saved by forward
                                   const int64_t* classes,               # IN  (N,)   CROSS_ENTROPY only, else NULL
                                   const floating* targets,              # IN  (N, O) the other losses, else NULL
                                   const floating* weights,              # IN  (N,) sample weights, or NULL
                                   int N, int O, floating delta,
                                   double wsum) noexcept nogil:          # IN  the whole batch's weight sum
    """dlogits += d(mean loss `kind`)/d(logits) for N rows of a batch whose weights sum to wsum (delta: HUBER
    only); returns 0, or -1 for an unknown kind"""
    if kind == CROSS_ENTROPY:
        cross_entropy_backward(dlogits, out, classes, weights, N, O, wsum)
    elif kind == BINARY_CROSS_ENTROPY:
        binary_cross_entropy_backward(dlogits, out, targets, weights, N, O, wsum)
    elif kind == MSE:
        mse_backward(dlogits, out, targets, weights, N, O, wsum)
    elif kind == MAE:
        mae_backward(dlogits, out, targets, weights, N, O, wsum)
    elif kind == HUBER:
        huber_backward(dlogits, out, targets, weights, N, O, delta, wsum)
    else:
        return -1
    return 0

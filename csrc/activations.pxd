# Activation kernels: elementwise forward/backward pairs.
# Legend: n elements. Arrays are treated as flat (the (N, F) arrays of the Python face have n = N * F).
# Forward writes out = f(x). Backward accumulates (+=): dx += dout * f'(x), from the x and out that forward
# saved; the caller zeroes the flat gradient buffer once per step. Semantics follow PyTorch, kinks included:
# relu'(0) = 0, leaky_relu'(0) = negative_slope, softplus linear above 20.
#
# The per-kind kernels are serial loops. activation_forward / activation_backward pick one by kind, so that a
# C training loop can hold an activation as an int, and give each thread one contiguous chunk of a large array.
# Every element is computed on its own, so the bits are the same whatever the thread count.
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expf, log, logf, tanh, tanhf, erfc, erfcf, INFINITY, M_SQRT1_2, M_2_SQRTPI


cdef enum ActivationKind:
    IDENTITY
    RELU
    LEAKY_RELU
    SIGMOID
    TANH
    GELU
    SOFTPLUS
    SILU

cdef enum:
    PARALLEL_MIN = 1 << 16      # below this many elements an OpenMP fork/join costs more than the loop
    SOFTPLUS_THRESHOLD = 20     # PyTorch's default: above it softplus(x) == x to working precision


# ---- scalar helpers: the float functions for float, so float32 work stays in float32 ----

cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _log1p(floating x) noexcept nogil:
    """log(1 + x) by Kahan's correction of log(1 + x rounded): log(u) x / (u - 1), within 1.7e-7 relative in float
    (1.4 eps; bench/log1p.c). glibc's log1pf took 17 ns a call here, this 7 (logf is its fast one), and the
    cross-entropy of a 3-class batch spent a tenth of a W1 step in log1pf."""
    cdef floating one = 1       # a typed 1: Cython writes a bare 1 as the double 1.0, which would promote
    cdef floating u = one + x
    if u == one:                  # x below half an ulp of 1: log1p(x) = x to working precision
        return x
    if u == INFINITY:           # x = inf, or 1 + x overflows: (u - 1) would be inf too
        return u
    if floating is float:
        return logf(u) * (x / (u - one))
    else:
        return log(u) * (x / (u - one))


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline floating _Phi(floating x) noexcept nogil:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, as erfc: no cancellation (1 + -1) in the left tail."""
    if floating is float:
        return <float>0.5 * erfcf(-x * <float>M_SQRT1_2)
    else:
        return 0.5 * erfc(-x * M_SQRT1_2)


cdef inline floating _sigmoid(floating x) noexcept nogil:
    """1 / (1 + exp(-x)), exactly 0 or 1 in the limits"""
    cdef floating e = _exp(x if x < 0 else -x)    # exp(-|x|) <= 1 never overflows
    cdef floating r = 1 / (1 + e)
    return r if x >= 0 else e * r


# ---- forward: out = f(x) ----

cdef inline void identity_forward(floating* out,                     # OUT (n,)
                                  const floating* x,                 # IN  (n,)
                                  Py_ssize_t n) noexcept nogil:
    """out = x"""
    cdef Py_ssize_t i
    for i in range(n):          # a loop, not memcpy: out may be x
        out[i] = x[i]


cdef inline void relu_forward(floating* out,                         # OUT (n,)
                              const floating* x,                     # IN  (n,)
                              Py_ssize_t n) noexcept nogil:
    """out = max(x, 0)  (NaN propagates)"""
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = 0 if x[i] <= 0 else x[i]


cdef inline void leaky_relu_forward(floating* out,                   # OUT (n,)
                                    const floating* x,               # IN  (n,)
                                    Py_ssize_t n, floating negative_slope) noexcept nogil:
    """out = x if x > 0 else negative_slope * x"""
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        # Two selects against 0, not one between v and slope * v: GCC (under its default -ftrapping-math)
        # vectorises only the former, >10x faster on mixed signs. NaN still propagates, through the second.
        v = x[i]
        out[i] = (v if v > 0 else 0) + negative_slope * (0 if v > 0 else v)


cdef inline void sigmoid_forward(floating* out,                      # OUT (n,)
                                 const floating* x,                  # IN  (n,)
                                 Py_ssize_t n) noexcept nogil:
    """out = 1 / (1 + exp(-x))"""
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = _sigmoid(x[i])


cdef inline void tanh_forward(floating* out,                         # OUT (n,)
                              const floating* x,                     # IN  (n,)
                              Py_ssize_t n) noexcept nogil:
    """out = tanh(x)"""
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = _tanh(x[i])


cdef inline void gelu_forward(floating* out,                         # OUT (n,)
                              const floating* x,                     # IN  (n,)
                              Py_ssize_t n) noexcept nogil:
    """out = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2  (the exact form, not the tanh approximation)"""
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = x[i] * _Phi(x[i])


cdef inline void softplus_forward(floating* out,                     # OUT (n,)
                                  const floating* x,                 # IN  (n,)
                                  Py_ssize_t n) noexcept nogil:
    """out = x if x > 20 else log(1 + exp(x))"""
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = x[i] if x[i] > SOFTPLUS_THRESHOLD else _log1p(_exp(x[i]))


cdef inline void silu_forward(floating* out,                         # OUT (n,)
                              const floating* x,                     # IN  (n,)
                              Py_ssize_t n) noexcept nogil:
    """out = x sigmoid(x)"""
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = x[i] * _sigmoid(x[i])


# ---- backward: dx += dout * f'(x); all take (dx, dout, x, out, n) so one dispatcher serves them ----

cdef inline void identity_backward(floating* dx,                     # OUT (n,) +=
                                   const floating* dout,             # IN  (n,)
                                   const floating* x,                # IN  (n,) unused
                                   const floating* out,              # IN  (n,) unused
                                   Py_ssize_t n) noexcept nogil:
    """dx += dout"""
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] += dout[i]


cdef inline void relu_backward(floating* dx,                         # OUT (n,) +=
                               const floating* dout,                 # IN  (n,)
                               const floating* x,                    # IN  (n,)
                               const floating* out,                  # IN  (n,) unused
                               Py_ssize_t n) noexcept nogil:
    """dx += dout * (x > 0)  (relu'(0) = 0, as PyTorch's threshold_backward)"""
    cdef Py_ssize_t i
    cdef floating g
    for i in range(n):
        g = dout[i]             # loaded unconditionally, so GCC can turn the branch into a vector blend
        dx[i] += 0 if x[i] <= 0 else g


cdef inline void leaky_relu_backward(floating* dx,                   # OUT (n,) +=
                                     const floating* dout,           # IN  (n,)
                                     const floating* x,              # IN  (n,)
                                     const floating* out,            # IN  (n,) unused
                                     Py_ssize_t n, floating negative_slope) noexcept nogil:
    """dx += dout * (1 if x > 0 else negative_slope)  (slope at 0, as PyTorch)"""
    cdef Py_ssize_t i
    cdef floating g
    for i in range(n):          # two selects against 0, as in leaky_relu_forward
        g = dout[i]
        dx[i] += (g if x[i] > 0 else 0) + negative_slope * (0 if x[i] > 0 else g)


cdef inline void sigmoid_backward(floating* dx,                      # OUT (n,) +=
                                  const floating* dout,              # IN  (n,)
                                  const floating* x,                 # IN  (n,) unused
                                  const floating* out,               # IN  (n,)
                                  Py_ssize_t n) noexcept nogil:
    """dx += dout * out (1 - out)"""
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] += dout[i] * out[i] * (1 - out[i])


cdef inline void tanh_backward(floating* dx,                         # OUT (n,) +=
                               const floating* dout,                 # IN  (n,)
                               const floating* x,                    # IN  (n,) unused
                               const floating* out,                  # IN  (n,)
                               Py_ssize_t n) noexcept nogil:
    """dx += dout * (1 - out^2)"""
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] += dout[i] * (1 - out[i] * out[i])


cdef inline void gelu_backward(floating* dx,                         # OUT (n,) +=
                               const floating* dout,                 # IN  (n,)
                               const floating* x,                    # IN  (n,)
                               const floating* out,                  # IN  (n,) unused
                               Py_ssize_t n) noexcept nogil:
    """dx += dout * (Phi(x) + x phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)"""
    cdef Py_ssize_t i
    cdef floating inv_sqrt_2pi = <floating>(0.5 * M_2_SQRTPI * M_SQRT1_2)
    for i in range(n):          # x * x overflowing to inf is harmless: exp(-inf) = 0
        dx[i] += dout[i] * (_Phi(x[i]) + x[i] * inv_sqrt_2pi * _exp(<floating>-0.5 * x[i] * x[i]))


cdef inline void softplus_backward(floating* dx,                     # OUT (n,) +=
                                   const floating* dout,             # IN  (n,)
                                   const floating* x,                # IN  (n,)
                                   const floating* out,              # IN  (n,) unused
                                   Py_ssize_t n) noexcept nogil:
    """dx += dout * (1 if x > 20 else sigmoid(x))"""
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] += dout[i] if x[i] > SOFTPLUS_THRESHOLD else dout[i] * _sigmoid(x[i])


cdef inline void silu_backward(floating* dx,                         # OUT (n,) +=
                               const floating* dout,                 # IN  (n,)
                               const floating* x,                    # IN  (n,)
                               const floating* out,                  # IN  (n,) unused
                               Py_ssize_t n) noexcept nogil:
    """dx += dout * s (1 + x (1 - s)),  s = sigmoid(x)"""
    cdef Py_ssize_t i
    cdef floating s
    for i in range(n):          # s from x, not out / x: x may be 0
        s = _sigmoid(x[i])
        dx[i] += dout[i] * s * (1 + x[i] * (1 - s))


# ---- dispatch by kind ----

cdef inline void _forward_range(int kind, floating* out, const floating* x, Py_ssize_t n,
                                floating param) noexcept nogil:
    # the switch stays outside the element loops: each case is its own loop
    if kind == IDENTITY:
        identity_forward(out, x, n)
    elif kind == RELU:
        relu_forward(out, x, n)
    elif kind == LEAKY_RELU:
        leaky_relu_forward(out, x, n, param)
    elif kind == SIGMOID:
        sigmoid_forward(out, x, n)
    elif kind == TANH:
        tanh_forward(out, x, n)
    elif kind == GELU:
        gelu_forward(out, x, n)
    elif kind == SOFTPLUS:
        softplus_forward(out, x, n)
    elif kind == SILU:
        silu_forward(out, x, n)


cdef inline void _backward_range(int kind, floating* dx, const floating* dout, const floating* x,
                                 const floating* out, Py_ssize_t n, floating param) noexcept nogil:
    if kind == IDENTITY:
        identity_backward(dx, dout, x, out, n)
    elif kind == RELU:
        relu_backward(dx, dout, x, out, n)
    elif kind == LEAKY_RELU:
        leaky_relu_backward(dx, dout, x, out, n, param)
    elif kind == SIGMOID:
        sigmoid_backward(dx, dout, x, out, n)
    elif kind == TANH:
        tanh_backward(dx, dout, x, out, n)
    elif kind == GELU:
        gelu_backward(dx, dout, x, out, n)
    elif kind == SOFTPLUS:
        softplus_backward(dx, dout, x, out, n)
    elif kind == SILU:
        silu_backward(dx, dout, x, out, n)


cdef inline Py_ssize_t _chunk_length(Py_ssize_t n, int num_threads) noexcept nogil:
    """Elements per thread; n (a single serial chunk) when the array is too small to be worth a fork/join."""
    if n < PARALLEL_MIN or num_threads < 2:
        return n
    return (n + num_threads - 1) // num_threads


cdef inline int activation_forward(int kind,                         # IN  an ActivationKind
                                   floating* out,                    # OUT (n,)
                                   const floating* x,                # IN  (n,)
                                   Py_ssize_t n,
                                   double param,                     # IN  LEAKY_RELU's negative_slope, else unused
                                   int num_threads) noexcept nogil:
    """out = f_kind(x); returns -1 (and writes nothing) for an unknown kind, else 0"""
    cdef Py_ssize_t c, start, chunk = _chunk_length(n, num_threads)
    if kind < IDENTITY or kind > SILU:
        return -1
    if chunk == n:
        _forward_range(kind, out, x, n, <floating>param)
        return 0
    for c in prange((n + chunk - 1) // chunk, num_threads=num_threads, schedule='static'):
        start = c * chunk
        _forward_range(kind, out + start, x + start, min(chunk, n - start), <floating>param)
    return 0


cdef inline int activation_backward(int kind,                        # IN  an ActivationKind
                                    floating* dx,                    # OUT (n,) +=
                                    const floating* dout,            # IN  (n,)
                                    const floating* x,               # IN  (n,) forward's input
                                    const floating* out,             # IN  (n,) forward's output
                                    Py_ssize_t n,
                                    double param,                    # IN  LEAKY_RELU's negative_slope, else unused
                                    int num_threads) noexcept nogil:
    """dx += dout * f_kind'(x); returns -1 (and writes nothing) for an unknown kind, else 0"""
    cdef Py_ssize_t c, start, chunk = _chunk_length(n, num_threads)
    if kind < IDENTITY or kind > SILU:
        return -1
    if chunk == n:
        _backward_range(kind, dx, dout, x, out, n, <floating>param)
        return 0
    for c in prange((n + chunk - 1) // chunk, num_threads=num_threads, schedule='static'):
        start = c * chunk
        _backward_range(kind, dx + start, dout + start, x + start, out + start, min(chunk, n - start),
                        <floating>param)
    return 0

# Inverted dropout on a hidden layer's activations.
# Legend: n elements (the (N, F) activations of the Python face, flat).
# Each element's keep/drop draw is a pure function of (seed, stream, i): a counter-based hash (splitmix64), not
# a sequential generator, so any thread can draw any element and the mask is the same bits on any thread count.
# `stream` numbers the draws of one training run (one per layer per batch), so no two masks repeat.
# Backward accumulates (+=).
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport uint64_t

cdef enum:
    DROPOUT_PARALLEL_MIN = 1 << 16   # below this many elements an OpenMP fork/join costs more than the loop


cdef inline uint64_t splitmix64(uint64_t z) noexcept nogil:
    """The splitmix64 finaliser: a bijective 64-bit mix with full avalanche"""
    z = z + <uint64_t>0x9E3779B97F4A7C15ULL
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint64_t dropout_key(uint64_t seed, uint64_t stream) noexcept nogil:
    """The per-mask key: element i draws splitmix64(key + i)"""
    return splitmix64(seed ^ splitmix64(stream))


cdef inline void _dropout_range(floating* out, floating* mask, const floating* x, Py_ssize_t lo, Py_ssize_t hi,
                                uint64_t threshold, uint64_t key, floating keep_scale) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating m
    for i in range(lo, hi):
        # keep with probability 1 - rate: the top 53 bits as an integer against rate * 2^53 (exact, no FP)
        m = keep_scale if (splitmix64(key + <uint64_t>i) >> 11) >= threshold else 0
        mask[i] = m
        out[i] = x[i] * m


cdef inline void dropout_range(floating* out, floating* mask, const floating* x, Py_ssize_t lo, Py_ssize_t hi,
                               double rate, uint64_t seed, uint64_t stream) noexcept nogil:
    """Elements [lo, hi) of dropout_forward (out, mask, x: the whole arrays): the same bits as the whole call"""
    _dropout_range(out, mask, x, lo, hi, <uint64_t>(rate * 9007199254740992.0), dropout_key(seed, stream),
                   <floating>(1.0 / (1.0 - rate)))


cdef inline void dropout_forward(floating* out,                      # OUT (n,) x * mask (may be x)
                                 floating* mask,                     # OUT (n,) 0 or 1 / (1 - rate)
                                 const floating* x,                  # IN  (n,)
                                 Py_ssize_t n, double rate, uint64_t seed, uint64_t stream,
                                 int num_threads) noexcept nogil:
    """mask_i = (u_i >= rate) / (1 - rate), u_i = splitmix64(key + i) / 2^64;  out = x * mask"""
    cdef Py_ssize_t s, spans = num_threads if (n >= DROPOUT_PARALLEL_MIN and num_threads > 1) else 1
    if spans == 1:
        dropout_range(out, mask, x, 0, n, rate, seed, stream)
        return
    for s in prange(spans, num_threads=spans, schedule='static'):
        dropout_range(out, mask, x, s * n // spans, (s + 1) * n // spans, rate, seed, stream)


cdef inline void dropout_backward(floating* dx,                      # OUT (n,) +=
                                  const floating* dout,              # IN  (n,)
                                  const floating* mask,              # IN  (n,) saved by forward
                                  Py_ssize_t n) noexcept nogil:
    """dx += dout * mask"""
    cdef Py_ssize_t i
    for i in range(n):
        dx[i] += dout[i] * mask[i]

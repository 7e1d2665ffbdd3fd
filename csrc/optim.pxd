# Optimizer update kernels: one elementwise pass over the flat parameter buffer, everything updated in place.
# Legend: P number of parameters. params, grads and every state buffer share one flat layout, (P,).
# Formulas and order of operations are torch.optim's single-tensor (foreach=False) ones. Hyper-parameters
# arrive as double and are rounded once to `floating`, as torch rounds a Python scalar to the tensor's dtype;
# scalar-only terms (bias corrections, 1 - lr * wd, ...) are computed in double first, as torch does in Python.
#
# Loop shape, for speed. Each element depends on nothing but itself, so a large buffer is cut into one
# contiguous span per thread, each a serial call of the same kernel (the same bits whatever the thread count),
# and a small buffer never pays an OpenMP fork/join. The serial loop must vectorise (sqrtf, divps), and GCC
# vectorises no loop with a conditional load/store or a conditional FP operation (it might trap), unswitching
# at most a few loop-invariant conditions itself, and fewer inside the big Python wrappers. So: the options that
# decide which state is touched (amsgrad, momentum, centered, SGD's first step) are literal constants, one loop
# per case; maximize, decoupled decay, nesterov and lerp's two forms are rewritten as exact branch-free
# arithmetic; L2 weight decay is the one condition left for GCC to unswitch.
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf, pow

cdef enum:
    PARALLEL_MIN_P = 1 << 15    # below this an OpenMP fork/join (~0.7 us, even with if(0)) costs more than the update


cdef inline floating _sqrt(floating x) noexcept nogil:
    # sqrtf for float: the same bits as sqrt through double, but it stays in float lanes that GCC vectorises
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating _lerp(floating start, floating end, bint from_start, floating coef) noexcept nogil:
    # ATen's lerp, from the nearer end (pytorch/pytorch#18871): start + w (end - start) when |w| < 0.5, else
    # end - (end - start) (1 - w), written end + coef (end - start) with coef = -(1 - w): the same bits.
    return (start if from_start else end) + coef * (end - start)


cdef inline floating _lerp_coef(floating weight) noexcept nogil:
    return weight if -0.5 < weight < 0.5 else -(1 - weight)


cdef inline Py_ssize_t _spans(Py_ssize_t P, int num_threads) noexcept nogil:
    return num_threads if num_threads > 1 and P >= PARALLEL_MIN_P else 1


cdef inline floating* _from(floating* state, Py_ssize_t lo) noexcept nogil:
    # an absent (NULL) state stays NULL in every span
    return state + lo if state != NULL else NULL


cdef inline void _sgd_at(Py_ssize_t i, floating* params, floating* buf, const floating* grads, floating lr,
                         floating mu, floating keep, bint l2, floating weight_decay, floating sign, bint nesterov,
                         floating nesterov_mu, bint first_step, bint with_momentum) noexcept nogil:
    cdef floating p = params[i], g = sign * grads[i]
    if l2:
        g = g + weight_decay * p
    if with_momentum:
        buf[i] = g if first_step else buf[i] * mu + keep * g
        # nesterov: g + mu buf; else -0 + 1 buf, which is buf to the bit (-0 is the additive identity)
        g = (g if nesterov else <floating>-0.0) + nesterov_mu * buf[i]
    params[i] = p - lr * g


cdef inline void sgd_step(floating* params,                   # IN/OUT (P,)
                          floating* momentum_buffer,          # IN/OUT (P,) state; may be NULL if momentum == 0
                          const floating* grads,              # IN     (P,)
                          Py_ssize_t P, double lr, double momentum, double dampening, double weight_decay,
                          bint nesterov, bint maximize, bint first_step, int num_threads) noexcept nogil:
    """g = ±g + wd p;  buf = g (1st step) or mu buf + (1 - dampening) g;  p -= lr (nesterov ? g + mu buf : buf)"""
    cdef Py_ssize_t i, s, lo, n = _spans(P, num_threads)
    cdef floating lr_ = lr, mu = momentum, keep = 1 - dampening, wd = weight_decay, sign = -1 if maximize else 1
    cdef floating nesterov_mu = mu if nesterov else 1
    cdef bint l2 = weight_decay != 0
    if n > 1:
        for s in prange(n, num_threads=n, schedule='static'):
            lo = s * P // n
            sgd_step(params + lo, _from(momentum_buffer, lo), grads + lo, (s + 1) * P // n - lo, lr, momentum,
                     dampening, weight_decay, nesterov, maximize, first_step, 1)
    elif momentum != 0 and first_step:
        for i in range(P):
            _sgd_at(i, params, momentum_buffer, grads, lr_, mu, keep, l2, wd, sign, nesterov, nesterov_mu, True, True)
    elif momentum != 0:
        for i in range(P):
            _sgd_at(i, params, momentum_buffer, grads, lr_, mu, keep, l2, wd, sign, nesterov, nesterov_mu, False, True)
    else:
        for i in range(P):
            _sgd_at(i, params, momentum_buffer, grads, lr_, mu, keep, l2, wd, sign, nesterov, nesterov_mu, False, False)


cdef extern from "adam.h" nogil:
    void fnn_adam_init()
    int fnn_adam_f32(float* params, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grads,
                      Py_ssize_t n, float sign, float wd, float decay, int l2, int from_start, float coef,
                      float beta2, float beta2_weight, float step_size, float bias_correction2_sqrt, float eps,
                      int amsgrad)
    int fnn_adam_f64(double* params, double* exp_avg, double* exp_avg_sq, double* max_exp_avg_sq,
                      const double* grads, Py_ssize_t n, double sign, double wd, double decay, int l2,
                      int from_start, double coef, double beta2, double beta2_weight, double step_size,
                      double bias_correction2_sqrt, double eps, int amsgrad)


cdef inline int adam_span(floating* params, floating* exp_avg, floating* exp_avg_sq, floating* max_exp_avg_sq,
                          const floating* grads, Py_ssize_t P, double step, double lr, double beta1, double beta2,
                          double eps, double weight_decay, bint amsgrad, bint maximize,
                          bint decoupled_weight_decay) noexcept nogil:
    """adam_step on one thread (the arguments are adam_step's); returns what became inf/NaN: bit 1 for a
    gradient, bit 0 for a new parameter or state"""
    cdef floating w1 = 1 - beta1, coef = _lerp_coef(w1)     # torch rounds lerp's weight to the dtype first
    cdef bint from_start = -0.5 < w1 < 0.5
    cdef bint l2 = weight_decay != 0 and not decoupled_weight_decay
    cdef floating decay = 1 - lr * weight_decay if weight_decay != 0 and decoupled_weight_decay else 1   # p * 1 == p
    cdef floating sign = -1 if maximize else 1, wd = weight_decay
    cdef floating b2 = beta2, w2 = 1 - beta2, eps_ = eps
    cdef floating step_size = lr / (1 - pow(beta1, step))
    cdef floating bias_correction2_sqrt = pow(1 - pow(beta2, step), 0.5)   # torch 2.13 writes `** 0.5`
    if floating is float:       # adam.h: the update, AVX2-wide where the CPU has it
        return fnn_adam_f32(params, exp_avg, exp_avg_sq, max_exp_avg_sq, grads, P, sign, wd, decay, l2, from_start,
                            coef, b2, w2, step_size, bias_correction2_sqrt, eps_, amsgrad)
    else:
        return fnn_adam_f64(params, exp_avg, exp_avg_sq, max_exp_avg_sq, grads, P, sign, wd, decay, l2, from_start,
                            coef, b2, w2, step_size, bias_correction2_sqrt, eps_, amsgrad)


cdef inline void adam_step(floating* params,                  # IN/OUT (P,)
                           floating* exp_avg,                 # IN/OUT (P,) state m
                           floating* exp_avg_sq,              # IN/OUT (P,) state v
                           floating* max_exp_avg_sq,          # IN/OUT (P,) state max v; may be NULL unless amsgrad
                           const floating* grads,             # IN     (P,)
                           Py_ssize_t P, double step, double lr, double beta1, double beta2, double eps,
                           double weight_decay, bint amsgrad, bint maximize, bint decoupled_weight_decay,
                           int num_threads) noexcept nogil:
    """g = ±g (+ wd p, or p *= 1 - lr wd if decoupled);  m = lerp(m, g, 1 - b1);  v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v or max v) / sqrt(1 - b2^t) + eps)"""
    cdef Py_ssize_t s, lo, n = _spans(P, num_threads)
    if n > 1:
        for s in prange(n, num_threads=n, schedule='static'):
            lo = s * P // n
            adam_span(params + lo, exp_avg + lo, exp_avg_sq + lo, _from(max_exp_avg_sq, lo), grads + lo,
                      (s + 1) * P // n - lo, step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                      decoupled_weight_decay)
    else:
        adam_span(params, exp_avg, exp_avg_sq, max_exp_avg_sq, grads, P, step, lr, beta1, beta2, eps, weight_decay,
                  amsgrad, maximize, decoupled_weight_decay)


cdef inline void _rmsprop_at(Py_ssize_t i, floating* params, floating* square_avg, floating* grad_avg,
                             floating* buf, const floating* grads, floating sign, bint l2, floating weight_decay,
                             floating alpha, floating alpha_weight, bint from_start, floating coef, floating eps,
                             floating mu, floating lr, bint centered, bint with_momentum) noexcept nogil:
    cdef floating p = params[i], g = sign * grads[i], avg
    if l2:
        g = g + weight_decay * p
    square_avg[i] = square_avg[i] * alpha + alpha_weight * g * g
    if centered:
        grad_avg[i] = _lerp(grad_avg[i], g, from_start, coef)
        avg = _sqrt(square_avg[i] - grad_avg[i] * grad_avg[i]) + eps
    else:
        avg = _sqrt(square_avg[i]) + eps
    if with_momentum:
        buf[i] = buf[i] * mu + g / avg
        params[i] = p - lr * buf[i]
    else:
        params[i] = p - lr * (g / avg)


cdef inline void rmsprop_step(floating* params,               # IN/OUT (P,)
                              floating* square_avg,           # IN/OUT (P,) state v
                              floating* grad_avg,             # IN/OUT (P,) state mean g; may be NULL unless centered
                              floating* momentum_buffer,      # IN/OUT (P,) state; may be NULL unless momentum > 0
                              const floating* grads,          # IN     (P,)
                              Py_ssize_t P, double lr, double alpha, double eps, double weight_decay, double momentum,
                              bint centered, bint maximize, int num_threads) noexcept nogil:
    """g = ±g + wd p;  v = a v + (1 - a) g^2;  gavg = lerp(gavg, g, 1 - a) (centered);  avg = sqrt(v [- gavg^2]) + eps;
    buf = mu buf + g / avg, p -= lr buf (momentum > 0) or p -= lr g / avg"""
    cdef Py_ssize_t i, s, lo, n = _spans(P, num_threads)
    cdef floating w = 1 - alpha, coef = _lerp_coef(w)
    cdef bint from_start = -0.5 < w < 0.5
    cdef floating sign = -1 if maximize else 1, wd = weight_decay, a = alpha, eps_ = eps
    cdef floating mu = momentum, lr_ = lr
    cdef bint l2 = weight_decay != 0
    if n > 1:
        for s in prange(n, num_threads=n, schedule='static'):
            lo = s * P // n
            rmsprop_step(params + lo, square_avg + lo, _from(grad_avg, lo), _from(momentum_buffer, lo), grads + lo,
                         (s + 1) * P // n - lo, lr, alpha, eps, weight_decay, momentum, centered, maximize, 1)
    elif centered and momentum > 0:
        for i in range(P):
            _rmsprop_at(i, params, square_avg, grad_avg, momentum_buffer, grads, sign, l2, wd, a, w, from_start, coef,
                        eps_, mu, lr_, True, True)
    elif centered:
        for i in range(P):
            _rmsprop_at(i, params, square_avg, grad_avg, momentum_buffer, grads, sign, l2, wd, a, w, from_start, coef,
                        eps_, mu, lr_, True, False)
    elif momentum > 0:
        for i in range(P):
            _rmsprop_at(i, params, square_avg, grad_avg, momentum_buffer, grads, sign, l2, wd, a, w, from_start, coef,
                        eps_, mu, lr_, False, True)
    else:
        for i in range(P):
            _rmsprop_at(i, params, square_avg, grad_avg, momentum_buffer, grads, sign, l2, wd, a, w, from_start, coef,
                        eps_, mu, lr_, False, False)


cdef inline void adagrad_step(floating* params,               # IN/OUT (P,)
                              floating* state_sum,            # IN/OUT (P,) state sum of g^2
                              const floating* grads,          # IN     (P,)
                              Py_ssize_t P, double step, double lr, double lr_decay, double weight_decay, double eps,
                              bint maximize, int num_threads) noexcept nogil:
    """g = ±g + wd p;  s += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)"""
    cdef Py_ssize_t i, s, lo, n = _spans(P, num_threads)
    cdef floating clr = lr / (1 + (step - 1) * lr_decay), wd = weight_decay, eps_ = eps
    cdef floating sign = -1 if maximize else 1, p, g
    if n > 1:
        for s in prange(n, num_threads=n, schedule='static'):
            lo = s * P // n
            adagrad_step(params + lo, state_sum + lo, grads + lo, (s + 1) * P // n - lo, step, lr, lr_decay,
                         weight_decay, eps, maximize, 1)
        return
    for i in range(P):
        p, g = params[i], sign * grads[i]
        if weight_decay != 0:
            g = g + wd * p
        state_sum[i] = state_sum[i] + g * g
        params[i] = p - clr * (g / (_sqrt(state_sum[i]) + eps_))


# ---- the global gradient norm, for clipping and for catching a non-finite gradient before it is applied ----

cdef enum:
    NORM_BLOCK = 8192           # the norm is summed in fixed blocks, whatever the thread count: the same bits


cdef inline Py_ssize_t norm_blocks(Py_ssize_t P) noexcept nogil:
    """How many partial sums grad_norm_sq needs"""
    return (P + NORM_BLOCK - 1) // NORM_BLOCK


cdef inline double _block_sum_squares(const floating* g, Py_ssize_t n) noexcept nogil:
    # eight interleaved double accumulators: a fixed order the compiler can vectorise (one running sum cannot be
    # reordered without -ffast-math, and would wait on each add's latency)
    cdef double acc[8]
    cdef Py_ssize_t i, j
    cdef double v
    for j in range(8):
        acc[j] = 0
    i = 0
    while i + 8 <= n:
        for j in range(8):
            v = g[i + j]
            acc[j] += v * v
        i += 8
    for j in range(n - i):
        v = g[i + j]
        acc[j] += v * v
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef inline void norm_partials(const floating* grads, Py_ssize_t P, double* partial, Py_ssize_t first,
                               Py_ssize_t last) noexcept nogil:
    """partial[b] = the sum of squares of block b (NORM_BLOCK gradients) for the blocks [first, last)"""
    cdef Py_ssize_t b
    for b in range(first, last):
        partial[b] = _block_sum_squares(grads + b * NORM_BLOCK, min(NORM_BLOCK, P - b * NORM_BLOCK))


cdef inline double sum_partials(const double* partial, Py_ssize_t nb) noexcept nogil:
    """The blocks' sums added in order: the same total however the blocks were shared out"""
    cdef Py_ssize_t b
    cdef double total = 0
    for b in range(nb):
        total += partial[b]
    return total


cdef inline double grad_norm_sq(const floating* grads,               # IN  (P,)
                                Py_ssize_t P,
                                double* partial,                     # workspace (norm_blocks(P),)
                                int num_threads) noexcept nogil:
    """sum_i g_i^2 in double, in fixed blocks of NORM_BLOCK summed in order (inf/NaN when any g_i is)"""
    cdef Py_ssize_t b, nb = norm_blocks(P)
    if nb > 1 and num_threads > 1 and P >= PARALLEL_MIN_P:
        for b in prange(nb, num_threads=num_threads, schedule='static'):
            norm_partials(grads, P, partial, b, b + 1)
    else:
        norm_partials(grads, P, partial, 0, nb)
    return sum_partials(partial, nb)


cdef inline int any_nonfinite(const floating* a, Py_ssize_t n) noexcept nogil:
    """Whether some a_i is inf or NaN: a_i - a_i is 0 for a finite a_i and NaN otherwise (no -ffast-math folds
    it), OR-ed as integers, which GCC vectorises in the array's own lanes (a float sum it would not reorder)"""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        bad |= (a[i] - a[i]) != 0
    return bad


cdef inline double clip_coefficient(double norm, double max_norm) noexcept nogil:
    """torch.nn.utils.clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6))"""
    cdef double coef = max_norm / (norm + 1e-6)
    return coef if coef < 1 else 1.0


cdef inline void scale_in_place(floating* a, Py_ssize_t P, floating factor, int num_threads) noexcept nogil:
    """a *= factor"""
    cdef Py_ssize_t i, s, lo, n = _spans(P, num_threads)
    if n > 1:
        for s in prange(n, num_threads=n, schedule='static'):
            lo = s * P // n
            scale_in_place(a + lo, (s + 1) * P // n - lo, factor, 1)
        return
    for i in range(P):
        a[i] *= factor

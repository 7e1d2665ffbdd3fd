"""Python face of the optimizer kernels (see optim.pxd). Lengths, state and step are checked here too: never trust
the caller.

Optional state buffers are untyped arguments, converted inside: a None argument would steer Cython's fused dispatch.
"""
from cython cimport floating
from cython.view cimport array as cvarray
from libc.math cimport sqrt
cimport optim
from optim cimport PARALLEL_MIN_P
from fastnn._config import get_num_threads

optim.fnn_adam_init()   # adam.h: pick the AVX2 or baseline loops for this CPU once, at import


cdef floating* _state(floating[::1] params, arr, str kernel, str name, str needed_by) except? NULL:
    """Pointer to the optional state `arr` (NULL for None), checked against params' length and dtype;
    `needed_by` names the option that makes it required (None when it is not). The caller holds `arr`,
    which keeps the pointed-to memory alive."""
    cdef floating[::1] view
    if arr is None:
        if needed_by is not None:
            raise ValueError(f"{kernel}: {needed_by} needs '{name}', got None")
        return NULL
    try:
        view = arr
    except (TypeError, ValueError) as e:
        dtype = "float32" if floating is float else "float64"
        raise type(e)(f"{kernel}: '{name}' must be a writeable C-contiguous 1-D {dtype} array, as params: {e}") \
            from None
    if view.shape[0] != params.shape[0]:
        raise ValueError(f"{kernel}: '{name}' has {view.shape[0]} elements, params has {params.shape[0]}")
    return &view[0] if view.shape[0] else NULL


def _lengths_disagree(kernel, **lengths):
    return ValueError(f"{kernel}: every array must have params' length; got " +
                      ", ".join(f"{name} {n}" for name, n in lengths.items()))


cdef int _threads(Py_ssize_t P):
    # Asking costs a Python call; small buffers run serially anyway.
    return get_num_threads() if P >= PARALLEL_MIN_P else 1


cdef int _check_step(str kernel, double step) except -1:
    if not step >= 1:
        raise ValueError(f"{kernel}: step is the count after increment and must be >= 1, got {step}")
    return 0


def sgd_step(floating[::1] params not None, momentum_buffer, const floating[::1] grads not None,
             double lr, double momentum, double dampening, double weight_decay,
             bint nesterov, bint maximize, bint first_step):
    """g = ±g + wd p;  buf = g (1st step) or mu buf + (1 - dampening) g;  p -= lr (nesterov ? g + mu buf : buf)"""
    cdef Py_ssize_t P = params.shape[0]
    if grads.shape[0] != P:
        raise _lengths_disagree("sgd_step", params=P, grads=grads.shape[0])
    cdef floating* buf = _state(params, momentum_buffer, "sgd_step", "momentum_buffer",
                                "momentum != 0" if momentum != 0 else None)
    cdef int num_threads = _threads(P)
    with nogil:
        optim.sgd_step(&params[0], buf, &grads[0], P, lr, momentum, dampening, weight_decay,
                       nesterov, maximize, first_step, num_threads)


def adam_step(floating[::1] params not None, floating[::1] exp_avg not None, floating[::1] exp_avg_sq not None,
              max_exp_avg_sq, const floating[::1] grads not None, double step, double lr, double beta1, double beta2,
              double eps, double weight_decay, bint amsgrad, bint maximize, bint decoupled_weight_decay):
    """g = ±g (+ wd p, or p *= 1 - lr wd if decoupled);  m = lerp(m, g, 1 - b1);  v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v or max v) / sqrt(1 - b2^t) + eps)"""
    cdef Py_ssize_t P = params.shape[0]
    if exp_avg.shape[0] != P or exp_avg_sq.shape[0] != P or grads.shape[0] != P:
        raise _lengths_disagree("adam_step", params=P, exp_avg=exp_avg.shape[0], exp_avg_sq=exp_avg_sq.shape[0],
                                grads=grads.shape[0])
    _check_step("adam_step", step)
    cdef floating* vmax = _state(params, max_exp_avg_sq, "adam_step", "max_exp_avg_sq",
                                 "amsgrad=True" if amsgrad else None)
    cdef int num_threads = _threads(P)
    with nogil:
        optim.adam_step(&params[0], &exp_avg[0], &exp_avg_sq[0], vmax, &grads[0], P, step, lr, beta1, beta2, eps,
                        weight_decay, amsgrad, maximize, decoupled_weight_decay, num_threads)


def rmsprop_step(floating[::1] params not None, floating[::1] square_avg not None, grad_avg, momentum_buffer,
                 const floating[::1] grads not None, double lr, double alpha, double eps, double weight_decay,
                 double momentum, bint centered, bint maximize):
    """g = ±g + wd p;  v = a v + (1 - a) g^2;  gavg = lerp(gavg, g, 1 - a) (centered);  avg = sqrt(v [- gavg^2]) + eps;
    buf = mu buf + g / avg, p -= lr buf (momentum > 0) or p -= lr g / avg"""
    cdef Py_ssize_t P = params.shape[0]
    if square_avg.shape[0] != P or grads.shape[0] != P:
        raise _lengths_disagree("rmsprop_step", params=P, square_avg=square_avg.shape[0], grads=grads.shape[0])
    cdef floating* gavg = _state(params, grad_avg, "rmsprop_step", "grad_avg", "centered=True" if centered else None)
    cdef floating* buf = _state(params, momentum_buffer, "rmsprop_step", "momentum_buffer",
                                "momentum > 0" if momentum > 0 else None)
    cdef int num_threads = _threads(P)
    with nogil:
        optim.rmsprop_step(&params[0], &square_avg[0], gavg, buf, &grads[0], P, lr, alpha, eps, weight_decay, momentum,
                           centered, maximize, num_threads)


def adagrad_step(floating[::1] params not None, floating[::1] state_sum not None, const floating[::1] grads not None,
                 double step, double lr, double lr_decay, double weight_decay, double eps, bint maximize):
    """g = ±g + wd p;  s += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)"""
    cdef Py_ssize_t P = params.shape[0]
    if state_sum.shape[0] != P or grads.shape[0] != P:
        raise _lengths_disagree("adagrad_step", params=P, state_sum=state_sum.shape[0], grads=grads.shape[0])
    _check_step("adagrad_step", step)
    cdef int num_threads = _threads(P)
    with nogil:
        optim.adagrad_step(&params[0], &state_sum[0], &grads[0], P, step, lr, lr_decay, weight_decay, eps,
                           maximize, num_threads)


def clip_grad_norm(floating[::1] grads not None, double max_norm):
    """norm = ||g||_2;  g *= min(1, max_norm / (norm + 1e-6));  return norm (torch.nn.utils.clip_grad_norm_)"""
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be positive, got {max_norm}")
    cdef Py_ssize_t P = grads.shape[0]
    if P == 0:
        return 0.0
    cdef int num_threads = _threads(P)
    cdef double[::1] partial = cvarray(shape=(max(1, optim.norm_blocks(P)),), itemsize=sizeof(double), format="d")
    cdef double norm, coef
    with nogil:
        norm = sqrt(optim.grad_norm_sq(&grads[0], P, &partial[0], num_threads))
        coef = optim.clip_coefficient(norm, max_norm)
        if coef < 1:
            optim.scale_in_place(&grads[0], P, <floating>coef, num_threads)
    return norm

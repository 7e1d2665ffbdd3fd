"""Optimizer steps in pure NumPy: the twin of csrc/optim.pxd. Legend: P number of parameters.

Every kernel updates params and its state buffers in place with torch.optim's single-tensor (foreach=False)
formulas, in torch's order of operations. Hyper-parameters are rounded once to the arrays' dtype (`f(...)`),
as torch rounds a Python scalar to the tensor's dtype, so float32 stays float32 and matches the compiled kernels
to float rounding; scalar-only terms (bias corrections, 1 - lr * wd) are computed in Python floats first.
"""
import numpy as np

from .._spec import kernel

__all__ = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step", "clip_grad_norm"]


def _lerp(start, end, weight):
    """ATen's lerp: start + weight (end - start), from the nearer end for accuracy"""
    if -0.5 < weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def _require(kernel_name, name, array, needed_by):
    """Raise when the option `needed_by` (falsy when off) needs the state `name` and it is None."""
    if needed_by and array is None:
        raise ValueError(f"{kernel_name}: {needed_by} needs '{name}', got None")


def _check_step(kernel_name, step):
    if not step >= 1:
        raise ValueError(f"{kernel_name}: step is the count after increment and must be >= 1, got {step}")


def _gradient(grads, params, weight_decay, maximize):
    """torch's first lines, on a new array: g = -grads if maximize; g = g + wd * params if wd != 0"""
    g = -grads if maximize else grads
    if weight_decay != 0:
        g = g + params.dtype.type(weight_decay) * params
    return g


@kernel("params:P:out", "momentum_buffer:P:out,opt", "grads:P")
def sgd_step(params, momentum_buffer, grads, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step):
    """g = ±g + wd p;  buf = g (1st step) or mu buf + (1 - dampening) g;  p -= lr (nesterov ? g + mu buf : buf)"""
    _require("sgd_step", "momentum_buffer", momentum_buffer, momentum != 0 and "momentum != 0")
    f = params.dtype.type
    g = _gradient(grads, params, weight_decay, maximize)
    if momentum != 0:
        if first_step:
            momentum_buffer[...] = g
        else:
            momentum_buffer *= f(momentum)
            momentum_buffer += f(1 - dampening) * g
        g = g + f(momentum) * momentum_buffer if nesterov else momentum_buffer
    params -= f(lr) * g


@kernel("params:P:out", "exp_avg:P:out", "exp_avg_sq:P:out", "max_exp_avg_sq:P:out,opt", "grads:P")
def adam_step(params, exp_avg, exp_avg_sq, max_exp_avg_sq, grads, step, lr, beta1, beta2, eps, weight_decay,
              amsgrad, maximize, decoupled_weight_decay):
    """g = ±g (+ wd p, or p *= 1 - lr wd if decoupled);  m = lerp(m, g, 1 - b1);  v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v or max v) / sqrt(1 - b2^t) + eps)"""
    _check_step("adam_step", step)
    _require("adam_step", "max_exp_avg_sq", max_exp_avg_sq, amsgrad and "amsgrad=True")
    f = params.dtype.type
    g = _gradient(grads, params, 0 if decoupled_weight_decay else weight_decay, maximize)
    if decoupled_weight_decay and weight_decay != 0:
        params *= f(1 - lr * weight_decay)
    exp_avg[...] = _lerp(exp_avg, g, f(1 - beta1))
    exp_avg_sq *= f(beta2)
    exp_avg_sq += f(1 - beta2) * g * g
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5       # torch 2.13 writes `** 0.5`
    v = exp_avg_sq
    if amsgrad:
        v = max_exp_avg_sq
        np.maximum(v, exp_avg_sq, out=v)            # NaN wins, as torch.maximum
    params -= f(step_size) * (exp_avg / (np.sqrt(v) / f(bias_correction2_sqrt) + f(eps)))


@kernel("params:P:out", "square_avg:P:out", "grad_avg:P:out,opt", "momentum_buffer:P:out,opt", "grads:P")
def rmsprop_step(params, square_avg, grad_avg, momentum_buffer, grads, lr, alpha, eps, weight_decay, momentum,
                 centered, maximize):
    """g = ±g + wd p;  v = a v + (1 - a) g^2;  gavg = lerp(gavg, g, 1 - a) (centered);  avg = sqrt(v [- gavg^2]) + eps;
    buf = mu buf + g / avg, p -= lr buf (momentum > 0) or p -= lr g / avg"""
    _require("rmsprop_step", "grad_avg", grad_avg, centered and "centered=True")
    _require("rmsprop_step", "momentum_buffer", momentum_buffer, momentum > 0 and "momentum > 0")
    f = params.dtype.type
    g = _gradient(grads, params, weight_decay, maximize)
    square_avg *= f(alpha)
    square_avg += f(1 - alpha) * g * g
    if centered:
        grad_avg[...] = _lerp(grad_avg, g, f(1 - alpha))
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + f(eps)
    else:
        avg = np.sqrt(square_avg) + f(eps)
    if momentum > 0:
        momentum_buffer *= f(momentum)
        momentum_buffer += g / avg
        params -= f(lr) * momentum_buffer
    else:
        params -= f(lr) * (g / avg)


@kernel("params:P:out", "state_sum:P:out", "grads:P")
def adagrad_step(params, state_sum, grads, step, lr, lr_decay, weight_decay, eps, maximize):
    """g = ±g + wd p;  s += g^2;  p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)"""
    _check_step("adagrad_step", step)
    f = params.dtype.type
    g = _gradient(grads, params, weight_decay, maximize)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += g * g
    params -= f(clr) * (g / (np.sqrt(state_sum) + f(eps)))


@kernel("grads:P:out")
def clip_grad_norm(grads, max_norm):
    """norm = ||g||_2;  g *= min(1, max_norm / (norm + 1e-6));  return norm (torch.nn.utils.clip_grad_norm_)"""
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be positive, got {max_norm}")
    norm = float(np.sqrt(np.sum(np.square(grads, dtype=np.float64))))
    coef = max_norm / (norm + 1e-6)
    if coef < 1:
        grads *= grads.dtype.type(coef)
    return norm

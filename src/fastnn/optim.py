"""Optimizers: hyper-parameters, state buffers shaped like the model's flat parameter buffer, and one
kernel call per step. Names, defaults and update formulas are those of `torch.optim`."""
import numbers

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]


def _check_number(name, value, low=0.0, high=None, low_open=False, high_open=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if value < low or (low_open and value == low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return float(value)


class Optimizer:
    """Base class. `step(params, grads, backend)` updates the flat `params` in place from `grads`."""

    #: names of the state buffers (each shaped like params), in the kernel's argument order
    state_names = ()

    def __init__(self, lr):
        self.lr = _check_number("lr", lr)
        self.step_count = 0
        self.state = {}

    def hyperparameters(self):
        return {k: v for k, v in vars(self).items() if k not in ("step_count", "state")}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"

    def reset(self):
        """Forget all state: the next step is a first step."""
        self.step_count = 0
        self.state = {}

    def _needed_state(self):
        """The state buffers the current options use (the rest are passed as None)."""
        return self.state_names

    def _bind(self, params):
        if self.state:
            some = next(iter(self.state.values()))
            if some.shape != params.shape or some.dtype != params.dtype:
                raise ValueError(f"{type(self).__name__} holds state for {some.size} {some.dtype} parameters but "
                                 f"was given {params.size} {params.dtype}; use a fresh optimizer or call reset()")
            return
        for name in self._needed_state():
            self.state[name] = np.full_like(params, self._initial_state(name))

    def _initial_state(self, name):
        return 0.0

    def step(self, params, grads, backend):
        """One update of the flat `params` from the flat `grads` (arrays of one shape and dtype)."""
        self._bind(params)
        self.step_count += 1
        self._update(backend, params, grads, {n: self.state.get(n) for n in self.state_names})

    def state_buffers(self, params):
        """The state buffers bound to `params`, in the kernel's order (None where the options need none)."""
        self._bind(params)
        return tuple(self.state.get(n) for n in self.state_names) + (None,) * (3 - len(self.state_names))

    def kernel_hyper(self):
        """The hyper-parameters as the compiled training loop takes them (csrc/train.pxd's Hyper)."""
        raise NotImplementedError

    def _update(self, backend, params, grads, state):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay."""

    state_names = ("momentum_buffer",)

    def __init__(self, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
        super().__init__(lr)
        self.momentum = _check_number("momentum", momentum)
        self.dampening = _check_number("dampening", dampening, low=-np.inf)
        self.weight_decay = _check_number("weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        self.maximize = bool(maximize)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _needed_state(self):
        return self.state_names if self.momentum != 0 else ()

    def kernel_hyper(self):
        return dict(kind=0, lr=self.lr, momentum=self.momentum, dampening=self.dampening,
                    weight_decay=self.weight_decay, nesterov=self.nesterov, maximize=self.maximize)

    def _update(self, backend, params, grads, state):
        backend.sgd_step(params, state["momentum_buffer"], grads, self.lr, self.momentum, self.dampening,
                         self.weight_decay, self.nesterov, self.maximize, self.step_count == 1)


class Adam(Optimizer):
    """Adam (with optional AMSGrad); weight_decay is L2 added to the gradient (coupled)."""

    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    decoupled_weight_decay = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False):
        super().__init__(lr)
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check_number("betas[0]", betas[0], high=1.0), _check_number("betas[1]", betas[1], high=1.0))
        self.eps = _check_number("eps", eps)
        self.weight_decay = _check_number("weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)
        self.maximize = bool(maximize)

    def _needed_state(self):
        return self.state_names if self.amsgrad else self.state_names[:2]

    def kernel_hyper(self):
        return dict(kind=1, lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], eps=self.eps,
                    weight_decay=self.weight_decay, amsgrad=self.amsgrad, maximize=self.maximize,
                    decoupled=self.decoupled_weight_decay)

    def _update(self, backend, params, grads, state):
        backend.adam_step(params, state["exp_avg"], state["exp_avg_sq"], state["max_exp_avg_sq"], grads,
                          self.step_count, self.lr, self.betas[0], self.betas[1], self.eps, self.weight_decay,
                          self.amsgrad, self.maximize, self.decoupled_weight_decay)


class AdamW(Adam):
    """Adam with decoupled weight decay: params *= 1 - lr * weight_decay before the Adam step."""

    decoupled_weight_decay = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
        super().__init__(lr, betas, eps, weight_decay, amsgrad, maximize)


class RMSprop(Optimizer):
    """RMSprop with optional momentum and centering."""

    state_names = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 maximize=False):
        super().__init__(lr)
        self.alpha = _check_number("alpha", alpha)
        self.eps = _check_number("eps", eps)
        self.weight_decay = _check_number("weight_decay", weight_decay)
        self.momentum = _check_number("momentum", momentum)
        self.centered = bool(centered)
        self.maximize = bool(maximize)

    def _needed_state(self):
        return ("square_avg",) + (("grad_avg",) if self.centered else ()) + \
            (("momentum_buffer",) if self.momentum > 0 else ())

    def kernel_hyper(self):
        return dict(kind=2, lr=self.lr, alpha=self.alpha, eps=self.eps, weight_decay=self.weight_decay,
                    momentum=self.momentum, centered=self.centered, maximize=self.maximize)

    def _update(self, backend, params, grads, state):
        backend.rmsprop_step(params, state["square_avg"], state["grad_avg"], state["momentum_buffer"], grads,
                             self.lr, self.alpha, self.eps, self.weight_decay, self.momentum, self.centered,
                             self.maximize)


class Adagrad(Optimizer):
    """Adagrad with optional learning-rate decay."""

    state_names = ("state_sum",)

    def __init__(self, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 maximize=False):
        super().__init__(lr)
        self.lr_decay = _check_number("lr_decay", lr_decay)
        self.weight_decay = _check_number("weight_decay", weight_decay)
        self.initial_accumulator_value = _check_number("initial_accumulator_value", initial_accumulator_value)
        self.eps = _check_number("eps", eps)
        self.maximize = bool(maximize)

    def _initial_state(self, name):
        return self.initial_accumulator_value

    def kernel_hyper(self):
        return dict(kind=3, lr=self.lr, lr_decay=self.lr_decay, weight_decay=self.weight_decay, eps=self.eps,
                    maximize=self.maximize)

    def _update(self, backend, params, grads, state):
        backend.adagrad_step(params, state["state_sum"], grads, self.step_count, self.lr, self.lr_decay,
                             self.weight_decay, self.eps, self.maximize)

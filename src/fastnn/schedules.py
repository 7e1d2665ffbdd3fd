"""Learning-rate schedules: callbacks that set `model.optimizer_.lr`. Every fastnn optimizer reads its `lr` at
each step, so a schedule works with all of them.

A schedule takes the optimizer's lr at the start of training as its base lr. It puts that lr back at the end
of training, so a second fit with the same optimizer runs the same schedule again, not from the last lr.
`History.history["lr"]` keeps the lr used in each epoch.

StepLR, ExponentialLR and CosineAnnealingLR set the lr of epoch t (0-based, as fit counts within one call) in
`on_epoch_begin`, by torch.optim.lr_scheduler's closed forms. `lr_at(t, base_lr)` gives the same values
without training. ReduceLROnPlateau reacts to a logged metric in `on_epoch_end`, as torch's does.
"""
import math

from .callbacks import Callback, _check_count, _Monitor
from .optim import _check_number

__all__ = ["LRSchedule", "StepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau"]


class LRSchedule(Callback):
    """Base class: takes the base lr from the optimizer at train begin and puts it back at train end."""

    sets_lr = True
    base_lr = None

    def _optimizer(self):
        optimizer = getattr(self.model, "optimizer_", None)
        if optimizer is None or not hasattr(optimizer, "lr"):
            raise RuntimeError(f"{type(self).__name__} sets model.optimizer_.lr, but the model has no optimizer_ "
                               f"with an lr: use it through fit(callbacks=[...])")
        return optimizer

    def on_train_begin(self, logs=None):
        self.base_lr = self._optimizer().lr

    def on_train_end(self, logs=None):
        self._optimizer().lr = self.base_lr


class _ClosedForm(LRSchedule):
    """A schedule whose lr is a function of the epoch and the base lr alone."""

    def on_epoch_begin(self, epoch, logs=None):
        self._optimizer().lr = self.lr_at(epoch)

    def lr_at(self, epoch, base_lr=None):
        """The lr of 0-based `epoch` when the base lr is `base_lr` (default: the one taken at train begin)."""
        epoch = _check_count("epoch", epoch)
        if base_lr is None:
            if self.base_lr is None:
                raise ValueError(f"{type(self).__name__}.lr_at needs base_lr=... before training has begun")
            base_lr = self.base_lr
        return self._lr(epoch, _check_number("base_lr", base_lr))

    def _lr(self, epoch, base):
        raise NotImplementedError


class StepLR(_ClosedForm):
    """lr = base * gamma ** (epoch // step_size): the lr is multiplied by gamma every step_size epochs."""

    def __init__(self, step_size, gamma=0.1):
        self.step_size = _check_count("step_size", step_size, 1)
        self.gamma = _check_number("gamma", gamma, low_open=True)

    def _lr(self, epoch, base):
        return base * self.gamma ** (epoch // self.step_size)


class ExponentialLR(_ClosedForm):
    """lr = base * gamma ** epoch."""

    def __init__(self, gamma):
        self.gamma = _check_number("gamma", gamma, low_open=True)

    def _lr(self, epoch, base):
        return base * self.gamma ** epoch


class CosineAnnealingLR(_ClosedForm):
    """Linear warm-up, then a half cosine from the base lr down to eta_min, then eta_min.

    For epoch t < warmup_epochs (W): lr = base * (f + (1 - f) * t / W), f = warmup_start_factor (torch's LinearLR).
    Then, with s = t - W and T = T_max - W: lr = eta_min + (base - eta_min) * (1 + cos(pi * s / T)) / 2
    (torch's CosineAnnealingLR closed form). The lr is eta_min from epoch T_max on. torch's form would rise
    again there, but a schedule that ends at T_max should stay at its end."""

    def __init__(self, T_max, eta_min=0.0, warmup_epochs=0, warmup_start_factor=0.1):
        self.T_max = _check_count("T_max", T_max, 1)
        self.eta_min = _check_number("eta_min", eta_min)
        self.warmup_epochs = _check_count("warmup_epochs", warmup_epochs)
        if self.warmup_epochs >= self.T_max:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be less than T_max ({self.T_max}): "
                             f"the cosine phase needs at least one epoch")
        self.warmup_start_factor = _check_number("warmup_start_factor", warmup_start_factor, low_open=True,
                                                 high=1.0, high_open=False)

    def _lr(self, epoch, base):
        W = self.warmup_epochs
        if epoch < W:
            f = self.warmup_start_factor
            return base * (f + (1.0 - f) * epoch / W)
        s, T = min(epoch - W, self.T_max - W), self.T_max - W
        return self.eta_min + (base - self.eta_min) * (1.0 + math.cos(math.pi * s / T)) / 2.0


class ReduceLROnPlateau(LRSchedule):
    """Multiply the lr by `factor` when `monitor` has not improved by more than `min_delta` for more than
    `patience` epochs. This follows torch's ReduceLROnPlateau with threshold_mode="abs". With patience=2, the
    first two epochs without improvement are ignored, and the lr drops at the end of the third.

    cooldown: epochs to wait after a reduction before counting epochs without improvement again.
    min_lr: the lr never goes below this.  mode: "min", "max", or "auto" (from the name, as EarlyStopping)."""

    EPS = 1e-8  # torch's eps: a reduction smaller than this (as when min_lr is reached) is skipped

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, cooldown=0, min_lr=0.0,
                 mode="auto"):
        self._monitor = _Monitor(monitor, mode, min_delta)
        self.monitor, self.mode, self.min_delta = monitor, self._monitor.mode, self._monitor.min_delta
        self.factor = _check_number("factor", factor, low_open=True, high=1.0)
        self.patience = _check_count("patience", patience)
        self.cooldown = _check_count("cooldown", cooldown)
        self.min_lr = _check_number("min_lr", min_lr)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._monitor.reset()
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        improved = self._monitor.update(logs)
        self.num_bad_epochs = 0 if improved else self.num_bad_epochs + 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            optimizer = self._optimizer()
            new_lr = max(optimizer.lr * self.factor, self.min_lr)
            if optimizer.lr - new_lr > self.EPS:
                optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

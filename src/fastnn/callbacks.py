"""Callbacks: objects that `MLP.fit` calls at the start and end of training and of each epoch.

The hooks and their arguments follow Keras. `epoch` is the 0-based index of the epoch.
- `on_train_begin(logs)`: `logs` is `{"epochs": epochs in this fit, "samples": training samples per epoch}`.
- `on_epoch_begin(epoch, logs)`.
- `on_batches_end(epoch, batches_done, n_batches, logs)`: called after each chunk of batches inside an
  epoch, with `logs = {"loss": running mean loss so far, "samples": samples done so far}`. fit's compiled
  epoch loop returns to Python for this (about every 0.1 s) only when some callback's
  `wants_batch_updates` is true. Otherwise an epoch is a single compiled call.
- `on_epoch_end(epoch, logs)`: `logs` holds "loss" and "accuracy" or "r2" (running values over the epoch's
  batches, as Keras reports them: each batch is scored as it is trained on), "val_loss" and "val_accuracy" /
  "val_r2" (on the validation data after the epoch, when there is some), and "lr".
- `on_train_end(logs)`.
A callback reaches the model through `self.model`. It stops training by setting
`self.model.stop_training = True`.
"""
import inspect
import math
import numbers
import sys
from time import perf_counter

import numpy as np

from .optim import _check_number

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ProgressBar", "LambdaCallback"]

MAX_METRICS = ("accuracy", "r2")  # higher is better; every "...loss" is lower-is-better


def _check_count(name, value, low=0):
    """An integer hyper-parameter (patience, step_size, ...) that must be >= low."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(_check_number(name, value, low))


class Callback:
    """Base class: every hook does nothing. Override the hooks you need."""

    model = None
    #: True for callbacks that set the optimizer's lr: a fit takes at most one, as two would overwrite each other
    sets_lr = False

    def __repr__(self):
        """The class and its constructor arguments, as the instance holds them."""
        attrs = vars(self)
        args = ", ".join(f"{k}={attrs[k]!r}" for k in inspect.signature(type(self).__init__).parameters
                         if k in attrs)
        return f"{type(self).__name__}({args})"

    def set_model(self, model):
        self.model = model

    @property
    def wants_batch_updates(self):
        """Whether fit must return to Python inside epochs to call `on_batches_end`: true when it is overridden
        (in a subclass, or by an instance attribute as LambdaCallback sets)."""
        return getattr(self.on_batches_end, "__func__", None) is not Callback.on_batches_end

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batches_end(self, epoch, batches_done, n_batches, logs=None):
        pass


class CallbackList:
    """The callbacks of one fit, bound to its model. Each hook is called on every callback, in order."""

    def __init__(self, callbacks, model):
        self.callbacks = [] if callbacks is None else list(callbacks)
        for k, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks[{k}] is a {type(cb).__name__}, not a fastnn.callbacks.Callback")
        lr_setters = [type(cb).__name__ for cb in self.callbacks if cb.sets_lr]
        if len(lr_setters) > 1:
            raise ValueError(f"at most one learning-rate schedule per fit, got {lr_setters}: each would "
                             f"overwrite the lr the other set")
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    @property
    def wants_batch_updates(self):
        return any(cb.wants_batch_updates for cb in self.callbacks)

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_batches_end(self, epoch, batches_done, n_batches, logs=None):
        for cb in self.callbacks:
            cb.on_batches_end(epoch, batches_done, n_batches, logs)


class History(Callback):
    """What `fit` returns. `history[key]` is the list of that key's value in each epoch's logs ("loss",
    "accuracy" or "r2", "val_loss", "val_accuracy" or "val_r2", "lr"). `epoch` lists the epoch indices.
    A key that is missing in some epochs gets NaN there, so every list lines up with `epoch`."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key in logs:
            if key not in self.history:
                self.history[key] = [math.nan] * len(self.epoch)
        for key, values in self.history.items():
            value = logs.get(key, math.nan)
            values.append(float(value) if isinstance(value, numbers.Real) else value)
        self.epoch.append(epoch)

    def __repr__(self):
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items()
                         if isinstance(v[-1], numbers.Real)) if self.epoch else ""
        return f"History(epochs={len(self.epoch)}{', last: ' + last if last else ''})"

    def plot(self, metrics=None):
        """Draw one panel per metric with its training and validation curves against the epoch. Returns the
        matplotlib Figure, so `fig.savefig("loss.png")` saves it.

        metrics: names without the "val_" prefix, e.g. ["loss", "lr"]. The default is every training metric
        except "lr". Needs matplotlib (`pip install fastnn[plot]`)."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("History.plot needs matplotlib, an optional dependency: "
                              "pip install fastnn[plot]") from None
        if not self.epoch:
            raise ValueError("nothing to plot: the history holds no epochs")
        available = [k for k in self.history if not k.startswith("val_")]
        if metrics is None:
            metrics = [k for k in available if k != "lr"]
        elif isinstance(metrics, str):
            metrics = [metrics]
        for name in metrics:
            if name not in available:
                raise ValueError(f"no metric {name!r} in the history; available: {available}")
        if not metrics:
            raise ValueError("nothing to plot: no metrics were chosen")
        # A bare Figure rather than pyplot: no global figure manager to leak figures or need a GUI backend.
        fig = Figure(figsize=(4.5 * len(metrics), 3.5), layout="constrained")
        x = np.arange(1, len(self.epoch) + 1)
        for ax, name in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
            ax.plot(x, self.history[name], label="train" if name != "lr" else name)
            if "val_" + name in self.history:
                ax.plot(x, self.history["val_" + name], label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            if name == "lr" and min(self.history[name]) > 0:  # decays are geometric: log shows their shape
                ax.set_yscale("log")
            ax.legend()
            ax.grid(alpha=0.3)
        return fig


class _Monitor:
    """A logged quantity to watch: its key, which direction is better, and the smallest change that counts.
    Shared by EarlyStopping and ReduceLROnPlateau, so both judge an improvement the same way."""

    def __init__(self, monitor, mode, min_delta):
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor must be the name of a logged quantity such as 'val_loss', got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            base = monitor.removeprefix("val_")
            if base in MAX_METRICS:
                mode = "max"
            elif base.endswith("loss"):
                mode = "min"
            else:
                raise ValueError(f"cannot tell whether {monitor!r} should go up or down: pass mode='min' or 'max'")
        self.monitor, self.mode = monitor, mode
        self.min_delta = _check_number("min_delta", min_delta)
        self.reset()

    def reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"monitor={self.monitor!r} is not in the epoch logs; available: {sorted(logs)} "
                             f"(val_* needs validation_split or validation_data)")
        return float(logs[self.monitor])

    def update(self, logs):
        """Whether this epoch's value beats the best by more than min_delta; if so it becomes the best.
        A NaN never counts as an improvement."""
        current = self.value(logs)
        if self.mode == "min":
            improved = current < self.best - self.min_delta
        else:
            improved = current > self.best + self.min_delta
        if improved:
            self.best = current
        return improved


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs in a row.

    mode: "min" (losses), "max" (accuracy, r2), or "auto" (inferred from the name).
    restore_best_weights: put the parameters of the best epoch back when stopping and at the end of training.
    After training: `best` (the best value), `best_epoch`, and `stopped_epoch` (None if it never stopped)."""

    def __init__(self, monitor="val_loss", patience=10, min_delta=0.0, restore_best_weights=True, mode="auto"):
        self._monitor = _Monitor(monitor, mode, min_delta)
        self.monitor, self.mode, self.min_delta = monitor, self._monitor.mode, self._monitor.min_delta
        self.patience = _check_count("patience", patience)
        self.restore_best_weights = bool(restore_best_weights)
        self._reset()

    def _reset(self):
        self._monitor.reset()
        self.best, self.best_epoch, self.stopped_epoch = self._monitor.best, None, None
        self.best_params = None
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        if self._monitor.update(logs):
            self.best, self.best_epoch, self.wait = self._monitor.best, epoch, 0
            if self.restore_best_weights:
                self.best_params = self.model.params.copy()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            self._restore()

    def on_train_end(self, logs=None):
        self._restore()

    def _restore(self):
        if self.restore_best_weights and self.best_params is not None:
            self.model.params[...] = self.best_params  # in place: the per-layer weights are views of this buffer


def _format_seconds(seconds):
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar(Callback):
    """What `verbose=1` shows. On a terminal it keeps one line per epoch and updates it in place:
    `Epoch 3/20 [=====>....] 640/1000 - ETA 0.4s - 25,000 samples/s - loss 0.3412`, and at the end of the
    epoch it shows the epoch's time and all its logs (validation metrics too). When `stream` is not a terminal
    (a file, a pipe, a CI log), it writes one line per epoch, at its end, and never a carriage return.

    stream: where to write (default sys.stdout).  width: the bar's length in characters."""

    def __init__(self, stream=None, width=30):
        self.stream = sys.stdout if stream is None else stream
        if not callable(getattr(self.stream, "write", None)):
            raise TypeError(f"stream must have a write method, got {type(self.stream).__name__}")
        self.width = _check_count("width", width, 1)
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        self.epochs = self.samples = None
        self.on_epoch_begin(0)

    @property
    def wants_batch_updates(self):
        return self.tty  # off a terminal nothing is drawn inside an epoch: let fit run it in one compiled call

    def on_train_begin(self, logs=None):
        logs = logs or {}
        self.epochs, self.samples = logs.get("epochs"), logs.get("samples")

    def on_epoch_begin(self, epoch, logs=None):
        self._start = perf_counter()
        self._done = None  # samples done so far, when fit has said
        self._shown = 0    # length of the line on screen, to blank what a shorter line leaves behind

    def _head(self, epoch, fraction, done):
        filled = int(self.width * min(fraction, 1.0))
        bar = "=" * filled + (">" + "." * (self.width - filled - 1) if filled < self.width else "")
        count = "" if done is None else f" {done}" + ("" if self.samples is None else f"/{self.samples}")
        total = "" if self.epochs is None else f"/{self.epochs}"
        return f"Epoch {epoch + 1}{total} [{bar}]{count}"

    def _rate(self, done, elapsed):
        return f" - {done / elapsed:,.0f} samples/s" if done is not None and elapsed > 0 else ""

    def on_batches_end(self, epoch, batches_done, n_batches, logs=None):
        if not self.tty:
            return
        logs = logs or {}
        elapsed = perf_counter() - self._start
        self._done = logs.get("samples")
        fraction = (self._done / self.samples if self.samples and self._done is not None
                    else batches_done / max(n_batches, 1))
        line = self._head(epoch, fraction, self._done)
        if batches_done > 0:  # the remaining batches are assumed to go as fast as the ones done
            line += f" - ETA {_format_seconds(elapsed * (n_batches - batches_done) / batches_done)}"
        line += self._rate(self._done, elapsed)
        if "loss" in logs:
            line += f" - loss {logs['loss']:.4f}"
        self._write("\r" + line.ljust(self._shown))
        self._shown = len(line)

    def on_epoch_end(self, epoch, logs=None):
        elapsed = perf_counter() - self._start
        done = self.samples if self.samples is not None else self._done
        line = self._head(epoch, 1.0, done) + f" - {_format_seconds(elapsed)}" + self._rate(done, elapsed)
        for key, value in (logs or {}).items():
            line += f" - {key} {value:.3g}" if key == "lr" else f" - {key} {value:.4f}"
        self._write(("\r" + line.ljust(self._shown) if self.tty else line) + "\n")

    def _write(self, text):
        self.stream.write(text)
        flush = getattr(self.stream, "flush", None)
        if callable(flush):
            flush()


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. `LambdaCallback(on_epoch_end=lambda epoch, logs: print(logs))`.
    Each function takes the arguments of the hook it replaces."""

    def __init__(self, on_epoch_end=None, on_epoch_begin=None, on_train_begin=None, on_train_end=None,
                 on_batches_end=None):
        given = dict(on_epoch_end=on_epoch_end, on_epoch_begin=on_epoch_begin, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_batches_end=on_batches_end)
        for name, fn in given.items():
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
                setattr(self, name, fn)  # shadows the no-op method; wants_batch_updates sees it

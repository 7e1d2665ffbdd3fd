"""The multilayer perceptron: a sizes table, flat buffers with per-layer views, fit / predict.

Layout (llm.c style): all weights and biases live in one contiguous buffer `params`, layer by layer
[W0 (I0 x O0), b0 (O0), W1, b1, ...]; `grads` and every optimizer state buffer share that layout, so an
optimizer step is one kernel call over flat arrays. `fit` runs each epoch in one compiled call
(`train_batches`, csrc/_train.pyx, or its NumPy twin for backend="numpy") over workspaces allocated once.
"""
import contextlib
import inspect
import numbers
import threading
import time
import warnings

import numpy as np

from . import optim as _optim
from . import training as _training
from ._config import blas_threads, get_num_threads
from .backend import get_backend
from .callbacks import CallbackList, EarlyStopping, History, ProgressBar

__all__ = ["MLP", "History", "ACTIVATIONS", "LOSSES"]

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softplus", "silu")  # kernel codes
RELU_LIKE = ("relu", "leaky_relu", "gelu", "silu", "softplus")
# loss -> the output activation fused into it; the order gives the kernels' loss codes
LOSSES = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid", "mse": "identity",
          "mae": "identity", "huber": "identity"}
OUTPUT_CODES = {"softmax": 0, "sigmoid": 1, "identity": 2}
CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy")
INITS = ("auto", "he", "glorot")
PREDICT_BLOCK = 256       # rows per thread per forward pass in predict: the activations stay in cache
BATCH_UPDATE_SECONDS = 0.1  # how often fit returns to Python inside an epoch when a callback wants it
# what train_batches' status (a TrainStatus, csrc/train.pxd) says diverged; the batch was not applied
DIVERGED = {1: "the loss became non-finite", 2: "the gradient became non-finite",
            3: "the optimizer step made the weights or its state non-finite (the step was undone)"}


class _Workspace:
    """Activations and their gradients for one batch size, each family in one flat buffer (per-batch path)."""

    def __init__(self, sizes, n, dtype):
        widths = sizes[1:]
        total = n * sum(widths)
        self.pre = _carve(np.empty(total, dtype), n, widths)       # Z_l = A_{l-1} W_l + b_l
        self.post = _carve(np.empty(total, dtype), n, widths)      # A_l = act(Z_l); the last is the output
        self.mask = _carve(np.empty(total, dtype), n, widths)      # dropout masks (hidden layers)
        self.dropped = _carve(np.empty(total, dtype), n, widths)   # A_l * mask
        self.grad_flat = np.zeros(2 * total, dtype)                # dZ_l then dA_l, zeroed in one call
        self.dpre = _carve(self.grad_flat[:total], n, widths)
        self.dpost = _carve(self.grad_flat[total:], n, widths)


class _EpochBuffers:
    """Everything the compiled epoch loop touches besides the model's own buffers: allocated once, kept by the
    model for the next fit of the same batch size and optimizer state (a wide model's saved params and state are
    hundreds of MB, and fresh pages cost the kernel's zeroing on first touch, every fit)."""

    def __init__(self, model, batch_size, n_outputs, state):
        dtype, sizes = model.dtype, model.layer_sizes
        B = batch_size
        self.key = _EpochBuffers.key_of(model, batch_size, n_outputs, state)
        workspace = B * sum(sizes[1:])
        hidden = max(1, B * sum(sizes[1:-1]))
        self.xb = np.empty((B, sizes[0]), dtype)
        self.cb = np.zeros(B, np.int64)
        self.tb = np.zeros((B, n_outputs), dtype)
        self.wb = np.ones(B, dtype)
        self.pre, self.post = np.empty(workspace, dtype), np.empty(workspace, dtype)
        self.dpre, self.dpost = np.empty(workspace, dtype), np.empty(workspace, dtype)
        self.mask, self.dropped = np.empty(hidden, dtype), np.empty(hidden, dtype)
        self.partial = np.empty(max(1, -(-model.n_params // 8192)))
        # params and the optimizer's state as a call began: restored if a step overflows (csrc/_train.pyx)
        self.saved = np.empty(model.n_params * (1 + sum(s is not None for s in state)), dtype)
        self.metric = np.zeros(3 * n_outputs)
        # a small step runs in row shards (csrc/_train.pyx): each shard after the first has a gradient of its own
        shards = model.backend.train.step_shards(model._sizes, B)
        self.shard_grads = np.empty((shards - 1) * model.n_params, dtype)
        self.shard_metric = np.zeros(shards * 3 * n_outputs)

    @staticmethod
    def key_of(model, batch_size, n_outputs, state):
        return (model.dtype, tuple(model.layer_sizes), batch_size, n_outputs, tuple(s is not None for s in state))


def _carve(flat, n, widths):
    views, offset = [], 0
    for w in widths:
        views.append(flat[offset: offset + n * w].reshape(n, w))
        offset += n * w
    return views


def _as_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _as_real(name, value, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return float(value)


class _Guard:
    """Refuses, with a clear error, to let one model train while another thread uses it (or to read it while
    it trains): the workspaces and the weights would be corrupted. Concurrent predictions are fine."""

    def __init__(self):
        self._mutex = threading.Lock()
        self._readers = 0
        self._writer = False

    @contextlib.contextmanager
    def reading(self, what):
        with self._mutex:
            if self._writer:
                raise RuntimeError(f"cannot {what}: this MLP is in use by another thread (it is being trained)")
            self._readers += 1
        try:
            yield
        finally:
            with self._mutex:
                self._readers -= 1

    @contextlib.contextmanager
    def writing(self, what):
        with self._mutex:
            if self._writer or self._readers:
                raise RuntimeError(f"cannot {what}: this MLP is in use by another thread")
            self._writer = True
        try:
            yield
        finally:
            with self._mutex:
                self._writer = False


class MLP:
    """A multilayer perceptron trained with compiled kernels.

    layer_sizes: [n_features, hidden..., n_outputs], e.g. [4, 16, 16, 3].
    activation: hidden-layer activation, one of ACTIVATIONS.
    loss: one of LOSSES; it also fixes the output activation (cross_entropy -> softmax,
        binary_cross_entropy -> sigmoid, mse/mae/huber -> identity).
    dtype: "float32" or "float64" for parameters and arithmetic.
    seed: seeds initialisation, shuffling, validation splits and dropout (None: fresh entropy).
    init: "auto" (He for relu-like activations, Glorot otherwise), "he" (normal, std sqrt(2/fan_in))
        or "glorot" (uniform, limit sqrt(6/(fan_in+fan_out))). Biases start at zero.
    backend: "compiled" (Cython/OpenMP kernels) or "numpy" (the pure-NumPy reference).
    negative_slope: the slope of leaky_relu for x < 0.  huber_delta: the Huber loss threshold.
    dropout: inverted dropout rate after each hidden layer (one rate, or a list with one per hidden layer);
        only while training, never in predict. Seeded: the same seed gives the same masks on any thread count.
    num_threads: threads for this model's compiled work (default: fastnn.get_num_threads()).
    """

    def __init__(self, layer_sizes, activation="relu", loss="cross_entropy", dtype="float32", seed=None,
                 init="auto", backend="compiled", negative_slope=0.01, huber_delta=1.0, dropout=0.0,
                 num_threads=None):
        try:
            sizes = None if isinstance(layer_sizes, (str, bytes)) else list(layer_sizes)
        except TypeError:   # None, a number: name the argument rather than let list() speak
            sizes = None
        if sizes is None:
            raise TypeError(f"layer_sizes must be a list of layer widths such as [4, 16, 3], got {layer_sizes!r}")
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes needs at least an input and an output size, got {layer_sizes!r}")
        self.layer_sizes = [_as_int("every layer size", s, 1) for s in sizes]
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {ACTIVATIONS}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {tuple(LOSSES)}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
        if dtype is None:   # np.dtype(None) is float64, not MLP's default float32: refuse rather than guess
            raise ValueError("dtype must be 'float32' or 'float64', got None (MLP's default is 'float32')")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.negative_slope = _as_real("negative_slope", negative_slope)
        self.huber_delta = _as_real("huber_delta", huber_delta, low=0, low_open=True)
        n_hidden = len(self.layer_sizes) - 2
        rates = list(dropout) if isinstance(dropout, (list, tuple, np.ndarray)) else [dropout] * n_hidden
        if len(rates) != n_hidden:
            raise ValueError(f"dropout needs one rate per hidden layer ({n_hidden}), got {len(rates)}")
        self.dropout = [_as_real("dropout", r, low=0, high=1, high_open=True) for r in rates]
        if num_threads is not None:
            num_threads = _as_int("num_threads", num_threads, 1)
        self.num_threads = num_threads
        self.activation, self.loss, self.init = activation, loss, init
        self.seed = seed
        self.backend = get_backend(backend)
        self.classes_ = None
        self._y_1d = False
        self.optimizer_ = None
        self.history_ = None
        self.n_iter_ = 0
        self.stop_training = False
        self._allocate()
        init_seq, shuffle_seq, split_seq, dropout_seq = np.random.SeedSequence(seed).spawn(4)
        self._shuffle_rng = np.random.default_rng(shuffle_seq)
        self._split_rng = np.random.default_rng(split_seq)
        self._dropout_seed = int(dropout_seq.generate_state(1, np.uint64)[0])
        self._dropout_stream = 0
        self._init_seq = init_seq
        self._initialize()

    # ---------------------------------------------------------------- parameters
    def _allocate(self):
        shapes = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))
        self.n_params = sum(i * o + o for i, o in shapes)
        self.params = np.zeros(self.n_params, self.dtype)
        self.grads = np.zeros(self.n_params, self.dtype)
        self._sizes = np.array(self.layer_sizes, np.intc)
        self._offsets = np.cumsum([0] + [i * o + o for i, o in shapes[:-1]]).astype(np.intp)
        self._starts = np.cumsum([0] + [o for _, o in shapes[:-1]]).astype(np.intp)
        self._make_views()

    def _make_views(self):
        self._W, self._b, self._dW, self._db = [], [], [], []
        for (i, o), offset in zip(zip(self.layer_sizes[:-1], self.layer_sizes[1:]), self._offsets):
            for flat, W_list, b_list in ((self.params, self._W, self._b), (self.grads, self._dW, self._db)):
                W_list.append(flat[offset: offset + i * o].reshape(i, o))
                b_list.append(flat[offset + i * o: offset + i * o + o])
        self._workspaces = {}
        self._epoch_buffers = None
        self._guard = _Guard()

    def _initialize(self):
        rng = np.random.default_rng(self._init_seq)
        he = self.init == "he" or (self.init == "auto" and self.activation in RELU_LIKE)
        for W, b in zip(self._W, self._b):
            fan_in, fan_out = W.shape
            if he:
                W[...] = rng.standard_normal(W.shape) * np.sqrt(2.0 / fan_in)
            else:
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                W[...] = rng.uniform(-limit, limit, W.shape)
            b[...] = 0

    def __getstate__(self):
        """Pickle arrays and settings; views, workspaces and the lock are rebuilt on unpickling."""
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_W", "_b", "_dW", "_db", "_workspaces", "_epoch_buffers", "_guard", "backend")}
        state["backend"] = self.backend.name
        return state

    def __setstate__(self, state):
        state = dict(state)
        backend = state.pop("backend")
        self.__dict__.update(state)
        self.backend = get_backend(backend)
        self._make_views()

    @property
    def weights(self):
        """Live (I, O) views into the parameter buffer, one per layer; assignable."""
        return list(self._W)

    @weights.setter
    def weights(self, values):
        self._assign(self._W, values, "weights")

    @property
    def biases(self):
        """Live (O,) views into the parameter buffer, one per layer; assignable."""
        return list(self._b)

    @biases.setter
    def biases(self, values):
        self._assign(self._b, values, "biases")

    def _assign(self, views, values, what):
        values = list(values)
        if len(values) != len(views):
            raise ValueError(f"expected {len(views)} {what} arrays, got {len(values)}")
        arrays = [np.asarray(v) for v in values]
        for k, (view, value) in enumerate(zip(views, arrays)):
            if value.shape != view.shape:
                raise ValueError(f"{what}[{k}] must have shape {view.shape}, got {value.shape}")
            if value.dtype.kind not in "biuf" or not np.all(np.isfinite(value)):
                raise ValueError(f"{what}[{k}] must be finite numbers")
        with self._guard.writing(f"assign {what}"):
            for view, value in zip(views, arrays):
                view[...] = value

    @property
    def is_classifier(self):
        return self.loss in CLASSIFICATION_LOSSES

    @property
    def threads(self):
        """The thread count this model's compiled work uses now."""
        return self.num_threads if self.num_threads is not None else get_num_threads()

    def _blas_threads(self):
        """BLAS's threads while this model works: 1 beside the compiled kernels' own threads (they call BLAS
        from inside them), the model's count on the NumPy backend (there BLAS is the only parallel code)."""
        return blas_threads(1 if self.backend.name == "compiled" else self.threads)

    def __repr__(self):
        return (f"MLP({self.layer_sizes}, activation={self.activation!r}, loss={self.loss!r}, "
                f"dtype={self.dtype.name!r}, backend={self.backend.name!r})")

    # ---------------------------------------------------------------- input checking
    def _check_X(self, X):
        if hasattr(X, "to_numpy"):  # pandas
            X = X.to_numpy()
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must be numeric, got dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("X is empty (0 samples)")
        if X.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"X has {X.shape[1]} features but the model's input layer has {self.layer_sizes[0]}")
        with np.errstate(over="ignore"):   # values too large for the dtype become inf: refused just below
            X = np.ascontiguousarray(X, dtype=self.dtype)
        if not np.all(np.isfinite(X)):
            raise ValueError(f"X contains NaN or inf, or values too large for {self.dtype}")
        return X

    def _encode_y(self, y, n, fit, classes=None):
        """Targets in kernel form, int64 class indices (cross_entropy) or a float (n, O) array, and the labels
        learnt from y when `fit` ({"classes_": ..., "_y_1d": ...}; else {}). Stores nothing: a fit sets the labels
        only once every check has passed. classes: the labels to encode against (default classes_)."""
        if hasattr(y, "to_numpy"):
            y = y.to_numpy()
        y = np.asarray(y)
        n_out = self.layer_sizes[-1]
        if y.shape[0:1] != (n,):
            raise ValueError(f"y has {y.shape[0] if y.ndim else 'no'} samples but X has {n}")
        if self.loss == "cross_entropy":
            if y.ndim != 1:
                raise ValueError(f"cross_entropy needs 1-D class labels, got y of shape {y.shape}")
            if fit:
                is_index = y.dtype.kind in "iu" and y.min() >= 0 and y.max() < n_out
                try:
                    classes = np.arange(n_out) if is_index else np.unique(y)
                except TypeError as e:
                    raise ValueError(f"class labels must be sortable (all numbers or all strings): {e}") from None
                if np.any(classes != classes):
                    raise ValueError("y contains NaN class labels")
                if len(classes) != n_out:
                    raise ValueError(f"y has {len(classes)} distinct labels but the output layer has {n_out} "
                                     f"units; labels: {classes[:10].tolist()}")
                return self._label_indices(y, classes), {"classes_": classes}
            return self._label_indices(y, self.classes_ if classes is None else classes), {}
        if self.loss == "binary_cross_entropy":
            target = y.reshape(n, 1) if y.ndim == 1 else y
            if target.dtype.kind not in "biuf" or target.ndim != 2 or target.shape[1] != n_out:
                raise ValueError(f"binary_cross_entropy needs a (n, {n_out}) 0/1 indicator array, "
                                 f"got y of shape {y.shape} and dtype {y.dtype}")
            target = np.ascontiguousarray(target, dtype=self.dtype)
            if not np.all((target >= 0) & (target <= 1)):
                raise ValueError("binary_cross_entropy targets must lie in [0, 1]")
            return target, ({"classes_": np.arange(n_out), "_y_1d": y.ndim == 1} if fit else {})
        if y.dtype.kind not in "biuf":
            raise TypeError(f"regression targets must be numeric, got dtype {y.dtype}")
        target = y.reshape(n, 1) if y.ndim == 1 else y
        if target.ndim != 2 or target.shape[1] != n_out:
            raise ValueError(f"y must be ({n},) or ({n}, {n_out}) for {n_out} outputs, got shape {y.shape}")
        target = np.ascontiguousarray(target, dtype=self.dtype)
        if not np.all(np.isfinite(target)):
            raise ValueError("y contains NaN or inf")
        return target, ({"_y_1d": y.ndim == 1} if fit else {})

    @staticmethod
    def _label_indices(y, classes):
        try:
            idx = np.searchsorted(classes, y)
        except TypeError:
            raise ValueError(f"labels of type {y.dtype} do not compare with the fitted classes "
                             f"{classes[:10].tolist()}") from None
        idx = np.clip(idx, 0, len(classes) - 1)
        unknown = classes[idx] != y
        if np.any(unknown):
            raise ValueError(f"y contains labels never seen in fit: {np.unique(y[unknown])[:10].tolist()}; "
                             f"known classes: {classes[:10].tolist()}")
        return idx.astype(np.int64)

    # ---------------------------------------------------------------- the per-batch path (one kernel per call)
    def _workspace(self, n):
        ws = self._workspaces.get(n)
        if ws is None:
            if len(self._workspaces) >= 4:  # keep the batch size, the last partial batch, and a few more
                self._workspaces.pop(next(iter(self._workspaces)))
            ws = self._workspaces[n] = _Workspace(self.layer_sizes, n, self.dtype)
        return ws

    def _activation_pair(self):
        k = self.backend.raw
        forward = getattr(k, f"{self.activation}_forward")
        backward = getattr(k, f"{self.activation}_backward")
        if self.activation == "leaky_relu":
            s = self.negative_slope
            return (lambda out, x: forward(out, x, s)), (lambda dx, dout, x, out: backward(dx, dout, x, out, s))
        return forward, backward

    def _loss_pair(self):
        k = self.backend.raw
        forward, backward = getattr(k, f"{self.loss}_forward"), getattr(k, f"{self.loss}_backward")
        if self.loss == "huber":
            d = self.huber_delta
            return (lambda out, z, t, w=None: forward(out, z, t, d, w)), \
                (lambda dz, out, t, w=None: backward(dz, out, t, d, w))
        return forward, backward

    def _forward(self, X, ws, train=False):
        """Fill ws.pre / ws.post (and the dropout masks when training) for the rows of X; returns the input
        of each layer."""
        act_forward, _ = self._activation_pair()
        k = self.backend.raw
        a, inputs = X, []
        last = len(self._W) - 1
        for l, (W, b) in enumerate(zip(self._W, self._b)):
            inputs.append(a)
            k.dense_forward(ws.pre[l], a, W, b)
            if l < last:
                act_forward(ws.post[l], ws.pre[l])
                a = ws.post[l]
                if train and self.dropout[l] > 0:
                    k.dropout_forward(ws.dropped[l], ws.mask[l], a, self.dropout[l], self._dropout_seed,
                                      self._dropout_stream)
                    self._dropout_stream += 1
                    a = ws.dropped[l]
        return inputs

    def _output(self, ws):
        """The output activation of the last layer (softmax / sigmoid / identity) into ws.post[-1]."""
        z, out = ws.pre[-1], ws.post[-1]
        if self.loss == "cross_entropy":
            self.backend.raw.softmax_forward(out, z)
        elif self.loss == "binary_cross_entropy":
            self.backend.raw.sigmoid_forward(out, z)
        else:
            out[...] = z
        return out

    def _loss_and_backward(self, X, target, ws, weights=None):
        """Forward (training mode), loss, and backward into self.grads (zeroed first). Returns the loss."""
        inputs = self._forward(X, ws, train=True)
        loss_forward, loss_backward = self._loss_pair()
        _, act_backward = self._activation_pair()
        dense_backward = self.backend.raw.dense_backward
        loss = loss_forward(ws.post[-1], ws.pre[-1], target, weights)
        self.grads.fill(0)
        ws.grad_flat.fill(0)
        loss_backward(ws.dpre[-1], ws.post[-1], target, weights)
        for l in range(len(self._W) - 1, -1, -1):
            if l < len(self._W) - 1:
                act_backward(ws.dpre[l], ws.dpost[l], ws.pre[l], ws.post[l])
            dx = ws.dpost[l - 1] if l > 0 else None
            dense_backward(dx, self._dW[l], self._db[l], ws.dpre[l], inputs[l], self._W[l])
            if l > 0 and self.dropout[l - 1] > 0:
                dx *= ws.mask[l - 1]
        return float(loss)

    def _prepare(self, X, y, sample_weight=None):
        """X, the targets and the weights checked, and the labels y teaches an unfitted classifier (to be set
        once the call succeeds)."""
        X = self._check_X(X)
        target, labels = self._encode_y(y, X.shape[0], fit=self.classes_ is None and self.is_classifier)
        weights = None
        if sample_weight is not None:
            weights = _training.check_sample_weight(sample_weight, X.shape[0]).astype(self.dtype)
        return X, target, weights, labels

    def loss_and_gradients(self, X, y, sample_weight=None):
        """The mean loss on (X, y) and its gradients: (loss, [dW per layer], [db per layer]), copies.
        Dropout, if any, is applied as in training."""
        with self._guard.writing("compute gradients"):
            X, target, weights, labels = self._prepare(X, y, sample_weight)
            loss = self._loss_and_backward(X, target, self._workspace(X.shape[0]), weights)
            vars(self).update(labels)
            return loss, [g.copy() for g in self._dW], [g.copy() for g in self._db]

    def train_step(self, X, y, optimizer, sample_weight=None):
        """One optimizer step on the batch (X, y), kernel by kernel; returns the batch's loss before the step.
        A non-finite loss or gradient, or a step that overflows, raises FloatingPointError and changes nothing."""
        if not isinstance(optimizer, _optim.Optimizer):
            raise TypeError(f"optimizer must be a fastnn.optim.Optimizer, got {type(optimizer).__name__}")
        # every overflow is caught below: NumPy's own warnings (backend="numpy") would only precede the error
        with self._guard.writing("train"), np.errstate(all="ignore"):
            X, target, weights, labels = self._prepare(X, y, sample_weight)
            loss = self._loss_and_backward(X, target, self._workspace(X.shape[0]), weights)
            if not np.isfinite(loss):
                raise FloatingPointError(f"the loss is {loss}; the step was not taken and the weights are unchanged")
            if not np.all(np.isfinite(self.grads)):
                raise FloatingPointError("the gradient is not finite; the step was not taken")
            touched = (self.params, *(s for s in optimizer.state_buffers(self.params) if s is not None))
            before, count = [a.copy() for a in touched], optimizer.step_count
            optimizer.step(self.params, self.grads, self.backend.raw)
            if not all(np.all(np.isfinite(a)) for a in touched):
                for a, saved in zip(touched, before):
                    a[...] = saved
                optimizer.step_count = count
                raise FloatingPointError("the step overflowed the weights or the optimizer's state; it was undone "
                                         "and the weights are unchanged (try a smaller lr)")
            vars(self).update(labels)
            return loss

    # ---------------------------------------------------------------- fit: one compiled call per epoch
    def fit(self, X, y, epochs=100, batch_size=32, optimizer=None, shuffle=True, validation_split=0.0,
            validation_data=None, early_stopping=False, patience=10, min_delta=0.0, monitor="val_loss",
            restore_best_weights=True, class_weight=None, sample_weight=None, callbacks=None, warm_start=False,
            verbose=0, clip_grad_norm=None, on_divergence="raise"):
        """Train on (X, y) for `epochs` passes of shuffled mini-batches; returns a History (also `history_`).

        Classification labels may be class indices 0..n_outputs-1 or any sortable labels (strings too);
        `classes_` maps output units to labels. Regression targets are (n,) or (n, n_outputs).
        optimizer: default Adam(lr=1e-3). Without warm_start a fitted model is re-initialised from its seed and
            the optimizer starts afresh; with warm_start=True the weights and the optimizer state carry on.
        validation_split: a fraction held out before shuffling (stratified for classification), or
            validation_data=(X_val, y_val); their loss and metric are logged as val_loss, val_accuracy/val_r2.
        early_stopping: stop when `monitor` has not improved by min_delta for `patience` epochs, and restore
            the best weights (restore_best_weights).
        class_weight: "balanced" or {label: weight}; sample_weight: one weight per sample. The loss is the
            weighted mean, so the gradient scales with the weights.
        callbacks: fastnn.callbacks / fastnn.schedules objects. verbose=1 shows a progress bar.
        clip_grad_norm: clip the global gradient norm to this value each step (torch's clip_grad_norm_).
        on_divergence: a non-finite loss or gradient, or a step that overflows the weights or the optimizer's
            state (it is undone), stops training; "raise" (FloatingPointError naming the epoch and batch) or
            "warn" (RuntimeWarning). The model and the optimizer keep the weights and state of the last finite step.
        Every feature runs inside the compiled epoch loop; fit returns to Python between epochs (and every
        ~0.1 s inside one when a callback asks for batch updates, as the progress bar does)."""
        with self._guard.writing("fit"), self._blas_threads():
            return self._fit(X, y, epochs, batch_size, optimizer, shuffle, validation_split, validation_data,
                             early_stopping, patience, min_delta, monitor, restore_best_weights, class_weight,
                             sample_weight, callbacks, warm_start, verbose, clip_grad_norm, on_divergence)

    def partial_fit(self, X, y, classes=None, sample_weight=None, optimizer=None, batch_size=32, shuffle=True):
        """One epoch on (X, y), keeping the weights and the optimizer state (scikit-learn's partial_fit).
        classes: every label, needed on the first call of a classifier when y may not hold them all."""
        options = dict(_FIT_DEFAULTS, epochs=1, batch_size=batch_size, optimizer=optimizer, shuffle=shuffle,
                       sample_weight=sample_weight, warm_start=True)
        with self._guard.writing("fit"), self._blas_threads():
            return self._fit(X, y, **options, classes=classes)

    def _fit(self, X, y, epochs, batch_size, optimizer, shuffle, validation_split, validation_data,
             early_stopping, patience, min_delta, monitor, restore_best_weights, class_weight, sample_weight,
             callbacks, warm_start, verbose, clip_grad_norm, on_divergence, classes=None):
        """fit, and partial_fit with its `classes`. The model changes only once every check has passed."""
        epochs = _as_int("epochs", epochs, 0)
        batch_size = _as_int("batch_size", batch_size, 1)
        if on_divergence not in ("raise", "warn"):
            raise ValueError(f"on_divergence must be 'raise' or 'warn', got {on_divergence!r}")
        clip = 0.0 if clip_grad_norm is None else _as_real("clip_grad_norm", clip_grad_norm, low=0, low_open=True)
        if optimizer is None:
            optimizer = self.optimizer_ if warm_start and self.optimizer_ is not None else _optim.Adam()
        if not isinstance(optimizer, _optim.Optimizer):
            raise TypeError(f"optimizer must be a fastnn.optim.Optimizer, got {type(optimizer).__name__}")
        X = self._check_X(X)
        if classes is not None and self.classes_ is None and self.loss == "cross_entropy":
            classes = np.unique(np.asarray(classes))    # partial_fit's first call: every label y may hold
            if len(classes) != self.layer_sizes[-1]:
                raise ValueError(f"classes has {len(classes)} labels but the output layer has "
                                 f"{self.layer_sizes[-1]} units")
            target, labels = self._encode_y(y, X.shape[0], fit=False, classes=classes)[0], {"classes_": classes}
        else:
            target, labels = self._encode_y(y, X.shape[0], fit=not (warm_start and self.classes_ is not None))
        classes = labels.get("classes_", self.classes_)     # classes_ itself is set once every check has passed
        weights = None
        if sample_weight is not None:
            weights = _training.check_sample_weight(sample_weight, X.shape[0])
        if class_weight is not None:
            if self.loss != "cross_entropy":
                raise ValueError("class_weight needs loss='cross_entropy' (one class per sample)")
            per_class = _training.sample_weights_from_class_weight(class_weight, target, self.layer_sizes[-1],
                                                                   classes)
            weights = per_class if weights is None else weights * per_class
        metric = "accuracy" if self.is_classifier else "r2"
        if early_stopping and monitor.startswith("val_") and validation_data is None and not validation_split:
            raise ValueError(f"early stopping monitors {monitor!r} but there is no validation data: pass "
                             f"validation_split or validation_data, or monitor='loss'")
        if early_stopping and monitor not in ("loss", metric, "val_loss", "val_" + metric):
            raise ValueError(f"monitor must be one of 'loss', {metric!r}, 'val_loss', 'val_{metric}', got {monitor!r}")
        # validation: held out before shuffling, stratified for classification
        X_val = y_val = None
        if validation_data is not None:
            if validation_split:
                raise ValueError("pass validation_split or validation_data, not both")
            try:
                X_val, y_val = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (X_val, y_val)") from None
            X_val = self._check_X(X_val)
            self._encode_y(y_val, X_val.shape[0], fit=False, classes=classes)
        elif validation_split:
            if self.loss == "cross_entropy":
                train_idx, val_idx = _training.stratified_split(target, validation_split, self._split_rng)
            else:
                train_idx, val_idx = _training.random_split(X.shape[0], validation_split, self._split_rng)
            y_arr = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
            X_val, y_val = X[val_idx], y_arr[val_idx]
            X, target = X[train_idx], target[train_idx]
            weights = None if weights is None else weights[train_idx]
        n = X.shape[0]
        history = History()
        callback_list = [history]
        if early_stopping:
            callback_list.append(EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta,
                                               restore_best_weights=restore_best_weights))
        if verbose:
            callback_list.append(ProgressBar())
        callback_list.extend(callbacks or [])
        cbs = CallbackList(callback_list, self)
        if not warm_start:
            optimizer.reset()
        state = optimizer.state_buffers(self.params)    # refuses an optimizer that holds another model's state
        n_out = self.layer_sizes[-1]
        buffers = self._epoch_buffers
        if buffers is None or buffers.key != _EpochBuffers.key_of(self, min(batch_size, n), n_out, state):
            buffers = self._epoch_buffers = None    # the old ones go before the new ones are allocated
            buffers = self._epoch_buffers = _EpochBuffers(self, min(batch_size, n), n_out, state)
        # every check has passed: from here on the call changes the model
        vars(self).update(labels)
        if not warm_start and self.n_iter_ > 0:   # a refit starts from the seed's initial weights, as scikit-learn's
            self._initialize()
            self._dropout_stream = 0
        self.optimizer_ = optimizer
        self.stop_training = False
        classes_arr = target if self.loss == "cross_entropy" else None
        targets_arr = None if self.loss == "cross_entropy" else target
        weights_arr = None if weights is None else weights.astype(self.dtype)
        B = buffers.xb.shape[0]
        n_batches = -(-n // B)
        cbs.on_train_begin({"epochs": epochs, "samples": n})
        try:
            for epoch in range(epochs):
                cbs.on_epoch_begin(epoch, {})
                order = self._shuffle_rng.permutation(n) if shuffle else np.arange(n)
                buffers.metric[:] = 0
                loss_sum = weight_sum = 0.0
                done, chunk = 0, (1 if cbs.wants_batch_updates else n_batches)
                while done < n_batches:
                    last = min(n_batches, done + chunk)
                    start = time.perf_counter()
                    status, ls, ws, step, stream, bad = self.backend.train.train_batches(
                        self.params, self.grads, *state, X, classes_arr, targets_arr, weights_arr, order,
                        buffers.xb, buffers.cb, buffers.tb, buffers.wb, buffers.pre, buffers.post, buffers.dpre,
                        buffers.dpost, buffers.mask, buffers.dropped, buffers.saved, buffers.partial, buffers.metric,
                        buffers.shard_grads, buffers.shard_metric,
                        self._sizes, self._offsets, self._starts, ACTIVATIONS.index(self.activation),
                        self.negative_slope, list(LOSSES).index(self.loss), self.huber_delta,
                        np.array(self.dropout, np.float64), optimizer.kernel_hyper(), done, last, self._dropout_seed,
                        self._dropout_stream, optimizer.step_count, clip, self.threads)
                    optimizer.step_count, self._dropout_stream = int(step), int(stream)
                    loss_sum, weight_sum = loss_sum + ls, weight_sum + ws
                    if status != 0:
                        message = (f"{DIVERGED[status]} at epoch {epoch + 1}, batch {bad + 1}; training stopped "
                                   f"and the model keeps the weights of the last finite step (try a smaller lr or "
                                   f"clip_grad_norm)")
                        if on_divergence == "raise":
                            raise FloatingPointError(message)
                        warnings.warn(message, RuntimeWarning, stacklevel=3)
                        self.stop_training = True
                        break
                    if cbs.wants_batch_updates:
                        elapsed = time.perf_counter() - start
                        chunk = max(1, int(chunk * BATCH_UPDATE_SECONDS / max(elapsed, 1e-6)))
                        done_samples = min(last * B, n)
                        cbs.on_batches_end(epoch, last, n_batches,
                                           {"loss": loss_sum / weight_sum if weight_sum else 0.0, "samples": done_samples})
                    done = last
                if self.stop_training and done < n_batches:
                    break
                logs = {"loss": loss_sum / weight_sum if weight_sum else 0.0,
                        metric: self._running_metric(buffers.metric, weight_sum)}
                if X_val is not None:
                    val = self._evaluate(X_val, y_val)
                    logs["val_loss"], logs["val_" + metric] = val["loss"], val[metric]
                logs["lr"] = optimizer.lr
                cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        finally:  # also after a divergence: schedules give the lr back, early stopping restores the best weights
            self.n_iter_ += len(history.epoch)
            cbs.on_train_end({})
        self.history_ = history
        self.loss_curve_ = list(history.history.get("loss", []))
        return history

    def _running_metric(self, sums, weight_sum):
        """The epoch's training metric from the compiled loop's running sums (accuracy, or mean R^2)."""
        if weight_sum == 0:
            return float("nan")
        if self.is_classifier:
            return float(sums[0] / weight_sum)
        sse, sy, syy = sums[0::3], sums[1::3], sums[2::3]
        sst = syy - sy * sy / weight_sum
        r2 = np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), 0.0)
        return float(np.mean(r2))

    # ---------------------------------------------------------------- inference
    def _predict_output(self, X, output=None):
        """The output activation (or `output`: "identity" gives the logits) for the rows of X."""
        X = self._check_X(X)
        threads = self.threads
        out = np.empty((X.shape[0], self.layer_sizes[-1]), self.dtype)
        block = min(PREDICT_BLOCK, X.shape[0])
        workspace = threads * block * sum(self.layer_sizes[1:])
        pre, post = np.empty(workspace, self.dtype), np.empty(workspace, self.dtype)
        with self._blas_threads():
            self.backend.train.predict_rows(out, X, self.params, self._sizes, self._offsets, self._starts,
                                            ACTIVATIONS.index(self.activation), self.negative_slope,
                                            OUTPUT_CODES[output or LOSSES[self.loss]], pre, post, block, threads)
        finite = np.isfinite(out)
        if not finite.all():   # finite weights and inputs can still overflow the forward pass: never return it
            raise FloatingPointError(
                f"the network's output is inf or NaN for {np.count_nonzero(~finite.all(axis=1))} of the "
                f"{X.shape[0]} rows of X: the forward pass overflows {self.dtype} (largest |weight| "
                f"{np.abs(self.params).max():.3g}, largest |x| {np.abs(X).max():.3g}); refit with scaled data or a "
                f"smaller lr")
        return out

    def _check_fitted_classifier(self):
        if not self.is_classifier:
            raise AttributeError(f"predict_proba needs a classification loss, not {self.loss!r}")
        if self.classes_ is None:
            raise RuntimeError("this model has not been fitted: classes_ is unknown")

    def predict_proba(self, X):
        """Class probabilities, (n, n_classes): softmax (cross_entropy) or per-label sigmoid."""
        self._check_fitted_classifier()
        with self._guard.reading("predict"):
            proba = self._predict_output(X)
        return proba[:, 0] if self._y_1d else proba

    def predict(self, X):
        """Labels (classification) or values (regression) for the rows of X."""
        if self.loss == "cross_entropy":
            self._check_fitted_classifier()
            with self._guard.reading("predict"):
                return self.classes_[np.argmax(self._predict_output(X), axis=1)]
        if self.loss == "binary_cross_entropy":
            return (self.predict_proba(X) >= 0.5).astype(np.int64)
        with self._guard.reading("predict"):
            out = self._predict_output(X)
        return out[:, 0] if self._y_1d else out

    def score(self, X, y):
        """Accuracy (classification; exact match for multi-label) or R^2 averaged over outputs (regression):
        evaluate's metric, y checked as evaluate checks it."""
        with self._guard.reading("score"):
            return self._evaluate(X, y)["accuracy" if self.is_classifier else "r2"]

    def evaluate(self, X, y, sample_weight=None):
        """{"loss": (weighted) mean loss, "accuracy" or "r2": score} on (X, y)."""
        with self._guard.reading("evaluate"):
            return self._evaluate(X, y, sample_weight)

    def _evaluate(self, X, y, sample_weight=None):
        X = self._check_X(X)
        if self.is_classifier and self.classes_ is None:
            raise RuntimeError("this model has not been fitted: classes_ is unknown")
        target, _ = self._encode_y(y, X.shape[0], fit=False)
        weights = None
        if sample_weight is not None:
            weights = _training.check_sample_weight(sample_weight, X.shape[0]).astype(self.dtype)
        logits = self._predict_output(X, output="identity")
        out = np.empty_like(logits)
        loss_forward, _ = self._loss_pair()
        loss = float(loss_forward(out, logits, target, weights))   # the training loss's kernel, exactly
        metric = "accuracy" if self.is_classifier else "r2"
        if self.loss == "cross_entropy":
            score = float(np.average(np.argmax(out, axis=1) == target, weights=weights))
        elif self.loss == "binary_cross_entropy":
            score = float(np.average(np.all((out >= 0.5) == (target >= 0.5), axis=1), weights=weights))
        else:
            w = np.ones(len(out)) if weights is None else weights.astype(np.float64)
            y = target.astype(np.float64)
            ss_res = (w[:, None] * (y - out) ** 2).sum(axis=0)
            ss_tot = (w[:, None] * (y - np.average(y, axis=0, weights=w)) ** 2).sum(axis=0)
            score = float(np.mean(np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0)))
        return {"loss": loss, metric: score}

    # ---------------------------------------------------------------- persistence
    def save(self, path):
        """Write the model to `path` (.npz: the flat parameter buffer and JSON metadata; no pickle). See fastnn.io."""
        from . import io
        io.save(self, path)

    @classmethod
    def load(cls, path, backend="compiled"):
        """Read a model written by `save`. Never unpickles; a damaged or crafted file raises ValueError (fastnn.io)."""
        from . import io
        return io.load(path, cls, backend)


# fit's defaults, for partial_fit: it runs fit's code under fit's lock, with its own `classes`
_FIT_DEFAULTS = {name: p.default for name, p in inspect.signature(MLP.fit).parameters.items()
                 if p.default is not inspect.Parameter.empty}

"""The multilayer perceptron: a sizes table, flat buffers with per-layer views, fit / predict.

Layout (llm.c style): all weights and biases live in one contiguous buffer `params`, layer by layer
[W0 (I0 x O0), b0 (O0), W1, b1, ...]; `grads` and every optimizer state buffer share that layout, so an
optimizer step is one kernel call over flat arrays. Activation workspaces for a batch size are carved
out of one buffer too, and the gradients of the activations out of another, so zeroing is one call.
"""
import json
import numbers
import time

import numpy as np

from . import optim as _optim
from .backend import get_backend

__all__ = ["MLP", "History", "ACTIVATIONS", "LOSSES"]

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "softplus", "silu")
RELU_LIKE = ("relu", "leaky_relu", "gelu", "silu", "softplus")
# loss -> the output activation fused into it
LOSSES = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid", "mse": "identity",
          "mae": "identity", "huber": "identity"}
CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy")
INITS = ("auto", "he", "glorot")
FORMAT_VERSION = 1
PREDICT_CHUNK = 8192  # rows per forward pass in predict: bounds the workspace, keeps it in cache


class History:
    """What `fit` returns: `history["loss"]` is the mean training loss of each epoch."""

    def __init__(self):
        self.history = {"loss": []}
        self.epoch = []

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, final loss={self.history['loss'][-1] if self.epoch else None})"


class _Workspace:
    """Activations and their gradients for one batch size, each family in one flat buffer."""

    def __init__(self, sizes, n, dtype):
        widths = sizes[1:]
        total = n * sum(widths)
        self.pre = _carve(np.empty(total, dtype), n, widths)       # Z_l = A_{l-1} W_l + b_l
        self.post = _carve(np.empty(total, dtype), n, widths)      # A_l = act(Z_l); the last is the output
        self.grad_flat = np.zeros(2 * total, dtype)                # dZ_l then dA_l, zeroed in one call
        self.dpre = _carve(self.grad_flat[:total], n, widths)
        self.dpost = _carve(self.grad_flat[total:], n, widths)


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


class MLP:
    """A multilayer perceptron trained with compiled kernels.

    layer_sizes: [n_features, hidden..., n_outputs], e.g. [4, 16, 16, 3].
    activation: hidden-layer activation, one of ACTIVATIONS.
    loss: one of LOSSES; it also fixes the output activation (cross_entropy -> softmax,
        binary_cross_entropy -> sigmoid, mse/mae/huber -> identity).
    dtype: "float32" or "float64" for parameters and arithmetic.
    seed: seeds initialisation and shuffling (None: fresh entropy).
    init: "auto" (He for relu-like activations, Glorot otherwise), "he" (normal, std sqrt(2/fan_in))
        or "glorot" (uniform, limit sqrt(6/(fan_in+fan_out))). Biases start at zero.
    backend: "compiled" (Cython/OpenMP kernels) or "numpy" (the pure-NumPy reference).
    negative_slope: the slope of leaky_relu for x < 0.  huber_delta: the Huber loss threshold.
    """

    def __init__(self, layer_sizes, activation="relu", loss="cross_entropy", dtype="float32", seed=None,
                 init="auto", backend="compiled", negative_slope=0.01, huber_delta=1.0):
        sizes = list(layer_sizes) if not isinstance(layer_sizes, (str, bytes)) else None
        if not sizes or len(sizes) < 2:
            raise ValueError(f"layer_sizes needs at least an input and an output size, got {layer_sizes!r}")
        self.layer_sizes = [_as_int("every layer size", s, 1) for s in sizes]
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {ACTIVATIONS}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {tuple(LOSSES)}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        for name, value in (("negative_slope", negative_slope), ("huber_delta", huber_delta)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite real number, got {value!r}")
        if huber_delta <= 0:
            raise ValueError(f"huber_delta must be > 0, got {huber_delta}")
        self.activation, self.loss, self.init = activation, loss, init
        self.negative_slope, self.huber_delta = float(negative_slope), float(huber_delta)
        self.seed = seed
        self.backend = get_backend(backend)
        self._kernels = self.backend.raw  # buffers are ours and validated once: skip per-call checks
        self.classes_ = None
        self._y_1d = False
        self._allocate()
        init_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(2)
        self._shuffle_rng = np.random.default_rng(shuffle_seq)
        self._initialize(np.random.default_rng(init_seq))

    # ---------------------------------------------------------------- parameters
    def _allocate(self):
        shapes = list(zip(self.layer_sizes[:-1], self.layer_sizes[1:]))
        self.n_params = sum(i * o + o for i, o in shapes)
        self.params = np.zeros(self.n_params, self.dtype)
        self.grads = np.zeros(self.n_params, self.dtype)
        self._W, self._b, self._dW, self._db = [], [], [], []
        offset = 0
        for i, o in shapes:
            for flat, W_list, b_list in ((self.params, self._W, self._b), (self.grads, self._dW, self._db)):
                W_list.append(flat[offset: offset + i * o].reshape(i, o))
                b_list.append(flat[offset + i * o: offset + i * o + o])
            offset += i * o + o
        self._workspaces = {}

    def _initialize(self, rng):
        he = self.init == "he" or (self.init == "auto" and self.activation in RELU_LIKE)
        for W, b in zip(self._W, self._b):
            fan_in, fan_out = W.shape
            if he:
                W[...] = rng.standard_normal(W.shape) * np.sqrt(2.0 / fan_in)
            else:
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                W[...] = rng.uniform(-limit, limit, W.shape)
            b[...] = 0

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
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{what}[{k}] contains NaN or inf")
        for view, value in zip(views, arrays):
            view[...] = value

    @property
    def is_classifier(self):
        return self.loss in CLASSIFICATION_LOSSES

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
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or inf")
        return X

    def _encode_y(self, y, n, fit):
        """Targets in kernel form: int64 class indices (cross_entropy) or a float (n, O) array."""
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
                classes = np.arange(n_out) if is_index else np.unique(y)
                if len(classes) != n_out:
                    raise ValueError(f"y has {len(classes)} distinct labels but the output layer has {n_out} "
                                     f"units; labels: {classes[:10].tolist()}")
                self.classes_ = classes
            return self._label_indices(y)
        if self.loss == "binary_cross_entropy":
            target = y.reshape(n, 1) if y.ndim == 1 else y
            if target.dtype.kind not in "biuf" or target.ndim != 2 or target.shape[1] != n_out:
                raise ValueError(f"binary_cross_entropy needs a (n, {n_out}) 0/1 indicator array, "
                                 f"got y of shape {y.shape} and dtype {y.dtype}")
            target = np.ascontiguousarray(target, dtype=self.dtype)
            if not np.all((target >= 0) & (target <= 1)):
                raise ValueError("binary_cross_entropy targets must lie in [0, 1]")
            if fit:
                self.classes_ = np.arange(n_out)
                self._y_1d = y.ndim == 1
            return target
        if y.dtype.kind not in "biuf":
            raise TypeError(f"regression targets must be numeric, got dtype {y.dtype}")
        target = y.reshape(n, 1) if y.ndim == 1 else y
        if target.ndim != 2 or target.shape[1] != n_out:
            raise ValueError(f"y must be ({n},) or ({n}, {n_out}) for {n_out} outputs, got shape {y.shape}")
        target = np.ascontiguousarray(target, dtype=self.dtype)
        if not np.all(np.isfinite(target)):
            raise ValueError("y contains NaN or inf")
        if fit:
            self._y_1d = y.ndim == 1
        return target

    def _label_indices(self, y):
        classes = self.classes_
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

    # ---------------------------------------------------------------- forward / backward
    def _workspace(self, n):
        ws = self._workspaces.get(n)
        if ws is None:
            if len(self._workspaces) >= 4:  # keep the batch size, the last partial batch, predict chunks
                self._workspaces.pop(next(iter(self._workspaces)))
            ws = self._workspaces[n] = _Workspace(self.layer_sizes, n, self.dtype)
        return ws

    def _activation_pair(self):
        k = self._kernels
        forward = getattr(k, f"{self.activation}_forward")
        backward = getattr(k, f"{self.activation}_backward")
        if self.activation == "leaky_relu":
            s = self.negative_slope
            return (lambda out, x: forward(out, x, s)), (lambda dx, dout, x, out: backward(dx, dout, x, out, s))
        return forward, backward

    def _loss_pair(self):
        k = self._kernels
        forward, backward = getattr(k, f"{self.loss}_forward"), getattr(k, f"{self.loss}_backward")
        if self.loss == "huber":
            d = self.huber_delta
            return (lambda out, z, t: forward(out, z, t, d)), (lambda dz, out, t: backward(dz, out, t, d))
        return forward, backward

    def _forward(self, X, ws):
        """Fill ws.pre / ws.post for the rows of X; the last post is the output activation's input."""
        act_forward, _ = self._activation_pair()
        dense_forward = self._kernels.dense_forward
        a = X
        last = len(self._W) - 1
        for l, (W, b) in enumerate(zip(self._W, self._b)):
            dense_forward(ws.pre[l], a, W, b)
            if l < last:
                act_forward(ws.post[l], ws.pre[l])
                a = ws.post[l]

    def _output(self, ws):
        """The output activation of the last layer (softmax / sigmoid / identity) into ws.post[-1]."""
        z, out = ws.pre[-1], ws.post[-1]
        if self.loss == "cross_entropy":
            self._kernels.softmax_forward(out, z)
        elif self.loss == "binary_cross_entropy":
            self._kernels.sigmoid_forward(out, z)
        else:
            out[...] = z
        return out

    def _loss_and_backward(self, X, target, ws):
        """Forward, loss, and backward into self.grads (zeroed first). Returns the mean loss."""
        self._forward(X, ws)
        loss_forward, loss_backward = self._loss_pair()
        _, act_backward = self._activation_pair()
        dense_backward = self._kernels.dense_backward
        loss = loss_forward(ws.post[-1], ws.pre[-1], target)
        self.grads.fill(0)
        ws.grad_flat.fill(0)
        loss_backward(ws.dpre[-1], ws.post[-1], target)
        for l in range(len(self._W) - 1, -1, -1):
            x = ws.post[l - 1] if l > 0 else X
            dx = ws.dpost[l - 1] if l > 0 else None
            dense_backward(dx, self._dW[l], self._db[l], ws.dpre[l], x, self._W[l])
            if l > 0:
                act_backward(ws.dpre[l - 1], ws.dpost[l - 1], ws.pre[l - 1], ws.post[l - 1])
        return float(loss)

    # ---------------------------------------------------------------- user-facing training
    def loss_and_gradients(self, X, y):
        """The mean loss on (X, y) and its gradients: (loss, [dW per layer], [db per layer]), copies."""
        X = self._check_X(X)
        target = self._encode_y(y, X.shape[0], fit=self.classes_ is None and self.is_classifier)
        loss = self._loss_and_backward(X, target, self._workspace(X.shape[0]))
        return loss, [g.copy() for g in self._dW], [g.copy() for g in self._db]

    def train_step(self, X, y, optimizer):
        """One optimizer step on the batch (X, y); returns the batch's loss before the step."""
        if not isinstance(optimizer, _optim.Optimizer):
            raise TypeError(f"optimizer must be a fastnn.optim.Optimizer, got {type(optimizer).__name__}")
        X = self._check_X(X)
        target = self._encode_y(y, X.shape[0], fit=self.classes_ is None and self.is_classifier)
        loss = self._loss_and_backward(X, target, self._workspace(X.shape[0]))
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss}; the step was not taken and the weights are unchanged")
        optimizer.step(self.params, self.grads, self._kernels)
        return loss

    def fit(self, X, y, epochs=100, batch_size=32, optimizer=None, shuffle=True, verbose=0):
        """Train on (X, y) for `epochs` passes of shuffled mini-batches; returns a History.

        Classification labels may be class indices 0..n_outputs-1 or any sortable labels (strings too);
        `classes_` maps output units to labels. Regression targets are (n,) or (n, n_outputs).
        The optimizer (default Adam(lr=1e-3)) starts afresh: its state is reset."""
        epochs = _as_int("epochs", epochs, 0)
        batch_size = _as_int("batch_size", batch_size, 1)
        optimizer = _optim.Adam() if optimizer is None else optimizer
        if not isinstance(optimizer, _optim.Optimizer):
            raise TypeError(f"optimizer must be a fastnn.optim.Optimizer, got {type(optimizer).__name__}")
        X = self._check_X(X)
        n = X.shape[0]
        target = self._encode_y(y, n, fit=True)
        optimizer.reset()
        self.optimizer_ = optimizer
        history = History()
        for epoch in range(epochs):
            start = time.perf_counter()
            if shuffle:
                order = self._shuffle_rng.permutation(n)
                Xe, te = X[order], target[order]   # one gather per epoch; batches are then contiguous views
            else:
                Xe, te = X, target
            total = 0.0
            for batch, lo in enumerate(range(0, n, batch_size)):
                hi = min(lo + batch_size, n)
                loss = self._loss_and_backward(Xe[lo:hi], te[lo:hi], self._workspace(hi - lo))
                if not np.isfinite(loss):
                    raise FloatingPointError(
                        f"the loss became {loss} at epoch {epoch + 1}, batch {batch + 1}; training stopped "
                        f"and the model keeps the weights of the previous step (try a smaller lr)")
                optimizer.step(self.params, self.grads, self._kernels)
                total += loss * (hi - lo)
            history.history["loss"].append(total / n)
            history.epoch.append(epoch)
            if verbose:
                print(f"epoch {epoch + 1}/{epochs} - loss {total / n:.6f} - {time.perf_counter() - start:.3f}s")
        self.n_iter_ = epochs
        return history

    # ---------------------------------------------------------------- inference
    def _predict_output(self, X):
        X = self._check_X(X)
        result = np.empty((X.shape[0], self.layer_sizes[-1]), self.dtype)
        for lo in range(0, X.shape[0], PREDICT_CHUNK):
            chunk = X[lo: lo + PREDICT_CHUNK]
            ws = self._workspace(chunk.shape[0])
            self._forward(chunk, ws)
            result[lo: lo + chunk.shape[0]] = self._output(ws)
        return result

    def _check_fitted_classifier(self):
        if not self.is_classifier:
            raise AttributeError(f"predict_proba needs a classification loss, not {self.loss!r}")
        if self.classes_ is None:
            raise RuntimeError("this model has not been fitted: classes_ is unknown")

    def predict_proba(self, X):
        """Class probabilities, (n, n_classes): softmax (cross_entropy) or per-label sigmoid."""
        self._check_fitted_classifier()
        proba = self._predict_output(X)
        return proba[:, 0] if self._y_1d else proba

    def predict(self, X):
        """Labels (classification) or values (regression) for the rows of X."""
        if self.loss == "cross_entropy":
            self._check_fitted_classifier()
            return self.classes_[np.argmax(self._predict_output(X), axis=1)]
        if self.loss == "binary_cross_entropy":
            return (self.predict_proba(X) >= 0.5).astype(np.int64)
        out = self._predict_output(X)
        return out[:, 0] if self._y_1d else out

    def score(self, X, y):
        """Accuracy (classification; exact match for multi-label) or R^2 averaged over outputs (regression)."""
        pred = self.predict(X)
        y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
        if y.ndim == 0 or pred.shape[0] != y.shape[0]:
            raise ValueError(f"y has {y.shape[0] if y.ndim else 'no'} samples but X has {pred.shape[0]}")
        if self.loss == "cross_entropy":
            self._label_indices(y)  # refuses labels never seen in fit
        if self.is_classifier:
            match = pred == y if pred.ndim == 1 else np.all(pred == y, axis=1)
            return float(np.mean(match))
        y = y.reshape(pred.shape).astype(np.float64)
        ss_res = ((y - pred) ** 2).sum(axis=0)
        ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0)
        return float(np.mean(r2))

    def evaluate(self, X, y):
        """{"loss": mean loss, "accuracy" or "r2": score} on (X, y)."""
        X = self._check_X(X)
        if self.is_classifier and self.classes_ is None:
            raise RuntimeError("this model has not been fitted: classes_ is unknown")
        target = self._encode_y(y, X.shape[0], fit=False)
        loss_forward, _ = self._loss_pair()
        total = 0.0
        for lo in range(0, X.shape[0], PREDICT_CHUNK):
            chunk = X[lo: lo + PREDICT_CHUNK]
            ws = self._workspace(chunk.shape[0])
            self._forward(chunk, ws)
            total += loss_forward(ws.post[-1], ws.pre[-1], target[lo: lo + PREDICT_CHUNK]) * chunk.shape[0]
        metric = "accuracy" if self.is_classifier else "r2"
        return {"loss": total / X.shape[0], metric: self.score(X, y)}

    # ---------------------------------------------------------------- persistence
    def _metadata(self):
        classes = None if self.classes_ is None else [c.item() if hasattr(c, "item") else c for c in self.classes_]
        return {"format": "fastnn.MLP", "format_version": FORMAT_VERSION, "layer_sizes": self.layer_sizes,
                "activation": self.activation, "loss": self.loss, "dtype": self.dtype.name, "init": self.init,
                "negative_slope": self.negative_slope, "huber_delta": self.huber_delta,
                "classes": classes, "classes_dtype": None if self.classes_ is None else self.classes_.dtype.str,
                "y_1d": self._y_1d}

    def save(self, path):
        """Write the model to `path` (.npz: the flat parameter buffer and JSON metadata; no pickle)."""
        meta = json.dumps(self._metadata())
        with open(path, "wb") as f:
            np.savez(f, params=self.params, metadata=np.array(meta))

    @classmethod
    def load(cls, path, backend="compiled"):
        """Read a model written by `save`. Never unpickles: the file holds arrays and JSON only."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if set(data.files) != {"params", "metadata"}:
                    raise ValueError(f"expected arrays 'params' and 'metadata', found {sorted(data.files)}")
                meta = json.loads(str(data["metadata"]))
                params = data["params"]
        except (OSError, EOFError, KeyError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not a readable fastnn model file: {e}") from None
        except ValueError as e:
            raise ValueError(f"{path} is not a readable fastnn model file: {e}") from None
        if not isinstance(meta, dict) or meta.get("format") != "fastnn.MLP":
            raise ValueError(f"{path} is not a fastnn model file")
        version = meta.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"{path} has model format version {version!r}; this fastnn reads up to "
                             f"{FORMAT_VERSION}: upgrade fastnn")
        try:
            model = cls(meta["layer_sizes"], activation=meta["activation"], loss=meta["loss"], dtype=meta["dtype"],
                        init=meta["init"], backend=backend, negative_slope=meta["negative_slope"],
                        huber_delta=meta["huber_delta"], seed=0)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path} has invalid model metadata: {e}") from None
        if params.shape != model.params.shape or params.dtype != model.dtype:
            raise ValueError(f"{path}: parameter array is {params.shape} {params.dtype}, the metadata's layer "
                             f"sizes need ({model.n_params},) {model.dtype}")
        if not np.all(np.isfinite(params)):
            raise ValueError(f"{path}: parameters contain NaN or inf")
        model.params[...] = params
        if meta.get("classes") is not None:
            classes_dtype = np.dtype(str(meta.get("classes_dtype")))
            if classes_dtype.kind not in "biufU":
                raise ValueError(f"{path}: class labels of dtype {classes_dtype} are not allowed")
            model.classes_ = np.array(meta["classes"], dtype=classes_dtype)
            if model.classes_.shape != (model.layer_sizes[-1],) and model.loss == "cross_entropy":
                raise ValueError(f"{path}: {len(model.classes_)} classes for {model.layer_sizes[-1]} outputs")
        model._y_1d = bool(meta.get("y_1d", False))
        return model

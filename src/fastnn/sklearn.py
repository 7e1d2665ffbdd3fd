"""scikit-learn estimators over fastnn.MLP: `MLPClassifier` and `MLPRegressor`.

Hyper-parameters and fitted attributes follow `sklearn.neural_network` where the concept is the same
(`hidden_layer_sizes`, `solver`, `learning_rate_init`, `batch_size="auto"`, `max_iter`, `coefs_`,
`loss_curve_`, ...); the training is fastnn's `MLP.fit` with a `fastnn.optim` optimizer. scikit-learn
(>= 1.6) is needed by this module only: `pip install fastnn[sklearn]`.
"""
import copy
import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_regressor
    from sklearn.utils import check_random_state, check_scalar
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d, validate_data
except ImportError as e:  # validate_data and __sklearn_tags__ arrived in scikit-learn 1.6
    raise ImportError(f"fastnn.sklearn needs scikit-learn >= 1.6 (pip install 'fastnn[sklearn]'): {e}") from e

from . import optim
from .mlp import ACTIVATIONS, MLP

__all__ = ["MLPClassifier", "MLPRegressor"]

SOLVERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
ACTIVATION_ALIASES = {"logistic": "sigmoid"}  # scikit-learn's name for it


def _targets(y, dtype):
    # C-ordered in the model's dtype: copied only if not already so (read-only arrays are fine as they are)
    return np.require(y, dtype=dtype, requirements=["C"])


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: hyper-parameters, validation, the fit loop."""

    _metric = None  # the History key of the score: "accuracy" or "r2"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", learning_rate_init=1e-3,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, momentum=0.9, nesterovs_momentum=True, weight_decay=0.0,
                 batch_size="auto", max_iter=200, shuffle=True, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, dropout=0.0, random_state=None, num_threads=None, dtype=None,
                 verbose=0, warm_start=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.dropout = dropout
        self.random_state = random_state
        self.num_threads = num_threads
        self.dtype = dtype
        self.verbose = verbose
        self.warm_start = warm_start

    # ---------------------------------------------------------------- hyper-parameter validation
    def _check_params(self):
        """Validate the hyper-parameters (in fit, as scikit-learn asks); returns the hidden sizes."""
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else sizes
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}")
        sizes = [int(check_scalar(s, "each hidden layer size", numbers.Integral, min_val=1)) for s in sizes]
        if ACTIVATION_ALIASES.get(self.activation, self.activation) not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of "
                             f"{ACTIVATIONS + tuple(ACTIVATION_ALIASES)}")
        if not isinstance(self.solver, optim.Optimizer) and self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS} or a fastnn.optim.Optimizer, got {self.solver!r}")
        check_scalar(self.learning_rate_init, "learning_rate_init", numbers.Real, min_val=0,
                     include_boundaries="neither")
        for name in ("beta_1", "beta_2"):
            check_scalar(getattr(self, name), name, numbers.Real, min_val=0, max_val=1, include_boundaries="left")
        check_scalar(self.epsilon, "epsilon", numbers.Real, min_val=0)
        check_scalar(self.momentum, "momentum", numbers.Real, min_val=0, max_val=1)
        check_scalar(self.weight_decay, "weight_decay", numbers.Real, min_val=0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_scalar(self.batch_size, "batch_size", numbers.Integral, min_val=1)
        check_scalar(self.max_iter, "max_iter", numbers.Integral, min_val=1)
        check_scalar(self.validation_fraction, "validation_fraction", numbers.Real, min_val=0, max_val=1,
                     include_boundaries="neither")
        check_scalar(self.n_iter_no_change, "n_iter_no_change", numbers.Integral, min_val=1)
        check_scalar(self.tol, "tol", numbers.Real, min_val=0)
        if self.dtype is not None and np.dtype(self.dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be None, float32 or float64, got {self.dtype!r}")
        for name in ("shuffle", "early_stopping", "nesterovs_momentum", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        return sizes

    def _make_optimizer(self):
        if isinstance(self.solver, optim.Optimizer):
            solver = copy.deepcopy(self.solver)  # fit must not change the estimator's parameters
            solver.reset()
            return solver
        lr, wd = self.learning_rate_init, self.weight_decay
        if self.solver in ("adam", "adamw"):
            cls = optim.Adam if self.solver == "adam" else optim.AdamW
            return cls(lr=lr, betas=(self.beta_1, self.beta_2), eps=self.epsilon, weight_decay=wd)
        if self.solver == "sgd":
            return optim.SGD(lr=lr, momentum=self.momentum, weight_decay=wd,
                             nesterov=bool(self.nesterovs_momentum and self.momentum > 0))
        if self.solver == "rmsprop":
            return optim.RMSprop(lr=lr, eps=self.epsilon, weight_decay=wd)
        return optim.Adagrad(lr=lr, eps=self.epsilon, weight_decay=wd)

    # ---------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight, incremental, classes=None):
        hidden = self._check_params()
        fresh = not hasattr(self, "model_") or not (incremental or self.warm_start)
        if fresh:  # scikit-learn's float rule: float32 stays float32, anything else becomes float64
            dtype = [np.float64, np.float32] if self.dtype is None else np.dtype(self.dtype)
        else:
            dtype = self.model_.dtype
        X, y = validate_data(self, X, y, reset=fresh, dtype=dtype, order="C", multi_output=True,
                             y_numeric=is_regressor(self))
        target = self._encode_targets(y, fresh, incremental, classes, X.dtype)
        sample_weight = self._sample_weight(sample_weight, X, y, incremental)
        if fresh:
            self._build(hidden, X.shape[1], X.dtype)
        batch_size = min(200, X.shape[0]) if self.batch_size == "auto" else self.batch_size
        optimizer = self._make_optimizer() if fresh else None  # None: the model's own, carried on
        if incremental:  # one epoch, keeping the weights and the optimizer state
            history = self.model_.partial_fit(X, target, classes=classes if fresh else None,
                                              sample_weight=sample_weight, optimizer=optimizer,
                                              batch_size=batch_size, shuffle=self.shuffle).history
        else:
            if self.early_stopping:
                stopping = dict(validation_split=self.validation_fraction, monitor="val_loss",
                                restore_best_weights=True)
            else:  # scikit-learn's convergence test: the training loss stops improving by tol
                stopping = dict(monitor="loss", restore_best_weights=False)
            history = self.model_.fit(X, target, epochs=self.max_iter, batch_size=batch_size, optimizer=optimizer,
                                      shuffle=self.shuffle, sample_weight=sample_weight, warm_start=not fresh,
                                      early_stopping=True, patience=self.n_iter_no_change, min_delta=self.tol,
                                      verbose=self.verbose, **stopping).history
        self.loss_curve_ += history["loss"]
        self.n_iter_ += len(history["loss"])
        if "val_" + self._metric in history:  # as scikit-learn: validation scores, or else the best loss
            self.validation_scores_ = (self.validation_scores_ or []) + history["val_" + self._metric]
            self.best_validation_score_ = max(self.validation_scores_)
        self.best_loss_ = None if self.validation_scores_ else min(self.loss_curve_)
        return self

    def _build(self, hidden, n_features, dtype):
        sizes = [n_features, *hidden, self.n_outputs_]
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self.model_ = MLP(sizes, activation=ACTIVATION_ALIASES.get(self.activation, self.activation),
                          loss=self._loss, dtype=dtype, seed=seed, dropout=self.dropout,
                          num_threads=self.num_threads)
        self.n_layers_ = len(sizes)
        self.loss_curve_, self.n_iter_ = [], 0
        self.validation_scores_ = self.best_validation_score_ = None

    def _sample_weight(self, sample_weight, X, y, incremental):
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        return sample_weight

    def fit(self, X, y, sample_weight=None):
        """Train on (X, y) for up to `max_iter` epochs (see tol and early_stopping); returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    # ---------------------------------------------------------------- inference
    def _validated_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=self.model_.dtype, order="C")

    @property
    def coefs_(self):
        """Weight matrices, (n_in, n_out) per layer: live views into the model's parameter buffer."""
        return self._fitted_model().weights

    @property
    def intercepts_(self):
        """Bias vectors, (n_out,) per layer: live views into the model's parameter buffer."""
        return self._fitted_model().biases

    def _fitted_model(self):
        check_is_fitted(self)
        return self.model_


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer-perceptron classifier: softmax cross-entropy for binary and multiclass targets, one
    sigmoid per label (binary cross-entropy) for multilabel indicator targets.

    Labels may be any sortable values (strings, integers, booleans); `classes_` holds them in the order of
    `predict_proba`'s columns. Parameters as `sklearn.neural_network.MLPClassifier` where shared, and:
    solver: "adam", "adamw", "sgd", "rmsprop", "adagrad", or a `fastnn.optim.Optimizer` (copied at fit; the
        learning-rate parameters below are then unused). momentum and nesterovs_momentum apply to "sgd".
    weight_decay: L2 weight decay, the optimizer's `weight_decay` (torch.optim semantics, all parameters).
    class_weight: None, "balanced" or {label: weight}; multiplies the sample weights.
    tol, n_iter_no_change: as scikit-learn's, training stops when the training loss has not improved by `tol`
        for `n_iter_no_change` epochs (or after `max_iter` epochs). With early_stopping=True, the test is on the
        validation loss of a held-out `validation_fraction` (stratified), and the best weights are restored.
    dropout: rate for every hidden layer (or a list, one per hidden layer). num_threads: the kernels' threads.
    dtype: None (float32 inputs train in float32, anything else in float64), "float32" or "float64".
    """

    _metric = "accuracy"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", learning_rate_init=1e-3,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, momentum=0.9, nesterovs_momentum=True, weight_decay=0.0,
                 batch_size="auto", max_iter=200, shuffle=True, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, dropout=0.0, class_weight=None, random_state=None,
                 num_threads=None, dtype=None, verbose=0, warm_start=False):
        super().__init__(hidden_layer_sizes, activation, solver=solver, learning_rate_init=learning_rate_init,
                         beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, momentum=momentum,
                         nesterovs_momentum=nesterovs_momentum, weight_decay=weight_decay, batch_size=batch_size,
                         max_iter=max_iter, shuffle=shuffle, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change, tol=tol,
                         dropout=dropout, random_state=random_state, num_threads=num_threads, dtype=dtype,
                         verbose=verbose, warm_start=warm_start)
        self.class_weight = class_weight

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    @property
    def _loss(self):
        return "binary_cross_entropy" if self.out_activation_ == "logistic" else "cross_entropy"

    @property
    def classes_(self):
        """The labels of predict_proba's columns (the label indices 0..n-1 for a multilabel indicator)."""
        return self._fitted_model().classes_

    def _encode_targets(self, y, fresh, incremental, classes, dtype):
        """Targets as the MLP takes them: 1-D labels, or the float (n, labels) indicator."""
        if fresh:
            check_classification_targets(y)
            self.out_activation_ = "logistic" if type_of_target(y) == "multilabel-indicator" else "softmax"
        if self.out_activation_ == "logistic":
            if fresh:
                self.n_outputs_ = y.shape[1]
                self._indicator_dtype = y.dtype  # predict answers in the targets' dtype
            elif type_of_target(y) not in ("multilabel-indicator", "binary") or y.ndim != 2 \
                    or y.shape[1] != self.n_outputs_:
                raise ValueError(f"this classifier was fitted on a multilabel indicator of {self.n_outputs_} "
                                 f"labels; got y of shape {y.shape}")
            return _targets(y, dtype)
        y = column_or_1d(y, warn=True)  # the model maps labels to output units itself
        if fresh:
            if classes is None and incremental:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self.n_outputs_ = len(np.unique(y if classes is None else classes))
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} differs from the classes of the previous fit {self.classes_!r}")
        return y

    def _sample_weight(self, sample_weight, X, y, incremental):
        sample_weight = super()._sample_weight(sample_weight, X, y, incremental)
        if self.class_weight is None:
            return sample_weight
        if incremental and isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise ValueError("class_weight='balanced' needs all the data and partial_fit sees one batch: pass "
                             "a dict (sklearn.utils.class_weight.compute_class_weight on all the labels)")
        weights = compute_sample_weight(self.class_weight, y).astype(X.dtype)
        return weights if sample_weight is None else weights * sample_weight

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on (X, y), continuing from the current weights and optimizer state (shuffled when
        `shuffle`). `classes` (every label that will ever appear) is required on the first call
        for single-label targets."""
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes) in the order of classes_ (per label if multilabel)."""
        X = self._validated_X(X)
        return self.model_.predict_proba(X)

    def predict_log_proba(self, X):
        """The logarithm of predict_proba."""
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Labels: classes_ of the most probable class, or the multilabel indicator (probability >= 0.5)."""
        proba = self.predict_proba(X)
        if self.out_activation_ == "logistic":
            return (proba >= 0.5).astype(self._indicator_dtype)
        return self.classes_[np.argmax(proba, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer-perceptron regressor: squared error, one or several outputs (y of shape (n,) or (n, k)).

    Parameters as `MLPClassifier` (without class_weight); the early-stopping score is R^2.
    """

    _metric = "r2"
    _loss = "mse"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _encode_targets(self, y, fresh, incremental, classes, dtype):
        y = y.reshape(len(y), -1)
        if fresh:
            self.n_outputs_ = y.shape[1]
            self.out_activation_ = "identity"
        elif y.shape[1] != self.n_outputs_:
            raise ValueError(f"this regressor was fitted on {self.n_outputs_} output(s); y has {y.shape[1]}")
        return _targets(y, dtype)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch on (X, y), continuing from the current weights and optimizer state (shuffled when
        `shuffle`)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predictions, (n_samples,) for a single output, else (n_samples, n_outputs)."""
        X = self._validated_X(X)
        out = self.model_.predict(X)
        return out[:, 0] if self.n_outputs_ == 1 else out

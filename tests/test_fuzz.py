"""Property tests (hypothesis) of the public API: whatever it is given, fastnn returns a correct result or raises
a clear TypeError / ValueError / FloatingPointError naming the problem; never a crash, a hang, or NaN from valid
input.

The normal suite runs the same 20 examples per test every time. A campaign draws fresh ones, e.g.
    FASTNN_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz.py tests/test_io.py --hypothesis-show-statistics
Cases run in-process, so a segfault kills pytest: that is the signal. A case running longer than WATCHDOG seconds
(a hang) kills it too, after printing every thread's traceback (faulthandler).
"""
import faulthandler
import functools
import inspect
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastnn
from fastnn import reference
from fastnn._spec import validate
from fastnn.mlp import ACTIVATIONS, LOSSES
from helpers import assert_close

try:
    import pandas
except ImportError:  # pragma: no cover - pandas is optional
    pandas = None

CAMPAIGN = "FASTNN_FUZZ_EXAMPLES" in os.environ
WATCHDOG = 120
# the normal suite replays the same 20 examples each run (no flakiness); a campaign draws fresh ones
fuzz = settings(max_examples=int(os.environ.get("FASTNN_FUZZ_EXAMPLES", 20)), derandomize=not CAMPAIGN,
                deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")
X_DTYPES = ("float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool")


def watched(test):
    """Kill the run, with a traceback of every thread, if one example takes over WATCHDOG seconds."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        faulthandler.dump_traceback_later(WATCHDOG, exit=True)
        try:
            return test(*args, **kwargs)
        finally:
            faulthandler.cancel_dump_traceback_later()
    return run


# ------------------------------------------------------------------------------------------ strategies
@st.composite
def problems(draw):
    """A model and valid training data for it: (model, X, y), X in a random dtype."""
    loss = draw(st.sampled_from(list(LOSSES)))
    n_in, n_out = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    sizes = [n_in, *draw(st.lists(st.integers(1, 8), max_size=2)), n_out]
    model = fastnn.MLP(sizes, activation=draw(st.sampled_from(ACTIVATIONS)), loss=loss,
                       dtype=draw(st.sampled_from(["float32", "float64"])), seed=draw(st.integers(0, 2**32 - 1)),
                       init=draw(st.sampled_from(["auto", "he", "glorot"])),
                       backend=draw(st.sampled_from(["compiled", "compiled", "numpy"])),
                       dropout=draw(st.sampled_from([0.0, 0.0, 0.5])))
    n = draw(st.integers(max(1, n_out if loss == "cross_entropy" else 1), 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = np.dtype(draw(st.sampled_from(X_DTYPES)))
    X = (rng.integers(-3, 4, (n, n_in)) if dtype.kind in "iub" else rng.uniform(-10, 10, (n, n_in))).astype(dtype)
    if loss == "cross_entropy":
        kind = draw(st.sampled_from(["index", "int", "float", "str", "object"]))
        labels = {"index": np.arange(n_out), "int": np.arange(n_out) * 7 - 5, "float": np.arange(n_out) / 3 - 0.5,
                  "str": np.array([f"class {k}" for k in range(n_out)]),
                  "object": np.array([f"c{k}" for k in range(n_out)], dtype=object)}[kind]
        y = labels[rng.permutation(np.arange(n) % n_out)]
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, (n, n_out)).astype(draw(st.sampled_from(["bool", "int64", "float32"])))
    else:
        y = rng.uniform(-100, 100, (n, n_out))
    if n_out == 1 and loss != "cross_entropy" and draw(st.booleans()):
        y = y[:, 0]
    return model, X, y


def layout(draw, a):
    """The same values as the array `a`, laid out some other way."""
    a = np.asarray(a)
    kind = draw(st.sampled_from(["C", "Fortran", "strided", "reversed", "read-only", "memmap", "list"]
                                + (["pandas"] if pandas is not None and a.ndim == 2 else [])))
    if kind == "Fortran":
        return np.asfortranarray(a)
    if kind == "strided":
        big = np.zeros((2 * a.shape[0],) + a.shape[1:], a.dtype)
        big[::2] = a
        return big[::2]
    if kind == "reversed":
        return a[::-1].copy()[::-1]
    if kind == "read-only":
        a = a.copy()
        a.setflags(write=False)
        return a
    if kind == "memmap" and a.dtype != object:   # read-only, from a file
        with tempfile.TemporaryFile() as f:
            f.write(np.ascontiguousarray(a).tobytes())
            f.flush()
            return np.memmap(f, a.dtype, "r", shape=a.shape)
    if kind == "list":
        return a.tolist()
    if kind == "pandas":
        return pandas.DataFrame(a)
    return np.ascontiguousarray(a)


def optimizers(draw, lr=None):
    name = draw(st.sampled_from(OPTIMIZERS))
    return getattr(fastnn.optim, name)(lr=draw(st.floats(0, 0.1)) if lr is None else lr)


# ------------------------------------------------------------------------------------------ valid input
@fuzz
@given(data=st.data())
@watched
def test_valid_input_gives_finite_correct_results(data):
    """fit / predict / score on valid input: finite results of the right shape, the same whatever the layout;
    or, when training diverges, a FloatingPointError (from fit, or from a prediction that overflows)."""
    model, X, y = data.draw(problems())
    n = X.shape[0]
    epochs, batch_size = data.draw(st.integers(0, 3)), data.draw(st.integers(1, n + 5))
    try:
        history = model.fit(layout(data.draw, X), layout(data.draw, y), epochs=epochs, batch_size=batch_size,
                            optimizer=optimizers(data.draw), shuffle=data.draw(st.booleans()),
                            clip_grad_norm=data.draw(st.sampled_from([None, 1e-3, 1.0])))
    except FloatingPointError as e:   # a diverging lr: reported, and the weights stay finite
        assert "epoch" in str(e) and np.all(np.isfinite(model.params)), str(e)
        return
    losses = history.history.get("loss", [])
    assert len(losses) == epochs and np.all(np.isfinite(losses))
    assert np.all(np.isfinite(model.params))
    try:
        check_predictions(model, layout(data.draw, X), X, y)
    except FloatingPointError as e:   # weights that overflow the forward pass: said so, never NaN
        assert "overflow" in str(e) or "finite" in str(e), str(e)


def check_predictions(model, X_laid_out, X, y):
    n = X.shape[0]
    pred = model.predict(X_laid_out)
    assert pred.shape[0] == n and np.array_equal(pred, model.predict(np.array(X, dtype=np.float64)))
    if model.is_classifier:
        proba = model.predict_proba(X)
        assert np.all((proba >= 0) & (proba <= 1))
        if model.loss == "cross_entropy":
            assert set(pred.tolist()) <= set(model.classes_.tolist())
            np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
        assert 0 <= model.score(X, y) <= 1
    else:
        assert pred.shape == np.shape(y) and np.all(np.isfinite(pred))
        assert np.isfinite(model.score(X, y))
    assert all(np.isfinite(v) for v in model.evaluate(X, y).values())


@fuzz
@given(data=st.data())
@watched
def test_zero_learning_rate_leaves_weights_unchanged(data):
    model, X, y = data.draw(problems())
    before = model.params.copy()
    model.fit(X, y, epochs=data.draw(st.integers(1, 2)), batch_size=data.draw(st.integers(1, 50)),
              optimizer=optimizers(data.draw, lr=0.0))
    assert model.params.tobytes() == before.tobytes()


# ------------------------------------------------------------------------------------------ invalid input
def bad_X(draw, X, n_in, dtype):
    """(X made invalid for a model of `dtype` one way, the exception type, a regex its message must match)."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    kind = draw(st.sampled_from(["nan", "inf", "features", "no features", "1-D", "3-D", "scalar", "empty", "object",
                                 "str", "complex", "datetime", "ragged", "None"] + ["huge"] * (dtype == np.float32)))
    if kind in ("nan", "inf", "huge"):
        X = X.copy()
        X[draw(st.integers(0, n - 1)), draw(st.integers(0, n_in - 1))] = {"nan": np.nan, "inf": -np.inf,
                                                                           "huge": 1e300}[kind]
        return X, ValueError, "NaN or inf"
    return {
        "features": (np.hstack([X, X]), ValueError, f"X has {2 * n_in} features but the model's input layer has"),
        "no features": (X[:, :0], ValueError, "X has 0 features"),
        "1-D": (X[:, 0], ValueError, "X must be 2-D"),
        "3-D": (X[None], ValueError, "X must be 2-D"),
        "scalar": (1.0, ValueError, "X must be 2-D"),
        "empty": (X[:0], ValueError, "X is empty"),
        "object": (X.astype(object), TypeError, "X must be numeric"),
        "str": (X.astype(str), TypeError, "X must be numeric"),
        "complex": (X.astype(complex), TypeError, "X must be numeric"),
        "datetime": (X.astype("datetime64[s]"), TypeError, "X must be numeric"),
        "ragged": ([[1.0] * n_in, [1.0] * (n_in + 1)], ValueError, "inhomogeneous"),
        "None": (None, TypeError, "X must be numeric"),
    }[kind]


def bad_y(draw, model, X, y):
    """(y made invalid for `model` one way, the exception type, a regex its message must match). Labels never
    seen in fit are refused by all but fit, which learns them."""
    n, n_out = X.shape[0], model.layer_sizes[-1]
    y = np.asarray(y)
    common = {"short": (y[:-1] if n > 1 else np.concatenate([y, y]), ValueError, "samples but X has"),
              "scalar": (np.float64(1), ValueError, "y has no samples"),
              "None": (None, ValueError, "y has no samples")}
    if model.loss == "cross_entropy":
        unseen = np.array(["never seen label"] * n) if y.dtype.kind in "UO" else np.full(n, 10**6)
        options = {**common, "2-D": (np.stack([y, y], axis=1), ValueError, "needs 1-D class labels"),
                   "unseen": (unseen, ValueError, "never seen in fit"),
                   "nan": (np.full(n, np.nan), ValueError, "(?i)nan|do not compare")}
        if n >= 2:
            options["mixed"] = (np.array(["a", 1] * n, dtype=object)[:n], ValueError, "sortable|do not compare")
    elif model.loss == "binary_cross_entropy":
        options = {**common, "out of [0, 1]": (np.full((n, n_out), 2.0), ValueError, r"in \[0, 1\]"),
                   "nan": (np.full((n, n_out), np.nan), ValueError, r"in \[0, 1\]|NaN"),
                   "wide": (np.zeros((n, n_out + 1)), ValueError, "indicator array"),
                   "str": (np.full((n, n_out), "1"), ValueError, "indicator array")}
    else:
        options = {**common, "nan": (np.full((n, n_out), np.nan), ValueError, "NaN or inf"),
                   "inf": (np.full((n, n_out), np.inf), ValueError, "NaN or inf"),
                   "wide": (np.zeros((n, n_out + 1)), ValueError, "must be"),
                   "str": (np.full((n, n_out), "1"), TypeError, "must be numeric"),
                   "object": (np.zeros((n, n_out), dtype=object), TypeError, "must be numeric")}
    return options[draw(st.sampled_from(sorted(options)))]


@fuzz
@given(data=st.data(), broken=st.sampled_from(["X", "y"]))
@watched
def test_invalid_input_is_refused_by_every_method(data, broken):
    """Every method refuses the broken X or y with the expected error and message, and changes nothing."""
    model, X, y = data.draw(problems())
    model.fit(X, y, epochs=1)
    params, classes = model.params.copy(), model.classes_
    if broken == "X":
        (Xb, error, message), yb = bad_X(data.draw, X, model.layer_sizes[0], model.dtype), y
    else:
        Xb, (yb, error, message) = X, bad_y(data.draw, model, X, y)
    calls = [lambda: model.evaluate(Xb, yb), lambda: model.train_step(Xb, yb, fastnn.optim.SGD()),
             lambda: model.loss_and_gradients(Xb, yb), lambda: model.score(Xb, yb)]
    if broken == "X":
        calls += [lambda: model.predict(Xb)]
        calls += [lambda: model.predict_proba(Xb)] if model.is_classifier else []
    if "never seen" not in message:   # fit learns whatever labels it is given
        calls.append(lambda: model.fit(Xb, yb, epochs=1))
    for call in calls:
        with pytest.raises(error, match=message):
            call()
    assert model.params.tobytes() == params.tobytes()
    assert (classes is None and model.classes_ is None) or np.array_equal(model.classes_, classes)


@pytest.mark.parametrize("loss, n_out, y", [
    ("cross_entropy", 2, np.stack([np.arange(2) % 2] * 2, axis=1)),   # (2, 2) labels: broadcast, no error
    ("binary_cross_entropy", 2, np.zeros((2, 1))),                     # one column for two labels: broadcast
    ("binary_cross_entropy", 2, np.zeros((2, 3))),
    ("mse", 2, np.zeros((2, 3))),
])
def test_score_checks_y(loss, n_out, y):
    """y's shape is checked, not broadcast against the predictions (a wrong accuracy, or NumPy's own error)"""
    model = fastnn.MLP([1, n_out], loss=loss, seed=0)
    model.fit(np.zeros((2, 1)), np.arange(2) % 2 if loss == "cross_entropy" else np.zeros((2, n_out)), epochs=1)
    with pytest.raises(ValueError, match=r"y.* shape \(2, [123]\)"):
        model.score(np.zeros((2, 1)), y)


@pytest.mark.parametrize("layer_sizes", [None, 5])
def test_layer_sizes_that_are_not_a_list_are_named(layer_sizes):
    with pytest.raises((TypeError, ValueError), match="layer_sizes"):
        fastnn.MLP(layer_sizes)


@pytest.mark.parametrize("refused, error", [
    (dict(validation_data="not a pair"), "validation_data"),
    (dict(validation_data=(np.zeros((2, 3)), ["a", "b"])), "never seen"),   # the new labels are c and d
    (dict(class_weight={"a": 2.0}), "class_weight"),
    (dict(early_stopping=True, monitor="val_loss"), "no validation data"),
    (dict(callbacks=["not a callback"]), "callbacks"),                      # checked after the labels were learnt
])
def test_a_refused_fit_keeps_the_labels_and_the_weights(rng, refused, error):
    """fit learns y's labels (and re-initialises a refit) only once every check has passed: a refused fit
    leaves neither the old weights under new labels nor fresh weights under the old ones"""
    X = rng.standard_normal((20, 3))
    model = fastnn.MLP([3, 4, 2], seed=0)
    model.fit(X, np.array(["a", "b"] * 10), epochs=1)
    params = model.params.copy()
    with pytest.raises((TypeError, ValueError), match=error):
        model.fit(X, np.array(["c", "d"] * 10), epochs=1, **refused)
    assert model.classes_.tolist() == ["a", "b"] and model.params.tobytes() == params.tobytes()


def test_a_refused_partial_fit_sets_no_labels(rng):
    X = rng.standard_normal((20, 3))
    model = fastnn.MLP([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="never seen"):
        model.partial_fit(X, np.array(["a", "c"] * 10), classes=["a", "b"])
    assert model.classes_ is None
    model.partial_fit(X, np.array(["a", "a"] * 10), classes=["a", "b"])     # y need not hold every label
    assert model.classes_.tolist() == ["a", "b"]


# ------------------------------------------------------------------------------------------ absurd settings
NOT_INTEGERS = [2.5, "3", None, True, [1], float("nan")]


@fuzz
@given(data=st.data(), option=st.sampled_from(["epochs", "batch_size"]),
       value=st.one_of(st.integers(max_value=0), st.sampled_from(NOT_INTEGERS)))
@watched
def test_absurd_epochs_and_batch_sizes_are_refused(data, option, value):
    if option == "epochs" and value == 0:   # zero epochs is a valid request: no training
        value = -1
    model, X, y = data.draw(problems())
    with pytest.raises(ValueError if isinstance(value, int) and value is not True else TypeError,
                       match=f"{option} must be"):
        model.fit(X, y, **{option: value})


BAD_REALS = st.one_of(st.floats(max_value=-1e-300), st.sampled_from([float("nan"), float("inf"), -float("inf")]))
OPTIMIZER_OPTIONS = {  # name -> (optimizer, a strategy of invalid values)
    "lr": ("SGD", BAD_REALS), "momentum": ("SGD", BAD_REALS), "weight_decay": ("Adam", BAD_REALS),
    "eps": ("RMSprop", BAD_REALS), "alpha": ("RMSprop", BAD_REALS), "lr_decay": ("Adagrad", BAD_REALS),
    "initial_accumulator_value": ("Adagrad", BAD_REALS),
}


@fuzz
@given(data=st.data(), option=st.sampled_from(sorted(OPTIMIZER_OPTIONS) + ["betas", "lr of each"]))
@watched
def test_absurd_optimizer_settings_are_refused(data, option):
    if option == "betas":
        name, kwargs = "Adam", {"betas": (0.9, data.draw(st.one_of(st.floats(min_value=1.0), BAD_REALS)))}
    elif option == "lr of each":
        name, option = data.draw(st.sampled_from(OPTIMIZERS)), "lr"
        kwargs = {"lr": data.draw(BAD_REALS)}
    else:
        name, values = OPTIMIZER_OPTIONS[option]
        kwargs = {option: data.draw(values)}
    with pytest.raises(ValueError, match=option):
        getattr(fastnn.optim, name)(**kwargs)


MODEL_OPTIONS = {
    "layer_sizes": st.one_of(st.lists(st.integers(max_value=0), min_size=2, max_size=4).map(lambda s: [3] + s),
                             st.sampled_from([[], [3], "3,4", [3, 2.5], [3, True], [3, None]])),
    "activation": st.text(max_size=10).filter(lambda s: s not in ACTIVATIONS),
    "loss": st.text(max_size=10).filter(lambda s: s not in LOSSES),
    "init": st.text(max_size=10).filter(lambda s: s not in ("auto", "he", "glorot")),
    "dtype": st.sampled_from(["float16", "int32", "object", "complex64", "bool", "not a dtype", 5, bool]),
    "backend": st.text(max_size=10).filter(lambda s: s not in ("compiled", "numpy")),
    "negative_slope": st.sampled_from([float("nan"), float("inf"), "0.1", None, True]),
    "huber_delta": st.one_of(st.floats(max_value=0), st.sampled_from([float("nan"), float("inf"), "1"])),
    "dropout": st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1.0), st.sampled_from([float("nan"), "0.1"]),
                         st.lists(st.floats(0, 0.5), min_size=2, max_size=3)),   # one hidden layer: one rate
}


@fuzz
@given(option=st.sampled_from(sorted(MODEL_OPTIONS)), data=st.data())
@watched
def test_absurd_model_options_are_refused(option, data):
    value = data.draw(MODEL_OPTIONS[option])
    with pytest.raises((TypeError, ValueError), match="layer" if option == "layer_sizes" else option):
        fastnn.MLP(**{"layer_sizes": [3, 4, 2], option: value})


# ------------------------------------------------------------------------------------------ raw kernels
SCALARS = {  # valid values for the scalar arguments of the kernels (the rest take their defaults)
    "negative_slope": 0.05, "delta": 0.7, "kind": "tanh", "param": 0.05, "lr": 0.01, "momentum": 0.9,
    "dampening": 0.1, "weight_decay": 0.01, "nesterov": False, "maximize": False, "first_step": False, "step": 3,
    "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "amsgrad": True, "decoupled_weight_decay": True, "alpha": 0.99,
    "centered": True, "lr_decay": 0.01, "trans_a": False, "trans_b": True, "beta": 0.5, "rate": 0.3, "seed": 7,
    "stream": 2, "max_norm": 1.0, "norm_type": 2.0,
}
KERNELS = [getattr(reference, name) for name in reference.KERNELS]


def scalars(kernel):
    """A valid value for each scalar argument of `kernel`: SCALARS', else its default (None: none known)."""
    arrays = {a.name for a in kernel.__fastnn_spec__}
    return {p.name: SCALARS.get(p.name, None if p.default is inspect.Parameter.empty else p.default)
            for p in inspect.signature(kernel).parameters.values() if p.name not in arrays}


def test_every_kernel_is_fuzzed():
    missing = {k.__name__: [name for name, value in scalars(k).items() if value is None] for k in KERNELS}
    assert not any(missing.values()), f"add a valid value for these kernel arguments to SCALARS: {missing}"


def kernel_array(draw, arg, sizes, dtype):
    """A maker of the array for the spec argument `arg`: usually valid, sometimes broken one way. Each call
    makes a fresh, identical array (same values, layout and flags)."""
    shape = tuple(sizes[d] for d in arg.dims)
    seed = draw(st.integers(0, 2**32 - 1))
    how = draw(st.sampled_from(["valid"] * 12 + ["None", "grow", "ndim", "dtype", "strided", "Fortran", "read-only",
                                                 "empty", "list", "index"]))
    other = draw(st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.int64, object]))
    bad_index = draw(st.sampled_from([-1, sizes.get(arg.index_of, 0), 2**40]))

    def make():
        rng = np.random.default_rng(seed)
        if arg.index_of is not None:
            a = rng.integers(0, sizes[arg.index_of], shape).astype(np.int64)
        else:
            a = (rng.standard_normal(shape) * 2).astype(dtype)
        if how == "None":
            return None
        if how == "grow" and a.ndim:
            return np.resize(a, a.shape[:-1] + (a.shape[-1] + 1,))
        if how == "ndim":
            return a.reshape(-1) if a.ndim > 1 else a[:, None]
        if how == "dtype":
            return a.astype(other)
        if how == "strided":
            return np.repeat(a, 2, axis=-1)[..., ::2]
        if how == "Fortran" and a.ndim == 2 and min(a.shape) > 1:
            return np.asfortranarray(a)
        if how == "read-only":
            a.setflags(write=False)
        if how == "empty" and a.ndim:
            return a[..., :0]
        if how == "list":
            return a.tolist()
        if how == "index" and arg.index_of is not None:
            a.flat[seed % a.size] = bad_index
        return a

    return make


def outcome(fn, args):
    try:
        with np.errstate(all="ignore"):   # random state buffers may make NaN (sqrt of a negative): compared as such
            return fn(*args), None
    except Exception as e:  # noqa: BLE001 - sorted out by the caller
        return None, e


@fuzz
@given(kernel=st.sampled_from(KERNELS), data=st.data())
@watched
def test_raw_compiled_kernels_check_their_arguments(kernel, data):
    """get_backend("compiled").raw, the unchecked kernels: a bad argument raises TypeError / ValueError, never
    reaches the C kernel; good arguments give the reference's results."""
    spec = kernel.__fastnn_spec__
    letters = sorted({d for a in spec for d in a.dims})
    sizes = {d: data.draw(st.integers(1, 6), label=f"size {d}") for d in letters}
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    makers = {a.name: kernel_array(data.draw, a, sizes, dtype) for a in spec}
    names, values = list(inspect.signature(kernel).parameters), scalars(kernel)

    def arguments():
        return [makers[n]() if n in makers else values[n] for n in names]

    compiled = getattr(fastnn.get_backend("compiled").raw, kernel.__name__)
    ours = arguments()
    result, error = outcome(compiled, ours)
    twin_args = arguments()
    expected, twin_error = outcome(kernel, twin_args)   # the reference itself, unvalidated
    try:
        validate(kernel.__name__, spec, dict(zip(names, arguments())))
    except (TypeError, ValueError) as refusal:   # refused, or (an empty array, say) still the reference's result
        if error is None and twin_error is None:
            return assert_same(kernel, names, (result, ours), (expected, twin_args))
        assert isinstance(error, (TypeError, ValueError)), f"the spec refuses ({refusal}), compiled: {error!r}"
        return
    if twin_error is not None:   # e.g. a state buffer that these options need is None: both refuse
        assert isinstance(error, type(twin_error)), f"reference: {twin_error!r}, compiled: {error!r}"
        return
    assert error is None, repr(error)
    assert_same(kernel, names, (result, ours), (expected, twin_args))


def assert_same(kernel, names, ours, theirs):
    """The compiled kernel's (return value, arguments) match the reference's: every float array and the return,
    at the tolerance of the dtype the arrays really have (a broken-dtype draw may have made them all float32)."""
    floats = [(name, mine, twin) for name, mine, twin in zip(names, ours[1], theirs[1])
              if isinstance(mine, np.ndarray) and mine.dtype.kind == "f" and mine.size]
    dtype = np.float32 if any(mine.dtype == np.float32 for _, mine, _ in floats) else np.float64
    tol = 1e-4 if dtype == np.float32 else 1e-9
    for name, mine, twin in floats:
        assert_close(mine, twin, mine.dtype, f"{kernel.__name__} {name}", tol=tol)
    if theirs[0] is not None:
        assert_close(ours[0], theirs[0], dtype, f"{kernel.__name__} return", tol=tol)

"""The MLP end to end: gradients against finite differences, both backends against each other,
penguins accuracy, regression, save/load, and the errors bad input must raise."""
import numpy as np
import pytest

import fastnn
from fastnn.datasets import load_penguins, standardize, train_test_split
from fastnn.mlp import ACTIVATIONS, LOSSES

BACKENDS = ["compiled", "numpy"]


def random_targets(rng, loss, n, n_out):
    if loss == "cross_entropy":
        return np.arange(n) % n_out  # every class present, in a random order below
    if loss == "binary_cross_entropy":
        return (rng.random((n, n_out)) < 0.5).astype(np.float64)
    return rng.standard_normal((n, n_out))


def finite_difference(f, params, index, h):
    """Fourth-order central difference of f at params[index]."""
    saved = params[index]
    values = []
    for step in (2 * h, h, -h, -2 * h):
        params[index] = saved + step
        values.append(f())
    params[index] = saved
    return (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_gradients_match_finite_differences(backend, activation, loss, rng):
    sizes = [3, 6, 5, 4]
    model = fastnn.MLP(sizes, activation=activation, loss=loss, dtype="float64", seed=int(rng.integers(2**31)),
                       backend=backend, negative_slope=0.07, huber_delta=0.8)
    model.params[:] = rng.standard_normal(model.n_params) * 0.7  # biases non-zero too
    y = random_targets(rng, loss, 7, 4)
    if loss == "cross_entropy":
        y = rng.permutation(y)
    for _ in range(1000):  # resample X until nothing sits within the differences' reach of a kink
        X = rng.standard_normal((7, 3))
        ws = model._workspace(7)
        model._forward(model._check_X(X), ws)
        hidden_ok = activation not in ("relu", "leaky_relu") or min(np.abs(z).min() for z in ws.pre[:-1]) > 1e-2
        residual = np.abs(ws.pre[-1] - y) if loss in ("mae", "huber") else None   # their kinks: |r| = 0, delta
        loss_ok = residual is None or np.abs(residual - (0.8 if loss == "huber" else 0)).min() > 1e-2
        if hidden_ok and loss_ok:
            break
    loss_value, dW, db = model.loss_and_gradients(X, y)
    analytic = np.concatenate([np.concatenate([w.ravel(), b]) for w, b in zip(dW, db)])
    f = lambda: model.loss_and_gradients(X, y)[0]  # noqa: E731
    numeric = np.array([finite_difference(f, model.params, i, 1e-4) for i in range(model.n_params)])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8 * np.abs(numeric).max())
    assert np.isfinite(loss_value) and np.abs(analytic).max() > 0


@pytest.mark.parametrize("loss", list(LOSSES))
def test_backends_train_identically(loss, rng):
    """K optimizer steps on the compiled kernels match K steps on the reference (tier 3)."""
    X = rng.standard_normal((40, 5))
    y = random_targets(rng, loss, 40, 3)
    models = [fastnn.MLP([5, 8, 3], activation="tanh", loss=loss, dtype="float64", seed=3, backend=b)
              for b in BACKENDS]
    for model in models:
        opt = fastnn.optim.Adam(lr=1e-2, amsgrad=True)
        losses = [model.train_step(X[k * 8:(k + 1) * 8], y[k * 8:(k + 1) * 8], opt) for k in range(5)]
        model.losses = losses
    np.testing.assert_allclose(models[0].losses, models[1].losses, rtol=1e-12)
    np.testing.assert_allclose(models[0].params, models[1].params, rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def penguins():
    X, y = load_penguins()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    X_train, X_test = standardize(X_train, X_test)
    return X_train, X_test, y_train, y_test


@pytest.mark.parametrize("backend", BACKENDS)
def test_penguins_accuracy(backend, penguins):
    X_train, X_test, y_train, y_test = penguins
    assert X_train.shape == (273, 4) and X_test.shape == (69, 4)  # 20% of each species
    model = fastnn.MLP([4, 16, 16, 3], seed=0, backend=backend)
    history = model.fit(X_train, y_train, epochs=100, batch_size=32, optimizer=fastnn.optim.Adam(lr=1e-2))
    assert list(model.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
    assert history.history["loss"][-1] < history.history["loss"][0] / 5
    assert model.score(X_test, y_test) >= 0.95
    proba = model.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert set(model.predict(X_test)) <= set(model.classes_)


@pytest.mark.parametrize("backend", BACKENDS)
def test_regression_fits_a_smooth_function(backend, rng):
    X = rng.uniform(-2, 2, (800, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    model = fastnn.MLP([2, 32, 32, 1], activation="tanh", loss="mse", dtype="float64", seed=1, backend=backend)
    model.fit(X[:600], y[:600], epochs=150, batch_size=32, optimizer=fastnn.optim.Adam(lr=5e-3))
    assert model.predict(X[600:]).shape == (200,)
    assert model.score(X[600:], y[600:]) > 0.97


def test_multilabel_and_multioutput(rng):
    X = rng.standard_normal((300, 4))
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0], axis=1).astype(int)
    clf = fastnn.MLP([4, 16, 2], loss="binary_cross_entropy", seed=0)
    clf.fit(X, Y, epochs=60, optimizer=fastnn.optim.Adam(lr=1e-2))
    assert clf.predict(X).shape == (300, 2) and clf.score(X, Y) > 0.9
    reg = fastnn.MLP([4, 16, 2], loss="huber", seed=0, dtype="float64")
    T = np.stack([X[:, 0] * 2, X[:, 1] - X[:, 3]], axis=1)
    reg.fit(X, T, epochs=60, optimizer=fastnn.optim.Adam(lr=1e-2))
    assert reg.predict(X).shape == (300, 2) and reg.score(X, T) > 0.9


def test_integer_class_indices_map_to_output_units(rng):
    X = rng.standard_normal((60, 3))
    y = np.array([0, 2] * 30)  # class 1 absent: still 3 output units, indices are units
    model = fastnn.MLP([3, 4, 3], seed=0)
    model.fit(X, y, epochs=1)
    assert list(model.classes_) == [0, 1, 2]
    assert set(model.predict(X)) <= {0, 1, 2}


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_round_trip_is_bit_exact(backend, penguins, tmp_path):
    X_train, X_test, y_train, _ = penguins
    model = fastnn.MLP([4, 8, 3], seed=2, backend=backend, activation="gelu")
    model.fit(X_train, y_train, epochs=3)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastnn.MLP.load(path, backend=backend)
    assert loaded.params.tobytes() == model.params.tobytes()
    assert loaded.predict_proba(X_test).tobytes() == model.predict_proba(X_test).tobytes()
    assert list(loaded.classes_) == list(model.classes_) and loaded.activation == "gelu"


def test_load_refuses_bad_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a readable fastnn model"):
        fastnn.MLP.load(bad)
    model = fastnn.MLP([2, 3, 2], seed=0)
    good = tmp_path / "good.npz"
    model.save(good)
    with np.load(good) as data:
        params, meta = data["params"], str(data["metadata"])
    np.savez(tmp_path / "short.npz", params=params[:-1], metadata=np.array(meta))
    with pytest.raises(ValueError, match="parameter array"):
        fastnn.MLP.load(tmp_path / "short.npz")
    np.savez(tmp_path / "future.npz", params=params, metadata=np.array(meta.replace('"format_version": 1',
                                                                                    '"format_version": 99')))
    with pytest.raises(ValueError, match="format version 99"):
        fastnn.MLP.load(tmp_path / "future.npz")


def test_weights_are_live_views_and_assignable(rng):
    model = fastnn.MLP([3, 4, 2], seed=0)
    assert np.shares_memory(model.weights[0], model.params)
    new = [rng.standard_normal(w.shape) for w in model.weights]
    model.weights = new
    np.testing.assert_allclose(model.weights[1], new[1].astype(np.float32))
    model.biases[1][:] = 5
    assert np.all(model.params[-2:] == 5)
    with pytest.raises(ValueError, match="shape"):
        model.weights = [np.zeros((2, 2)), np.zeros((4, 2))]


def test_same_seed_same_model():
    a, b = fastnn.MLP([4, 16, 3], seed=7), fastnn.MLP([4, 16, 3], seed=7)
    assert a.params.tobytes() == b.params.tobytes()
    assert a.params.tobytes() != fastnn.MLP([4, 16, 3], seed=8).params.tobytes()


def test_initialisation_scales(rng):
    he = fastnn.MLP([400, 300, 2], activation="relu", seed=0, dtype="float64")
    assert abs(he.weights[0].std() - np.sqrt(2 / 400)) < 0.05 * np.sqrt(2 / 400)
    glorot = fastnn.MLP([400, 300, 2], activation="tanh", seed=0, dtype="float64")
    assert abs(np.abs(glorot.weights[0]).max() - np.sqrt(6 / 700)) < 0.01 * np.sqrt(6 / 700)
    assert np.all(he.biases[0] == 0)


# ------------------------------------------------------------------------------------------ bad input
@pytest.fixture
def fitted(rng):
    model = fastnn.MLP([3, 4, 2], seed=0)
    model.fit(rng.standard_normal((20, 3)), np.array(["a", "b"] * 10), epochs=1)
    return model


@pytest.mark.parametrize("make_X, message", [
    (lambda X: np.where(X > 1, np.nan, X), "NaN or inf"),
    (lambda X: np.where(X > 1, np.inf, X), "NaN or inf"),
    (lambda X: X[:, :2], "has 2 features"),
    (lambda X: X[:0], "empty"),
    (lambda X: X[0], "2-D"),
    (lambda X: X.astype(str), "numeric"),
])
def test_bad_X_is_refused(fitted, rng, make_X, message):
    X = rng.standard_normal((20, 3)) * 2
    with pytest.raises((ValueError, TypeError), match=message):
        fitted.fit(make_X(X), np.array(["a", "b"] * 10), epochs=1)
    with pytest.raises((ValueError, TypeError), match=message):
        fitted.predict(make_X(X))


def test_bad_y_is_refused(fitted, rng):
    X = rng.standard_normal((20, 3))
    with pytest.raises(ValueError, match="never seen"):
        fitted.score(X, np.array(["a", "c"] * 10))
    with pytest.raises(ValueError, match="samples"):
        fitted.fit(X, np.array(["a", "b"] * 9), epochs=1)
    with pytest.raises(ValueError, match="3 distinct labels"):
        fitted.fit(X, np.array(["a", "b", "c", "a"] * 5), epochs=1)
    reg = fastnn.MLP([3, 2, 1], loss="mse")
    with pytest.raises(ValueError, match="NaN or inf"):
        reg.fit(X, np.where(X[:, 0] > 0, np.inf, 0.0), epochs=1)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        fastnn.MLP([3, 2], loss="binary_cross_entropy").fit(X, X[:, :2] * 5, epochs=1)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(activation="swish"), ValueError, "unknown activation"),
    (dict(loss="hinge"), ValueError, "unknown loss"),
    (dict(dtype="int32"), TypeError, "float32 or float64"),
    (dict(dtype=None), ValueError, "dtype must be"),   # np.dtype(None) would silently be float64
    (dict(init="orthogonal"), ValueError, "unknown init"),
    (dict(backend="cuda"), ValueError, "unknown backend"),
    (dict(huber_delta=0.0), ValueError, "huber_delta"),
])
def test_bad_model_options_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        fastnn.MLP([3, 4, 2], **kwargs)


@pytest.mark.parametrize("sizes", [[3], [], [3, 0, 2], [3, -1], "32", [3, 2.5]])
def test_bad_layer_sizes_are_refused(sizes):
    with pytest.raises((ValueError, TypeError)):
        fastnn.MLP(sizes)


@pytest.mark.parametrize("make", [
    lambda: fastnn.optim.SGD(lr=-0.1), lambda: fastnn.optim.Adam(lr=-1e-3), lambda: fastnn.optim.Adam(betas=(1.0, 0.9)),
    lambda: fastnn.optim.RMSprop(eps=-1), lambda: fastnn.optim.Adagrad(lr=float("nan")),
    lambda: fastnn.optim.SGD(nesterov=True), lambda: fastnn.optim.AdamW(weight_decay=-1),
])
def test_nonsense_hyperparameters_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_bad_fit_arguments_are_refused(fitted, rng):
    X, y = rng.standard_normal((20, 3)), np.array(["a", "b"] * 10)
    with pytest.raises(ValueError, match="batch_size"):
        fitted.fit(X, y, batch_size=0)
    with pytest.raises(ValueError, match="epochs"):
        fitted.fit(X, y, epochs=-1)
    with pytest.raises(TypeError, match="optimizer"):
        fitted.fit(X, y, optimizer="adam")


def test_predict_proba_needs_a_fitted_classifier(rng):
    with pytest.raises(RuntimeError, match="not been fitted"):
        fastnn.MLP([3, 4, 2]).predict_proba(rng.standard_normal((2, 3)))
    with pytest.raises(AttributeError, match="classification"):
        fastnn.MLP([3, 4, 1], loss="mse").predict_proba(rng.standard_normal((2, 3)))


def test_divergence_is_reported_and_keeps_finite_weights(rng):
    X = rng.standard_normal((64, 3)) * 1e3
    model = fastnn.MLP([3, 8, 1], loss="mse", seed=0)
    with pytest.raises(FloatingPointError, match="epoch"):
        model.fit(X, X[:, 0] * 1e30, epochs=50, optimizer=fastnn.optim.SGD(lr=1e6))
    assert np.all(np.isfinite(model.params))

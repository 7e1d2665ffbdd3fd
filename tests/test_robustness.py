"""Numerical robustness: softmax / log-sum-exp, sigmoid, BCE and every activation stay finite (and exact where the
answer is known) for inputs of +-1e4 and beyond, in the kernels and through the public model; a diverging
learning rate is reported with the epoch and batch, and leaves finite weights."""
import warnings

import numpy as np
import pytest

import fastnn
from fastnn.mlp import ACTIVATIONS

HUGE = 1e4


def extreme_logits(dtype):
    """Rows of logits that overflow exp() in any naive formula: +-1e4, and a quarter of the dtype's range."""
    big = np.finfo(dtype).max / 4
    return np.array([[HUGE, -HUGE, 0.0], [-HUGE, -HUGE, -HUGE], [HUGE, HUGE, -HUGE], [big, -big, 0.0]], dtype)


def test_softmax_and_cross_entropy_are_finite_and_exact(backend, dtype):
    z = extreme_logits(dtype)
    out = np.empty_like(z)
    backend.softmax_forward(out, z)
    np.testing.assert_array_equal(out, np.array([[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0], [1, 0, 0]], dtype))
    targets = np.array([0, 1, 2, 1])
    # loss = logsumexp(z) - z_y: 0, log 3, 2e4 + log 2, 2 big; averaged over the 4 rows
    big = float(np.finfo(dtype).max / 4)
    expected = (0 + np.log(3) + 2 * HUGE + np.log(2) + 2 * big) / 4
    loss = backend.cross_entropy_forward(out, z, targets)
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-6)
    dz = np.zeros_like(z)
    backend.cross_entropy_backward(dz, out, targets)
    np.testing.assert_allclose(dz, (out - np.eye(3, dtype=dtype)[targets]) / 4, rtol=1e-6)


def test_sigmoid_and_binary_cross_entropy_are_finite_and_exact(backend, dtype):
    z = np.array([[HUGE, -HUGE], [-HUGE, HUGE]], dtype)
    y = np.array([[0, 0], [1, 1]], dtype)
    out = np.empty_like(z)
    backend.sigmoid_forward(out, z)
    np.testing.assert_array_equal(out, [[1, 0], [0, 1]])
    # per element max(z, 0) - z y + log1p(exp(-|z|)): 1e4, 0, 1e4, 0
    assert backend.binary_cross_entropy_forward(out, z, y) == pytest.approx(HUGE / 2, rel=1e-6)
    np.testing.assert_array_equal(out, [[1, 0], [0, 1]])
    dz = np.zeros_like(z)
    backend.binary_cross_entropy_backward(dz, out, y)
    np.testing.assert_array_equal(dz, (out - y) / 4)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations_are_finite_at_extremes(backend, dtype, activation):
    x = np.array([[HUGE, -HUGE, np.finfo(dtype).max / 4, -np.finfo(dtype).max / 4]], dtype)
    out, dx = np.empty_like(x), np.zeros_like(x)
    getattr(backend, f"{activation}_forward")(out, x)
    getattr(backend, f"{activation}_backward")(dx, np.ones_like(x), x, out)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx)), (out, dx)


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
def test_predict_proba_with_huge_weights_is_finite(rng, backend, loss):
    """Weights ~1e4 drive every logit far past exp()'s range; probabilities stay finite and normalised."""
    X = rng.standard_normal((50, 4))
    y = np.arange(50) % 3 if loss == "cross_entropy" else (X[:, :3] > 0).astype(int)
    model = fastnn.MLP([4, 8, 3], activation="tanh", loss=loss, seed=0, backend=backend)
    model.fit(X, y, epochs=1)
    model.weights = [w * HUGE for w in model.weights]
    proba = model.predict_proba(X)
    assert np.all(np.isfinite(proba)) and np.all((proba >= 0) & (proba <= 1))
    if loss == "cross_entropy":
        np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
        assert np.max(proba) == 1   # the winning class saturates exactly
    assert all(np.isfinite(v) for v in model.evaluate(X, y).values())


DIVERGING = [  # (loss, optimizer): each blows up within a few steps, the last four in the step itself
    ("mse", lambda: fastnn.optim.SGD(lr=1e6)),
    ("mse", lambda: fastnn.optim.Adam(lr=1e38)),
    ("mae", lambda: fastnn.optim.Adam(lr=1e38)),
    ("huber", lambda: fastnn.optim.RMSprop(lr=1e38)),
    ("cross_entropy", lambda: fastnn.optim.SGD(lr=1e38, momentum=0.9)),
]


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("loss, make_optimizer", DIVERGING)
def test_divergence_names_epoch_and_batch_and_keeps_finite_weights(rng, backend, loss, make_optimizer):
    X = rng.standard_normal((64, 3)) * 100
    y = np.arange(64) % 2 if loss == "cross_entropy" else X[:, 0] * 1e3
    model = fastnn.MLP([3, 8, 2 if loss == "cross_entropy" else 1], loss=loss, seed=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # python -W error: NumPy's overflow warnings (backend="numpy") stay quiet
        with pytest.raises(FloatingPointError, match=r"epoch \d+, batch \d+"):
            model.fit(X, y, epochs=50, batch_size=8, optimizer=make_optimizer())
    assert np.all(np.isfinite(model.params))
    with pytest.warns(RuntimeWarning, match=r"epoch \d+, batch \d+") as caught:
        model.fit(X, y, epochs=50, batch_size=8, optimizer=make_optimizer(), on_divergence="warn")
    assert len(caught) == 1 and np.all(np.isfinite(model.params))   # fastnn's warning alone


OVERFLOWING_AT_ONCE = {  # lr=1e39 rounds to inf in float32: the first step overflows, however small the gradient
    "sgd": lambda: fastnn.optim.SGD(lr=1e39, momentum=0.9),
    "adam": lambda: fastnn.optim.Adam(lr=1e39, amsgrad=True),
    "rmsprop": lambda: fastnn.optim.RMSprop(lr=1e39, momentum=0.5, centered=True),
    "adagrad": lambda: fastnn.optim.Adagrad(lr=1e39),
}


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("opt", list(OVERFLOWING_AT_ONCE))
def test_an_overflowing_step_is_undone(rng, backend, opt):
    """fit stops at the step that overflowed with the weights, the optimizer's state and its step count as they
    were before it (here the initial ones), so a warm start can go on from there"""
    X, y = rng.standard_normal((32, 3)), rng.standard_normal(32)
    model = fastnn.MLP([3, 8, 1], loss="mse", seed=0, backend=backend)
    before, optimizer = model.params.copy(), OVERFLOWING_AT_ONCE[opt]()
    with pytest.raises(FloatingPointError, match="optimizer step .* non-finite .* epoch 1, batch 1;"):
        model.fit(X, y, epochs=1, batch_size=8, optimizer=optimizer)
    assert model.params.tobytes() == before.tobytes()
    assert optimizer.step_count == 0 and not any(np.any(s) for s in optimizer.state.values())
    optimizer.lr = 1e-3
    model.fit(X, y, epochs=1, batch_size=8, warm_start=True)   # the same optimizer, from its restored state
    assert optimizer.step_count == 4 and np.all(np.isfinite(model.params))


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_an_overflow_late_in_the_step_undoes_all_of_it(rng, backend):
    """A model large enough for the compiled step to run in parallel blocks (P >= 32768, 2 threads): only the
    weights of one huge feature (the end of W0) and the next layer's overflow, after the blocks before them were
    updated; every block is restored"""
    X, y = rng.standard_normal((64, 200)), rng.standard_normal(64)
    X[:, -1] *= 1e6
    model = fastnn.MLP([200, 200, 1], loss="mse", seed=0, backend=backend, num_threads=2)
    before, lr = model.params.copy(), 1e30
    model.loss_and_gradients(X, y)                   # the gradient of the first (and only) batch
    with np.errstate(over="ignore"):
        stepped = before - np.float32(lr) * model.grads
    first_bad = np.flatnonzero(~np.isfinite(stepped))[0]
    assert first_bad >= 4 * 8192, "the premise: the first blocks of the step stay finite"
    with pytest.raises(FloatingPointError, match="optimizer step"):
        model.fit(X, y, epochs=1, batch_size=64, shuffle=False, optimizer=fastnn.optim.SGD(lr=lr))
    assert model.params.tobytes() == before.tobytes()


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("case", ["loss", "step"])
def test_a_diverging_train_step_changes_nothing(rng, backend, case):
    model = fastnn.MLP([3, 8, 1], loss="mse", seed=0, backend=backend)
    X = rng.standard_normal((16, 3))
    before, optimizer = model.params.copy(), OVERFLOWING_AT_ONCE["adam"]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # python -W error: NumPy's overflow warnings (backend="numpy") stay quiet
        if case == "loss":
            with pytest.raises(FloatingPointError, match="not taken"):
                model.train_step(X * 1e30, X[:, 0] * 1e30, fastnn.optim.SGD(lr=1.0))
        else:
            with pytest.raises(FloatingPointError, match="overflowed .* undone"):
                model.train_step(X, X[:, 0], optimizer)
            assert optimizer.step_count == 0 and not any(np.any(s) for s in optimizer.state.values())
    assert model.params.tobytes() == before.tobytes()


@pytest.mark.parametrize("seed", [2, 3, 12])
def test_a_fit_that_returns_gives_finite_predictions(seed):
    """Found by tests/test_fuzz.py: SGD on unscaled targets ends with finite weights of ~1e13-1e21 whose forward
    pass overflows; predict says so rather than return inf/NaN."""
    rng = np.random.default_rng(seed)
    X, y = rng.integers(-3, 4, (6, 1)).astype(np.float64), rng.uniform(-100, 100, (6, 2))
    model = fastnn.MLP([1, 2, 2, 2], activation="identity", loss="mse", seed=seed)
    model.fit(X, y, epochs=2, batch_size=5, optimizer=fastnn.optim.SGD(lr=0.0625), shuffle=False)
    try:
        pred = model.predict(X)
    except FloatingPointError as e:
        assert "overflows float32" in str(e)
        return
    assert np.all(np.isfinite(pred))


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "binary_cross_entropy"])
def test_predict_refuses_an_output_that_overflows(rng, backend, loss):
    """A finite input (3e38 fits float32) whose forward pass overflows: FloatingPointError from every reader of
    the output, with NumPy's own overflow warnings as errors (python -W error) too, never inf or NaN."""
    X = rng.standard_normal((64, 3))
    y = {"mse": X, "cross_entropy": np.arange(64) % 3, "binary_cross_entropy": X > 0}[loss]
    model = fastnn.MLP([3, 8, 3], loss=loss, seed=0, backend=backend)
    model.fit(X, y, epochs=1)
    weights = [np.ones_like(w) for w in model.weights]   # every hidden unit sums its inputs: 3 x 3e38 = inf
    weights[-1][0] = -1                                    # and every output -inf + inf = NaN
    model.weights = weights
    huge = np.full((2, 3), 3e38)
    readers = [model.predict, model.predict_proba] if model.is_classifier else [model.predict]
    readers += [lambda X: model.evaluate(X, y[:2]), lambda X: model.score(X, y[:2])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for read in readers:
            with pytest.raises(FloatingPointError, match="inf or NaN for 2 of the 2 rows"):
                read(huge)
        assert np.all(np.isfinite(readers[0](X)))   # and the model still predicts finite input that fits


def test_softmax_of_an_infinite_logit(backend, dtype):
    """An inf logit wins outright in both backends (exp(z - max z) would be exp(NaN) for it); two of them are
    NaN, as inf/inf, for the caller to refuse"""
    z = np.array([[np.inf, 0, -np.inf], [1, np.inf, 2], [np.inf, np.inf, 0]], dtype)
    out = np.empty_like(z)
    with np.errstate(invalid="ignore"):     # the reference's inf - inf
        backend.softmax_forward(out, z)
    np.testing.assert_array_equal(out[:2], [[1, 0, 0], [0, 1, 0]])
    assert np.all(np.isnan(out[2]))


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("clip", [None, 1.0])
def test_a_finite_loss_with_an_overflowing_gradient_changes_nothing(backend, clip):
    """x = 3e38 with tiny weights: the prediction and the loss are finite, dW = 2 (pred - y) x overflows. Without
    clipping the compiled step checks the gradients itself (no pass before it): the step is undone, the same
    status either way."""
    X, y = np.full((1, 2), 3e38), np.array([-1000.0])
    model = fastnn.MLP([2, 1], activation="identity", loss="mse", seed=0, backend=backend)
    model.weights = [np.full((2, 1), 1e-38)]
    before, optimizer = model.params.copy(), fastnn.optim.Adam(lr=1e-3)
    assert np.isfinite(model.evaluate(X, y)["loss"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # python -W error: NumPy's overflow warnings (backend="numpy") stay quiet
        with pytest.raises(FloatingPointError, match=r"gradient .* epoch 1, batch 1;"):
            model.fit(X, y, epochs=1, batch_size=1, optimizer=optimizer, clip_grad_norm=clip)
    assert model.params.tobytes() == before.tobytes()
    assert optimizer.step_count == 0 and not any(np.any(s) for s in optimizer.state.values())

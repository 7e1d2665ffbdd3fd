"""Python threads: models trained at once match models trained in turn; one model used from two threads at
once is either safe (concurrent predictions) or refused with "in use by another thread", never corrupted; the
GIL is released during compiled work, so other Python threads keep running."""
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

import fastnn

OPS = {  # what a second thread may try on a model: name -> call(model, X, y)
    "fit": lambda m, X, y: m.fit(X, y, epochs=1),
    "partial_fit": lambda m, X, y: m.partial_fit(X, y),
    "train_step": lambda m, X, y: m.train_step(X, y, fastnn.optim.SGD()),
    "loss_and_gradients": lambda m, X, y: m.loss_and_gradients(X, y),
    "assign weights": lambda m, X, y: setattr(m, "weights", m.weights),
    "predict": lambda m, X, y: m.predict(X),
    "predict_proba": lambda m, X, y: m.predict_proba(X),
    "evaluate": lambda m, X, y: m.evaluate(X, y),
    "score": lambda m, X, y: m.score(X, y),
}
TRAINING = ("fit", "partial_fit", "train_step", "loss_and_gradients", "assign weights")


@pytest.fixture
def problem(rng):
    X = rng.standard_normal((64, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    model = fastnn.MLP([5, 8, 3], seed=0)
    model.fit(X, y, epochs=1)
    return model, X, y


class Held:
    """An array-like whose conversion -- the first thing fit and predict do with X, inside the model's guard --
    waits until released: it holds the thread that passed it inside the model."""

    def __init__(self, X):
        self.X, self.entered, self.released = X, threading.Event(), threading.Event()

    def __array__(self, dtype=None, copy=None):
        self.entered.set()
        assert self.released.wait(60), "never released"
        return self.X if dtype is None else self.X.astype(dtype)


@contextmanager
def inside(model, op, X, y):
    """Run OPS[op] in another thread, held inside `model` for the duration of the with-block; then let it finish
    and re-raise anything it raised."""
    held, errors = Held(X), []

    def run():
        try:
            OPS[op](model, held, y)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert held.entered.wait(60), f"{op} never reached X"
        yield
    finally:
        held.released.set()
        thread.join(60)
    assert not thread.is_alive() and not errors, errors


@pytest.mark.parametrize("second", list(OPS))
def test_nothing_runs_on_a_model_while_it_trains(problem, second):
    model, X, y = problem
    with inside(model, "fit", X, y):
        before = model.params.copy()
        with pytest.raises(RuntimeError, match="in use by another thread"):
            OPS[second](model, X, y)
        assert model.params.tobytes() == before.tobytes()   # the refused call touched nothing
    OPS[second](model, X, y)   # and once the fit is over, the model is free again


@pytest.mark.parametrize("second", TRAINING)
def test_a_model_does_not_train_while_it_predicts(problem, second):
    model, X, y = problem
    with inside(model, "predict", X, y):
        with pytest.raises(RuntimeError, match="in use by another thread"):
            OPS[second](model, X, y)
        assert np.array_equal(model.predict(X), model.predict(X.copy()))   # reading alongside is fine


def test_a_partial_fit_refused_by_the_guard_sets_no_labels(rng):
    """partial_fit's classes become the model's only under the model's guard, once the call may proceed"""
    X, y = rng.standard_normal((64, 5)), np.arange(64) % 3
    model = fastnn.MLP([5, 8, 3], seed=0)
    with inside(model, "fit", X, y):
        with pytest.raises(RuntimeError, match="in use by another thread"):
            model.partial_fit(X, np.array(["a", "b", "c"])[y], classes=["a", "b", "c"])
        assert model.classes_ is None


def test_a_failed_fit_frees_the_model(problem):
    model, X, y = problem
    with pytest.raises(ValueError):
        model.fit(X[:, :2], y)
    with pytest.raises(FloatingPointError):
        model.fit(X * 1e30, y, optimizer=fastnn.optim.SGD(lr=1e30))
    with inside(model, "predict", X, y):
        pass
    model.fit(X, y, epochs=1)


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_concurrent_predictions_are_correct(rng, backend):
    """Two threads predicting with one model at once, on different rows, get what each gets alone: the same
    bits from the compiled kernels; within rounding from NumPy, whose BLAS may split a product differently
    when two threads call it at once (measured: 1 ulp)."""
    model = fastnn.MLP([50, 256, 256, 10], seed=0, backend=backend)
    Xs = [rng.standard_normal((500, 50)) for _ in range(2)]
    model.fit(Xs[0], np.arange(500) % 10, epochs=1)
    expected = [model.predict_proba(X) for X in Xs]
    same = np.array_equal if backend == "compiled" else lambda a, b: np.allclose(a, b, rtol=1e-5, atol=1e-7)
    start, wrong = threading.Barrier(2), []

    def work(k):
        start.wait()
        wrong.extend(k for _ in range(30) if not same(model.predict_proba(Xs[k]), expected[k]))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong, f"{len(wrong)} of 60 concurrent predictions differ from the same prediction alone"


def train(seed, X, y, threads):
    model = fastnn.MLP([X.shape[1], 64, 64, 4], seed=seed, dropout=0.1, num_threads=threads)
    model.fit(X, y, epochs=8, batch_size=16, optimizer=fastnn.optim.Adam(lr=1e-3))
    return model.params


@pytest.mark.parametrize("threads", [1, 2])
def test_models_trained_at_once_match_models_trained_in_turn(rng, threads):
    X = rng.standard_normal((1000, 20))
    y = np.argmax(X[:, :4], axis=1)
    alone = [train(seed, X, y, threads) for seed in (1, 2)]
    start, spans, results = threading.Barrier(2), {}, {}

    def work(seed):
        start.wait()
        t0 = time.perf_counter()
        results[seed] = train(seed, X, y, threads)
        spans[seed] = (t0, time.perf_counter())

    workers = [threading.Thread(target=work, args=(seed,)) for seed in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert min(spans[1][1], spans[2][1]) > max(spans[1][0], spans[2][0]), "the two fits did not overlap"
    for seed, expected in zip((1, 2), alone):
        assert results[seed].tobytes() == expected.tobytes(), f"model {seed} trained differently alongside another"


def ticks_inside(call):
    """Run call() while another thread ticks every millisecond; the ticks that fell inside the middle 80% of the
    call, and the call's duration. A call that holds the GIL leaves no room for a single tick."""
    stop, ticks = threading.Event(), []

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    call()
    t1 = time.perf_counter()
    stop.set()
    ticker.join()
    margin = 0.1 * (t1 - t0)
    return sum(t0 + margin < t < t1 - margin for t in ticks), t1 - t0


def test_the_gil_is_released_during_a_kernel(rng):
    n = 2000
    x, W = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    b, out = np.zeros(n, np.float32), np.empty((n, n), np.float32)
    ticks, seconds = ticks_inside(lambda: fastnn.get_backend("compiled").raw.dense_forward(out, x, W, b))
    assert seconds > 0.02 and ticks >= 10, f"{ticks} ticks during a {seconds:.3f} s dense_forward"
    np.testing.assert_allclose(out[:3, :3], x[:3] @ W[:, :3], rtol=1e-3)


def test_the_gil_is_released_during_fit(rng):
    X = rng.standard_normal((16000, 32))
    model = fastnn.MLP([32, 128, 128, 4], seed=0)
    # enough epochs that the fit lasts well over 0.1 s even on a fast machine (one epoch can take ~10 ms)
    ticks, seconds = ticks_inside(lambda: model.fit(X, np.argmax(X[:, :4], axis=1), epochs=30, batch_size=64))
    assert seconds > 0.02 and ticks >= 10, f"{ticks} ticks during a {seconds:.3f} s fit"

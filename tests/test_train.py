"""The compiled whole-epoch loop: against its NumPy twin, against the per-batch path, across thread counts,
and every training feature it carries (sample and class weights, dropout, clipping, divergence)."""
import pickle
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import _train
from fastnn.mlp import LOSSES

OPTIMIZERS = {
    "sgd": lambda: fastnn.optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: fastnn.optim.Adam(lr=1e-2, amsgrad=True, weight_decay=1e-3),
    "adamw": lambda: fastnn.optim.AdamW(lr=1e-2),
    "rmsprop": lambda: fastnn.optim.RMSprop(lr=1e-3, momentum=0.5, centered=True),
    "adagrad": lambda: fastnn.optim.Adagrad(lr=0.05, lr_decay=1e-3),
}


def problem(rng, loss, n=90, n_in=5, n_out=3):
    X = rng.standard_normal((n, n_in))
    if loss == "cross_entropy":
        y = rng.permutation(np.arange(n) % n_out)
    elif loss == "binary_cross_entropy":
        y = (rng.random((n, n_out)) < 0.4).astype(float)
    else:
        y = rng.standard_normal((n, n_out))
    return X, y


def model(backend, loss, dtype="float64", **kw):
    kw.setdefault("dropout", 0.0)
    return fastnn.MLP([5, 12, 7, 3], activation="tanh", loss=loss, dtype=dtype, seed=11, backend=backend, **kw)


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("features", ["plain", "weights+dropout+clip"])
def test_compiled_epoch_matches_numpy_twin(rng, loss, opt, features):
    X, y = problem(rng, loss)
    extra = {}
    kw = {}
    if features != "plain":
        extra = dict(sample_weight=rng.uniform(0.2, 2.0, len(X)), clip_grad_norm=0.5)
        kw = dict(dropout=[0.3, 0.1])
    fitted = []
    for backend in ("compiled", "numpy"):
        m = model(backend, loss, **kw)
        h = m.fit(X, y, epochs=3, batch_size=16, optimizer=OPTIMIZERS[opt](), **extra)
        fitted.append((m, h))
    (a, ha), (b, hb) = fitted
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-11)
    for key in ha.history:
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-9, err_msg=key)
    assert a.optimizer_.step_count == b.optimizer_.step_count == 3 * 6


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_whole_epoch_path_equals_per_batch_path(rng, backend, loss):
    X, y = problem(rng, loss, n=50)
    w = rng.uniform(0.5, 1.5, len(X))
    a, b = model(backend, loss, dropout=0.2), model(backend, loss, dropout=0.2)
    a.fit(X, y, epochs=1, batch_size=8, shuffle=False, optimizer=fastnn.optim.Adam(lr=1e-2), sample_weight=w)
    opt = fastnn.optim.Adam(lr=1e-2)
    for lo in range(0, 50, 8):
        b.train_step(X[lo:lo + 8], y[lo:lo + 8], opt, sample_weight=w[lo:lo + 8])
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10, atol=1e-12)


# (layers, dtype, batch, fit options): each big enough for the training step's parallel region on 2 threads
# (3 B sum I O >= 2^22 multiply-adds).
# The second has a 12-wide layer (one GEMM panel: split by rows), a 40-wide one (3 panels: rows on 2 threads,
# columns on 3) and a 3-wide output (BLAS), a last batch of 88 rows, no clipping (the step checks the gradients);
# in float64 every product is BLAS's, in stripes.
PARALLEL_STEP_CASES = [
    ([40, 300, 200, 10], "float32", 128, dict(clip_grad_norm=1.0), dict(dropout=0.1)),
    ([500, 12, 40, 3], "float32", 256, dict(optimizer=lambda: fastnn.optim.Adam(lr=1e-2)), dict(activation="relu")),
    ([500, 12, 40, 3], "float64", 256, dict(clip_grad_norm=0.5), dict(dropout=[0.2, 0.0], activation="gelu")),
]


@pytest.mark.parametrize("layers, dtype, batch, fit_kw, model_kw", PARALLEL_STEP_CASES)
def test_same_bits_on_one_two_and_three_threads(rng, layers, dtype, batch, fit_kw, model_kw):
    """Every product, reduction and element-wise pass is split the same way whatever the thread count (fastnn's
    GEMM by whole micro-tiles, BLAS in stripes fixed by the shape, blocked norms)."""
    X = rng.standard_normal((600, layers[0])).astype(dtype)
    y = rng.integers(0, layers[-1], 600)
    results = []
    for threads in (1, 2, 3):
        kw = {k: v() if callable(v) else v for k, v in fit_kw.items()}   # a fresh optimizer each
        m = fastnn.MLP(layers, seed=5, num_threads=threads, dtype=dtype, **model_kw)
        m.fit(X, y, epochs=2, batch_size=batch, **kw)
        results.append((m.params.tobytes(), m.predict_proba(X).tobytes(), m.optimizer_.step_count))
    assert results[0][2] == 2 * -(-600 // batch)
    assert results[0] == results[1] == results[2]


# float32 Adam for comparing fits with the NumPy twin: with the default eps=1e-8, Adam's first step,
# lr * g / (|g| + eps), turns a gradient that is cancellation noise (|g| ~ 1e-9 in float32, of either sign in
# either backend) into a step of up to lr, so 2 fits in 300 had one weight up to 3x outside rtol 1e-4; with 1e-4 the
# step moves at most lr / eps = 10 times the gradient's error (the worst of 300 seeds: 8% of the tolerance;
# bench/twin_drift.py measures both)
def adam_for_float32_twin():
    return fastnn.optim.Adam(eps=1e-4)


# (layers, dtype, batch, fit options, model options): small steps, run data-parallel in 2 row shards
# (csrc/_train.pyx's _train_shards_part): last batches of 24 rows (2 shards of 12) and of 3 (one shard), a 3-wide
# output (BLAS), dropout, sample weights, clipping
SHARDED_STEP_CASES = [
    ([64, 128, 10], "float32", 64, dict(optimizer=adam_for_float32_twin), dict(activation="relu")),
    ([30, 64, 3], "float32", 48, dict(clip_grad_norm=0.5, sample_weight=True, optimizer=adam_for_float32_twin),
     dict(dropout=0.2)),
    ([20, 40, 9, 3], "float64", 199, dict(optimizer=lambda: fastnn.optim.RMSprop(lr=1e-3, momentum=0.5)),
     dict(dropout=[0.1, 0.3], activation="gelu")),
]


@pytest.mark.parametrize("layers, dtype, batch, fit_kw, model_kw", SHARDED_STEP_CASES)
def test_sharded_step_same_bits_on_any_thread_count_and_matches_numpy_twin(rng, layers, dtype, batch, fit_kw,
                                                                           model_kw):
    """The row shards are the batch's, not the threads': the same bits on 1, 2 and 3 threads; and the NumPy twin,
    which sums in the same shards, agrees to rounding"""
    X = rng.standard_normal((600, layers[0])).astype(dtype)
    y = rng.integers(0, layers[-1], 600)
    w = rng.uniform(0.2, 2.0, 600)
    assert _train.step_shards(np.array(layers, np.intc), batch) == 2
    results = []
    for backend, threads in (("compiled", 1), ("compiled", 2), ("compiled", 3), ("numpy", 1)):
        kw = {k: v() if callable(v) else v for k, v in fit_kw.items()}
        if kw.pop("sample_weight", False):
            kw["sample_weight"] = w
        m = fastnn.MLP(layers, seed=5, num_threads=threads, dtype=dtype, backend=backend, **model_kw)
        h = m.fit(X, y, epochs=2, batch_size=batch, **kw)
        results.append((m.params.copy(), m.predict_proba(X), h.history["loss"], h.history["accuracy"]))
    for other in results[1:3]:
        for a, b in zip(results[0], other):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    rtol = 1e-4 if dtype == "float32" else 1e-9
    for a, b in zip(results[0], results[3]):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("weighted", [False, True], ids=["counted", "weighted"])
def test_training_accuracy_matches_numpy_twin(rng, weighted):
    """The running training accuracy (counted in C a batch at a time; weighted when there are sample weights)"""
    X, y = rng.standard_normal((300, 6)), rng.integers(0, 4, 300)
    kw = dict(sample_weight=rng.uniform(0.2, 2.0, 300)) if weighted else {}
    accuracy = [fastnn.MLP([6, 10, 4], seed=1, backend=backend).fit(X, y, epochs=3, batch_size=32, **kw)
                .history["accuracy"] for backend in ("compiled", "numpy")]
    np.testing.assert_allclose(accuracy[0], accuracy[1], rtol=1e-12)
    assert 0.1 < min(accuracy[0]) and max(accuracy[0]) < 0.9      # neither none nor all of the rows


@pytest.mark.parametrize("layers", [[4, 16, 3], [64, 128, 10], [30, 64, 3], [784, 256, 128, 10], [5, 3]])
@pytest.mark.parametrize("batch", [1, 15, 16, 64, 128, 256])
def test_numpy_twin_cuts_the_same_shards(layers, batch):
    from fastnn.reference import train as twin
    sizes = np.array(layers, np.intc)
    assert twin.step_shards(sizes, batch) == _train.step_shards(sizes, batch)


def test_parallel_step_matches_numpy_twin(rng):
    """The 2-thread training step's region against the NumPy reference (float64, dropout, weights, clipping)"""
    X, y = rng.standard_normal((600, 500)), rng.integers(0, 3, 600)
    w = rng.uniform(0.2, 2.0, len(X))
    fitted = []
    for backend in ("compiled", "numpy"):
        m = fastnn.MLP([500, 12, 40, 3], activation="tanh", dropout=[0.3, 0.1], seed=2, backend=backend,
                       num_threads=2, dtype="float64")
        fitted.append(m.fit(X, y, epochs=2, batch_size=256, sample_weight=w, clip_grad_norm=0.5,
                            optimizer=fastnn.optim.RMSprop(lr=1e-3, momentum=0.5, centered=True)))
        fitted[-1] = (m, fitted[-1])
    (a, ha), (b, hb) = fitted
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-9)


def test_divergence_stops_with_the_last_finite_weights(rng):
    X = rng.standard_normal((64, 5))
    y = X[:, :3] * 1e20
    m = model("compiled", "mse", dtype="float32")
    with pytest.raises(FloatingPointError, match=r"epoch \d+, batch \d+"):
        m.fit(X, y, epochs=20, batch_size=16, optimizer=fastnn.optim.SGD(lr=1e10))
    assert np.all(np.isfinite(m.params))
    m2 = model("compiled", "mse", dtype="float32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = m2.fit(X, y, epochs=20, batch_size=16, optimizer=fastnn.optim.SGD(lr=1e10), on_divergence="warn")
    assert any("non-finite" in str(c.message) for c in caught)
    assert len(history.epoch) < 20 and np.all(np.isfinite(m2.params))


# (layers, batch): a step in row shards (small params), and one shared out kernel by kernel over params of 4.2 MB
# in float32 (8.4 in float64), past the size whose checkpoint is streamed out
STOPPED_FIT_CASES = [([6, 40, 3], 64), ([256, 2048, 256, 4], 32)]


@pytest.mark.parametrize("layers, batch", STOPPED_FIT_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("good_batches", [2, 3])
def test_a_stopped_fit_keeps_the_last_good_step(rng, layers, batch, dtype, threads, good_batches):
    """The compiled steps update params and state in place, from a checkpoint taken as the call began: after an
    odd or even number of good steps and a step that overflows (after some of its blocks were updated), the model
    holds exactly the params and optimizer state of a fit on the good batches alone (restored and run again), as
    the per-batch path gives them. In float64 those match the NumPy twin's (in float32 Adam's m / sqrt(v) turns
    the last-bit differences of tiny gradients into ones of 10% of the update)."""
    X = rng.standard_normal(((good_batches + 1) * batch, layers[0])).astype(dtype)
    y = rng.integers(0, layers[-1], len(X))
    # the last batch's hidden activations ~1e4 sqrt(max float): a finite loss and gradient, whose square overflows
    # Adam's second moment, half-way through the step
    X[good_batches * batch:] = np.sign(X[good_batches * batch:]) * 1e4 * np.sqrt(np.finfo(dtype).max)
    fitted = []
    for backend, rows in (("compiled", len(X)), ("compiled", good_batches * batch), ("numpy", good_batches * batch)):
        m = fastnn.MLP(layers, seed=4, dtype=dtype, backend=backend, num_threads=threads)
        opt = fastnn.optim.Adam(lr=1e-2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m.fit(X[:rows], y[:rows], epochs=1, batch_size=batch, shuffle=False, optimizer=opt,
                  on_divergence="warn")
        assert [str(w.message)[:40] for w in caught] == (["the optimizer step made the weights or i"]
                                                         if rows == len(X) else [])
        fitted.append((m.params.copy(), [s.copy() for s in opt.state.values()], opt.step_count))
    (stopped, stopped_state, stopped_steps), (good, good_state, good_steps), (twin, _, _) = fitted
    m, opt = fastnn.MLP(layers, seed=4, dtype=dtype, num_threads=threads), fastnn.optim.Adam(lr=1e-2)
    for lo in range(0, good_batches * batch, batch):   # the per-batch path: a call (and a swap back) per step
        m.train_step(X[lo:lo + batch], y[lo:lo + batch], opt)
    assert stopped_steps == good_steps == good_batches
    assert stopped.tobytes() == good.tobytes() == m.params.tobytes()
    assert len(stopped_state) == 2 and all(a.tobytes() == b.tobytes() for a, b in zip(stopped_state, good_state))
    assert not np.array_equal(stopped, fastnn.MLP(layers, seed=4, dtype=dtype).params)   # it did train
    if dtype == "float64":
        np.testing.assert_allclose(stopped, twin, rtol=1e-9, atol=1e-11)


def test_class_weight_equals_the_matching_sample_weight(rng):
    X, y = problem(rng, "cross_entropy")
    labels = np.array(["a", "b", "c"])[y]
    a, b = model("compiled", "cross_entropy"), model("compiled", "cross_entropy")
    a.fit(X, labels, epochs=2, class_weight={"a": 3.0, "c": 0.5})
    b.fit(X, labels, epochs=2, sample_weight=np.array([3.0, 1.0, 0.5])[y])
    np.testing.assert_array_equal(a.params, b.params)
    c = model("compiled", "cross_entropy")
    c.fit(X, labels, epochs=2, class_weight="balanced")
    assert not np.array_equal(a.params, c.params)


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_weighted_gradient_matches_finite_differences(rng, backend):
    X, y = problem(rng, "cross_entropy", n=9)
    w = rng.uniform(0.1, 3.0, 9)
    m = model(backend, "cross_entropy")
    _, dW, db = m.loss_and_gradients(X, y, sample_weight=w)
    analytic = np.concatenate([np.concatenate([a.ravel(), b]) for a, b in zip(dW, db)])
    h = 1e-5
    for i in rng.choice(m.n_params, 25, replace=False):
        saved = m.params[i]
        m.params[i] = saved + h
        up = m.loss_and_gradients(X, y, sample_weight=w)[0]
        m.params[i] = saved - h
        down = m.loss_and_gradients(X, y, sample_weight=w)[0]
        m.params[i] = saved
        assert abs((up - down) / (2 * h) - analytic[i]) < 1e-7 * max(1, abs(analytic[i]))


def test_dropout_is_seeded_and_off_in_predict(rng):
    X, y = problem(rng, "cross_entropy")
    a, b = model("compiled", "cross_entropy", dropout=0.5), model("compiled", "cross_entropy", dropout=0.5)
    plain = model("compiled", "cross_entropy")
    for m in (a, b, plain):
        m.fit(X, y, epochs=2, batch_size=16)
    np.testing.assert_array_equal(a.params, b.params)            # same seed, same masks
    assert not np.allclose(a.params, plain.params)              # dropout changed training
    twin = model("compiled", "cross_entropy")
    twin.params[:], twin.classes_ = a.params, a.classes_
    np.testing.assert_array_equal(a.predict_proba(X), twin.predict_proba(X))   # no dropout in predict
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(X))


def test_dropout_keeps_the_expected_fraction(backend):
    out, mask = np.empty((400, 250)), np.empty((400, 250))
    x = np.ones((400, 250))
    backend.dropout_forward(out, mask, x, 0.3, 1234, 7)
    kept = np.mean(mask > 0)
    assert abs(kept - 0.7) < 0.01                                # 100,000 draws: sd 0.0015
    np.testing.assert_allclose(out[mask > 0], 1 / 0.7)
    other = np.empty_like(mask)
    backend.dropout_forward(np.empty_like(out), other, x, 0.3, 1234, 8)
    assert not np.array_equal(mask, other)                       # another stream, another mask


def test_clipping_bounds_the_update(rng):
    X, y = problem(rng, "mse")
    m = model("compiled", "mse")
    before = m.params.copy()
    m.fit(X, 100 * y, epochs=1, batch_size=90, shuffle=False, optimizer=fastnn.optim.SGD(lr=1.0),
          clip_grad_norm=0.25)
    assert np.linalg.norm(m.params - before) <= 0.25 * (1 + 1e-9)


def test_warm_start_and_partial_fit_carry_on(rng):
    X, y = problem(rng, "cross_entropy")
    a = model("compiled", "cross_entropy")
    a.fit(X, y, epochs=2, batch_size=16, shuffle=False)
    steps = a.optimizer_.step_count
    a.fit(X, y, epochs=1, batch_size=16, shuffle=False, warm_start=True)
    assert a.optimizer_.step_count == steps + 6 and a.n_iter_ == 3
    b = model("compiled", "cross_entropy")
    b.fit(X, y, epochs=3, batch_size=16, shuffle=False)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12)     # 2 + 1 warm epochs == 3 epochs
    c = model("compiled", "cross_entropy")
    c.partial_fit(X[:40], y[:40], classes=[0, 1, 2])
    c.partial_fit(X[40:], y[40:])
    assert c.n_iter_ == 2 and list(c.classes_) == [0, 1, 2]
    refit = model("compiled", "cross_entropy")
    refit.fit(X, y, epochs=3, batch_size=16, shuffle=False)
    refit.fit(X, y, epochs=3, batch_size=16, shuffle=False)      # no warm start: from the seed's weights again
    np.testing.assert_allclose(refit.params, b.params, rtol=1e-12)


def test_validation_early_stopping_and_schedule(rng):
    X = rng.standard_normal((120, 5))
    y = rng.integers(0, 3, 120)                                  # noise: validation loss soon rises
    m = fastnn.MLP([5, 64, 64, 3], seed=3, dtype="float64")
    schedule = fastnn.schedules.StepLR(step_size=2, gamma=0.5)
    h = m.fit(X, y, epochs=200, batch_size=8, optimizer=fastnn.optim.Adam(lr=1e-2), validation_split=0.25,
              early_stopping=True, patience=4, callbacks=[schedule])
    val = h.history["val_loss"]
    best = int(np.argmin(val))
    assert len(val) == best + 5 < 200                            # stopped after patience epochs without progress
    np.testing.assert_allclose(h.history["lr"], [1e-2 * 0.5 ** (e // 2) for e in range(len(val))])
    assert m.evaluate(*_held_out(m, X, y))["loss"] == pytest.approx(val[best], rel=1e-9)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}


def _held_out(m, X, y):
    """The validation rows of the last fit, re-drawn from the model's split generator's state before it."""
    from fastnn.training import stratified_split
    rng = np.random.default_rng(np.random.SeedSequence(3).spawn(4)[2])
    _, val = stratified_split(y, 0.25, rng)
    return X[val], y[val]


def test_progress_bar_writes_one_line_per_epoch_off_a_terminal(rng, capsys):
    X, y = problem(rng, "cross_entropy")
    model("compiled", "cross_entropy").fit(X, y, epochs=3, verbose=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 3 and all("loss" in line for line in lines) and "\r" not in "".join(lines)


def test_pickle_round_trip(rng):
    X, y = problem(rng, "cross_entropy")
    m = model("compiled", "cross_entropy")
    m.fit(X, y, epochs=2)
    clone = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(clone.predict_proba(X), m.predict_proba(X))
    assert np.shares_memory(clone.weights[0], clone.params)
    clone.fit(X, y, epochs=1, warm_start=True)                   # and it still trains


def test_raw_loop_refuses_inconsistent_buffers(rng):
    X, y = problem(rng, "cross_entropy", n=20)
    m = model("compiled", "cross_entropy")
    m.fit(X, y, epochs=1)
    from fastnn.mlp import _EpochBuffers
    state = m.optimizer_.state_buffers(m.params)
    buf = _EpochBuffers(m, 8, 3, state)
    args = lambda order, classes, pre, saved=buf.saved, shard_grads=buf.shard_grads: (  # noqa: E731
        m.params, m.grads, *state, np.ascontiguousarray(X), classes, None, None, order, buf.xb, buf.cb, buf.tb,
        buf.wb, pre, buf.post, buf.dpre, buf.dpost, buf.mask, buf.dropped, saved, buf.partial, buf.metric,
        shard_grads, buf.shard_metric, m._sizes, m._offsets, m._starts, 4, 0.0, 0, 1.0, np.zeros(2),
        m.optimizer_.kernel_hyper(), 0, 3, 0, 0, 1, 0.0, 1)
    good_order, good_classes = np.arange(20, dtype=np.int64), y.astype(np.int64)
    with pytest.raises(ValueError, match="order"):
        _train.train_batches(*args(good_order * 2, good_classes, buf.pre))
    with pytest.raises(ValueError, match="class index"):
        _train.train_batches(*args(good_order, good_classes + 3, buf.pre))
    with pytest.raises(ValueError, match="saved"):      # Adam's params and 2 moments need 3 P
        _train.train_batches(*args(good_order, good_classes, buf.pre, buf.saved[:2 * m.n_params]))
    with pytest.raises(ValueError, match="pre"):
        _train.train_batches(*args(good_order, good_classes, buf.pre[:10]))
    wide = fastnn.MLP([5, 1000, 3], seed=0, dtype="float64")     # its batches of 16 run in 2 row shards
    wide.fit(X, y, epochs=1, batch_size=16)
    state = wide.optimizer_.state_buffers(wide.params)
    buf = _EpochBuffers(wide, 16, 3, state)
    assert _train.step_shards(wide._sizes, 16) == 2 and buf.shard_grads.size == wide.n_params
    with pytest.raises(ValueError, match="shard_grads"):   # the second shard's gradient
        _train.train_batches(
            wide.params, wide.grads, *state, np.ascontiguousarray(X), good_classes, None, None, good_order, buf.xb,
            buf.cb, buf.tb, buf.wb, buf.pre, buf.post, buf.dpre, buf.dpost, buf.mask, buf.dropped, buf.saved,
            buf.partial, buf.metric, buf.shard_grads[:-1], buf.shard_metric, wide._sizes, wide._offsets,
            wide._starts, 1, 0.0, 0, 1.0, np.zeros(1), wide.optimizer_.kernel_hyper(), 0, 2, 0, 0, 1, 0.0, 1)

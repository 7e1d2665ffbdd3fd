"""Callbacks on a fake model with hand-fed logs: early stopping, history and its plot, the progress bar,
the callback list."""
import io
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import fastnn
from fastnn import callbacks
from fastnn.callbacks import Callback, CallbackList, EarlyStopping, History, LambdaCallback, ProgressBar


class FakeModel:
    """What callbacks touch on an MLP: the flat parameter buffer, the optimizer's lr, stop_training."""

    def __init__(self, n_params=6, lr=0.1):
        self.params = np.zeros(n_params)
        self.optimizer_ = SimpleNamespace(lr=lr)
        self.stop_training = False


def drive(callbacks, model, logs_per_epoch):
    """Play fit's part for a callback or a list of them: begin, then per epoch set the params to the epoch's
    index (so a restored buffer tells which epoch it came from) and hand the epoch's logs over, until
    stop_training. Returns the epochs run."""
    cbs = CallbackList(callbacks if isinstance(callbacks, list) else [callbacks], model)
    model.stop_training = False
    cbs.on_train_begin({"epochs": len(logs_per_epoch), "samples": 100})
    run = 0
    for epoch, logs in enumerate(logs_per_epoch):
        cbs.on_epoch_begin(epoch, {})
        model.params[:] = epoch
        cbs.on_epoch_end(epoch, dict(logs))
        run += 1
        if model.stop_training:
            break
    cbs.on_train_end({})
    return run


def val_losses(values):
    return [{"loss": 1.0, "val_loss": v} for v in values]


# ---------------------------------------------------------------- EarlyStopping
@pytest.mark.parametrize("patience", [1, 3, 5])
def test_early_stopping_stops_after_exactly_patience_bad_epochs_and_restores_the_best(patience):
    values = [1.0, 0.8, 0.5] + [0.6 + 0.01 * k for k in range(10)]  # best at epoch 2, worse ever after
    model, stopper = FakeModel(), EarlyStopping(patience=patience)
    run = drive(stopper, model, val_losses(values))
    assert run == 3 + patience
    assert stopper.stopped_epoch == 2 + patience
    assert (stopper.best_epoch, stopper.best) == (2, 0.5)
    np.testing.assert_array_equal(model.params, 2.0)  # the buffer of epoch 2, in place


def test_early_stopping_patience_zero_stops_at_the_first_bad_epoch():
    model, stopper = FakeModel(), EarlyStopping(patience=0)
    assert drive(stopper, model, val_losses([1.0, 0.9, 0.95, 0.5])) == 3
    assert stopper.stopped_epoch == 2
    np.testing.assert_array_equal(model.params, 1.0)


def test_early_stopping_an_improvement_resets_the_count():
    values = [1.0, 0.9, 0.95, 0.96, 0.8, 0.85, 0.86, 0.87, 0.1]
    model, stopper = FakeModel(), EarlyStopping(patience=3)
    assert drive(stopper, model, val_losses(values)) == 8  # bad at 2, 3; better at 4; bad at 5, 6, 7: stop
    assert (stopper.best_epoch, stopper.stopped_epoch) == (4, 7)
    np.testing.assert_array_equal(model.params, 4.0)


def test_early_stopping_min_delta_counts_only_larger_improvements_on_the_best():
    # steps of 0.125 (exact in binary); an improvement is measured against the best, and must be *larger*
    values = [2.0, 1.875, 1.75, 1.625, 1.5]
    model, stopper = FakeModel(), EarlyStopping(patience=2, min_delta=0.25)
    assert drive(stopper, model, val_losses(values)) == 3  # 1.875 is 0.125 better, 1.75 exactly 0.25: neither
    assert (stopper.best_epoch, stopper.best, stopper.stopped_epoch) == (0, 2.0, 2)
    np.testing.assert_array_equal(model.params, 0.0)
    model, stopper = FakeModel(), EarlyStopping(patience=2, min_delta=0.2)
    assert drive(stopper, model, val_losses(values)) == 5  # 1.75 and then 1.5 beat the best by 0.25
    assert (stopper.best_epoch, stopper.stopped_epoch) == (4, None)


def test_early_stopping_mode_max_for_accuracy():
    stopper = EarlyStopping(monitor="val_accuracy", patience=3)
    assert stopper.mode == "max"
    logs = [{"val_accuracy": a} for a in [0.5, 0.7, 0.6, 0.65, 0.69, 0.99]]
    model = FakeModel()
    assert drive(stopper, model, logs) == 5
    assert (stopper.best_epoch, stopper.best) == (1, 0.7)
    np.testing.assert_array_equal(model.params, 1.0)
    assert EarlyStopping(monitor="r2").mode == "max"
    assert EarlyStopping(monitor="loss").mode == "min"
    assert EarlyStopping(monitor="val_accuracy", mode="min").mode == "min"  # explicit wins


def test_early_stopping_restores_the_best_at_train_end_unless_told_not_to():
    values = [1.0, 0.2, 0.5, 0.6]  # runs out of epochs before patience does
    model, stopper = FakeModel(), EarlyStopping(patience=10)
    assert drive(stopper, model, val_losses(values)) == 4
    assert stopper.stopped_epoch is None
    np.testing.assert_array_equal(model.params, 1.0)
    model, stopper = FakeModel(), EarlyStopping(patience=2, restore_best_weights=False)
    assert drive(stopper, model, val_losses([1.0, 0.2, 0.5, 0.6, 0.7])) == 4
    assert stopper.best_params is None
    np.testing.assert_array_equal(model.params, 3.0)  # the last epoch's, untouched


def test_early_stopping_starts_afresh_on_each_fit():
    model, stopper = FakeModel(), EarlyStopping(patience=1)
    drive(stopper, model, val_losses([0.1, 0.2]))
    assert drive(stopper, model, val_losses([5.0, 4.0, 4.5])) == 3  # 5.0 is a first best again, not worse than 0.1
    assert (stopper.best_epoch, stopper.best) == (1, 4.0)


def test_early_stopping_missing_key_names_it_and_the_available_keys():
    stopper = EarlyStopping(monitor="val_loss")
    with pytest.raises(ValueError, match=r"'val_loss'.*\['accuracy', 'loss'\]"):
        drive(stopper, FakeModel(), [{"loss": 1.0, "accuracy": 0.5}])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(patience=-1), ValueError, "patience"),
    (dict(patience=2.5), TypeError, "patience"),
    (dict(min_delta=-0.1), ValueError, "min_delta"),
    (dict(min_delta=float("nan")), ValueError, "min_delta"),
    (dict(mode="up"), ValueError, "mode"),
    (dict(monitor="val_f1"), ValueError, "mode='min' or 'max'"),
    (dict(monitor=3), TypeError, "monitor"),
])
def test_early_stopping_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        EarlyStopping(**kwargs)


# ---------------------------------------------------------------- CallbackList, LambdaCallback
def test_callback_list_calls_every_hook_of_every_callback_in_order():
    calls = []

    class Recorder(Callback):
        def __init__(self, name):
            self.name = name

        def on_train_begin(self, logs=None):
            calls.append((self.name, "train_begin", logs))

        def on_epoch_begin(self, epoch, logs=None):
            calls.append((self.name, "epoch_begin", epoch))

        def on_batches_end(self, epoch, batches_done, n_batches, logs=None):
            calls.append((self.name, "batches_end", epoch, batches_done, n_batches, logs["loss"]))

        def on_epoch_end(self, epoch, logs=None):
            calls.append((self.name, "epoch_end", epoch, logs["loss"]))

        def on_train_end(self, logs=None):
            calls.append((self.name, "train_end", logs))

    model = FakeModel()
    a, b = Recorder("a"), Recorder("b")
    cbs = CallbackList([a, b], model)
    assert a.model is model and b.model is model and len(cbs) == 2 and list(cbs) == [a, b]
    cbs.on_train_begin({"epochs": 1})
    cbs.on_epoch_begin(0)
    cbs.on_batches_end(0, 3, 10, {"loss": 0.5, "samples": 96})
    cbs.on_epoch_end(0, {"loss": 0.4})
    cbs.on_train_end()
    assert calls == [("a", "train_begin", {"epochs": 1}), ("b", "train_begin", {"epochs": 1}),
                     ("a", "epoch_begin", 0), ("b", "epoch_begin", 0),
                     ("a", "batches_end", 0, 3, 10, 0.5), ("b", "batches_end", 0, 3, 10, 0.5),
                     ("a", "epoch_end", 0, 0.4), ("b", "epoch_end", 0, 0.4),
                     ("a", "train_end", None), ("b", "train_end", None)]


def test_wants_batch_updates_only_when_a_callback_uses_them():
    class Batches(Callback):
        def on_batches_end(self, epoch, batches_done, n_batches, logs=None):
            pass

    model = FakeModel()
    assert not CallbackList(None, model).wants_batch_updates
    quiet = [History(), EarlyStopping(), LambdaCallback(on_epoch_end=print)]
    assert not CallbackList(quiet, model).wants_batch_updates
    assert CallbackList([History(), Batches()], model).wants_batch_updates
    assert CallbackList([LambdaCallback(on_batches_end=print)], model).wants_batch_updates
    assert not CallbackList([ProgressBar(io.StringIO())], model).wants_batch_updates  # nothing drawn off a TTY
    assert CallbackList([ProgressBar(TTYStream())], model).wants_batch_updates


def test_callback_list_rejects_what_is_not_a_callback_and_two_schedules():
    from fastnn.schedules import ExponentialLR, StepLR
    with pytest.raises(TypeError, match=r"callbacks\[1\] is a function"):
        CallbackList([History(), lambda epoch, logs: None], FakeModel())
    with pytest.raises(ValueError, match="at most one learning-rate schedule.*StepLR.*ExponentialLR"):
        CallbackList([StepLR(2), ExponentialLR(0.9)], FakeModel())


def test_lambda_callback_calls_the_functions_and_can_stop_training():
    seen = []

    def stop_at_two(epoch, logs):
        seen.append((epoch, logs["val_loss"]))
        if epoch == 2:
            cb.model.stop_training = True

    cb = LambdaCallback(on_epoch_end=stop_at_two, on_train_end=lambda logs: seen.append("end"))
    assert drive(cb, FakeModel(), val_losses([3.0, 2.0, 1.0, 0.5])) == 3
    assert seen == [(0, 3.0), (1, 2.0), (2, 1.0), "end"]
    with pytest.raises(TypeError, match="on_epoch_end must be callable"):
        LambdaCallback(on_epoch_end="print")


# ---------------------------------------------------------------- History
def test_history_records_every_key_per_epoch():
    logs = [{"loss": 1.0 / (e + 1), "accuracy": 0.5 + 0.1 * e, "val_loss": 2.0 / (e + 1),
             "val_accuracy": 0.4 + 0.1 * e, "lr": np.float32(0.01)} for e in range(3)]
    history = History()
    drive(history, FakeModel(), logs)
    assert history.epoch == [0, 1, 2]
    assert history.history == {k: [float(l[k]) for l in logs] for k in logs[0]}
    assert all(type(v) is float for values in history.history.values() for v in values)
    assert repr(history).startswith("History(epochs=3, last: loss=0.3333")


def test_history_lines_up_keys_that_come_and_go():
    history = History()
    drive(history, FakeModel(), [{"loss": 1.0}, {"loss": 0.5, "val_loss": 0.7}, {"val_loss": 0.6}])
    assert history.history["loss"][:2] == [1.0, 0.5] and math.isnan(history.history["loss"][2])
    assert math.isnan(history.history["val_loss"][0]) and history.history["val_loss"][1:] == [0.7, 0.6]


def filled_history(n_epochs=5):
    history = History()
    logs = [{"loss": 1.0 / (e + 1), "accuracy": 0.5 + 0.05 * e, "val_loss": 1.5 / (e + 1),
             "val_accuracy": 0.45 + 0.05 * e, "lr": 0.1 * 0.5 ** e} for e in range(n_epochs)]
    drive(history, FakeModel(), logs)
    return history


def test_history_plot_draws_train_and_val_curves_and_saves_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    history = filled_history()
    fig = history.plot()
    assert isinstance(fig, Figure)
    loss_ax, acc_ax = fig.axes  # "lr" is left out by default
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    for ax, name in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        assert len(ax.lines) == 2
        np.testing.assert_array_equal(ax.lines[0].get_ydata(), history.history[name])
        np.testing.assert_array_equal(ax.lines[1].get_ydata(), history.history["val_" + name])
        np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3, 4, 5])
    fig = history.plot(metrics=["loss", "lr"])
    assert [len(ax.lines) for ax in fig.axes] == [2, 1]
    path = tmp_path / "loss.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_plot_rejects_unknown_metrics_and_an_empty_history():
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match=r"no metric 'f1'.*\['loss', 'accuracy', 'lr'\]"):
        filled_history().plot(metrics=["f1"])
    with pytest.raises(ValueError, match="no epochs"):
        History().plot()


def test_history_plot_without_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install fastnn\[plot\]"):
        filled_history().plot()


# ---------------------------------------------------------------- ProgressBar
class TTYStream(io.StringIO):
    def isatty(self):
        return True


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def epoch_logs(e):
    return {"loss": 0.3 - 0.01 * e, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.88, "lr": 0.001}


def test_progress_bar_on_a_terminal_updates_one_line_in_place(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(callbacks, "perf_counter", clock)
    stream = TTYStream()
    bar = ProgressBar(stream, width=10)
    bar.set_model(FakeModel())
    bar.on_train_begin({"epochs": 20, "samples": 1000})
    bar.on_epoch_begin(2)
    clock.now += 0.2
    bar.on_batches_end(2, 20, 32, {"loss": 0.34123, "samples": 640})
    # 20 of 32 batches in 0.2 s: 12 more take 0.12 s; 640 samples in 0.2 s is 3,200 samples/s
    assert stream.getvalue() == "\rEpoch 3/20 [======>...] 640/1000 - ETA 0.1s - 3,200 samples/s - loss 0.3412"
    clock.now += 0.3
    bar.on_epoch_end(2, epoch_logs(0))
    final = stream.getvalue().split("\r")[-1]
    assert final == ("Epoch 3/20 [==========] 1000/1000 - 0.5s - 2,000 samples/s - loss 0.3000 - accuracy 0.9000"
                     " - val_loss 0.4000 - val_accuracy 0.8800 - lr 0.001\n")


def test_progress_bar_blanks_what_a_shorter_line_leaves_behind(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(callbacks, "perf_counter", clock)
    stream = TTYStream()
    bar = ProgressBar(stream)
    bar.on_train_begin({"epochs": 1, "samples": 10 ** 6})
    bar.on_epoch_begin(0)
    clock.now += 1e-3
    bar.on_batches_end(0, 1, 1000, {"loss": 123456.0, "samples": 1000})   # a long line: huge rate and loss
    clock.now += 10.0
    bar.on_batches_end(0, 2, 1000, {"loss": 1.0, "samples": 2000})
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second) >= len(first) and second.rstrip().endswith("loss 1.0000")


def test_progress_bar_off_a_terminal_writes_one_line_per_epoch():
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar.on_train_begin({"epochs": 3, "samples": 200})
    for e in range(3):
        bar.on_epoch_begin(e)
        bar.on_batches_end(e, 1, 2, {"loss": 0.5, "samples": 100})  # ignored: nothing to update in place
        bar.on_epoch_end(e, epoch_logs(e))
    text = stream.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 3
    for e, line in enumerate(lines):
        assert line.startswith(f"Epoch {e + 1}/3 [{'=' * 30}] 200/200 - ")
        assert "samples/s" in line and f"loss {0.3 - 0.01 * e:.4f}" in line and "val_accuracy 0.8800" in line


def test_progress_bar_defaults_to_stdout(capsys):
    bar = ProgressBar()
    bar.on_train_begin({"epochs": 2, "samples": 10})
    bar.on_epoch_begin(0)
    bar.on_epoch_end(0, {"loss": 0.25})
    assert capsys.readouterr().out.startswith("Epoch 1/2 [")


def test_progress_bar_formats_long_durations():
    assert [callbacks._format_seconds(s) for s in (0.44, 59.9, 125, 3725)] == ["0.4s", "59.9s", "2:05", "1:02:05"]


def test_progress_bar_rejects_bad_arguments():
    with pytest.raises(TypeError, match="write"):
        ProgressBar(stream=42)
    with pytest.raises(ValueError, match="width"):
        ProgressBar(io.StringIO(), width=0)


def test_early_stopping_restores_into_a_real_models_buffer():
    model = fastnn.MLP([3, 4, 2], seed=0, backend="numpy")
    drive(EarlyStopping(patience=2), model, val_losses([1.0, 0.5, 0.7, 0.8, 0.1]))
    for W, b in zip(model.weights, model.biases):  # the layer views see the restored epoch-1 buffer
        np.testing.assert_array_equal(W, 1.0)
        np.testing.assert_array_equal(b, 1.0)

"""Learning-rate schedules: the documented lr sequences (by hand and against torch.optim.lr_scheduler), driven
as callbacks on a fake model, with every fastnn optimizer, and ReduceLROnPlateau's patience, cooldown, min_lr."""
import math

import numpy as np
import pytest

import fastnn
from fastnn.callbacks import LambdaCallback
from fastnn.schedules import CosineAnnealingLR, ExponentialLR, ReduceLROnPlateau, StepLR
from test_callbacks import FakeModel, drive

BASE = 0.2


def lrs_by_epoch(schedule, n_epochs, base=BASE):
    """The lr the optimizer holds during each epoch when `schedule` runs as a callback."""
    model, seen = FakeModel(lr=base), []
    watch = LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(model.optimizer_.lr))
    drive([schedule, watch], model, [{"loss": 1.0}] * n_epochs)
    assert model.optimizer_.lr == base  # the base lr is back after training
    return seen


def torch_lrs(make_scheduler, n_epochs, base=BASE):
    torch = pytest.importorskip("torch")
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=base)
    scheduler = make_scheduler(optimizer, torch.optim.lr_scheduler)
    seen = []
    for _ in range(n_epochs):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


# ---------------------------------------------------------------- closed forms
def test_step_lr_by_hand():
    assert lrs_by_epoch(StepLR(3, gamma=0.5), 9, base=0.1) == [0.1] * 3 + [0.05] * 3 + [0.025] * 3


def test_exponential_lr_by_hand():
    np.testing.assert_allclose(lrs_by_epoch(ExponentialLR(0.9), 6), BASE * 0.9 ** np.arange(6), rtol=1e-15)


def test_cosine_lr_by_hand():
    T, eta = 10, 0.01
    lrs = lrs_by_epoch(CosineAnnealingLR(T, eta_min=eta), T + 5)
    expected = [eta + (BASE - eta) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(T + 1)]
    np.testing.assert_allclose(lrs[:T + 1], expected, rtol=1e-15)
    assert lrs[0] == BASE and lrs[T // 2] == pytest.approx((BASE + eta) / 2, rel=1e-15)
    assert lrs[T:] == [eta] * 5  # stays at eta_min after T_max


def test_cosine_warmup_by_hand():
    W, T, f, eta = 4, 12, 0.25, 0.0
    lrs = lrs_by_epoch(CosineAnnealingLR(T, eta_min=eta, warmup_epochs=W, warmup_start_factor=f), T + 2)
    np.testing.assert_allclose(lrs[:W + 1], [0.05, 0.0875, 0.125, 0.1625, 0.2], rtol=1e-15)  # base*f .. base
    np.testing.assert_allclose(lrs[W:T + 1], [BASE * (1 + math.cos(math.pi * s / (T - W))) / 2
                                              for s in range(T - W + 1)], rtol=1e-15, atol=1e-17)
    assert lrs[T:] == [eta] * 2


CLOSED_FORMS = {  # ours, and the torch.optim.lr_scheduler it follows
    "step": (lambda: StepLR(4, gamma=0.3), lambda opt, L: L.StepLR(opt, step_size=4, gamma=0.3)),
    "exponential": (lambda: ExponentialLR(0.85), lambda opt, L: L.ExponentialLR(opt, gamma=0.85)),
    "cosine": (lambda: CosineAnnealingLR(17, eta_min=0.003),
               lambda opt, L: L.CosineAnnealingLR(opt, T_max=17, eta_min=0.003)),
    "cosine_warmup": (lambda: CosineAnnealingLR(17, eta_min=0.003, warmup_epochs=5, warmup_start_factor=0.2),
                      lambda opt, L: L.SequentialLR(opt, [L.LinearLR(opt, start_factor=0.2, total_iters=5),
                                                          L.CosineAnnealingLR(opt, T_max=12, eta_min=0.003)],
                                                    milestones=[5])),
}


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_closed_forms_match_torch(name):
    ours, theirs = CLOSED_FORMS[name]
    n = 18  # through T_max, past which torch's cosine would rise again
    expected = torch_lrs(theirs, n)
    np.testing.assert_allclose(lrs_by_epoch(ours(), n), expected, rtol=1e-13)
    np.testing.assert_allclose([ours().lr_at(t, base_lr=BASE) for t in range(n)], expected, rtol=1e-13)


def test_lr_at_needs_a_base_before_training():
    schedule = StepLR(2)
    with pytest.raises(ValueError, match="base_lr"):
        schedule.lr_at(3)
    assert schedule.lr_at(3, base_lr=1.0) == pytest.approx(0.1, rel=1e-15)
    with pytest.raises(ValueError, match="epoch"):
        schedule.lr_at(-1, base_lr=1.0)


def test_a_schedule_starts_from_the_base_lr_on_every_fit():
    schedule = ExponentialLR(0.5)
    first, second = lrs_by_epoch(schedule, 4), lrs_by_epoch(schedule, 4)
    assert first == second and first[-1] == BASE * 0.125


OPTIMIZERS = [fastnn.optim.SGD, fastnn.optim.Adam, fastnn.optim.AdamW, fastnn.optim.RMSprop, fastnn.optim.Adagrad]


@pytest.mark.parametrize("optimizer_class", OPTIMIZERS, ids=lambda c: c.__name__)
def test_every_optimizer_steps_with_the_scheduled_lr(optimizer_class, rng):
    """A step after the schedule set lr equals a step of an optimizer built with that lr."""
    backend = fastnn.get_backend("numpy")
    params, grads = rng.standard_normal(11), rng.standard_normal(11)
    model = FakeModel()
    model.optimizer_ = optimizer_class(lr=0.05)
    schedule = StepLR(1, gamma=0.5)
    schedule.set_model(model)
    schedule.on_train_begin({})
    schedule.on_epoch_begin(3)
    assert model.optimizer_.lr == 0.05 / 8
    scheduled, reference = params.copy(), params.copy()
    model.optimizer_.step(scheduled, grads, backend)
    optimizer_class(lr=0.05 / 8).step(reference, grads, backend)
    np.testing.assert_array_equal(scheduled, reference)
    assert not np.array_equal(scheduled, params)


def test_schedule_without_an_optimizer_says_so():
    schedule = StepLR(2)
    schedule.set_model(object())
    with pytest.raises(RuntimeError, match="optimizer_"):
        schedule.on_train_begin({})


@pytest.mark.parametrize("make, error, match", [
    (lambda: StepLR(0), ValueError, "step_size"),
    (lambda: StepLR(2.5), TypeError, "step_size"),
    (lambda: StepLR(2, gamma=0.0), ValueError, "gamma"),
    (lambda: ExponentialLR(float("inf")), ValueError, "gamma"),
    (lambda: CosineAnnealingLR(0), ValueError, "T_max"),
    (lambda: CosineAnnealingLR(10, eta_min=-1.0), ValueError, "eta_min"),
    (lambda: CosineAnnealingLR(10, warmup_epochs=10), ValueError, "warmup_epochs"),
    (lambda: CosineAnnealingLR(10, warmup_epochs=2, warmup_start_factor=0.0), ValueError, "warmup_start_factor"),
    (lambda: CosineAnnealingLR(10, warmup_epochs=2, warmup_start_factor=1.5), ValueError, "warmup_start_factor"),
    (lambda: ReduceLROnPlateau(factor=1.0), ValueError, "factor"),
    (lambda: ReduceLROnPlateau(patience=-1), ValueError, "patience"),
    (lambda: ReduceLROnPlateau(cooldown=1.5), TypeError, "cooldown"),
    (lambda: ReduceLROnPlateau(min_lr=-1e-3), ValueError, "min_lr"),
    (lambda: ReduceLROnPlateau(monitor="val_thing"), ValueError, "mode='min' or 'max'"),
])
def test_schedules_reject_bad_hyperparameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ---------------------------------------------------------------- ReduceLROnPlateau
def plateau_lrs(schedule, values, key="val_loss", base=BASE):
    """The lr after each epoch's on_epoch_end, when `key` takes `values`."""
    model, seen = FakeModel(lr=base), []
    watch = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(model.optimizer_.lr))
    drive([schedule, watch], model, [{key: v} for v in values])
    assert model.optimizer_.lr == base
    return seen


def test_plateau_reduces_after_patience_epochs_without_improvement():
    # patience=2: two bad epochs are tolerated; the third reduces (torch's rule)
    lrs = plateau_lrs(ReduceLROnPlateau(factor=0.5, patience=2), [1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.6, 0.6])
    assert lrs == [0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05]


def test_plateau_min_delta_and_mode_max():
    lrs = plateau_lrs(ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1, min_delta=0.05),
                      [0.5, 0.54, 0.58, 0.7, 0.6], key="val_accuracy")  # +0.04 then +0.08 over the best
    assert lrs == [0.2, 0.2, 0.2, 0.2, 0.2]
    lrs = plateau_lrs(ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1, min_delta=0.05),
                      [0.5, 0.54, 0.53, 0.9], key="val_accuracy")
    assert lrs == [0.2, 0.2, 0.1, 0.1]


def test_plateau_cooldown():
    # patience 0: each bad epoch reduces, except the `cooldown` epochs after a reduction
    lrs = plateau_lrs(ReduceLROnPlateau(factor=0.5, patience=0, cooldown=2), [1.0] * 8)
    assert lrs == [0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]


def test_plateau_min_lr():
    lrs = plateau_lrs(ReduceLROnPlateau(factor=0.1, patience=0, min_lr=0.015), [1.0] * 5)
    assert lrs == [0.2, 0.2 * 0.1, 0.015, 0.015, 0.015]  # 0.002 would be below min_lr


def test_plateau_matches_torch(rng):
    torch = pytest.importorskip("torch")
    steps = rng.choice([-0.2, 0.0, 0.0, 0.01, 0.3], size=60)  # improvements, plateaus, tiny gains, setbacks
    values = (5.0 + np.cumsum(steps)).tolist()
    kwargs = dict(factor=0.5, patience=2, cooldown=1, min_lr=0.002)
    ours = plateau_lrs(ReduceLROnPlateau(min_delta=0.05, **kwargs), values)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", threshold=0.05,
                                                           threshold_mode="abs", **kwargs)
    theirs = []
    for v in values:
        optimizer.step()
        scheduler.step(v)
        theirs.append(optimizer.param_groups[0]["lr"])
    assert ours == theirs
    assert len(set(ours)) > 2  # the sequence did exercise reductions


def test_plateau_missing_key_names_it():
    with pytest.raises(ValueError, match=r"'val_loss'.*\['loss'\]"):
        plateau_lrs(ReduceLROnPlateau(), [1.0], key="loss")

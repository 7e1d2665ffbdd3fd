"""No leaks: resident memory stays flat over 1,000 fits, and the compiled kernels give back every reference they
take, on success and on the error path alike."""
import gc
import inspect
import os
import sys
import weakref

import numpy as np
import pytest

import fastnn
from fastnn import reference
from test_fuzz import scalars   # valid scalar arguments for every kernel

RSS_GROWTH_LIMIT = 5 << 20   # bytes; generous: a leak of one small model per fit would take ~50 MB
with open("/proc/self/maps") as _maps:   # closed at once: the wheel run's -W error turns a ResourceWarning into an error
    UNDER_ASAN = "libasan" in _maps.read()   # ASan's quarantine keeps freed memory resident
needs_plain_malloc = pytest.mark.skipif(UNDER_ASAN, reason="RSS is meaningless under AddressSanitizer")


def rss():
    """Resident set size in bytes (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_growth(step, warmup=100, repeats=1000):
    """The RSS growth over `repeats` calls of step(k), after `warmup` calls."""
    for k in range(warmup):
        step(k)
    gc.collect()
    before = rss()
    for k in range(repeats):
        step(k)
    gc.collect()
    return rss() - before


@needs_plain_malloc
def test_rss_is_flat_over_1000_fits(rng):
    X = rng.standard_normal((64, 4))
    y = np.array(["a", "b", "c", "d"])[np.arange(64) % 4]

    def step(k):
        model = fastnn.MLP([4, 16, 4], seed=k, dropout=0.1)
        model.fit(X, y, epochs=2, batch_size=16, optimizer=fastnn.optim.Adam(lr=1e-2),
                  validation_split=0.25 if k % 2 else 0.0)
        model.predict_proba(X)
        model.evaluate(X, y)
        model.train_step(X[:8], y[:8], fastnn.optim.SGD(lr=1e-3, momentum=0.9))

    growth = rss_growth(step)
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew {growth / 2**20:.1f} MiB over 1000 fits"


@needs_plain_malloc
def test_rss_is_flat_over_1000_refits_and_save_loads(rng, tmp_path):
    X, y = rng.standard_normal((64, 4)), rng.standard_normal(64)
    model = fastnn.MLP([4, 16, 1], loss="huber", seed=0)

    def step(k):
        model.fit(X, y, epochs=1, batch_size=8 + k % 8, warm_start=bool(k % 2), clip_grad_norm=1.0)
        model.save(tmp_path / "m.npz")
        fastnn.MLP.load(tmp_path / "m.npz").predict(X)

    growth = rss_growth(step)
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew {growth / 2**20:.1f} MiB over 1000 refits"


def test_a_fitted_model_and_its_data_are_freed(rng):
    X, y = rng.standard_normal((32, 3)), np.arange(32) % 2
    counts = sys.getrefcount(X), sys.getrefcount(y)
    model = fastnn.MLP([3, 5, 2], seed=0)
    model.fit(X, y, epochs=2, validation_data=(X, y))
    model.predict(X)
    model.score(X, y)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None, "something still holds the model"
    assert (sys.getrefcount(X), sys.getrefcount(y)) == counts, "the model kept a reference to its data"


def spec_arrays(kernel, rng, dtype=np.float64):
    """Valid arrays for every array argument of `kernel` (letters of size 3 to 5)."""
    sizes = {}
    arrays = {}
    for arg in kernel.__fastnn_spec__:
        shape = tuple(sizes.setdefault(d, 3 + len(sizes) % 3) for d in arg.dims)
        arrays[arg.name] = (np.zeros(shape, np.int64) if arg.index_of else rng.standard_normal(shape).astype(dtype))
    return arrays


@pytest.mark.parametrize("name", reference.KERNELS)
def test_kernels_give_back_every_reference(name, rng):
    """Refcounts of every array argument are unchanged after 200 calls of the raw compiled kernel, whether the
    call succeeds or fails its checks halfway through the arguments (Cython's error path)."""
    kernel = getattr(reference, name)
    compiled = getattr(fastnn.get_backend("compiled").raw, name)
    arrays = spec_arrays(kernel, rng)
    values = scalars(kernel)
    names = list(inspect.signature(kernel).parameters)
    args = [arrays[n] if n in arrays else values[n] for n in names]
    last = max(i for i, n in enumerate(names) if n in arrays)
    broken = list(args)
    broken[last] = args[last][..., :-1].copy()          # the last array one element short: checked last
    for call_args in (args, broken):
        held = [a for a in call_args if isinstance(a, np.ndarray)]
        counts = [sys.getrefcount(a) for a in held]
        for _ in range(200):
            try:
                compiled(*call_args)
            except (TypeError, ValueError):
                pass
        assert [sys.getrefcount(a) for a in held] == counts, f"{name} leaked references"

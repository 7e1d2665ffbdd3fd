"""Thread-count ownership and the OpenMP build switch."""
import os

import pytest

import fastnn


def test_set_and_get_num_threads():
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
        fastnn.set_num_threads(None)
        assert fastnn.get_num_threads() >= 1
    finally:
        fastnn.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match="num_threads"):
        fastnn.set_num_threads(bad)


@pytest.mark.parametrize("bad", [1.5, "2", True])
def test_non_integer_thread_counts_are_refused(bad):
    with pytest.raises(TypeError, match="num_threads"):
        fastnn.set_num_threads(bad)


@pytest.mark.skipif("FASTNN_EXPECT_OPENMP" not in os.environ, reason="set by CI for each build")
def test_build_matches_the_openmp_switch():
    expected = os.environ["FASTNN_EXPECT_OPENMP"] == "1"
    assert fastnn._threads.openmp_enabled() is expected
    if not expected:
        fastnn.set_num_threads(2)
        assert fastnn.get_num_threads() == 1
        fastnn.set_num_threads(None)


@pytest.mark.skipif(not fastnn._threads.openmp_enabled(), reason="built without OpenMP")
def test_threadpoolctl_sees_and_sets_fastnns_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        # other libraries may load their own OpenMP runtime (scikit-learn's wheels do): fastnn's is among them
        openmp = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"]
        assert any(i["num_threads"] == 1 for i in openmp)
        fastnn.set_num_threads(2)
        with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
            assert fastnn.get_num_threads() == 1
        assert fastnn.get_num_threads() == min(2, fastnn._config._available_cpus())
    finally:
        fastnn.set_num_threads(before)


@pytest.mark.parametrize("num_threads", [1, 2])
def test_blas_is_held_to_one_thread_during_fit_and_restored(num_threads):
    """fastnn's kernels call BLAS from inside their own OpenMP threads: BLAS's own pool must stay idle"""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy as np
    blas_counts = lambda: [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    seen = []
    record = fastnn.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(max(blas_counts())))
    rng = np.random.default_rng(0)
    model = fastnn.MLP([8, 16, 2], dtype="float64", num_threads=num_threads, seed=0)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        model.fit(rng.standard_normal((64, 8)), rng.integers(0, 2, 64), epochs=2, callbacks=[record])
        assert blas_counts() == [2] * len(blas_counts())   # put back after fit
    assert seen == [1, 1]


@pytest.mark.parametrize("num_threads", [1, 2])
def test_the_numpy_backend_gives_blas_the_models_thread_count(num_threads):
    """backend="numpy" has no threads of its own: its BLAS gets the model's count (and no more)"""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy as np
    seen = []
    record = fastnn.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(
        max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")))
    rng = np.random.default_rng(0)
    model = fastnn.MLP([8, 16, 2], num_threads=num_threads, seed=0, backend="numpy")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        model.fit(rng.standard_normal((64, 8)), rng.integers(0, 2, 64), epochs=2, callbacks=[record])
    assert seen == [num_threads] * 2


def test_blas_threads_nested_the_smallest_wins_and_the_last_restores():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastnn._config import blas_threads
    blas_counts = lambda: {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
    with threadpoolctl.threadpool_limits(limits=3, user_api="blas"):
        with blas_threads(2):
            assert blas_counts() == {2}
            with blas_threads(1):
                assert blas_counts() == {1}
            with blas_threads(3):
                assert blas_counts() == {1}   # never raised inside a block that lowered it
        assert blas_counts() == {3}


def test_single_threaded_blas_nests_and_restores_once():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastnn._config import single_threaded_blas
    blas_counts = lambda: [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        with single_threaded_blas():
            with single_threaded_blas():
                assert set(blas_counts()) == {1}
            assert set(blas_counts()) == {1}   # the outer block still holds it
        assert set(blas_counts()) == {2}

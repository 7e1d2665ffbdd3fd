"""Thread-count ownership and the OpenMP build switch."""
import os

import pytest

import fastnn


def test_set_and_get_num_threads():
    before = fastnn._config._num_threads
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

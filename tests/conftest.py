"""Shared fixtures: fresh random inputs (reproducible from the printed seed), both backends, both
float dtypes, 1 and 2 threads."""
import os
import secrets
import zlib

import numpy as np
import pytest

import fastnn

SESSION_SEED = int(os.environ.get("FASTNN_TEST_SEED", secrets.randbits(32)))


def pytest_report_header(config):
    return [f"fastnn test seed: {SESSION_SEED} (FASTNN_TEST_SEED={SESSION_SEED} replays this run)",
            f"fastnn OpenMP: {fastnn._threads.openmp_enabled()}, default threads: {fastnn.get_num_threads()}"]


@pytest.fixture
def rng(request):
    """A Generator seeded from the session seed and the test's id: fresh each run, replayable."""
    return np.random.default_rng([SESSION_SEED, zlib.crc32(request.node.nodeid.encode())])


@pytest.fixture(params=["compiled", "numpy"])
def backend(request):
    return fastnn.get_backend(request.param)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(request.param)
    yield request.param
    fastnn.set_num_threads(before)

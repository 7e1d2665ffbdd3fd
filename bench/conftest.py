"""The kernel benchmarks' harness: each case is checked against its NumPy twin, then timed on one backend.

Run: python -m pytest bench --benchmark-only   (see bench/README.md). Not collected by a plain `pytest`:
pyproject.toml's testpaths is tests/.
"""
import sys
from pathlib import Path

import pytest

import fastnn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import check_kernel  # noqa: E402  (the test suite's one comparison helper)

_verified = set()


def pytest_report_header(config):
    return [f"fastnn kernel benchmarks: {fastnn.get_num_threads()} thread(s) (set OMP_NUM_THREADS to change)"]


def _backend(name):
    try:
        return fastnn.get_backend(name)
    except ImportError as e:  # a kernel family still being built: nothing compiled to time
        pytest.skip(f"the {name} backend does not import: {e}")


@pytest.fixture
def time_kernel(benchmark):
    """time_kernel(backend_name, kernel, args, group): check the compiled kernel against the reference on
    copies of `args` (once per group), then time `backend.raw.<kernel>(**args)` (no validation layer)."""

    def run(backend_name, kernel, args, group):
        if not hasattr(fastnn.reference, kernel):
            pytest.skip(f"fastnn.reference has no {kernel}")
        compiled = _backend("compiled")
        if group not in _verified:
            check_kernel(compiled, kernel, args)
            _verified.add(group)
        benchmark.group = group
        benchmark.extra_info["backend"] = backend_name
        benchmark(getattr(_backend(backend_name).raw, kernel), **args)

    return run

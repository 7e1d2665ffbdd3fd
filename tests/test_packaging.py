"""What an installed wheel must be: run against each built wheel (FASTNN_EXPECT_WHEEL=1, set by
tools/build_wheel.sh and cibuildwheel's test-environment), and on every free-threaded interpreter."""
import os
import sys
import sysconfig
from pathlib import Path

import pytest

import fastnn

PACKAGE = Path(fastnn.__file__).resolve().parent
wheel_only = pytest.mark.skipif(os.environ.get("FASTNN_EXPECT_WHEEL") != "1", reason="set where a built wheel is tested")


@wheel_only
def test_fastnn_is_the_installed_wheel_not_a_source_tree():
    site = {Path(sysconfig.get_path(k)).resolve() for k in ("purelib", "platlib")}
    assert PACKAGE.parent in site, f"fastnn imported from {PACKAGE}, not from {site}"


@wheel_only
def test_the_wheel_is_lean():
    files = [p.relative_to(PACKAGE) for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    sources = [f for f in files if f.suffix in (".c", ".cpp", ".pyx", ".pxd", ".h") or f.name.startswith("test_")]
    assert not sources, f"sources or tests in the wheel: {sources}"
    assert len([f for f in files if f.name.startswith("_threads.") and f.suffix in (".so", ".pyd")]) == 1


@wheel_only
def test_the_kernels_run_on_the_openmp_runtime_bundled_in_the_wheel():
    import threadpoolctl

    assert fastnn._threads.openmp_enabled()
    runtimes = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"]
    # auditwheel and delvewheel bundle into site-packages/fastnn.libs, delocate into fastnn/.dylibs
    bundled = [i for i in runtimes if Path(i["filepath"]).resolve().parent in (PACKAGE.parent / "fastnn.libs",
                                                                                 PACKAGE / ".dylibs")]
    assert len(bundled) == 1, runtimes
    assert bundled[0]["num_threads"] == fastnn._threads.omp_max_threads()
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):  # the same runtime instance fastnn calls
        assert fastnn._threads.omp_max_threads() == 1


@pytest.mark.skipif(not sysconfig.get_config_var("Py_GIL_DISABLED"), reason="free-threaded CPython only")
def test_importing_fastnn_keeps_the_gil_disabled():
    # each extension must declare freethreading_compatible, else importing it turns the GIL back on
    assert os.environ.get("PYTHON_GIL") == "1" or not sys._is_gil_enabled()

"""Build fastnn's compiled kernels.

Every extension is `csrc/_<name>.pyx` -> `fastnn._<name>`; the kernels themselves are inline
`noexcept nogil` functions in `csrc/<name>.pxd`, so the epoch loop can inline them across files.

FASTNN_NO_OPENMP=1 builds without OpenMP: prange loops run serially and everything still works.
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EXTENSIONS = ["threads", "dense", "gemm", "activations", "losses", "optim", "dropout", "train", "clock"]
# Developer convenience: FASTNN_EXTENSIONS=dense,losses rebuilds only those (e.g. `python setup.py build_ext --inplace`).
if os.environ.get("FASTNN_EXTENSIONS"):
    EXTENSIONS = [e for e in EXTENSIONS if e in os.environ["FASTNN_EXTENSIONS"].split(",")]

# Per-compiler flags, one table. "base" always applies; "openmp" unless FASTNN_NO_OPENMP is set.
# -fno-math-errno lets GCC vectorise sqrt/exp loops (it changes no result, only errno);
# -ffp-contract=off: where FMA is baseline (aarch64), GCC fuses a * b + c in a vector loop and its scalar tail
# differently, so an element's bits depended on where a call's slice began (gemm.h asks for its FMAs itself);
# no -ffast-math: it would break NaN/inf handling and bitwise agreement with the reference.
GCC_BASE = ["-O3", "-fno-math-errno", "-ffp-contract=off", "-Wno-unused-function", "-Wno-unreachable-code"]
COMPILER_FLAGS = {
    "unix": {
        "base": GCC_BASE,
        "openmp_compile": ["-fopenmp"],
        "openmp_link": ["-fopenmp"],
    },
    "darwin": {  # Apple clang has no -fopenmp driver flag; libomp comes from Homebrew / the wheel build
        "base": GCC_BASE,   # clang takes GCC's flags
        "openmp_compile": ["-Xpreprocessor", "-fopenmp"],
        "openmp_link": ["-lomp"],
    },
    "msvc": {
        "base": ["/O2", "/fp:precise"],
        "openmp_compile": ["/openmp"],
        "openmp_link": [],
    },
}


def use_openmp():
    return os.environ.get("FASTNN_NO_OPENMP", "").lower() not in ("1", "true", "yes", "on")


class BuildExt(build_ext):
    """Apply COMPILER_FLAGS for the compiler actually in use."""

    def build_extensions(self):
        kind = self.compiler.compiler_type
        if kind == "unix" and sys.platform == "darwin":
            kind = "darwin"
        flags = COMPILER_FLAGS.get(kind, COMPILER_FLAGS["unix"])
        openmp = use_openmp()
        for ext in self.extensions:
            ext.extra_compile_args = flags["base"] + (flags["openmp_compile"] if openmp else [])
            ext.extra_link_args = flags["openmp_link"] if openmp else []
        super().build_extensions()


def extensions():
    from Cython.Build import cythonize

    exts = [
        Extension(f"fastnn._{name}", [f"csrc/_{name}.pyx"], include_dirs=["csrc"])
        for name in EXTENSIONS
    ]
    return cythonize(
        exts,
        include_path=["csrc"],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "embedsignature": True,
            # Declares the modules safe without the GIL (Py_mod_gil): else importing one on a free-threaded
            # CPython (the cp314t wheels) turns the GIL back on. See [tool.cibuildwheel] in pyproject.toml.
            "freethreading_compatible": True,
        },
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})

"""The kernel interface and its two implementations: "compiled" (Cython/OpenMP) and "numpy" (reference).

`get_backend(name)` returns a Backend whose attributes are the kernels, each validating its arrays
against the shared spec before it runs; `Backend.raw` is the unchecked module, for callers (the MLP)
that own their buffers and validated them once.
"""
from . import reference
from ._spec import checked

BACKENDS = ("compiled", "numpy")


class Backend:
    """One implementation of every kernel in `reference.KERNELS`, validated on each call."""

    def __init__(self, name):
        if name not in BACKENDS:
            raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
        if name == "numpy":
            from .reference import train
            raw = reference
        else:
            from . import _train as train
            from . import compiled as raw
        self.name = name
        self.raw = raw
        self.train = train  # the whole-network loops: train_batches, predict_rows
        for kernel_name in reference.KERNELS:
            setattr(self, kernel_name, checked(getattr(reference, kernel_name), getattr(raw, kernel_name)))

    def __repr__(self):
        return f"Backend({self.name!r})"


_cache = {}


def get_backend(name="compiled"):
    """The Backend called `name` ("compiled" or "numpy")."""
    if isinstance(name, Backend):
        return name
    if name not in _cache:
        _cache[name] = Backend(name)
    return _cache[name]

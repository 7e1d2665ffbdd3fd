"""fastnn's pure-NumPy reference backend.

Every compiled kernel has a twin here with the same name, signature and outputs: the definition the
compiled kernels are tested against, and the baseline the benchmarks compare with. Each kernel carries
its argument spec (fastnn._spec), which both backends validate against.
"""
from . import dense

_MODULES = [dense]
for _optional in ("activations", "losses", "optim", "gemm", "dropout"):
    try:
        _MODULES.append(__import__(f"{__name__}.{_optional}", fromlist=["__all__"]))
    except ImportError:  # pragma: no cover - kernels families still being written
        pass

KERNELS = [name for module in _MODULES for name in module.__all__]
for _module in _MODULES:
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)

__all__ = ["KERNELS"] + KERNELS

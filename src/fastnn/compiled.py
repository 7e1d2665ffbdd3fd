"""fastnn's compiled backend: the Cython/OpenMP kernels, gathered under the reference's names."""
from . import _dense
from . import reference as _reference

_MODULES = [_dense]
for _optional in ("_activations", "_losses", "_optim", "_gemm", "_dropout"):
    try:
        _MODULES.append(__import__(f"fastnn.{_optional}", fromlist=["x"]))
    except ImportError:  # pragma: no cover - kernel families still being written
        pass

KERNELS = list(_reference.KERNELS)
for _name in KERNELS:
    for _module in _MODULES:
        if hasattr(_module, _name):
            globals()[_name] = getattr(_module, _name)
            break
    else:
        raise ImportError(f"fastnn's compiled backend lacks the kernel {_name!r}")

__all__ = ["KERNELS"] + KERNELS

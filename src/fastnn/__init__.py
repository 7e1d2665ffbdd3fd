"""fastnn: multilayer perceptrons on the CPU with Cython/OpenMP kernels behind a small Python API."""
from . import callbacks, datasets, optim, schedules
from ._config import get_num_threads, set_num_threads
from .backend import get_backend
from .mlp import MLP, History

__version__ = "0.1.0"
__all__ = ["MLP", "History", "optim", "callbacks", "schedules", "datasets", "get_backend", "get_num_threads", "set_num_threads",
           "__version__"]


def __getattr__(name):
    # The estimators need scikit-learn, an optional dependency: import it only when they are asked for.
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import sklearn
        return getattr(sklearn, name)
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")

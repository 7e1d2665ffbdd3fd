"""fastnn: multilayer perceptrons on the CPU with Cython/OpenMP kernels behind a small Python API."""
from . import datasets, optim
from ._config import get_num_threads, set_num_threads
from .backend import get_backend
from .mlp import MLP, History

__version__ = "0.1.0"
__all__ = ["MLP", "History", "optim", "datasets", "get_backend", "get_num_threads", "set_num_threads",
           "__version__"]

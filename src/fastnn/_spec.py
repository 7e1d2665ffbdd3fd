"""The array arguments of every kernel: their dimension letters and roles, one table for both backends.

A kernel's spec is a list of strings "name:DIMS[:flags]":
    DIMS   comma-separated dimension letters (N batch, I in-features, O out-features, F features, P params)
    flags  "out"   written by the kernel (must be writeable)
           "opt"   may be None
           "index" an int64 array of class indices, each in [0, size of the letter after "<"), e.g. "index<O"
Float arrays of one call must share one dtype, float32 or float64; every array must be C-contiguous and
non-empty. Both backends run these checks before any work, so they fail the same way on the same input.
"""
import inspect
from functools import wraps

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Arg:
    __slots__ = ("name", "dims", "out", "optional", "index_of")

    def __init__(self, text):
        name, dims, *flags = text.split(":")
        self.name = name
        self.dims = tuple(dims.split(",")) if dims else ()
        flags = flags[0].split(",") if flags else []
        self.out = "out" in flags
        self.optional = "opt" in flags
        self.index_of = next((f.split("<")[1] for f in flags if f.startswith("index")), None)


def kernel(*arg_specs):
    """Attach a spec to a reference kernel: `@kernel("out:N,O:out", "x:N,I", "W:I,O", "b:O")`."""

    def attach(fn):
        fn.__fastnn_spec__ = [Arg(a) for a in arg_specs]
        return fn

    return attach


def validate(name, spec, bound):
    """Raise a clear TypeError/ValueError when the arrays in `bound` (name -> value) break `spec`."""
    sizes = {}
    where = {}
    float_dtype = None
    first_float = None
    for arg in spec:
        a = bound.get(arg.name)
        if a is None:
            if arg.optional:
                continue
            raise TypeError(f"{name}: argument '{arg.name}' is required, got None")
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: argument '{arg.name}' must be a numpy.ndarray, got {type(a).__name__}")
        if a.ndim != len(arg.dims):
            raise ValueError(f"{name}: '{arg.name}' must be {len(arg.dims)}-D ({', '.join(arg.dims)}), "
                             f"got shape {a.shape}")
        if arg.index_of is not None:
            if a.dtype != np.int64:
                raise TypeError(f"{name}: '{arg.name}' must hold int64 class indices, got dtype {a.dtype}")
        else:
            if a.dtype not in FLOAT_DTYPES:
                raise TypeError(f"{name}: '{arg.name}' must be float32 or float64, got dtype {a.dtype}")
            if float_dtype is None:
                float_dtype, first_float = a.dtype, arg.name
            elif a.dtype != float_dtype:
                raise TypeError(f"{name}: '{arg.name}' is {a.dtype} but '{first_float}' is {float_dtype}; "
                                f"all float arrays of one call must share a dtype")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name}: '{arg.name}' must be C-contiguous (np.ascontiguousarray makes it so)")
        if arg.out and not a.flags.writeable:
            raise ValueError(f"{name}: '{arg.name}' is written by the kernel but is read-only")
        if a.size == 0:
            raise ValueError(f"{name}: '{arg.name}' is empty (shape {a.shape})")
        for letter, size in zip(arg.dims, a.shape):
            if letter in sizes and sizes[letter] != size:
                other = where[letter]
                raise ValueError(f"{name}: shape mismatch on dimension {letter}: '{arg.name}' has {size} "
                                 f"({a.shape}) but '{other[0]}' has {sizes[letter]} ({other[1]})")
            sizes[letter] = size
            where[letter] = (arg.name, a.shape)
    for arg in spec:
        a = bound.get(arg.name)
        if arg.index_of is not None and a is not None:
            bound_ = sizes[arg.index_of]
            if a.min() < 0 or a.max() >= bound_:
                raise ValueError(f"{name}: '{arg.name}' holds class indices outside [0, {bound_}): "
                                 f"min {a.min()}, max {a.max()}")


def checked(ref_fn, impl_fn):
    """Wrap `impl_fn` so that it first validates its arrays against the spec of `ref_fn`."""
    spec = ref_fn.__fastnn_spec__
    signature = inspect.signature(ref_fn)
    name = ref_fn.__name__

    @wraps(ref_fn)
    def run(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{name}: {e}") from None
        validate(name, spec, bound.arguments)
        return impl_fn(*args, **kwargs)

    return run

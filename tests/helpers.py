"""One comparison helper, so that each kernel test is one line."""
import numpy as np

import fastnn

TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def assert_close(actual, expected, dtype, what="", tol=None):
    """Max-relative comparison at the dtype's tolerance; the message shows the worst mismatches."""
    tol = TOLERANCE[np.dtype(dtype)] if tol is None else tol
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    assert np.all(np.isfinite(actual) == np.isfinite(expected)), f"{what}: non-finite values differ"
    finite = np.isfinite(expected)
    err = np.abs(actual - expected)[finite]
    scale = max(float(np.abs(expected[finite]).max(initial=0.0)), np.finfo(np.float64).tiny)
    if err.size and err.max() > tol * scale:
        worst = np.argsort(err)[::-1][:5]
        rows = ", ".join(f"{actual[finite][i]:.17g} vs {expected[finite][i]:.17g}" for i in worst)
        raise AssertionError(f"{what}: max |diff| {err.max():.3g} > {tol:g} x max|expected| {scale:.3g}; "
                             f"worst: {rows}")


def check_kernel(backend, name, args, expected=None, tol=None):
    """Run kernel `name` on `backend` and on the reference twin, each on its own copies of `args`
    (a dict in signature order); compare every argument the kernel writes and the return value,
    and also against `expected` ({arg name or "return": value}) when given. Returns the backend's
    results as a dict."""
    ref = fastnn.get_backend("numpy")
    float_dtype = next(a.dtype for a in args.values() if isinstance(a, np.ndarray) and a.dtype.kind == "f")
    ours = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    twin = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    ours_ret = getattr(backend, name)(**ours)
    twin_ret = getattr(ref, name)(**twin)
    written = [a.name for a in getattr(fastnn.reference, name).__fastnn_spec__ if a.out and args.get(a.name) is not None]
    for k in written:
        assert ours[k].dtype == float_dtype, f"{name}: {k} changed dtype"
        assert_close(ours[k], twin[k], float_dtype, f"{name} [{backend.name}] {k} vs reference", tol)
    if twin_ret is not None or ours_ret is not None:
        assert_close(ours_ret, twin_ret, float_dtype, f"{name} [{backend.name}] return vs reference", tol)
    for k, value in (expected or {}).items():
        got = ours_ret if k == "return" else ours[k]
        assert_close(got, value, float_dtype, f"{name} [{backend.name}] {k} vs formula", tol)
    for k, v in args.items():  # inputs must come back untouched
        if isinstance(v, np.ndarray) and k not in written:
            np.testing.assert_array_equal(ours[k], v, err_msg=f"{name}: input {k} was modified")
    ours["return"] = ours_ret
    return ours


def on_thread_counts(compute, counts=(1, 2, 3)):
    """[compute() with fastnn on n threads, for n in counts], fastnn's thread count restored afterwards."""
    before = fastnn.get_num_threads()
    try:
        results = []
        for n in counts:
            fastnn.set_num_threads(n)
            results.append(compute())
        return results
    finally:
        fastnn.set_num_threads(before)

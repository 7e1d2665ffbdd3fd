"""Activation kernels against their NumPy twin, the formula and finite differences."""
import warnings

import numpy as np
import pytest
from scipy.special import expit, ndtr

import fastnn
from helpers import TOLERANCE, assert_close, check_kernel, on_thread_counts

SHAPES = [(1, 1), (1, 7), (5, 3), (33, 17), (300, 257)]  # N=1, odd sizes, and one past the parallel threshold
SLOPE = 0.2  # not the default 0.01, so that passing it through is tested
PARAMS = {"leaky_relu": {"negative_slope": SLOPE}}
EXTREMES = [-1e4, -80, -20.5, -1, 0, 1, 19.5, 20.5, 80, 1e4]

FORMULAS = {  # name: (f, f') in float64; scipy's expit and ndtr are exact in the tails
    "identity": (lambda x: x, np.ones_like),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
    "leaky_relu": (lambda x: np.where(x > 0, x, SLOPE * x), lambda x: np.where(x > 0, 1, SLOPE)),
    "sigmoid": (expit, lambda x: expit(x) * expit(-x)),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "gelu": (lambda x: x * ndtr(x), lambda x: ndtr(x) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)),
    "softplus": (lambda x: np.where(x > 20, x, np.logaddexp(0, x)), lambda x: np.where(x > 20, 1, expit(x))),
    "silu": (lambda x: x * expit(x), lambda x: expit(x) * (1 + x * expit(-x))),
}
NAMES = list(FORMULAS)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def forward_args(name, x):
    return dict(out=np.full(x.shape, np.nan, x.dtype), x=x, **PARAMS.get(name, {}))  # NaN: all must be written


def backward_args(name, dx, dout, x):
    out = FORMULAS[name][0](x.astype(np.float64)).astype(x.dtype)
    return dict(dx=dx, dout=dout, x=x, out=out, **PARAMS.get(name, {}))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_forward(backend, dtype, threads, rng, name, shape):
    x = 3 * randn(rng, shape, dtype)
    check_kernel(backend, f"{name}_forward", forward_args(name, x), {"out": FORMULAS[name][0](x.astype(np.float64))})


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_backward_accumulates(backend, dtype, threads, rng, name, shape):
    x, dout, dx0 = 3 * randn(rng, shape, dtype), randn(rng, shape, dtype), randn(rng, shape, dtype)
    term = dout.astype(np.float64) * FORMULAS[name][1](x.astype(np.float64))
    expect = dx0 + term
    # relative to the terms summed, not to a sum that cancelled (a one-element dx0 + term can land near 0)
    scale = (np.abs(dx0) + np.abs(term)).max() / max(np.abs(expect).max(), np.finfo(np.float64).tiny)
    tol = TOLERANCE[np.dtype(dtype)] * max(1.0, scale)
    check_kernel(backend, f"{name}_backward", backward_args(name, dx0, dout, x), {"dx": expect}, tol)


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_finite_differences(backend, rng, name):
    x = 2 * rng.standard_normal((7, 5))
    if name in ("relu", "leaky_relu"):  # the stencil must not straddle the kink at 0
        while (near := np.abs(x) < 1e-2).any():
            x[near] = 2 * rng.standard_normal(near.sum())
    dout = rng.standard_normal(x.shape)

    def f(z):
        out = np.empty_like(z)
        getattr(backend, f"{name}_forward")(out, z, **PARAMS.get(name, {}))
        return out

    # Fourth-order central differences of sum(f(x) * dout) along each x_ij: f is elementwise, so shifting
    # the whole array at once gives every partial derivative in one pass.
    h = 1e-3
    numeric = dout * (f(x - 2 * h) - 8 * f(x - h) + 8 * f(x + h) - f(x + 2 * h)) / (12 * h)
    dx = np.zeros_like(x)
    getattr(backend, f"{name}_backward")(dx, dout, x, f(x), **PARAMS.get(name, {}))
    assert_close(dx, numeric, np.float64, f"{name}_backward vs finite differences", tol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_stay_finite_and_exact(backend, dtype, rng, name):
    x = np.array([EXTREMES], dtype)
    dout = randn(rng, x.shape, dtype)
    f, df = FORMULAS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid RuntimeWarning in either backend
        out = check_kernel(backend, f"{name}_forward", forward_args(name, x))["out"]
        dx = check_kernel(backend, f"{name}_backward", backward_args(name, np.zeros_like(x), dout, x))["dx"]
    assert np.isfinite(out).all() and np.isfinite(dx).all()
    # Element by element (a zero dx keeps the tiny tails visible); atol only for what underflows, and in
    # backward for derivatives taken from out: out(1 - out) and 1 - out^2 are exact only to eps(out).
    x64, tol = x.astype(np.float64), TOLERANCE[np.dtype(dtype)]
    np.testing.assert_allclose(out, f(x64), rtol=tol, atol=1e-30)
    np.testing.assert_allclose(dx, dout * df(x64), rtol=tol, atol=np.finfo(dtype).eps * np.abs(dout).max())
    if name == "sigmoid":
        assert out[0, 0] == 0 and out[0, -1] == 1


def test_softplus_is_exact_to_a_few_ulps_everywhere(backend, dtype):
    # softplus(x) = log1p(exp(x)): a dense sweep through every regime of the kernels' log1p (Kahan's form via
    # log), from exp(x) far below an ulp of 1 to exp(x) = e^20, each element within 4 ulps of the exact value
    x = np.linspace(-80, 20, 20001).astype(dtype)
    out = check_kernel(backend, "softplus_forward", forward_args("softplus", x[None]))["out"][0]
    np.testing.assert_allclose(out, np.logaddexp(0, x.astype(np.float64)), rtol=4 * np.finfo(dtype).eps, atol=0)


def test_kinks_follow_pytorch(backend, dtype):
    """relu'(0) = 0; leaky_relu'(0) = negative_slope, whose default is 0.01."""
    x, dout = np.zeros((1, 3), dtype), np.array([[1, 2, -3]], dtype)
    dx = np.zeros_like(x)
    backend.relu_backward(dx, dout, x, x)
    np.testing.assert_array_equal(dx, 0)
    backend.leaky_relu_backward(dx, dout, x, x)
    np.testing.assert_array_equal(dx, dout * dtype(0.01))


@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates(backend, dtype, name):
    x = np.array([[np.nan, 1]], dtype)
    out = np.empty_like(x)
    getattr(backend, f"{name}_forward")(out, x)
    assert np.isnan(out[0, 0]) and np.isfinite(out[0, 1])


@pytest.mark.parametrize("name", NAMES)
def test_same_bits_on_any_thread_count(dtype, rng, name):
    compiled = fastnn.get_backend("compiled")
    x, dout = 3 * randn(rng, (300, 257), dtype), randn(rng, (300, 257), dtype)

    def pair():
        out, dx = np.empty_like(x), np.zeros_like(x)
        getattr(compiled, f"{name}_forward")(out, x)
        getattr(compiled, f"{name}_backward")(dx, dout, x, out)
        return out, dx
    results = on_thread_counts(pair)
    for out, dx in results[1:]:
        np.testing.assert_array_equal(out, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


@pytest.mark.parametrize("name", NAMES)
def test_read_only_inputs_are_accepted(backend, dtype, rng, name):
    x, dout = randn(rng, (4, 3), dtype), randn(rng, (4, 3), dtype)
    x.flags.writeable = dout.flags.writeable = False
    out, dx = np.empty_like(x), np.zeros_like(x)
    getattr(backend, f"{name}_forward")(out, x, **PARAMS.get(name, {}))
    out.flags.writeable = False
    getattr(backend, f"{name}_backward")(dx, dout, x, out, **PARAMS.get(name, {}))
    assert_close(dx, dout * FORMULAS[name][1](x.astype(np.float64)), dtype, name)


@pytest.mark.parametrize("way", ["forward", "backward"])
@pytest.mark.parametrize("name", NAMES)
def test_read_only_output_is_rejected(backend, name, way):
    x, written = np.ones((2, 3)), np.zeros((2, 3))
    written.flags.writeable = False
    args = (written, x) if way == "forward" else (written, x, x, x)
    with pytest.raises(ValueError, match="is written by the kernel but is read-only"):
        getattr(backend, f"{name}_{way}")(*args)


def test_compiled_checks_its_arguments_itself():
    """The raw compiled kernels, with no spec check in front, still refuse what would break memory."""
    raw = fastnn.get_backend("compiled").raw
    a, b = np.zeros((2, 3)), np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"relu_forward: shapes disagree: out \(2, 3\), x \(3, 2\)"):
        raw.relu_forward(a, b)
    with pytest.raises(ValueError, match=r"silu_backward: shapes disagree: .* out \(3, 2\)"):
        raw.silu_backward(a, a, a, b)
    with pytest.raises(ValueError, match="read-only"):
        ro = a.copy()
        ro.flags.writeable = False
        raw.relu_forward(ro, a)
    with pytest.raises(ValueError, match="contiguous"):
        raw.relu_forward(a, b.T)
    with pytest.raises(ValueError, match="dtype mismatch"):
        raw.relu_forward(a, a.astype(np.float32))


def test_mixed_dtypes_are_rejected(backend):
    with pytest.raises(TypeError, match="must share a dtype"):
        backend.relu_forward(np.empty((2, 3), np.float32), np.zeros((2, 3)))


class Float32Only(np.ndarray):
    """An array on which every ufunc must compute in float32: any upcast to float64 fails the test."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [a.view(np.ndarray) if isinstance(a, Float32Only) else a for a in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(a.view(np.ndarray) if isinstance(a, Float32Only) else a for a in kwargs["out"])
        result = getattr(ufunc, method)(*plain, **kwargs)
        assert result.dtype != np.float64, f"{ufunc.__name__} computed in float64"
        return result.view(Float32Only)


@pytest.mark.parametrize("name", NAMES)
def test_reference_computes_in_float32(rng, name):
    x, dout = (3 * randn(rng, (4, 5), np.float32).view(Float32Only) for _ in range(2))
    out, dx = np.empty_like(x), np.zeros_like(x)
    getattr(fastnn.reference, f"{name}_forward")(out, x)
    getattr(fastnn.reference, f"{name}_backward")(dx, dout, x, out)
    assert out.dtype == dx.dtype == np.float32

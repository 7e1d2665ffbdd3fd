"""Output activation + loss kernels against their NumPy twin, the formula, finite differences and extremes."""
import warnings

import numpy as np
import pytest
from scipy.special import expit, logsumexp, softmax

import fastnn
from helpers import TOLERANCE, assert_close, check_kernel, on_thread_counts

# (loss, extra kwargs): Huber at the default delta and at another one
LOSSES = [("cross_entropy", {}), ("binary_cross_entropy", {}), ("mse", {}), ("mae", {}), ("huber", {}),
          ("huber", {"delta": 0.6})]
each_loss = pytest.mark.parametrize("loss,kw", LOSSES, ids=["ce", "bce", "mse", "mae", "huber", "huber0.6"])
SHAPES = [(1, 1), (1, 2), (7, 1), (5, 2), (3, 17), (33, 10), (128, 10)]  # (N, O): N=1, O=1, O=2, odd sizes


def make_targets(rng, loss, N, O, dtype):
    if loss == "cross_entropy":
        return rng.integers(0, O, N)
    if loss == "binary_cross_entropy":
        return np.where(rng.random((N, O)) < 0.3, rng.integers(0, 2, (N, O)), rng.random((N, O))).astype(dtype)
    return rng.standard_normal((N, O)).astype(dtype)


def formula(loss, z, y, delta=1.0):
    """(output activation, mean loss) from the definition, in float64."""
    z = z.astype(np.float64)
    if loss == "cross_entropy":
        return softmax(z, axis=1), np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y])
    y = y.astype(np.float64)
    d, a = z - y, np.abs(z - y)
    terms = {"binary_cross_entropy": lambda: np.logaddexp(0, z) - z * y,  # softplus(z) - z y
             "mse": lambda: d * d,
             "mae": lambda: a,
             "huber": lambda: np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))}[loss]()
    return (expit(z) if loss == "binary_cross_entropy" else z), terms.mean()


def formula_grad(loss, out, y, delta=1.0):
    """d(mean loss)/d(logits) from the saved output activation, in float64."""
    out = out.astype(np.float64)
    if loss == "cross_entropy":
        return (out - np.eye(out.shape[1])[y]) / len(y)
    d = out - y.astype(np.float64)
    g = {"binary_cross_entropy": d, "mse": 2 * d, "mae": np.sign(d), "huber": np.clip(d, -delta, delta)}[loss]
    return g / d.size


def loss_args(rng, loss, N, O, dtype, scale=3.0):
    z = (scale * rng.standard_normal((N, O))).astype(dtype)
    return z, make_targets(rng, loss, N, O, dtype)


@each_loss
@pytest.mark.parametrize("N,O", SHAPES)
def test_forward(backend, dtype, threads, rng, loss, kw, N, O):
    z, y = loss_args(rng, loss, N, O, dtype)
    out, value = formula(loss, z, y, **kw)
    args = dict(out=np.full((N, O), np.nan, dtype), logits=z, targets=y, **kw)  # every element must be written
    got = check_kernel(backend, f"{loss}_forward", args, {"out": out})["return"]
    # The formula loses the digits of a loss near 0 (logsumexp(z) ~ z_y, softplus(z) ~ z y) to float64 rounding,
    # which the kernels avoid: allow that rounding, not more.
    atol = 8 * np.finfo(np.float64).eps * np.abs(z).max()
    np.testing.assert_allclose(got, value, rtol=TOLERANCE[np.dtype(dtype)], atol=atol, err_msg="loss vs formula")


@each_loss
@pytest.mark.parametrize("N,O", SHAPES)
def test_backward_accumulates(backend, dtype, threads, rng, loss, kw, N, O):
    z, y = loss_args(rng, loss, N, O, dtype)
    out = formula(loss, z, y, **kw)[0].astype(dtype)
    grad = formula_grad(loss, out, y, **kw)
    # random and non-zero, of the gradient's sign: a sum that cancels would leave only float32 rounding
    dlogits = (rng.uniform(0.5, 1.5, (N, O)) * np.where(grad < 0, -1, 1)).astype(dtype)
    expect = dlogits + grad
    check_kernel(backend, f"{loss}_backward", dict(dlogits=dlogits, out=out, targets=y, **kw), {"dlogits": expect})


def kink_free(rng, loss, N, O, delta):
    """Logits and targets with |z - y| at least 0.1 delta away from MAE's and Huber's kinks (0 and delta)."""
    z = 3 * rng.standard_normal((N, O))
    if loss in ("cross_entropy", "binary_cross_entropy"):
        return z, make_targets(rng, loss, N, O, np.float64)
    gap = delta * np.where(rng.random((N, O)) < 0.5, rng.uniform(0.1, 0.9, (N, O)), rng.uniform(1.1, 3, (N, O)))
    return z, z - rng.choice([-1.0, 1.0], (N, O)) * gap


@each_loss
def test_gradient_matches_finite_differences(backend, rng, loss, kw):
    N, O, h = 5, 3, 1e-3
    z, y = kink_free(rng, loss, N, O, kw.get("delta", 1.0))
    forward, backward = getattr(backend, f"{loss}_forward"), getattr(backend, f"{loss}_backward")
    out = np.empty((N, O))

    def f(zz):
        return forward(np.empty((N, O)), zz, y, **kw)

    numeric = np.empty((N, O))
    for i in np.ndindex(N, O):
        step = np.zeros((N, O))
        step[i] = h
        numeric[i] = (-f(z + 2 * step) + 8 * f(z + step) - 8 * f(z - step) + f(z - 2 * step)) / (12 * h)
    forward(out, z, y, **kw)
    grad = np.zeros((N, O))
    backward(grad, out, y, **kw)
    assert_close(grad, numeric, np.float64, f"{loss} [{backend.name}] gradient vs finite differences", tol=1e-8)


@each_loss
def test_extreme_logits_stay_finite(backend, dtype, rng, loss, kw):
    N, O = 6, 5
    z = (rng.choice([-1e4, 0.0, 1e4], (N, O)) + rng.standard_normal((N, O))).astype(dtype)
    z[0] = [1e4, -1e4, 1e4, -1e4, 1e4]  # ties at the top, and a row whose losers underflow to exactly 0
    y = make_targets(rng, loss, N, O, dtype)
    if loss == "cross_entropy":
        y[0] = 1  # the target is a loser: loss 2e4
    expect_out, expect_loss = formula(loss, z, y, **kw)
    out, dlogits = np.empty((N, O), dtype), np.zeros((N, O), dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = getattr(backend, f"{loss}_forward")(out, z, y, **kw)
        getattr(backend, f"{loss}_backward")(dlogits, out, y, **kw)
    assert np.isfinite(value) and np.all(np.isfinite(out)) and np.all(np.isfinite(dlogits))
    assert_close(value, expect_loss, dtype, f"{loss} [{backend.name}] loss")
    assert_close(out, expect_out, dtype, f"{loss} [{backend.name}] out")
    assert_close(dlogits, formula_grad(loss, out, y, **kw), dtype, f"{loss} [{backend.name}] dlogits")


@each_loss
def test_nan_logit_reaches_the_loss(backend, dtype, rng, loss, kw):
    z, y = loss_args(rng, loss, 3, 4, dtype)
    z[1, 2] = np.nan  # not the max: a softmax that dropped it would look healthy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(getattr(backend, f"{loss}_forward")(np.empty_like(z), z, y, **kw))


@each_loss
def test_read_only_inputs_are_accepted(backend, dtype, rng, loss, kw):
    z, y = loss_args(rng, loss, 4, 3, dtype)
    for a in (z, y):
        a.flags.writeable = False
    out = np.empty_like(z)
    assert_close(getattr(backend, f"{loss}_forward")(out, z, y, **kw), formula(loss, z, y, **kw)[1], dtype)
    getattr(backend, f"{loss}_backward")(np.zeros_like(z), out, y, **kw)


def test_loss_is_the_same_bits_on_any_thread_count(rng):
    z, y = loss_args(rng, "cross_entropy", 257, 10, np.float32)
    results = on_thread_counts(lambda: fastnn.get_backend("compiled").cross_entropy_forward(np.empty_like(z), z, y),
                               counts=(1, 2))
    assert results[0] == results[1]


@pytest.mark.parametrize("bad", [[0, 3], [-1, 0], [0, 2**40]], ids=["O", "negative", "huge"])
@pytest.mark.parametrize("kernel", ["forward", "backward"])
def test_class_index_out_of_range_raises(backend, bad, kernel):
    z, y = np.zeros((2, 3)), np.array(bad, dtype=np.int64)
    with pytest.raises(ValueError, match=r"class indices outside \[0, 3\)"):
        getattr(backend, f"cross_entropy_{kernel}")(np.zeros((2, 3)), z, y)
    raw = fastnn._losses  # the unchecked compiled module must refuse too, not read out of bounds
    with pytest.raises(ValueError, match=r"is not a class index in \[0, 3\)"):
        getattr(raw, f"cross_entropy_{kernel}")(np.zeros((2, 3)), z, y)


@pytest.mark.parametrize("loss,targets", [
    ("cross_entropy", np.array([0.0, 1.0])),                    # float class labels
    ("cross_entropy", np.array([0, 1], dtype=np.int32)),        # int32 class labels
    ("binary_cross_entropy", np.zeros((2, 3), np.float32)),     # float32 targets with float64 logits
    ("mse", np.zeros((2, 3), np.int64)),                        # integer targets
], ids=["ce-float", "ce-int32", "bce-float32", "mse-int64"])
def test_wrong_target_dtype_raises(backend, loss, targets):
    z = np.zeros((2, 3))
    with pytest.raises(TypeError, match="'targets'"):
        getattr(backend, f"{loss}_forward")(np.zeros((2, 3)), z, targets)
    with pytest.raises((TypeError, ValueError)):
        getattr(fastnn._losses, f"{loss}_forward")(np.zeros((2, 3)), z, targets)


@pytest.mark.parametrize("loss,targets", [("cross_entropy", np.zeros(3, np.int64)), ("mse", np.zeros((2, 4)))],
                         ids=["ce", "mse"])
def test_shape_mismatch_raises(backend, loss, targets):
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="mismatch on dimension"):
        getattr(backend, f"{loss}_forward")(np.zeros((2, 3)), z, targets)
    with pytest.raises(ValueError, match="shapes disagree"):
        getattr(fastnn._losses, f"{loss}_forward")(np.zeros((2, 3)), z, targets)


@pytest.mark.parametrize("delta", [0.0, -1.0, np.nan])
def test_huber_delta_must_be_positive(backend, delta):
    z = np.zeros((2, 3))
    for kernel in (backend.huber_forward, backend.huber_backward, fastnn._losses.huber_forward):
        with pytest.raises(ValueError, match="delta must be positive"):
            kernel(np.zeros((2, 3)), z, z, delta)


@each_loss
def test_matches_torch(backend, rng, loss, kw):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z, y = loss_args(rng, loss, 9, 4, np.float64)
    zt = torch.tensor(z, requires_grad=True)
    yt = torch.tensor(y)
    fn = {"cross_entropy": F.cross_entropy, "binary_cross_entropy": F.binary_cross_entropy_with_logits,
          "mse": F.mse_loss, "mae": F.l1_loss, "huber": F.huber_loss}[loss]
    expect = fn(zt, yt, **kw)
    expect.backward()
    out, grad = np.empty_like(z), np.zeros_like(z)
    assert_close(getattr(backend, f"{loss}_forward")(out, z, y, **kw), expect.item(), np.float64, "loss vs torch")
    getattr(backend, f"{loss}_backward")(grad, out, y, **kw)
    assert_close(grad, zt.grad.numpy(), np.float64, "gradient vs torch")


# --- sample weights: the weighted mean sum_n w_n l_n / sum_n w_n -----------------------------------------------
def weighted_formula(loss, z, y, w, delta=1.0):
    """(loss, gradient) of the weighted mean from the unweighted per-row formula, in float64."""
    rows = [formula(loss, z[n:n + 1], y[n:n + 1], delta)[1] for n in range(len(z))]
    out = formula(loss, z, y, delta)[0]
    grad = np.concatenate([formula_grad(loss, out[n:n + 1], y[n:n + 1], delta) for n in range(len(z))])
    return np.average(rows, weights=w), grad * (w / w.sum())[:, None]


@each_loss
@pytest.mark.parametrize("N,O", [(1, 1), (7, 3), (33, 10)])
def test_sample_weights(backend, dtype, rng, loss, kw, N, O):
    z, y = loss_args(rng, loss, N, O, dtype)
    w = rng.uniform(0.1, 3.0, N).astype(dtype)
    value, grad = weighted_formula(loss, z, y, w.astype(np.float64), **kw)
    got = check_kernel(backend, f"{loss}_forward", dict(out=np.empty((N, O), dtype), logits=z, targets=y, **kw,
                                                        sample_weight=w))["return"]
    np.testing.assert_allclose(got, value, rtol=10 * TOLERANCE[np.dtype(dtype)], atol=1e-12 * np.abs(z).max())
    out = formula(loss, z, y, **kw)[0].astype(dtype)
    dlogits = rng.uniform(0.5, 1.5, (N, O)).astype(dtype) * np.where(grad < 0, -1, 1).astype(dtype)
    check_kernel(backend, f"{loss}_backward", dict(dlogits=dlogits, out=out, targets=y, **kw, sample_weight=w),
                 {"dlogits": dlogits + grad}, tol=10 * TOLERANCE[np.dtype(dtype)])


@each_loss
def test_weighted_gradient_matches_finite_differences(backend, rng, loss, kw):
    N, O, h = 6, 3, 1e-3
    z, y = kink_free(rng, loss, N, O, kw.get("delta", 1.0))
    w = rng.uniform(0.1, 3.0, N)
    forward, backward = getattr(backend, f"{loss}_forward"), getattr(backend, f"{loss}_backward")
    f = lambda zz: forward(np.empty((N, O)), zz, y, **kw, sample_weight=w)  # noqa: E731
    numeric = np.empty((N, O))
    for i in np.ndindex(N, O):
        step = np.zeros((N, O))
        step[i] = h
        numeric[i] = (-f(z + 2 * step) + 8 * f(z + step) - 8 * f(z - step) + f(z - 2 * step)) / (12 * h)
    out = np.empty((N, O))
    forward(out, z, y, **kw, sample_weight=w)
    grad = np.zeros((N, O))
    backward(grad, out, y, **kw, sample_weight=w)
    assert_close(grad, numeric, np.float64, f"weighted {loss} [{backend.name}] gradient vs finite differences",
                 tol=1e-8)


@each_loss
def test_integer_weights_equal_repeated_rows(backend, rng, loss, kw):
    z, y = loss_args(rng, loss, 5, 3, np.float64)
    w = np.array([1.0, 3.0, 0.0, 2.0, 1.0])
    repeat = np.repeat(np.arange(5), w.astype(int))
    forward = getattr(backend, f"{loss}_forward")
    weighted = forward(np.empty((5, 3)), z, y, **kw, sample_weight=w)
    repeated = forward(np.empty((len(repeat), 3)), z[repeat], y[repeat], **kw)
    np.testing.assert_allclose(weighted, repeated, rtol=1e-12)


@each_loss
def test_zero_weights_give_zero_loss_and_no_gradient(backend, rng, loss, kw):
    z, y = loss_args(rng, loss, 4, 3, np.float64)
    w = np.zeros(4)
    assert getattr(backend, f"{loss}_forward")(np.empty((4, 3)), z, y, **kw, sample_weight=w) == 0.0
    dlogits = rng.standard_normal((4, 3))
    before = dlogits.copy()
    getattr(backend, f"{loss}_backward")(dlogits, np.empty((4, 3)) + 0.5, y, **kw, sample_weight=w)
    np.testing.assert_array_equal(dlogits, before)


def test_sample_weight_length_is_checked(backend, rng):
    z, y = loss_args(rng, "mse", 4, 2, np.float64)
    with pytest.raises(ValueError, match="sample_weight"):
        backend.mse_forward(np.empty((4, 2)), z, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight"):
        fastnn._losses.mse_forward(np.empty((4, 2)), z, y, sample_weight=np.ones(5))


@pytest.mark.parametrize("N,O", SHAPES)
def test_softmax_forward(backend, dtype, rng, N, O):
    z = (3 * rng.standard_normal((N, O))).astype(dtype)
    check_kernel(backend, "softmax_forward", dict(out=np.full((N, O), np.nan, dtype), logits=z), {"out": softmax(z.astype(np.float64), axis=1)})

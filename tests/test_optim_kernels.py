"""Optimizer step kernels against their NumPy twin, torch.optim's documented formulas in float64, and torch itself."""
import inspect
import itertools

import numpy as np
import pytest

import fastnn
from fastnn import reference
from helpers import assert_close, check_kernel, on_thread_counts

NAMES = ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step"]
SMALL = [1, 131]     # one parameter; a size no SIMD width divides
LARGE = 1_000_003    # past the parallel threshold, and no thread count divides it
# The float64 formula is checked when P > 1 only: a lone element may cancel to near zero, where a check relative
# to the result's magnitude would measure nothing but rounding; with many elements the scale is the largest one.

# Defaults with every term switched on (weight decay, momentum, dampening, lr decay), so passing each through is
# tested; `step` is a later step, where the bias corrections still matter.
HYPER = {
    "sgd_step": dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.1, nesterov=False, maximize=False,
                     first_step=False),
    "adam_step": dict(step=7, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, amsgrad=False,
                      maximize=False, decoupled_weight_decay=False),
    "rmsprop_step": dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.1, momentum=0.9, centered=False,
                         maximize=False),
    "adagrad_step": dict(step=5, lr=0.1, lr_decay=0.1, weight_decay=0.1, eps=1e-10, maximize=False),
}
GRIDS = {  # the options that change the arithmetic, each over the values that matter
    "sgd_step": dict(momentum=[0, 0.9], dampening=[0, 0.1], nesterov=[False, True], weight_decay=[0, 0.1],
                     maximize=[False, True], first_step=[False, True]),
    "adam_step": dict(amsgrad=[False, True], weight_decay=[0, 0.1], decoupled_weight_decay=[False, True],
                      maximize=[False, True], step=[1, 7], beta1=[0.9, 0.3]),     # beta1 0.3: lerp's other form
    "rmsprop_step": dict(centered=[False, True], momentum=[0, 0.9], weight_decay=[0, 0.1], maximize=[False, True],
                         alpha=[0.99, 0.3]),
    "adagrad_step": dict(lr_decay=[0, 0.1], weight_decay=[0, 0.1], step=[1, 5], maximize=[False, True]),
}
EVERY_OPTION = dict(amsgrad=True, decoupled_weight_decay=True, maximize=True, centered=True, nesterov=True,
                    dampening=0)   # torch: nesterov needs dampening 0
CLOCK = {  # what changes from one step to the next, t = 1, 2, ...
    "sgd_step": lambda t: {"first_step": t == 1},
    "adam_step": lambda t: {"step": t},
    "rmsprop_step": lambda t: {},
    "adagrad_step": lambda t: {"step": t},
}


# --- torch.optim's documented update, in float64 -------------------------------------------------------------
def sgd_formula(params, momentum_buffer, grads, lr, momentum, dampening, weight_decay, nesterov, maximize,
                first_step):
    g = (-grads if maximize else grads) + weight_decay * params
    out = {}
    if momentum:
        buf = out["momentum_buffer"] = g if first_step else momentum * momentum_buffer + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    out["params"] = params - lr * g
    return out


def adam_formula(params, exp_avg, exp_avg_sq, max_exp_avg_sq, grads, step, lr, beta1, beta2, eps, weight_decay,
                 amsgrad, maximize, decoupled_weight_decay):
    g = -grads if maximize else grads
    if decoupled_weight_decay:
        params = params * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * params
    m = beta1 * exp_avg + (1 - beta1) * g
    v = beta2 * exp_avg_sq + (1 - beta2) * g ** 2
    out = dict(exp_avg=m, exp_avg_sq=v)
    if amsgrad:
        v = out["max_exp_avg_sq"] = np.maximum(max_exp_avg_sq, v)
    m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)
    out["params"] = params - lr * m_hat / (np.sqrt(v_hat) + eps)
    return out


def rmsprop_formula(params, square_avg, grad_avg, momentum_buffer, grads, lr, alpha, eps, weight_decay, momentum,
                    centered, maximize):
    g = (-grads if maximize else grads) + weight_decay * params
    v = alpha * square_avg + (1 - alpha) * g ** 2
    out = dict(square_avg=v)
    if centered:
        mean = out["grad_avg"] = alpha * grad_avg + (1 - alpha) * g
        v = v - mean ** 2
    update = g / (np.sqrt(v) + eps)
    if momentum > 0:
        update = out["momentum_buffer"] = momentum * momentum_buffer + update
    out["params"] = params - lr * update
    return out


def adagrad_formula(params, state_sum, grads, step, lr, lr_decay, weight_decay, eps, maximize):
    g = (-grads if maximize else grads) + weight_decay * params
    s = state_sum + g ** 2
    return dict(state_sum=s, params=params - lr / (1 + (step - 1) * lr_decay) * g / (np.sqrt(s) + eps))


FORMULAS = {"sgd_step": sgd_formula, "adam_step": adam_formula, "rmsprop_step": rmsprop_formula,
            "adagrad_step": adagrad_formula}


# --- inputs --------------------------------------------------------------------------------------------------
def state(name, P, dtype, rng, hyper):
    """Random non-zero params and state for `name`, None for the state its options leave unused;
    second moments are positive, and a centered RMSprop's square_avg exceeds grad_avg^2."""
    def normal(scale=1.0):
        return (scale * rng.standard_normal(P)).astype(dtype)

    def positive():
        return rng.uniform(0.5, 1.5, P).astype(dtype)

    if name == "sgd_step":
        return dict(params=normal(), momentum_buffer=normal() if hyper["momentum"] else None)
    if name == "adam_step":
        return dict(params=normal(), exp_avg=normal(0.1), exp_avg_sq=positive(),
                    max_exp_avg_sq=positive() if hyper["amsgrad"] else None)
    if name == "rmsprop_step":
        grad_avg = normal(0.5)
        return dict(params=normal(), square_avg=(grad_avg.astype(np.float64) ** 2 + positive()).astype(dtype),
                    grad_avg=grad_avg if hyper["centered"] else None,
                    momentum_buffer=normal() if hyper["momentum"] else None)
    return dict(params=normal(), state_sum=positive())


def kernel_args(name, P, dtype, rng, hyper):
    """All arguments of one call, in signature order."""
    args = dict(state(name, P, dtype, rng, hyper), grads=rng.standard_normal(P).astype(dtype), **hyper)
    return {k: args[k] for k in inspect.signature(getattr(reference, name)).parameters}


def with_options(name, **options):
    """HYPER[name] with those of `options` that `name` has."""
    return {**HYPER[name], **{k: v for k, v in options.items() if k in HYPER[name]}}


def float64(args):
    return {k: v.astype(np.float64) if isinstance(v, np.ndarray) else v for k, v in args.items()}


def option_cases():
    """Per kernel, every combination of its GRIDS on the small sizes; all options off and all on for the large one."""
    for name, grid in GRIDS.items():
        combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
        for P, options in [(P, c) for P in SMALL for c in combos] + [(LARGE, combos[0]), (LARGE, combos[-1])]:
            yield pytest.param(name, P, options, id=f"{name}-P{P}-" + "-".join(f"{k}={v}" for k, v in options.items()))


# --- one step, every option ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,P,options", list(option_cases()))
def test_one_step(backend, dtype, threads, rng, name, P, options):
    args = kernel_args(name, P, dtype, rng, {**HYPER[name], **options})
    check_kernel(backend, name, args, FORMULAS[name](**float64(args)) if P > 1 else None)


# --- several steps -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("P", SMALL + [LARGE])
@pytest.mark.parametrize("every_option", [False, True], ids=["defaults", "every_option"])
def test_five_steps_match_reference_and_formula(backend, dtype, threads, rng, name, P, every_option):
    hyper = with_options(name, **EVERY_OPTION) if every_option else HYPER[name]
    ours = state(name, P, dtype, rng, hyper)
    if name == "sgd_step":
        ours["momentum_buffer"][:] = np.nan      # the first step must overwrite it
    twin = {k: None if v is None else v.copy() for k, v in ours.items()}
    exact = float64(ours)
    for t in range(1, 6):
        grads, h = rng.standard_normal(P).astype(dtype), {**hyper, **CLOCK[name](t)}
        getattr(backend, name)(**ours, grads=grads, **h)
        getattr(reference, name)(**twin, grads=grads, **h)
        exact.update(FORMULAS[name](**exact, grads=grads.astype(np.float64), **h))
    for k in (k for k, v in ours.items() if v is not None):
        assert_close(ours[k], twin[k], dtype, f"{name} [{backend.name}] {k} after 5 steps vs reference")
        if P > 1:
            assert_close(ours[k], exact[k], dtype, f"{name} [{backend.name}] {k} after 5 steps vs formula")


@pytest.mark.parametrize("name", NAMES)
def test_same_bits_whatever_the_thread_count(rng, name):
    args = kernel_args(name, LARGE, np.float32, rng, with_options(name, amsgrad=True, centered=True))

    def step():
        copies = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
        getattr(fastnn.compiled, name)(**copies)
        return copies
    results = on_thread_counts(step, counts=(1, 2))
    for k, v in args.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(results[0][k], results[1][k], err_msg=f"{name}: {k}")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", ["off", "defaults", "every"])
def test_same_bits_whatever_the_slice(rng, name, dtype, options):
    """An element's update does not depend on whether a vector loop or its scalar tail computes it: the whole array
    in one call gives the bits of a call per element. (GCC on aarch64 fused a * b + c into an FMA in one and not
    the other, before -ffp-contract=off: 1 element in about 2000 differed, and a fit from train_step.)"""
    P = 5000
    hyper = {"off": with_options(name, **{k: v[0] for k, v in GRIDS[name].items()}), "defaults": HYPER[name],
             "every": with_options(name, **EVERY_OPTION)}[options]
    args = kernel_args(name, P, dtype, rng, hyper)
    arrays = [k for k, v in args.items() if isinstance(v, np.ndarray)]
    whole = {k: v.copy() if k in arrays else v for k, v in args.items()}
    compiled = fastnn.get_backend("compiled")
    getattr(compiled, name)(**whole)
    for i in range(P):
        getattr(compiled, name)(**{k: v[i:i + 1] if k in arrays else v for k, v in args.items()})
    for k in arrays:
        np.testing.assert_array_equal(whole[k], args[k], err_msg=f"{name}: {k}")


@pytest.mark.parametrize("name", ["sgd_step", "adam_step", "rmsprop_step"])
def test_unused_state_is_left_alone(backend, dtype, rng, name):
    args = kernel_args(name, 9, dtype, rng, with_options(name, momentum=0.9, amsgrad=True, centered=True))
    args.update(with_options(name, momentum=0, amsgrad=False, centered=False))   # state given, options off
    given = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}
    getattr(backend, name)(**args)
    unused = {"sgd_step": ["momentum_buffer"], "adam_step": ["max_exp_avg_sq"],
              "rmsprop_step": ["grad_avg", "momentum_buffer"]}[name]
    for k in unused:
        np.testing.assert_array_equal(args[k], given[k], err_msg=f"{name}: unused {k} was written")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("weight_decay", [0, 0.1])
def test_non_finite_values_behave_as_in_the_reference(backend, dtype, rng, name, weight_decay):
    hyper = with_options(name, **EVERY_OPTION, weight_decay=weight_decay)
    args = kernel_args(name, 64, dtype, rng, hyper)
    for k, v in args.items():   # a NaN, an inf and a -inf somewhere in every array
        if isinstance(v, np.ndarray):
            v[rng.choice(64, 3, replace=False)] = [np.nan, np.inf, -np.inf]
    with np.errstate(all="ignore"):
        check_kernel(backend, name, args)


@pytest.mark.parametrize("name", NAMES)
def test_read_only_grads_are_accepted(backend, dtype, rng, name):
    args = kernel_args(name, 5, dtype, rng, HYPER[name])
    args["grads"].flags.writeable = False
    check_kernel(backend, name, args)


# --- against torch.optim itself ------------------------------------------------------------------------------
TORCH_CASES = [
    ("sgd_step", {}), ("sgd_step", dict(momentum=0)), ("sgd_step", dict(nesterov=True, dampening=0, maximize=True)),
    ("adam_step", {}), ("adam_step", dict(amsgrad=True, maximize=True)),
    ("adam_step", dict(decoupled_weight_decay=True)), ("adam_step", dict(decoupled_weight_decay=True, amsgrad=True)),
    ("rmsprop_step", {}), ("rmsprop_step", dict(centered=True)), ("rmsprop_step", dict(momentum=0, centered=True,
                                                                                       maximize=True)),
    ("adagrad_step", {}), ("adagrad_step", dict(lr_decay=0, maximize=True)),
]
TORCH_STATE_NAMES = {"state_sum": "sum"}


def torch_optimizer(torch, name, param, h):
    """The torch.optim optimizer (single-tensor implementation) that `name` with hyper-parameters `h` copies."""
    common = dict(lr=h["lr"], weight_decay=h["weight_decay"], maximize=h["maximize"], foreach=False)
    if name == "sgd_step":
        return torch.optim.SGD([param], momentum=h["momentum"], dampening=h["dampening"], nesterov=h["nesterov"],
                               **common)
    if name == "adam_step":
        adam = torch.optim.AdamW if h["decoupled_weight_decay"] else torch.optim.Adam
        return adam([param], betas=(h["beta1"], h["beta2"]), eps=h["eps"], amsgrad=h["amsgrad"], **common)
    if name == "rmsprop_step":
        return torch.optim.RMSprop([param], alpha=h["alpha"], eps=h["eps"], momentum=h["momentum"],
                                   centered=h["centered"], **common)
    return torch.optim.Adagrad([param], lr_decay=h["lr_decay"], eps=h["eps"], **common)


@pytest.mark.parametrize("name,options", TORCH_CASES)
def test_five_steps_match_torch(backend, rng, name, options):
    torch = pytest.importorskip("torch")
    P, hyper = 257, {**HYPER[name], **options}
    ours = {k: None if v is None else np.zeros_like(v) for k, v in state(name, P, np.float64, rng, hyper).items()}
    ours["params"] = rng.standard_normal(P)
    param = torch.nn.Parameter(torch.from_numpy(ours["params"].copy()))
    optimizer = torch_optimizer(torch, name, param, hyper)
    for t in range(1, 6):
        grads = rng.standard_normal(P)
        param.grad = torch.from_numpy(grads.copy())
        optimizer.step()
        getattr(backend, name)(**ours, grads=grads, **{**hyper, **CLOCK[name](t)})
    theirs = {TORCH_STATE_NAMES.get(k, k): v for k, v in optimizer.state[param].items()}
    assert_close(ours["params"], param.detach().numpy(), np.float64, f"{name} {options} params vs torch")
    for k, v in ours.items():
        if k != "params" and v is not None:
            assert_close(v, theirs[TORCH_STATE_NAMES.get(k, k)].numpy(), np.float64, f"{name} {options} {k} vs torch")


# --- bad input -----------------------------------------------------------------------------------------------
@pytest.fixture(params=["compiled", "numpy", "raw"])
def caller(request):
    """Both validated backends, and the unchecked compiled module, which must raise too, never crash."""
    return fastnn._optim if request.param == "raw" else fastnn.get_backend(request.param)


@pytest.mark.parametrize("name,needed,option", [
    ("sgd_step", "momentum_buffer", dict(momentum=0.9)), ("adam_step", "max_exp_avg_sq", dict(amsgrad=True)),
    ("rmsprop_step", "grad_avg", dict(centered=True)), ("rmsprop_step", "momentum_buffer", dict(momentum=0.9)),
])
def test_missing_state_is_refused(caller, rng, name, needed, option):
    args = kernel_args(name, 7, np.float64, rng, {**HYPER[name], **option})
    args[needed] = None
    with pytest.raises(ValueError, match=f"needs '{needed}'"):
        getattr(caller, name)(**args)


def every_array(name):
    hyper = with_options(name, momentum=0.9, amsgrad=True, centered=True)   # every state in use
    return [(name, k, hyper) for k, v in kernel_args(name, 1, np.float64, np.random.default_rng(0), hyper).items()
            if isinstance(v, np.ndarray)]


ARRAYS = [case for name in NAMES for case in every_array(name)]


FAULTS = {  # how to spoil one array, and what must be raised: (spoil, exception, message pattern)
    "length": (lambda a: np.ones(len(a) + 1), ValueError, "{arg}"),
    "dtype": (lambda a: a.astype(np.float32), (TypeError, ValueError), "float|signature"),
    "strided": (lambda a: np.repeat(a, 2)[::2], ValueError, "contiguous"),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name,arg,hyper", ARRAYS, ids=[f"{n}-{a}" for n, a, _ in ARRAYS])
def test_bad_array_is_refused(caller, rng, name, arg, hyper, fault):
    spoil, error, pattern = FAULTS[fault]
    args = kernel_args(name, 7, np.float64, rng, hyper)
    args[arg] = spoil(args[arg])
    with pytest.raises(error, match=pattern.format(arg=arg)):
        getattr(caller, name)(**args)


@pytest.mark.parametrize("name", NAMES)
def test_read_only_params_are_refused(caller, rng, name):
    args = kernel_args(name, 7, np.float64, rng, HYPER[name])
    args["params"].flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        getattr(caller, name)(**args)


@pytest.mark.parametrize("name", ["adam_step", "adagrad_step"])
def test_step_counts_from_one(caller, rng, name):
    args = kernel_args(name, 7, np.float64, rng, {**HYPER[name], "step": 0})
    with pytest.raises(ValueError, match="step"):
        getattr(caller, name)(**args)


ADAM_BITS_SCRIPT = """
import sys, numpy as np, fastnn
k = fastnn.get_backend("compiled")
rng = np.random.default_rng(int(sys.argv[1]))
out = []
for dtype in (np.float32, np.float64):
    for amsgrad in (False, True):
        p, m, g = (rng.standard_normal(1037).astype(dtype) for _ in range(3))
        v, vmax = (rng.random(1037).astype(dtype) for _ in range(2))
        k.adam_step(p, m, v, vmax, g, step=3, lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1,
                    amsgrad=amsgrad, maximize=False, decoupled_weight_decay=False)
        out += [p, m, v, vmax]
sys.stdout.write(b"".join(a.tobytes() for a in out).hex())
"""


def test_adam_same_bits_on_the_avx2_and_baseline_loops(rng):
    """adam.h compiles one update for baseline x86-64 and for AVX2 (picked at run time; FASTNN_CPU=portable forces
    the former): the same operations, so the same bits"""
    import os
    import subprocess
    import sys
    seed = str(rng.integers(2**31))
    runs = [subprocess.run([sys.executable, "-c", ADAM_BITS_SCRIPT, seed], capture_output=True, text=True, check=True,
                           env=dict(os.environ, FASTNN_CPU=cpu)).stdout for cpu in ("", "portable")]
    assert len(runs[0]) > 1000 and runs[0] == runs[1]

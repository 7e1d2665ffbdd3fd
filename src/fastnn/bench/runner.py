"""The comparison run: verify, then time every contender on every workload and thread count, side by side."""
import time

import numpy as np

import fastnn

from . import machine, memory, report
from .contenders import CONTENDERS, FastnnTrainer
from .timing import round_robin, summary
from .workloads import INFERENCE_SAMPLES, INFERENCE_WORKLOADS, LR, make_data

LOSS_RTOL = 1e-4   # compiled vs reference mean loss after one epoch: float32 rounding over hundreds of steps
PROBA_ATOL = 1e-5  # contenders' predict_proba from the same weights, float32


class Settings:
    """What one run does: the command line's choices, with --quick's smaller sizes applied."""

    def __init__(self, workloads, threads, contenders, notes=(), quick=False, repeats=None, ghz=None, memory=True,
                 seed=0, log=print, show=lambda lines: print("\n".join(lines), flush=True)):
        self.workloads, self.threads, self.contenders, self.notes = workloads, threads, contenders, list(notes)
        self.quick, self.ghz, self.memory, self.seed, self.log, self.show = quick, ghz, memory, seed, log, show
        self.repeats = repeats or (3 if quick else 5)
        if self.repeats < 5:
            self.notes.append(f"{self.repeats} repetitions: BENCHMARKS.md quotes medians of at least 5")
        self.min_seconds = 0.02 if quick else 0.25  # a timed repetition lasts at least this (whole epochs)
        self.settle = 0.0 if quick else 0.2  # pause between timed runs: see timing.round_robin
        self.gemm_repeats = 2 if quick else 5


def initial_weights(workload, seed):
    """fastnn's initialisation of the workload's MLP: the starting point of every contender."""
    model = fastnn.MLP(workload.layers, activation="relu", loss="cross_entropy", dtype="float32", seed=seed)
    return [W.copy() for W in model.weights], [b.copy() for b in model.biases]


def make_trainers(settings, workload, X, y, names):
    weights, biases = initial_weights(workload, settings.seed)
    return {name: CONTENDERS[name][1](workload, X, y, weights, biases, settings.seed) for name in names}


def check_same_model(trainers, X):
    """Every contender's predict_proba from the same initial weights matches fastnn's: the same network."""
    expected = trainers["fastnn"].predict_proba(X)
    checks = {}
    for name, trainer in trainers.items():
        diff = float(np.abs(trainer.predict_proba(X) - expected).max())
        checks[name] = {"max_abs_diff": diff, "ok": diff <= PROBA_ATOL}
    return checks


def verify_training(settings, workload, X, y):
    """One epoch of fastnn compiled and of the reference from the same weights and shuffle: same mean loss?"""
    weights, biases = initial_weights(workload, settings.seed)
    losses = {}
    with machine.use_threads(max(settings.threads)):
        for backend in ("compiled", "numpy"):
            trainer = FastnnTrainer(workload, X, y, weights, biases, settings.seed, backend=backend)
            trainer.train(1)
            losses[backend] = trainer.last_loss
    rel = abs(losses["compiled"] - losses["numpy"]) / abs(losses["numpy"])
    return {"loss_compiled": losses["compiled"], "loss_reference": losses["numpy"], "rel_diff": rel,
            "rtol": LOSS_RTOL, "ok": bool(rel <= LOSS_RTOL)}


def time_contenders(settings, trainers, work, per_unit_samples):
    """Interleaved timings of work(trainer, k) for every contender and thread count -> result rows."""
    tasks = {(name, t): (lambda k, tr=trainer: work(tr, k), lambda t=t: machine.use_threads(t))
             for t in settings.threads for name, trainer in trainers.items()}
    seconds, units = round_robin(tasks, settings.repeats, settings.min_seconds, settle=settings.settle)
    return [{"contender": name, "threads": t, "units_per_repeat": units[(name, t)],
             "samples_per_s": summary([per_unit_samples / s for s in seconds[(name, t)]])}
            for (name, t) in tasks]


def add_ratios(rows):
    """fastnn's median over each row's, at the same thread count."""
    fastnn_at = {r["threads"]: r["samples_per_s"]["median"] for r in rows if r["contender"] == "fastnn"}
    for r in rows:
        r["fastnn_ratio"] = fastnn_at[r["threads"]] / r["samples_per_s"]["median"]
    return rows


def add_rates(rows, workload, gemm, info):
    """Nominal GFLOP/s, and its shares of the GEMM rate and of the FMA limit at the row's thread count."""
    for r in rows:
        r["gflops"] = r["samples_per_s"]["median"] * workload.flops_per_sample / 1e9
        r["share_gemm"] = r["gflops"] / gemm[r["threads"]]["median"]
        ghz = info.get("ghz_by_threads", {}).get(str(r["threads"]), info["ghz"])     # that many busy cores' clock
        fma = machine.fma_limit_gflops(ghz, min(r["threads"], info["cores"]), info.get("fma_lanes", 8))
        r["share_fma"] = None if fma is None else r["gflops"] / fma
    return rows


def train_workload(settings, workload, gemm, info):
    n = workload.quick_samples if settings.quick else workload.samples
    X, y = make_data(workload, n, settings.seed)
    settings.log(f"{workload.describe()}, {n:,} samples per epoch: verifying ...")
    verification = verify_training(settings, workload, X, y)
    trainers = make_trainers(settings, workload, X, y, settings.contenders)
    same_model = check_same_model(trainers, X[:1000])
    settings.log(f"  timing {len(trainers)} contenders x {len(settings.threads)} thread counts ...")
    rows = add_rates(add_ratios(time_contenders(settings, trainers, lambda trainer, k: trainer.train(k), n)),
                     workload, gemm, info)
    return {"workload": workload.name, "title": workload.title, "layers": list(workload.layers),
            "batch": workload.batch, "samples_per_epoch": n, "weights": workload.n_weights,
            "params": workload.n_params, "flops_per_sample": workload.flops_per_sample,
            "verification": verification, "same_initial_model": same_model, "results": rows}


def inference_workload(settings, workload):
    X_train, y_train = make_data(workload, workload.batch, settings.seed)
    X = make_data(workload, INFERENCE_SAMPLES, settings.seed + 1)[0]
    # the optimizer makes no difference to inference: one torch row
    names = [name for name in settings.contenders if name != "torch fused"]
    trainers = make_trainers(settings, workload, X_train, y_train, names)
    same = check_same_model(trainers, X)
    settings.log(f"{workload.name} inference: predict_proba on {INFERENCE_SAMPLES:,} samples ...")

    def work(trainer, k):
        for _ in range(k):
            trainer.predict_proba(X)

    rows = add_ratios(time_contenders(settings, trainers, work, INFERENCE_SAMPLES))
    return {"workload": workload.name, "title": workload.title, "samples": INFERENCE_SAMPLES, "same_results": same,
            "results": rows}


def run(settings):
    """The whole comparison; returns the JSON-ready results. Each section's table goes to settings.show
    as soon as it is measured, so that a long run shows its results as they come."""
    started = time.time()
    info = machine.machine_info(settings.ghz, settings.threads)
    if not info["threadpoolctl"]:
        settings.notes.append("threadpoolctl is not installed: BLAS (NumPy, SciPy, scikit-learn) keeps its own "
                              "thread count, so thread counts are not enforced (pip install threadpoolctl)")
    settings.log(f"measuring NumPy float32 GEMM {machine.GEMM_SIZE}x{machine.GEMM_SIZE} ...")
    gemm = {t: summary(machine.gemm_gflops(t, settings.gemm_repeats)) for t in settings.threads}
    results = {"format": "fastnn.bench", "format_version": 1, "quick": settings.quick, "repeats": settings.repeats,
               "lr": LR, "dtype": "float32", "threads": settings.threads, "contenders": settings.contenders,
               "notes": settings.notes, "machine": info, "gemm_gflops": {str(t): s for t, s in gemm.items()},
               "training": [], "inference": [], "memory": None}
    settings.show(report.header_lines(results))
    if settings.memory:  # first: cheap, and a long run cut short in W4 still has it
        settings.log("memory: W1 RSS growth and W3 peak RSS, each in a fresh interpreter ...")
        results["memory"] = memory.measure(settings.quick)
        settings.show(report.memory_lines(results["memory"]))
    for w in settings.workloads:
        results["training"].append(train_workload(settings, w, gemm, info))
        settings.show(report.training_lines(results["training"][-1]))
        if w.name in INFERENCE_WORKLOADS:
            results["inference"].append(inference_workload(settings, w))
            settings.show(report.inference_lines(results["inference"][-1]))
    results["seconds"] = time.time() - started
    return results

"""Memory: RSS growth over 50 epochs of W1, and peak RSS of W3 training against its estimate.

Each measurement runs in a fresh interpreter (`python -m fastnn.bench.memory growth|peak`), so that the peak
belongs to that training alone and the baseline is the interpreter with fastnn imported.
"""
import json
import os
import subprocess
import sys

import numpy as np

import fastnn

from .machine import python_env
from .workloads import LR, WORKLOADS, make_data

EPOCHS = 50


def _proc_status(field):
    """A size field of /proc/self/status ("VmRSS", "VmHWM") in bytes; None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def current_rss():
    """Resident set size now, in bytes (None where there is no /proc)."""
    return _proc_status("VmRSS")


def peak_rss():
    """This process's peak RSS, in bytes. VmHWM belongs to the address space, which exec makes afresh;
    getrusage's ru_maxrss (the fallback) would also count the parent's RSS at the fork."""
    peak = _proc_status("VmHWM")
    if peak is not None:
        return peak
    import resource  # POSIX only
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _model_and_data(workload, quick):
    X, y = make_data(workload, workload.quick_samples if quick else workload.samples)
    model = fastnn.MLP(workload.layers, activation="relu", loss="cross_entropy", dtype="float32", seed=0)
    return model, X, y


def _fit(model, X, y, workload, epochs):
    model.fit(X, y, epochs=epochs, batch_size=workload.batch, optimizer=fastnn.optim.Adam(lr=LR))


def growth(quick):
    """RSS growth of W1 over one fit of 50 epochs and over 50 fits of one epoch, after a warm-up epoch."""
    w = WORKLOADS["W1"]
    model, X, y = _model_and_data(w, quick)
    _fit(model, X, y, w, 1)
    before = current_rss()
    _fit(model, X, y, w, EPOCHS)
    after_one_fit = current_rss()
    for _ in range(EPOCHS):
        _fit(model, X, y, w, 1)
    after_many_fits = current_rss()
    return {"workload": "W1", "samples": len(X), "epochs": EPOCHS, "rss_before": before,
            "growth_one_fit": after_one_fit - before, "growth_fit_calls": after_many_fits - after_one_fit}


def peak(quick):
    """Peak RSS of two W3 epochs, and the estimate of the performance issue: baseline + data + params, grads,
    Adam state + a batch. (fit's copy that undoes an overflowing step, 3 x the parameters, is not in it.)"""
    w = WORKLOADS["W3"]
    # The baseline: the interpreter once fastnn, its kernels and BLAS are loaded and have run, before any data.
    fastnn.MLP([2, 2], seed=0).fit(np.zeros((4, 2), np.float32), np.arange(4) % 2, epochs=1)
    baseline = current_rss()
    model, X, y = _model_and_data(w, quick)
    _fit(model, X, y, w, 2)
    itemsize = np.dtype(np.float32).itemsize
    parts = {"data": X.nbytes + y.nbytes,
             "parameters, gradients, Adam's 2 moments": 4 * w.n_params * itemsize,
             # pre- and post-activations of one batch and their two gradients, as the MLP's workspace
             "one batch of activations and their gradients": 4 * w.batch * sum(w.layers[1:]) * itemsize}
    estimate = baseline + sum(parts.values())
    measured = peak_rss()
    return {"workload": "W3", "samples": len(X), "epochs": 2, "baseline": baseline, "parts": parts,
            "estimate": estimate, "peak": measured, "peak_over_estimate": measured / estimate}


def measure(quick, timeout=900):
    """Run `growth` and `peak`, each in a fresh interpreter; their JSON (or an error) per measurement."""
    results = {}
    for what in ("growth", "peak"):
        cmd = [sys.executable, "-m", "fastnn.bench.memory", what] + (["--quick"] if quick else [])
        done = subprocess.run(cmd, capture_output=True, text=True, env=python_env(), timeout=timeout)
        if done.returncode == 0:
            results[what] = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            results[what] = {"error": (done.stderr.strip().splitlines() or ["exit code %d" % done.returncode])[-1]}
    return results


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("growth", "peak"):
        sys.exit("usage: python -m fastnn.bench.memory growth|peak [--quick]")
    print(json.dumps({"growth": growth, "peak": peak}[sys.argv[1]]("--quick" in sys.argv[2:])))

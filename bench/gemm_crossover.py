"""fastnn's GEMM against scipy's OpenBLAS sgemm at the products of the workloads W1-W4: the measurement behind
the dispatch rule in csrc/dense.pxd (use_own_gemm, gemm_threads) and the GFLOP/s figures of bench/GEMM.md.

    python bench/gemm_crossover.py                 # both tables, 1 and 2 threads
    python bench/gemm_crossover.py --quick         # fewer shapes and repetitions
    python bench/gemm_crossover.py --markdown bench/GEMM.md.new

Each thread count runs in its own process with OMP_NUM_THREADS (and OPENBLAS_NUM_THREADS) set to it. "blas" is
scipy's sgemm as fastnn runs it: in stripes of C shared out over fastnn's threads, each call on one BLAS thread
(blas.pxd's gemm_striped); BLAS's own pool would spin beside fastnn's threads. NumPy's @ (GFLOP/s table) runs on
its OpenBLAS's own threads, timed apart from the others. Every product is checked (fastnn against BLAS) before it is timed.
Times are per call, from back-to-back calls in one nogil loop (fastnn._gemm.time_gemm: no Python between
calls, so the microsecond products are timed, not the interpreter); the contenders alternate within each
repetition, so machine noise falls on both; medians of --repeats (default 7), with min and max.

Columns: own / blas = seconds per call; ratio = blas / own (> 1: fastnn faster); own1 = fastnn on 1 thread
in the 2-thread run (where it beats own, the product is too small for a fork/join); rule = what
dense.pxd's use_own_gemm / gemm_threads choose ("own", "own/1t", "blas"); best = the measured winner.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# W1-W4 as BENCHMARKS.md (fastnn.bench.workloads holds the same table)
WORKLOADS = {"W1": (4, 16, 3), "W2": (64, 128, 10), "W3": (784, 256, 128, 10), "W4": (1024, 4096, 4096, 10)}
BATCHES = (32, 64, 128, 256)
PREDICT = 8192
SQUARE = 2048


def products(quick):
    """(label, M, N, K, trans_a, trans_b) of the three products of every layer, each shape once."""
    seen, rows = set(), []
    batches = (32, 256) if quick else BATCHES
    for name, layers in WORKLOADS.items():
        for l, (i, o) in enumerate(zip(layers[:-1], layers[1:])):
            cases = [(f"{name} L{l} fwd n={n}", n, o, i, False, False) for n in batches + (PREDICT,)]
            cases += [(f"{name} L{l} dW n={n}", i, o, n, True, False) for n in batches]
            if l > 0:           # the first layer's dX is never formed
                cases += [(f"{name} L{l} dX n={n}", n, i, o, False, True) for n in batches]
            for label, M, N, K, ta, tb in cases:
                if (M, N, K, ta, tb) not in seen:
                    seen.add((M, N, K, ta, tb))
                    rows.append((label, M, N, K, ta, tb))
    return rows


def operands(M, N, K, ta, tb, rng):
    A = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
    B = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
    return A, B, np.empty((M, N), np.float32)


def cpu_clock(fn):
    """fn(reps) timed by this thread's CPU time instead of the wall clock (--clock cpu: 1 thread only)"""
    def timed(reps):
        t0 = time.thread_time()
        fn(reps)
        return (time.thread_time() - t0) / reps
    return timed


def time_pair(fns, flops, repeats, min_seconds):
    """{name: [seconds per call] * repeats}, the contenders alternating within each repetition."""
    reps = {}
    for name, fn in fns.items():           # calls per sample: enough for min_seconds
        fn(1)
        t = max(fn(3), 1e-9)
        reps[name] = max(1, int(min_seconds / t))
    out = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            out[name].append(fn(reps[name]))
    return out


def stats(ts):
    return {"median": statistics.median(ts), "min": min(ts), "max": max(ts)}


def worker(threads, quick, repeats, clock="wall", gflops=True):
    """Runs in a process whose BLAS has `threads` threads; prints one JSON document."""
    sys.path.insert(0, str(ROOT / "src"))
    import fastnn
    from fastnn import _dense, _gemm
    from scipy.linalg import blas as scipy_blas  # noqa: F401  (loads scipy's OpenBLAS before timing)

    from fastnn._config import single_threaded_blas
    fastnn.set_num_threads(threads)
    rng = np.random.default_rng(0)
    hold = single_threaded_blas()   # "blas" is BLAS as fastnn runs it: 1-thread calls on stripes over its threads
    hold.__enter__()
    min_seconds = 0.002 if quick else 0.01
    doc = {"threads": threads, "cpu_path": _gemm.cpu_path(), "crossover": [], "gflops": []}

    for label, M, N, K, ta, tb in products(quick):
        A, B, C = operands(M, N, K, ta, tb, rng)
        C2 = np.empty_like(C)
        _gemm.time_gemm("own", 1, C, A, B, ta, tb, num_threads=threads)
        _gemm.time_gemm("blas", 1, C2, A, B, ta, tb, num_threads=threads)
        err = float(np.abs(C - C2).max() / max(np.abs(C2).max(), 1e-30))
        assert err < 1e-4, f"{label}: fastnn and BLAS disagree (max rel diff {err:.2e})"
        fns = {"own": lambda r: _gemm.time_gemm("own", r, C, A, B, ta, tb, num_threads=threads),
               "blas": lambda r: _gemm.time_gemm("blas", r, C, A, B, ta, tb, num_threads=threads)}
        if threads > 1:
            fns["own1"] = lambda r: _gemm.time_gemm("own", r, C, A, B, ta, tb, num_threads=1)
        if clock == "cpu":
            fns = {k: cpu_clock(f) for k, f in fns.items()}
        res = time_pair(fns, 2.0 * M * N * K, 3 if quick else repeats, min_seconds)
        doc["crossover"].append({"label": label, "M": M, "N": N, "K": K, "ta": ta, "tb": tb,
                                 "rule": _dense.gemm_rule(M, N, K, ta, tb, threads),
                                 **{k: stats(v) for k, v in res.items()}})
        print(f"  [{threads}t] {label}: {M}x{N}x{K}", file=sys.stderr, flush=True)

    shapes = [("square", SQUARE, SQUARE, SQUARE, False, False),
              ("W3 L0 fwd n=128", 128, 256, 784, False, False), ("W3 L0 dW n=128", 784, 256, 128, True, False),
              ("W3 L1 dX n=128", 128, 256, 128, False, True), ("W3 predict L0", PREDICT, 256, 784, False, False),
              ("W4 L1 fwd n=256", 256, 4096, 4096, False, False), ("W4 L1 dW n=256", 4096, 4096, 256, True, False),
              ("W4 L1 dX n=256", 256, 4096, 4096, False, True)]
    for label, M, N, K, ta, tb in (shapes[:3] if quick else shapes) if gflops else []:
        A, B, C = operands(M, N, K, ta, tb, rng)
        a, b = (A.T if ta else A), (B.T if tb else B)
        fns = {"own": lambda r: _gemm.time_gemm("own", r, C, A, B, ta, tb, num_threads=threads),
               "blas": lambda r: _gemm.time_gemm("blas", r, C, A, B, ta, tb, num_threads=threads)}
        n, min_s = max(5, repeats if not quick else 5), 0.05 if not quick else 0.01
        res = time_pair(fns, 2.0 * M * N * K, n, min_s)
        # NumPy's @ on its OpenBLAS's own threads (the machine's GEMM rate), on its own: that pool spins for
        # ~0.1 s after each call and would stall the others' threads
        hold.__exit__(None, None, None)
        res["numpy"] = time_pair({"numpy": lambda r: _numpy_matmul(a, b, C, r)}, 2.0 * M * N * K, n, min_s)["numpy"]
        hold = single_threaded_blas()
        hold.__enter__()
        time.sleep(0.3)
        flops = 2.0 * M * N * K
        doc["gflops"].append({"label": label, "M": M, "N": N, "K": K, "ta": ta, "tb": tb,
                              **{k: {s: flops / v / 1e9 for s, v in stats(ts).items()} for k, ts in res.items()}})
        print(f"  [{threads}t] GFLOP/s {label}", file=sys.stderr, flush=True)
    print(json.dumps(doc))


def _numpy_matmul(a, b, out, reps):
    t0 = time.perf_counter()
    for _ in range(reps):
        np.matmul(a, b, out=out)
    return (time.perf_counter() - t0) / reps


def _us(s):
    return f"{s * 1e6:.1f}" if s < 1e-2 else f"{s * 1e6:.0f}"


def crossover_table(docs):
    lines = ["| product | M x N x K | threads | own us | blas us | blas/own | own 1 thread us | rule | best |",
             "|---|---|---|---|---|---|---|---|---|"]
    disagree = 0
    for d in docs:
        for r in d["crossover"]:
            own, blas = r["own"]["median"], r["blas"]["median"]
            own1 = r.get("own1", {}).get("median")
            best = "own" if own <= blas else "blas"
            if own1 is not None and own1 < min(own, blas):
                best = "own/1t"
            fastest = min(own, blas, own1 or own)
            chosen = {"own": own, "own/1t": own1 if own1 is not None else own, "blas": blas}[r["rule"]]
            flag = "" if chosen <= 1.1 * fastest else " (!)"
            disagree += bool(flag)
            lines.append(f"| {r['label']}{' (A^T B)' if r['ta'] else ''}{' (A B^T)' if r['tb'] else ''} "
                         f"| {r['M']}x{r['N']}x{r['K']} | {d['threads']} | {_us(own)} | {_us(blas)} | "
                         f"{blas / own:.2f} | {_us(own1) if own1 is not None else ''} | {r['rule']}{flag} | {best} |")
    lines.append("")
    lines.append(f"(!) marks the rows where the rule's choice is more than 10% slower than the fastest: {disagree}.")
    return "\n".join(lines)


def gflops_table(docs):
    lines = ["| product | M x N x K | threads | fastnn GFLOP/s | scipy sgemm | numpy @ | fastnn / sgemm |",
             "|---|---|---|---|---|---|---|"]
    for d in docs:
        for r in d["gflops"]:
            cell = lambda k: f"{r[k]['median']:.1f} ({r[k]['max']:.0f}-{r[k]['min']:.0f})"  # noqa: E731 (max rate = min time)
            lines.append(f"| {r['label']} | {r['M']}x{r['N']}x{r['K']} | {d['threads']} | {cell('own')} | "
                         f"{cell('blas')} | {cell('numpy')} | {r['own']['median'] / r['blas']['median']:.2f} |")
    return "\n".join(lines)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default 1,2)")
    ap.add_argument("--quick", action="store_true", help="fewer shapes and repetitions")
    ap.add_argument("--repeats", type=int, default=7, help="timed repetitions per contender (default 7)")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: time the crossover by the thread's CPU time, robust to other load on a shared "
                         "machine (meaningful on 1 thread only); default wall")
    ap.add_argument("--no-gflops", action="store_true", help="skip the GFLOP/s table")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.quick, args.repeats, args.clock, not args.no_gflops)
        return
    docs = []
    for t in [int(x) for x in args.threads.split(",")]:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t))
        cmd = [sys.executable, __file__, "--worker", str(t), "--repeats", str(args.repeats), "--clock", args.clock] + \
            (["--quick"] if args.quick else []) + (["--no-gflops"] if args.no_gflops else [])
        out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
        docs.append(json.loads(out.strip().splitlines()[-1]))
    head = (f"Machine: {cpu_model()}, {os.cpu_count()} CPUs; "
            f"fastnn micro-kernel: {docs[0]['cpu_path']}; median of {args.repeats} repetitions (min-max); "
            f"{args.clock} clock.")
    text = "\n\n".join([head, "## Crossover (seconds per call)", crossover_table(docs),
                        "## GFLOP/s", gflops_table(docs)])
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()

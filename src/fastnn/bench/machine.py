"""The machine under test: CPU model, cores, clock, library versions, thread control, and its limits
(the measured float32 GEMM rate of NumPy `@`, and the FMA limit)."""
import contextlib
import os
import platform
import re
import subprocess
import sys
import time

import numpy as np

import fastnn

GEMM_SIZE = 2048
# The FMA limit of BENCHMARKS.md: 2 FMA units x 8 float32 lanes (AVX2) x 2 flops per FMA, per cycle and core --
# except on AMD's first Zen cores (family 17h models below 30h, and Hygon's 18h), whose FMA units are 128 bits wide
# and split each AVX2 FMA in two: 4 lanes a unit. The clock is measured (measured_clock_ghz): such a host, a VM
# whose /proc/cpuinfo read its 2.0 GHz base clock, ran NumPy's sgemm at 42 GFLOP/s a core, above the
# 2 x 4 x 2 x 2.0 = 32 of the base clock; its cores ran dependent adds at 2.9 GHz (46 GFLOP/s a core).
# And except on AMD's Zen 5 EPYC (family 1Ah, models below 20h: Turin) where the CPU shows AVX-512, which fastnn's
# GEMM then uses (gemm.h): its FMA units are 512 bits wide, 16 lanes. On such a host, counted at 8 lanes,
# fastnn's W3 training ran at 126% of the "limit" on one thread.
FMA_UNITS = 2

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # optional: without it the BLAS of NumPy/SciPy keeps its own thread count
    threadpool_info = threadpool_limits = None


def optional(name):
    """The module `name`, or None when it is not installed (or fails to import)."""
    try:
        return __import__(name)
    except Exception:  # a broken optional install is as good as none
        return None


@contextlib.contextmanager
def use_threads(n):
    """Run every library at n threads: fastnn's kernels, PyTorch, and (with threadpoolctl) BLAS and OpenMP."""
    fastnn.set_num_threads(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    limits = threadpool_limits(limits=n) if threadpool_limits else contextlib.nullcontext()
    with limits:
        yield


def python_env():
    """os.environ with a PYTHONPATH under which a fresh interpreter imports this very fastnn."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p))


def _cpuinfo():
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def _lscpu():
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model():
    match = re.search(r"^model name\s*:\s*(.+)$", _cpuinfo(), re.M)
    return match.group(1).strip() if match else (platform.processor() or platform.machine())


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def clock_ghz():
    """(GHz, where it came from): lscpu's max MHz, else cpufreq's max, else /proc/cpuinfo's current MHz."""
    match = re.search(r"^CPU max MHz:\s*([\d.]+)", _lscpu(), re.M)
    if match and float(match.group(1)) > 0:
        return float(match.group(1)) / 1e3, "lscpu CPU max MHz"
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read()) / 1e6, "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", _cpuinfo(), re.M)]
    if mhz:
        return max(mhz) / 1e3, "/proc/cpuinfo cpu MHz"
    return None, "unknown (pass --ghz)"


def measured_clock_ghz(threads, runs=3):
    """The clock of `threads` busy cores in GHz, measured (fastnn._clock: a chain of dependent integer adds on each
    thread at once): the slowest thread's, the best of `runs` (a run that the shared host preempted reads low).
    None where the probe is not built."""
    from fastnn import _clock
    best = None
    for _ in range(runs):
        ghz = _clock.add_chain_ghz(threads)
        if not ghz:
            return None
        best = max(best or 0.0, min(ghz))
    return best


def clocks_ghz(threads, ghz=None):
    """({thread count: GHz}, where they came from): `ghz` for all when given; else each thread count's measured
    clock; else the one clock the system reports (clock_ghz) for all"""
    if ghz:
        return {t: ghz for t in threads}, "--ghz"
    measured = {t: measured_clock_ghz(min(t, cores())) for t in threads}
    if all(measured.values()):
        return measured, "measured: dependent integer adds on that many busy cores"
    clock, source = clock_ghz()
    return {t: clock for t in threads}, source


def fma_lanes(cpuinfo=None):
    """float32 lanes per FMA unit: 4 on AMD Zen / Zen+ (and Hygon Dhyana), 16 on Zen 5 EPYC with AVX-512, 8
    elsewhere (AVX2)"""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    vendor = re.search(r"^vendor_id\s*:\s*(\S+)", text, re.M)
    family = re.search(r"^cpu family\s*:\s*(\d+)", text, re.M)
    model = re.search(r"^model\s*:\s*(\d+)", text, re.M)
    if vendor and family and model:
        vendor, family, model = vendor.group(1), int(family.group(1)), int(model.group(1))
        if (vendor == "AuthenticAMD" and family == 0x17 and model < 0x30) or \
                (vendor == "HygonGenuine" and family == 0x18):
            return 4
        flags = re.search(r"^flags\s*:(.*)$", text, re.M)
        avx512 = flags is not None and "avx512f" in flags.group(1).split()
        if vendor == "AuthenticAMD" and family == 0x1A and model < 0x20 and avx512:
            return 16
    return 8


def fma_limit_gflops(ghz, n_cores, lanes=8):
    return None if ghz is None else FMA_UNITS * lanes * 2 * ghz * n_cores


def versions():
    found = {"python": platform.python_version(), "fastnn": fastnn.__version__, "numpy": np.__version__}
    for name, module in (("scipy", "scipy"), ("torch", "torch"), ("scikit-learn", "sklearn"),
                         ("threadpoolctl", "threadpoolctl"), ("matplotlib", "matplotlib")):
        mod = sys.modules.get(module) or optional(module)
        found[name] = getattr(mod, "__version__", None) if mod else None
    return found


def blas_libraries():
    if threadpool_info is None:
        return []
    return [{k: lib.get(k) for k in ("user_api", "internal_api", "version", "filepath")}
            for lib in threadpool_info()]


def machine_info(ghz=None, threads=(1,)):
    """What the JSON records about the machine, its clock at each of `threads` (thread counts). `ghz` overrides
    the clock measured or read from the system. "ghz" and the FMA limit are those of the largest thread count."""
    by_threads, source = clocks_ghz(sorted(set(threads)), ghz)
    clock = by_threads[max(by_threads)]
    lanes = fma_lanes()
    return {"cpu": cpu_model(), "cores": cores(), "ghz": clock, "ghz_source": source,
            "ghz_by_threads": {str(t): g for t, g in by_threads.items()}, "fma_lanes": lanes,
            "fma_limit_gflops": fma_limit_gflops(clock, cores(), lanes),
            "fma_formula": f"{FMA_UNITS} FMA units x {lanes} float32 lanes x 2 flops x GHz x cores",
            "platform": platform.platform(), "versions": versions(), "libraries": blas_libraries(),
            "threadpoolctl": threadpool_limits is not None}


def gemm_gflops(threads, repeats, size=GEMM_SIZE):
    """GFLOP/s of NumPy `@` on float32 size x size at `threads` threads: one warm-up, then `repeats` samples."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size), dtype=np.float32)
    B = rng.standard_normal((size, size), dtype=np.float32)
    C = np.empty_like(A)
    samples = []
    with use_threads(threads):
        for k in range(repeats + 1):
            start = time.perf_counter()
            np.matmul(A, B, out=C)
            if k:  # the first call is the warm-up
                samples.append(2 * size ** 3 / (time.perf_counter() - start) / 1e9)
    return samples

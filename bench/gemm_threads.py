"""fastnn's own GEMM on 1 thread against 2, at the training products of W2-W4: the measurement behind
SERIAL_MAX_WORK in csrc/dense.pxd (bench/GEMM.md, "Threads"). Run it on an otherwise idle machine:

    python bench/gemm_threads.py

Times are per call (fastnn._gemm.time_gemm: back-to-back calls in one nogil loop), medians of 7, the two
thread counts alternating within each repetition. BLAS is not called, so no BLAS thread pool is running.
"""
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from fastnn import _gemm  # noqa: E402

# (M, N, K, trans_a, trans_b): forward x W is (batch, out, in); dW = x^T dZ is (in, out, batch), A transposed;
# dX = dZ W^T is (batch, in, out), B transposed
SHAPES = [(64, 128, 64, False, False), (64, 128, 64, True, False), (128, 256, 128, False, True),
          (128, 128, 256, False, False), (256, 128, 256, False, False), (32, 256, 784, False, False),
          (128, 256, 784, False, False), (784, 256, 128, True, False), (256, 10, 4096, False, False),
          (8192, 256, 784, False, False)]


def main():
    rng = np.random.default_rng(0)
    for M, N, K, ta, tb in SHAPES:
        A = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
        B = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
        C = np.zeros((M, N), np.float32)
        reps = max(20, int(2e8 / (M * N * K)))
        times = {1: [], 2: []}
        for _ in range(7):
            for t in times:
                times[t].append(_gemm.time_gemm("own", reps, C, A, B, ta, tb, num_threads=t))
        one, two = (statistics.median(times[t]) * 1e6 for t in (1, 2))
        form = "A^T B" if ta else "A B^T" if tb else "A B"
        print(f"{M}x{N}x{K} {form:5} ({M * N * K:.1e} multiply-adds): 1 thread {one:8.1f} us, "
              f"2 threads {two:8.1f} us, speed-up {one / two:.2f}")


if __name__ == "__main__":
    main()

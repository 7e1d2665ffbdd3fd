"""Narrow products (C with fewer than 8 columns: a 1-3 output layer) by fastnn's GEMM on the transpose
(gemm.h's fnn_sgemm_narrow, through gemm.pxd's own_gemm) against scipy's OpenBLAS sgemm, 1 thread: the
measurement behind dense.pxd's narrow_own (only the A^T B form, a narrow layer's dW, goes to fastnn's GEMM).

    python bench/narrow_gemm.py            # medians of 7, each a loop of back-to-back calls

Each product is checked (fastnn against BLAS) before it is timed; the contenders alternate within a repetition.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from fastnn import _gemm  # noqa: E402

# (M, N, K, A^T): W1's output layer at batch 32-256, regression (N = 1) and binary outputs, a wide layer's dW
SHAPES = [(32, 3, 16, False), (64, 3, 16, False), (256, 3, 16, False), (32, 3, 64, False), (32, 1, 16, False),
          (64, 1, 64, False), (128, 1, 128, False), (32, 7, 16, False),
          (16, 3, 32, True), (16, 3, 256, True), (128, 3, 16, True), (64, 1, 32, True), (128, 1, 128, True),
          (256, 1, 256, True), (1024, 3, 256, True)]
REPEATS = 7


def main():
    rng = np.random.default_rng(0)
    print("| M x N x K | form | own us | blas us | blas/own |")
    print("|---|---|---|---|---|")
    for M, N, K, ta in SHAPES:
        A = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
        B = rng.standard_normal((K, N), dtype=np.float32)
        C_own, C_blas = np.empty((M, N), np.float32), np.empty((M, N), np.float32)
        _gemm.time_gemm("own", 1, C_own, A, B, ta)
        _gemm.time_gemm("blas", 1, C_blas, A, B, ta)
        np.testing.assert_allclose(C_own, C_blas, rtol=1e-4, atol=1e-4 * np.sqrt(K))
        reps = int(2e5 / (M * N * K) ** 0.5) + 100
        times = {"own": [], "blas": []}
        for _ in range(REPEATS):
            for impl in times:
                times[impl].append(_gemm.time_gemm(impl, reps, C_own, A, B, ta))
        own, blas = (float(np.median(times[k])) * 1e6 for k in ("own", "blas"))
        print(f"| {M}x{N}x{K} | {'A^T B' if ta else 'A B'} | {own:.2f} | {blas:.2f} | {blas / own:.2f} |")


if __name__ == "__main__":
    main()

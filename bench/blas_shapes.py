"""OpenBLAS (NumPy's, 1 thread) at W4's products, against its 2048^2 rate, and the two facts about its stripes
that csrc/blas.pxd relies on (bench/RESULTS.md, session 8):

    python bench/blas_shapes.py

1. the bits of a product depend on the shape of each call: one call against column / row stripes;
2. the rate of each of W4's products (batch 256) into a preallocated output, and of dW of the 4096x4096 layer
   (K = 256) computed in tiles, as a fused "optimizer step on each tile while in cache" would need.
Medians of 5 interleaved repetitions after a warm-up.
"""
import time

import numpy as np
from threadpoolctl import threadpool_limits


def main():
    rng = np.random.default_rng(0)

    def randn(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    with threadpool_limits(1):
        A, B = randn(256, 4096), randn(4096, 4096)
        one = A @ B
        for width in (512, 1024, 2048):
            cols = np.concatenate([A @ np.ascontiguousarray(B[:, j:j + width]) for j in range(0, 4096, width)], 1)
            print(f"256x4096x4096 in column stripes of {width}: same bits as one call: {np.array_equal(one, cols)}")

        X, W1, H, W2, dZ, S = randn(256, 1024), randn(1024, 4096), randn(256, 4096), B, randn(256, 4096), \
            randn(2048, 2048)
        out = {"2048^2": np.empty((2048, 2048), np.float32), "wide": np.empty((256, 4096), np.float32),
               "dW1": np.empty((1024, 4096), np.float32), "dW2": np.empty((4096, 4096), np.float32)}

        def tiled(tm, tn):
            def run():
                for i in range(0, 4096, tm):
                    for j in range(0, 4096, tn):
                        np.matmul(H[:, i:i + tm].T, dZ[:, j:j + tn], out=out["dW2"][i:i + tm, j:j + tn])
            return run
        cases = {
            "2048^2": (lambda: np.matmul(S, S, out=out["2048^2"]), 2 * 2048 ** 3),
            "forward 256x1024 @ 1024x4096": (lambda: np.matmul(X, W1, out=out["wide"]), 2 * 256 * 1024 * 4096),
            "forward 256x4096 @ 4096x4096": (lambda: np.matmul(H, W2, out=out["wide"]), 2 * 256 * 4096 * 4096),
            "dW1 = X^T dZ (1024x4096, K 256)": (lambda: np.matmul(X.T, dZ, out=out["dW1"]), 2 * 1024 * 4096 * 256),
            "dW2 = H^T dZ (4096x4096, K 256)": (lambda: np.matmul(H.T, dZ, out=out["dW2"]), 2 * 4096 * 4096 * 256),
            "dX2 = dZ W2^T (256x4096, K 4096)": (lambda: np.matmul(dZ, W2.T, out=out["wide"]), 2 * 256 * 4096 * 4096),
        }
        for tm, tn in ((256, 256), (256, 1024), (4096, 1024)):
            cases[f"dW2 in {tm}x{tn} tiles"] = (tiled(tm, tn), 2 * 4096 * 4096 * 256)
        for run, _ in cases.values():      # warm-up: first touch of every output, OpenBLAS's buffers
            run()
        rates = {name: [] for name in cases}
        for _ in range(5):
            for name, (run, flops) in cases.items():
                start = time.perf_counter()
                run()
                rates[name].append(flops / (time.perf_counter() - start) / 1e9)
    base = np.median(rates["2048^2"])
    for name, values in rates.items():
        print(f"{name:34s} {np.median(values):6.1f} GFLOP/s  {np.median(values) / base:.3f} of 2048^2")


if __name__ == "__main__":
    main()

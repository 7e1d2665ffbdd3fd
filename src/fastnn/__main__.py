"""The main job: train the Palmer penguins classifier with the compiled kernels and with the NumPy
reference backend (same data, same initial weights), and print held-out accuracy and training speed.

    python -m fastnn [--epochs 200] [--repeats 3] [--threads N]
"""
import argparse
import time

import numpy as np

import fastnn
from fastnn.datasets import load_penguins, standardize, train_test_split


def train(backend, X_train, y_train, X_test, y_test, epochs, seed):
    model = fastnn.MLP([4, 16, 16, 3], activation="relu", loss="cross_entropy", dtype="float32", seed=seed,
                       backend=backend)
    start = time.perf_counter()
    history = model.fit(X_train, y_train, epochs=epochs, batch_size=32, optimizer=fastnn.optim.Adam(lr=1e-2))
    seconds = time.perf_counter() - start
    return model, history, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastnn", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5, help="timed trainings per backend; the median is shown")
    parser.add_argument("--threads", type=int, default=None, help="compiled kernels' threads (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads is not None:
        fastnn.set_num_threads(args.threads)

    X, y = load_penguins()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=args.seed)
    X_train, X_test = standardize(X_train, X_test)
    print(f"fastnn {fastnn.__version__}: Palmer penguins, {len(X_train)} train / {len(X_test)} test samples, "
          f"MLP [4, 16, 16, 3] relu, softmax cross-entropy, Adam(lr=1e-2), batch 32, {args.epochs} epochs, "
          f"float32, {fastnn.get_num_threads()} thread(s)")
    results = {}
    for backend in ("compiled", "numpy"):
        runs = [train(backend, X_train, y_train, X_test, y_test, args.epochs, args.seed) for _ in range(args.repeats)]
        model, history, _ = runs[0]
        times = sorted(r[2] for r in runs)
        results[backend] = (model, float(np.median(times)))
        samples = args.epochs * len(X_train)
        print(f"  {backend:>8}: test accuracy {model.score(X_test, y_test):.4f}, final loss "
              f"{history.history['loss'][-1]:.4f}, training {np.median(times) * 1e3:.1f} ms "
              f"(min {times[0] * 1e3:.1f}, max {times[-1] * 1e3:.1f}; {samples / np.median(times):,.0f} samples/s)")
    compiled, numpy_ = results["compiled"], results["numpy"]
    drift = np.abs(compiled[0].params - numpy_[0].params).max() / np.abs(numpy_[0].params).max()
    print(f"compiled kernels train {numpy_[1] / compiled[1]:.2f}x faster than the NumPy reference "
          f"(median of {args.repeats}); largest weight difference after training: {drift:.1e} of the largest weight")


if __name__ == "__main__":
    main()

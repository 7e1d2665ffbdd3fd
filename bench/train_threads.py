"""One workload's training on 1 and on 2 threads, alternating epoch by epoch in one process (fit with
warm_start, the model's num_threads switched between epochs), so that the machine's drift hits both alike:
the measurement behind PARALLEL_STEP_MIN_WORK in csrc/_train.pyx. Run it on an otherwise idle machine:

    python bench/train_threads.py W2 20        # workload, rounds (default W2 20)

Prints the median and the best epoch's samples/s per thread count (the best is the least disturbed by other
load on a shared host).
"""
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import fastnn  # noqa: E402
from fastnn.bench.workloads import WORKLOADS, make_data  # noqa: E402


def main():
    workload = WORKLOADS[sys.argv[1] if len(sys.argv) > 1 else "W2"]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    n = min(workload.samples, 20_000)
    X, y = make_data(workload, n)
    model = fastnn.MLP(workload.layers, activation="relu", loss="cross_entropy", dtype="float32", seed=0)
    model.fit(X, y, epochs=1, batch_size=workload.batch)        # warm-up: the first call's one-off work
    speeds = {1: [], 2: []}
    for _ in range(rounds):
        for threads in speeds:
            model.num_threads = threads
            start = time.perf_counter()
            model.fit(X, y, epochs=1, batch_size=workload.batch, warm_start=True)
            speeds[threads].append(n / (time.perf_counter() - start))
    for threads, s in speeds.items():
        print(f"{workload.name} {threads} thread(s): median {statistics.median(s):,.0f}, best {max(s):,.0f} "
              f"samples/s over {rounds} epochs of {n:,}")


if __name__ == "__main__":
    main()

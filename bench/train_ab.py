"""A/B of two builds of fastnn on one workload's training: each source tree (built in place) in its own
processes, the two alternating, so that the machine's drift hits both alike. The measurement behind the
before/after figures in bench/RESULTS.md:

    git worktree add /tmp/before <commit> && (cd /tmp/before && python setup.py build_ext --inplace)
    python bench/train_ab.py W4 1,2 3 /tmp/before/src src     # workload, thread counts, rounds, trees A B
    python bench/train_ab.py W1 1,2 7 /tmp/before/src src 30  # ... and epochs per timed fit (default 1)

Each process times 3 fits (warm_start, after a warm-up epoch) and reports its best; medians over the rounds, in
which A and B take turns to go first. A W1 epoch lasts about 3 ms, so fit's own Python overhead and the timer's
noise weigh on a 1-epoch fit: time 30 epochs a fit there.
"""
import json
import statistics
import subprocess
import sys

CHILD = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
import fastnn
from fastnn.bench.workloads import WORKLOADS, make_data
workload, threads, n, epochs = WORKLOADS[sys.argv[2]], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
fastnn.set_num_threads(threads)
X, y = make_data(workload, n)
model = fastnn.MLP(workload.layers, activation="relu", loss="cross_entropy", dtype="float32", seed=0)
model.fit(X, y, epochs=1, batch_size=workload.batch)
speeds = []
for _ in range(3):
    start = time.perf_counter()
    model.fit(X, y, epochs=epochs, batch_size=workload.batch, warm_start=True)
    speeds.append(epochs * n / (time.perf_counter() - start))
print(json.dumps(max(speeds)))
'''
SAMPLES = {"W1": 10_000, "W2": 20_000, "W3": 12_800, "W4": 1_024}


def main():
    name, threads, rounds, tree_a, tree_b = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    epochs = sys.argv[6] if len(sys.argv) > 6 else "1"
    counts = [int(t) for t in threads.split(",")]
    speeds = {}
    for round_ in range(rounds):
        # A B, then B A: whichever process runs first in a pair was seen to run up to 25% faster on this host,
        # so each tree goes first in half the rounds
        pair = (("A", tree_a), ("B", tree_b))
        for label, tree in pair if round_ % 2 == 0 else pair[::-1]:
            for t in counts:
                out = subprocess.run([sys.executable, "-c", CHILD, tree, name, str(t), str(SAMPLES[name]), epochs],
                                     capture_output=True, text=True, check=True).stdout
                speeds.setdefault((label, t), []).append(json.loads(out))
    for t in counts:
        a, b = statistics.median(speeds["A", t]), statistics.median(speeds["B", t])
        print(f"{name}, {t} thread(s): A {a:,.0f}, B {b:,.0f} samples/s, B/A {b / a:.3f}")


if __name__ == "__main__":
    main()

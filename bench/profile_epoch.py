"""One workload's training epochs for a profiler: fit on the compiled kernels (arguments: workload, epochs,
threads; default W2 1 1). The instruction counts of bench/RESULTS.md ("why the misses") come from

    valgrind --tool=callgrind --toggle-collect='*train_batches*' python bench/profile_epoch.py W2 1
    callgrind_annotate callgrind.out.<pid>

(--toggle-collect counts only the compiled epoch loop, not the interpreter's start-up; callgrind counts
instructions, so the figures do not depend on the machine's other load), and the time shares from

    perf record -e cpu-clock -o perf.data python bench/profile_epoch.py W4 1 2;  perf report -i perf.data
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import fastnn  # noqa: E402
from fastnn.bench.workloads import WORKLOADS, make_data  # noqa: E402


def main():
    workload = WORKLOADS[sys.argv[1] if len(sys.argv) > 1 else "W2"]
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    fastnn.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    X, y = make_data(workload, workload.samples)
    model = fastnn.MLP(workload.layers, activation="relu", loss="cross_entropy", dtype="float32", seed=0)
    model.fit(X, y, epochs=1, batch_size=workload.batch)        # warm-up: the first call's one-off work
    model.fit(X, y, epochs=epochs, batch_size=workload.batch)


if __name__ == "__main__":
    main()

"""fastnn's comparison benchmark: W1-W4 of BENCHMARKS.md trained with fastnn (compiled, at each thread
count), its NumPy reference backend, PyTorch CPU and scikit-learn when installed; run it with

    python -m fastnn.bench [--workloads W1,W2,W3,W4] [--threads 1,2] [--quick] [--repeats N]
                           [--json out.json] [--chart out.png] [--markdown out.md]
"""

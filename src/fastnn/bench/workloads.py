"""The benchmark workloads of BENCHMARKS.md (W1-W4): layer sizes, batch, samples per epoch, and their data.

Inputs are standard-normal float32, labels uniform over the classes; the networks are ReLU MLPs with a
softmax cross-entropy output trained with Adam(lr=1e-3) on shuffled mini-batches.
"""
from dataclasses import dataclass

import numpy as np

LR = 1e-3
INFERENCE_SAMPLES = 10_000
INFERENCE_WORKLOADS = ("W1", "W3")


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    layers: tuple
    batch: int
    samples: int        # per epoch
    quick_samples: int  # per epoch with --quick: a few batches, so a quick run takes seconds

    @property
    def shapes(self):
        """(in, out) of each layer."""
        return list(zip(self.layers[:-1], self.layers[1:]))

    @property
    def n_weights(self):
        return sum(i * o for i, o in self.shapes)

    @property
    def n_params(self):
        return sum(i * o + o for i, o in self.shapes)

    @property
    def flops_per_sample(self):
        """Nominal training flops per sample: forward 2 per weight, backward 4 (dX and dW)."""
        return 6 * self.n_weights

    def describe(self):
        return (f"{self.name} {self.title}: {'-'.join(map(str, self.layers))}, batch {self.batch}, "
                f"{self.n_weights:,} weights")


WORKLOADS = {w.name: w for w in (
    Workload("W1", "penguins", (4, 16, 3), 32, 10_000, 2_000),
    Workload("W2", "digits", (64, 128, 10), 64, 20_000, 2_000),
    Workload("W3", "mnist", (784, 256, 128, 10), 128, 60_000, 2_048),
    Workload("W4", "wide", (1024, 4096, 4096, 10), 256, 8_192, 256),
)}


def parse_workloads(text):
    """"W1,W3" -> [Workload, Workload]; a clear error for unknown names."""
    names = [n.strip().upper() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise ValueError(f"unknown workload(s) {unknown or text!r}; choose from {','.join(WORKLOADS)}")
    return [WORKLOADS[n] for n in dict.fromkeys(names)]


def make_data(workload, n_samples, seed=0):
    """(X, y): standard-normal float32 inputs and int64 labels uniform over the classes."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, workload.layers[0]), dtype=np.float32)
    y = rng.integers(0, workload.layers[-1], n_samples)
    return X, y

"""The contenders: one trainer class per library, each training a workload's MLP from given initial weights.

Every trainer has `train(epochs)` (whole epochs of shuffled mini-batches, Adam(lr=1e-3), float32) and
`predict_proba(X)`. Trainers start from the same initial weights: fastnn's own initialisation, copied.
"""
import warnings

import numpy as np

import fastnn

from .machine import optional
from .workloads import LR


class FastnnTrainer:
    """fastnn.MLP on the compiled kernels or on the NumPy reference backend, through its public fit."""

    def __init__(self, workload, X, y, weights, biases, seed, backend="compiled"):
        self.workload, self.X, self.y = workload, X, y
        self.model = fastnn.MLP(workload.layers, activation="relu", loss="cross_entropy", dtype="float32",
                                seed=seed, backend=backend)
        self.model.weights, self.model.biases = weights, biases
        self.model.fit(X[:workload.batch], y[:workload.batch], epochs=0)  # learns classes_ and takes no step
        self.last_loss = None

    def train(self, epochs):
        history = self.model.fit(self.X, self.y, epochs=epochs, batch_size=self.workload.batch,
                                 optimizer=fastnn.optim.Adam(lr=LR))
        self.last_loss = history.history["loss"][-1]

    def predict_proba(self, X):
        return self.model.predict_proba(X)


class TorchTrainer:
    """torch.nn.Sequential of Linear+ReLU, CrossEntropyLoss, torch.optim.Adam (default or fused=True)."""

    def __init__(self, workload, X, y, weights, biases, seed, fused=False):
        import torch
        self.torch, self.workload = torch, workload
        layers = []
        for k, (W, b) in enumerate(zip(weights, biases)):
            linear = torch.nn.Linear(*W.shape)
            with torch.no_grad():  # torch stores W as (out, in): ours transposed
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(torch.from_numpy(b))
            layers += [linear, torch.nn.ReLU()] if k < len(weights) - 1 else [linear]
        self.model = torch.nn.Sequential(*layers)
        self.loss = torch.nn.CrossEntropyLoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR, **({"fused": True} if fused else {}))
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.generator = torch.Generator().manual_seed(seed)

    def train(self, epochs):
        n, batch = len(self.X), self.workload.batch
        for _ in range(epochs):
            order = self.torch.randperm(n, generator=self.generator)
            X, y = self.X[order], self.y[order]  # one gather per epoch, as fastnn's fit
            for lo in range(0, n, batch):
                self.optimizer.zero_grad()
                self.loss(self.model(X[lo: lo + batch]), y[lo: lo + batch]).backward()
                self.optimizer.step()

    def predict_proba(self, X):
        with self.torch.inference_mode():
            return self.torch.softmax(self.model(self.torch.from_numpy(X)), dim=1).numpy()


class SklearnTrainer:
    """scikit-learn MLPClassifier(solver="adam") with fastnn's settings: no L2 (alpha=0), no early stop."""

    def __init__(self, workload, X, y, weights, biases, seed):
        from sklearn.neural_network import MLPClassifier
        self.X, self.y = X, y
        self.model = MLPClassifier(hidden_layer_sizes=workload.layers[1:-1], activation="relu", solver="adam",
                                   alpha=0.0, batch_size=workload.batch, learning_rate_init=LR, shuffle=True,
                                   random_state=seed, tol=0.0, n_iter_no_change=2 ** 31 - 1, warm_start=True)
        # partial_fit builds the network (all classes declared); then our weights replace its initialisation.
        # warm_start keeps them through fit, which starts a fresh Adam, as fastnn's fit does.
        self.model.partial_fit(X[:workload.batch], y[:workload.batch], classes=np.arange(workload.layers[-1]))
        self.model.coefs_ = [W.copy() for W in weights]
        self.model.intercepts_ = [b.copy() for b in biases]

    def train(self, epochs):
        from sklearn.exceptions import ConvergenceWarning
        self.model.max_iter = epochs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # it trains exactly max_iter epochs, as asked
            self.model.fit(self.X, self.y)

    def predict_proba(self, X):
        return self.model.predict_proba(X)


def _fused_torch(*args):
    return TorchTrainer(*args, fused=True)


def _reference(*args):
    return FastnnTrainer(*args, backend="numpy")


# name -> (the module it needs, the trainer factory); "fastnn" comes first: the others are compared to it.
CONTENDERS = {
    "fastnn": (None, FastnnTrainer),
    "reference": (None, _reference),
    "torch": ("torch", TorchTrainer),
    "torch fused": ("torch", _fused_torch),
    "sklearn": ("sklearn", SklearnTrainer),
}


def available(names):
    """The contenders among `names` whose library is installed, and a note for each that is not."""
    chosen, notes = [], []
    for name in names:
        needs = CONTENDERS[name][0]
        if needs is None or optional(needs) is not None:
            chosen.append(name)
        else:
            notes.append(f"{name}: skipped, {needs} is not installed")
    return chosen, notes


def parse_contenders(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown or not names:
        raise ValueError(f"unknown contender(s) {unknown or text!r}; choose from {','.join(CONTENDERS)}")
    return ["fastnn"] + [n for n in dict.fromkeys(names) if n != "fastnn"]

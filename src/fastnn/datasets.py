"""Small data sets shipped with fastnn, and the two helpers the examples need to use them."""
import csv
from importlib import resources

import numpy as np

__all__ = ["load_penguins", "train_test_split", "standardize"]

PENGUIN_FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")


def load_penguins():
    """The Palmer penguins (CC0): X (n, 4) float64 measurements, y (n,) species names.

    Rows with a missing measurement are dropped (2 of 344)."""
    with resources.files("fastnn").joinpath("data/penguins.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(r[c] != "NA" for c in PENGUIN_FEATURES)]
    X = np.array([[float(r[c]) for c in PENGUIN_FEATURES] for r in rows])
    y = np.array([r["species"] for r in rows])
    return X, y


def train_test_split(X, y, test_size=0.2, seed=0):
    """Stratified split: each class keeps its share in both parts. Returns X_train, X_test, y_train, y_test."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        test.extend(members[: int(round(test_size * len(members)))])
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test] = True
    return X[~is_test], X[is_test], y[~is_test], y[is_test]


def standardize(X_train, *others):
    """Scale columns to zero mean and unit variance using the training part's statistics."""
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    return [(a - mean) / std for a in (X_train, *others)]

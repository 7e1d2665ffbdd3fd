"""The data side of fit: the validation split and the per-sample weights, checked."""
import numbers

import numpy as np

__all__ = ["stratified_split", "random_split", "sample_weights_from_class_weight", "check_sample_weight"]


def _check_fraction(fraction):
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise ValueError(f"the validation fraction (validation_split) must be a number strictly between 0 and 1, "
                         f"got {fraction!r}")
    return float(fraction)


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _indices(is_val):
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def stratified_split(labels, fraction, rng):
    """Split sample indices into (train_index, val_index) so that each class keeps its share: round(fraction *
    count) of a class's samples go to validation, chosen at random. A class always keeps at least one sample
    in training, so a class with a single sample is never held out. Both index arrays are sorted.

    labels: 1-D class labels (indices or any sortable labels) of the samples in their original order, before
    any shuffling.  fraction: 0 < fraction < 1.  rng: a numpy Generator."""
    fraction = _check_fraction(fraction)
    _check_rng(rng)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"a stratified split needs 1-D class labels, got shape {labels.shape}")
    is_val = np.zeros(labels.shape[0], dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        # at least one sample stays in training, or the model would never see the class
        is_val[members[: min(int(round(fraction * len(members))), len(members) - 1)]] = True
    if not is_val.any():
        raise ValueError(f"validation_split={fraction} of {labels.shape[0]} samples holds out no sample of any "
                         f"class: use a larger fraction, or pass validation_data")
    return _indices(is_val)


def random_split(n, fraction, rng):
    """Split range(n) into (train_index, val_index) at random, with round(fraction * n) samples in validation
    (for regression, where there are no classes to stratify). Both index arrays are sorted."""
    fraction = _check_fraction(fraction)
    _check_rng(rng)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a number of samples (an integer >= 0), got {n!r}")
    n_val = int(round(fraction * n))
    if not 0 < n_val < n:
        raise ValueError(f"validation_split={fraction} of {n} samples leaves {n_val} for validation and "
                         f"{n - n_val} for training; both need at least one")
    is_val = np.zeros(n, dtype=bool)
    is_val[rng.permutation(n)[:n_val]] = True
    return _indices(is_val)


def check_sample_weight(sample_weight, n_samples, what="sample_weight"):
    """sample_weight as a float64 array of n_samples finite, non-negative weights, not all zero."""
    weights = np.asarray(sample_weight.to_numpy() if hasattr(sample_weight, "to_numpy") else sample_weight)
    if weights.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric, got dtype {weights.dtype}")
    weights = weights.astype(np.float64)
    if weights.shape != (n_samples,):
        raise ValueError(f"{what} must have shape ({n_samples},), one weight per sample, got {weights.shape}")
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"{what} contains NaN or inf")
    if np.any(weights < 0):
        raise ValueError(f"{what} must be >= 0; the smallest is {weights.min()}")
    if not np.any(weights > 0):
        raise ValueError(f"{what} is zero for every sample: there is nothing to learn from")
    return weights


def sample_weights_from_class_weight(class_weight, y_index, n_classes, classes=None):
    """Per-sample float64 weights from a class_weight.

    class_weight: "balanced" (n_samples / (n_classes * count of the class), scikit-learn's
    compute_class_weight) or a dict {class: weight}; classes not in the dict weigh 1.
    y_index: the class index (0..n_classes-1) of each sample.
    classes: the class labels (the model's `classes_`). When given, the dict's keys are labels, as in
    scikit-learn. Otherwise they are class indices."""
    y_index = np.asarray(y_index)
    if y_index.ndim != 1 or y_index.dtype.kind not in "iu":
        raise ValueError(f"y_index must be 1-D integer class indices, got shape {y_index.shape} and dtype "
                         f"{y_index.dtype}")
    if y_index.size and (y_index.min() < 0 or y_index.max() >= n_classes):
        raise ValueError(f"y_index must lie in 0..{n_classes - 1}, got values from {y_index.min()} to "
                         f"{y_index.max()}")
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be 'balanced' or a dict {{class: weight}}, got {class_weight!r}")
        counts = np.bincount(y_index, minlength=n_classes)
        # a class absent from y gets no weight, as no sample needs one (it would divide by zero)
        per_class = y_index.size / (n_classes * np.maximum(counts, 1))
    elif isinstance(class_weight, dict):
        per_class = np.ones(n_classes)
        names = list(range(n_classes)) if classes is None else [c.item() if hasattr(c, "item") else c
                                                                 for c in classes]
        for key, weight in class_weight.items():
            key = key.item() if hasattr(key, "item") else key
            if isinstance(key, bool) or key not in names:
                raise ValueError(f"class_weight has a key {key!r} that is not a class; the classes are "
                                 f"{names if classes is not None else f'the indices 0..{n_classes - 1}'}")
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not np.isfinite(weight) \
                    or weight < 0:
                raise ValueError(f"class_weight[{key!r}] must be a finite number >= 0, got {weight!r}")
            per_class[names.index(key)] = weight
    else:
        raise TypeError(f"class_weight must be 'balanced' or a dict {{class: weight}}, "
                        f"got {type(class_weight).__name__}")
    return check_sample_weight(per_class[y_index], y_index.shape[0], what="the class weights of the samples")

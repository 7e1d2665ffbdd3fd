"""fit's data helpers: the stratified and random validation splits, class and sample weights."""
import numpy as np
import pytest

from fastnn.training import check_sample_weight, random_split, sample_weights_from_class_weight, stratified_split


def shuffled_labels(rng, counts, names=None):
    names = list(range(len(counts))) if names is None else names
    return rng.permutation(np.repeat(np.array(names), counts))


def assert_partition(train, val, n):
    assert train.dtype.kind == "i" and val.dtype.kind == "i"
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)  # sorted, no repeats
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.35])
def test_stratified_split_keeps_each_class_share(fraction, rng):
    counts = [50, 30, 20, 7]
    labels = shuffled_labels(rng, counts)
    train, val = stratified_split(labels, fraction, rng)
    assert_partition(train, val, len(labels))
    np.testing.assert_array_equal(np.bincount(labels[val], minlength=4), np.round(fraction * np.array(counts)))
    np.testing.assert_array_equal(np.bincount(labels[train], minlength=4),
                                  np.array(counts) - np.round(fraction * np.array(counts)))


def test_stratified_split_takes_string_labels(rng):
    labels = shuffled_labels(rng, [40, 20], names=["Adelie", "Gentoo"])
    train, val = stratified_split(labels, 0.25, rng)
    assert_partition(train, val, 60)
    assert sorted(labels[val].tolist()) == ["Adelie"] * 10 + ["Gentoo"] * 5


def test_stratified_split_keeps_every_class_in_training(rng):
    labels = shuffled_labels(rng, [20, 2, 1])
    train, val = stratified_split(labels, 0.9, rng)
    # round(0.9 * count) would hold out 18, 2 and 1: the two small classes each keep one sample
    assert np.bincount(labels[train], minlength=3).tolist() == [2, 1, 1]
    assert np.bincount(labels[val], minlength=3).tolist() == [18, 1, 0]


def test_stratified_split_is_random_and_reproducible(rng):
    labels = shuffled_labels(rng, [100, 100])
    seed = int(rng.integers(2**32))
    first = stratified_split(labels, 0.2, np.random.default_rng(seed))
    again = stratified_split(labels, 0.2, np.random.default_rng(seed))
    other = stratified_split(labels, 0.2, np.random.default_rng(seed + 1))
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_stratified_split_refuses_an_empty_validation_set(rng):
    with pytest.raises(ValueError, match="holds out no sample"):
        stratified_split(np.array([0, 0, 1, 1, 2]), 0.1, rng)
    with pytest.raises(ValueError, match="1-D"):
        stratified_split(np.zeros((4, 2)), 0.5, rng)


def test_random_split(rng):
    train, val = random_split(103, 0.3, rng)
    assert_partition(train, val, 103)
    assert len(val) == 31
    with pytest.raises(ValueError, match="both need at least one"):
        random_split(3, 0.1, rng)
    with pytest.raises(ValueError, match="both need at least one"):
        random_split(1, 0.5, rng)


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.2, 1.5, float("nan"), True, "0.2", None])
def test_splits_reject_a_fraction_outside_zero_one(fraction, rng):
    for split in (lambda: stratified_split(np.arange(10) % 2, fraction, rng),
                  lambda: random_split(10, fraction, rng)):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            split()


def test_splits_want_a_generator():
    with pytest.raises(TypeError, match="Generator"):
        random_split(10, 0.2, 42)


# ---------------------------------------------------------------- weights
def test_balanced_class_weights_follow_scikit_learns_formula(rng):
    counts = np.array([60, 25, 10, 5])
    y = shuffled_labels(rng, counts)
    weights = sample_weights_from_class_weight("balanced", y, 4)
    assert weights.dtype == np.float64
    np.testing.assert_allclose(weights, (len(y) / (4 * counts))[y], rtol=1e-15)
    # each class then carries the same total weight
    np.testing.assert_allclose(np.bincount(y, weights), len(y) / 4, rtol=1e-13)
    try:
        from sklearn.utils.class_weight import compute_class_weight
    except ImportError:
        return
    np.testing.assert_allclose(weights, compute_class_weight("balanced", classes=np.arange(4), y=y)[y], rtol=1e-15)


def test_class_weight_dict_by_index_and_by_label():
    y = np.array([0, 1, 2, 1, 0])
    np.testing.assert_array_equal(sample_weights_from_class_weight({1: 3.0, 2: 0.5}, y, 3), [1, 3, 0.5, 3, 1])
    classes = np.array(["Adelie", "Chinstrap", "Gentoo"])
    np.testing.assert_array_equal(sample_weights_from_class_weight({"Gentoo": 2, np.str_("Adelie"): 0}, y, 3,
                                                                   classes=classes), [0, 1, 2, 1, 0])
    np.testing.assert_array_equal(sample_weights_from_class_weight({np.int64(0): 4.0}, y, 3), [4, 1, 1, 1, 4])


@pytest.mark.parametrize("class_weight, classes, error, match", [
    ({3: 1.0}, None, ValueError, r"key 3 that is not a class; the classes are the indices 0..2"),
    ({"Gentoo": 1.0}, None, ValueError, "key 'Gentoo'"),
    ({0: 1.0}, ["a", "b", "c"], ValueError, r"key 0 that is not a class; the classes are \['a', 'b', 'c'\]"),
    ({True: 1.0}, None, ValueError, "key True"),
    ({0: -1.0}, None, ValueError, r"class_weight\[0\] must be a finite number >= 0"),
    ({0: float("nan")}, None, ValueError, r"class_weight\[0\]"),
    ({0: "2"}, None, ValueError, r"class_weight\[0\]"),
    ({0: 0.0, 1: 0.0, 2: 0.0}, None, ValueError, "zero for every sample"),
    ("Balanced", None, ValueError, "'balanced' or a dict"),
    ([1.0, 2.0, 3.0], None, TypeError, "'balanced' or a dict"),
])
def test_class_weight_rejects_bad_input(class_weight, classes, error, match):
    with pytest.raises(error, match=match):
        sample_weights_from_class_weight(class_weight, np.array([0, 1, 2, 1]), 3, classes=classes)


def test_class_weight_rejects_bad_class_indices():
    with pytest.raises(ValueError, match=r"0..2"):
        sample_weights_from_class_weight("balanced", np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="integer class indices"):
        sample_weights_from_class_weight("balanced", np.array([0.0, 1.0]), 3)


def test_check_sample_weight():
    weights = check_sample_weight([1, 0, 2.5], 3)
    assert weights.dtype == np.float64 and weights.tolist() == [1.0, 0.0, 2.5]
    for bad, match in (([1, 2], r"shape \(3,\)"), ([1, np.nan, 1], "NaN or inf"), ([1, -1, 1], ">= 0"),
                       ([0, 0, 0], "zero for every sample"), (["a", "b", "c"], "numeric"),
                       (np.ones((3, 1)), r"shape \(3,\)")):
        with pytest.raises((ValueError, TypeError), match=match):
            check_sample_weight(bad, 3)

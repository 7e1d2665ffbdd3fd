"""The scikit-learn estimators: scikit-learn's own estimator checks, then what those checks do not cover
(label kinds, multilabel, multi-output, pandas, pipelines and searches, pickling, partial_fit, dtypes)."""
import pickle
import tracemalloc

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_blobs, make_multilabel_classification, make_regression  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


# Every check runs and none is expected to fail: there is no expected_failed_checks. scikit-learn itself skips
# three: the decision_function check of MLPClassifier, which has none (as scikit-learn's), and two array-API
# checks, which run only when SCIPY_ARRAY_API=1 is set before SciPy is imported (with it, both pass).
# check_sample_weight_equivalence_on_dense_data passes: its data sets are smaller than batch_size="auto"
# (200), so each epoch is one full batch, whose weighted mean loss equals the mean over repeated samples.
@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def blobs(n=150, centers=3, seed=0):
    X, y = make_blobs(n_samples=n, centers=centers, n_features=4, cluster_std=1.0, random_state=seed)
    return StandardScaler().fit_transform(X), y


# small and quick; n_iter_no_change > max_iter turns the convergence test off, so that every fit runs max_iter
FAST = dict(hidden_layer_sizes=(16,), max_iter=60, batch_size=32, learning_rate_init=1e-2, n_iter_no_change=1000,
            random_state=0)


# ---------------------------------------------------------------- labels and targets
@pytest.mark.parametrize("labels", [np.array(["Adelie", "Chinstrap", "Gentoo"]), np.array([3, 7, 10]),
                                    np.array([-1.0, 0.0, 2.0])], ids=["strings", "integers", "integral-floats"])
def test_labels_of_any_kind_come_back_as_themselves(labels):
    X, idx = blobs()
    y = labels[idx]
    clf = MLPClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    pred, proba = clf.predict(X), clf.predict_proba(X)
    assert pred.dtype == y.dtype and set(pred) <= set(labels)
    np.testing.assert_array_equal(pred, clf.classes_[np.argmax(proba, axis=1)])  # columns follow classes_
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert clf.score(X, y) > 0.9


def test_boolean_labels_binary_problem():
    X, idx = blobs(centers=2)
    y = idx.astype(bool)
    clf = MLPClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [False, True])
    assert clf.predict(X).dtype == bool and clf.predict_proba(X).shape == (len(X), 2)
    assert clf.score(X, y) > 0.9


def test_multilabel_indicator_uses_one_sigmoid_per_label():
    X, Y = make_multilabel_classification(n_samples=300, n_features=8, n_classes=4, random_state=0)
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(**{**FAST, "max_iter": 150}).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.model_.loss == "binary_cross_entropy"
    np.testing.assert_array_equal(clf.classes_, np.arange(4))
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and np.all((proba >= 0) & (proba <= 1))
    pred = clf.predict(X)
    assert pred.shape == Y.shape and pred.dtype == Y.dtype
    np.testing.assert_array_equal(pred, (proba >= 0.5).astype(Y.dtype))
    majority = np.maximum(Y.mean(axis=0), 1 - Y.mean(axis=0))  # per-label accuracy of a constant guess
    assert np.all((pred == Y).mean(axis=0) > majority)


def test_multi_output_regression():
    X, Y = make_regression(n_samples=200, n_features=6, n_targets=3, noise=1.0, random_state=0)
    Y = StandardScaler().fit_transform(Y)
    reg = MLPRegressor(**{**FAST, "max_iter": 200}).fit(X, Y)
    assert reg.n_outputs_ == 3 and reg.predict(X).shape == (200, 3)
    assert reg.score(X, Y) > 0.9
    single = MLPRegressor(**FAST).fit(X, Y[:, 0])
    assert single.predict(X).shape == (200,)


def test_regression_target_is_refused_by_the_classifier():
    X, _ = blobs()
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier(**FAST).fit(X, np.linspace(0, 1, len(X)))


# ---------------------------------------------------------------- fitted attributes
def test_fitted_attributes():
    X, y = blobs()
    clf = MLPClassifier(**{**FAST, "hidden_layer_sizes": (16, 8)}).fit(X, y)
    assert [w.shape for w in clf.coefs_] == [(4, 16), (16, 8), (8, 3)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (8,), (3,)]
    assert clf.n_features_in_ == 4 and clf.n_layers_ == 4 and clf.n_outputs_ == 3
    assert clf.n_iter_ == 60 == len(clf.loss_curve_)
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.loss_curve_[-1] < clf.loss_curve_[0] / 5
    assert clf.validation_scores_ is None
    clf.coefs_[0][...] = 0  # live views: the model sees the change
    np.testing.assert_array_equal(clf.model_.weights[0], 0)


def test_unfitted_estimator_says_so():
    clf = MLPClassifier()
    with pytest.raises(NotFittedError):
        clf.predict(np.zeros((2, 4)))
    with pytest.raises(NotFittedError):
        clf.coefs_


@pytest.mark.parametrize("param, value, error, match", [
    ("hidden_layer_sizes", (16, 0), ValueError, "hidden layer size"),
    ("hidden_layer_sizes", "16", TypeError, "hidden_layer_sizes"),
    ("activation", "swish", ValueError, "unknown activation 'swish'"),
    ("solver", "lbfgs", ValueError, "solver must be one of"),
    ("learning_rate_init", 0.0, ValueError, "learning_rate_init"),
    ("beta_2", 1.0, ValueError, "beta_2"),
    ("batch_size", 0, ValueError, "batch_size"),
    ("batch_size", "all", TypeError, "batch_size"),
    ("max_iter", 2.5, TypeError, "max_iter"),
    ("validation_fraction", 1.0, ValueError, "validation_fraction"),
    ("dropout", 1.0, ValueError, "dropout"),
    ("num_threads", 0, ValueError, "num_threads"),
    ("dtype", "float16", ValueError, "dtype"),
    ("shuffle", "yes", TypeError, "shuffle"),
])
def test_bad_hyper_parameters_are_named_at_fit_not_at_init(param, value, error, match):
    X, y = blobs()
    clf = MLPClassifier(**{**FAST, param: value})  # scikit-learn convention: __init__ only stores
    assert clf.get_params()[param] == value
    with pytest.raises(error, match=match):
        clf.fit(X, y)


@pytest.mark.parametrize("solver, cls", [("adam", fastnn.optim.Adam), ("adamw", fastnn.optim.AdamW),
                                         ("sgd", fastnn.optim.SGD), ("rmsprop", fastnn.optim.RMSprop),
                                         ("adagrad", fastnn.optim.Adagrad)])
def test_every_solver_trains(solver, cls):
    X, y = blobs()
    clf = MLPClassifier(**{**FAST, "solver": solver}).fit(X, y)
    assert type(clf.model_.optimizer_) is cls and clf.model_.optimizer_.lr == 1e-2
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 2 and clf.score(X, y) > 0.9


def test_model_options_reach_the_model():
    X, y = blobs()
    clf = MLPClassifier(**{**FAST, "hidden_layer_sizes": (8, 8), "activation": "logistic", "dropout": 0.25,
                           "num_threads": 1, "weight_decay": 1e-3}).fit(X, y)
    model = clf.model_
    assert model.activation == "sigmoid" and model.dropout == [0.25, 0.25] and model.num_threads == 1
    assert model.optimizer_.weight_decay == 1e-3 and model.layer_sizes == [4, 8, 8, 3]


def test_fastnn_optimizer_as_solver_is_used_and_left_untouched():
    X, y = blobs()
    adam = fastnn.optim.Adam(lr=1e-2)
    clf = MLPClassifier(**{**FAST, "solver": adam}).fit(X, y)
    assert adam.step_count == 0 and not adam.state
    assert clf.model_.optimizer_.step_count == 60 * 5 and clf.model_.optimizer_.lr == 1e-2  # 150 samples, batch 32
    same = MLPClassifier(**{**FAST, "solver": "adam"}).fit(X, y)  # adam with learning_rate_init=1e-2
    np.testing.assert_array_equal(clf.predict_proba(X), same.predict_proba(X))


def test_predict_log_proba_is_the_log_of_predict_proba():
    X, y = blobs()
    clf = MLPClassifier(**FAST).fit(X, y)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)))


def test_same_random_state_same_model_other_state_other_model():
    X, y = blobs()
    a, b = MLPClassifier(**FAST).fit(X, y), MLPClassifier(**FAST).fit(X, y)
    c = MLPClassifier(**{**FAST, "random_state": 1}).fit(X, y)
    np.testing.assert_array_equal(a.model_.params, b.model_.params)
    assert not np.array_equal(a.model_.params, c.model_.params)


# ---------------------------------------------------------------- dtypes and copies
@pytest.mark.parametrize("x_dtype, param, model_dtype", [
    (np.float64, None, np.float64), (np.float32, None, np.float32), (np.float16, None, np.float64),
    (np.int64, None, np.float64), (np.float64, "float32", np.float32)])
def test_float_dtype_rule(x_dtype, param, model_dtype):
    X, y = blobs()
    X = (X * 4).astype(x_dtype)
    clf = MLPClassifier(**{**FAST, "dtype": param}).fit(X, y)
    assert clf.model_.dtype == model_dtype and clf.predict_proba(X).dtype == model_dtype


def peak_bytes_of_predict_proba(clf, X):
    clf.predict_proba(X[:10])  # warm up: lazy imports, small workspaces
    tracemalloc.start()
    clf.predict_proba(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def wide_model_and_input(x_dtype, order):
    """A model on 64 features, and a 100,000-row input: a copy of it would dwarf every other allocation
    (the (n, 3) output, the finiteness checks' boolean masks, the hidden layer's chunk workspace)."""
    X, y = make_blobs(n_samples=150, centers=3, n_features=64, random_state=0)
    clf = MLPClassifier(**{**FAST, "hidden_layer_sizes": (4,)}).fit(X.astype(x_dtype), y)
    big = np.random.default_rng(0).standard_normal((100_000, 64)).astype(x_dtype)
    return clf, np.asarray(big, order=order)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_does_not_copy_inputs_of_the_right_dtype_and_layout(dtype):
    clf, big = wide_model_and_input(dtype, "C")
    peak = peak_bytes_of_predict_proba(clf, big)
    assert peak < big.nbytes / 2, f"predict_proba allocated {peak} bytes for a {big.nbytes}-byte input"


def test_fortran_ordered_float16_input_is_converted_once():
    clf, big = wide_model_and_input(np.float16, "F")
    converted = big.size * 8  # one float64 C-ordered copy
    peak = peak_bytes_of_predict_proba(clf, big)
    assert converted <= peak < 1.5 * converted, f"predict_proba allocated {peak} bytes, one copy is {converted}"


# ---------------------------------------------------------------- pandas
def test_pandas_dataframe_and_series():
    pd = pytest.importorskip("pandas")
    from fastnn.datasets import PENGUIN_FEATURES, load_penguins
    X, y = load_penguins()
    frame = pd.DataFrame(X, columns=list(PENGUIN_FEATURES))
    species = pd.Series(y, name="species")
    model = make_pipeline(StandardScaler(), MLPClassifier(**FAST)).fit(frame, species)
    clf = model[-1]
    np.testing.assert_array_equal(model.feature_names_in_, PENGUIN_FEATURES)
    np.testing.assert_array_equal(clf.classes_, ["Adelie", "Chinstrap", "Gentoo"])
    assert model.score(frame, species) > 0.95
    bare = MLPClassifier(**FAST).fit(frame, species)
    np.testing.assert_array_equal(bare.feature_names_in_, PENGUIN_FEATURES)
    with pytest.raises(ValueError, match="feature names"):
        bare.predict(frame.rename(columns={"body_mass_g": "mass"}))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        bare.predict(X)


# ---------------------------------------------------------------- the scikit-learn ecosystem
def test_clone_pipeline_cross_val_score():
    X, y = blobs()
    clf = MLPClassifier(**FAST).fit(X, y)
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "model_")
    scores = cross_val_score(make_pipeline(StandardScaler(), fresh), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9


def test_grid_search_in_two_processes_matches_one():
    X, y = blobs()
    grid = {"hidden_layer_sizes": [(4,), (16,)], "learning_rate_init": [1e-3, 1e-2]}
    searches = [GridSearchCV(MLPClassifier(**FAST), grid, cv=3, n_jobs=n_jobs).fit(X, y) for n_jobs in (1, 2)]
    one, two = (s.cv_results_["mean_test_score"] for s in searches)
    np.testing.assert_array_equal(one, two)  # same seeds: the worker processes computed the same models
    assert searches[1].best_params_ == searches[0].best_params_
    assert searches[1].best_estimator_.score(X, y) > 0.9


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_pickle_round_trip(Estimator):
    X, y = blobs()
    est = Estimator(**FAST).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    np.testing.assert_array_equal(back.model_.params, est.model_.params)
    assert back.get_params() == est.get_params() and back.loss_curve_ == est.loss_curve_
    assert back.model_ is not est.model_ and back.model_.weights[0].base is not None  # views of a new buffer


def test_import_fastnn_leaves_sklearn_unimported_until_asked():
    code = ("import sys, fastnn; assert 'sklearn' not in sys.modules; "
            "assert fastnn.MLPClassifier is __import__('fastnn.sklearn').sklearn.MLPClassifier; "
            "assert 'sklearn' in sys.modules")
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- incremental training and weights
def test_partial_fit_needs_classes_first_and_refuses_unknown_labels():
    X, y = blobs()
    clf = MLPClassifier(**FAST)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # a batch may lack classes
    assert clf.predict_proba(X).shape == (len(X), 3) and clf.n_iter_ == 1
    with pytest.raises(ValueError, match="labels never seen in fit"):
        clf.partial_fit(X[:5], np.full(5, 7))


def test_partial_fit_continues_where_it_stopped():
    X, y = blobs()
    clf = MLPClassifier(**FAST)
    for _ in range(20):
        clf.partial_fit(X, y, classes=np.unique(y))
    assert clf.n_iter_ == 20 and len(clf.loss_curve_) == 20
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 2 and clf.score(X, y) > 0.9
    assert clf.model_.optimizer_.step_count == 20 * 5  # one optimizer across calls: its state is kept


def test_partial_fit_after_unpickling_equals_partial_fit_without():
    X, y = blobs()
    a = MLPRegressor(**FAST).partial_fit(X, y)
    b = pickle.loads(pickle.dumps(a))
    a.partial_fit(X, y)
    b.partial_fit(X, y)
    np.testing.assert_allclose(b.predict(X), a.predict(X), rtol=1e-12)


def test_warm_start_keeps_training():
    X, y = blobs()
    clf = MLPClassifier(**{**FAST, "warm_start": True}).fit(X, y)
    first = clf.model_
    clf.fit(X, y)
    assert clf.model_ is first and clf.n_iter_ == 120 and len(clf.loss_curve_) == 120
    assert clf.loss_curve_[60] < clf.loss_curve_[0] / 2  # the second fit started from trained weights


def test_class_weight_is_sample_weight_per_class():
    from sklearn.utils.class_weight import compute_sample_weight
    X, y = blobs()
    weights = {0: 5.0, 1: 1.0, 2: 0.5}
    by_class = MLPClassifier(**{**FAST, "class_weight": weights}).fit(X, y)
    by_sample = MLPClassifier(**FAST).fit(X, y, sample_weight=compute_sample_weight(weights, y))
    np.testing.assert_array_equal(by_class.predict_proba(X), by_sample.predict_proba(X))
    plain = MLPClassifier(**FAST).fit(X, y)
    assert not np.array_equal(plain.predict_proba(X), by_class.predict_proba(X))


def test_balanced_class_weight_is_refused_by_partial_fit():
    X, y = blobs()
    with pytest.raises(ValueError, match="balanced"):
        MLPClassifier(**{**FAST, "class_weight": "balanced"}).partial_fit(X, y, classes=[0, 1, 2])


def test_training_stops_when_the_loss_stops_improving_by_tol():
    X, y = blobs()
    clf = MLPClassifier(**{**FAST, "tol": 0.01, "n_iter_no_change": 3}).fit(X, y)
    assert 3 < clf.n_iter_ < clf.max_iter
    curve = clf.loss_curve_  # the last n_iter_no_change epochs did not beat the best loss before them by tol
    assert min(curve[-3:]) > min(curve[:-3]) - 0.01


def test_early_stopping_records_validation_scores():
    X, y = blobs(n=300)
    clf = MLPClassifier(**{**FAST, "max_iter": 500, "early_stopping": True, "n_iter_no_change": 5}).fit(X, y)
    assert clf.n_iter_ < 500 and len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.9 and clf.best_loss_ is None

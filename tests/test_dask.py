"""Scaling out on Dask: a GridSearchCV on Dask workers through joblib's Dask backend, and predict_proba over
a Dask array and a Dask DataFrame, against a LocalCluster of two worker processes. The fitted model travels
to the workers by pickle and by fastnn's own save format (.npz bytes loaded on the worker)."""
import io
import os

import numpy as np
import pytest

pytest.importorskip("sklearn")
distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

import fastnn  # noqa: E402
from fastnn.sklearn import MLPClassifier  # noqa: E402

FAST = dict(hidden_layer_sizes=(16,), max_iter=60, batch_size=32, learning_rate_init=1e-2, random_state=0)
FEATURES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs(n_samples=150, centers=3, n_features=4, random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    new = np.random.default_rng(0).standard_normal((2000, 4))
    return X, labels, new


def ran_on_workers(task_stream, client):
    """The worker processes the recorded tasks ran on: real processes, not this one."""
    workers = {task["worker"] for task in task_stream.data}
    pids = client.run(os.getpid)
    assert workers and workers <= set(pids) and os.getpid() not in pids.values()
    return workers


def npz_bytes(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    return path.read_bytes()


def test_grid_search_on_dask_workers_through_joblib(client, data):
    from joblib import parallel_backend
    X, y, _ = data
    grid = {"hidden_layer_sizes": [(4,), (16,)], "learning_rate_init": [1e-3, 1e-2]}
    local = GridSearchCV(MLPClassifier(**FAST), grid, cv=3).fit(X, y)
    with distributed.get_task_stream(client) as tasks, parallel_backend("dask"):
        remote = GridSearchCV(MLPClassifier(**FAST), grid, cv=3, n_jobs=-1).fit(X, y)
    ran_on_workers(tasks, client)
    # the same seeds: the workers trained the same models as this process
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    assert remote.best_params_ == local.best_params_ and remote.best_estimator_.score(X, y) > 0.9


def test_predict_proba_over_a_dask_array(client, data, tmp_path):
    X, y, new = data
    clf = MLPClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(new)
    blocks = da.from_array(new, chunks=(500, 4))
    out_chunks = (blocks.chunks[0], (len(clf.classes_),))
    payload = npz_bytes(clf.model_, tmp_path)

    def proba_from_npz(block, payload):  # on the worker: fastnn's own format, no pickle
        return fastnn.MLP.load(io.BytesIO(payload)).predict_proba(block)

    with distributed.get_task_stream(client) as tasks:
        by_pickle = blocks.map_blocks(clf.predict_proba, chunks=out_chunks, dtype=expected.dtype).compute()
        by_npz = blocks.map_blocks(proba_from_npz, payload, chunks=out_chunks, dtype=expected.dtype).compute()
    ran_on_workers(tasks, client)
    np.testing.assert_allclose(by_pickle, expected, rtol=1e-12)
    np.testing.assert_allclose(by_npz, expected, rtol=1e-12)


def test_predict_proba_over_a_dask_dataframe(client, data, tmp_path):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X, y, new = data
    clf = MLPClassifier(**FAST).fit(pd.DataFrame(X, columns=FEATURES), pd.Series(y))
    frame = pd.DataFrame(new, columns=FEATURES)
    expected = clf.predict_proba(frame)
    parts = dd.from_pandas(frame, npartitions=4)
    meta = pd.DataFrame({c: pd.Series(dtype=expected.dtype) for c in clf.classes_})
    payload = npz_bytes(clf.model_, tmp_path)

    def proba_by_pickle(part, estimator):  # the estimator keeps and checks the feature names
        return pd.DataFrame(estimator.predict_proba(part), index=part.index, columns=estimator.classes_)

    def proba_from_npz(part, payload, classes):
        proba = fastnn.MLP.load(io.BytesIO(payload)).predict_proba(part)
        return pd.DataFrame(proba, index=part.index, columns=classes)

    with distributed.get_task_stream(client) as tasks:
        by_pickle = parts.map_partitions(proba_by_pickle, clf, meta=meta).compute()
        by_npz = parts.map_partitions(proba_from_npz, payload, list(clf.classes_), meta=meta).compute()
    ran_on_workers(tasks, client)
    for result in (by_pickle, by_npz):
        assert list(result.columns) == list(clf.classes_) and result.index.equals(frame.index)
        np.testing.assert_allclose(result.to_numpy(), expected, rtol=1e-12)

"""The Palmer penguins classifier, fastnn's founding example: four measurements in, species out.

fastnn.MLP [4, 16, 16, 3] (relu, softmax cross-entropy, Adam lr 1e-2, batch 32, 100 epochs) against
scikit-learn's MLPClassifier at its defaults, on the same stratified 80/20 split, both standardized with
the training part's statistics. Needs only fastnn; the comparison needs scikit-learn.
"""
import fastnn
from fastnn.datasets import load_penguins, standardize, train_test_split

from ._report import report, sklearn_available, sklearn_convergence_quiet


def run(out_dir=".", seed=0):
    X, y = load_penguins()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=seed)
    X_train, X_test = standardize(X_train, X_test)
    print(f"penguins: {len(X_train)} train / {len(X_test)} test samples, 4 measurements -> 3 species")

    model = fastnn.MLP([4, 16, 16, 3], activation="relu", loss="cross_entropy", seed=seed)
    history = model.fit(X_train, y_train, epochs=100, batch_size=32, optimizer=fastnn.optim.Adam(lr=1e-2))
    ours = ("MLP [4, 16, 16, 3]", model.score(X_test, y_test), history.history["loss"])

    theirs = None
    if sklearn_available():
        from sklearn.neural_network import MLPClassifier
        with sklearn_convergence_quiet():
            reference = MLPClassifier(random_state=seed).fit(X_train, y_train)
        theirs = ("MLPClassifier (100,)", reference.score(X_test, y_test), reference.loss_curve_)
    return report("penguins", "accuracy", out_dir, ours, theirs)

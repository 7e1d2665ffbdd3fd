"""Classification of scikit-learn's 8x8 handwritten digit images (1,797 images, 64 pixels, 10 classes).

fastnn.MLPClassifier with one hidden layer of 512, AdamW (decoupled weight decay 0.1), 150 epochs, against
scikit-learn's MLPClassifier at its defaults, in the same pipeline (pixels standardized with the training
part's statistics) on the same stratified 75/25 split. Score: accuracy.
The fastnn settings were chosen on other random splits of the data, not on this one.
"""
from ._report import report, sklearn_convergence_quiet


def run(out_dir=".", seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastnn.sklearn import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    print(f"digits: {len(X_train)} train / {len(X_test)} test images, 64 pixels -> 10 classes")

    ours = make_pipeline(StandardScaler(), MLPClassifier((512,), solver="adamw", weight_decay=0.1, max_iter=150,
                                                         random_state=seed)).fit(X_train, y_train)
    with sklearn_convergence_quiet():
        theirs = make_pipeline(StandardScaler(), SklearnMLPClassifier(random_state=seed)).fit(X_train, y_train)
    return report("digits", "accuracy", out_dir,
                  ("MLPClassifier (512,)", ours.score(X_test, y_test), ours[-1].loss_curve_),
                  ("MLPClassifier (100,)", theirs.score(X_test, y_test), theirs[-1].loss_curve_))

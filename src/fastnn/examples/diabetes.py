"""Regression on scikit-learn's diabetes data: ten baseline measurements in, disease progression a year
later out (442 patients).

fastnn.MLPRegressor with one hidden layer of 32, AdamW (decoupled weight decay 0.3), batch 32, 100 epochs,
against scikit-learn's MLPRegressor at its defaults, in the same pipeline (features and target
standardized with the training part's statistics) on the same 75/25 split. Score: R^2.
The fastnn settings were chosen on other random splits of the data, not on this one.
"""
from ._report import report, sklearn_convergence_quiet


def run(out_dir=".", seed=0):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPRegressor as SklearnMLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastnn.sklearn import MLPRegressor

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
    print(f"diabetes: {len(X_train)} train / {len(X_test)} test samples, 10 features -> 1 target")

    def fit(regressor):
        model = TransformedTargetRegressor(regressor, transformer=StandardScaler())
        return make_pipeline(StandardScaler(), model).fit(X_train, y_train)

    ours = fit(MLPRegressor((32,), solver="adamw", weight_decay=0.3, batch_size=32, max_iter=100,
                            random_state=seed))
    with sklearn_convergence_quiet():
        theirs = fit(SklearnMLPRegressor(random_state=seed))
    return report("diabetes", "R^2", out_dir,
                  ("MLPRegressor (32,)", ours.score(X_test, y_test), ours[-1].regressor_.loss_curve_),
                  ("MLPRegressor (100,)", theirs.score(X_test, y_test), theirs[-1].regressor_.loss_curve_))

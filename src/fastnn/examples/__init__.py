"""Worked examples, each comparing fastnn with scikit-learn's MLP on the same train/test split:

    python -m fastnn.examples penguins   # Palmer penguins: measurements in, species out (fastnn.MLP)
    python -m fastnn.examples diabetes   # scikit-learn's diabetes regression (fastnn.MLPRegressor)
    python -m fastnn.examples digits     # scikit-learn's 8x8 digit images (fastnn.MLPClassifier)

Each prints the held-out score of both and saves a loss-curve PNG (with matplotlib installed).
penguins needs only fastnn; the other two, and every comparison, need scikit-learn.
"""
EXAMPLES = ("penguins", "diabetes", "digits")

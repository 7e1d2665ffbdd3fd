"""What every example does around training: fit scikit-learn's model quietly, print both held-out scores,
draw both loss curves."""
import contextlib
import os
import warnings


def sklearn_available():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def sklearn_convergence_quiet():
    """scikit-learn warns when its model stops at max_iter: the report prints the epochs it ran instead."""
    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def report(title, metric, out_dir, fastnn, sklearn=None):
    """fastnn and sklearn: (model description, held-out score, training loss per epoch); sklearn None when
    scikit-learn is not installed. Prints both, saves the curves as <out_dir>/<title>_loss.png, and returns
    {"fastnn": score, "sklearn": score or None, "png": path or None}."""
    runs = {"fastnn": fastnn, "sklearn": sklearn}
    for library, run in runs.items():
        if run is not None:
            name, score, curve = run
            print(f"  {library:<7} {name}: held-out {metric} {score:.4f} after {len(curve)} epochs")
    if sklearn is None:
        print("  scikit-learn not installed: no comparison")
    else:
        ours, theirs = fastnn[1], sklearn[1]
        print(f"  fastnn {'matches' if ours == theirs else 'beats' if ours > theirs else 'trails'} "
              f"scikit-learn on this split")
    png = _plot(os.path.join(out_dir, f"{title}_loss.png"), title,
                {f"{library}: {run[0]}": run[2] for library, run in runs.items() if run is not None})
    print(f"  loss curves: {png}" if png else "  matplotlib not installed: no loss-curve PNG")
    return {"fastnn": fastnn[1], "sklearn": None if sklearn is None else sklearn[1], "png": png}


def _plot(path, title, curves):
    try:
        from matplotlib.figure import Figure  # no pyplot: leaves the user's matplotlib backend alone
    except ImportError:
        return None
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for label, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), losses, label=label)
    ax.set(xlabel="epoch", ylabel="training loss", yscale="log", title=f"{title}: training loss per epoch")
    ax.legend()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    return path

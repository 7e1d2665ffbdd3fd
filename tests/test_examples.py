"""The examples run, save their loss-curve PNG, and score at least as well as scikit-learn's MLP on the
same split."""
import importlib
import subprocess
import sys

import pytest

from fastnn.examples import EXAMPLES


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_matches_or_beats_sklearn(name, tmp_path, capsys):
    pytest.importorskip("sklearn")  # diabetes and digits load their data from it; every comparison needs it
    module = importlib.import_module(f"fastnn.examples.{name}")
    result = module.run(out_dir=str(tmp_path))
    out = capsys.readouterr().out
    assert f"{result['fastnn']:.4f}" in out and f"{result['sklearn']:.4f}" in out
    assert result["fastnn"] >= result["sklearn"], f"{name}: fastnn {result['fastnn']} < sklearn {result['sklearn']}"
    floor = {"penguins": 0.95, "digits": 0.95, "diabetes": 0.25}[name]  # far above chance (1/3, 1/10, R^2 0)
    assert result["fastnn"] > floor


def test_example_saves_its_loss_curve(tmp_path):
    pytest.importorskip("matplotlib")
    from fastnn.examples import penguins
    png = penguins.run(out_dir=str(tmp_path))["png"]
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_penguins_runs_from_the_command_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fastnn.examples", "penguins", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "fastnn  MLP [4, 16, 16, 3]: held-out accuracy" in done.stdout


def test_penguins_runs_without_sklearn_and_matplotlib(tmp_path):
    code = ("import sys; sys.modules['sklearn'] = sys.modules['matplotlib'] = None; "  # None: import fails
            "from fastnn.examples import penguins; r = penguins.run(out_dir=sys.argv[1]); "
            "assert r['sklearn'] is None and r['png'] is None and r['fastnn'] > 0.95, r")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "scikit-learn not installed: no comparison" in done.stdout
    assert "matplotlib not installed: no loss-curve PNG" in done.stdout and not list(tmp_path.iterdir())


def test_unknown_example_is_refused():
    done = subprocess.run([sys.executable, "-m", "fastnn.examples", "mnist"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and "invalid choice: 'mnist'" in done.stderr

"""Pictures render headless (Agg canvas, no display) and are real images."""

import sys

import pytest

import funcnet as fn
from funcnet.plotting import headless_figure


def assert_png(path, min_bytes=10_000):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes
    return data


def test_plot_history_writes_a_png_without_a_display_or_pyplot(tmp_path, monkeypatch):
    """Headless means: no DISPLAY needed, the Agg canvas, and pyplot (which picks a GUI backend) never imported."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # importing pyplot would now fail
    history = {"train_loss": [2500.0, 200.0, 120.0, 101.0], "val_loss": [270.0, 170.0, 110.0, 100.5],
               "best_epoch": 3}
    fn.plot_history(history, tmp_path / "curve.png")
    assert_png(tmp_path / "curve.png")
    assert type(headless_figure().canvas).__name__ == "FigureCanvasAgg"


def test_plot_history_without_validation_and_with_small_range(tmp_path):
    fn.plot_history({"train_loss": [0.7, 0.5, 0.3]}, tmp_path / "xor.png")
    assert_png(tmp_path / "xor.png", min_bytes=5_000)


def test_plot_history_needs_training_losses(tmp_path):
    with pytest.raises(ValueError, match=r"`history` has no 'train_loss' values to plot"):
        fn.plot_history({"val_loss": [1.0]}, tmp_path / "empty.png")


def test_activations_example_writes_one_png_with_matching_derivatives(tmp_path, run_example):
    out = run_example("examples/activations.py", "--out", str(tmp_path / "activations.png"))
    data = assert_png(tmp_path / "activations.png", min_bytes=30_000)
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert width > 1000 and height > 400  # two rows of five panels
    differences = [float(line.split("= ")[1]) for line in out.splitlines() if "max |" in line]
    assert len(differences) == 10 and max(differences) < 1e-6  # every elementwise activation


def test_plotting_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r'plotting needs matplotlib, an optional extra: pip install "funcnet\[plot\]"'):
        fn.plot_history({"train_loss": [1.0]}, tmp_path / "curve.png")

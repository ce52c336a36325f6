"""Pictures render headless (Agg canvas, no display) and are real images."""

import os
import runpy
import sys

import pytest

import funcnet as fn
from conftest import ROOT
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
    fn.plots.plot_history(history, tmp_path / "curve.png")
    assert_png(tmp_path / "curve.png")
    assert type(headless_figure().canvas).__name__ == "FigureCanvasAgg"


def test_plot_history_without_validation_and_with_small_range(tmp_path):
    fn.plots.plot_history({"train_loss": [0.7, 0.5, 0.3]}, tmp_path / "xor.png")
    assert_png(tmp_path / "xor.png", min_bytes=5_000)


def test_plot_history_needs_training_losses(tmp_path):
    with pytest.raises(ValueError, match=r"`history` has no 'train_loss' values to plot"):
        fn.plots.plot_history({"val_loss": [1.0]}, tmp_path / "empty.png")


def test_activations_example_writes_one_png_with_matching_derivatives(tmp_path, run_example):
    out = run_example("examples/activations.py", "--out", str(tmp_path / "activations.png"))
    data = assert_png(tmp_path / "activations.png", min_bytes=30_000)
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert width > 1000 and height > 400  # two rows of five panels
    differences = [float(line.split("= ")[1]) for line in out.splitlines() if "max |" in line]
    assert len(differences) == 10 and max(differences) < 1e-6  # every elementwise activation


def test_the_deprecated_library_plot_activations_warns_and_draws_the_examples_picture(tmp_path):
    example = runpy.run_path(os.path.join(ROOT, "examples", "activations.py"))
    rows = example["activation_rows"]()[:3]
    example["plot_activations"](rows, tmp_path / "example.png")
    with pytest.warns(DeprecationWarning, match=r"^funcnet.plotting.plot_activations is deprecated: .* "
                                                 r"examples/activations.py now has it") as records:
        fn.plotting.plot_activations(rows, tmp_path / "library.png")
    assert records[0].filename == __file__
    assert assert_png(tmp_path / "library.png", min_bytes=10_000) == assert_png(tmp_path / "example.png")


def test_plotting_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r'plotting needs matplotlib, an optional extra: pip install "funcnet\[plot\]"'):
        fn.plots.plot_history({"train_loss": [1.0]}, tmp_path / "curve.png")


# -- issue 21, case 8: every picture is in the format its suffix names, by one rule -----------------------

from funcnet.plotting import IMAGE_FORMATS  # noqa: E402

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff", "pdf": b"%PDF-", "svg": b"<?xml",
         "eps": b"%!PS-Adobe-3.0 EPSF",
         "ps": b"%!PS-Adobe-3.0\n", "tiff": (b"II*\x00", b"MM\x00*"), "webp": b"RIFF", "gif": (b"GIF87a", b"GIF89a")}
HISTORY = {"train_loss": [0.7, 0.5, 0.3], "val_loss": [0.8, 0.6, 0.4]}


def assert_format(path, image_format):
    data = open(path, "rb").read()
    assert data.startswith(MAGIC[image_format]), (image_format, data[:16])
    if image_format == "svg":
        assert b"<svg" in data[:1000]
    if image_format == "webp":
        assert data[8:12] == b"WEBP"


def test_every_suffix_names_a_format_with_a_magic_number():
    assert set(IMAGE_FORMATS.values()) == set(MAGIC)


@pytest.mark.parametrize("suffix", [*IMAGE_FORMATS, ".JPG", ".Svg"])
def test_plot_history_writes_the_format_its_suffix_names(tmp_path, suffix):
    fn.plots.plot_history(HISTORY, tmp_path / f"curve{suffix}")
    assert_format(tmp_path / f"curve{suffix}", IMAGE_FORMATS[suffix.lower()])


@pytest.mark.parametrize("name, found", [
    ("curve.txt", "the suffix '.txt'"),
    ("curve.jpg2", "the suffix '.jpg2'"),
    ("curve.png.bak", "the suffix '.bak'"),
    ("curve", "no suffix"),
    (".png", "no suffix"),  # a hidden file named "png", as os.path.splitext reads it
])
def test_a_suffix_that_names_no_image_format_is_refused_before_drawing(tmp_path, name, found):
    with pytest.raises(ValueError, match=rf"`path` must end in one of \.png, \.jpg, \.jpeg, \.pdf, \.svg, \.eps, "
                                         rf"\.ps, \.tif, \.tiff, \.webp, \.gif \(the suffix picks the image format\), "
                                         rf"found {found} in '.*{name}'"):
        fn.plots.plot_history(HISTORY, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_a_file_object_is_named_by_its_name_and_a_nameless_one_gets_png(tmp_path):
    import io

    with open(tmp_path / "curve.jpg", "wb") as handle:
        fn.plots.plot_history(HISTORY, handle)
    assert_format(tmp_path / "curve.jpg", "jpeg")
    buffer = io.BytesIO()
    fn.plots.plot_history(HISTORY, buffer)
    assert buffer.getvalue().startswith(MAGIC["png"])


def test_plot_layer_stats_follows_the_same_rule(tmp_path):
    from funcnet.layer_stats import plot_layer_stats

    history = {"layer_stats": [[{"layer": 0, "name": "dense", "grad_norm": 1.0 / (epoch + 1)}] for epoch in range(3)]}
    plot_layer_stats(history, tmp_path / "stats.pdf")
    assert_format(tmp_path / "stats.pdf", "pdf")
    with pytest.raises(ValueError, match=r"`path` must end in one of \.png, .*found the suffix '\.bmp'"):
        plot_layer_stats(history, tmp_path / "stats.bmp")
    assert [path.name for path in tmp_path.iterdir()] == ["stats.pdf"]


def test_plot_decision_boundary_follows_the_same_rule(tmp_path, monkeypatch):
    import jax
    import numpy as np

    from funcnet import decision_boundary

    model = fn.mlp([2, 3, 1], hidden="tanh", output="sigmoid", loss="logloss")
    params = model.init(jax.random.key(0))
    x, y = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), np.array([0, 1, 1])
    decision_boundary.plot_decision_boundary(model, params, x, y, tmp_path / "boundary.jpeg", resolution=5)
    assert_format(tmp_path / "boundary.jpeg", "jpeg")
    monkeypatch.setattr(decision_boundary, "decision_grid", lambda *a, **k: pytest.fail("predicted before the check"))
    with pytest.raises(ValueError, match=r"`path` must end in one of \.png, .*found no suffix in '.*boundary'"):
        decision_boundary.plot_decision_boundary(model, params, x, y, tmp_path / "boundary", resolution=5)
    assert [path.name for path in tmp_path.iterdir()] == ["boundary.jpeg"]


def test_the_cli_follows_the_same_rule(tmp_path, capsys):
    from cli_helpers import run

    status, _, err = run(capsys, "train", "--data", "xor", "--epochs", "1", "--quiet", "--plot", tmp_path / "curve.svg",
                         "--plot-stats", tmp_path / "stats.JPG")
    assert status == 0, err
    assert_format(tmp_path / "curve.svg", "svg")
    assert_format(tmp_path / "stats.JPG", "jpeg")


def test_the_decision_boundary_example_follows_the_same_rule_before_training(tmp_path, run_example, capsys):
    with pytest.raises(SystemExit) as raised:
        run_example("examples/decision_boundary.py", "--out", str(tmp_path / "moons.bmp"))
    assert raised.value.code == 2 and list(tmp_path.iterdir()) == []
    captured = capsys.readouterr()
    assert "error: `--out` must end in one of .png, .jpg" in captured.err and "found the suffix '.bmp'" in captured.err
    assert "two moons" not in captured.out  # refused before training

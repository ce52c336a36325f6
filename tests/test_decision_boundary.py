"""Decision boundaries: the grid of probabilities is `predict` on a plane, and the PNGs show it, pixel by pixel."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn
from conftest import ROOT
from funcnet import cli
from funcnet.decision_boundary import decision_grid, plot_decision_boundary

matplotlib_image = pytest.importorskip("matplotlib.image")

BINARY = fn.mlp([2, 8, 1], hidden="tanh", output="sigmoid", loss="logloss")
THREE_CLASSES = fn.mlp([2, 8, 3], hidden="relu", output="softmax", loss="cross_entropy")
LINEAR_BINARY = fn.mlp([2, 1], output="sigmoid", loss="logloss")
LINEAR_TWO_WAY = fn.mlp([2, 2], output="softmax", loss="cross_entropy")
LINEAR_THREE_WAY = fn.mlp([2, 3], output="softmax", loss="cross_entropy")
BLUE_CLASS_0, RED_CLASS_1 = np.array([0x05, 0x30, 0x61]) / 255, np.array([0x67, 0x00, 0x1F]) / 255


def square_data(num_points=60, seed=0):
    """Points in [-1, 1]² with both corners present, so both axes span exactly [-1, 1]."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([[[-1.0, -1.0], [1.0, 1.0]], rng.uniform(-1.0, 1.0, (num_points - 2, 2))])
    return x, (x[:, 0] > x[:, 1]).astype(np.int64)


def linear_params(scale=1.0):
    """``sigmoid(scale · (x1 − x2))``: class 1 exactly below the diagonal x1 = x2."""
    return [{"W": jnp.array([[scale], [-scale]]), "b": jnp.zeros(1)}]


def plot_area(path, axes, margin=3):
    """The RGB pixels inside ``axes`` of the saved PNG (rows from the top), spines trimmed off."""
    image = matplotlib_image.imread(path)[..., :3]
    box = axes.get_window_extent()
    height = image.shape[0]
    top, bottom = int(np.ceil(height - box.y1)) + margin, int(height - box.y0) - margin
    left, right = int(np.ceil(box.x0)) + margin, int(box.x1) - margin
    return image[top:bottom, left:right]


def red_and_blue(pixels):
    """Masks of reddish (class 1 side) and bluish (class 0 side) pixels of the RdBu_r map."""
    difference = pixels[..., 0] - pixels[..., 2]
    return difference > 0.1, difference < -0.1


def diagonal_sides(shape, band=0.08):
    """Masks of the pixels below-right (x1 > x2) and above-left of the diagonal, leaving out a band."""
    rows, columns = np.indices(shape[:2])
    position = (columns + 0.5) / shape[1] + (rows + 0.5) / shape[0]  # 1 on the diagonal x1 = x2
    return position > 1 + band, position < 1 - band


@pytest.mark.x64
@pytest.mark.parametrize("model", [BINARY, THREE_CLASSES], ids=["sigmoid", "softmax"])
def test_grid_probabilities_equal_the_networks_outputs_at_the_grid_points(model):
    params = model.init(jax.random.key(1), dtype=jnp.float64)
    x = np.random.default_rng(2).normal(size=(30, 2)) * [1.0, 3.0]
    xx, yy, probabilities = decision_grid(model, params, x, resolution=17, padding=0.25)
    assert xx.shape == yy.shape == (17, 17) and probabilities.shape == (17, 17, model.n_out)
    np.testing.assert_allclose([xx.min(), xx.max()], [x[:, 0].min() - 0.25, x[:, 0].max() + 0.25])
    np.testing.assert_allclose([yy.min(), yy.max()], [x[:, 1].min() - 0.25, x[:, 1].max() + 0.25])
    assert np.all(np.diff(xx, axis=1) > 0) and np.all(np.diff(yy, axis=0) > 0)  # xx along columns, yy along rows
    expected = model.forward(params, jnp.stack([xx.ravel(), yy.ravel()], axis=1))
    np.testing.assert_allclose(probabilities.reshape(-1, model.n_out), expected, rtol=1e-12, atol=1e-15)


def test_docstring_example_runs():
    import doctest

    import funcnet.decision_boundary

    result = doctest.testmod(funcnet.decision_boundary)
    assert result.attempted >= 4 and result.failed == 0


@pytest.mark.x64
def test_grid_transform_is_applied_before_prediction():
    params = BINARY.init(jax.random.key(3), dtype=jnp.float64)
    x = np.random.default_rng(4).uniform(0.0, 100.0, (20, 2))
    standardizer = fn.fit_standardizer(x)
    xx, yy, probabilities = decision_grid(BINARY, params, x, 9, 0.0, transform=standardizer.apply)
    expected = BINARY.forward(params, standardizer.apply(jnp.stack([xx.ravel(), yy.ravel()], axis=1)))
    np.testing.assert_allclose(probabilities.reshape(-1, 1), expected, rtol=1e-12)
    assert xx.max() == pytest.approx(x[:, 0].max())  # the grid stays in the data's own units


def test_grid_padding_can_differ_per_feature():
    x = np.array([[0.0, 0.0], [100.0, 1.0]])
    xx, yy, _ = decision_grid(BINARY, BINARY.init(jax.random.key(0)), x, 5, padding=(10.0, 0.1))
    np.testing.assert_allclose([xx.min(), xx.max(), yy.min(), yy.max()], [-10.0, 110.0, -0.1, 1.1])


@pytest.mark.parametrize("model, params, predicted_class, expected_class", [
    (LINEAR_BINARY, linear_params(), lambda p: (p[..., 0] > 0.5).astype(int), lambda xx, yy: xx > yy),
    (LINEAR_TWO_WAY, [{"W": jnp.eye(2), "b": jnp.zeros(2)}], lambda p: np.argmax(p, -1),
     lambda xx, yy: yy > xx),  # logits (x1, x2): class 1 where x2 > x1
], ids=["sigmoid(x1 - x2)", "softmax(x1, x2)"])
def test_hand_set_linear_model_predicts_class_1_exactly_on_its_side_of_the_diagonal(
        model, params, predicted_class, expected_class):
    x, _ = square_data()
    xx, yy, probabilities = decision_grid(model, params, x, resolution=101, padding=0.5)
    classes = predicted_class(probabilities)
    np.testing.assert_array_equal(classes, expected_class(xx, yy))
    assert 0.45 < classes.mean() < 0.5  # half the square, less the 101 diagonal points that tie at P = 0.5


def test_png_is_red_below_and_blue_above_the_diagonal_for_sigmoid_x1_minus_x2(tmp_path):
    x, y = square_data()
    axes = plot_decision_boundary(LINEAR_BINARY, linear_params(5.0), x, y, tmp_path / "linear.png",
                                  title="sigmoid(5 (x1 - x2))")
    assert (tmp_path / "linear.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = plot_area(tmp_path / "linear.png", axes)
    assert pixels.shape[0] > 250 and pixels.shape[1] > 300
    red, blue = red_and_blue(pixels)
    below, above = diagonal_sides(pixels.shape)
    assert red[below].sum() / (red[below].sum() + blue[below].sum()) > 0.99
    assert blue[above].sum() / (red[above].sum() + blue[above].sum()) > 0.99
    assert (red | blue)[below].mean() > 0.85 and (red | blue)[above].mean() > 0.85  # filled, not blank
    assert 0.85 < red.sum() / blue.sum() < 1.15  # the two halves are about the same size
    # the boundary P = 0.5 is drawn as a black line along the diagonal
    rows = np.arange(20, pixels.shape[0] - 20, 10)
    columns = np.round((1 - (rows + 0.5) / pixels.shape[0]) * pixels.shape[1]).astype(int)
    darkest = [pixels[row, max(column - 4, 0):column + 5].sum(axis=-1).min() for row, column in zip(rows, columns)]
    assert max(darkest) < 0.6


def test_png_shows_the_points_in_the_colour_of_their_true_label(tmp_path):
    x = np.array([[-1.0, -1.0], [1.0, 1.0], [0.6, -0.6]])
    axes = plot_decision_boundary(LINEAR_BINARY, linear_params(5.0), x, np.array([[1], [0], [1]]),
                                  tmp_path / "points.png")
    pixels = plot_area(tmp_path / "points.png", axes)
    near_blue = np.abs(pixels - BLUE_CLASS_0).max(axis=-1) < 0.05
    near_red = np.abs(pixels - RED_CLASS_1).max(axis=-1) < 0.05
    assert near_blue.sum() > 20 and near_red.sum() > 40  # one class-0 point, two class-1 points


def test_softmax_png_fills_the_plane_with_one_colour_per_predicted_class(tmp_path):
    # logits (x1, x2, -x1 - x2): class 0 to the right, class 1 at the top, class 2 at the lower left
    params = [{"W": jnp.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]]), "b": jnp.zeros(3)}]
    x, _ = square_data()
    xx, yy, probabilities = decision_grid(LINEAR_THREE_WAY, params, x, resolution=50)
    shares = np.bincount(np.argmax(probabilities, -1).ravel(), minlength=3) / 2500
    axes = plot_decision_boundary(LINEAR_THREE_WAY, params, x, np.argmax(x @ np.asarray(params[0]["W"]), 1),
                                  tmp_path / "three.png")
    pixels = plot_area(tmp_path / "three.png", axes)
    for colour, share in zip([(0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28), (0x2C, 0xA0, 0x2C)], shares):
        background = 0.45 * np.array(colour) / 255 + 0.55  # the class colour at alpha 0.45 over white
        fraction = (np.abs(pixels - background).max(axis=-1) < 0.04).mean()
        assert share - 0.12 < fraction < share + 0.02, (colour, fraction, share)


def test_plot_draws_into_a_given_panel_and_saves_its_figure(tmp_path):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3), dpi=100)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    x, y = square_data()
    returned = plot_decision_boundary(LINEAR_BINARY, linear_params(5.0), x, y, ax=left, title="left panel")
    assert returned is left and left.get_title() == "left panel" and not right.has_data()
    plot_decision_boundary(LINEAR_BINARY, linear_params(-5.0), x, 1 - y, tmp_path / "panels.png", ax=right)
    image = matplotlib_image.imread(tmp_path / "panels.png")
    assert image.shape[:2] == (300, 600)
    red, blue = red_and_blue(plot_area(tmp_path / "panels.png", right, margin=2))
    below, above = diagonal_sides(red.shape)
    assert red[above].mean() > 0.85 and blue[below].mean() > 0.85  # the flipped model, in the right panel


REGRESSION = fn.mlp([2, 4, 1])
MULTI_LABEL = fn.mlp([2, 4, 2], output="sigmoid", loss="logloss")
THREE_INPUTS = fn.mlp([3, 4, 1], output="sigmoid", loss="logloss")


@pytest.mark.parametrize("model, x, y, kwargs, message", [
    (THREE_INPUTS, np.zeros((4, 3)), np.zeros(4), {},
     r"plot_decision_boundary needs a model with exactly 2 input features \(one axis each\), but this "
     r"model's first layer expects 3"),
    (REGRESSION, np.zeros((4, 2)), np.zeros(4), {},
     r"needs a classifier \(output='sigmoid' with 1 output, or 'softmax'\), but this model's output is "
     r"'identity' with loss 'mse': a regression model has no classes"),
    (MULTI_LABEL, np.zeros((4, 2)), np.zeros(4), {}, r"this model has 2 sigmoid outputs \(multi-label\)"),
    (BINARY, np.zeros((4, 2)), np.zeros(5), {},
     r"`x` has 4 rows but `y` has shape \(5,\); `x` and `y` need the same number of samples"),
    (BINARY, np.zeros((4, 3)), np.zeros(4), {}, r"`x` must have shape \(n, 2\) with n >= 1.*got shape \(4, 3\)"),
    (BINARY, np.zeros((4, 2)), np.array([0, 1, 2, 1]), {},
     r"`y` must hold class labels 0..1 for this classifier, but contains \[2\]"),
    (THREE_CLASSES, np.zeros((2, 2)), np.array([0, 3]), {}, r"class labels 0..2 for this classifier"),
    (BINARY, np.zeros((4, 2)), np.zeros(4), {"resolution": 1}, r"`resolution` must be an integer ≥ 2, got 1"),
    (BINARY, np.zeros((4, 2)), np.zeros(4), {"padding": -1.0}, r"`padding` must be a finite number >= 0"),
    (BINARY, np.zeros((4, 2)), np.zeros(4), {"padding": (1.0, 2.0, 3.0)},
     r"`padding` must be a finite number >= 0 \(data units\) or a pair of them, one per feature; got \(1.0, 2.0, 3.0\)"),
    (BINARY, np.array([[0.0, np.nan]]), np.zeros(1), {}, r"`x` contains NaN or inf"),
])
def test_bad_inputs_raise_value_errors_that_say_what_is_wrong(tmp_path, model, x, y, kwargs, message):
    params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match=message):
        plot_decision_boundary(model, params, x, y, tmp_path / "never.png", **kwargs)
    assert not (tmp_path / "never.png").exists()


def test_decision_grid_rejects_regression_models_by_its_own_name():
    with pytest.raises(ValueError, match=r"^decision_grid needs a classifier"):
        decision_grid(REGRESSION, REGRESSION.init(jax.random.key(0)), np.zeros((3, 2)))


def test_plot_needs_a_path_or_axes():
    with pytest.raises(ValueError, match=r"needs `path` \(the PNG to write\) or `ax` \(axes to draw into\)"):
        plot_decision_boundary(BINARY, BINARY.init(jax.random.key(0)), np.zeros((2, 2)), np.zeros(2))


def test_plotting_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r'pip install "funcnet\[plot\]"'):
        plot_decision_boundary(LINEAR_BINARY, linear_params(), *square_data(), tmp_path / "no.png")


def test_train_xor_with_plot_boundary_writes_the_picture_of_the_trained_network(tmp_path, capsys):
    path = str(tmp_path / "xor.png")
    assert cli.main(["train", "--data", "xor", "--epochs", "200", "--quiet", "--no-cache", "--save",
                     str(tmp_path / "xor.npz"), "--plot-boundary", path]) == 0
    assert f"wrote decision boundary to {path}" in capsys.readouterr().out
    image = matplotlib_image.imread(path)[..., :3]
    assert image.shape[:2] == (480, 640)
    near_blue = np.abs(image - BLUE_CLASS_0).max(axis=-1) < 0.05
    near_red = np.abs(image - RED_CLASS_1).max(axis=-1) < 0.05
    assert near_blue.sum() > 40 and near_red.sum() > 40  # the four XOR points, two of each label
    saved = fn.load(tmp_path / "xor.npz")
    x, y = fn.xor_data()
    axes = plot_decision_boundary(saved.model, saved.params, x, y, tmp_path / "reference.png",
                                  title="xor: 2-3-1 decision boundary")
    np.testing.assert_allclose(image, matplotlib_image.imread(tmp_path / "reference.png")[..., :3], atol=0.02)
    tinted = np.abs(plot_area(path, axes) - 1.0).max(axis=-1) > 0.02
    assert tinted.mean() > 0.9  # the whole plane is coloured by P(class 1), even this early in training


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")


def test_train_csv_plots_the_boundary_in_the_columns_own_units(tmp_path):
    # features on scales 100 apart, class 1 where width / 100 > height: the model learns on standardised
    # columns, the picture shows centimetres and metres, each axis padded by 10% of its range
    rng = np.random.default_rng(5)
    features = np.concatenate([[[0.0, 0.0], [100.0, 1.0]], rng.uniform(0.0, 1.0, (298, 2)) * [100.0, 1.0]])
    labels = (features[:, 0] / 100 > features[:, 1]).astype(int)
    write_csv(tmp_path / "diagonal.csv", ["width_cm", "height_m", "label"],
              [[round(a, 3), round(b, 5), c] for (a, b), c in zip(features, labels)])
    path = tmp_path / "diagonal.png"
    assert cli.main(["train", "--csv", str(tmp_path / "diagonal.csv"), "--target", "label", "--epochs", "40",
                     "--lr", "0.01", "--quiet", "--no-cache", "--plot-boundary", str(path)]) == 0
    assert matplotlib_image.imread(path).shape[:2] == (480, 640)
    reference = plot_decision_boundary(LINEAR_BINARY, linear_params(), features, labels, tmp_path / "layout.png",
                                       padding=(10.0, 0.1), title="same layout",
                                       feature_names=("width_cm", "height_m"))
    pixels = plot_area(path, reference)  # the axes sit where they sit in a plot with the same labels
    red, blue = red_and_blue(pixels)
    below, above = diagonal_sides(pixels.shape, band=0.2)  # the diagonal is width / 100 = height
    assert red[below].mean() > 0.8 and blue[above].mean() > 0.8


def test_train_three_class_csv_plots_one_colour_per_predicted_class(tmp_path):
    rng = np.random.default_rng(1)
    classes = rng.integers(0, 3, 150)
    features = np.array([[0.0, 0.0], [3.0, 0.0], [1.5, 2.5]])[classes] + 0.5 * rng.normal(size=(150, 2))
    write_csv(tmp_path / "three.csv", ["a", "b", "class"],
              [[round(a, 3), round(b, 3), c] for (a, b), c in zip(features, classes)])
    path = tmp_path / "three.png"
    assert cli.main(["train", "--csv", str(tmp_path / "three.csv"), "--target", "class", "--task", "multiclass",
                     "--epochs", "30",
                     "--lr", "0.01", "--quiet", "--no-cache", "--plot-boundary", str(path)]) == 0
    image = matplotlib_image.imread(path)[..., :3]
    for colour in [(0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28), (0x2C, 0xA0, 0x2C)]:
        background = 0.45 * np.array(colour) / 255 + 0.55
        assert (np.abs(image - background).max(axis=-1) < 0.04).mean() > 0.1, colour  # each class has a region


@pytest.mark.parametrize("data, message", [
    (["--data", "regression"], "--plot-boundary needs a classifier on 2 features, but this run is regression "
                               "on 5 feature(s) (a, b, c, d, e)"),
    ("three_features", "--plot-boundary needs a classifier on 2 features, but this run is binary on 3 feature(s)"),
    ("two_feature_regression", "but this run is regression on 2 feature(s) (a, b)"),
])
def test_plot_boundary_on_the_wrong_data_exits_2_before_training(tmp_path, capsys, data, message):
    if data == "three_features":
        write_csv(tmp_path / "data.csv", ["a", "b", "c", "y"], [[1, 2, 3, 0], [4, 5, 6, 1], [7, 8, 9, 0]])
    elif data == "two_feature_regression":
        write_csv(tmp_path / "data.csv", ["a", "b", "y"], [[1, 2, 0.5], [4, 5, 3.25], [7, 8, 9.0]])
    source = data if isinstance(data, list) else ["--csv", str(tmp_path / "data.csv"), "--target", "y"]
    assert cli.main(["train", *source, "--epochs", "1", "--no-cache", "--plot-boundary",
                     str(tmp_path / "never.png")]) == cli.EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert message in captured.err and "epoch 1" not in captured.out
    assert not (tmp_path / "never.png").exists()


def test_two_moons_example_draws_six_panels_of_a_boundary_that_separates_the_moons(tmp_path, run_example):
    path = tmp_path / "moons.png"
    out = run_example("examples/decision_boundary.py", "--out", str(path))
    accuracies = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(accuracies) == 6 and accuracies[-1] >= 0.97
    assert f"final accuracy: {accuracies[-1]:.3f}" in out and "wrote 6 panels" in out
    image = matplotlib_image.imread(path)[..., :3]
    assert image.shape[:2] == (680, 1080)  # 2 rows × 3 panels of 3.6 × 3.4 in at 100 dpi
    red, blue = red_and_blue(image)
    for row in range(2):
        for column in range(3):
            cell = (slice(60 + 320 * row, 300 + 320 * row), slice(80 + 360 * column, 340 + 360 * column))
            assert red[cell].mean() > 0.15 and blue[cell].mean() > 0.15, (row, column)

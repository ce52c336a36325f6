"""Per-layer statistics per epoch: exact against hand computations, opt-in, saved, plotted and in the CLI."""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from conftest import trained_state
from funcnet import cli
from funcnet.layer_stats import LAYER_STAT_NAMES, layer_stats, plot_layer_stats, stats_key, stats_rows

DEAD_UNITS = (0, 2, 5)  # of 8
MODEL = fn.sequential(3, [fn.dense(8, "relu"), fn.dropout(0.2), fn.dense(1)])  # shared: compiled once
OPTIMIZER = optax.adam(1e-2)
FIT = dict(epochs=3, batch_size=16, key=jax.random.key(8))


def problem(rows=64, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    y = np.sin(x @ rng.normal(size=(features, 1)))
    return jnp.asarray(x), jnp.asarray(y)


def with_dead_units(model, params):
    """First layer's units ``DEAD_UNITS`` get bias -100: with |x W| < 100 they are never positive."""
    bias = np.array(params[0]["b"])  # NumPy: no eager scatter to compile
    bias[list(DEAD_UNITS)] = -100.0
    return [{**params[0], "b": jnp.asarray(bias)}, *params[1:]]


DEAD_MODELS = [
    ("dense_relu", MODEL, [3 / 8, None, None]),
    ("activation_layer_relu", fn.sequential(3, [fn.dense(8), "relu", fn.dense(1)]), [None, 3 / 8, None]),
    ("tanh_has_none", fn.sequential(3, [fn.dense(8, "tanh"), fn.dense(1)]), [None, None]),
]


@pytest.mark.x64
@pytest.mark.parametrize("name, model, expected", DEAD_MODELS, ids=[name for name, _, _ in DEAD_MODELS])
def test_dead_relu_fraction_counts_units_never_positive_on_the_sample(name, model, expected):
    x, y = problem()
    params = with_dead_units(model, model.init(jax.random.key(0), jnp.float64))
    stats = layer_stats(model, params, params, x, y, key=jax.random.key(1))
    assert [entry["dead_fraction"] for entry in stats] == expected
    assert [entry["name"] for entry in stats] == [layer.name for layer in model.layers]
    assert [entry["layer"] for entry in stats] == list(range(len(model.layers)))


@pytest.mark.x64
def test_dead_units_stay_dead_and_are_counted_every_epoch_of_fit():
    x, y = problem()
    params = with_dead_units(MODEL, MODEL.init(jax.random.key(0), jnp.float64))
    _, history = fn.fit(MODEL, params, OPTIMIZER, x, y, track="layers", **FIT)
    assert [entries[0]["dead_fraction"] for entries in history["layer_stats"]] == [3 / 8] * 3
    assert [entries[0]["epoch"] for entries in history["layer_stats"]] == [0, 1, 2]


@pytest.mark.x64
def test_activation_mean_and_std_equal_a_hand_computation_at_inference():
    model = fn.sequential(3, [fn.dense(6, "relu"), fn.dropout(0.5), fn.layer_norm(), fn.dense(4, "tanh"),
                              fn.dense(2)])
    x, y = problem()
    y = jnp.concatenate([y, -y], axis=1)
    params = model.init(jax.random.key(3), jnp.float64)
    params[2] = {"scale": jnp.linspace(0.5, 2.0, 6), "shift": jnp.linspace(-1.0, 1.0, 6)}
    p = jax.tree.map(np.asarray, params)
    hidden = np.maximum(np.asarray(x) @ p[0]["W"] + p[0]["b"], 0.0)            # dense relu
    centred = hidden - hidden.mean(axis=1, keepdims=True)                         # dropout: identity at inference
    normed = centred / np.sqrt((centred ** 2).mean(axis=1, keepdims=True) + 1e-5) * p[2]["scale"] + p[2]["shift"]
    squashed = np.tanh(normed @ p[3]["W"] + p[3]["b"])
    logits = squashed @ p[4]["W"] + p[4]["b"]                                     # Z: no output activation
    outputs = [hidden, hidden, normed, squashed, logits]
    stats = layer_stats(model, params, params, x, y, key=jax.random.key(4))
    np.testing.assert_allclose([entry["activation_mean"] for entry in stats], [o.mean() for o in outputs],
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose([entry["activation_std"] for entry in stats], [o.std() for o in outputs],
                               rtol=1e-12)


GRAD_NORM_MODEL = fn.sequential(3, [fn.dense(6, "relu"), fn.dropout(0.3), fn.layer_norm(), fn.dense(1)], l2=0.01)


@pytest.fixture(scope="module")
def grad_norm_case():
    """GRAD_NORM_MODEL's float64 params, weighted sample, key and per-layer norm of its manual gradient."""
    model = GRAD_NORM_MODEL
    x, y = problem()
    weights = jnp.asarray(np.linspace(0.5, 1.5, x.shape[0]))
    params = model.init(jax.random.key(5), jnp.float64)
    key = jax.random.key(6)
    _, grads = jax.jit(model.manual_grad)(params, x, y, weights, key=key)  # one compile, not one per op
    expected = [float(np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree.leaves(layer)))) if layer else None
                for layer in grads]
    return params, x, y, weights, key, expected


@pytest.mark.x64
@pytest.mark.parametrize("grad", fn.engine.GRAD_MODES)
def test_grad_norm_is_the_norm_of_each_layers_manual_gradient_on_the_same_sample(grad, grad_norm_case):
    model = GRAD_NORM_MODEL
    params, x, y, weights, key, expected = grad_norm_case
    stats = layer_stats(model, params, params, x, y, weights, key=key, grad=grad)
    got = [entry["grad_norm"] for entry in stats]
    assert [value is None for value in got] == [value is None for value in expected] == [False, True, False, False]
    np.testing.assert_allclose([v for v in got if v is not None], [v for v in expected if v is not None],
                               rtol=1e-12)


def layer_norm_of(tree):
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(leaf))) for leaf in jax.tree.leaves(tree))))


@pytest.fixture(scope="module")
def tracked_run():
    """MODEL fitted 3 epochs with tracking: ``(start, params after each epoch, final params, history)``."""
    x, y = problem()
    start = MODEL.init(jax.random.key(7), jnp.float64)
    seen = []
    params, history = fn.fit(MODEL, start, OPTIMIZER, x, y, track="layers",
                             callback=lambda epoch, params, *_: seen.append(params), **FIT)
    return start, seen, params, history


@pytest.mark.x64
def test_fit_records_update_ratio_and_grad_norm_from_each_epochs_params(tracked_run):
    start, seen, _, history = tracked_run
    x, y = problem()
    seen = [start, *seen]
    assert len(history["layer_stats"]) == 3
    manual_grad = jax.jit(MODEL.manual_grad)  # one compile for the three epochs, not one per op
    for epoch, entries in enumerate(history["layer_stats"]):
        before, after = seen[epoch], seen[epoch + 1]
        _, grads = manual_grad(after, x, y, key=stats_key(FIT["key"], epoch))
        for index in (0, 2):
            change = jax.tree.map(lambda a, b: np.asarray(a) - np.asarray(b), after[index], before[index])
            np.testing.assert_allclose(entries[index]["update_ratio"],
                                       layer_norm_of(change) / layer_norm_of(before[index]), rtol=1e-12)
            np.testing.assert_allclose(entries[index]["grad_norm"], layer_norm_of(grads[index]), rtol=1e-12)
        assert entries[1]["update_ratio"] is None and entries[1]["grad_norm"] is None  # dropout: no params


@pytest.mark.x64
def test_tracking_is_opt_in_and_does_not_change_training(tracked_run):
    start, _, params_on, history_on = tracked_run
    x, y = problem()
    params_off, history_off = fn.fit(MODEL, start, OPTIMIZER, x, y, **FIT)
    assert sorted(history_off) == ["train_loss", "val_loss"]
    assert sorted(history_on) == ["layer_stats", "train_loss", "val_loss"]
    assert history_on["train_loss"] == history_off["train_loss"]
    jax.tree.map(np.testing.assert_array_equal, params_on, params_off)
    entry = history_on["layer_stats"][0][0]
    assert list(entry) == ["epoch", "layer", "name", *LAYER_STAT_NAMES]
    json.dumps(history_on, allow_nan=False)  # plain JSON, no NaN


@pytest.mark.x64
def test_layer_stats_survive_a_checkpoint_and_a_resumed_fit_appends_to_them(tmp_path):
    model = fn.mlp([3, 5, 1], hidden="relu")
    x, y = problem()
    start, optimizer = model.init(jax.random.key(11), jnp.float64), optax.sgd(0.05)
    settings = dict(batch_size=16, key=jax.random.key(12), track="layers")
    _, _, full = trained_state(fn.fit(model, start, optimizer, x, y, epochs=4, **settings))
    params, opt_state, part = trained_state(fn.fit(model, start, optimizer, x, y, epochs=2, **settings))
    fn.save(tmp_path / "part.npz", model, params, opt_state=opt_state, history=part)
    saved = fn.load(tmp_path / "part.npz", model=model, optimizer=optimizer)
    assert saved.history["layer_stats"] == part["layer_stats"]
    _, _, resumed = trained_state(fn.fit(model, saved.params, optimizer, x, y, epochs=4, opt_state=saved.opt_state,
                                 initial_epoch=2, history=saved.history, **settings))
    assert resumed["layer_stats"] == full["layer_stats"]
    _, _, untracked = trained_state(fn.fit(model, saved.params, optimizer, x, y, epochs=3, opt_state=saved.opt_state,
                                   initial_epoch=2, history=saved.history, **{**settings, "track": None}))
    assert untracked["layer_stats"] == part["layer_stats"]  # kept, not extended


def test_stats_sample_is_every_row_or_evenly_spaced_rows():
    np.testing.assert_array_equal(stats_rows(100), np.arange(100))
    rows = stats_rows(10_000)
    assert rows.shape == (4096,) and rows[0] == 0 and rows[-1] < 10_000 and np.all(np.diff(rows) >= 2)
    np.testing.assert_array_equal(stats_rows(10, max_rows=4), [0, 2, 5, 7])


def test_fit_rejects_an_unknown_track():
    model = fn.mlp([3, 2, 1])
    x, y = problem()
    with pytest.raises(ValueError, match=r"`track` must be one of None, 'layers', got 'weights'"):
        fn.fit(model, model.init(jax.random.key(0)), optax.sgd(0.1), x, y, epochs=1, key=jax.random.key(0),
               track="weights")


@pytest.mark.x64
def test_layer_stats_of_a_dropout_model_needs_a_key():
    x, y = problem()
    params = MODEL.init(jax.random.key(0), jnp.float64)
    with pytest.raises(ValueError, match=r"this model has dropout, so layer_stats needs `key=`"):
        layer_stats(MODEL, params, params, x, y)


LAYER_COLOURS = np.array([[0x1F, 0x77, 0xB4], [0xFF, 0x7F, 0x0E], [0x2C, 0xA0, 0x2C]]) / 255  # C0, C1, C2


def assert_stats_png(path, num_layers):
    """Pixels: a real picture with a line in each layer's colour, not a blank canvas."""
    import matplotlib.image

    image = matplotlib.image.imread(str(path))[..., :3]
    assert image.shape[0] > 400 and image.shape[1] > 900
    non_white = np.mean(np.any(image < 0.95, axis=-1))
    assert 0.02 < non_white < 0.6, non_white
    rgb = (image.reshape(-1, 3) * 255).round().astype(np.uint32)
    colours = np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2])  # one integer per colour: a 1-D unique
    assert len(colours) > 50
    for colour in LAYER_COLOURS[:num_layers]:
        matching = np.all(np.abs(image - colour) < 0.02, axis=-1)
        assert matching.sum() > 200, colour  # a line of that layer's colour
        plot_area = matching[image.shape[0] // 10: image.shape[0] * 9 // 10, : image.shape[1] * 2 // 3]
        assert plot_area.sum() > 100


@pytest.mark.x64
def test_plot_layer_stats_draws_one_line_per_layer_in_every_panel(tracked_run, tmp_path):
    plot_layer_stats(tracked_run[-1], tmp_path / "stats.png")
    assert_stats_png(tmp_path / "stats.png", num_layers=3)


def test_plot_layer_stats_needs_tracked_history(tmp_path):
    with pytest.raises(ValueError, match=r"`history` has no 'layer_stats' to plot; train with "
                                         r"fit\(\.\.\., track=\"layers\"\)"):
        plot_layer_stats({"train_loss": [1.0]}, tmp_path / "stats.png")


def test_plot_layer_stats_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    entry = {"epoch": 0, "layer": 0, "name": "dense", **dict.fromkeys(LAYER_STAT_NAMES, 1.0)}
    with pytest.raises(ImportError, match=r'plotting needs matplotlib, an optional extra: pip install "funcnet\[plot\]"'):
        plot_layer_stats({"layer_stats": [[entry]]}, tmp_path / "stats.png")


def test_cli_plot_stats_writes_the_png_and_jsonl_records_carry_layer_stats(tmp_path, capsys):
    png, saved = tmp_path / "stats.png", tmp_path / "xor.npz"
    common = ["--no-cache", "--jsonl", "--save", str(saved)]
    assert cli.main(["train", "--data", "xor", "--hidden", "relu", "--layers", "4", "--epochs", "3",
                     "--plot-stats", str(png), *common]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    epochs = [record for record in records if "epoch" in record and "event" not in record]
    assert [record["epoch"] for record in epochs] == [1, 2, 3]
    for record in epochs:
        assert [entry["name"] for entry in record["layer_stats"]] == ["dense", "dense"]
        assert record["layer_stats"][0]["epoch"] == record["epoch"] - 1
        assert 0.0 <= record["layer_stats"][0]["dead_fraction"] <= 1.0
    assert_stats_png(png, num_layers=2)
    assert len(fn.load(saved).history["layer_stats"]) == 3

    assert cli.main(["train", "--resume", str(saved), "--epochs", "5", "--track-stats", *common]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["layer_stats"][0]["epoch"] for record in records if "layer_stats" in record] == [3, 4]
    assert len(fn.load(saved).history["layer_stats"]) == 5

    assert cli.main(["train", "--resume", str(saved), "--epochs", "6", *common]) == 0  # not tracked this time
    assert not any("layer_stats" in json.loads(line) for line in capsys.readouterr().out.splitlines())

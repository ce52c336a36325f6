"""``trace_backprop`` and ``funcnet explain``: every layer's numbers, by hand and by jax.grad, step by step.

Each problem below is traced once (one compiled call per trace) and shared
by the tests that read it.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn
from funcnet import cli
from funcnet.trace import BackpropTrace, trace_backprop, worked_example_network

pytestmark = pytest.mark.x64  # traces are compared in float64 (manual vs autodiff to ~1e-16)

ROWS = 6
SOFTSIGN = fn.activation("softsign", lambda z: z / (1 + jnp.abs(z)), lambda z: 1 / (1 + jnp.abs(z)) ** 2)
# your own layer: y = (x ⊙ s) W, with a weight leaf "W" that the l2 penalty reaches
MIXER = fn.layer(
    "mixer",
    lambda key, n, dtype: {"s": jnp.linspace(0.5, 1.5, n, dtype=dtype),
                           "W": jax.random.normal(key, (n, n), dtype) / n},
    lambda p, x: ((x * p["s"][None, :]) @ p["W"], x),
    lambda p, x, dy: ({"s": jnp.sum((dy @ p["W"].T) * x, 0), "W": (x * p["s"][None, :]).T @ dy}, (dy @ p["W"].T) * p["s"][None, :]))

# name: (model, targets: "real" | "binary" | "classes", sample weights?, dropout key?)
PROBLEMS = {
    "relu_mse": (fn.mlp([3, 4, 2], hidden="relu"), "real", False, False),
    "tanh_gelu_l2_weights": (fn.mlp([3, 5, 4, 2], hidden=["tanh", "gelu"], l2=0.3), "real", True, False),
    "leaky_elu_logloss": (fn.mlp([3, 4, 4, 1], hidden=["leaky_relu", "elu"], output="sigmoid", loss="logloss",
                                 negative_slope=0.2, alpha=0.7), "binary", False, False),
    "no_bias_activation_layer_layer_norm": (
        fn.sequential(3, [fn.dense(4, "silu", bias=False), fn.layer_norm(), "softplus", fn.dense(3)],
                      loss="cross_entropy"), "classes", False, False),
    "dropout_custom_layer_custom_activation": (
        fn.sequential(3, [fn.dense(4, "sigmoid"), fn.dropout(0.4), MIXER, fn.dense(4, SOFTSIGN), fn.dense(2)],
                      loss="huber", l2=0.05), "real", True, True),
}


@functools.lru_cache(maxsize=None)
def problem(name):
    """``(model, params, x, y, weights, key, trace)`` in float64, traced once."""
    model, targets, weighted, keyed = PROBLEMS[name]
    rng = np.random.default_rng(len(name))
    params = model.init(jax.random.key(1), jnp.float64)
    x = jnp.asarray(rng.normal(size=(ROWS, model.n_in)))
    y = {"real": lambda: jnp.asarray(rng.normal(size=(ROWS, model.n_out))),
         "binary": lambda: jnp.asarray(rng.integers(0, 2, (ROWS, model.n_out)), jnp.float64),
         "classes": lambda: jnp.asarray(rng.integers(0, model.n_out, ROWS))}[targets]()
    weights = jnp.asarray(rng.uniform(0.1, 2.0, ROWS)) if weighted else None
    key = jax.random.key(7) if keyed else None
    return model, params, x, y, weights, key, trace_backprop(model, params, x, y, weights, key=key)


@functools.lru_cache(maxsize=None)
def article_trace():
    model, params, x, y = worked_example_network()
    return trace_backprop(model, params, x, y)


EXPECTED_NAMES = {
    "dense": {"Z", "A", "dA", "dZ", "dW", "db", "dX"},
    "activation": {"Y", "dY", "dX"},
    "dropout": {"Y", "dY", "dX"},
    "layer_norm": {"Y", "dY", "dscale", "dshift", "dX"},
    "mixer": {"Y", "dY", "ds", "dW", "dX"},
}


@pytest.mark.parametrize("name", PROBLEMS)
def test_manual_and_autodiff_columns_agree_to_float64_precision_for_every_quantity(name):
    model, *_, trace = problem(name)
    assert [layer.kind for layer in trace.layers] == [layer.name for layer in model.layers]
    for layer in trace.layers:
        expected = EXPECTED_NAMES[layer.kind] - ({"db"} if layer.description.endswith("no bias)") else set())
        assert set(layer.names()) - {"loss", "prediction"} == expected, layer.description
        for quantity in layer.quantities:
            assert quantity.manual.shape == quantity.autodiff.shape == quantity.shape, quantity.label
            assert np.all(np.isfinite(quantity.manual)), quantity.label
            assert quantity.max_rel < 1e-12, (layer.description, quantity.label, quantity.max_rel)
    assert trace.max_difference < 1e-12 and trace.dtype == "float64"


@pytest.mark.parametrize("name", PROBLEMS)
def test_trace_parameter_gradients_and_loss_equal_model_manual_grad(name):
    model, params, x, y, weights, key, trace = problem(name)
    loss, grads = jax.jit(lambda p: model.manual_grad(p, x, y, weights, key=key))(params)
    np.testing.assert_allclose(trace.loss, loss, rtol=1e-13)
    for layer, layer_grads in zip(trace.layers, grads):
        for leaf, grad in layer_grads.items():
            np.testing.assert_allclose(layer[f"d{leaf}"].manual, grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", PROBLEMS)
def test_trace_forward_is_the_models_forward_and_its_output_delta_starts_backprop(name):
    model, params, x, y, weights, key, trace = problem(name)
    logits = model.logits(params, x, key=key)
    last = trace.layers[-1]
    np.testing.assert_allclose(last["A" if last.kind == "dense" else "Y"].manual, logits, rtol=1e-13)
    delta = model.loss_fn.output_delta(logits, y, model.output_fn)
    scale = (weights / jnp.sum(weights))[:, None] if weights is not None else 1 / ROWS
    np.testing.assert_allclose(trace.output_delta.manual, delta * scale, rtol=1e-12, atol=1e-16)
    for lower, upper in zip(trace.layers, trace.layers[1:]):  # what a layer passes down is what the next gets
        incoming = lower["dA"] if lower.kind == "dense" else lower["dY"]
        np.testing.assert_array_equal(incoming.manual, upper["dX"].manual)


def test_dense_dz_is_the_incoming_gradient_times_the_activation_derivative():
    model, params, x, y, weights, key, trace = problem("tanh_gelu_l2_weights")
    first = trace.layers[0]
    z = x @ params[0]["W"] + params[0]["b"][None, :]
    np.testing.assert_allclose(first["Z"].manual, z, rtol=1e-14)
    np.testing.assert_allclose(first["dZ"].manual, first["dA"].manual * (1 - np.tanh(z) ** 2), rtol=1e-12)
    assert first["dW"].equation == "dW1 = Xᵀ dZ1 + λ W1"  # l2 is in both columns, and said
    assert "δ ⊙ w / Σw" in trace.layers[-1]["dA"].equation


def test_dropout_trace_uses_the_masks_of_the_key_on_both_sides():
    model, params, x, y, weights, key, trace = problem("dropout_custom_layer_custom_activation")
    np.testing.assert_allclose(trace.loss, model.loss(params, x, y, weights, key=key), rtol=1e-13)
    dropped = trace.layers[1]
    zeros = dropped["Y"].manual == 0
    assert 0 < zeros.sum() < zeros.size
    assert np.all(dropped["dX"].manual[zeros] == 0) and np.all(dropped["dX"].autodiff[zeros] == 0)
    assert "Bernoulli(0.6)" in dropped["Y"].equation


def test_trace_of_the_articles_worked_example_gives_the_articles_numbers():
    trace = article_trace()
    hidden, output = trace.layers
    np.testing.assert_allclose(hidden["Z"].manual, [[11.3, 4], [18.6, 6], [-10.6, -2], [-25.2, -6], [1.81, 1.4]],
                               rtol=1e-14)
    np.testing.assert_allclose(hidden["A"].manual, [[11.3, 4], [18.6, 6], [0, 0], [0, 0], [1.81, 1.4]], rtol=1e-14)
    np.testing.assert_allclose(output["A"].manual.ravel(), [8.92, 12.04, 4, 4, 4.864], rtol=1e-14)
    # the article's squared errors [0.0064, 0.9216, 1, 36, 34.386496], averaged
    np.testing.assert_allclose(trace.loss, 72.314496 / 5, rtol=1e-14)
    # the article's output gradient A - y = [-0.08, -0.96, -1, 6, 5.864]; the mean's is 2(A - y)/m
    np.testing.assert_allclose(output["dA"].manual.ravel(), np.array([-0.08, -0.96, -1, 6, 5.864]) * 2 / 5,
                               rtol=1e-13)
    # exact gradients, as examples/worked_example.py pins them: the article's A1ᵀ(A - y) and
    # mean(A - y) = [-8.14616, 2.1296] and 1.9648, times 2/m and 2
    np.testing.assert_allclose(output["dW"].manual.ravel(), [-3.258464, 0.85184], rtol=1e-13)
    np.testing.assert_allclose(output["db"].manual, [3.9296], rtol=1e-13)
    # the ReLU zeroes the gradient of rows 3 and 4 (z < 0), as the article's heaviside does
    np.testing.assert_array_equal(hidden["dZ"].manual[2:4], 0)
    np.testing.assert_allclose(hidden["dA"].manual, output["dA"].manual @ np.array([[0.4, 0.1]]), rtol=1e-14)
    assert trace.max_difference < 1e-12


def test_printed_trace_shows_equations_shapes_numbers_and_differences_step_by_step():
    text = str(article_trace())
    for line in ["Z1 = X W1 + b1", "A1 = relu(Z1)", "Z2 = A1 W2 + b2", "dA2 = δ / m,   δ_i = 2 (A2_i − y_i)",
                 "dZ1 = dA1 ⊙ relu'(Z1)", "dW2 = A1ᵀ dZ2", "db2 = Σ_rows dZ2", "dA1 = dZ2 W2ᵀ", "dX = dZ1 W1ᵀ",
                 "shape (5, 2)", "shape (2, 1)", "shape (1,)", "8.92", "4.864", "-3.2585", "3.9296",
                 "manual − autodiff", "ℓ_i = mse(A2_i, y_i)", "14.4629"]:
        assert line in text, line
    # forward first, then the loss, then backward from the output down
    assert text.index("A2 = identity") < text.index("\nLoss") < text.index("dW2") < text.index("dW1")


def test_format_shows_at_most_max_rows_at_the_chosen_precision():
    trace = article_trace()
    short = trace.format(precision=2, max_rows=2)
    assert "... 3 more rows" in short and "11.3" in short and "-3.26" in short and "-3.2585" not in short
    forward = trace.format(max_rows=2).split("Backward")[0]
    assert "12.04" in forward and "4.864" not in forward and "1.81" not in forward
    with pytest.raises(ValueError, match=r"`max_rows` must be an integer ≥ 1, got 0"):
        trace.format(max_rows=0)
    with pytest.raises(TypeError, match=r"`precision` must be an integer ≥ 0, got 2.5"):
        trace.format(precision=2.5)


def test_as_dict_gives_plain_data_for_code():
    data = article_trace().as_dict()
    assert set(data) == {"loss", "max_difference", "model", "dtype", "layers"}
    dw2 = data["layers"][1]["quantities"]["dW"]
    assert set(dw2) == {"name", "label", "equation", "phase", "manual", "autodiff", "shape", "max_abs", "max_rel"}
    assert dw2["label"] == "dW2" and dw2["shape"] == (2, 1) and isinstance(dw2["manual"], np.ndarray)
    assert isinstance(article_trace(), BackpropTrace)
    with pytest.raises(KeyError, match="has no quantity 'dQ'"):
        article_trace().layers[0]["dQ"]


WRONG_DX = fn.layer("scale", lambda key, n, dtype: {"s": jnp.full((n,), 0.7, dtype)},
                    lambda p, x: (x * p["s"][None, :], x),
                    lambda p, x, dy: ({"s": jnp.sum(dy * x, 0)}, 2 * dy * p["s"][None, :]))  # dx twice too big
WRONG_DERIVATIVE = fn.activation("cube", lambda z: z ** 3, lambda z: 2 * z ** 2)  # g' should be 3z²


@pytest.mark.parametrize("layers, first", [
    ([fn.dense(3, "tanh"), WRONG_DX, fn.dense(3, "elu"), fn.dense(1)], "dA1"),
    ([fn.dense(3, "tanh"), fn.dense(3, WRONG_DERIVATIVE), fn.dense(1)], "dZ2"),
])
def test_trace_points_at_the_first_quantity_a_wrong_backward_gets_wrong(layers, first):
    model = fn.sequential(2, layers)
    params = model.init(jax.random.key(0), jnp.float64)
    x, y = jnp.asarray(np.random.default_rng(0).normal(size=(4, 2))), jnp.ones((4, 1))
    trace = trace_backprop(model, params, x, y)
    layer, quantity = trace.first_difference()
    assert quantity.label == first and quantity.max_rel > 0.1 and trace.max_difference > 0.1
    assert (f"first above 5.7e-14 (256 ulps of float64), in the order of computation: {first} in layer "
            f"{layer.index + 1}") in str(trace)
    assert problem("relu_mse")[-1].first_difference() is None


def test_docstring_example_runs():
    import doctest

    import funcnet.trace

    result = doctest.testmod(funcnet.trace)
    assert result.attempted >= 3 and result.failed == 0


def test_float32_trace_agrees_loosely():
    model, params, x, y = worked_example_network(jnp.float32)
    trace = trace_backprop(model, params, x, y)
    assert trace.dtype == "float32" and trace.max_difference < 1e-5


# ----------------------------------------------------------------------------- first_difference's tolerance
@functools.lru_cache(maxsize=None)
def float32_trace(name):
    """A problem of PROBLEMS traced in float32 (params, x and real targets in float32)."""
    model, params, x, y, weights, key, _ = problem(name)
    single = jax.tree.map(lambda leaf: leaf.astype(jnp.float32), params)
    y = y.astype(jnp.float32) if jnp.issubdtype(y.dtype, jnp.floating) else y
    weights = None if weights is None else weights.astype(jnp.float32)
    return trace_backprop(model, single, x.astype(jnp.float32), y, weights, key=key)


def test_the_default_tolerance_is_256_ulps_of_the_traces_dtype():
    assert float32_trace("relu_mse").tolerance == 256 * np.finfo(np.float32).eps  # 3.1e-5
    assert article_trace().tolerance == 256 * np.finfo(np.float64).eps  # 5.7e-14


@pytest.mark.parametrize("name", ["tanh_gelu_l2_weights", "no_bias_activation_layer_layer_norm",
                                  "dropout_custom_layer_custom_activation"])
def test_a_correct_float32_trace_reports_no_difference(name):
    trace = float32_trace(name)
    assert trace.dtype == "float32"
    assert 1e-8 < trace.max_difference < 1e-5  # float32 rounding: the old float64 tolerance 1e-8 was a false alarm
    assert trace.first_difference() is None
    assert "first above" not in str(trace)


def test_a_wrong_derivative_is_still_found_in_float32():
    model = fn.sequential(2, [fn.dense(3, "tanh"), fn.dense(3, WRONG_DERIVATIVE), fn.dense(1)])
    params = model.init(jax.random.key(0), jnp.float32)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 2)), jnp.float32)
    trace = trace_backprop(model, params, x, jnp.ones((4, 1), jnp.float32))
    layer, quantity = trace.first_difference()
    assert trace.dtype == "float32" and quantity.label == "dZ2" and layer.index == 1
    assert "first above 3.1e-05 (256 ulps of float32), in the order of computation: dZ2 in layer 2" in str(trace)


def test_an_explicit_tolerance_is_used_as_given():
    trace = float32_trace("tanh_gelu_l2_weights")
    assert trace.first_difference(0.0) is not None  # float32 rounding is a difference at tolerance 0
    assert trace.first_difference(np.float32(1e-3)) is None


@pytest.mark.parametrize("tolerance, error, message", [
    (float("nan"), ValueError, r"`tolerance` must be finite, got nan"),
    (-1e-6, ValueError, r"`tolerance` must be in \[0(\.0)?, inf\], got -1e-06"),
    ("1e-6", TypeError, r"`tolerance` must be a real number, got '1e-6' \(str\)"),
])
def test_a_bad_tolerance_is_refused_by_name(tolerance, error, message):
    with pytest.raises(error, match=message):
        article_trace().first_difference(tolerance)


# ----------------------------------------------------------------------------- short reprs, full tables
def test_repr_of_a_trace_is_a_short_summary_and_str_the_full_table():
    trace = problem("dropout_custom_layer_custom_activation")[-1]
    summary = repr(trace)
    assert len(summary.splitlines()) == 4 and len(summary) < 800
    assert summary.startswith(f"BackpropTrace({trace.model_description}; 6 rows, float64, loss ")
    assert "dense(4, sigmoid) → (6, 4), dropout(0.4) → (6, 4), mixer (your own layer) → (6, 4)" in summary
    assert "largest manual vs autodiff difference: " in summary
    assert "tolerance 5.7e-14: no quantity above the tolerance" in summary
    assert "print(trace) or trace.format() shows every number" in summary
    assert str(trace) == trace.format() and len(str(trace).splitlines()) > 100


def test_repr_of_a_wrong_trace_names_the_first_difference():
    model = fn.sequential(2, [fn.dense(3, "tanh"), fn.dense(3, WRONG_DERIVATIVE), fn.dense(1)])
    params = model.init(jax.random.key(0), jnp.float64)
    x, y = jnp.asarray(np.random.default_rng(0).normal(size=(4, 2))), jnp.ones((4, 1))  # as above: compiled once
    assert "first above it: dZ2 in layer 2" in repr(trace_backprop(model, params, x, y))


def test_layer_and_quantity_reprs_are_one_line_and_their_str_shows_the_numbers():
    layer = article_trace().layers[1]
    number = r"\d\.\de[+-]\d\d"  # the differences are rounding: their digits depend on the CPU
    assert re.fullmatch(rf"LayerTrace\(layer 2 · dense\(1\): Z \(5, 1\), A \(5, 1\), loss \(\), dA \(5, 1\), "
                        rf"dZ \(5, 1\), dW \(2, 1\), db \(1,\), dX \(5, 2\); largest manual vs autodiff difference "
                        rf"{number} \(\w+\); print it for the numbers\)", repr(layer))
    assert re.fullmatch(rf"TracedQuantity\(dW2 = A1ᵀ dZ2; shape \(2, 1\), float64; manual − autodiff {number}, "
                        rf"relative {number}\)", repr(layer["dW"]))
    assert str(layer).splitlines()[0] == "layer 2 · dense(1)" and "12.04" in str(layer)
    assert str(layer["dW"]).splitlines()[0] == "dW2 = A1ᵀ dZ2"
    assert re.fullmatch(rf"  shape \(2, 1\) · manual − autodiff: {number} \(relative {number}\)",
                        str(layer["dW"]).splitlines()[1])
    assert "-3.2585" in str(layer["dW"])


@pytest.mark.parametrize("call, message", [
    (lambda m, p, x, y: trace_backprop(m, p, x, y[:, 0]), "reshape with y.reshape"),
    (lambda m, p, x, y: trace_backprop(m, p[:1], x, y), "`params` must be a list of 2"),
    (lambda m, p, x, y: trace_backprop(m, p, x, y, jnp.ones(3)), "`weights` has shape"),
    (lambda m, p, x, y: trace_backprop(fn.mlp([1, 2, 1], dropout=0.5), p[:1] + [{}] + p[1:], x, y), "needs `key=`"),
])
def test_trace_rejects_bad_arguments_with_a_message(call, message):
    with pytest.raises(ValueError, match=message):
        call(*worked_example_network())


ONE_KEY = r"`key` must be a single jax.random key \(a typed key of shape \(\) or a raw uint32 array of shape \(2,\)\)"


@pytest.mark.parametrize("key, message", [
    (jax.random.split(jax.random.key(1), 2),
     ONE_KEY + r", got a batch of keys of shape \(2,\); trace_backprop uses one"),
    (jax.random.split(jax.random.PRNGKey(1), 2), ONE_KEY + r", got a batch of keys of shape \(2, 2\); trace_backprop"),
    (1, r"`key` must be a jax.random key, got 1; make one with jax.random.key\(0\) and pass it as trace_backprop"),
    (np.array([0.0, 1.0]), r"`key` must be a jax.random key, got an array of float64 and shape \(2,\)"),
], ids=["batch-of-typed-keys", "batch-of-raw-keys", "int", "float-array"])
@pytest.mark.parametrize("dropout", [0.5, 0.0], ids=["dropout", "no-dropout"])
def test_trace_refuses_anything_but_one_key_by_name(key, message, dropout):
    # JAX said "fold_in accepts a single key" or "invalid PRNG key data", naming no argument
    _, params, x, y = worked_example_network()
    model = fn.mlp([1, 2, 1], dropout=dropout)
    params = params[:1] + [{}] + params[1:] if dropout else params
    with pytest.raises(ValueError, match=message):
        trace_backprop(model, params, x, y, key=key)


def test_trace_example_prints_all_three_parts(capsys):
    import importlib.util
    import os

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("trace_example", os.path.join(ROOT, "examples", "trace.py"))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # the example switches float64 on globally, as a script would
        module.main()
    finally:
        jax.config.update("jax_enable_x64", False)  # the tests' global mode
    out = capsys.readouterr().out
    assert "4.864" in out and "dW1 = Xᵀ dZ1 + λ W1" in out and "dY3 = M3 ⊙ dY4 / 0.75" not in out
    assert "dY2 = M3 ⊙ dY3 / 0.75" in out and "first difference: dA1 in layer 2" in out


# ----------------------------------------------------------------------------- funcnet explain
def test_explain_article_prints_the_worked_example_and_exits_0(capsys):
    assert cli.main(["explain", "--example", "article"]) == 0
    out = capsys.readouterr().out
    assert "8.92" in out and "4.864" in out and "dZ1 = dA1 ⊙ relu'(Z1)" in out and "[-8.14616]" in out


def test_explain_xor_traces_a_fresh_sigmoid_logloss_network(capsys):
    assert cli.main(["explain", "--example", "xor", "--seed", "3", "--precision", "3"]) == 0
    out = capsys.readouterr().out
    assert "2-3(tanh)-1 → sigmoid, logloss: 4 rows, float64" in out and "ŷ = sigmoid(A2)" in out
    assert "δ_i = (σ(A2_i) − y_i)" in out and "--seed 3" in out


def _saved_model(tmp_path, config):
    model = fn.mlp([2, 3, 1], hidden="tanh", dropout=0.25)
    params = model.init(jax.random.key(0))
    rows = np.array([[1.0, 10.0, 0.5], [2.0, 20.0, 1.5], [3.0, 5.0, -1.0], [4.0, 0.0, 2.0]])
    standardizer = fn.fit_standardizer(jnp.asarray(rows[:, :2]))
    fn.save(tmp_path / "model.npz", model, params, standardizer=standardizer, config=config)
    (tmp_path / "rows.csv").write_text("b,a,t\n" + "\n".join(f"{b},{a},{t}" for a, b, t in rows) + "\n")
    return model, params, rows, standardizer


def test_explain_checkpoint_traces_standardised_csv_rows_by_feature_name(tmp_path, capsys):
    model, params, rows, standardizer = _saved_model(tmp_path, {"features": ["a", "b"], "target": "t"})
    argv = ["explain", "--checkpoint", str(tmp_path / "model.npz"), "--csv", str(tmp_path / "rows.csv"),
            "--rows", "3", "--seed", "2"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "first 3 rows" in out and "standardised" in out and "dropout masks from --seed 2" in out
    x = np.asarray(standardizer.apply(jnp.asarray(rows[:3, :2])))
    z1 = x @ np.asarray(params[0]["W"], np.float64) + np.asarray(params[0]["b"], np.float64)
    assert np.array2string(z1[:1], precision=4, suppress_small=True, floatmode="maxprec")[1:-1] in out


@pytest.mark.parametrize("argv, message", [
    (["--rows", "0"], "--rows must be at least 1, got 0"),
    (["--precision", "-1"], "--precision must be between 0 and 16"),
    (["--checkpoint", "{tmp}/model.npz"], "--checkpoint needs --csv"),
    (["--csv", "{tmp}/rows.csv"], "--csv goes with --checkpoint"),
    (["--example", "xor", "--target", "t"], "--target goes with --checkpoint"),
    (["--checkpoint", "{tmp}/missing.npz", "--csv", "{tmp}/rows.csv"], "--checkpoint: "),
    (["--checkpoint", "{tmp}/model.npz", "--csv", "{tmp}/rows.csv"], "--target: the checkpoint does not name"),
    (["--checkpoint", "{tmp}/model.npz", "--csv", "{tmp}/rows.csv", "--target", "q"], "--target 'q' is not a"),
])
def test_explain_bad_arguments_exit_2_naming_the_flag(tmp_path, capsys, argv, message):
    _saved_model(tmp_path, {"features": ["a", "b"]})
    assert cli.main(["explain", *[arg.format(tmp=tmp_path) for arg in argv]]) == 2
    assert message in capsys.readouterr().err


def test_explain_checkpoint_needs_the_models_feature_columns(tmp_path, capsys):
    _saved_model(tmp_path, {"features": ["a", "c"], "target": "t"})
    argv = ["explain", "--checkpoint", str(tmp_path / "model.npz"), "--csv", str(tmp_path / "rows.csv")]
    assert cli.main(argv) == 2
    assert "lacks the feature columns ['c']" in capsys.readouterr().err


def test_explain_unknown_example_is_an_argparse_error_naming_the_flag(capsys):
    assert cli.main(["explain", "--example", "mnist"]) == cli.EXIT_BAD_INPUT  # argparse's status, returned
    assert "argument --example: invalid choice: 'mnist'" in capsys.readouterr().err

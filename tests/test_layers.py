"""Layers as values: dropout's masks, per-layer activations, params layout, and models as equal, hashable values."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from funcnet.layers import default_dense_layout, materialise_transposes

MOMENTUM = optax.sgd(0.05, momentum=0.9)  # one optimizer object, so fit's compiled epochs are shared


def normal(shape, seed=0, dtype=jnp.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


def without_dropout(model, params):
    """The params of ``model`` with the dropout layers' ``{}`` entries left out."""
    return [layer_params for layer, layer_params in zip(model.layers, params) if layer.name != "dropout"]


# ----------------------------------------------------------------------------- dropout
DROPOUT_MLP = fn.mlp([3, 8, 8, 2], hidden="tanh", dropout=0.3)


@pytest.mark.x64
def test_training_forward_is_bit_identical_for_the_same_key_and_differs_for_another():
    params = DROPOUT_MLP.init(jax.random.key(0), jnp.float64)
    x = normal((16, 3))
    forward = jax.jit(DROPOUT_MLP.forward)
    first = forward(params, x, key=jax.random.key(1))
    np.testing.assert_array_equal(first, forward(params, x, key=jax.random.key(1)))
    assert np.max(np.abs(first - forward(params, x, key=jax.random.key(2)))) > 1e-2


@pytest.mark.x64
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32], ids=["float64", "float32"])
def test_dropout_zeroes_the_requested_fraction_and_scales_kept_elements_by_one_over_keep(dtype):
    model = fn.sequential(50, [fn.dropout(0.3)])
    x = normal((2000, 50), dtype=dtype)  # no exact zeros: an output of 0 means a dropped element
    y = np.asarray(model.forward([{}], x, key=jax.random.key(0)))
    dropped = y == 0
    assert abs(dropped.mean() - 0.3) < 0.01
    assert y.dtype == dtype
    # x / 0.7 up to the one rounding of the product (XLA may multiply by the reciprocal instead)
    np.testing.assert_allclose(y[~dropped], np.asarray(x)[~dropped] / 0.7, rtol=np.finfo(dtype).eps, atol=0)


def test_each_dropout_layer_draws_its_own_mask():
    model = fn.sequential(50, [fn.dropout(0.5), fn.dropout(0.5)])
    y = model.forward([{}, {}], normal((2000, 50)), key=jax.random.key(0))
    # independent masks keep 1/4 of the elements; one mask applied twice would keep 1/2
    assert abs(np.mean(y == 0) - 0.75) < 0.01


def test_the_dropout_mask_depends_on_the_key_and_shape_not_on_the_values():
    model = fn.sequential(50, [fn.dropout(0.3)])
    x = normal((100, 50))
    key = jax.random.key(5)
    np.testing.assert_array_equal(model.forward([{}], x, key=key) == 0,
                                  model.forward([{}], 3 * x + 1, key=key) == 0)


@pytest.mark.x64
def test_inference_is_deterministic_and_equals_the_model_without_dropout_layers():
    params = DROPOUT_MLP.init(jax.random.key(0), jnp.float64)
    plain = fn.mlp([3, 8, 8, 2], hidden="tanh")
    x, y = normal((16, 3)), normal((16, 2), seed=1)
    inference = DROPOUT_MLP.forward(params, x)
    np.testing.assert_array_equal(inference, DROPOUT_MLP.forward(params, x))
    np.testing.assert_array_equal(inference, plain.forward(without_dropout(DROPOUT_MLP, params), x))
    np.testing.assert_array_equal(DROPOUT_MLP.eval_loss(params, x, y),
                                  plain.eval_loss(without_dropout(DROPOUT_MLP, params), x, y))


TRAINING_MODE_CALLS = {
    "model.loss": lambda params, x, y: DROPOUT_MLP.loss(params, x, y),
    "model.manual_grad": lambda params, x, y: DROPOUT_MLP.manual_grad(params, x, y),
    **{f"train_step-{grad}": (lambda params, x, y, grad=grad: fn.make_train_step(DROPOUT_MLP, MOMENTUM, grad)(
        params, MOMENTUM.init(params), x, y)) for grad in fn.engine.GRAD_MODES},
}


@pytest.mark.parametrize("call", TRAINING_MODE_CALLS)
def test_training_mode_of_a_dropout_model_without_a_key_is_rejected_naming_key(call):
    params = DROPOUT_MLP.init(jax.random.key(0))
    x, y = normal((4, 3), dtype=jnp.float32), normal((4, 2), dtype=jnp.float32)
    with pytest.raises(ValueError, match=r"this model has dropout, so .* needs `key=`"):
        TRAINING_MODE_CALLS[call](params, x, y)


def dropout_fit_model():
    """Built anew for every fit: equal models must share one compiled epoch."""
    return fn.sequential(3, [fn.dense(6, "tanh"), fn.dropout(0.3), fn.dense(2)], l2=0.01)


def fit_once(grad, key_seed):
    model = dropout_fit_model()
    params = model.init(jax.random.key(0), jnp.float64)
    x = normal((40, 3))
    y = jnp.sin(x[:, :2]) + 0.1 * normal((40, 2), seed=1)
    # one full batch per epoch: the shuffle only reorders a sum, so another key changes the masks alone
    fitted_params, history = fn.fit(model, params, MOMENTUM, x, y, epochs=4, batch_size=40,
                                    key=jax.random.key(key_seed), grad=grad)
    return jax.device_get(fitted_params), history


fitted = functools.lru_cache(maxsize=None)(fit_once)


@pytest.mark.x64
def test_fit_with_dropout_is_bit_reproducible_for_the_same_key_and_differs_for_another():
    params, history = fitted("autodiff", 0)
    again, history_again = fit_once("autodiff", 0)
    chex.assert_trees_all_equal(params, again)
    assert history == history_again
    other, _ = fitted("autodiff", 1)
    assert max(np.max(np.abs(a - b)) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(other))) > 1e-3


@pytest.mark.x64
def test_fit_with_dropout_gives_the_same_params_in_manual_and_autodiff_modes():
    (manual, manual_history), (autodiff, autodiff_history) = fitted("manual", 0), fitted("autodiff", 0)
    chex.assert_trees_all_close(manual, autodiff, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(manual_history["train_loss"], autodiff_history["train_loss"], rtol=1e-12)


def test_equal_models_share_one_compiled_train_epoch():
    before = fn.engine.make_train_epoch.cache_info()
    first = fn.engine.make_train_epoch(dropout_fit_model(), MOMENTUM, "autodiff", 40)
    second = fn.engine.make_train_epoch(dropout_fit_model(), MOMENTUM, "autodiff", 40)
    after = fn.engine.make_train_epoch.cache_info()
    assert first is second
    assert after.hits >= before.hits + 1 and after.misses <= before.misses + 1


# ----------------------------------------------------------------------------- per-layer activations
def tanh_relu_by_hand(params, x):
    """``relu(tanh(x W0 + b0) W1 + b1) W2 + b2`` in NumPy."""
    (first, second, last) = [{name: np.asarray(leaf) for name, leaf in layer.items()} for layer in params]
    hidden = np.tanh(np.asarray(x) @ first["W"] + first["b"])
    hidden = np.maximum(hidden @ second["W"] + second["b"], 0)
    return hidden @ last["W"] + last["b"]


@pytest.mark.x64
def test_per_layer_hidden_activations_are_applied_in_order():
    model = fn.mlp([3, 4, 4, 2], hidden=["tanh", "relu"])
    params = model.init(jax.random.key(0), jnp.float64)
    params[1]["b"] = jnp.linspace(-0.5, 0.5, 4)  # some of the relu layer's inputs are negative
    x = normal((32, 3))
    expected = tanh_relu_by_hand(params, x)
    np.testing.assert_allclose(model.forward(params, x), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.logits(params, x, key=jax.random.key(0)), expected, rtol=1e-12, atol=1e-14)
    for other in ("tanh", "relu"):
        assert np.max(np.abs(fn.mlp([3, 4, 4, 2], hidden=other).forward(params, x) - expected)) > 1e-2, other


def test_dense_layers_name_their_own_activations():
    model = fn.mlp([3, 4, 4, 2], hidden=["tanh", "relu"], output="sigmoid", loss="logloss", dropout=0.1)
    assert [layer.name for layer in model.layers] == ["dense", "dropout", "dense", "dropout", "dense"]
    assert [dict(layer.config)["activation"] for layer in model.layers if layer.name == "dense"] == [
        "tanh", "relu", "identity"]
    assert model.hidden_activations == ("tanh", "relu")
    assert model.describe() == "3-4(tanh)-dropout(0.1)-4(relu)-dropout(0.1)-2 → sigmoid, logloss"


def test_mlp_takes_an_activation_value_for_every_hidden_layer():
    # fn.activation's own docstring example: fn.mlp([2, 8, 1], hidden=mish)
    mish = fn.activation("mish", lambda z: z * jnp.tanh(jax.nn.softplus(z)), lambda z: jnp.ones_like(z))
    for hidden in (mish, fn.activations.get_activation("tanh")):
        model = fn.mlp([3, 4, 4, 2], hidden=hidden)
        assert model.hidden_activations == (hidden.name, hidden.name)


@pytest.mark.parametrize("hidden", [["tanh"], ["tanh", "relu", "gelu"], []])
def test_a_hidden_list_of_the_wrong_length_is_rejected(hidden):
    message = rf"`hidden` has {len(hidden)} activations but sizes \[3, 4, 4, 2\] has 2 hidden layers"
    with pytest.raises(ValueError, match=message):
        fn.mlp([3, 4, 4, 2], hidden=hidden)


SOFTMAX_AS_HIDDEN = {
    "mlp hidden list": lambda: fn.mlp([3, 4, 4, 2], hidden=["tanh", "softmax"]),
    "dense": lambda: fn.dense(4, "softmax"),
    "activation_layer": lambda: fn.layers.activation_layer("softmax"),
    "sequential item": lambda: fn.sequential(3, [fn.dense(4), "softmax", fn.dense(2)]),
}


@pytest.mark.parametrize("build", SOFTMAX_AS_HIDDEN)
def test_softmax_is_rejected_anywhere_but_the_output(build):
    with pytest.raises(ValueError, match="'softmax'.* output"):
        SOFTMAX_AS_HIDDEN[build]()


# ----------------------------------------------------------------------------- params and model values
def init_shapes(model, dtype=jnp.float32):
    """What ``model.init(key, dtype)`` returns, as shapes and dtypes (traced, not compiled)."""
    return jax.eval_shape(functools.partial(model.init, dtype=dtype), jax.random.key(0))


@pytest.mark.x64
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32], ids=["float64", "float32"])
def test_mlp_params_are_exactly_one_W_and_b_per_dense_layer(dtype):
    params = init_shapes(fn.mlp([5, 7, 3, 2]), dtype)
    expected = [{"W": jnp.zeros((5, 7), dtype), "b": jnp.zeros(7, dtype)},
                {"W": jnp.zeros((7, 3), dtype), "b": jnp.zeros(3, dtype)},
                {"W": jnp.zeros((3, 2), dtype), "b": jnp.zeros(2, dtype)}]
    chex.assert_trees_all_equal_structs(params, expected)
    chex.assert_trees_all_equal_shapes_and_dtypes(params, expected)


def test_mlp_with_dropout_has_an_empty_dict_after_each_hidden_dense_layer():
    params = init_shapes(fn.mlp([5, 7, 3, 2], dropout=0.5))
    assert [{name: leaf.shape for name, leaf in layer.items()} for layer in params] == [
        {"W": (5, 7), "b": (7,)}, {}, {"W": (7, 3), "b": (3,)}, {}, {"W": (3, 2), "b": (2,)}]


EVERY_LAYER_KIND = fn.sequential(3, [fn.dense(4, "relu"), fn.layer_norm(), fn.dropout(0.3), fn.layers.activation_layer("gelu"),
                                     fn.dense(2, bias=False)], l2=0.1)


@pytest.mark.x64
def test_init_is_bit_identical_for_the_same_key_for_every_layer_kind():
    params = EVERY_LAYER_KIND.init(jax.random.key(3), jnp.float64)
    chex.assert_trees_all_equal(params, EVERY_LAYER_KIND.init(jax.random.key(3), jnp.float64))
    assert [sorted(layer) for layer in params] == [["W", "b"], ["scale", "shift"], [], [], ["W"]]
    np.testing.assert_array_equal(params[1]["scale"], np.ones(4))
    np.testing.assert_array_equal(params[1]["shift"], np.zeros(4))
    other = EVERY_LAYER_KIND.init(jax.random.key(4), jnp.float64)
    assert not np.array_equal(params[0]["W"], other[0]["W"]) and not np.array_equal(params[4]["W"], other[4]["W"])


MODEL_DESCRIPTIONS = {
    "mlp": lambda: fn.mlp([3, 5, 5, 2], hidden=["tanh", "leaky_relu"], output="softmax", loss="cross_entropy",
                          negative_slope=0.2, dropout=0.25, l2=0.01),
    "sequential": lambda: fn.sequential(3, [fn.dense(4, "elu", bias=False), fn.layer_norm(0.01), fn.dropout(0.2),
                                            "silu", fn.dense(2)], loss="huber", delta=0.5, l2=0.1),
}


@pytest.mark.parametrize("build", MODEL_DESCRIPTIONS)
def test_a_model_built_twice_is_equal_and_hashes_equal(build):
    first, second = MODEL_DESCRIPTIONS[build](), MODEL_DESCRIPTIONS[build]()
    assert first == second and hash(first) == hash(second)
    assert {first: "compiled"}[second] == "compiled"


# the same layer spelled two ways: equal layers make equal models, which share compiled code
SAME_LAYER = {
    "dense default activation": (lambda: fn.dense(4), lambda: fn.dense(4, "identity", bias=True)),
    "dense default initializer": (lambda: fn.dense(4, "relu"), lambda: fn.dense(4, "relu", initializer="he")),
    "activation by name or value": (lambda: fn.layers.activation_layer("tanh"),
                                    lambda: fn.layers.activation_layer(fn.activations.get_activation("tanh"))),
    "dropout rate by keyword": (lambda: fn.dropout(0.3), lambda: fn.dropout(rate=0.3)),
    "layer_norm default epsilon": (lambda: fn.layer_norm(), lambda: fn.layer_norm(1e-5)),
    "layer_norm epsilon by keyword": (lambda: fn.layer_norm(1e-5), lambda: fn.layer_norm(epsilon=1e-5)),
}


@pytest.mark.parametrize("spelling", SAME_LAYER)
def test_the_same_layer_spelled_two_ways_is_equal(spelling):
    first, second = (build() for build in SAME_LAYER[spelling])
    assert first == second
    assert fn.sequential(4, [first]) == fn.sequential(4, [second])


def test_a_loaded_model_with_dropout_and_layer_norm_equals_the_saved_one(tmp_path):
    model = fn.sequential(3, [fn.dense(4, "tanh"), fn.layer_norm(), fn.dropout(0.3), fn.dense(2)])
    params = model.init(jax.random.key(0))
    fn.save(tmp_path / "model.npz", model, params)
    assert fn.load(tmp_path / "model.npz").model == model


@pytest.mark.x64
def test_a_loaded_float64_model_with_leaky_relu_and_elu_predicts_bit_identically(tmp_path):
    model = fn.sequential(3, [fn.dense(4, fn.activations.get_activation("leaky_relu", negative_slope=0.1)),
                              fn.layers.activation_layer(fn.activations.get_activation("elu", alpha=0.7)), fn.dense(2)])
    params = model.init(jax.random.key(0), jnp.float64)
    fn.save(tmp_path / "model.npz", model, params)
    loaded = fn.load(tmp_path / "model.npz")
    x = normal((64, 3))
    np.testing.assert_array_equal(loaded.model.forward(loaded.params, x), model.forward(params, x))


def _layer_without_params(name):
    return fn.layer(name, lambda key, n, dtype: {}, lambda p, x: (x, None), lambda p, c, dy: ({}, dy))


@pytest.mark.parametrize("build, error, message", [
    (lambda: fn.dense(0), ValueError, r"dense `units` must be an integer ≥ 1, got 0"),
    (lambda: fn.dense(3.5), TypeError, r"dense `units` must be an integer ≥ 1, got 3.5 \(float\)"),
    (lambda: fn.dense(3, initializer="lecun"), ValueError, r"dense `initializer` must be 'he' or 'glorot', got 'lecun'"),
    (lambda: fn.dense(3, "softmax"), ValueError, r"dense: activation 'softmax' is not elementwise"),
    (lambda: fn.layer_norm(0.0), ValueError, r"layer_norm `epsilon` must be in \(0(\.0)?, inf\), got 0.0"),
    (lambda: _layer_without_params(""), ValueError, r"`name` must be a non-empty string, got ''"),
    (lambda: fn.layer("noop", None, None, None), TypeError, r"layer 'noop': `init` must be a callable, got NoneType"),
    (lambda: fn.layer("noop", lambda key, n, dtype: {}, lambda p, x: (x, None), lambda p, c, dy: ({}, dy),
                      infer="identity"), TypeError, r"layer 'noop': `infer` must be a callable \(params, x\) -> y or "
                                                    r"None, got str"),
    (lambda: fn.dense(2)._replace(infer_fn=None, predict=None), TypeError,
     r"Layer: give `infer_fn` only; `predict` is its deprecated old name"),
    (lambda: fn.layers.Layer("noop", *fn.dense(2)[1:5], False, (), True, None, predict=abs), TypeError,
     r"Layer: give `infer_fn` only; `predict` is its deprecated old name"),
    (lambda: fn.activation("", jnp.tanh, jnp.tanh), ValueError, r"`name` must be a non-empty string, got ''"),
    (lambda: fn.activation("tanh", jnp.tanh, jnp.tanh), ValueError, r"`name='tanh'` is a built-in activation"),
    (lambda: fn.activation("mine", jnp.tanh, jnp.tanh, initializer="lecun"), ValueError,
     r"`initializer` must be one of he, glorot, got 'lecun'"),
    (lambda: fn.loss("", jnp.mean, jnp.mean), ValueError, r"`name` must be a non-empty string, got ''"),
    (lambda: fn.loss("mse", jnp.mean, jnp.mean), ValueError, r"`name='mse'` is a built-in loss"),
    (lambda: fn.sequential(3, []), ValueError, r"`layers` is empty; a network needs at least one layer"),
    (lambda: fn.sequential(3, [fn.dense(2), 7]), TypeError,
     r"`layers`: expected a layer \(fn.dense\(...\), fn.dropout\(...\), ...\) or an activation name, got int: 7"),
    (lambda: fn.sequential(0, [fn.dense(2)]), ValueError, r"`n_in` must be an integer ≥ 1, got 0"),
])
def test_bad_layer_and_piece_arguments_are_rejected_by_name(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_a_checkpoint_naming_an_unknown_layer_kind_is_rejected():
    from funcnet.layers import layer_from_config
    with pytest.raises(ValueError, match=r"unknown layer kind 'conv'; funcnet builds dense, activation, dropout, "
                                         r"layer_norm"):
        layer_from_config("conv", {})


@pytest.mark.parametrize("key, message", [
    (1.7, r"`key` must be a jax.random key, got 1.7; make one with jax.random.key\(0\) and pass it as "
          r"fit\(\.\.\., key=jax.random.key\(0\)\)"),
    (None, r"`key` must be a jax.random key, got None"),
    (np.zeros(3, np.uint32), r"`key` must be a jax.random key, got an array of uint32 and shape \(3,\)"),
])
def test_fit_rejects_anything_but_a_random_key_and_shows_how_to_make_one(key, message):
    model = fn.mlp([2, 1])
    with pytest.raises(ValueError, match=message):
        fn.fit(model, model.init(jax.random.key(0)), optax.sgd(0.1), np.zeros((4, 2)), np.zeros((4, 1)),
               epochs=1, key=key)


def test_model_init_names_the_key_it_needs():
    with pytest.raises(ValueError, match=r"`key` must be a jax.random key, got 0; .* model.init\(\.\.\., key="):
        fn.mlp([2, 1]).init(0)


@pytest.mark.parametrize("value, layout", [("columns", "columns"), ("rows", "rows"), (" rows ", "rows"),
                                           ("", "columns")])  # the suite runs on CPU: unset is columns
def test_the_dense_layout_variable_picks_the_default_layout(monkeypatch, value, layout):
    monkeypatch.setenv("FUNCNET_DENSE_LAYOUT", value)
    assert default_dense_layout() == layout
    assert materialise_transposes() is (layout == "columns")


@pytest.mark.parametrize("value", ["column", "ROWS", "batch-first"])
def test_a_misspelt_dense_layout_is_refused_not_taken_for_rows(monkeypatch, value):
    monkeypatch.setenv("FUNCNET_DENSE_LAYOUT", value)
    with pytest.raises(ValueError, match=rf"FUNCNET_DENSE_LAYOUT must be 'columns' or 'rows' \(or unset\), "
                                         rf"got '{value}'"):
        default_dense_layout()
    with pytest.raises(ValueError, match=r"FUNCNET_DENSE_LAYOUT must be 'columns' or 'rows'"):
        fn.dense(3)  # read when the layer is built


@pytest.mark.parametrize("layout, error, message", [
    ("column", ValueError, r"dense `layout` must be 'columns', 'rows' or None, got 'column'"),
    ("", ValueError, r"dense `layout` must be 'columns', 'rows' or None, got ''"),
    (1, TypeError, r"dense `layout` must be 'columns', 'rows' or None, got 1 \(int\)"),
])
def test_a_bad_dense_layout_argument_is_refused_by_name(layout, error, message):
    with pytest.raises(error, match=message):
        fn.dense(3, layout=layout)


def test_dense_layers_differing_only_in_layout_are_different_layers_with_the_same_config():
    columns, rows = fn.dense(4, "tanh", layout="columns"), fn.dense(4, "tanh", layout="rows")
    assert columns != rows and hash(columns) != hash(rows)
    assert columns.config == rows.config  # checkpoints describe the layer as before
    assert columns == fn.dense(4, "tanh", layout="columns")
    assert fn.sequential(3, [columns]) != fn.sequential(3, [rows])


@pytest.mark.x64
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_both_dense_layouts_compute_the_same_forward_backward_and_prediction(activation):
    columns, rows = fn.dense(4, activation, layout="columns"), fn.dense(4, activation, layout="rows")
    params = columns.init(jax.random.key(0), 3, jnp.float64)
    x, dy = normal((6, 3), seed=1), normal((6, 4), seed=2)
    (y_columns, cache_columns), (y_rows, cache_rows) = columns.forward(params, x, None), rows.forward(params, x, None)
    np.testing.assert_allclose(y_columns, y_rows, rtol=1e-14, atol=1e-14)
    chex.assert_trees_all_close(columns.backward(params, cache_columns, dy), rows.backward(params, cache_rows, dy),
                                rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(columns.infer(params, x), rows.infer(params, x))



# ----------------------------------------------------------------------------- one name per meaning
def test_a_layers_inference_is_infer_its_own_infer_fn_or_its_forward_without_a_key():
    x = normal((6, 3), dtype=jnp.float32)
    dense, norm = fn.dense(4, "tanh"), fn.layer_norm()
    dense_params, norm_params = dense.init(jax.random.key(0), 3, jnp.float32), norm.init(None, 3, jnp.float32)
    assert dense.infer_fn is not None and norm.infer_fn is None
    np.testing.assert_array_equal(dense.infer(dense_params, x), dense.infer_fn(dense_params, x))
    np.testing.assert_array_equal(norm.infer(norm_params, x), norm.forward(norm_params, x, None)[0])
    doubled = fn.layer("double", lambda key, n, dtype: {}, lambda p, x: (2 * x, None), lambda p, c, dy: ({}, 2 * dy),
                       infer=lambda p, x: x + x)
    assert doubled.infer_fn is not None and not doubled.builtin
    np.testing.assert_array_equal(fn.sequential(3, [doubled]).forward([{}], x), x + x)
    assert _layer_without_params("plain").infer_fn is None


def test_predict_the_old_name_of_infer_fn_works_with_a_warning_naming_infer_fn():
    dense = fn.dense(4, "tanh")
    own = lambda params, x: dense.infer_fn(params, x)  # noqa: E731
    renamed = "Layer.predict is deprecated: use Layer.infer_fn"
    with pytest.warns(DeprecationWarning, match=renamed) as records:
        assert dense.predict is dense.infer_fn
    assert records[0].filename == __file__
    with pytest.warns(DeprecationWarning, match=renamed) as records:
        assert dense._replace(predict=own).infer_fn is own
    assert records[0].filename == __file__
    with pytest.warns(DeprecationWarning, match=renamed) as records:
        built = fn.layers.Layer("mine", dense.init, dense.output_size, dense.forward, dense.backward, predict=own)
    assert records[0].filename == __file__
    assert built.infer_fn is own and isinstance(built, fn.layers.Layer)
    assert built == fn.layers.Layer("mine", dense.init, dense.output_size, dense.forward, dense.backward,
                                    infer_fn=own)

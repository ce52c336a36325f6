"""The model value: construction errors, initialisation, purity, dtypes."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn
from funcnet.model import summary_line


def test_init_gives_one_dict_per_layer_with_batch_first_shapes():
    params = fn.mlp([5, 10, 10, 1]).init(jax.random.key(0))
    assert [sorted(layer) for layer in params] == [["W", "b"]] * 3
    assert [(layer["W"].shape, layer["b"].shape) for layer in params] == [
        ((5, 10), (10,)), ((10, 10), (10,)), ((10, 1), (1,))]
    assert all(layer["W"].dtype == jnp.float32 for layer in params)
    assert all(not np.any(layer["b"]) for layer in params)


def test_init_is_bit_identical_for_the_same_key_and_different_for_another():
    model = fn.mlp([5, 10, 10, 1])
    first, again = model.init(jax.random.key(3)), model.init(jax.random.key(3))
    other = model.init(jax.random.key(4))
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a["W"], b["W"])
        assert not np.array_equal(a["W"], c["W"])


@pytest.mark.x64
def test_he_and_glorot_scales():
    relu_params = fn.mlp([400, 300, 1], hidden="relu").init(jax.random.key(0), jnp.float64)
    np.testing.assert_allclose(np.std(relu_params[0]["W"]), np.sqrt(2 / 400), rtol=0.02)
    tanh_params = fn.mlp([400, 300, 1], hidden="tanh").init(jax.random.key(0), jnp.float64)
    limit = np.sqrt(6 / 700)
    assert np.max(np.abs(tanh_params[0]["W"])) <= limit
    np.testing.assert_allclose(np.std(tanh_params[0]["W"]), limit / np.sqrt(3), rtol=0.02)


@pytest.mark.x64
def test_float64_params_give_float64_outputs():
    model = fn.mlp([3, 4, 1])
    params = model.init(jax.random.key(0), jnp.float64)
    out = model.forward(params, jnp.ones((2, 3), jnp.float64))
    assert out.dtype == jnp.float64


def test_model_is_hashable_and_equal_by_value():
    assert fn.mlp([2, 3, 1]) == fn.mlp([2, 3, 1])
    assert hash(fn.mlp([2, 3, 1])) == hash(fn.mlp((2, 3, 1)))
    assert fn.mlp([2, 3, 1]) != fn.mlp([2, 3, 1], hidden="tanh")
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'n_in'"):
        fn.mlp([2, 3, 1]).n_in = 4


def test_forward_applies_the_output_activation():
    model = fn.mlp([2, 3, 4], hidden="tanh", output="softmax", loss="cross_entropy")
    params = model.init(jax.random.key(0))
    probabilities = model.forward(params, jnp.ones((5, 2)))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probabilities, jax.nn.softmax(model.logits(params, jnp.ones((5, 2)))))


def test_forward_does_not_change_params():
    model = fn.mlp([2, 3, 1])
    params = model.init(jax.random.key(0))
    before = jax.tree.map(np.array, params)
    model.manual_grad(params, jnp.ones((4, 2)), jnp.ones((4, 1)))
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.array, params))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sizes=[5]), r"`sizes` must have at least 2 positive widths"),
        (dict(sizes=[5, 0, 1]), r"`sizes` must be a list of positive integers, got \[5, 0, 1\]"),
            (dict(sizes=[5, 10.5, 1]), r"`sizes` must be a list of positive integers, got \[5, 10.5, 1\]"),
        (dict(sizes="abc"), r"`sizes` must be a list of positive integers"),
        (dict(sizes=[2, 1], hidden="softmax"), r"`hidden='softmax'` can only be an output activation"),
        (dict(sizes=[2, 1], hidden="swish"), r"unknown activation 'swish'; expected one of"),
        (dict(sizes=[2, 3, 3, 1], hidden=["relu"]), r"`hidden` has 1 activations but sizes \[2, 3, 3, 1\] has 2"),
        (dict(sizes=[2, 3, 1], dropout=1.0), r"`dropout` must be in \[0(\.0)?, 1(\.0)?\), got 1.0"),
        (dict(sizes=[2, 3, 1], l2=-1), r"`l2` must be in \[0(\.0)?, inf\], got -1.0"),
        (dict(sizes=[2, 1], loss="huber", delta=0), r"`delta` must be in \(0(\.0)?, inf\), got 0.0"),
        (dict(sizes=[5, 10.5, 1]), r"`sizes` must be a list of positive integers, got \[5, 10.5, 1\]"),
        (dict(sizes=[2, 1], output="swish"), r"unknown activation 'swish'"),
        (dict(sizes=[2, 1], loss="hinge"), r"unknown loss 'hinge'; expected one of mse, mae, huber, logloss, cross_entropy"),
        (dict(sizes=[2, 1], output="identity", loss="logloss"),
         r"`loss='logloss'` does not pair with `output='identity'`; valid pairs are .*logloss: sigmoid"),
        (dict(sizes=[2, 3], output="sigmoid", loss="cross_entropy"),
         r"`loss='cross_entropy'` does not pair with `output='sigmoid'`"),
        (dict(sizes=[2, 1], output="softmax", loss="cross_entropy"), r"needs at least 2 outputs"),
    ],
)
def test_bad_model_descriptions_are_rejected_with_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fn.mlp(**kwargs)


@pytest.mark.parametrize("model", [
    fn.mlp([5, 10, 10, 1]), fn.mlp([3, 8, 2], hidden="tanh", output="softmax", loss="cross_entropy"),
    fn.sequential(4, [fn.dense(6, "gelu"), fn.layer_norm(), fn.dense(2)]),
])
@pytest.mark.default_compiler  # "ordinary" means XLA's default settings, not the suite's fast-compile ones
def test_init_compiled_for_speed_gives_the_bits_of_an_ordinary_compilation(model):
    ordinary = jax.jit(lambda key: [layer.init(jax.random.fold_in(key, index), width, jnp.float32)
                                    for index, (layer, width) in enumerate(zip(model.layers,
                                                                               (model.n_in, *model.widths)))])
    jax.tree.map(np.testing.assert_array_equal, model.init(jax.random.key(3)), ordinary(jax.random.key(3)))


@pytest.mark.parametrize("xla_flags, level", [
    ("", 1), ("--xla_backend_optimization_level=3", 1), ("--xla_backend_optimization_level=0", 0),
    ("--xla_backend_optimization_level=2 --xla_cpu_use_xnnpack=false --xla_backend_optimization_level=0", 0),
])
def test_init_compiles_at_level_1_unless_xla_flags_ask_for_less(xla_flags, level):
    from funcnet.model import _init_optimization_level

    assert _init_optimization_level(xla_flags) == level


def test_describe_is_one_line_written_from_the_description_custom_pieces_included():
    mish = fn.activation("mish_h3", lambda z: z * jnp.tanh(jax.nn.softplus(z)), lambda z: jnp.ones_like(z))
    model = fn.sequential(5, [fn.dense(32, mish), fn.layer_norm(), fn.dropout(0.1), fn.dense(1)], loss="huber",
                          l2=0.01)
    description = model.description()
    assert description["layers"][0] == {"kind": "dense", "units": 32, "activation": "mish_h3", "bias": True,
                                         "initializer": "glorot", "name": "dense", "custom": True}
    assert model.describe() == "5-32(mish_h3)-layer_norm-dropout(0.1)-1 → identity, huber, l2 0.01"
    assert summary_line(json.loads(json.dumps(description))) == model.describe()  # as a checkpoint header holds it

"""Issue 21, items 7 and 12: every parameter of a model's pieces is checked where it enters.

* Every real parameter of every activation, loss and layer (leaky_relu's
  slope, elu's α, huber's δ, the L2 strength, the dropout rate, layer norm's
  ε), through every door (``fn.mlp``, ``fn.sequential``, ``fn.activations.get_activation``,
  ``fn.losses.huber``, ``fn.dense``/``fn.dropout``/``fn.layer_norm``): NaN, ±inf,
  out-of-range values, bools, complex numbers and strings raise, naming the
  argument; NumPy scalars of every real type are accepted.  Values finite in
  float64 but inf in float32, the default params dtype (``1e39``), raise too,
  and so do positive ones (δ, ε) that float32 turns into 0.
* Every integer argument (widths, ``units``, ``n_in``) takes every integral type.
* ``fn.sequential`` refuses a single layer, a name, a set, ... and says to wrap it in a list.
* ``model.init`` refuses a batch of keys and names ``fn.stacked_init``.

Building a model compiles nothing, so these tests are cheap.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn

NAN, INF = float("nan"), float("inf")

# (name in the message, build(value)) for every door through which a real parameter enters
REAL_PARAMETERS = {
    "negative_slope": [lambda v: fn.mlp([2, 3, 1], hidden="leaky_relu", negative_slope=v),
                       lambda v: fn.mlp([2, 3, 1], negative_slope=v),  # checked even when relu ignores it
                       lambda v: fn.activations.get_activation("leaky_relu", negative_slope=v),
                       lambda v: fn.dense(3, fn.activations.get_activation("leaky_relu", negative_slope=v))],
    "alpha": [lambda v: fn.mlp([2, 3, 1], hidden="elu", alpha=v), lambda v: fn.mlp([2, 3, 1], alpha=v),
              lambda v: fn.activations.get_activation("elu", alpha=v)],
    "delta": [lambda v: fn.losses.huber(v), lambda v: fn.mlp([2, 1], loss="huber", delta=v),
              lambda v: fn.mlp([2, 1], delta=v), lambda v: fn.sequential(2, [fn.dense(1)], loss="huber", delta=v),
              lambda v: fn.losses.get_loss("huber", v)],
    "l2": [lambda v: fn.mlp([2, 1], l2=v), lambda v: fn.sequential(2, [fn.dense(1)], l2=v)],
    "dropout": [lambda v: fn.mlp([2, 3, 1], dropout=v)],
    "rate": [lambda v: fn.dropout(v)],
    "epsilon": [lambda v: fn.layer_norm(v)],
}
DOORS = [(name, build) for name, builds in REAL_PARAMETERS.items() for build in builds]
DOOR_IDS = [f"{name}-{index}" for name, builds in REAL_PARAMETERS.items() for index in range(len(builds))]
# a value just outside each parameter's range
OUT_OF_RANGE = {"negative_slope": (-0.1, r"\[0(\.0)?, inf\]"), "alpha": (-1.0, r"\[0(\.0)?, inf\]"),
                "delta": (0.0, r"\(0(\.0)?, inf\)"), "l2": (-1e-3, r"\[0(\.0)?, inf\]"),
                "dropout": (1.0, r"\[0(\.0)?, 1(\.0)?\)"),
                "rate": (1.0, r"\[0(\.0)?, 1(\.0)?\)"), "epsilon": (0.0, r"\(0(\.0)?, inf\)")}


@pytest.mark.parametrize("name, build", DOORS, ids=DOOR_IDS)
@pytest.mark.parametrize("value", [NAN, INF, -INF, np.float32("nan"), np.float64("inf")],
                         ids=["nan", "inf", "-inf", "np.float32-nan", "np.float64-inf"])
def test_a_non_finite_parameter_is_refused_naming_it(name, build, value):
    with pytest.raises(ValueError, match=rf"`{name}` must be finite, got (nan|inf|-inf)"):
        build(value)


@pytest.mark.parametrize("name, build", DOORS, ids=DOOR_IDS)
def test_a_parameter_out_of_its_range_is_refused_naming_the_range(name, build):
    value, interval = OUT_OF_RANGE[name]
    with pytest.raises(ValueError, match=rf"`{name}` must be in {interval}, got {value}"):
        build(value)


@pytest.mark.parametrize("name, build", DOORS, ids=DOOR_IDS)
@pytest.mark.parametrize("value", [True, 0.5 + 0j, "0.5", None, [0.5]], ids=["bool", "complex", "str", "None", "list"])
def test_a_parameter_that_is_not_a_real_number_is_a_type_error(name, build, value):
    with pytest.raises(TypeError, match=rf"`{name}` must be a real number, got "):
        build(value)


@pytest.mark.parametrize("name, build", DOORS, ids=DOOR_IDS)
@pytest.mark.parametrize("kind", [np.float16, np.float32, np.float64, np.int8, np.int64, np.uint16, np.array])
def test_every_real_type_is_accepted_and_gives_the_same_piece_as_a_float(name, build, kind):
    integral = kind in (np.int8, np.int64, np.uint16)
    value = ({"dropout": 0, "rate": 0} if integral else {"dropout": 0.5, "rate": 0.5}).get(name, 2)  # in range
    assert build(kind(value)) == build(float(value))


# every parameter applied to float32 data (not the rates in [0, 1)): finite in float64 is not enough
FLOAT32_DOORS = [(name, build) for name, build in DOORS if name not in ("dropout", "rate")]
FLOAT32_IDS = [door for door, (name, _) in zip(DOOR_IDS, DOORS) if name not in ("dropout", "rate")]


@pytest.mark.parametrize("name, build", FLOAT32_DOORS, ids=FLOAT32_IDS)
@pytest.mark.parametrize("value", [1e39, np.float64(3.5e38), 1e300], ids=["1e39", "np.float64-3.5e38", "1e300"])
def test_a_parameter_that_is_inf_in_float32_is_refused_naming_it(name, build, value):
    with pytest.raises(ValueError, match=rf"`{name}` must be finite in float32, the default params dtype "
                                         rf"\(\|{name}\| ≤ 3.40282e\+38\), got {re.escape(f'{float(value):g}')}, "
                                         r"which is inf there"):
        build(value)


@pytest.mark.parametrize("name, build", [(name, build) for name, build in DOORS if name in ("delta", "epsilon")],
                         ids=[door for door in DOOR_IDS if door.startswith(("delta", "epsilon"))])
@pytest.mark.parametrize("value", [1e-46, 1e-40], ids=["zero-in-float32", "subnormal-in-float32"])
def test_a_positive_parameter_that_is_zero_in_float32_is_refused_naming_it(name, build, value):
    # huber with δ = 0 has zero gradient everywhere; layer norm with ε = 0 divides by 0 on a constant row
    with pytest.raises(ValueError, match=rf"`{name}` must be > 0 in float32, the default params dtype \(at least "
                                         rf"its smallest normal number, 1.17549e-38\), got {value:g}, which is 0"):
        build(value)


@pytest.mark.parametrize("name, build", FLOAT32_DOORS, ids=FLOAT32_IDS)
def test_the_largest_float32_parameter_is_accepted(name, build):
    largest = float(np.finfo(np.float32).max)
    assert build(largest) == build(np.float32(largest))


def test_the_issue_slope_that_predicted_inf_and_nan_is_refused():
    # 1e39 became inf in float32: fn.predict gave [-inf, nan, inf]
    with pytest.raises(ValueError, match=r"`negative_slope` must be finite in float32"):
        fn.mlp([2, 3, 1], hidden="leaky_relu", negative_slope=1e39)


def test_check_real_names_another_dtype_without_calling_it_the_default():
    from funcnet.checks import check_real

    with pytest.raises(ValueError, match=r"^`x` must be finite in float16 \(\|x\| ≤ 65504\), got 70000, "
                                         r"which is inf"):
        check_real(70000.0, "x", dtype=np.float16)
    assert check_real(-70000.0, "x", dtype=np.float32) == -70000.0


def test_a_nan_slope_no_longer_reaches_training():
    # the issue's case: accepted before, every negative pre-activation became NaN and fit blamed overflow
    with pytest.raises(ValueError, match=r"`negative_slope` must be finite, got nan"):
        fn.mlp([2, 8, 1], hidden="leaky_relu", negative_slope=float("nan"))


def test_a_checkpoint_parameter_is_read_with_its_own_name():
    # a saved elu keeps α = 2 as its one parameter: it must not be read as leaky_relu's slope too
    from funcnet.layers import layer_from_config

    layer = layer_from_config("dense", {"units": 3, "activation": "elu", "bias": True, "initializer": "he",
                                        "activation_parameter": 2.0})
    assert dict(layer.config)["activation_parameter"] == 2.0


@pytest.mark.parametrize("kind", [int, np.int8, np.int32, np.int64, np.uint8, np.uint64, np.array])
def test_every_integral_type_is_a_width(kind):
    assert fn.mlp([kind(2), kind(3), kind(1)]).sizes == (2, 3, 1)
    assert fn.dense(kind(3)) is fn.dense(3)
    assert fn.sequential(kind(2), [fn.dense(kind(3))]).n_in == 2


@pytest.mark.parametrize("units, error, message", [
    (0, ValueError, r"dense `units` must be an integer ≥ 1, got 0"),
    (np.int64(-2), ValueError, r"dense `units` must be an integer ≥ 1, got -2"),
    (3.0, TypeError, r"dense `units` must be an integer ≥ 1, got 3.0 \(float\)"),
    (np.bool_(True), TypeError, r"dense `units` must be an integer ≥ 1, got the bool (np.)?True"),
    ("3", TypeError, r"dense `units` must be an integer ≥ 1, got '3' \(str\)"),
])
def test_dense_units_must_be_an_integer(units, error, message):
    with pytest.raises(error, match=message):
        fn.dense(units)


@pytest.mark.parametrize("n_in, error", [(0, ValueError), (np.int64(-1), ValueError), (True, TypeError),
                                         ("5", TypeError), (2.5, TypeError)])
def test_sequential_n_in_must_be_a_positive_integer(n_in, error):
    with pytest.raises(error, match=r"`n_in` must be an integer ≥ 1, got "):
        fn.sequential(n_in, [fn.dense(1)])


@pytest.mark.parametrize("build, message", [
    (lambda: fn.dense(3, bias="yes"), r"dense `bias` must be True or False, got 'yes' \(str\)"),
    (lambda: fn.activation("mine", jnp.tanh, jnp.tanh, hidden_ok="no"),
     r"`hidden_ok` must be True or False, got 'no' \(str\)"),
])
def test_flags_must_be_booleans(build, message):
    with pytest.raises(TypeError, match=message):
        build()


# ----------------------------------------------------------------------------- sequential's `layers`
@pytest.mark.parametrize("layers, message", [
    (fn.dense(3), r"`layers` must be a list of layers, got one layer \(dense\); wrap it in a list: "
                  r"fn.sequential\(5, \[fn.dense\(3\)\]\)"),
    (fn.dense(3, "relu"), r"got one layer \(dense\); wrap it in a list: fn.sequential\(5, \[fn.dense\(3, 'relu'\)\]\)"),
    (fn.dropout(0.5), r"got one layer \(dropout\); wrap it in a list: fn.sequential\(5, \[fn.dropout\(0.5\)\]\)"),
    (fn.layer_norm(), r"got one layer \(layer_norm\); wrap it in a list: fn.sequential\(5, \[fn.layer_norm\(\)\]\)"),
    ("relu", r"got the string 'relu'; wrap it in a list: fn.sequential\(5, \['relu'\]\)"),
    (fn.activations.get_activation("tanh"), r"got one activation \(tanh\); wrap it in a list: fn.sequential\(5, \['tanh'\]\)"),
    ({fn.dense(3)}, r"`layers` must be a list of layers, got a set, which has no order"),
    ({"first": fn.dense(3)}, r"`layers` must be a list of layers, got a dict, which has no order"),
    (3, r"`layers` must be a list of layers, got int: 3; e.g. fn.sequential\(5, \[fn.dense\(8, 'relu'\), "),
    (None, r"`layers` must be a list of layers, got NoneType: None"),
], ids=["dense", "dense-relu", "dropout", "layer_norm", "name", "activation", "set", "dict", "int", "None"])
def test_sequential_refuses_anything_but_an_ordered_collection_of_layers(layers, message):
    with pytest.raises(TypeError, match=message):
        fn.sequential(5, layers)


def test_sequential_takes_a_list_a_tuple_or_a_generator_alike():
    items = [fn.dense(3, "relu"), "tanh", fn.dense(1)]
    expected = fn.sequential(5, items)
    assert fn.sequential(5, tuple(items)) == expected
    assert fn.sequential(5, (item for item in items)) == expected
    assert expected.describe() == "5-3(relu)-tanh-1 → identity, mse"


# ----------------------------------------------------------------------------- init takes one key
@pytest.mark.parametrize("keys, shape", [
    (jax.random.split(jax.random.key(0), 3), r"\(3,\)"),
    (jax.random.split(jax.random.PRNGKey(0), 3), r"\(3,\)"),  # raw uint32[3, 2] keys
    (jax.random.split(jax.random.key(0), (2, 2)), r"\(2, 2\)"),
], ids=["typed", "raw", "grid"])
def test_init_with_a_batch_of_keys_names_stacked_init(keys, shape):
    with pytest.raises(ValueError, match=rf"`key` must be one jax.random key, got a batch of keys of shape {shape}; "
                                         r"model.init makes one set of params: for one per key use "
                                         r"fn.stacked_init\(model, keys\) or jax.vmap\(model.init\)\(keys\)"):
        fn.mlp([2, 1]).init(keys)


# ----------------------------------------------------------------------------- training mode takes one key
@pytest.mark.parametrize("where, call", [
    ("model.forward", lambda model, params, x, y, key: model.forward(params, x, key=key)),
    ("model.loss", lambda model, params, x, y, key: model.loss(params, x, y, key=key)),
    ("model.manual_grad", lambda model, params, x, y, key: model.manual_grad(params, x, y, key=key)),
], ids=["forward", "loss", "manual_grad"])
@pytest.mark.parametrize("keys, shape", [
    (jax.random.split(jax.random.key(0), 2), r"\(2,\)"),
    (jax.random.split(jax.random.PRNGKey(0), 2), r"\(2, 2\)"),  # raw uint32[2, 2] keys
], ids=["typed", "raw"])
def test_training_mode_with_a_batch_of_keys_is_refused_naming_key(where, call, keys, shape):
    # JAX said "fold_in accepts a single key", naming no argument
    model = fn.mlp([2, 3, 1], dropout=0.5)
    params = model.init(jax.random.key(0))
    x, y = jnp.ones((4, 2)), jnp.ones((4, 1))
    with pytest.raises(ValueError, match=rf"`key` must be a single jax.random key .*got a batch of keys of shape "
                                         rf"{shape}; {where} uses one key"):
        call(model, params, x, y, keys)

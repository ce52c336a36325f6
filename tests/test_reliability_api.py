"""Issue #10's Python-API cases: meaningless settings, non-finite training, low precision.

* Case 9: widths that are not positive integers, and anything but a
  ``jax.random`` key, are errors that name the argument (and the entry), and
  show how to make a key.
* Case 10: a NaN in the params or the optimizer state, non-finite data and
  data that overflows the params' dtype are errors before training; when the
  loss still goes non-finite, :class:`funcnet.NonFiniteLossError` names the
  cause (a float16 overflow of the loss, a learning rate too high, or a loss
  that is not finite even at the start) and counts epochs from 1.
* Case 11: float16 epochs sum their loss in float32; the NaN/inf checks cover
  bfloat16; ``train_step`` casts a batch of another dtype to the params'
  dtype, so it neither compiles again nor changes the optimizer state's dtype.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from funcnet import checks

MODEL = fn.mlp([3, 8, 2])
DROPOUT_MODEL = fn.mlp([3, 4, 2], dropout=0.5)
SGD = optax.sgd(0.1)


def data(rows=32, scale=1.0):
    x = np.asarray(jax.random.normal(jax.random.key(1), (rows, 3)))
    return x, scale * np.sin(x[:, :2])


def with_nan(params, layer=0, leaf="W", index=(1, 2)):
    broken = [dict(layer_params) for layer_params in params]
    broken[layer][leaf] = broken[layer][leaf].at[index].set(jnp.nan)
    return broken


# ----------------------------------------------------------------------------- case 9: widths and keys
@pytest.mark.parametrize("sizes, message", [
    ([5, 10.5, 1], r"`sizes` must be a list of positive integers, got \[5, 10.5, 1\]: `sizes\[1\]` must be an "
                   r"integer ≥ 1, got 10.5 \(float\)"),
    ([5, 0, 1], r"`sizes\[1\]` must be an integer ≥ 1, got 0"),
    ([5, 10, -3], r"`sizes\[2\]` must be an integer ≥ 1, got -3"),
    ([5, "10", 1], r"`sizes\[1\]` must be an integer ≥ 1, got '10' \(str\)"),
    ([5, True, 1], r"`sizes\[1\]` must be an integer ≥ 1, got the bool True"),
    ([5, float("nan"), 1], r"`sizes\[1\]` must be an integer ≥ 1, got nan \(float\)"),
    ([None, 3], r"`sizes\[0\]` must be an integer ≥ 1, got None \(NoneType\)"),
    (5, r"`sizes` must be a list of positive integers, e.g. \[5, 10, 1\], got 5"),
])
def test_mlp_rejects_a_width_that_is_not_a_positive_integer_naming_the_entry(sizes, message):
    with pytest.raises(ValueError, match=message):
        fn.mlp(sizes)


def test_mlp_accepts_integer_valued_widths_of_any_integer_or_float_type():
    assert fn.mlp([np.int64(5), 10.0, 1]).sizes == (5, 10, 1)


HOW_TO_MAKE_A_KEY = r"make one with jax.random.key\(0\) and pass it as "
BAD_KEYS = {
    "fit-1.7": (lambda p, x, y: fn.fit(MODEL, p, SGD, x, y, epochs=1, key=1.7),
                r"`key` must be a jax.random key, got 1.7; " + HOW_TO_MAKE_A_KEY + r"fit\(\.\.\., key="),
    "fit-None": (lambda p, x, y: fn.fit(MODEL, p, SGD, x, y, epochs=1, key=None),
                 r"`key` must be a jax.random key, got None; " + HOW_TO_MAKE_A_KEY),
    "fit_many-key": (lambda p, x, y: fn.fit_many(MODEL, fn.stacked_init(MODEL, jax.random.split(jax.random.key(0), 2)),
                                                 SGD, x, y, epochs=1, key=1.7),
                     r"`key` must be a jax.random key, got 1.7; " + HOW_TO_MAKE_A_KEY + r"fit_many\("),
    "fit_many-keys": (lambda p, x, y: fn.fit_many(MODEL, fn.stacked_init(MODEL, jax.random.split(jax.random.key(0), 2)),
                                                  SGD, x, y, epochs=1, keys=np.ones(2)),
                      r"`keys` must be a jax.random key, got an array of float64 and shape \(2,\); "
                      + HOW_TO_MAKE_A_KEY + r"fit_many\(\.\.\., keys="),
    "stacked_init-float": (lambda p, x, y: fn.stacked_init(MODEL, 3.0),
                           r"`keys` must be a jax.random key, got 3.0; " + HOW_TO_MAKE_A_KEY + r"stacked_init"),
    "stacked_init-one-key": (lambda p, x, y: fn.stacked_init(MODEL, jax.random.key(0)),
                             r"`keys` must be a batch of jax.random keys, one per model, got a single key; "
                             r"make them with jax.random.split\(jax.random.key\(0\), num_models\)"),
    "train_step-1.7": (lambda p, x, y: fn.make_train_step(DROPOUT_MODEL, SGD)(
                           DROPOUT_MODEL.init(jax.random.key(0)), SGD.init(DROPOUT_MODEL.init(jax.random.key(0))),
                           x, y, key=1.7),
                       r"`key` must be a jax.random key, got an array of float32 and shape \(\); "
                       + HOW_TO_MAKE_A_KEY + r"train_step\(\.\.\., key="),
    "train_step-missing": (lambda p, x, y: fn.make_train_step(DROPOUT_MODEL, SGD, "manual")(
                               DROPOUT_MODEL.init(jax.random.key(0)), SGD.init(DROPOUT_MODEL.init(jax.random.key(0))),
                               x, y),
                           r"this model has dropout, so train_step needs `key=` \(training mode draws the dropout "
                           r"mask from it\), e.g. train_step\(params, opt_state, x, y, key=fn.engine.step_key\(key, "
                           r"epoch, step\)\); a fresh key every step"),
    "loss": (lambda p, x, y: DROPOUT_MODEL.loss(DROPOUT_MODEL.init(jax.random.key(0)), x, y, key=1.7),
             r"`key` must be a jax.random key, got 1.7; " + HOW_TO_MAKE_A_KEY + r"model.loss\("),
    "manual_grad": (lambda p, x, y: DROPOUT_MODEL.manual_grad(DROPOUT_MODEL.init(jax.random.key(0)), x, y,
                                                              key="seed"),
                    r"`key` must be a jax.random key, got str; " + HOW_TO_MAKE_A_KEY + r"model.manual_grad\("),
    "forward": (lambda p, x, y: DROPOUT_MODEL.forward(DROPOUT_MODEL.init(jax.random.key(0)), x, key=0),
                r"`key` must be a jax.random key, got 0; " + HOW_TO_MAKE_A_KEY + r"model.forward\("),
}


@pytest.mark.parametrize("call", BAD_KEYS)
def test_public_functions_taking_keys_reject_anything_else_and_show_how_to_make_one(call):
    run, message = BAD_KEYS[call]
    x, y = data(rows=8)
    with pytest.raises(ValueError, match=message):
        run(MODEL.init(jax.random.key(0)), x.astype(np.float32), y.astype(np.float32))


# ----------------------------------------------------------------------------- case 10: non-finite training
def test_a_nan_weight_is_an_error_before_training_even_where_relu_would_hide_it():
    params = MODEL.init(jax.random.key(0))
    x, y = data()
    hidden = with_nan(params, index=(0, 0))
    hidden[0]["W"] = hidden[0]["W"].at[:, 0].set(jnp.array([jnp.nan, -1e3, -1e3]))  # unit 0 never fires...
    hidden[0]["b"] = hidden[0]["b"].at[0].set(-1e6)  # ...so today its NaN weight would not show in the outputs
    message = r"`params\[0\]\['W'\]` contains 1 non-finite values \(NaN or inf\); the first is at index \(0, 0\): nan"
    with pytest.raises(ValueError, match=message + r"\. The params must be finite before training"):
        fn.fit(MODEL, hidden, SGD, x, y, epochs=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match=message):
        fn.predict(MODEL, hidden, x)
    with pytest.raises(ValueError, match=r"`params\[1\]\['b'\]` contains 1 non-finite"):
        checks.check_params(MODEL, with_nan(params, layer=1, leaf="b", index=(1,)))


def test_a_non_finite_optimizer_state_is_an_error_before_training():
    params = MODEL.init(jax.random.key(0))
    momentum = optax.sgd(0.1, momentum=0.9)
    state = momentum.init(params)
    state = jax.tree.map(lambda leaf: leaf.at[(0,) * leaf.ndim].set(jnp.inf), state)
    x, y = data()
    with pytest.raises(ValueError, match=r"`opt_state.*` contains 1 non-finite values .*: inf\. The opt_state must "
                                         r"be finite before training"):
        fn.fit(MODEL, params, momentum, x, y, epochs=1, key=jax.random.key(0), opt_state=state)


def test_the_value_check_of_an_optimizer_state_skips_its_random_key_and_step_count():
    noisy = optax.noisy_sgd(0.01, key=jax.random.key(1))
    state = noisy.init(MODEL.init(jax.random.key(0)))
    assert {str(leaf.dtype) for leaf in jax.tree.leaves(state)} == {"int32", "key<fry>"}
    checks.check_param_values(state, "opt_state")  # no error: a key has no NaN to look for
    with pytest.raises(ValueError, match=r"`opt_state\[0\]\.count` contains"):
        checks.check_param_values(jax.tree.map(lambda leaf: jnp.float32(jnp.nan), state[:1]), "opt_state")


@pytest.mark.parametrize("arguments, message", [
    (dict(x=np.full((4, 3), 7e4)), r"`x` has 12 values too large for float16 \(largest 65504\), the params' dtype "
                                   r"it is cast to; the first is at index \(0, 0\): 70000"),
    (dict(y=np.full((4, 2), -1e5)), r"`y` has 8 values too large for float16"),
    (dict(sample_weight=np.array([1.0, 1.0, 1e6, 1.0])),
     r"`sample_weight` has 1 values too large for float16 .* index \(2,\)"),
])
def test_data_that_overflows_float16_params_is_an_error_before_training(arguments, message):
    params = MODEL.init(jax.random.key(0), jnp.float16)
    values = dict(x=np.ones((4, 3)), y=np.ones((4, 2)))
    values.update({name: arguments[name] for name in ("x", "y") if name in arguments})
    with pytest.raises(ValueError, match=message):
        fn.fit(MODEL, params, SGD, values["x"], values["y"], epochs=1, key=jax.random.key(0),
               sample_weight=arguments.get("sample_weight"))


def test_a_non_finite_class_weight_is_an_error_naming_it():
    classifier = fn.mlp([3, 3], output="softmax", loss="cross_entropy")
    with pytest.raises(ValueError, match=r"`class_weight\[1\]` must be finite, got inf"):
        fn.fit(classifier, classifier.init(jax.random.key(0)), SGD, np.ones((3, 3)), np.arange(3), epochs=1,
               key=jax.random.key(0), class_weight={1: float("inf")})


def test_a_learning_rate_too_high_is_named_when_the_loss_was_finite_at_the_start():
    x, y = data()
    with pytest.raises(fn.NonFiniteLossError, match=r"^epoch 1: the loss became (nan|inf) \(not finite\); it was "
                                                    r"finite \([0-9.]+\) at the start of the epoch, so training "
                                                    r"diverged: the learning rate is most likely too high") as info:
        fn.fit(MODEL, MODEL.init(jax.random.key(0)), optax.sgd(1e4), x, y, epochs=3, batch_size=8,
               key=jax.random.key(0))
    assert info.value.cause == "learning_rate" and info.value.epoch == 0


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # the learning rate 1e39
def test_an_epoch_whose_last_step_breaks_the_params_is_reported_and_its_params_not_kept():
    x, y = data()
    params = MODEL.init(jax.random.key(0))
    seen = []
    with pytest.raises(fn.NonFiniteLossError, match=r"^epoch 1: the loss became nan") as info:
        # one batch per epoch: its loss is computed before the update, so it is finite; the params become inf
        fn.fit(MODEL, params, optax.sgd(1e39), x, y, epochs=2, batch_size=32, key=jax.random.key(0),
               callback=lambda *state: seen.append(state))
    assert seen == [] and info.value.cause == "learning_rate"
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(info.value.params), jax.tree.leaves(params)))


def test_a_float16_overflow_of_the_loss_is_named_with_the_float32_value():
    x, y = data(scale=1000.0)  # squared errors around 1e6: finite in float32, inf in float16
    with pytest.raises(fn.NonFiniteLossError, match=r"^epoch 1: the loss became inf \(not finite\); the loss "
                                                    r"overflows float16: at the start of the epoch it is [0-9.e+]+ "
                                                    r"in float32 .* but inf in float16, whose largest value is "
                                                    r"65504") as info:
        fn.fit(MODEL, MODEL.init(jax.random.key(0), jnp.float16), optax.sgd(1e-6), x, y, epochs=1, batch_size=8,
               key=jax.random.key(0))
    assert info.value.cause == "float16_overflow"


def test_a_loss_not_finite_even_at_the_start_names_the_size_of_the_data():
    x, y = data(scale=1e25)  # finite float32 targets whose squares overflow
    with pytest.raises(fn.NonFiniteLossError, match=r"^epoch 1: the loss became (nan|inf) .*the loss is already inf "
                                                    r"at the start of the epoch, with finite params and finite data "
                                                    r"\(largest \|x\| [0-9.]+, largest \|y\| [0-9.e+]+\)") as info:
        fn.fit(MODEL, MODEL.init(jax.random.key(0)), SGD, x, y, epochs=1, batch_size=8, key=jax.random.key(0))
    assert info.value.cause == "loss_at_start"


# ----------------------------------------------------------------------------- case 11: low precision
def test_a_float16_fit_sums_its_epoch_loss_in_float32():
    x, y = data(rows=200, scale=40.0)  # losses near 600 (squares below 2000): over 160 rows the sum passes 65504
    params = MODEL.init(jax.random.key(0), jnp.float16)
    fitted, history = fn.fit(MODEL, params, optax.sgd(1e-4), x, y, epochs=2, batch_size=32, key=jax.random.key(0),
                             validation_split=0.2)
    assert 65504 / 160 < history["train_loss"][0] < 65504 and np.all(np.isfinite(history["val_loss"]))
    assert jax.tree.leaves(fitted)[0].dtype == jnp.float16


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_non_finite_checks_cover_bfloat16_and_float16(dtype):
    x = jnp.ones((4, 3), dtype).at[2, 1].set(jnp.nan)
    with pytest.raises(ValueError, match=r"`x` contains 1 non-finite values \(NaN or inf\); the first is at index "
                                         r"\(2, 1\): nan"):
        fn.check_data(MODEL, x)
    params = with_nan(MODEL.init(jax.random.key(0), dtype))
    with pytest.raises(ValueError, match=r"`params\[0\]\['W'\]` contains 1 non-finite values"):
        fn.predict(MODEL, params, jnp.ones((4, 3), dtype))


@pytest.mark.parametrize("grad", fn.engine.GRAD_MODES)
def test_train_step_casts_a_float32_batch_to_float16_params_without_recompiling(grad):
    train_step = fn.make_train_step(MODEL, optax.adam(1e-3), grad)
    params = MODEL.init(jax.random.key(0), jnp.float16)
    opt_state = optax.adam(1e-3).init(params)
    x, y = (jnp.asarray(a, jnp.float32) for a in data())
    state_dtypes = jax.tree.map(lambda leaf: leaf.dtype, (params, opt_state))
    for _ in range(3):
        params, opt_state, loss = train_step(params, opt_state, x, y)
    assert train_step._cache_size() == 1
    assert jax.tree.map(lambda leaf: leaf.dtype, (params, opt_state)) == state_dtypes and loss.dtype == jnp.float16


@pytest.mark.x64
def test_train_step_casts_a_float64_batch_to_float32_params_so_adam_state_stays_float32():
    adam = optax.adam(1e-3)
    train_step = fn.make_train_step(MODEL, adam, "manual")
    params = initial = MODEL.init(jax.random.key(0))
    opt_state = adam.init(params)
    x, y = data()  # float64, as numpy makes them
    _, _, float32_loss = train_step(initial, opt_state, x.astype(np.float32), y.astype(np.float32))
    losses = []
    for _ in range(3):
        params, opt_state, loss = train_step(params, opt_state, x, y)
        losses.append(loss)
    assert train_step._cache_size() == 2  # one per batch dtype (float32, float64), not one per step
    assert {leaf.dtype for leaf in jax.tree.leaves((params, opt_state)) if leaf.ndim} == {jnp.dtype(jnp.float32)}
    assert losses[0].dtype == jnp.float32 and float(losses[0]) == float(float32_loss)  # the same cast batch

"""fit's and the train step's arguments (issue 21): one key, histories, integral types, argument types,
optimizers that take the loss (lbfgs, reduce_on_plateau), and the diagnoses of 16-bit optimizers and
hand-written derivatives."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from funcnet import divergence, sharding
from funcnet.cli import distributed
from funcnet.engine import objective_fn, shuffled_batch_rows

X = jax.random.normal(jax.random.key(1), (64, 3))
Y = X @ jnp.array([[1.0], [-2.0], [0.5]]) + 0.3
LINEAR = fn.mlp([3, 1])
MODEL = fn.mlp([3, 4, 1], hidden="tanh")
SGD = optax.sgd(0.05)
KEY = jax.random.key(2)


def params_of(model=MODEL, dtype=jnp.float32):
    return model.init(jax.random.key(0), dtype)


def fit(**overrides):
    arguments = dict(model=MODEL, params=params_of(), optimizer=SGD, x=X, y=Y, epochs=1, batch_size=16, key=KEY)
    arguments.update(overrides)
    return fn.fit(arguments.pop("model"), arguments.pop("params"), arguments.pop("optimizer"),
                  arguments.pop("x"), arguments.pop("y"), **arguments)


# ----------------------------------------------------------------------------- 7c: one key, not a batch
BATCHES_OF_KEYS = [pytest.param(jax.random.split(KEY, 2), id="typed"),
                   pytest.param(jax.random.split(jax.random.PRNGKey(0), 2), id="raw"),
                   pytest.param(jax.random.split(KEY, (1,)), id="typed-batch-of-one")]


@pytest.mark.parametrize("keys", BATCHES_OF_KEYS)
@pytest.mark.parametrize("call", [
    pytest.param(lambda keys: fit(key=keys), id="fit"),
    pytest.param(lambda keys: fn.fit(MODEL, params_of(), SGD, X, Y, epochs=1, key=keys), id="fit-positional"),
    pytest.param(lambda keys: fn.engine.make_train_epoch(MODEL, SGD, "autodiff", 16)(
        params_of(), SGD.init(params_of()), X, Y, keys, 0), id="train_epoch"),
    pytest.param(lambda keys: fn.shuffled_batches(keys, X, Y, 16), id="shuffled_batches"),
    pytest.param(lambda keys: shuffled_batch_rows(keys, 64, 16), id="shuffled_batch_rows"),
    pytest.param(lambda keys: fn.engine.step_key(keys, 0, 0), id="step_key"),
])
def test_a_batch_of_keys_is_refused_where_one_key_is_used(call, keys):
    with pytest.raises(ValueError, match=r"`key` must be a single jax.random key .*got a batch of keys of shape"):
        call(keys)


def test_fit_points_a_batch_of_keys_to_fit_many():
    with pytest.raises(ValueError, match=r"fit uses one key: pass one.*fn.fit_many\(\.\.\., keys=keys\)"):
        fit(key=jax.random.split(KEY, 2))


def test_one_raw_key_still_trains_as_its_typed_key():
    raw, _ = fit(key=jax.random.key_data(KEY))
    typed, _ = fit(key=KEY)
    jax.tree.map(np.testing.assert_array_equal, raw, typed)


# ----------------------------------------------------------------------------- 11: history and initial_epoch
def test_a_history_without_initial_epoch_continues_its_numbering():
    first, history = fit(epochs=2)
    resumed, resumed_history = fit(params=first, history=history, epochs=4)
    straight, straight_history = fit(epochs=4)
    assert resumed_history["train_loss"] == straight_history["train_loss"]
    jax.tree.map(np.testing.assert_array_equal, resumed, straight)
    assert len(history["train_loss"]) == 2  # the history passed in is not modified


THREE_EPOCHS = {"train_loss": [1.0, 0.9, 0.8], "val_loss": []}


@pytest.mark.parametrize("call, message", [
    pytest.param(lambda: fit(history=THREE_EPOCHS, epochs=2),
                 r"^`epochs` is the epoch to stop before: the history already holds 3 epochs, so epochs=2 would "
                 r"train nothing; pass epochs > 3 \(epochs=5 for 2 more\)$", id="history-fewer"),
    pytest.param(lambda: fit(history=THREE_EPOCHS, initial_epoch=3, epochs=np.int64(3)),
                 r"the history already holds 3 epochs, so epochs=3 would train nothing; pass epochs > 3 "
                 r"\(epochs=6 for 3 more\)", id="history-as-many"),
    pytest.param(lambda: fit(initial_epoch=3, epochs=2),
                 r"^`epochs` is the epoch to stop before: `initial_epoch` is 3, so epochs=2 would train nothing; "
                 r"pass epochs > 3 \(epochs=5 for 2 more\)$", id="initial_epoch"),
    pytest.param(lambda: fn.fit(MODEL, params_of(), SGD, X, Y, epochs=0, key=KEY, initial_epoch=np.uint8(1)),
                 r"`initial_epoch` is 1, so epochs=0 would train nothing; pass epochs > 1$", id="fit-zero"),
])
def test_resuming_with_epochs_that_would_train_nothing_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_zero_epochs_from_the_start_return_the_params_as_given():
    params, history = fit(epochs=0)
    assert history == {"train_loss": [], "val_loss": []}
    jax.tree.map(np.testing.assert_array_equal, params, params_of())


@pytest.mark.parametrize("history, kwargs, message", [
    ({"train_loss": [1.0, 0.5], "val_loss": []}, dict(initial_epoch=0),
     r"`initial_epoch=0` does not match `history`, which holds 2 epochs.*leave initial_epoch out"),
    ({"train_loss": [1.0, 0.5], "val_loss": []}, dict(initial_epoch=np.int64(3)),
     r"`initial_epoch=3` does not match `history`, which holds 2 epochs"),
    ({"train_loss": [1.0, 0.5], "val_loss": [0.9]}, dict(validation_split=0.25),
     r"`history` holds 2 train_loss entries but 1 val_loss entries"),
    ({"train_loss": [1.0], "val_loss": [], "layer_stats": [[], []]}, {},
     r"`history` holds 2 layer_stats entries for 1 epochs"),
    ({"train_loss": [1.0, 0.5], "val_loss": []}, dict(validation_split=0.25),
     r"`history` holds 2 epochs without val_loss, but this run has validation data"),
    ({"train_loss": [1.0, 0.5], "val_loss": [0.9, 0.8]}, {},
     r"`history` holds 2 epochs with val_loss, but this run has none"),
    ({"loss": [1.0, 0.5, 0.4]}, dict(initial_epoch=3),
     r"^`history` has unknown keys 'loss'; expected a history as fit returns it, with keys among 'train_loss', "
     r"'val_loss', 'layer_stats', 'best_epoch'$"),
    ({"train_loss": [1.0], "val_loss": [], "lr": [0.1], 0: []}, {}, r"`history` has unknown keys 'lr', 0; expected"),
])
def test_a_history_that_disagrees_with_itself_or_the_run_is_refused(history, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(history=history, epochs=3, **kwargs)


@pytest.mark.parametrize("history, message", [
    ([1.0, 0.5], r"`history` must be a dict of lists .* got list"),
    ({"train_loss": 1.0}, r"`history\['train_loss'\]` must be a list, one entry per epoch, got float"),
])
def test_a_history_of_the_wrong_type_is_refused(history, message):
    with pytest.raises(TypeError, match=message):
        fit(history=history, epochs=3)


# ----------------------------------------------------------------------------- 12c: every integral type
INTEGRAL = [pytest.param(np.int64, id="int64"), pytest.param(np.int32, id="int32"),
            pytest.param(np.uint16, id="uint16"), pytest.param(lambda v: np.array(v, np.int8), id="0-d-int8")]


@pytest.mark.parametrize("integer", INTEGRAL)
def test_fit_takes_every_integral_type_for_its_integer_arguments(integer):
    plain = fn.fit(MODEL, params_of(), SGD, X, Y, epochs=2, batch_size=16, key=KEY, validation_split=0.25,
                   patience=2, initial_epoch=0)
    numpy = fn.fit(MODEL, params_of(), SGD, X, Y, epochs=integer(2), batch_size=integer(16), key=KEY,
                   validation_split=np.float32(0.25), patience=integer(2), initial_epoch=integer(0))
    assert numpy[1] == plain[1]
    jax.tree.map(np.testing.assert_array_equal, numpy[0], plain[0])


def test_the_train_epoch_of_a_numpy_batch_size_is_the_cached_one_of_the_int():
    assert fn.engine.make_train_epoch(MODEL, SGD, "autodiff", np.int64(16)) is fn.engine.make_train_epoch(MODEL, SGD, "autodiff", 16)


@pytest.mark.parametrize("integer", INTEGRAL)
def test_the_batching_helpers_take_every_integral_type(integer):
    rows = shuffled_batch_rows(KEY, integer(10), integer(3), integer(1))
    expected = shuffled_batch_rows(KEY, 10, 3, 1)
    np.testing.assert_array_equal(rows[0], expected[0])
    np.testing.assert_array_equal(rows[1], expected[1])
    np.testing.assert_array_equal(jax.random.key_data(fn.engine.step_key(KEY, integer(1), integer(2))),
                                  jax.random.key_data(fn.engine.step_key(KEY, 1, 2)))
    assert fn.early_stopping.replay(integer(2), [3.0, 2.0, 2.5, 2.6]).should_stop
    mesh = jax.make_mesh((1,), ("data",))
    assert sharding.check_mesh(mesh, integer(4)) == 1
    assert distributed.local_rows(integer(10), integer(2), integer(1)) == slice(5, 10)


def test_the_distributed_helpers_refuse_a_process_id_out_of_range():
    with pytest.raises(ValueError, match=r"`process_id` must be below `num_processes` \(2\), got 2"):
        distributed.local_rows(10, 2, 2)
    with pytest.raises(TypeError, match=r"`num_processes` must be an integer ≥ 1, got 2.0"):
        distributed.local_rows(10, 2.0, 0)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(epochs=2.0), TypeError, r"`epochs` must be an integer ≥ 0, got 2.0 \(float\)"),
    (dict(epochs=True), TypeError, r"`epochs` must be an integer ≥ 0, got the bool True"),
    (dict(epochs=np.int64(-1)), ValueError, r"`epochs` must be an integer ≥ 0, got -1"),
    (dict(batch_size=np.float64(16)), TypeError,
     r"`batch_size` must be an integer ≥ 1, got np.float64\(16.0\) \(float64\)"),
    (dict(batch_size=np.uint8(0)), ValueError, r"`batch_size` must be an integer ≥ 1, got 0"),
    (dict(patience=np.bool_(True), validation_split=0.25), TypeError,
     r"`patience` must be an integer ≥ 1, got the bool"),
    (dict(initial_epoch="1"), TypeError, r"`initial_epoch` must be an integer ≥ 0, got '1'"),
    (dict(validation_split=float("nan")), ValueError, r"`validation_split` must be finite, got nan"),
    (dict(validation_split=np.float32(1.0)), ValueError,
     r"`validation_split` must be in \[0(\.0)?, 1(\.0)?\), got 1.0"),
])
def test_fit_refuses_integer_arguments_that_are_not_integers_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        fit(**kwargs)


def test_step_key_and_the_batching_helpers_refuse_non_integers_naming_them():
    with pytest.raises(TypeError, match=r"`epoch` must be an integer ≥ 0, got 1.5"):
        fn.engine.step_key(KEY, 1.5, 0)
    with pytest.raises(ValueError, match=r"`step` must be an integer ≥ 0, got -1"):
        fn.engine.step_key(KEY, 0, -1)
    with pytest.raises(TypeError, match=r"`batch_size` must be an integer ≥ 1, got 3.0"):
        shuffled_batch_rows(KEY, 10, 3.0)
    with pytest.raises(ValueError, match=r"`patience` must be an integer ≥ 1, got 0"):
        fn.early_stopping.replay(0, [1.0])


# ----------------------------------------------------------------------------- 12h: argument types
@pytest.mark.parametrize("kwargs, message", [
    (dict(mesh=object()), r"`mesh` must be a jax.sharding.Mesh with a 'data' axis .* got object"),
    (dict(mesh="data"), r"`mesh` must be a jax.sharding.Mesh .* got str"),
    (dict(model=object()), r"`model` must be a funcnet Network \(from fn.mlp or fn.sequential\), got object"),
    (dict(optimizer="adam"), r"`optimizer` must be an optax.GradientTransformation .* got str"),
    (dict(optimizer=optax.adam), r"`optimizer` must be an optax.GradientTransformation .* got function"),
    (dict(grad=1), r"`grad` must be one of 'autodiff', 'manual', got 1 \(int\)"),
    (dict(callback=3), r"`callback` must be callable, callback\(epoch, params, opt_state, history\), or None"),
    (dict(validation_data=(X,)), r"`validation_data` must be a pair \(x_val, y_val\) or None, got a tuple of length 1"),
    (dict(validation_data=X), r"`validation_data` must be a pair \(x_val, y_val\) or None, got ArrayImpl"),
    (dict(best=3), r"`best` must be a pair \(params, opt_state\) or None, got int"),
])
def test_fit_refuses_arguments_of_the_wrong_type_naming_them(kwargs, message):
    with pytest.raises(TypeError, match=message):
        fit(**kwargs)


def test_an_unknown_grad_mode_is_a_value_error_naming_the_modes():
    with pytest.raises(ValueError, match=r"unknown grad 'auto'; expected one of autodiff, manual"):
        fit(grad="auto")


@pytest.mark.parametrize("call", [
    pytest.param(lambda: fn.engine.make_train_epoch(MODEL, SGD, "autodiff", 16, object()), id="make_train_epoch"),
    pytest.param(lambda: fn.sharding.replicate(object(), X), id="replicate"),
    pytest.param(lambda: fn.sharding.shard_rows(object(), X), id="shard_rows"),
])
def test_every_function_taking_a_mesh_refuses_anything_else_naming_it(call):
    with pytest.raises(TypeError, match=r"`mesh` must be a jax.sharding.Mesh"):
        call()


def test_fit_refuses_a_network_without_params_naming_params():
    model = fn.sequential(3, ["relu"])
    with pytest.raises(ValueError, match=r"`params` has no leaves: .* no parameters to train, so fit has nothing"):
        fn.fit(model, model.init(KEY), SGD, X, X, epochs=1, key=KEY)


def test_make_train_step_refuses_a_model_that_is_not_a_network():
    with pytest.raises(TypeError, match=r"`model` must be a funcnet Network"):
        fn.make_train_step("mlp", SGD)


# ----------------------------------------------------------------------------- 12i: optimizers that take the loss
def test_lbfgs_in_make_train_step_reduces_the_loss_of_a_small_regression():
    optimizer = optax.lbfgs()
    step = fn.make_train_step(LINEAR, optimizer)
    params = params_of(LINEAR)
    state = optimizer.init(params)
    losses = []
    for _ in range(5):
        params, state, loss = step(params, state, X, Y)
        losses.append(float(loss))
    assert losses[-1] < 1e-3 * losses[0]


def test_lbfgs_in_fit_with_manual_gradients_matches_autodiff():
    runs = {grad: fn.fit(LINEAR, params_of(LINEAR), optax.lbfgs(), X, Y, epochs=3, batch_size=64, key=KEY,
                         grad=grad) for grad in ("manual", "autodiff")}
    manual, autodiff = runs["manual"][1]["train_loss"], runs["autodiff"][1]["train_loss"]
    assert manual[-1] < 1e-2 * manual[0]
    np.testing.assert_allclose(manual, autodiff, rtol=1e-4)


def test_lbfgs_trains_a_model_with_dropout_its_line_search_seeing_the_step_key():
    model = fn.mlp([3, 8, 1], hidden="tanh", dropout=0.1)
    _, history = fn.fit(model, params_of(model), optax.lbfgs(), X, Y, epochs=2, batch_size=64, key=KEY, grad="manual")
    assert history["train_loss"][1] < 0.5 * history["train_loss"][0]


@pytest.mark.parametrize("grad", ["autodiff", "manual"])
def test_reduce_on_plateau_runs_in_fit_and_in_make_train_step(grad):
    optimizer = optax.chain(optax.sgd(0.05), optax.contrib.reduce_on_plateau(patience=1, cooldown=0))
    params, history = fit(optimizer=optimizer, epochs=2, grad=grad)
    assert np.all(np.isfinite(history["train_loss"])) and history["train_loss"][1] < history["train_loss"][0]
    step = fn.make_train_step(MODEL, optimizer, grad)
    _, state, loss = step(params, optimizer.init(params), X, Y)
    assert float(state[1].best_value) == float(loss)  # the step passed its loss as `value`


def test_the_manual_objective_is_differentiated_by_the_hand_written_backprop():
    doubled = fn.activation("doubled_tanh_slope", jnp.tanh, lambda z: 2 * (1 - jnp.tanh(z) ** 2))
    model = fn.mlp([3, 4, 1], hidden=doubled)
    params = params_of(model)
    objective = objective_fn(model, "manual")
    value, grads = jax.value_and_grad(objective)(params, X, Y, None, None)
    manual_value, manual = model.manual_grad(params, X, Y)
    np.testing.assert_allclose(value, manual_value, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), grads, manual)
    autodiff = jax.grad(model.loss)(params, X, Y)
    assert not np.allclose(grads[0]["W"], autodiff[0]["W"], rtol=1e-2)


# ----------------------------------------------------------------------------- 12a: float16 and Adam's eps
def test_float16_adam_with_its_default_eps_is_refused_naming_eps_at_any_rate():
    with pytest.raises(ValueError, match=r"`optimizer` cannot train float16 params: .*eps=1e-8 is 0 in float16"
                                         r".*optax.adam\(learning_rate, eps=1e-4\)"):
        fit(params=params_of(dtype=jnp.float16), optimizer=optax.adam(1e-6))


def test_float16_adam_with_a_larger_eps_trains():
    _, history = fit(params=params_of(dtype=jnp.float16), optimizer=optax.adam(1e-2, eps=1e-3), epochs=2)
    assert np.all(np.isfinite(history["train_loss"])) and history["train_loss"][1] < history["train_loss"][0]


def test_the_optimizer_probe_blames_only_what_breaks_in_the_16_bit_dtype():
    adam = optax.adam(1e-3)
    assert divergence.optimizer_breaks_in_dtype(adam, params_of(dtype=jnp.float16))
    assert not divergence.optimizer_breaks_in_dtype(adam, params_of(dtype=jnp.bfloat16))  # float32's exponent range
    assert not divergence.optimizer_breaks_in_dtype(adam, params_of())
    assert not divergence.optimizer_breaks_in_dtype(SGD, params_of(dtype=jnp.float16))


def test_a_divergence_with_a_float16_breaking_optimizer_names_it_before_the_learning_rate():
    params = params_of(dtype=jnp.float16)
    cause, explanation = divergence.diagnose(MODEL, params, X.astype(jnp.float16), Y.astype(jnp.float16),
                                             optimizer=optax.adam(1e-6))
    assert cause == "optimizer_dtype"
    assert "eps=1e-8 is 0 in float16" in explanation and "learning rate" not in explanation


# ----------------------------------------------------------------------------- 12b: the hand-written derivative
NAN_AT_ZERO = fn.activation("nan_at_zero", jnp.tanh, lambda z: jnp.where(z == 0, jnp.nan, 1 - jnp.tanh(z) ** 2))


def test_manual_training_that_diverges_on_a_nan_derivative_names_the_derivative_not_the_learning_rate():
    model = fn.mlp([3, 4, 1], hidden=NAN_AT_ZERO)
    x = X.at[5].set(0.0)  # with zero biases, this row's pre-activations are exactly 0
    with pytest.raises(fn.NonFiniteLossError, match=r"the hand-written gradient of layer 0 \(dense, activation "
                                                    r"'nan_at_zero'\) is not finite.*fn.derivative_checks.check_activation.*"
                                                    r"grad='autodiff'") as error:
        fn.fit(model, params_of(model), SGD, x, Y, epochs=1, batch_size=64, key=KEY, grad="manual")
    assert error.value.cause == "manual_derivative"
    assert "most likely too high" not in str(error.value)
    _, history = fn.fit(model, params_of(model), SGD, x, Y, epochs=1, batch_size=64, key=KEY, grad="autodiff")
    assert np.isfinite(history["train_loss"][0])


def test_a_hand_written_gradient_far_from_autodiff_is_named_and_a_right_one_is_not():
    doubled = fn.activation("doubled_tanh_slope", jnp.tanh, lambda z: 2 * (1 - jnp.tanh(z) ** 2))
    wrong = fn.mlp([3, 4, 1], hidden=doubled)
    suspect = divergence.manual_derivative_suspect(wrong, params_of(wrong), X, Y)
    assert suspect is not None and "layer 0 (dense, activation 'doubled_tanh_slope') differs from jax.grad's" in suspect
    assert divergence.manual_derivative_suspect(MODEL, params_of(), X, Y) is None


# ----------------------------------------------------------------------------- weights: real numbers only
CLASSIFIER = fn.mlp([3, 2], output="softmax", loss="cross_entropy")
LABELS = (X[:, 0] > 0).astype(jnp.int32)


@pytest.mark.parametrize("weights, message", [
    pytest.param(np.ones(64) + 1j, r"`sample_weight` has dtype complex128: complex numbers.*would drop the "
                                   r"imaginary part", id="complex"),
    pytest.param([1j] * 64, r"`sample_weight` has dtype complex128", id="complex-list"),
    pytest.param(np.array(["1"] * 64), r"`sample_weight` has dtype <U1; expected real numbers", id="text"),
    pytest.param(np.array([None] * 64), r"`sample_weight` has dtype object; expected real numbers", id="object"),
])
def test_sample_weight_must_be_real_numbers(weights, message):
    with pytest.raises(TypeError, match=message):
        fit(sample_weight=weights)


@pytest.mark.parametrize("class_weight, error, message", [
    pytest.param({0: 1 + 1j, 1: 1}, TypeError,
                 r"^`class_weight\[0\]` must be a real number, got \(1\+1j\) \(complex\)$", id="complex"),
    pytest.param({0: 1, 1: "2"}, TypeError, r"`class_weight\[1\]` must be a real number, got '2' \(str\)", id="text"),
    pytest.param({1: np.float32(-1)}, ValueError, r"`class_weight\[1\]` must be in \[0, inf\], got -1.0",
                 id="negative"),
    pytest.param({0: float("nan")}, ValueError, r"`class_weight\[0\]` must be finite, got nan", id="nan"),
])
def test_class_weight_values_must_be_real_numbers_naming_the_label(class_weight, error, message):
    with pytest.raises(error, match=message):
        fit(model=CLASSIFIER, params=params_of(CLASSIFIER), y=LABELS, class_weight=class_weight)


def test_class_weight_takes_every_real_number_type():
    weights = fn.fitting.row_weights(CLASSIFIER, np.array([0, 1, 1]), class_weight={0: np.float32(2), 1: np.int64(3)})
    np.testing.assert_array_equal(weights, [2.0, 3.0, 3.0])


# ----------------------------------------------------------------------------- optimizers funcnet cannot drive
def _update_calling_the_objective_with_a_layer_missing(updates, state, params=None, *, value_fn, **extra_args):
    value_fn(params[:1])
    return updates, state


@pytest.mark.parametrize("optimizer, message", [
    pytest.param(optax.MultiSteps(optax.chain(optax.adam(1e-3), optax.contrib.reduce_on_plateau()), 2),
                 r"`optimizer` \(MultiSteps\) is not one funcnet can drive: funcnet calls optimizer.update\(grads, "
                 r"opt_state, params\) in every step \(it is not an optax.GradientTransformationExtraArgs.*failed "
                 r"inside optax with TypeError: .*missing 1 required keyword-only argument: 'value'\. A "
                 r"wrapper that is not an optax.GradientTransformationExtraArgs \(e.g. optax.MultiSteps\) cannot "
                 r"hand the loss", id="MultiSteps-reduce_on_plateau"),
    pytest.param(optax.contrib.sam(optax.sgd(0.01), optax.sgd(0.01)),
                 r"`optimizer` \(sam\) is not one funcnet can drive: funcnet calls optimizer.update\(grads, "
                 r"opt_state, params, value=loss, grad=grads, value_fn=objective\) in every step.*failed inside "
                 r"optax with TypeError: .*unexpected keyword argument 'value'", id="sam"),
    pytest.param(optax.lookahead(optax.adam(1e-3), 5, 0.5),
                 r"`optimizer` \(lookahead\) is not one funcnet can drive.*AttributeError: 'list' object has no "
                 r"attribute 'fast'\. optax.lookahead needs its params as optax.LookaheadParams .* funcnet trains "
                 r"plain params", id="lookahead"),
])
@pytest.mark.filterwarnings("ignore")
def test_an_optimizer_funcnet_cannot_drive_is_named_with_what_funcnet_passes(optimizer, message):
    with pytest.raises(TypeError, match=message) as error:
        fit(optimizer=optimizer)
    assert isinstance(error.value.__cause__, (TypeError, AttributeError))  # the original error, chained
    with pytest.raises(ValueError, match=message):  # an ArgumentTypeError: the train step says the same
        fn.make_train_step(MODEL, optimizer)(params_of(), optimizer.init(params_of()), X, Y)


@pytest.mark.parametrize("optimizer, message", [
    pytest.param(optax.masked(optax.adam(1e-3), {"W": True}), r"ValueError: pytree structure error", id="masked"),
    pytest.param(optax.multi_transform({"a": optax.adam(1e-3)}, [{"W": "b", "b": "b"}] * 2),
                 r"ValueError: Some parameters have no corresponding transformation", id="multi_transform"),
])
def test_an_optimizer_whose_init_fails_on_funcnets_params_is_named(optimizer, message):
    pattern = (r"^`optimizer` \((masked|partition)\) is not one funcnet can drive: funcnet calls "
               r"optimizer.init\(params\), params being a list of layer dicts, and that failed inside optax with "
               + message + r"(.|\n)*A mask or label tree \(optax.masked, optax.multi_transform\) must have the "
               r"structure of the params")
    with pytest.raises(TypeError, match=pattern):
        fit(optimizer=optimizer)
    with pytest.raises(TypeError, match=pattern):
        fit(optimizer=optimizer, opt_state=optax.EmptyState())


def test_funcnets_own_errors_inside_an_optimizer_pass_unchanged():
    optimizer = optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(),
                                                      _update_calling_the_objective_with_a_layer_missing)
    with pytest.raises(ValueError, match=r"^`params` must be a list of 2 layer dicts") as error:
        fit(optimizer=optimizer)
    assert not isinstance(error.value, TypeError)


# ----------------------------------------------------------------------------- fit's opt_state
@pytest.mark.parametrize("kwargs, message", [
    pytest.param(dict(optimizer=optax.adam(1e-2), opt_state=optax.sgd(0.1, momentum=0.9).init(params_of())),
                 r"^`opt_state` is not a state of this `optimizer`: it holds TraceState, EmptyState, but "
                 r"optimizer.init makes ScaleByAdamState, EmptyState; pass opt_state=optimizer.init\(params\), or "
                 r"leave it out$", id="another-optimizer's"),
    pytest.param(dict(optimizer=optax.adam(1e-2), opt_state=jax.vmap(optax.adam(1e-2).init)(
        fn.stacked_init(MODEL, jax.random.split(KEY, 3)))),
                 r"^`opt_state` holds 3 models' optimizer states, stacked \(as fit_many makes them\), but this "
                 r"trains one model: pass opt_state=optimizer.init\(params\)", id="stacked"),
    pytest.param(dict(optimizer=optax.adam(1e-2), opt_state=optax.adam(1e-2).init(fn.mlp([3, 5, 1]).init(KEY))),
                 r"^`opt_state\[0\].mu\[0\]\['W'\]` has shape \(3, 5\); expected the shape optimizer.init\(params\) "
                 r"makes, \(3, 4\): pass opt_state=optimizer.init\(params\)", id="another-model's"),
    pytest.param(dict(optimizer=SGD, opt_state=SGD.init(params_of()), validation_split=0.25, patience=1,
                      best=(params_of(), optax.adam(1e-2).init(params_of()))),
                 r"^`best\[1\]` is not a state of this `optimizer`: it holds ScaleByAdamState, EmptyState, but "
                 r"optimizer.init makes EmptyState, EmptyState", id="best's"),
])
def test_fit_says_what_opt_state_it_needs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(**kwargs)

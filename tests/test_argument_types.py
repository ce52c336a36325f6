"""Issue 21, items 7 and 12: arguments of the wrong kind get a clear error naming them, or work.

* Data that is not real numbers (complex, string, object, datetime, key arrays) is refused by
  every entry point that takes data, in one place (``checks.check_real_dtype``, called by
  ``check_inputs``, ``check_targets`` and ``check_weights``), instead of being cast (complex lost its
  imaginary part with only a NumPy warning).
* Params that are not floating point are refused (integer params predicted 0.0).
* Every integer argument of predict, evaluate, fit_many, finite_difference_grad, layer_stats,
  stats_rows, stats_key and decision_grid takes every integral type and refuses 2.0, True and "3".
* A network without params predicts (``relu(x)``); fit_many refuses it by name.
* fit_many refuses one model's optimizer state, another optimizer's state, and a batch as ``key``.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from funcnet import checks
from funcnet.decision_boundary import decision_grid
from funcnet.layer_stats import stats_key, stats_rows

MODEL = fn.mlp([3, 8, 1], hidden="tanh")  # the shapes of tests/test_train.py: its programs are reused
CLASSIFIER = fn.mlp([2, 4, 1], output="sigmoid", loss="logloss")
PARAMS = MODEL.init(jax.random.key(0))
X = np.asarray(jax.random.normal(jax.random.key(1), (8, 3)), np.float32)
Y = np.sin(X[:, :1])

COMPLEX = r"has dtype complex\d+: complex numbers, .* casting would drop the imaginary part; expected real " \
          r"numbers \(a bool, integer or floating array\)"
NOT_REAL = [  # (a bad version of an array, the message about it for the argument `{name}`)
    pytest.param(lambda a: a + 1j, "`{name}` " + COMPLEX + r". Pass `{name}.real`", id="complex"),
    pytest.param(lambda a: jnp.asarray(a, jnp.complex64), "`{name}` " + COMPLEX, id="jax-complex"),
    pytest.param(lambda a: a.astype(object), r"`{name}` has dtype object; expected real numbers .*"
                 r"np.asarray\({name}, dtype=np.float32\)", id="object"),
    pytest.param(lambda a: a.astype(str), r"`{name}` has dtype <U\d+; expected real numbers", id="string"),
    pytest.param(lambda a: a.astype(np.int64).astype("datetime64[s]"), r"`{name}` has dtype datetime64\[s\]",
                 id="datetime"),
    pytest.param(lambda a: (a + 1j).tolist(), "`{name}` " + COMPLEX, id="list-of-complex"),
]


def refuses(name, message, call):
    """``call()`` raises an ArgumentTypeError (a TypeError and a ValueError) naming ``name``, without warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's ComplexWarning would mean the value was cast first
        with pytest.raises(checks.ArgumentTypeError, match=message.format(name=name)) as caught:
            call()
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("bad, message", NOT_REAL)
@pytest.mark.parametrize("entry", ["predict", "predict_labels", "evaluate", "check_data", "fit", "fit_many",
                                   "forward", "loss", "compare_grads", "finite_difference_grad", "layer_stats"])
def test_every_entry_point_refuses_x_that_is_not_real_numbers(entry, bad, message):
    x = bad(X)
    calls = {
        "predict": lambda: fn.predict(MODEL, PARAMS, x),
        "predict_labels": lambda: fn.predict_labels(CLASSIFIER, CLASSIFIER.init(jax.random.key(0)), bad(X[:, :2])),
        "evaluate": lambda: fn.evaluate(MODEL, PARAMS, x, Y),
        "check_data": lambda: fn.check_data(MODEL, x, Y),
        "fit": lambda: fn.fit(MODEL, PARAMS, optax.sgd(0.1), x, Y, epochs=1, key=jax.random.key(0)),
        "fit_many": lambda: fn.fit_many(MODEL, fn.stacked_init(MODEL, jax.random.split(jax.random.key(0), 2)),
                                        optax.sgd(0.1), x, Y, epochs=1, key=jax.random.key(0)),
        "forward": lambda: MODEL.forward(PARAMS, x),
        "loss": lambda: MODEL.loss(PARAMS, x, Y),
        "compare_grads": lambda: fn.gradcheck.compare_grads(MODEL, PARAMS, x, Y),
        "finite_difference_grad": lambda: fn.gradcheck.finite_difference_grad(MODEL, PARAMS, x, Y),
        "layer_stats": lambda: fn.layer_stats(MODEL, PARAMS, PARAMS, x, Y),
    }
    refuses("x", message, calls[entry])


@pytest.mark.parametrize("bad, message", NOT_REAL)
@pytest.mark.parametrize("entry", ["evaluate", "check_data", "fit", "loss", "manual_grad"])
def test_every_entry_point_refuses_y_that_is_not_real_numbers(entry, bad, message):
    y = bad(Y)
    calls = {
        "evaluate": lambda: fn.evaluate(MODEL, PARAMS, X, y),
        "check_data": lambda: fn.check_data(MODEL, X, y),
        "fit": lambda: fn.fit(MODEL, PARAMS, optax.sgd(0.1), X, y, epochs=1, key=jax.random.key(0)),
        "loss": lambda: MODEL.loss(PARAMS, X, y),
        "manual_grad": lambda: MODEL.manual_grad(PARAMS, X, y),
    }
    refuses("y", message, calls[entry])


@pytest.mark.parametrize("bad, message", NOT_REAL[:3])
def test_sample_weights_that_are_not_real_numbers_are_refused(bad, message):
    refuses("weights", message, lambda: MODEL.loss(PARAMS, X, Y, bad(np.ones(8))))


def test_a_jax_key_array_is_not_data():
    refuses("x", r"`x` has dtype key<fry>; expected real numbers",
            lambda: fn.predict(MODEL, PARAMS, jax.random.split(jax.random.key(0), 24).reshape(8, 3)))


def test_a_ragged_list_is_refused_by_name():
    refuses("x", r"`x` must be an array of real numbers, but it cannot be read as one",
            lambda: fn.predict(MODEL, PARAMS, [[1.0, 2.0, 3.0], [1.0]]))


@pytest.mark.parametrize("convert", [
    lambda a: a.astype(np.int32), lambda a: a.astype(np.uint8), lambda a: a.astype(np.float16),
    lambda a: jnp.asarray(a, jnp.bfloat16), lambda a: a.astype(np.float64), lambda a: a.tolist(),
], ids=["int32", "uint8", "float16", "bfloat16", "float64", "list"])
def test_integer_and_every_floating_dtype_are_still_data(convert):
    integers = np.abs(np.round(X * 4))  # exact in every dtype listed, uint8 included
    np.testing.assert_allclose(fn.predict(MODEL, PARAMS, convert(integers)), fn.predict(MODEL, PARAMS, integers),
                               rtol=2e-2, atol=2e-2)


def test_bools_are_the_numbers_0_and_1_as_data_labels_and_weights():
    flags, labels, mask = X > 0, X[:, :2].sum(axis=1, keepdims=True) > 0, np.arange(8) % 3 > 0
    params = CLASSIFIER.init(jax.random.key(0))
    np.testing.assert_array_equal(fn.predict(MODEL, PARAMS, flags), fn.predict(MODEL, PARAMS, flags.astype(np.float32)))
    assert fn.evaluate(CLASSIFIER, params, X[:, :2], labels) == fn.evaluate(CLASSIFIER, params, X[:, :2],
                                                                             labels.astype(np.float32))
    np.testing.assert_array_equal(MODEL.loss(PARAMS, X, Y, mask), MODEL.loss(PARAMS, X, Y, mask.astype(np.float32)))


# ----------------------------------------------------------------------------- params that are not floats
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_, np.complex64])
def test_params_that_are_not_floating_point_are_refused_by_name(dtype):
    params = [dict(layer) for layer in PARAMS]
    params[1]["b"] = np.asarray(params[1]["b"]).astype(dtype)
    message = rf"`params\[1\]\['b'\]` has dtype {np.dtype(dtype).name}; expected floating-point arrays"
    for call in (lambda: fn.predict(MODEL, params, X), lambda: fn.evaluate(MODEL, params, X, Y),
                 lambda: fn.fit(MODEL, params, optax.sgd(0.1), X, Y, epochs=1, key=jax.random.key(0))):
        with pytest.raises(checks.ArgumentTypeError, match=message):
            call()
    stacked = jax.tree.map(lambda leaf: np.stack([leaf] * 2), params)
    with pytest.raises(checks.ArgumentTypeError, match=message):
        fn.fit_many(MODEL, stacked, optax.sgd(0.1), X, Y, epochs=1, key=jax.random.key(0))


# ----------------------------------------------------------------------------- a network without params
RELU_ONLY = fn.sequential(3, ["relu"])


@pytest.mark.parametrize("x_dtype, out_dtype", [(np.float32, np.float32), (np.int32, np.float32),
                                                (jnp.bfloat16, jnp.bfloat16), (np.float64, np.float32)])
def test_a_network_without_params_predicts_its_function(x_dtype, out_dtype):
    x = np.asarray([[-1.0, 2.0, 0.0], [3.0, -4.0, 5.0]], x_dtype)  # NumPy: float64 stays float64 until cast
    outputs = fn.predict(RELU_ONLY, [{}], x)
    assert outputs.dtype == out_dtype
    np.testing.assert_array_equal(np.asarray(outputs, np.float32), [[0.0, 2.0, 0.0], [3.0, 0.0, 5.0]])


def test_a_network_without_params_evaluates_and_labels():
    x = np.array([[-1.0, 2.0, 0.5]], np.float32)
    np.testing.assert_allclose(fn.evaluate(RELU_ONLY, [{}], x, np.zeros((1, 3), np.float32)), (4 + 0.25) / 3)
    classifier = fn.sequential(2, ["relu"], output="softmax", loss="cross_entropy")
    np.testing.assert_array_equal(fn.predict_labels(classifier, [{}], np.array([[1.0, 2.0], [3.0, -1.0]])), [1, 0])


def test_fit_many_refuses_a_network_without_params():
    with pytest.raises(ValueError, match=r"^`params` has no leaves: 3-relu → identity, mse has no parameters to "
                                         r"train, so fit_many has nothing to do; fn.predict\(model, params, x\) "
                                         r"computes it as it is$"):
        fn.fit_many(RELU_ONLY, [{}], optax.sgd(0.1), X, np.zeros((8, 3)), epochs=1, key=jax.random.key(0))


# ----------------------------------------------------------------------------- fit_many's optimizer state
KEYS = jax.random.split(jax.random.key(0), 3)
STACKED = fn.stacked_init(MODEL, KEYS)
ADAM = optax.adam(1e-2)


@pytest.mark.parametrize("make_state, message", [
    pytest.param(lambda: ADAM.init(PARAMS),
                 r"`opt_state` is one model's optimizer state \(the shapes optimizer.init\(params\) makes for one "
                 r"model\); fit_many needs one state per model, 3 stacked: make it with "
                 r"jax.vmap\(optimizer.init\)\(params\)", id="one-model's-state"),
    pytest.param(lambda: jax.vmap(ADAM.init)(fn.stacked_init(MODEL, KEYS[:2])),
                 r"`opt_state\[0\].count` has shape \(2,\); expected one state per model, \(3,\): make it with "
                 r"jax.vmap\(optimizer.init\)\(params\)", id="two-models'-states"),
    pytest.param(lambda: jax.vmap(optax.sgd(0.1, momentum=0.9).init)(STACKED),
                 r"`opt_state` is not a state of this `optimizer`: it holds TraceState, EmptyState, but "
                 r"optimizer.init makes ScaleByAdamState, EmptyState", id="another-optimizer's-state"),
    pytest.param(lambda: jax.vmap(ADAM.init)(fn.stacked_init(fn.mlp([3, 5, 1]), KEYS)),
                 r"`opt_state\[0\].mu\[0\]\['W'\]` has shape \(3, 3, 5\); expected one state per model, \(3, 3, 8\)",
                 id="another-model's-state"),
])
def test_fit_many_says_what_opt_state_it_needs(make_state, message):
    with pytest.raises(ValueError, match=message):
        fn.fit_many(MODEL, STACKED, ADAM, X, Y, epochs=1, keys=KEYS, opt_state=make_state())


def test_fit_many_refuses_a_batch_of_keys_as_its_shared_key():
    for batch in (KEYS, jax.random.key_data(KEYS)):
        with pytest.raises(ValueError, match=r"`key` must be one jax.random key \(shared by all models\), got a "
                                             r"batch of shape \(3,( 2)?\); pass one key per model as keys="):
            fn.fit_many(MODEL, STACKED, ADAM, X, Y, epochs=1, key=batch)


@pytest.mark.parametrize("validation_data, message", [
    ((X,), r"`validation_data` must be a pair \(x_val, y_val\), got tuple of length 1"),
    (X, r"`validation_data` must be a pair \(x_val, y_val\), got ndarray"),
])
def test_fit_many_refuses_validation_data_that_is_not_a_pair(validation_data, message):
    with pytest.raises(ValueError, match=message):
        fn.fit_many(MODEL, STACKED, ADAM, X, Y, epochs=1, keys=KEYS, validation_data=validation_data)


def test_fit_many_refuses_an_optimizer_that_is_not_one_before_calling_it():
    with pytest.raises(TypeError, match=r"`optimizer` must be an optax.GradientTransformation"):
        fn.fit_many(MODEL, STACKED, "adam", X, Y, epochs=1, keys=KEYS)


@pytest.mark.parametrize("values, message", [
    ([1e-3, np.nan, 1e-2], r"`values` contains 1 non-finite values \(NaN or inf\); the first is at index \(1,\)"),
    (np.array([1e-3, 1e-2, 1e-1]) + 1j, "`values` " + COMPLEX),
])
def test_with_hyperparam_refuses_values_that_are_not_finite_real_numbers(values, message):
    optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    with pytest.raises(ValueError, match=message):
        fn.with_hyperparam(jax.vmap(optimizer.init)(STACKED), "learning_rate", values)


# ----------------------------------------------------------------------------- integer arguments
INTEGRAL = [  # every integral type a user may hold: each must work as the Python int does
    pytest.param(int, id="int"), pytest.param(np.int64, id="np.int64"), pytest.param(np.int32, id="np.int32"),
    pytest.param(np.uint8, id="np.uint8"), pytest.param(np.array, id="0-d-array"),
    pytest.param(jnp.asarray, id="0-d-jax-array"),
]
NOT_INTEGRAL = [2.0, True, np.bool_(True), "3", 3.5, None]
STACKED_2 = fn.stacked_init(MODEL, jax.random.split(jax.random.key(0), 2))


def fit_many_losses(**integers):
    arguments = {"epochs": 1, "batch_size": 4, **integers}
    return fn.fit_many(MODEL, STACKED_2, optax.sgd(0.1), X, Y, key=jax.random.key(0), **arguments)[2]


INTEGER_ARGUMENTS = {  # name: (value, minimum, call with that argument given as `value`)
    "predict batch_size": (4, 1, lambda v: np.asarray(fn.predict(MODEL, PARAMS, X, batch_size=v))),
    "predict_labels batch_size": (4, 1, lambda v: np.asarray(fn.predict_labels(
        CLASSIFIER, CLASSIFIER.init(jax.random.key(0)), X[:, :2], batch_size=v))),
    "evaluate batch_size": (4, 1, lambda v: fn.evaluate(MODEL, PARAMS, X, Y, batch_size=v)),
    "fit_many epochs": (2, 0, lambda v: fit_many_losses(epochs=v)),
    "fit_many batch_size": (4, 1, lambda v: fit_many_losses(batch_size=v)),
    "finite_difference_grad max_coordinates": (7, 1, lambda v: np.concatenate(
        [np.ravel(leaf) for leaf in jax.tree.leaves(fn.gradcheck.finite_difference_grad(MODEL, PARAMS, X, Y, max_coordinates=v))])),
    "finite_difference_grad chunk_size": (3, 1, lambda v: jax.tree.leaves(
        fn.gradcheck.finite_difference_grad(MODEL, PARAMS, X, Y, chunk_size=v, max_coordinates=7))[0]),
    "finite_difference_grad sample_seed": (3, 0, lambda v: jax.tree.leaves(
        fn.gradcheck.finite_difference_grad(MODEL, PARAMS, X, Y, sample_seed=v, max_coordinates=7))[0]),
    "layer_stats epoch": (3, 0, lambda v: fn.layer_stats(MODEL, PARAMS, PARAMS, X, Y, epoch=v)),
    "stats_rows num_rows": (10, 0, lambda v: stats_rows(v, 4)),
    "stats_rows max_rows": (4, 1, lambda v: stats_rows(10, v)),
    "stats_key epoch": (3, 0, lambda v: jax.random.key_data(stats_key(jax.random.key(0), v))),
    "decision_grid resolution": (3, 2, lambda v: decision_grid(CLASSIFIER, CLASSIFIER.init(jax.random.key(0)),
                                                               X[:, :2], resolution=v)[2]),
}


def integer_name(case):
    return case.split()[-1]


@pytest.mark.parametrize("convert", INTEGRAL)
@pytest.mark.parametrize("case", sorted(INTEGER_ARGUMENTS))
def test_every_integer_argument_takes_every_integral_type(case, convert):
    value, _, call = INTEGER_ARGUMENTS[case]
    expected, got = call(value), call(convert(value))
    if isinstance(expected, list):  # fit_many's histories, layer_stats' entries
        assert got == expected
    else:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("bad", NOT_INTEGRAL, ids=repr)
@pytest.mark.parametrize("case", sorted(INTEGER_ARGUMENTS))
def test_every_integer_argument_refuses_what_is_not_an_integer(case, bad):
    _, minimum, call = INTEGER_ARGUMENTS[case]
    name = integer_name(case)
    if bad is None and case == "layer_stats epoch":  # None is the default: entries without "epoch"
        assert all("epoch" not in entry for entry in call(None))
        return
    if bad is None and case == "finite_difference_grad max_coordinates":  # the default: 4096, all 41 here
        assert np.all(np.isfinite(call(None)))
        return
    with pytest.raises(checks.ArgumentTypeError, match=rf"^`{name}` must be an integer ≥ {minimum}, got "):
        call(bad)


@pytest.mark.parametrize("case", sorted(INTEGER_ARGUMENTS))
def test_every_integer_argument_refuses_a_value_below_its_minimum(case):
    _, minimum, call = INTEGER_ARGUMENTS[case]
    with pytest.raises(ValueError, match=rf"^`{integer_name(case)}` must be an integer ≥ {minimum}, got "
                                         rf"{minimum - 1}$"):
        call(np.int64(minimum - 1))

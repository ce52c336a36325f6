"""Every bad input gets an error that names the argument, what was expected and what was got."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from funcnet import checks

REGRESSOR = fn.mlp([5, 4, 1])
CLASSIFIER = fn.mlp([5, 4, 3], output="softmax", loss="cross_entropy")
BINARY = fn.mlp([5, 4, 1], output="sigmoid", loss="logloss")
X = np.ones((8, 5), np.float32)


def with_value(array, index, value):
    array = np.array(array, np.float32)
    array[index] = value
    return array


BAD_DATA = [
    (REGRESSOR, X[:, :4], np.ones((8, 1)), r"`x` has 4 features \(shape \(8, 4\)\) but the model's first layer expects 5"),
    (REGRESSOR, X[0], np.ones((1, 1)), r"`x` must be 2-D \(batch, features\) but has shape \(5,\) ; for one sample use x.reshape\(1, -1\)"),
    (REGRESSOR, X, np.ones(8), r"`y` has shape \(8,\) but the model's output is \(8, 1\); reshape with y.reshape\(-1, 1\)"),
    (REGRESSOR, X, np.ones((7, 1)), r"`x` has 8 rows but `y` has shape \(7, 1\); `x` and `y` need the same number of samples"),
    (REGRESSOR, X[:0], np.ones((0, 1)), r"`x` is empty: it has 0 rows"),
    (REGRESSOR, with_value(X, (2, 3), np.nan), np.ones((8, 1)), r"`x` contains 1 non-finite values \(NaN or inf\); the first is at index \(2, 3\)"),
    (REGRESSOR, X, with_value(np.ones((8, 1)), (5, 0), np.inf), r"`y` contains 1 non-finite values .* index \(5, 0\): inf"),
    (BINARY, X, with_value(np.zeros((8, 1)), (1, 0), 2.0), r"`y` must hold only 0 or 1 for loss='logloss', but contains \[2.0\]"),
    (CLASSIFIER, X, np.array([0, 1, 2, 3, 0, 1, 2, 0]), r"`y` class labels must be integers in 0..2 for a 3-way softmax, but contains \[3\]"),
    (CLASSIFIER, X, np.array([0, 1, -1, 0, 0, 1, 2, 0]), r"class labels must be integers in 0..2 .* contains \[-1\]"),
    (CLASSIFIER, X, np.ones((8, 2)), r"cross_entropy expects integer classes \(8,\) or one-hot \(8, 3\)"),
    (CLASSIFIER, X, np.full((8, 3), 0.5), r"one-hot rows must be non-negative and sum to 1"),
]


@pytest.mark.parametrize("model, x, y, message", BAD_DATA)
def test_check_data_rejects_bad_data(model, x, y, message):
    with pytest.raises(ValueError, match=message):
        fn.check_data(model, x, y)


@pytest.mark.parametrize("model, x, y, message", BAD_DATA)
def test_fit_rejects_bad_data_before_training(model, x, y, message):
    params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match=message):
        fn.fit(model, params, optax.sgd(0.1), x, y, epochs=1, key=jax.random.key(0))


@pytest.mark.parametrize("model, x, y, message", [case for case in BAD_DATA if "non-finite" not in case[3]
                                                  and "only 0 or 1" not in case[3]
                                                  and "class labels" not in case[3]
                                                  and "sum to 1" not in case[3]])
def test_shape_errors_are_raised_by_the_jitted_train_step_at_trace_time(model, x, y, message):
    optimizer = optax.sgd(0.1)
    params = model.init(jax.random.key(0))
    step = fn.make_train_step(model, optimizer)
    with pytest.raises(ValueError, match=message):
        step(params, optimizer.init(params), x, y)


def test_params_of_the_wrong_architecture_are_named():
    params = fn.mlp([5, 3, 1]).init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"`params\[0\]\['W'\]` has shape \(5, 3\) but layer 0 \(dense → 4\) of 5-4\(relu\)-1 → identity, mse expects \(5, 4\)"):
        REGRESSOR.forward(params, X)
    with pytest.raises(ValueError, match=r"`params` must be a list of 2 layer dicts for 5-4\(relu\)-1 → identity, mse, got a list of length 1"):
        REGRESSOR.forward(params[:1], X)
    with pytest.raises(ValueError, match=r"`params\[1\]` must be a dict with keys \['W', 'b'\] for layer 1 \(dense → 1\), got \['W'\]"):
        REGRESSOR.forward([{"W": jnp.ones((5, 4)), "b": jnp.ones(4)}, {"W": jnp.ones((4, 1))}], X)


def test_weights_must_be_one_per_sample():
    params = REGRESSOR.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"`weights` has shape \(3,\); expected one weight per sample, \(8,\)"):
        REGRESSOR.loss(params, X, np.ones((8, 1)), np.ones(3))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        # either wording: fit's own checks are moving to checks.check_count ("an integer ≥ 1")
        (dict(batch_size=0), ValueError, r"`batch_size` must be (a positive integer|an integer ≥ 1), got 0"),
        (dict(batch_size=2.5), ValueError, r"`batch_size` must be (a positive integer|an integer ≥ 1), got 2.5"),
        (dict(epochs=-1), ValueError, r"`epochs` must be (a non-negative integer|an integer ≥ 0), got -1"),
        (dict(grad="numeric"), ValueError, r"unknown grad 'numeric'; expected one of autodiff, manual"),
        (dict(validation_split=1.0), ValueError, r"`validation_split` must be in \[0(\.0)?, 1(\.0)?\), got 1.0"),
        (dict(validation_split=0.99), ValueError,
         r"`validation_split=0.99` of 8 rows leaves 8 held out and 0 for training; both need at least one row"),
        (dict(optimizer="adam"), TypeError, r"`optimizer` must be an optax.GradientTransformation .* got str"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, message):
    arguments = dict(optimizer=optax.sgd(0.1), epochs=1, batch_size=4, validation_split=0.0, grad="autodiff")
    arguments.update(kwargs)
    optimizer = arguments.pop("optimizer")
    params = REGRESSOR.init(jax.random.key(0))
    with pytest.raises(error, match=message):
        fn.fit(REGRESSOR, params, optimizer, X, np.ones((8, 1)), key=jax.random.key(0), **arguments)


def test_predict_checks_its_input():
    params = REGRESSOR.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"`x` contains 1 non-finite"):
        fn.predict(REGRESSOR, params, with_value(X, (0, 0), np.nan))
    with pytest.raises(ValueError, match=r"`batch_size` must be an integer ≥ 1, got 0"):
        fn.predict(REGRESSOR, params, X, batch_size=0)


def test_predict_labels_refuses_a_regressor():
    params = REGRESSOR.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"predict_labels needs a classifier .* output is 'identity'"):
        fn.predict_labels(REGRESSOR, params, X)


@pytest.mark.parametrize("call, message", [
    (lambda: fn.make_regression_data(jax.random.key(0), 0), r"`num_samples` must be an integer ≥ 1, got 0"),
    (lambda: fn.train_test_split(jax.random.key(0), X, np.ones((8, 1)), 1.5),
     r"`test_fraction` must be in \[0, 1\), got 1.5"),
])
def test_data_helpers_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("value, expected", [(10.0, 10), (np.float64(3), 3), (np.int64(4), 4), (2, 2)])
def test_check_count_with_integral_floats_takes_a_float_with_an_integer_value(value, expected):
    count = checks.check_count(value, "width", integral_floats=True)
    assert count == expected and type(count) is int


@pytest.mark.parametrize("value, integral_floats, message", [
    (10.0, False, r"^`width` must be an integer ≥ 1, got 10.0 \(float\)$"),
    (10.5, True, r"^`width` must be an integer ≥ 1, got 10.5 \(float\)$"),
    (float("inf"), True, r"^`width` must be an integer ≥ 1, got inf \(float\)$"),
    (float("nan"), True, r"^`width` must be an integer ≥ 1, got nan \(float\)$"),
])
def test_check_count_refuses_floats_unless_asked_and_then_only_integral_finite_ones(value, integral_floats, message):
    with pytest.raises(checks.ArgumentTypeError, match=message):
        checks.check_count(value, "width", integral_floats=integral_floats)


@pytest.mark.parametrize("value, error", [(0, ValueError), ("3", checks.ArgumentTypeError)])
def test_error_prefix_keeps_the_error_type_and_puts_the_prefix_in_front(value, error):
    with pytest.raises(error, match=r"^check_loss: `batch` must be an integer ≥ 1, got ") as raised:
        with checks.error_prefix("check_loss: "):
            checks.check_count(value, "batch")
    assert type(raised.value) is error


def test_check_dropout_key_names_the_caller_and_shows_a_call_with_a_key():
    model = fn.mlp([3, 4, 1], dropout=0.5)
    with pytest.raises(ValueError, match=r"^this model has dropout, so my_loop needs `key=` \(training mode draws the "
                                         r"dropout mask from it\), e.g. my_loop\(key=k\); pass a fresh one$"):
        checks.check_dropout_key(model, None, "my_loop", "my_loop(key=k)", "pass a fresh one")
    checks.check_dropout_key(model, jax.random.key(0), "my_loop", "my_loop(key=k)")  # a key: nothing to say
    checks.check_dropout_key(fn.mlp([3, 4, 1]), None, "my_loop", "my_loop(key=k)")  # no dropout: no key needed


def test_params_dtype_is_the_first_leafs_and_the_default_without_leaves():
    params = fn.mlp([2, 3, 1]).init(jax.random.key(0), jnp.bfloat16)
    assert checks.params_dtype(params) == jnp.bfloat16
    assert checks.params_dtype([{}]) is None
    assert checks.params_dtype([{}], jnp.float32) == jnp.float32

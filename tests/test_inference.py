"""Inference in padded buckets of rows (one program per bucket, not per row count), and value checks
that leave a JAX array on its device."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn
from funcnet import checks, inference, row_chunks
from funcnet.engine import mean_loss

ROW_COUNTS = (1, 2, 3, 5, 17, 33, 100)
# A model no other test builds, so its programs are compiled here (the jit caches key on it).
MODEL = fn.sequential(6, [fn.dense(19, "tanh"), fn.layer_norm(), fn.dropout(0.25), fn.dense(3)],
                      output="softmax", loss="cross_entropy")


@pytest.fixture(scope="module")
def params():
    return MODEL.init(jax.random.key(13))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(13)
    return rng.normal(size=(100, 6)).astype(np.float32), rng.integers(0, 3, 100)


def buckets(row_counts, batch_size=8192):
    return {inference.bucket_rows(n, batch_size) for n in row_counts}


@pytest.mark.parametrize("num_rows, batch_size, rows", [
    (1, 8192, 64), (64, 8192, 64), (65, 8192, 128), (100, 8192, 128), (5000, 8192, 8192),
    (8192, 8192, 8192), (20000, 8192, 8192), (5, 16, 16), (100, 16, 16), (3, 1, 1)])
def test_bucket_rows_is_the_next_power_of_two_at_least_64_and_at_most_batch_size(num_rows, batch_size, rows):
    assert inference.bucket_rows(num_rows, batch_size) == rows


@pytest.fixture
def fresh_programs():
    """Empty the inference programs' caches: a test then counts exactly what it compiles, whatever ran before."""
    for program in (inference._forward_rows, row_chunks._loss_sum):
        program.clear_cache()


def padded_forward(params, x):
    """``MODEL.forward`` on ``x`` padded (last row repeated) to its bucket, cut back to ``x``'s rows."""
    rows = inference.bucket_rows(len(x), 8192)
    padded = np.concatenate([x, np.repeat(x[-1:], rows - len(x), axis=0)])
    return np.asarray(jax.jit(MODEL.forward)(params, padded))[:len(x)]


def test_predict_compiles_once_per_bucket_and_equals_the_forward_on_the_bucket(params, data, fresh_programs,
                                                                                compile_log):
    x = data[0]
    outputs = {}
    for n in ROW_COUNTS:  # NumPy rows: the padding is done on the host, nothing but the network compiles
        outputs[n] = np.asarray(fn.predict(MODEL, params, x[:n]))
    assert compile_log == ["jit(_forward_rows)"] * len(buckets(ROW_COUNTS)) and len(buckets(ROW_COUNTS)) == 2
    forward = jax.jit(MODEL.forward)
    for n in ROW_COUNTS:
        assert outputs[n].shape == (n, 3)
        np.testing.assert_array_equal(outputs[n], padded_forward(params, x[:n]))
        # Not bit for bit equal to the unpadded forward: XLA:CPU picks its kernels by the row
        # count, so the unpadded forward's bits vary with it (measured: up to 4 ulps here, 32 for
        # a plain mlp's near-zero outputs); predict's bits vary only with the bucket.
        np.testing.assert_allclose(outputs[n], forward(params, x[:n]), rtol=2e-6, atol=1e-7)


def test_predict_labels_compiles_once_per_bucket(params, data, fresh_programs, compile_log):
    x = data[0]
    labels = {n: np.asarray(fn.predict_labels(MODEL, params, x[:n])) for n in ROW_COUNTS}
    assert compile_log == ["jit(_forward_rows)"] * len(buckets(ROW_COUNTS))
    for n in ROW_COUNTS:
        np.testing.assert_array_equal(labels[n], np.argmax(padded_forward(params, x[:n]), axis=-1))


def test_predict_on_jax_arrays_compiles_the_network_once_per_bucket(params, data, fresh_programs, compile_log):
    arrays = [jax.device_put(data[0][:n] + 1) for n in ROW_COUNTS]  # new values, already on the device
    compile_log.clear()
    outputs = [np.asarray(fn.predict(MODEL, params, x)) for x in arrays]
    # only the small pad program compiles per row count; the network once per bucket
    assert compile_log.count("jit(_forward_rows)") == len(buckets(ROW_COUNTS))
    assert set(compile_log) <= {"jit(_forward_rows)", "jit(_pad_on_device)"}
    for x, output in zip(arrays, outputs):
        np.testing.assert_array_equal(output, padded_forward(params, np.asarray(x)))


def test_a_rows_prediction_does_not_depend_on_the_other_rows_of_its_bucket(params, data):
    x = data[0][:50]
    together = np.asarray(fn.predict(MODEL, params, x))
    for row in (0, 17, 49):
        np.testing.assert_array_equal(np.asarray(fn.predict(MODEL, params, x[row:row + 1]))[0], together[row])


def test_predict_beyond_batch_size_goes_in_whole_chunks_of_batch_size(params, data, fresh_programs, compile_log):
    x = data[0]
    outputs = {n: np.asarray(fn.predict(MODEL, params, x[:n], batch_size=16)) for n in (17, 40, 100)}
    assert compile_log == ["jit(_forward_rows)"]  # every chunk of every input: the one 16-row program
    chunk_forward = jax.jit(MODEL.forward)
    for n, output in outputs.items():
        padded = np.concatenate([x[:n], np.repeat(x[n - 1:n], -n % 16, axis=0)])
        expected = np.concatenate([np.asarray(chunk_forward(params, chunk)) for chunk in np.split(padded, len(padded) // 16)])
        np.testing.assert_array_equal(output, expected[:n])


def unpadded_mean(params, x, y):
    return float(jax.jit(mean_loss, static_argnums=0)(MODEL, params, jnp.asarray(x), jnp.asarray(y)))


def test_evaluate_compiles_once_per_bucket_and_equals_the_unpadded_mean(params, data, fresh_programs, compile_log):
    x, y = data
    values = {n: fn.evaluate(MODEL, params, x[:n], y[:n]) for n in ROW_COUNTS}
    assert compile_log.count("jit(_loss_sum)") == len(buckets(ROW_COUNTS))
    assert set(compile_log) <= {"jit(_loss_sum)", "jit(_add)", "jit(_mean)"}
    compile_log.clear()
    for n in ROW_COUNTS:  # float32: equal up to the order of the summation (measured: at most 1 ulp)
        np.testing.assert_allclose(values[n], unpadded_mean(params, x[:n], y[:n]), rtol=3e-7, atol=0)


def test_evaluate_weights_padded_rows_by_zero(params, data):
    x, y = data[0][:5].copy(), data[1][:5].copy()
    x[-1] *= 50  # the padding repeats the last row: were it counted, this loss would dominate
    per_sample = MODEL.loss_fn.per_sample(MODEL.logits(params, x), jnp.asarray(y), MODEL.output_fn)
    expected = float(np.sum(np.asarray(per_sample, np.float64)) / 5)
    np.testing.assert_allclose(fn.evaluate(MODEL, params, x, y), expected, rtol=1e-6)
    np.testing.assert_allclose(fn.evaluate(MODEL, params, x, y, batch_size=2), expected, rtol=1e-6)


@pytest.mark.x64
def test_evaluate_in_float64_equals_the_unpadded_mean_to_summation_order():
    model = fn.mlp([4, 9, 1])
    params = model.init(jax.random.key(1), jnp.float64)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(37, 4)), rng.normal(size=(37, 1))
    unpadded = float(jax.jit(mean_loss, static_argnums=0)(model, params, jnp.asarray(x), jnp.asarray(y)))
    np.testing.assert_allclose(fn.evaluate(model, params, x, y), unpadded, rtol=1e-15, atol=0)
    np.testing.assert_allclose(fn.evaluate(model, params, x, y, batch_size=8), unpadded, rtol=1e-14, atol=0)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_evaluate_rejects_a_batch_size_that_is_not_a_positive_integer(params, data, batch_size):
    with pytest.raises(ValueError, match="`batch_size` must be an integer ≥ 1, got"):
        fn.evaluate(MODEL, params, data[0][:4], data[1][:4], batch_size=batch_size)


# ----------------------------------------------------------------------------- checks on the device
BIG = checks.DEVICE_CHECK_MIN_SIZE + 1  # rows: y (BIG,) and x (BIG, 6) are both checked on the device


@pytest.fixture(scope="module")
def big_data():
    rng = np.random.default_rng(7)
    return rng.normal(size=(BIG, 6)).astype(np.float32), rng.integers(0, 3, BIG).astype(np.int32)


def test_check_data_on_device_arrays_brings_back_only_scalars(big_data, monkeypatch):
    x, y = jax.device_put(big_data[0]), jax.device_put(big_data[1])
    fetched = []
    device_get = jax.device_get

    def recording_device_get(tree):
        values = device_get(tree)
        fetched.extend(np.shape(leaf) for leaf in jax.tree.leaves(values))
        return values

    monkeypatch.setattr(jax, "device_get", recording_device_get)
    monkeypatch.setattr(checks, "host_values", lambda array: pytest.fail("copied the array to the host"))
    # On an accelerator the guard makes an implicit copy raise (jax.device_get is explicit, allowed);
    # on XLA:CPU, jax 0.10.2, it lets np.asarray through (zero copy), so host_values is patched above.
    with jax.transfer_guard_device_to_host("disallow"):
        checks.check_data(MODEL, x, y, jnp.float32)
        checks.check_data(MODEL, x, y, jnp.float16)
        fn.check_data(fn.mlp([6, 2], output="sigmoid", loss="logloss"), x, jnp.zeros((BIG, 2)))
    assert fetched and all(shape == () for shape in fetched)


def host_and_device_messages(check, array):
    messages = []
    for values in (np.asarray(array), jax.device_put(array)):
        with pytest.raises(ValueError) as error:
            check(values)
        messages.append(str(error.value))
    return messages


@pytest.mark.parametrize("dtype", [np.float32, jnp.float16, jnp.bfloat16])
def test_a_nan_in_a_device_array_gets_the_same_message_as_on_the_host(big_data, dtype):
    x = big_data[0].astype(dtype)
    x[BIG - 3, 4] = np.nan
    host, device = host_and_device_messages(lambda v: checks.check_data(MODEL, v), x)
    assert device == host
    assert f"the first is at index ({BIG - 3}, 4): nan" in device


def test_an_overflow_in_a_device_array_gets_the_same_message_as_on_the_host(big_data):
    x = big_data[0].copy()
    x[5, 1] = 70000.0
    host, device = host_and_device_messages(lambda v: checks.check_data(MODEL, v, dtype=jnp.float16), x)
    assert device == host
    assert "values too large for float16" in device


def test_a_value_just_above_float16s_largest_that_rounds_down_passes_on_the_device(big_data):
    x = big_data[0].copy()
    x[0, 0] = 65519.0  # above 65504, but rounds to it in float16
    checks.check_data(MODEL, jax.device_put(x), dtype=jnp.float16)


@pytest.mark.parametrize("loss, y, match", [
    ("cross_entropy", lambda y: y.at[9].set(3), r"class labels must be integers in 0\.\.2"),
    ("logloss", lambda y: jnp.zeros((BIG, 3)).at[4, 1].set(2.0), "must hold only 0 or 1"),
    ("cross_entropy", lambda y: jnp.full((BIG, 3), 0.5), "one-hot rows must be non-negative and sum to 1"),
])
def test_bad_labels_on_the_device_get_the_same_message_as_on_the_host(big_data, loss, y, match):
    model = fn.mlp([6, 3], output="sigmoid" if loss == "logloss" else "softmax", loss=loss)
    labels = y(jax.device_put(big_data[1]))
    host, device = host_and_device_messages(lambda v: checks.check_labels(model, v), labels)
    assert device == host
    with pytest.raises(ValueError, match=match):
        checks.check_labels(model, labels)

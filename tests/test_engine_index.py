"""Epoch and step numbers: Python and NumPy integers are checked at the public entry; JAX integer
scalars, concrete or traced, are taken as they are, so the traced program depends only on the arguments."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn
from funcnet.engine import shuffled_batch_rows

KEY = jax.random.key(3)


def key_data(key):
    return np.asarray(jax.random.key_data(key))


def test_a_concrete_and_a_traced_jax_integer_give_the_key_of_the_python_int():
    expected = key_data(fn.engine.step_key(KEY, 4, 7))
    np.testing.assert_array_equal(key_data(fn.engine.step_key(KEY, jnp.int32(4), jnp.uint32(7))), expected)
    traced = jax.jit(lambda epoch, step: jax.random.key_data(fn.engine.step_key(KEY, epoch, step)))
    np.testing.assert_array_equal(np.asarray(traced(jnp.int32(4), jnp.int32(7))), expected)


def test_the_engine_never_asks_whether_a_value_is_traced():
    from funcnet import engine

    assert "Tracer" not in inspect.getsource(engine)


def test_a_shuffle_under_jit_with_a_traced_epoch_equals_the_eager_one():
    eager = shuffled_batch_rows(KEY, 10, 3, 2)
    full, remainder = jax.jit(lambda epoch: shuffled_batch_rows(KEY, 10, 3, epoch))(jnp.int32(2))
    np.testing.assert_array_equal(full, eager[0])
    np.testing.assert_array_equal(remainder, eager[1])


@pytest.mark.parametrize("value, message", [
    (jnp.float32(1.0), r"`epoch` must be an integer ≥ 0 \(a JAX array is taken when it is an integer scalar\), "
                       r"got a float32 array of shape \(\)"),
    (jnp.zeros(2, jnp.int32), r"`epoch` must be an integer ≥ 0 .*got a int32 array of shape \(2,\)"),
    (jnp.bool_(True), r"`epoch` must be an integer ≥ 0 .*got a bool array of shape \(\)"),
])
def test_a_jax_array_that_is_not_an_integer_scalar_is_refused_by_name(value, message):
    with pytest.raises(TypeError, match=message):
        fn.engine.step_key(KEY, value, 0)
    with pytest.raises(TypeError, match=message):
        jax.jit(lambda epoch: fn.engine.step_key(KEY, epoch, 0))(value)


def test_python_and_numpy_integers_are_checked_at_the_entry():
    with pytest.raises(ValueError, match=r"`step` must be an integer ≥ 0, got -1"):
        fn.engine.step_key(KEY, 0, np.int64(-1))
    with pytest.raises(ValueError, match=r"`epoch` must be an integer ≥ 0, got -2"):
        shuffled_batch_rows(KEY, 10, 3, -2)

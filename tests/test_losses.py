"""Losses: stable values from logits, hand-written deltas against jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn
from funcnet import losses

HUGE = jnp.array([[1e4], [-1e4], [1e4], [-1e4], [0.0]], jnp.float32)
HUGE_LABELS = jnp.array([[0.0], [1.0], [1.0], [0.0], [1.0]], jnp.float32)


def test_logloss_is_finite_and_exact_for_huge_logits():
    values = losses.logloss_from_logits(HUGE, HUGE_LABELS)
    np.testing.assert_allclose(values, [1e4, 1e4, 0.0, 0.0, np.log(2)], rtol=1e-6)
    delta = losses.logloss_delta(HUGE, HUGE_LABELS)
    np.testing.assert_allclose(delta[:, 0], [1.0, -1.0, 0.0, 0.0, -0.5])


@pytest.mark.x64
def test_logloss_equals_the_articles_formula_where_that_is_finite():
    z = jnp.linspace(-8, 8, 33, dtype=jnp.float64)[:, None]
    y = (jnp.arange(33) % 2).astype(jnp.float64)[:, None]
    a = jax.nn.sigmoid(z)
    article = -(y * jnp.log(a) + (1 - y) * jnp.log(1 - a))
    np.testing.assert_allclose(losses.logloss_from_logits(z, y), article[:, 0], rtol=1e-12)


def test_cross_entropy_is_finite_for_huge_logits_with_integer_or_one_hot_labels():
    z = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], jnp.float32)
    labels = jnp.array([1, 1])
    values = losses.cross_entropy_from_logits(z, labels)
    np.testing.assert_allclose(values, [2e4, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(values, losses.cross_entropy_from_logits(z, jax.nn.one_hot(labels, 3)))
    np.testing.assert_allclose(losses.cross_entropy_delta(z, labels), [[1, -1, 0], [0, 0, 0]], atol=1e-6)


@pytest.mark.x64
@pytest.mark.parametrize(
    "loss_name, output",
    [("mse", "identity"), ("mse", "sigmoid"), ("mse", "tanh"), ("mse", "relu"), ("mse", "leaky_relu"),
     ("mse", "softmax"), ("logloss", "sigmoid"), ("cross_entropy", "softmax")],
)
def test_output_delta_is_the_gradient_of_the_per_sample_loss(loss_name, output):
    loss, activation = fn.losses.get_loss(loss_name), fn.activations.get_activation(output)
    key_z, key_y = jax.random.split(jax.random.key(7))
    z = 3 * jax.random.normal(key_z, (16, 3), jnp.float64)
    if loss_name == "cross_entropy":
        y = jax.random.randint(key_y, (16,), 0, 3)
    elif loss_name == "logloss":
        y = jax.random.bernoulli(key_y, 0.5, (16, 3)).astype(jnp.float64)
    else:
        y = jax.random.normal(key_y, (16, 3), jnp.float64)
    expected = jax.grad(lambda z_: jnp.sum(loss.per_sample(z_, y, activation)))(z)
    np.testing.assert_allclose(loss.output_delta(z, y, activation), expected, rtol=1e-10, atol=1e-14)


def test_mse_is_the_true_mean_squared_error():
    predictions = jnp.array([[1.0, 2.0], [3.0, 5.0]])
    targets = jnp.array([[0.0, 2.0], [3.0, 1.0]])
    np.testing.assert_allclose(losses.squared_error(predictions, targets), [0.5, 8.0])
    np.testing.assert_allclose(losses.d_squared_error(predictions, targets), [[1.0, 0.0], [0.0, 4.0]])


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'; expected one of mse, mae, huber, logloss, cross_entropy, or your own"):
        fn.losses.get_loss("hinge")

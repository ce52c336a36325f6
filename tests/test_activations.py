"""Every hand-written derivative against jax.grad, including far out on both tails."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn
from funcnet import activations

ELEMENTWISE = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]


def sample_points(dtype):
    """Random points plus large |x| and exact zero-free tails (kinks are avoided: z=0 is tested apart)."""
    random = jax.random.normal(jax.random.key(0), (200,), dtype) * 5
    tails = jnp.array([-1e4, -1e3, -50.0, -20.0, 20.0, 50.0, 1e3, 1e4], dtype)
    return jnp.concatenate([random, tails])


@pytest.mark.parametrize("dtype", [jnp.float32, pytest.param(jnp.float64, marks=pytest.mark.x64)])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_jax_grad(name, dtype):
    activation = fn.activations.get_activation(name, negative_slope=0.2)
    z = sample_points(dtype)
    expected = jax.vmap(jax.grad(activation.apply))(z)
    got = activation.derivative(z)
    assert got.dtype == dtype
    assert bool(jnp.all(jnp.isfinite(got)))
    # tanh' = (1 - t)(1 + t) is rounded differently by jax (d + d·t): equal to a few ulps of 1.
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=4 * jnp.finfo(dtype).eps)


@pytest.mark.x64
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_backward_is_derivative_times_upstream(name):
    activation = fn.activations.get_activation(name)
    z = sample_points(jnp.float64).reshape(26, 8)
    upstream = jax.random.normal(jax.random.key(1), z.shape, jnp.float64)
    _, vjp = jax.vjp(activation.apply, z)
    np.testing.assert_allclose(activation.backward(z, upstream), vjp(upstream)[0],
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, alpha, expected", [("relu", 1.0, 0.0), ("leaky_relu", 1.0, 0.01), ("elu", 1.0, 1.0),
                                                  ("elu", 0.5, 0.5)])
def test_kink_derivative_matches_jax_convention(name, alpha, expected):
    # elu's forward once took minimum(z, 0), whose tie jax.grad splits: elu'(0) was α/2 by autodiff, α by hand
    activation = fn.activations.get_activation(name, alpha=alpha)
    zero = jnp.zeros((1,))
    assert activation.derivative(zero)[0] == np.float32(expected)
    assert jax.grad(lambda z: activation.apply(z).sum())(zero)[0] == np.float32(expected)


def test_leaky_relu_slope_is_configurable():
    z = jnp.array([-2.0, 3.0])
    np.testing.assert_allclose(activations.leaky_relu(z, 0.3), [-0.6, 3.0])
    np.testing.assert_allclose(activations.d_leaky_relu(z, 0.3), [0.3, 1.0])
    model = fn.mlp([1, 1], hidden="leaky_relu", output="leaky_relu", negative_slope=0.3)
    np.testing.assert_allclose(model.output_fn.apply(z), [-0.6, 3.0])


@pytest.mark.x64
def test_softmax_backward_matches_vjp_on_large_logits():
    z = jnp.array([[1e4, -1e4, 0.0], [1.0, 2.0, 3.0], [-50.0, 50.0, 49.0]], jnp.float64)
    upstream = jnp.array([[0.3, -1.0, 2.0], [1.0, 0.0, -1.0], [0.5, 0.5, -2.0]], jnp.float64)
    _, vjp = jax.vjp(activations.softmax, z)
    got = activations.softmax_backward(z, upstream)
    assert bool(jnp.all(jnp.isfinite(got)))
    np.testing.assert_allclose(got, vjp(upstream)[0], rtol=1e-12, atol=1e-300)


def test_sigmoid_saturates_without_overflow():
    values = activations.sigmoid(jnp.array([-1e4, 1e4], jnp.float32))
    np.testing.assert_array_equal(values, [0.0, 1.0])


def test_softplus_is_log_one_plus_exp_and_jax_grad_of_it_is_sigmoid_everywhere():
    # one exp and one log1p for both signs: the value and jax.grad's σ(z) hold at 0, on both tails and at ±inf
    z = jnp.concatenate([sample_points(jnp.float32), jnp.array([0.0, 1e-6, -1e-6, 1e30, -1e30, jnp.inf, -jnp.inf])])
    np.testing.assert_allclose(activations.softplus(z), jax.nn.softplus(z), rtol=1e-6, atol=0)
    gradient = jax.vmap(jax.grad(activations.softplus))(z)
    np.testing.assert_allclose(gradient, jax.nn.sigmoid(z), rtol=0, atol=2e-7)
    assert float(jax.grad(activations.softplus)(0.0)) == 0.5


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'swish'; expected one of identity, sigmoid, tanh, relu, leaky_relu, elu, gelu, gelu_tanh, softplus, silu, softmax, or your own"):
        fn.activations.get_activation("swish")


def test_hidden_activations_repeats_one_name_or_takes_one_per_hidden_layer():
    get = activations.get_activation
    assert activations.hidden_activations("tanh", 3) == (get("tanh"),) * 3
    assert activations.hidden_activations(["relu", "elu"], 2, alpha=0.5) == (get("relu"), get("elu", alpha=0.5))
    with pytest.raises(ValueError, match=r"^`activation` has 1 activations but --layers 3,3 has 2 hidden layers; "):
        activations.hidden_activations(["relu"], 2, name="activation", layers="--layers 3,3")
    with pytest.raises(ValueError, match=r"^`activation='softmax'` can only be an output activation"):
        activations.hidden_activations("softmax", 2, name="activation")

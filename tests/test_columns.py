"""The column-major training path (funcnet.columns) computes the reference gradients exactly."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from funcnet import columns
from test_gradients import COMBINATIONS, PRECISIONS, make_problem, max_relative


@functools.partial(jax.jit, static_argnums=0)
def reference_and_columns(model, params, x, y, weights=None):
    """``(reference, column autodiff, column manual)``, each ``(loss, grads)``, in one compiled call."""
    reference = jax.value_and_grad(model.loss)(params, x, y, weights)
    return (reference,
            columns.value_and_grad_fn(model, "autodiff")(params, x, y, weights),
            columns.value_and_grad_fn(model, "manual")(params, x, y, weights))


def architecture(index):
    """A random architecture of 2 to 4 layers (widths 1-7) and a batch of 1-12, fixed by ``index``."""
    rng = np.random.default_rng(index)
    return list(rng.integers(1, 8, size=rng.integers(3, 6))), int(rng.integers(1, 13)), index


@pytest.mark.parametrize("dtype, value_rtol, grad_rtol", PRECISIONS, ids=["float64", "float32"])
@pytest.mark.parametrize("index, hidden, output, loss", [(i, *c) for i, c in enumerate(COMBINATIONS)])
def test_column_gradients_equal_jax_grad_of_model_loss(index, hidden, output, loss, dtype, value_rtol,
                                                        grad_rtol):
    model, params, x, y = make_problem(hidden, output, loss, *architecture(index), dtype)
    (expected_value, expected), *computed = reference_and_columns(model, params, x, y)
    for value, grads in computed:
        chex.assert_trees_all_equal_shapes_and_dtypes(grads, params)
        np.testing.assert_allclose(value, expected_value, rtol=value_rtol)
        assert max_relative(grads, expected) < grad_rtol


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
def test_weighted_column_gradients_equal_the_reference(hidden):
    model, params, x, y = make_problem(hidden, "sigmoid", "logloss", [4, 5, 3, 2], 9, 3, jnp.float64)
    weights = jnp.array([1, 1, 0, 2, 1, 0, 1, 1, 0.5], jnp.float64)
    (expected_value, expected), *computed = reference_and_columns(model, params, x, y, weights)
    for value, grads in computed:
        np.testing.assert_allclose(value, expected_value, rtol=1e-12)
        assert max_relative(grads, expected) < 1e-10


def test_column_gradients_match_finite_differences():
    model, params, x, y = make_problem("tanh", "softmax", "cross_entropy", [3, 4, 3, 3], 6, 11, jnp.float64)
    numeric = fn.finite_difference_grad(model, params, x, y, epsilon=1e-6)
    _, *computed = reference_and_columns(model, params, x, y)
    for _, grads in computed:
        assert max_relative(grads, numeric) < 1e-7


class LinearTest(chex.TestCase):
    """``columns.linear`` is ``Wᵀ A`` with jax.grad's own derivative, jitted or not, vmapped or not."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.weights = jnp.asarray(rng.normal(size=(4, 3)), jnp.float64)
        self.inputs = jnp.asarray(rng.normal(size=(4, 7)), jnp.float64)

    @chex.variants(with_jit=True, without_jit=True)
    def test_value_and_pullback_equal_the_plain_product(self):
        def objective(product):
            return lambda weights, inputs: jnp.sum(jnp.sin(product(weights, inputs)))

        value, grads = self.variant(jax.value_and_grad(objective(columns.linear), argnums=(0, 1)))(
            self.weights, self.inputs)
        expected_value, expected = jax.value_and_grad(objective(lambda w, a: w.T @ a), argnums=(0, 1))(
            self.weights, self.inputs)
        chex.assert_shape(columns.linear(self.weights, self.inputs), (3, 7))
        np.testing.assert_allclose(value, expected_value, rtol=1e-14)
        chex.assert_trees_all_close(grads, expected, rtol=1e-13)

    def test_vmapped_pullback_equals_per_model_pullbacks(self):
        stacked = jnp.stack([self.weights, 2 * self.weights, -self.weights])
        grad = jax.grad(lambda w, a: jnp.sum(columns.linear(w, a) ** 2))
        batched = jax.vmap(grad, in_axes=(0, None))(stacked, self.inputs)
        for index in range(3):
            chex.assert_trees_all_close(batched[index], grad(stacked[index], self.inputs), rtol=1e-14)


@pytest.mark.parametrize("grad", fn.GRAD_MODES)
def test_train_step_applies_the_reference_gradient(grad):
    model, params, x, y = make_problem("relu", "identity", "mse", [5, 10, 10, 1], 16, 4, jnp.float64)
    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)
    new_params, _, value = fn.make_train_step(model, optimizer, grad)(params, state, x, y)
    expected_value, grads = fn.value_and_grad_fn(model, grad)(params, x, y)
    updates, _ = optimizer.update(grads, state, params)
    np.testing.assert_allclose(value, expected_value, rtol=1e-13)
    chex.assert_trees_all_close(new_params, optax.apply_updates(params, updates), rtol=1e-12)


def test_bad_grad_mode_is_rejected_by_name():
    model = fn.mlp([2, 1])
    with pytest.raises(ValueError, match="unknown grad 'numeric'; expected one of autodiff, manual"):
        columns.value_and_grad_fn(model, "numeric")

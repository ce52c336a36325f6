"""Manual backprop = jax.grad = finite differences, for every architecture the library accepts."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnet as fn

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]
PAIRS = [(output, "mse") for output in ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]]
PAIRS += [("sigmoid", "logloss"), ("softmax", "cross_entropy")]
COMBINATIONS = [(hidden, output, loss) for hidden, (output, loss) in itertools.product(HIDDEN, PAIRS)]


def make_problem(hidden, output, loss, widths, batch, seed, dtype, one_hot=False):
    """A model, params and a batch drawn with NumPy from `seed`; labels valid for the loss.

    NumPy (not jax.random) so that each random shape costs no compilation.
    """
    outputs = max(widths[-1], 2) if loss == "cross_entropy" else widths[-1]
    sizes = [*widths[:-1], outputs]
    model = fn.mlp(sizes, hidden=hidden, output=output, loss=loss, negative_slope=0.1)
    rng = np.random.default_rng(seed)
    # non-zero biases so that every bias gradient path is exercised
    params = [{"W": jnp.asarray(rng.normal(size=(n_in, n_out)) / np.sqrt(n_in), dtype),
               "b": jnp.asarray(0.1 * rng.normal(size=n_out), dtype)}
              for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    x = jnp.asarray(rng.normal(size=(batch, sizes[0])), dtype)
    if loss == "cross_entropy":
        labels = rng.integers(0, outputs, size=batch)
        y = jnp.asarray(np.eye(outputs)[labels], dtype) if one_hot else jnp.asarray(labels)
    elif loss == "logloss":
        y = jnp.asarray(rng.integers(0, 2, size=(batch, outputs)), dtype)
    else:
        y = jnp.asarray(rng.normal(size=(batch, outputs)), dtype)
    return model, params, x, y


architectures = st.tuples(
    st.lists(st.integers(1, 7), min_size=2, max_size=5),  # widths: depth 1 to 4 layers
    st.integers(1, 12),  # batch size
    st.integers(0, 2**16),  # seed
)


both_gradients = fn.manual_and_autodiff


def max_relative(first, second):
    return max(row.max_rel for row in fn.compare_grad_trees(first, second))


# (dtype, loss-value rtol, max relative gradient difference): float64 tight, float32 sensible
PRECISIONS = [(jnp.float64, 1e-12, 1e-10), (jnp.float32, 1e-5, 1e-5)]


@pytest.mark.parametrize("dtype, value_rtol, grad_rtol", PRECISIONS, ids=["float64", "float32"])
@pytest.mark.parametrize("hidden, output, loss", COMBINATIONS)
@settings(max_examples=3, deadline=None, derandomize=True)
@given(architecture=architectures)
def test_manual_grad_matches_autodiff(hidden, output, loss, dtype, value_rtol, grad_rtol, architecture):
    model, params, x, y = make_problem(hidden, output, loss, *architecture, dtype)
    (value, manual), (expected_value, autodiff) = both_gradients(model, params, x, y)
    chex.assert_trees_all_equal_shapes_and_dtypes(manual, params)
    np.testing.assert_allclose(value, expected_value, rtol=value_rtol)
    assert max_relative(manual, autodiff) < grad_rtol


@pytest.mark.parametrize("hidden, output, loss", COMBINATIONS)
def test_both_gradients_match_central_finite_differences(hidden, output, loss):
    model, params, x, y = make_problem(hidden, output, loss, [3, 4, 3, 2], 6, 11, jnp.float64)
    numeric = fn.finite_difference_grad(model, params, x, y, epsilon=1e-6)
    (_, manual), (_, autodiff) = both_gradients(model, params, x, y)
    assert max_relative(manual, numeric) < 1e-7
    assert max_relative(autodiff, numeric) < 1e-7


@pytest.mark.parametrize("hidden", HIDDEN)
def test_weighted_manual_grad_is_the_gradient_of_the_weighted_mean(hidden):
    model, params, x, y = make_problem(hidden, "identity", "mse", [4, 5, 2], 9, 3, jnp.float64)
    weights = jnp.array([1, 1, 0, 2, 1, 0, 1, 1, 0.5], jnp.float64)
    (value, manual), (expected_value, autodiff) = both_gradients(model, params, x, y, weights)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12)
    assert max_relative(manual, autodiff) < 1e-10
    # zero weight means the row does not count at all
    keep = weights > 0
    _, (_, on_kept_rows) = both_gradients(model, params, x[keep], y[keep], weights[keep])
    assert max_relative(manual, on_kept_rows) < 1e-10


def test_one_hot_and_integer_labels_give_the_same_gradient():
    model, params, x, labels = make_problem("tanh", "softmax", "cross_entropy", [3, 4, 3], 8, 5, jnp.float64)
    _, _, _, one_hot = make_problem("tanh", "softmax", "cross_entropy", [3, 4, 3], 8, 5, jnp.float64,
                                    one_hot=True)
    chex.assert_trees_all_close(model.manual_grad(params, x, labels), model.manual_grad(params, x, one_hot),
                                rtol=1e-14)


def test_saturated_classifiers_give_finite_gradients():
    model = fn.mlp([1, 1], hidden="relu", output="sigmoid", loss="logloss")
    params = [{"W": jnp.array([[1e4]], jnp.float32), "b": jnp.zeros((1,), jnp.float32)}]
    x = jnp.array([[1.0], [-1.0]], jnp.float32)
    y = jnp.array([[0.0], [1.0]], jnp.float32)  # both confidently wrong: loss 1e4
    value, grads = model.manual_grad(params, x, y)
    np.testing.assert_allclose(value, 1e4, rtol=1e-6)
    chex.assert_tree_all_finite(grads)
    chex.assert_trees_all_close(grads, jax.grad(model.loss)(params, x, y), rtol=1e-6)


def test_compare_grads_reports_every_layer_and_leaf():
    model, params, x, y = make_problem("relu", "identity", "mse", [5, 10, 10, 1], 32, 0, jnp.float64)
    rows = fn.compare_grads(model, params, x, y)
    assert [(row.layer, row.leaf, row.shape) for row in rows] == [
        (0, "W", (5, 10)), (0, "b", (10,)), (1, "W", (10, 10)), (1, "b", (10,)),
        (2, "W", (10, 1)), (2, "b", (1,))]
    assert all(row.max_abs < 1e-12 and row.max_rel < 1e-12 for row in rows)
    table = fn.format_differences(rows)
    assert "max rel diff" in table and len(table.splitlines()) == 7


def test_compare_grads_detects_a_wrong_gradient():
    model, params, x, y = make_problem("tanh", "identity", "mse", [2, 3, 1], 4, 0, jnp.float64)
    _, grads = model.manual_grad(params, x, y)
    broken = [dict(layer) for layer in grads]
    broken[0]["W"] = broken[0]["W"] * 1.01
    rows = fn.compare_grad_trees(broken, jax.grad(model.loss)(params, x, y))
    assert rows[0].max_rel == pytest.approx(0.01 / 1.01, rel=1e-6)
    assert rows[1].max_rel < 1e-12


class ManualGradUnderTransformsTest(chex.TestCase):
    """model.manual_grad and model.loss are plain pure functions: jit and no-jit agree."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_manual_grad_is_the_same_with_and_without_jit(self):
        model, params, x, y = make_problem("relu", "identity", "mse", [5, 10, 10, 1], 16, 1, jnp.float32)
        value, grads = self.variant(model.manual_grad)(params, x, y)
        expected_value, expected = jax.value_and_grad(model.loss)(params, x, y)
        chex.assert_trees_all_close((value, grads), (expected_value, expected), rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_forward_shape_and_vmap_over_models(self):
        model, params, x, _ = make_problem("tanh", "sigmoid", "logloss", [2, 3, 1], 4, 2, jnp.float32)
        chex.assert_shape(self.variant(model.forward)(params, x), (4, 1))
        stacked = jax.vmap(model.init)(jax.random.split(jax.random.key(0), 3))
        outputs = jax.vmap(model.forward, in_axes=(0, None))(stacked, x)
        chex.assert_shape(outputs, (3, 4, 1))

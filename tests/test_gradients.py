"""Manual backprop = jax.grad = finite differences, for every architecture the library accepts.

Compiling is what these tables cost, so they share compilations:

* every (hidden, output, loss) combination, on one architecture, comes out of
  ONE jitted call per dtype (:func:`every_gradient`); each combination is still
  its own test id, reading its row of that result;
* random shapes (hypothesis: depth 1–4, widths and batches from 1) run with a
  combination drawn per example: the fold's shape mechanics don't depend on
  which activation sits in a layer;
* finite differences are pairwise — every hidden activation under one output,
  every output/loss under one hidden activation — all in ONE jitted call
  (:func:`pairwise_finite_differences`), and compare against the float64
  table's manual and autodiff rows (same params, same batch), because
  manual = autodiff is already proven on the full product;
* the smaller cases (weighted rows, label kinds, saturation, a wrong
  gradient) run jitted, one program each, not op by op.
"""

import functools
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
PAIRWISE = sorted({(hidden, "identity", "mse") for hidden in HIDDEN} | {("tanh", *pair) for pair in PAIRS})
TABLE_WIDTHS, TABLE_BATCH, TABLE_SEED = [3, 4, 3, 2], 6, 11


def make_model(hidden, output, loss, sizes):
    return fn.mlp(sizes, hidden=hidden, output=output, loss=loss, negative_slope=0.1)


def to_device(array, dtype):
    """A NumPy array as a JAX array of ``dtype``, cast by NumPy (``jnp.asarray`` compiles a program per shape)."""
    return jax.device_put(np.asarray(array, dtype))


def make_params(sizes, rng, dtype):
    # non-zero biases so that every bias gradient path is exercised
    return [{"W": to_device(rng.normal(size=(n_in, n_out)) / np.sqrt(n_in), dtype),
             "b": to_device(0.1 * rng.normal(size=n_out), dtype)}
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def make_targets(loss, outputs, batch, rng, dtype, one_hot=False):
    if loss == "cross_entropy":
        labels = rng.integers(0, outputs, size=batch)
        return to_device(np.eye(outputs)[labels], dtype) if one_hot else to_device(labels, jnp.int32)
    if loss == "logloss":
        return to_device(rng.integers(0, 2, size=(batch, outputs)), dtype)
    return to_device(rng.normal(size=(batch, outputs)), dtype)


def make_problem(hidden, output, loss, widths, batch, seed, dtype, one_hot=False):
    """A model, params and a batch drawn with NumPy from `seed`; labels valid for the loss.

    NumPy (not jax.random) so that each random shape costs no compilation.
    """
    outputs = max(widths[-1], 2) if loss == "cross_entropy" else widths[-1]
    sizes = [*widths[:-1], outputs]
    rng = np.random.default_rng(seed)
    params = make_params(sizes, rng, dtype)
    x = to_device(rng.normal(size=(batch, sizes[0])), dtype)
    return make_model(hidden, output, loss, sizes), params, x, make_targets(loss, outputs, batch, rng, dtype, one_hot)


def table_problem(dtype):
    """The table's params, batch and one target array per loss (the last width, 2, suits every loss)."""
    rng = np.random.default_rng(TABLE_SEED)
    params = make_params(TABLE_WIDTHS, rng, dtype)
    x = to_device(rng.normal(size=(TABLE_BATCH, TABLE_WIDTHS[0])), dtype)
    targets = {loss: make_targets(loss, TABLE_WIDTHS[-1], TABLE_BATCH, rng, dtype)
               for loss in ("mse", "logloss", "cross_entropy")}
    return params, x, targets


@functools.partial(jax.jit, static_argnums=0)
def every_gradient(combinations, params, x, targets):
    """``[((loss, grads) by hand, (loss, grads) by jax.grad) for each combination]``: one program."""
    return [fn.gradcheck.manual_and_autodiff(make_model(*combination, TABLE_WIDTHS), params, x, targets[combination[2]])
            for combination in combinations]


# (dtype, loss-value rtol, max relative gradient difference): float64 tight, float32 sensible
PRECISIONS = [pytest.param((jnp.float64, 1e-12, 1e-10), marks=pytest.mark.x64, id="float64"),
              pytest.param((jnp.float32, 1e-5, 1e-5), id="float32")]


@functools.lru_cache(maxsize=None)
def table_of(dtype):
    """``(problem, {combination: gradients})`` for one dtype, computed once per module run."""
    problem = table_problem(dtype)
    return problem, dict(zip(COMBINATIONS, every_gradient(tuple(COMBINATIONS), *problem)))


@pytest.fixture(scope="module", params=PRECISIONS)
def table(request):
    """``(dtype, value_rtol, grad_rtol, problem, {combination: gradients})`` for one dtype."""
    dtype, value_rtol, grad_rtol = request.param
    return dtype, value_rtol, grad_rtol, *table_of(dtype)


@jax.jit
def pairwise_finite_differences(params, x, targets):
    """``{combination: fn.gradcheck.finite_difference_grad(...)}`` for every PAIRWISE combination: one program.

    One chunk holds all 39 coordinates of the table's params.
    """
    return {combination: fn.gradcheck.finite_difference_grad(make_model(*combination, TABLE_WIDTHS), params, x,
                                                   targets[combination[2]], epsilon=1e-6, chunk_size=64)
            for combination in PAIRWISE}


def both_gradients(model, params, x, y, weights=None):
    return fn.gradcheck.manual_and_autodiff(model, params, x, y, weights)


def max_relative(first, second):
    return max(row.max_rel for row in fn.gradcheck.compare_grad_trees(first, second))


@pytest.mark.parametrize("combination", COMBINATIONS, ids="-".join)
def test_manual_grad_matches_autodiff(table, combination):
    dtype, value_rtol, grad_rtol, (params, _, _), gradients = table
    (value, manual), (expected_value, autodiff) = gradients[combination]
    chex.assert_trees_all_equal_shapes_and_dtypes(manual, params)
    chex.assert_trees_all_equal_shapes_and_dtypes(autodiff, params)
    assert value.dtype == dtype
    np.testing.assert_allclose(value, expected_value, rtol=value_rtol)
    assert max_relative(manual, autodiff) < grad_rtol


architectures = st.tuples(
    st.lists(st.integers(1, 7), min_size=2, max_size=5),  # widths: depth 1 to 4 layers
    st.integers(1, 12),  # batch size
    st.integers(0, 2**16),  # seed
)


@pytest.mark.parametrize("precision", PRECISIONS)
@settings(max_examples=10, deadline=None, derandomize=True)
@given(architecture=architectures, combination=st.sampled_from(COMBINATIONS))
def test_manual_grad_matches_autodiff_on_random_shapes(precision, architecture, combination):
    dtype, value_rtol, grad_rtol = precision
    model, params, x, y = make_problem(*combination, *architecture, dtype)
    (value, manual), (expected_value, autodiff) = both_gradients(model, params, x, y)
    chex.assert_trees_all_equal_shapes_and_dtypes(manual, params)
    np.testing.assert_allclose(value, expected_value, rtol=value_rtol)
    assert max_relative(manual, autodiff) < grad_rtol


@functools.lru_cache(maxsize=None)
def pairwise_numeric():
    """:func:`pairwise_finite_differences` of the float64 table problem (x64 must be on)."""
    return pairwise_finite_differences(*table_problem(jnp.float64))


@pytest.mark.x64
@pytest.mark.parametrize("combination", PAIRWISE, ids="-".join)
def test_both_gradients_match_central_finite_differences(combination):
    (_, manual), (_, autodiff) = table_of(jnp.float64)[1][combination]
    numeric = pairwise_numeric()[combination]
    assert max_relative(manual, numeric) < 1e-7
    assert max_relative(autodiff, numeric) < 1e-7


WEIGHTS = [1, 1, 0, 2, 1, 0, 1, 1, 0.5]


@functools.partial(jax.jit, static_argnums=0)
def weighted_gradients(models, params, x, y, weights):
    """``[(both gradients with weights, both on the rows of non-zero weight only) per model]``: one program."""
    keep = np.flatnonzero(np.asarray(WEIGHTS) > 0)  # static: the kept rows' shapes are known when tracing
    return [(fn.gradcheck.manual_and_autodiff(model, params, x, y, weights),
             fn.gradcheck.manual_and_autodiff(model, params, x[keep], y[keep], weights[keep])) for model in models]


@functools.lru_cache(maxsize=None)
def weighted_results():
    """``{hidden: weighted_gradients row}``; the params and batch are the same for every hidden activation."""
    problems = [make_problem(hidden, "identity", "mse", [4, 5, 2], 9, 3, jnp.float64) for hidden in HIDDEN]
    models = tuple(model for model, *_ in problems)
    rows = weighted_gradients(models, *problems[0][1:], to_device(WEIGHTS, jnp.float64))
    return dict(zip(HIDDEN, rows))


@pytest.mark.x64
@pytest.mark.parametrize("hidden", HIDDEN)
def test_weighted_manual_grad_is_the_gradient_of_the_weighted_mean(hidden):
    ((value, manual), (expected_value, autodiff)), (_, (_, on_kept_rows)) = weighted_results()[hidden]
    np.testing.assert_allclose(value, expected_value, rtol=1e-12)
    assert max_relative(manual, autodiff) < 1e-10
    # zero weight means the row does not count at all
    assert max_relative(manual, on_kept_rows) < 1e-10


@functools.partial(jax.jit, static_argnums=0)
def manual_grads(model, params, x, *targets):
    """``model.manual_grad(params, x, y)`` for each ``y`` in ``targets``: one program."""
    return [model.manual_grad(params, x, y) for y in targets]


@pytest.mark.x64
def test_one_hot_and_integer_labels_give_the_same_gradient():
    model, params, x, labels = make_problem("tanh", "softmax", "cross_entropy", [3, 4, 3], 8, 5, jnp.float64)
    _, _, _, one_hot = make_problem("tanh", "softmax", "cross_entropy", [3, 4, 3], 8, 5, jnp.float64,
                                    one_hot=True)
    assert labels.dtype == jnp.int32 and one_hot.shape == (8, 3)
    from_labels, from_one_hot = manual_grads(model, params, x, labels, one_hot)
    chex.assert_trees_all_close(from_labels, from_one_hot, rtol=1e-14)


def test_saturated_classifiers_give_finite_gradients():
    model = fn.mlp([1, 1], hidden="relu", output="sigmoid", loss="logloss")
    params = [{"W": jnp.array([[1e4]], jnp.float32), "b": jnp.zeros((1,), jnp.float32)}]
    x = jnp.array([[1.0], [-1.0]], jnp.float32)
    y = jnp.array([[0.0], [1.0]], jnp.float32)  # both confidently wrong: loss 1e4
    (value, grads), (_, autodiff) = both_gradients(model, params, x, y)
    np.testing.assert_allclose(value, 1e4, rtol=1e-6)
    chex.assert_tree_all_finite(grads)
    chex.assert_trees_all_close(grads, autodiff, rtol=1e-6)


@pytest.mark.x64
def test_compare_grads_reports_every_layer_and_leaf():
    model, params, x, y = make_problem("relu", "identity", "mse", [5, 10, 10, 1], 32, 0, jnp.float64)
    rows = fn.gradcheck.compare_grads(model, params, x, y)
    assert [(row.layer, row.leaf, row.shape) for row in rows] == [
        (0, "W", (5, 10)), (0, "b", (10,)), (1, "W", (10, 10)), (1, "b", (10,)),
        (2, "W", (10, 1)), (2, "b", (1,))]
    assert all(row.max_abs < 1e-12 and row.max_rel < 1e-12 for row in rows)
    table = fn.gradcheck.format_differences(rows)
    assert "max rel diff" in table and len(table.splitlines()) == 7


@pytest.mark.x64
def test_compare_grads_detects_a_wrong_gradient():
    model, params, x, y = make_problem("tanh", "identity", "mse", [2, 3, 1], 4, 0, jnp.float64)
    (_, grads), (_, autodiff) = both_gradients(model, params, x, y)
    broken = [dict(layer) for layer in grads]
    broken[0]["W"] = broken[0]["W"] * 1.01
    rows = fn.gradcheck.compare_grad_trees(broken, autodiff)
    assert rows[0].max_rel == pytest.approx(0.01 / 1.01, rel=1e-6)
    assert rows[1].max_rel < 1e-12


@functools.partial(jax.jit, static_argnums=0)
def autodiff_value_and_grad(model, params, x, y):
    """The reference ``jax.value_and_grad(model.loss)``, compiled once for both variants below."""
    return jax.value_and_grad(model.loss)(params, x, y)


class ManualGradUnderTransformsTest(chex.TestCase):
    """model.manual_grad and model.loss are plain pure functions: jit and no-jit agree."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_manual_grad_is_the_same_with_and_without_jit(self):
        model, params, x, y = make_problem("relu", "identity", "mse", [5, 10, 10, 1], 16, 1, jnp.float32)
        value, grads = self.variant(model.manual_grad)(params, x, y)
        expected_value, expected = autodiff_value_and_grad(model, params, x, y)
        chex.assert_trees_all_close((value, grads), (expected_value, expected), rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_forward_shape_and_vmap_over_models(self):
        model, params, x, _ = make_problem("tanh", "sigmoid", "logloss", [2, 3, 1], 4, 2, jnp.float32)
        chex.assert_shape(self.variant(model.forward)(params, x), (4, 1))
        stacked = jax.vmap(model.init)(jax.random.split(jax.random.key(0), 3))
        outputs = jax.vmap(model.forward, in_axes=(0, None))(stacked, x)
        chex.assert_shape(outputs, (3, 4, 1))

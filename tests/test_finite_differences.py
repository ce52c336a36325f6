"""Finite differences in bounded memory, sampled coordinates, and comparing trees that have gaps."""

import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import funcnet as fn

pytestmark = pytest.mark.x64  # gradients compared in float64 (float32 rows ask for float32 explicitly)
from funcnet.gradcheck import DEFAULT_MAX_COORDINATES, leaf_difference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def to_device(array):
    """A NumPy array as a float64 JAX array (``jnp.asarray`` would compile a program per shape)."""
    return jax.device_put(np.asarray(array, np.float64))


def make_problem(widths, batch, seed):
    """An MLP, float64 params with non-zero biases, and a regression batch, all from NumPy `seed`."""
    model = fn.mlp(widths, hidden="tanh")
    rng = np.random.default_rng(seed)
    params = [{"W": to_device(rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)),
               "b": to_device(0.1 * rng.normal(size=n_out))}
              for n_in, n_out in zip(widths[:-1], widths[1:])]
    x = to_device(rng.normal(size=(batch, widths[0])))
    y = to_device(rng.normal(size=(batch, widths[-1])))
    return model, params, x, y


def parameter_count(params):
    return sum(leaf.size for leaf in jax.tree.leaves(params))


def finite_count(tree):
    return sum(int(np.isfinite(np.asarray(leaf)).sum()) for leaf in jax.tree.leaves(tree))


def max_relative(first, second):
    return max(row.max_rel for row in fn.gradcheck.compare_grad_trees(first, second))


@functools.partial(jax.jit, static_argnums=0)
def autodiff_grad(model, params, x, y, weights=None, key=None):
    """The reference ``jax.grad(model.loss)``, compiled once per model and shapes (eagerly, every op compiles)."""
    if key is None:
        return jax.grad(model.loss)(params, x, y, weights)
    return jax.grad(lambda p: model.loss(p, x, y, weights, key=key))(params)


TRACED_LOSSES = []  # one entry each time ScaleShiftDropout.loss is traced


@dataclasses.dataclass(frozen=True)
class ScaleShiftDropout:
    """A stand-in model with non-W/b leaves, a layer without params, and a dropout `key`.

    ``h = dropout(x ⊙ scale + shift)``, ``ŷ = tanh(h W + b)``, loss the (weighted) mean of ``|ŷ - y|²``.
    """

    def loss(self, params, x, y, weights=None, *, key=None):
        TRACED_LOSSES.append(key is not None)
        hidden = x * params[0]["scale"][None, :] + params[0]["shift"][None, :]
        if key is not None:
            hidden = hidden * jax.random.bernoulli(key, 0.5, hidden.shape) * 2
        per_sample = jnp.sum((jnp.tanh(hidden @ params[2]["W"] + params[2]["b"][None, :]) - y) ** 2, axis=1)
        weights = jnp.ones_like(per_sample) if weights is None else weights
        return jnp.sum(weights * per_sample) / jnp.sum(weights)


def scale_shift_problem():
    rng = np.random.default_rng(3)
    params = [{"scale": to_device(rng.normal(size=3)), "shift": to_device(rng.normal(size=3))},
              {},
              {"W": to_device(rng.normal(size=(3, 2))), "b": to_device(rng.normal(size=2))}]
    return ScaleShiftDropout(), params, to_device(rng.normal(size=(7, 3))), to_device(rng.normal(size=(7, 2)))


# ----------------------------------------------------------------------------- every coordinate


CHUNKED_EPSILON = 1e-3


@functools.lru_cache(maxsize=None)
def perturbing_every_coordinate_at_once():
    """``(model, params, x, y, expected)``: the old formula, one row of eye(P) · ε per coordinate, computed once."""
    model, params, x, y = make_problem([3, 4, 5, 2], 6, 0)  # P = 16 + 25 + 12 = 53 <= 4096: all coordinates
    flat, unravel = ravel_pytree(params)

    def central_difference(step):
        return ((model.loss(unravel(flat + step), x, y) - model.loss(unravel(flat - step), x, y))
                / (2 * CHUNKED_EPSILON))

    return model, params, x, y, unravel(jax.jit(jax.vmap(central_difference))(jnp.eye(flat.size) * CHUNKED_EPSILON))


@pytest.mark.parametrize("chunk_size", [1, 5, 41, 1000])
def test_chunked_differences_equal_perturbing_every_coordinate_at_once(chunk_size):
    # the two ways may round the loss a few ulps (~1e-16) apart, and a difference quotient multiplies
    # that by 1/2ε: with ε = 1e-3 the formulas must agree to 1e-12 (with ε = 1e-6 only to ~1e-9)
    model, params, x, y, expected = perturbing_every_coordinate_at_once()
    numeric = fn.gradcheck.finite_difference_grad(model, params, x, y, CHUNKED_EPSILON, chunk_size=chunk_size)
    assert jax.tree.structure(numeric) == jax.tree.structure(params)
    for got, want, leaf in zip(jax.tree.leaves(numeric), jax.tree.leaves(expected), jax.tree.leaves(params)):
        assert got.shape == leaf.shape and got.dtype == leaf.dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_every_coordinate_is_evaluated_when_there_are_at_most_max_coordinates():
    model, params, x, y = make_problem([3, 4, 2], 5, 1)  # P = 26
    for max_coordinates in (26, 27, None):
        numeric = fn.gradcheck.finite_difference_grad(model, params, x, y, max_coordinates=max_coordinates)
        assert finite_count(numeric) == 26
        assert max_relative(autodiff_grad(model, params, x, y), numeric) < 1e-7


def test_weights_reach_the_loss():
    model, params, x, y = make_problem([3, 4, 2], 6, 2)
    weights = to_device([1, 0, 2, 1, 0.5, 0])
    numeric = fn.gradcheck.finite_difference_grad(model, params, x, y, weights=weights)
    assert max_relative(autodiff_grad(model, params, x, y, weights), numeric) < 1e-7
    assert max_relative(autodiff_grad(model, params, x, y), numeric) > 1e-3


def test_key_reaches_the_loss_as_a_keyword_and_the_same_mask_is_used_on_both_sides():
    model, params, x, y = scale_shift_problem()
    key = jax.random.key(5)
    numeric = fn.gradcheck.finite_difference_grad(model, params, x, y, key=key)
    with_dropout = autodiff_grad(model, params, x, y, key=key)
    assert max_relative(with_dropout, numeric) < 1e-7
    assert max_relative(autodiff_grad(model, params, x, y), numeric) > 1e-3


def test_params_with_other_leaf_names_and_an_empty_layer_keep_their_structure():
    model, params, x, y = scale_shift_problem()
    numeric = fn.gradcheck.finite_difference_grad(model, params, x, y)
    assert jax.tree.structure(numeric) == jax.tree.structure(params)
    assert numeric[1] == {}
    assert max_relative(autodiff_grad(model, params, x, y), numeric) < 1e-7


def test_epsilon_and_the_sample_do_not_recompile():
    model, params, x, y = scale_shift_problem()
    weights = np.arange(1.0, 8.0)  # a weights shape no other test uses, so the first call compiles
    fn.gradcheck.finite_difference_grad(model, params, x, y, weights=to_device(weights), max_coordinates=8)
    traced = len(TRACED_LOSSES)
    assert traced > 0
    fn.gradcheck.finite_difference_grad(model, params, x, y, 1e-5, weights=to_device(weights), max_coordinates=8,
                              sample_seed=1)
    fn.gradcheck.finite_difference_grad(model, params, x, y, 2e-5, weights=to_device(weights + 1), max_coordinates=8,
                              sample_seed=2)
    assert len(TRACED_LOSSES) == traced


# ----------------------------------------------------------------------------- a sample of coordinates


def test_a_sample_has_max_coordinates_finite_entries_spread_over_every_leaf_and_nan_elsewhere():
    model, params, x, y = make_problem([3, 6, 5, 2], 8, 4)  # P = 24 + 35 + 12 = 71; leaf sizes 18, 6, 30, 5, 10, 2
    numeric = fn.gradcheck.finite_difference_grad(model, params, x, y, max_coordinates=30)
    assert jax.tree.structure(numeric) == jax.tree.structure(params)
    for got, leaf in zip(jax.tree.leaves(numeric), jax.tree.leaves(params)):
        assert got.shape == leaf.shape and got.dtype == leaf.dtype
        # the budget (30) covers min(size, 4) per leaf (22), so every leaf gets at least that many
        assert np.isfinite(got).sum() >= min(leaf.size, 4)
        assert np.all(np.isfinite(got) | np.isnan(got))
    assert finite_count(numeric) == 30
    assert sum(int(np.isnan(leaf).sum()) for leaf in jax.tree.leaves(numeric)) == 71 - 30
    autodiff = autodiff_grad(model, params, x, y)
    for got, want in zip(jax.tree.leaves(numeric), jax.tree.leaves(autodiff)):
        evaluated = np.isfinite(got)
        np.testing.assert_allclose(got[evaluated], np.asarray(want)[evaluated], rtol=1e-7, atol=1e-9)
    assert max_relative(autodiff, numeric) < 1e-7


def test_a_small_budget_still_gives_every_leaf_one_coordinate():
    model, params, x, y = make_problem([3, 6, 5, 2], 8, 4)  # six leaves
    numeric = fn.gradcheck.finite_difference_grad(model, params, x, y, max_coordinates=7)
    assert finite_count(numeric) == 7
    assert all(np.isfinite(leaf).sum() >= 1 for leaf in jax.tree.leaves(numeric))


def test_the_sample_is_fixed_by_sample_seed():
    model, params, x, y = make_problem([3, 6, 5, 2], 8, 4)

    def evaluated(seed):
        tree = fn.gradcheck.finite_difference_grad(model, params, x, y, max_coordinates=30, sample_seed=seed)
        return np.concatenate([np.isfinite(leaf).ravel() for leaf in jax.tree.leaves(tree)])

    assert np.array_equal(evaluated(0), evaluated(0))
    assert not np.array_equal(evaluated(0), evaluated(1))


@pytest.mark.parametrize("arguments, message", [
    ({"max_coordinates": 0}, "`max_coordinates` must be an integer ≥ 1, got 0"),
    ({"max_coordinates": 2.5}, "`max_coordinates` must be an integer ≥ 1, got 2.5 (float)"),
    ({"chunk_size": 0}, "`chunk_size` must be an integer ≥ 1, got 0"),
    ({"epsilon": 0.0}, "`epsilon` must be a finite number > 0, got 0.0"),
    ({"epsilon": float("nan")}, "`epsilon` must be a finite number > 0, got nan"),
    ({"max_coordinates": 5}, "`max_coordinates` is 5 but params has 6 non-empty leaves and every leaf gets "
                             "at least one coordinate; pass max_coordinates >= 6"),
])
def test_bad_arguments_are_named_in_the_error(arguments, message):
    model, params, x, y = make_problem([3, 6, 5, 2], 8, 4)
    with pytest.raises(ValueError, match=rf"^{re.escape(message)}$"):
        fn.gradcheck.finite_difference_grad(model, params, x, y, **arguments)


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, time
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import funcnet as fn

    widths = [5, 256, 256, 1]
    model = fn.mlp(widths)
    rng = np.random.default_rng(0)  # params drawn with NumPy: compiling model.init is no part of the check
    params = [{"W": jax.device_put(rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)),
               "b": jax.device_put(0.1 * rng.normal(size=n_out))} for n_in, n_out in zip(widths[:-1], widths[1:])]
    # 8 rows: the memory is in each chunk's perturbed copies of the P params, not in the rows
    x, y = jax.device_put(rng.normal(size=(8, 5))), jax.device_put(rng.normal(size=(8, 1)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    numeric = jax.block_until_ready(fn.gradcheck.finite_difference_grad(model, params, x, y))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    finite = sum(int(np.isfinite(np.asarray(leaf)).sum()) for leaf in jax.tree.leaves(numeric))
    autodiff = jax.jit(jax.grad(model.loss))(params, x, y)  # one compile, not one per eager op
    worst = max(row.max_rel for row in fn.gradcheck.compare_grad_trees(autodiff, numeric))
    print(json.dumps({"peak_bytes": peak * 1024, "before_bytes": before * 1024, "seconds": seconds,
                      "finite": finite, "max_rel": worst}))
""")


def test_a_5_256_256_1_network_is_checked_in_under_2_gb():
    # A fresh process, so that the peak is this call's (plus the interpreter's), not the test session's.
    # Linux carries ru_maxrss across exec: a Python started straight from pytest would report at least
    # pytest's own peak.  A shell in between forks a small process first, so the count starts afresh.
    completed = subprocess.run(["/bin/sh", "-c", '"$0" -c "$1"; exit $?', sys.executable, MEMORY_SCRIPT],
                               capture_output=True, text=True, timeout=600, cwd=ROOT,
                               env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(result)
    assert result["peak_bytes"] < 2 * 1024**3
    assert result["finite"] == DEFAULT_MAX_COORDINATES == 4096  # P = 67,585: the default sample
    assert result["max_rel"] < 1e-7


# ----------------------------------------------------------------------------- comparing trees


def test_compare_grad_trees_goes_through_each_layers_keys_in_sorted_order():
    first = [{"shift": jnp.zeros(3), "scale": jnp.ones(3)}, {}, {"b": jnp.zeros(2), "W": jnp.ones((3, 2))}]
    second = [{"scale": jnp.ones(3), "shift": jnp.full(3, 0.5)}, {}, {"W": jnp.ones((3, 2)), "b": jnp.zeros(2)}]
    rows = fn.gradcheck.compare_grad_trees(first, second)
    assert [(row.layer, row.leaf, row.shape) for row in rows] == [
        (0, "scale", (3,)), (0, "shift", (3,)), (2, "W", (3, 2)), (2, "b", (2,))]
    assert [row.max_abs for row in rows] == [0.0, 0.5, 0.0, 0.0]
    assert rows[1].max_rel == 1.0
    table = fn.gradcheck.format_differences(rows)
    assert len(table.splitlines()) == 5 and "shift" in table


def test_compare_grad_trees_accepts_tuples_and_a_model_without_params():
    layer = {"W": jnp.ones((2, 2))}
    assert fn.gradcheck.compare_grad_trees((layer,), [layer]) == [fn.gradcheck.LeafDifference(0, "W", (2, 2), 0.0, 0.0)]
    assert fn.gradcheck.compare_grad_trees([{}, {}], [{}, {}]) == []


def test_positions_that_are_nan_in_the_second_tree_are_not_compared():
    first = [{"W": jnp.array([1.0, 2.0, 100.0])}]
    second = [{"W": jnp.array([1.0, 2.5, jnp.nan])}]
    (row,) = fn.gradcheck.compare_grad_trees(first, second)
    assert row.max_abs == 0.5
    assert row.max_rel == 0.5 / 2.5  # the scale is over the compared positions only


def test_a_nan_in_the_first_tree_is_never_hidden():
    first = [{"W": jnp.array([1.0, jnp.nan, 3.0])}]
    second = [{"W": jnp.array([1.0, 2.0, jnp.nan])}]
    (row,) = fn.gradcheck.compare_grad_trees(first, second)
    assert np.isnan(row.max_abs) and np.isnan(row.max_rel)
    (row,) = fn.gradcheck.compare_grad_trees([{"W": jnp.array([jnp.nan, 1.0])}], [{"W": jnp.array([1.0, 1.0])}])
    assert np.isnan(row.max_abs) and np.isnan(row.max_rel)


def test_a_leaf_with_nothing_to_compare_reports_nan_not_agreement():
    (row,) = fn.gradcheck.compare_grad_trees([{"b": jnp.array([1.0, 2.0])}], [{"b": jnp.full(2, jnp.nan)}])
    assert np.isnan(row.max_abs) and np.isnan(row.max_rel)
    (row,) = fn.gradcheck.compare_grad_trees([{"b": jnp.zeros(0)}], [{"b": jnp.zeros(0)}])
    assert (row.max_abs, row.max_rel) == (0.0, 0.0)


@pytest.mark.parametrize("first, second, error, message", [
    ({"W": jnp.ones(2)}, [{"W": jnp.ones(2)}], TypeError,
     "`first` must be a list or tuple of dicts of arrays, one dict per layer; got dict"),
    ([{"W": jnp.ones(2)}], [jnp.ones(2)], TypeError,
     "`second` must be a list or tuple of dicts of arrays, one dict per layer; got a list of ArrayImpl"),
    ([{"W": jnp.ones(2)}], [{"W": jnp.ones(2)}, {}], ValueError,
     "`first` has 1 layers but `second` has 2; compare gradients of the same params"),
    ([{"W": jnp.ones(2)}], [{"scale": jnp.ones(2)}], ValueError,
     "layer 0 of `first` has leaves ['W'] but `second` has ['scale']"),
    ([{"W": jnp.ones((2, 3))}], [{"W": jnp.ones((3, 2))}], ValueError,
     "`first[0]['W']` has shape (2, 3) but `second[0]['W']` has shape (3, 2)"),
])
def test_trees_that_do_not_match_are_named_in_the_error(first, second, error, message):
    with pytest.raises(error) as raised:
        fn.gradcheck.compare_grad_trees(first, second)
    assert str(raised.value) == message


def test_leaf_difference_refuses_arrays_of_different_shapes():
    with pytest.raises(ValueError) as raised:
        leaf_difference(np.ones((2, 3)), np.ones(6))
    assert str(raised.value) == ("`first` has shape (2, 3) but `second` has shape (6,); "
                                 "compare gradients of the same parameter")


# ----------------------------------------------------------------------------- the one engine and definition
def test_both_checkers_use_the_one_difference_and_engine():
    from funcnet import derivative_checks, finite_differences, gradcheck

    assert gradcheck.leaf_difference is finite_differences.max_difference
    assert derivative_checks.max_difference is finite_differences.max_difference
    assert derivative_checks.central_differences is gradcheck.central_differences is \
        finite_differences.central_differences
    assert not hasattr(gradcheck, "_sample_coordinates") and not hasattr(gradcheck, "_central_differences")


@pytest.mark.parametrize("factor, expected", [(1.01, 0.01 / 1.01), (2.0, 0.5), (0.5, 0.5), (0.0, 1.0), (-1.0, 2.0)])
def test_max_rel_is_symmetric_and_measured_against_the_larger_side(factor, expected):
    from funcnet.finite_differences import max_difference

    truth = np.array([0.5, -2.0, 1e-9, 0.0])
    assert max_difference(factor * truth, truth)[1] == pytest.approx(expected, rel=1e-12)
    if factor:
        assert max_difference(truth, factor * truth)[1] == pytest.approx(expected, rel=1e-12)


def test_a_wrong_small_entry_is_measured_against_the_leafs_scale():
    from funcnet.finite_differences import max_difference

    # entry 1 is 50% off, but the leaf's scale is 100: the floor of the definition
    assert max_difference(np.array([100.0, 1.5]), np.array([100.0, 1.0])) == (0.5, 0.005)


@pytest.mark.parametrize("max_abs, max_rel, ok", [(1e-3, 1e-7, True), (1e-13, 0.5, True), (1e-3, 1e-3, False),
                                                  (float("nan"), float("nan"), False), (0.0, float("nan"), True)])
def test_a_difference_passes_when_within_rtol_or_atol(max_abs, max_rel, ok):
    from funcnet.finite_differences import passes

    assert passes(max_abs, max_rel, rtol=1e-6, atol=1e-12) is ok


def test_the_sampler_takes_an_explicit_seed_or_generator_and_spreads_over_every_array():
    from funcnet.finite_differences import sample_coordinates

    first, again = sample_coordinates([3, 500, 2], 20, 7), sample_coordinates([3, 500, 2], 20, 7)
    np.testing.assert_array_equal(first, again)
    assert len(first) == 20 and len(set(first.tolist())) == 20 and np.all(np.diff(first) > 0)
    assert {0, 1, 2} <= set(first.tolist()) and {503, 504} <= set(first.tolist())  # small arrays whole
    assert not np.array_equal(first, sample_coordinates([3, 500, 2], 20, 8))
    np.testing.assert_array_equal(sample_coordinates([3, 500, 2], 20, np.random.default_rng(7)), first)
    np.testing.assert_array_equal(sample_coordinates([4, 5], 9, 0), np.arange(9))


def test_central_differences_divide_by_the_step_actually_taken():
    from funcnet.finite_differences import central_differences

    theta = [to_device(np.array([1.0, 3.0])), to_device(np.array([[2.0]]))]
    # φ = θ₀² + θ₀θ₁ + 5·θ₂: exact for a quadratic, whatever the step's rounding
    values = central_differences(lambda a, b: a[0] ** 2 + a[0] * a[1] + 5 * b[0, 0], theta,
                                 jnp.array([0, 1, 2]), 0.25, chunk_size=2)
    np.testing.assert_allclose(np.asarray(values), [2 * 1.0 + 3.0, 1.0, 5.0], rtol=1e-14)
    theta, epsilon = 0.3, 1e-10
    assert ((theta + epsilon) - (theta - epsilon)) / (2 * epsilon) != 1.0  # 2ε is not the step taken
    (slope,) = central_differences(lambda a: a[0], [to_device(np.array([theta]))], jnp.array([0]), epsilon)
    assert float(slope) == 1.0  # φ(θ) = θ: the step taken over itself

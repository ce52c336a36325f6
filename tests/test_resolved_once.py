"""One forward, resolved once: a traced function's program depends only on its arguments.

* A dense layer's layout is decided when the layer is built (``layout=``, or
  ``FUNCNET_DENSE_LAYOUT`` and the backend then), never when it is traced.
* ``XLA_FLAGS`` is read when init is first compiled, not when funcnet is imported.
* The forward fold both gradient modes run lives in ``funcnet.forward``; the
  autodiff path runs nothing from ``funcnet.backprop``.
* The trace's autodiff column is ``jax.grad`` through that training forward.
"""

import ast
import inspect
import os
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn
from funcnet import backprop, checks, forward

LAYOUT = "FUNCNET_DENSE_LAYOUT"


def barriers(function, *args) -> int:
    """How many optimisation barriers ``function``'s jaxpr holds: the ``"columns"`` layout's mark."""
    return str(jax.make_jaxpr(function)(*args)).count("optimization_barrier")


def batch(model, rows=8, seed=0):
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.normal(size=(rows, model.n_in)), jnp.float32),
            jnp.asarray(rng.normal(size=(rows, model.n_out)), jnp.float32))


# ----------------------------------------------------------------------------- the dense layout
@pytest.mark.parametrize("built_with, changed_to", [("columns", "rows"), ("rows", "columns"), ("", "rows")])
def test_changing_the_layout_variable_between_two_traces_of_a_built_model_gives_the_same_jaxpr(
        monkeypatch, built_with, changed_to):
    monkeypatch.setenv(LAYOUT, built_with)
    model = fn.mlp([3, 5, 2], hidden="tanh", dropout=0.25)
    params, (x, y), key = model.init(jax.random.key(0)), batch(model), jax.random.key(1)

    def jaxprs():  # new functions each time: make_jaxpr caches its trace per function object
        functions = {"loss": lambda p: model.loss(p, x, y, key=key),
                     "manual_grad": lambda p: model.manual_grad(p, x, y, key=key),
                     "forward": lambda p: model.forward(p, x, key=key)}
        return {name: str(jax.make_jaxpr(function)(params)) for name, function in functions.items()}

    before = jaxprs()  # the first traces: checks' cache of the model's param shapes is cold
    monkeypatch.setenv(LAYOUT, changed_to)
    after = jaxprs()
    assert after == before
    assert ("optimization_barrier" in before["loss"]) is (built_with in ("columns", ""))  # the suite runs on CPU


# ----------------------------------------------------------------------------- the param-shape check's cache
@pytest.mark.parametrize("traced", ["loss", "manual_grad", "forward"])
def test_the_first_trace_of_a_fresh_model_equals_the_second_though_the_shape_cache_was_cold(traced):
    model = fn.mlp([3, 7, 2], hidden="elu")  # a model no other test of this module traces
    params, (x, y) = model.init(jax.random.key(0)), batch(model)

    def jaxpr():  # a new function each time: make_jaxpr caches its trace per function object
        functions = {"loss": lambda p: model.loss(p, x, y), "manual_grad": lambda p: model.manual_grad(p, x, y),
                     "forward": lambda p: model.forward(p, x)}
        return str(jax.make_jaxpr(functions[traced])(params))

    checks.expected_param_shapes.cache_clear()
    cold = jaxpr()
    assert checks.expected_param_shapes.cache_info().currsize == 1  # that trace filled the cache
    warm = jaxpr()
    assert cold == warm
    assert "random_seed" not in cold  # nothing of the shape check's own eval_shape is left in the caller's program


@pytest.mark.parametrize("layout, barriers_per_dense_layer", [("columns", 2), ("rows", 0)])
def test_a_model_built_after_the_variable_changes_takes_the_new_layout(monkeypatch, layout, barriers_per_dense_layer):
    monkeypatch.setenv(LAYOUT, "rows" if layout == "columns" else "columns")
    before = fn.mlp([3, 5, 2])
    monkeypatch.setenv(LAYOUT, layout)
    model = fn.mlp([3, 5, 2])
    params, (x, y) = model.init(jax.random.key(0)), batch(model)
    assert barriers(lambda p: model.loss(p, x, y), params) == 2 * barriers_per_dense_layer
    assert model != before  # not one compiled program for both: jit's static arguments differ
    assert model == fn.mlp([3, 5, 2]) and hash(model) == hash(fn.mlp([3, 5, 2]))


@pytest.mark.parametrize("variable", ["columns", "rows"])
@pytest.mark.parametrize("layout", ["columns", "rows"])
def test_an_explicit_layout_wins_over_the_variable(monkeypatch, variable, layout):
    monkeypatch.setenv(LAYOUT, variable)
    layer = fn.dense(4, "relu", layout=layout)
    params, x = layer.init(jax.random.key(0), 3, jnp.float32), jnp.ones((5, 3))
    assert barriers(lambda p: layer.forward(p, x, None)[0], params) == (2 if layout == "columns" else 0)
    assert layer == fn.dense(4, "relu", layout=layout)
    assert (layer == fn.dense(4, "relu")) is (layout == variable)


@pytest.mark.parametrize("value", ["column", "Rows", "row-major"])
def test_a_bad_layout_variable_is_refused_when_a_model_is_built(monkeypatch, value):
    monkeypatch.setenv(LAYOUT, value)
    with pytest.raises(ValueError, match=rf"FUNCNET_DENSE_LAYOUT must be 'columns' or 'rows' \(or unset\), "
                                         rf"got '{value}'"):
        fn.mlp([3, 5, 2])
    fn.dense(5, layout="rows")  # an explicit layout does not read the variable


def test_a_checkpoint_loads_with_the_layout_of_where_it_is_loaded_and_predicts_the_same(monkeypatch, tmp_path):
    monkeypatch.setenv(LAYOUT, "columns")
    model = fn.mlp([3, 5, 2], hidden="elu", alpha=0.5)
    params, (x, _) = model.init(jax.random.key(0)), batch(model)
    fn.save(tmp_path / "model.npz", model, params)
    monkeypatch.setenv(LAYOUT, "rows")
    saved = fn.load(tmp_path / "model.npz")
    assert saved.model.describe() == model.describe()
    assert barriers(lambda p: saved.model.loss(p, x, x[:, :2]), saved.params) == 0
    np.testing.assert_array_equal(saved.model.forward(saved.params, x), model.forward(params, x))


# ----------------------------------------------------------------------------- XLA_FLAGS and init
def test_the_model_module_reads_xla_flags_when_init_is_first_compiled_not_at_import():
    script = textwrap.dedent("""
        import os
        import jax, funcnet as fn
        from funcnet import model as model_module
        assert model_module._init_compiled_alone.cache_info().currsize == 0, "built at import"
        os.environ["XLA_FLAGS"] = "--xla_backend_optimization_level=0"   # set after the import
        assert model_module._init_compiler_options() == {"xla_backend_optimization_level": 0}
        fn.mlp([2, 3, 1]).init(jax.random.key(0))
        compiled = model_module._init_compiled_alone()
        os.environ["XLA_FLAGS"] = ""
        fn.mlp([2, 4, 1]).init(jax.random.key(0))
        assert model_module._init_compiled_alone() is compiled, "resolved more than once"
        print("ok")
    """)
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("model", [fn.mlp([3, 5, 2]), fn.sequential(4, [fn.dense(6, "gelu"), fn.layer_norm(),
                                                                      fn.dropout(0.2), fn.dense(2)])])
def test_init_gives_the_same_bits_eagerly_and_inside_jit_vmap_and_eval_shape(model):
    key = jax.random.key(3)
    eager = model.init(key)
    chex.assert_trees_all_equal(jax.jit(model.init)(key), eager)
    chex.assert_trees_all_equal(jax.vmap(model.init)(key[None]), jax.tree.map(lambda leaf: leaf[None], eager))
    chex.assert_trees_all_equal_shapes_and_dtypes(jax.eval_shape(model.init, key), eager)


# ----------------------------------------------------------------------------- the fold leaves backprop.py
def test_the_forward_module_imports_nothing_from_backprop():
    tree = ast.parse(inspect.getsource(forward))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any("backprop" in name for name in imported), imported


def test_autodiff_training_runs_nothing_from_backprop(monkeypatch):
    model = fn.sequential(3, [fn.dense(5, "tanh"), fn.layer_norm(), fn.dropout(0.3), fn.dense(2)], l2=0.1)
    params, (x, y), key = model.init(jax.random.key(0)), batch(model), jax.random.key(1)
    expected = jax.value_and_grad(model.loss)(params, x, y, key=key)
    for name, value in vars(backprop).items():
        if callable(value) and getattr(value, "__module__", None) == backprop.__name__:
            monkeypatch.setattr(backprop, name, _refuse(name))
    for name in ("forward_steps", "l2_penalty", "weighted_mean"):  # what backprop took from funcnet.forward
        monkeypatch.setattr(backprop, name, _refuse(name))
    chex.assert_trees_all_equal(jax.value_and_grad(model.loss)(params, x, y, key=key), expected)
    with pytest.raises(AssertionError, match="backprop.manual_value_and_grad ran"):
        model.manual_grad(params, x, y, key=key)  # the patch does bite


def _refuse(name):
    def refuse(*args, **kwargs):
        raise AssertionError(f"backprop.{name} ran")
    return refuse


# ----------------------------------------------------------------------------- the trace's autodiff column
SOFTSIGN = fn.activation("softsign_resolved_once", lambda z: z / (1 + jnp.abs(z)),
                         lambda z: 1 / (1 + jnp.abs(z)) ** 2)
ARCHITECTURES = {  # name: (layers given a layout, needs a key)
    "builtin_activations": (lambda layout: [fn.dense(4, "relu", layout=layout), fn.dense(3, "tanh", layout=layout),
                                            fn.dense(2, layout=layout)], False),
    "custom_activation": (lambda layout: [fn.dense(4, SOFTSIGN, layout=layout), fn.dense(2, layout=layout)], False),
    "dropout": (lambda layout: [fn.dense(4, "gelu", layout=layout), fn.dropout(0.4), fn.dense(2, layout=layout)],
                True),
}


def traced(name, layout):
    layers, keyed = ARCHITECTURES[name]
    model = fn.sequential(3, layers(layout), loss="huber", l2=0.05)
    rng = np.random.default_rng(2)
    params = model.init(jax.random.key(1), jnp.float64)
    x, y = jnp.asarray(rng.normal(size=(5, 3))), jnp.asarray(rng.normal(size=(5, 2)))
    weights = jnp.asarray(rng.uniform(0.1, 2.0, 5))
    key = jax.random.key(4) if keyed else None
    return model, params, x, y, weights, key, fn.trace.trace_backprop(model, params, x, y, weights, key=key)


def suffix_loss(model, params, start, value, y, weights, key):
    """The objective as a function of what enters layer ``start``: the training forward's later layers, by hand."""
    keys = forward.layer_keys(model.layers, key)
    for layer, layer_params, layer_key in zip(model.layers[start:], params[start:], keys[start:]):
        value = layer.forward(layer_params, value, layer_key)[0]
    return forward.objective(model, params, value, y, weights)


def exact(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.x64
@pytest.mark.parametrize("layout", ["columns", "rows"])
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_the_traces_autodiff_column_is_jax_grad_through_the_training_forward(name, layout):
    model, params, x, y, weights, key, trace = traced(name, layout)
    loss, grads = jax.value_and_grad(model.loss, argnums=(0, 1))(params, x, y, weights, key=key)
    exact(trace.layers[-1]["loss"].autodiff, loss)
    exact(trace.layers[0]["dX"].autodiff, grads[1])
    outputs = forward.forward_steps(model.layers, params, x, key)[0]
    for index, (layer, layer_trace) in enumerate(zip(model.layers, trace.layers)):
        for leaf, gradient in grads[0][index].items():
            exact(layer_trace[f"d{leaf}"].autodiff, gradient)
        output, d_output = ("A", "dA") if layer.name == "dense" else ("Y", "dY")
        exact(layer_trace[output].autodiff, outputs[index])
        exact(layer_trace[d_output].autodiff, jax.grad(
            lambda a: suffix_loss(model, params, index + 1, a, y, weights, key))(outputs[index]))
        if layer.name == "dense":  # Z, and dZ by jax.grad through the layer itself from Z (W = I, b = 0: g(Z))
            inputs = x if index == 0 else outputs[index - 1]
            z = inputs @ params[index]["W"] + params[index]["b"][None, :]
            exact(layer_trace["Z"].autodiff, z)
            units = z.shape[1]
            identity = {"W": jnp.eye(units, dtype=z.dtype), "b": jnp.zeros(units, z.dtype)}
            d_z = jax.grad(lambda z: suffix_loss(model, params, index + 1, layer.forward(identity, z, None)[0],
                                                 y, weights, key))(z)
            exact(layer_trace["dZ"].autodiff, d_z)
            exact(layer_trace["dZ"].manual, d_z)
    assert trace.first_difference() is None


@pytest.mark.x64
def test_both_columns_run_the_dense_layers_own_forward_and_backward():
    calls = []
    dense = fn.dense(3, SOFTSIGN)

    def spy_forward(params, x, key, observe=None):
        calls.append(("forward", observe is not None))
        return dense.forward(params, x, key, observe=observe)

    def spy_backward(params, cache, dy, observe=None):
        calls.append(("backward", observe is not None))
        return dense.backward(params, cache, dy, observe=observe)

    spy = dense._replace(forward=spy_forward, backward=spy_backward)
    model = fn.sequential(2, [spy, fn.dense(1)])
    params = model.init(jax.random.key(0), jnp.float64)
    trace = fn.trace.trace_backprop(model, params, jnp.ones((4, 2), jnp.float64), jnp.zeros((4, 1), jnp.float64))
    # manual: forward and backward, observed for Z and dZ; autodiff: the forward (jax.grad writes the backward)
    assert sorted(calls) == [("backward", True), ("forward", True), ("forward", True)]
    assert trace.first_difference() is None

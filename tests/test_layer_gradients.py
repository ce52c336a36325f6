"""One backprop for every layer: manual = jax.grad = finite differences, and autodiff has nothing hand-written.

Every problem below (an activation, an output/loss pairing or a layer kind)
is compiled once: :func:`every_gradient` returns the manual and autodiff
gradients in float64 and float32 and the float64 central differences in
one jitted call, and :func:`gradients_of` keeps the results for every test
that reads them.  Activations and losses are crossed pairwise (every hidden
activation with one output/loss pairing, every pairing with one hidden
activation), not as a full product.
"""

import functools
import zlib
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.extend import core as jax_core
from jax.flatten_util import ravel_pytree

import funcnet as fn

pytestmark = pytest.mark.x64  # gradients compared in float64 (float32 rows ask for float32 explicitly)

EPSILON = 1e-6  # central-difference step in float64: truncation ~ε², rounding ~1e-16/ε
BATCH = 6
HIDDEN_ACTIVATIONS = tuple(name for name in fn.activations.ACTIVATION_NAMES if name != "softmax")
# (output, loss, huber delta): mse with every output activation, softmax included, then every other loss
OUTPUT_LOSS_PAIRINGS = (
    *((output, "mse", 1.0) for output in fn.activations.ACTIVATION_NAMES),
    ("identity", "mae", 1.0), ("tanh", "mae", 1.0),
    ("identity", "huber", 0.5), ("identity", "huber", 2.0), ("sigmoid", "huber", 0.5),
    ("sigmoid", "logloss", 1.0), ("softmax", "cross_entropy", 1.0),
)
# (dtype, value rtol, max relative gradient difference per leaf)
PRECISIONS = {"float64": (jnp.float64, 1e-10, 1e-10), "float32": (jnp.float32, 1e-5, 1e-5)}


def _scale_layer(backward_factor=1.0):
    """A user layer ``y = x ⊙ s``; its hand-written backward is off by ``backward_factor``."""
    return fn.layer(
        "scale", lambda key, n, dtype: {"s": jnp.ones((n,), dtype)},
        lambda params, x: (x * params["s"][None, :], x),
        lambda params, x, dy: ({"s": backward_factor * jnp.sum(dy * x, 0)}, backward_factor * dy * params["s"][None, :]))


SCALE = _scale_layer()


class Problem(NamedTuple):
    model: fn.Network
    dropout_seed: int | None = None  # the key of training mode; None for a model without dropout
    probability_labels: bool = False  # cross_entropy against probability rows rather than classes


def _hidden_activation(name):
    return fn.activations.get_activation(name, negative_slope=0.1, alpha=0.7)


def _pairing_problem(hidden, output, loss, delta, probability_labels=False):
    """``hidden`` inside a dense layer and as an activation layer of its own, then ``output`` and ``loss``."""
    model = fn.sequential(3, [fn.dense(5, _hidden_activation(hidden)), fn.dense(4), _hidden_activation(hidden),
                              fn.dense(3)], output=_hidden_activation(output), loss=loss, delta=delta)
    return Problem(model, probability_labels=probability_labels)


# pairwise: the i-th output/loss pairing gets the i-th hidden activation (cyclically, shifted so that
# hidden and output differ), so every hidden activation and every pairing appear without the full product
PAIRINGS = {
    f"hidden={hidden}-output={output}-loss={loss}" + (f"-delta={delta:g}" if loss == "huber" else ""):
    _pairing_problem(hidden, output, loss, delta)
    for (output, loss, delta), hidden in zip(OUTPUT_LOSS_PAIRINGS, [*HIDDEN_ACTIVATIONS[3:], *HIDDEN_ACTIVATIONS] * 2)
}
PAIRINGS["hidden=gelu-output=softmax-loss=cross_entropy-probability-labels"] = _pairing_problem(
    "gelu", "softmax", "cross_entropy", 1.0, probability_labels=True)

PROBLEMS = {
    **PAIRINGS,
    # every layer kind (dense with bias is in every model above)
    "dense-without-bias-and-layer-norm": Problem(fn.sequential(
        3, [fn.dense(4, "tanh", bias=False), fn.layer_norm(epsilon=0.5), fn.dense(4), fn.layer_norm(),
            fn.dense(2, bias=False)])),
    "l2": Problem(fn.sequential(3, [fn.dense(4, "tanh"), fn.layer_norm(), fn.dense(2)], l2=0.3)),
    "user-layer": Problem(fn.sequential(3, [fn.dense(4, "tanh"), SCALE, fn.dense(2)])),
    "every-layer-kind": Problem(
        fn.sequential(3, [fn.dense(5, "relu"), fn.layer_norm(), fn.dropout(0.3), fn.layers.activation_layer("gelu"),
                          fn.dense(3, bias=False)], loss="cross_entropy", l2=0.1),
        dropout_seed=3),
}


def test_the_tables_cover_every_activation_loss_and_layer_kind():
    models = [problem.model for problem in PROBLEMS.values()]
    hidden = {dict(layer.config)["activation"] for model in models for layer in model.layers
              if layer.name == "activation"}
    assert hidden == set(HIDDEN_ACTIVATIONS)
    assert {model.output_activation for model in models} == set(fn.activations.ACTIVATION_NAMES)
    assert {(model.loss_name, dict(model.loss_fn.config).get("delta")) for model in models} == {
        ("mse", None), ("mae", None), ("huber", 0.5), ("huber", 2.0), ("logloss", None), ("cross_entropy", None)}
    kinds = {(layer.name, dict(layer.config).get("bias")) for model in models for layer in model.layers}
    assert kinds == {("dense", True), ("dense", False), ("activation", None), ("dropout", None),
                     ("layer_norm", None), ("scale", None)}
    assert any(model.l2 > 0 for model in models)


def to_device(array, dtype=jnp.float64):
    """A NumPy array as a JAX array of ``dtype``, cast by NumPy (``jnp.asarray`` compiles a program per shape)."""
    return jax.device_put(np.asarray(array, dtype))


def random_params(model, rng):
    """Params of ``model`` drawn with NumPy (no compilation), by leaf name; biases and shifts non-zero."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    draw = {"W": lambda shape: rng.normal(size=shape) / np.sqrt(shape[0]),
            "b": lambda shape: 0.1 * rng.normal(size=shape),
            "shift": lambda shape: 0.2 * rng.normal(size=shape)}
    other = lambda shape: 1 + 0.2 * rng.normal(size=shape)  # noqa: E731  (scale, s)
    return [{name: to_device(draw.get(name, other)(leaf.shape)) for name, leaf in layer.items()}
            for layer in shapes]


def residuals_away_from_kinks(rng, shape, delta):
    """``A − Y`` for mae and huber: magnitudes in [0.05, 3], none within 0.05 of 0 or ±delta."""
    magnitude = rng.uniform(0.05, 3.0, size=shape)
    magnitude = np.where(np.abs(magnitude - delta) < 0.05, magnitude + 0.1, magnitude)
    return np.where(rng.random(shape) < 0.5, -magnitude, magnitude)


@functools.partial(jax.jit, static_argnums=0)
def inference_forward(model, params, x):
    """``model.forward(params, x)`` in one compiled call (eagerly, each op would compile on its own)."""
    return model.forward(params, x)


def targets(problem, params, x, rng):
    model = problem.model
    shape = (x.shape[0], model.n_out)
    if model.loss_name == "cross_entropy":
        if problem.probability_labels:
            return to_device(rng.dirichlet(np.ones(model.n_out), size=x.shape[0]))
        return to_device(rng.integers(0, model.n_out, size=x.shape[0]), jnp.int32)
    if model.loss_name == "logloss":
        return to_device(rng.integers(0, 2, size=shape))
    if model.loss_name in ("mae", "huber"):
        assert not model.needs_key, "residuals are set at inference: no dropout with mae or huber here"
        delta = dict(model.loss_fn.config).get("delta", np.inf)
        return to_device(np.asarray(inference_forward(model, params, x)) - residuals_away_from_kinks(rng, shape, delta))
    return to_device(rng.normal(size=shape))


@functools.lru_cache(maxsize=None)
def problem_data(name):
    """``(params, x, y, key)`` in float64 for ``PROBLEMS[name]``, from a seed of its own (its name's CRC)."""
    problem = PROBLEMS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    params = random_params(problem.model, rng)
    x = to_device(rng.normal(size=(BATCH, problem.model.n_in)))
    key = None if problem.dropout_seed is None else jax.random.key(problem.dropout_seed)
    return params, x, targets(problem, params, x, rng), key


def central_differences(loss_of_params, params, epsilon=EPSILON):
    """``(L(θ + εeᵢ) − L(θ − εeᵢ)) / 2ε`` for every coordinate ``i`` of the flattened params, vmapped.

    One vmapped loss over the 2P points ``θ ± εeᵢ`` (half the program of two vmapped losses).
    """
    flat, unravel = ravel_pytree(params)
    steps = epsilon * jnp.eye(flat.size, dtype=flat.dtype)
    losses = jax.vmap(lambda vector: loss_of_params(unravel(vector)))(
        jnp.concatenate([flat[None, :] + steps, flat[None, :] - steps]))
    return unravel((losses[:flat.size] - losses[flat.size:]) / (2 * epsilon))


def as_float32(tree):
    return jax.tree.map(lambda leaf: leaf.astype(jnp.float32) if jnp.issubdtype(leaf.dtype, jnp.floating)
                        else leaf, tree)


@functools.partial(jax.jit, static_argnums=0)
def every_gradient(model, params, x, y, key):
    """Manual and autodiff ``(value, grads)`` in float64 and float32, and float64 central differences."""
    def both_modes(params, x, y):
        return {"manual": model.manual_grad(params, x, y, key=key),
                "autodiff": jax.value_and_grad(model.loss)(params, x, y, key=key)}

    return ({"float64": both_modes(params, x, y), "float32": both_modes(*as_float32((params, x, y)))},
            central_differences(lambda p: model.loss(p, x, y, key=key), params))


@functools.lru_cache(maxsize=None)
def gradients_of(name, key_seed=None):
    """:func:`every_gradient` of ``PROBLEMS[name]`` (with another dropout key when ``key_seed`` is given)."""
    params, x, y, key = problem_data(name)
    if key_seed is not None:
        key = jax.random.key(key_seed)
    return jax.device_get(every_gradient(PROBLEMS[name].model, params, x, y, key))


def relative_differences(first, second):
    """``{leaf path: max|a − b| / max(max|a|, max|b|)}``: each leaf against its own scale."""
    chex.assert_trees_all_equal_structs(first, second)
    differences = {}
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(first)[0], jax.tree.leaves(second)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = max(np.max(np.abs(a)), np.max(np.abs(b)), np.finfo(np.float64).tiny)
        differences[jax.tree_util.keystr(path)] = float(np.max(np.abs(a - b)) / scale)
    return differences


def assert_close_per_leaf(first, second, rtol):
    differences = relative_differences(first, second)
    assert max(differences.values()) < rtol, differences


# ----------------------------------------------------------------------------- manual = autodiff = numeric
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", PROBLEMS)
def test_manual_grad_matches_autodiff_in_value_and_every_leaf(name, precision):
    dtype, value_rtol, grad_rtol = PRECISIONS[precision]
    modes, _ = gradients_of(name)
    (value, manual), (expected_value, autodiff) = modes[precision]["manual"], modes[precision]["autodiff"]
    params = problem_data(name)[0]
    chex.assert_trees_all_equal_shapes(manual, params)
    chex.assert_trees_all_equal_dtypes(manual, autodiff, jax.tree.map(lambda leaf: np.asarray(leaf, dtype), params))
    assert value.dtype == expected_value.dtype == dtype
    np.testing.assert_allclose(value, expected_value, rtol=value_rtol)
    assert_close_per_leaf(manual, autodiff, grad_rtol)


@pytest.mark.parametrize("name", PROBLEMS)
def test_manual_and_autodiff_gradients_match_central_finite_differences(name):
    modes, numeric = gradients_of(name)
    assert_close_per_leaf(modes["float64"]["manual"][1], numeric, 1e-7)
    assert_close_per_leaf(modes["float64"]["autodiff"][1], numeric, 1e-7)


def test_the_gradient_comparison_can_fail():
    _, manual = gradients_of("every-layer-kind")[0]["float64"]["manual"]
    nudged = jax.tree.map(lambda leaf: leaf * (1 + 1e-6), manual)
    assert max(relative_differences(manual, nudged).values()) == pytest.approx(1e-6 / (1 + 1e-6), rel=1e-6)
    with pytest.raises(AssertionError):
        assert_close_per_leaf(manual, nudged, 1e-7)


def test_dropout_models_agree_across_modes_only_under_the_same_key():
    modes, _ = gradients_of("every-layer-kind")
    other_modes, other_numeric = gradients_of("every-layer-kind", key_seed=4)
    manual, autodiff_other_key = modes["float64"]["manual"][1], other_modes["float64"]["autodiff"][1]
    assert max(relative_differences(manual, autodiff_other_key).values()) > 1e-2
    assert_close_per_leaf(other_modes["float64"]["manual"][1], other_numeric, 1e-7)


def test_library_finite_differences_use_the_same_dropout_mask_as_manual_grad():
    model = fn.sequential(3, [fn.dropout(0.5), fn.dense(2, "tanh")])
    rng = np.random.default_rng(2)
    params = random_params(model, rng)
    x, y = to_device(rng.normal(size=(BATCH, 3))), to_device(rng.normal(size=(BATCH, 2)))
    key = jax.random.key(0)
    numeric = fn.gradcheck.finite_difference_grad(model, params, x, y, epsilon=EPSILON, key=key)
    _, manual = jax.jit(model.manual_grad)(params, x, y, key=key)
    assert_close_per_leaf(manual, numeric, 1e-7)


def test_l2_penalises_only_weights_by_half_lambda_times_squared_norm():
    model = PROBLEMS["l2"].model
    params, x, y, _ = problem_data("l2")
    unpenalised = fn.sequential(3, model.layers)
    (value, grads), (plain_value, plain_grads) = jax.device_get(every_gradient_pair(model, unpenalised, params, x, y))
    params = jax.device_get(params)  # the expectations below in NumPy
    penalty = 0.5 * model.l2 * sum(np.sum(np.square(layer["W"])) for layer in params if "W" in layer)
    np.testing.assert_allclose(value - plain_value, penalty, rtol=1e-12)
    for layer, layer_grads, layer_plain in zip(params, grads, plain_grads):
        for leaf in layer:  # dW gains λW; b, and layer norm's scale and shift, are not penalised
            expected = layer_plain[leaf] + (model.l2 * layer[leaf] if leaf == "W" else 0)
            np.testing.assert_allclose(layer_grads[leaf], expected, rtol=1e-12, atol=1e-15, err_msg=leaf)


@functools.partial(jax.jit, static_argnums=(0, 1))
def every_gradient_pair(model, other_model, params, x, y):
    return model.manual_grad(params, x, y), other_model.manual_grad(params, x, y)


def test_autodiff_never_calls_a_hand_written_backward_or_derivative():
    # a user layer whose backward is twice too large and an activation whose derivative is wrong
    wrong_derivative = fn.activation("tanh_wrong_derivative", jnp.tanh, lambda z: 1 + 0 * z)
    model = fn.sequential(3, [fn.dense(4, wrong_derivative), _scale_layer(backward_factor=2.0), fn.dense(2)])
    rng = np.random.default_rng(0)
    params = random_params(model, rng)
    x, y = to_device(rng.normal(size=(BATCH, 3))), to_device(rng.normal(size=(BATCH, 2)))
    modes, numeric = jax.device_get(every_gradient(model, params, x, y, None))
    assert_close_per_leaf(modes["float64"]["autodiff"][1], numeric, 1e-7)
    differences = relative_differences(modes["float64"]["manual"][1], numeric)
    assert differences["[2]['W']"] < 1e-7  # above the wrong pieces, manual backprop is still right
    assert differences["[1]['s']"] > 0.4 and differences["[0]['W']"] > 0.4


# ----------------------------------------------------------------------------- nothing custom inside autodiff
CUSTOM_RULES = ("custom_jvp_call", "custom_vjp_call")
ADAM = optax.adam(1e-3)


def equations(jaxpr):
    """Every equation of ``jaxpr`` and, recursively, of every jaxpr inside its equations' params."""
    for equation in jaxpr.eqns:
        yield equation
        for value in equation.params.values():
            for inner in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(inner, jax_core.ClosedJaxpr):
                    yield from equations(inner.jaxpr)
                elif isinstance(inner, jax_core.Jaxpr):
                    yield from equations(inner)


def custom_rules_in(function, *args, **kwargs):
    """``[(primitive, where the rule's function is defined), ...]`` for each custom_jvp/vjp call in a trace."""
    closed = jax.make_jaxpr(functools.partial(function, **kwargs))(*args)
    found = []
    for equation in equations(closed.jaxpr):
        if equation.primitive.name in CUSTOM_RULES:
            inner = equation.params.get("call_jaxpr") or equation.params.get("fun_jaxpr")
            debug = getattr(getattr(inner, "jaxpr", inner), "debug_info", None)
            found.append((equation.primitive.name, getattr(debug, "func_src_info", "?")))
    return found


def autodiff_rules(model):
    """The custom rules in the jaxprs of ``make_train_step(model, adam, "autodiff")`` and of ``model.loss``.

    Both are needed: a custom_jvp stays visible in the differentiated step, but ``jax.grad`` inlines a
    custom_vjp's forward and backward there, so only the jaxpr of the function it differentiates shows it.
    """
    params = jax.eval_shape(model.init, jax.random.key(0))
    x = jax.ShapeDtypeStruct((4, model.n_in), jnp.float32)
    y = (jax.ShapeDtypeStruct((4,), jnp.int32) if model.loss_name == "cross_entropy"
         else jax.ShapeDtypeStruct((4, model.n_out), jnp.float32))
    key = jax.random.key(0) if model.needs_key else None
    step = fn.make_train_step(model, ADAM, "autodiff")
    return {"train_step": custom_rules_in(step, params, jax.eval_shape(ADAM.init, params), x, y, key=key),
            "model.loss": custom_rules_in(model.loss, params, x, y, key=key)}


STEP_MODELS = {
    **{f"hidden={name}": fn.mlp([3, 4, 2], hidden=name) for name in HIDDEN_ACTIVATIONS},
    **{f"output={output}-loss={loss}": fn.mlp([3, 4, 3], hidden="tanh", output=output, loss=loss)
       for output, loss in [("softmax", "mse"), ("identity", "mae"), ("identity", "huber"),
                            ("sigmoid", "logloss"), ("softmax", "cross_entropy")]},
    "every-layer-kind": PROBLEMS["every-layer-kind"].model,
    "every-activation-as-a-layer": fn.sequential(
        3, [fn.dense(4), *(_hidden_activation(name) for name in HIDDEN_ACTIVATIONS), fn.layer_norm(),
            fn.dropout(0.5), fn.dense(2, bias=False)], l2=0.1),
}


@pytest.mark.parametrize("name", STEP_MODELS)
def test_autodiff_train_step_contains_no_custom_jvp_or_vjp(name):
    assert autodiff_rules(STEP_MODELS[name]) == {"train_step": [], "model.loss": []}


@jax.custom_vjp
def _relu_with_custom_vjp(z):
    return jnp.maximum(z, 0)


_relu_with_custom_vjp.defvjp(lambda z: (jnp.maximum(z, 0), z), lambda z, dy: (dy * (z > 0),))

CONTROL_ACTIVATIONS = {  # dense layers with activations whose derivatives are custom rules
    "custom_vjp_call": fn.activation("relu_custom_vjp", _relu_with_custom_vjp, lambda z: (z > 0) * 1.0),
    "custom_jvp_call": fn.activation("jax_nn_relu", jax.nn.relu, lambda z: (z > 0) * 1.0),  # a custom_jvp
}


@pytest.mark.parametrize("primitive", CONTROL_ACTIVATIONS)
def test_the_jaxpr_walker_finds_a_custom_rule_in_an_autodiff_model(primitive):
    model = fn.sequential(3, [fn.dense(4, CONTROL_ACTIVATIONS[primitive]), fn.dense(2)])
    found = autodiff_rules(model)
    assert {rule for rule, _ in found["model.loss"]} == {primitive}, found
    # jax.grad keeps a custom_jvp call in the step (for the primal) but inlines a custom_vjp
    assert {rule for rule, _ in found["train_step"]} == ({primitive} if primitive == "custom_jvp_call" else set())


# ----------------------------------------------------------------------------- forward mode and second order
@functools.partial(jax.jit, static_argnums=0)
def forward_mode_and_hessian(model, params, x, y, key, direction):
    """The loss, its jvp along ``direction``, the directional central difference, the Hessian and
    the central difference of ``jax.grad`` (all over the flattened params)."""
    flat, unravel = ravel_pytree(params)
    loss = lambda vector: model.loss(unravel(vector), x, y, key=key)  # noqa: E731
    primal, tangent = jax.jvp(loss, (flat,), (direction,))
    directional = (loss(flat + EPSILON * direction) - loss(flat - EPSILON * direction)) / (2 * EPSILON)
    gradient = jax.grad(loss)
    hessian = jax.hessian(loss)(flat)
    steps = 1e-5 * jnp.eye(flat.size, dtype=flat.dtype)  # one vmapped gradient over the 2P points θ ± 1e-5 eᵢ
    gradients = jax.vmap(gradient)(jnp.concatenate([flat[None, :] + steps, flat[None, :] - steps]))
    numeric_hessian = (gradients[:flat.size] - gradients[flat.size:]) / (2 * 1e-5)
    return {"loss": loss(flat), "primal": primal, "tangent": tangent, "directional": directional,
            "gradient_dot_direction": gradient(flat) @ direction, "hessian": hessian,
            "numeric_hessian": numeric_hessian}


@pytest.fixture(scope="module")
def second_order():
    model = fn.sequential(2, [fn.dense(3, "tanh"), fn.layer_norm(), fn.dropout(0.3), fn.layers.activation_layer("gelu"),
                              fn.dense(1, bias=False)], l2=0.1)
    rng = np.random.default_rng(1)
    params = random_params(model, rng)
    x, y = to_device(rng.normal(size=(5, 2))), to_device(rng.normal(size=(5, 1)))
    direction = to_device(rng.normal(size=ravel_pytree(params)[0].size))
    return jax.device_get(forward_mode_and_hessian(model, params, x, y, jax.random.key(2), direction))


def test_jvp_through_model_loss_matches_the_directional_finite_difference(second_order):
    np.testing.assert_allclose(second_order["primal"], second_order["loss"], rtol=1e-14)
    np.testing.assert_allclose(second_order["tangent"], second_order["directional"], rtol=1e-8)
    np.testing.assert_allclose(second_order["tangent"], second_order["gradient_dot_direction"], rtol=1e-12)


def test_hessian_of_model_loss_is_finite_symmetric_and_the_derivative_of_jax_grad(second_order):
    hessian, numeric = second_order["hessian"], second_order["numeric_hessian"]
    assert np.all(np.isfinite(hessian)) and np.max(np.abs(hessian)) > 0.1
    scale = np.max(np.abs(hessian))
    assert np.max(np.abs(hessian - hessian.T)) < 1e-12 * scale
    assert np.max(np.abs(hessian - numeric)) < 1e-7 * scale


# ----------------------------------------------------------------------------- one step is one optax update
MOMENTUM = optax.sgd(0.1, momentum=0.9)


@jax.jit
def momentum_reference(params, grads):
    """A momentum state that is not zero, and one optax update from it with ``grads``: one program for both modes."""
    state = MOMENTUM.update(jax.tree.map(jnp.ones_like, params), MOMENTUM.init(params), params)[1]
    updates, expected_state = MOMENTUM.update(grads, state, params)
    return state, optax.apply_updates(params, updates), expected_state


@pytest.mark.parametrize("grad", fn.engine.GRAD_MODES)
def test_one_train_step_is_one_optax_update_with_the_reference_gradient(grad):
    # the model has dropout and l2; the reference is jax.value_and_grad(model.loss) from every_gradient
    model = PROBLEMS["every-layer-kind"].model
    params, x, y, key = problem_data("every-layer-kind")
    value, grads = gradients_of("every-layer-kind")[0]["float64"]["autodiff"]
    state, expected_params, expected_state = momentum_reference(params, grads)
    expected = (expected_params, expected_state, value)
    new_params, new_state, new_value = fn.make_train_step(model, MOMENTUM, grad)(params, state, x, y, key=key)
    chex.assert_trees_all_close((new_params, new_state, new_value), expected, rtol=1e-12, atol=1e-15)
    assert max(relative_differences(params, new_params).values()) > 1e-3  # the step moved the params

"""Your own activation, loss and layer work in fn.mlp / fn.sequential exactly like built-ins.

The three pieces (mish, log-cosh, a learnable per-feature scale) each pass
their derivative check; a model made of them trains identically in both
gradient modes, its hand-written gradient equals jax.grad, and it saves and
loads (with the model passed back, since funcnet cannot rebuild functions
from a name).
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from test_derivative_checks import d_mish, mish, strict_dtype_promotion  # noqa: F401 (autouse fixture)

MISH = fn.activation("mish", mish, d_mish)
LOGCOSH = fn.loss("logcosh", lambda a, y: jnp.mean(jnp.log(jnp.cosh(a - y)), axis=-1),
                  lambda a, y: jnp.tanh(a - y) / a.shape[-1])  # ℓ = mean log cosh(a − y), ∂ℓ/∂a = tanh(a − y)/k
SCALE = fn.layer("scale", lambda key, n, dtype: {"s": jnp.ones((n,), dtype)},  # y = x ⊙ s
                 lambda params, x: (x * params["s"][None, :], x),
                 lambda params, x, dy: ({"s": jnp.sum(dy * x, axis=0)}, dy * params["s"][None, :]))


def _noise_forward(params, x, key):
    if key is None:  # inference: no noise
        return x, None
    noise = jax.random.normal(key, x.shape, x.dtype)
    return x + params["sigma"] * noise, noise


NOISE = fn.layer("noise", lambda key, n, dtype: {"sigma": jnp.full((), 0.1, dtype)},  # y = x + σ ε, ε ~ N(0, 1)
                 _noise_forward, lambda params, noise, dy: ({"sigma": jnp.sum(dy * noise)}, dy), needs_key=True)


def custom_model(l2=0.0):
    """3 → dense(8, mish) → scale → dense(2), log-cosh: every custom piece in one model."""
    return fn.sequential(3, [fn.dense(8, MISH), SCALE, fn.dense(2)], loss=LOGCOSH, l2=l2)


def problem(model, dtype, seed=0, rows=16):
    rng = np.random.default_rng(seed)
    params = model.init(jax.random.key(seed), dtype)
    # move every leaf off its initial value (scale 1, biases 0) so that each gradient path matters; casts and
    # sums run in NumPy, in `dtype` (the same rounding as jnp's, without compiling an op per leaf shape)
    params = jax.tree.map(lambda leaf: jax.device_put(np.asarray(leaf) + np.asarray(0.1 * rng.normal(size=leaf.shape),
                                                                                    dtype)), params)
    x = jax.device_put(np.asarray(rng.normal(size=(rows, model.n_in)), dtype))
    y = jax.device_put(np.asarray(rng.normal(size=(rows, model.n_out)), dtype))
    return params, x, y


def max_relative(first, second):
    return max(row.max_rel for row in fn.gradcheck.compare_grad_trees(first, second))


# ----------------------------------------------------------------------------- the pieces are right
@pytest.mark.parametrize("check", [lambda: fn.derivative_checks.check_activation(MISH), lambda: fn.derivative_checks.check_loss(LOGCOSH),
                                   lambda: fn.derivative_checks.check_layer(SCALE, 3), lambda: fn.derivative_checks.check_layer(NOISE, 3)],
                         ids=["mish", "logcosh", "scale", "noise"])
def test_custom_pieces_pass_their_derivative_checks(check):
    report = check()
    assert report.ok, str(report)


# ----------------------------------------------------------------------------- gradients
@pytest.mark.x64
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_manual_grad_equals_jax_grad_for_a_model_of_custom_pieces(l2):
    model = custom_model(l2)
    params, x, y = problem(model, jnp.float64)
    (value, manual), (expected_value, autodiff) = fn.gradcheck.manual_and_autodiff(model, params, x, y)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12)
    assert max_relative(manual, autodiff) < 1e-10


@pytest.mark.x64
def test_custom_output_activation_and_loss_work_in_mlp():
    model = fn.mlp([2, 6, 1], hidden=[MISH], output=MISH, loss=LOGCOSH)
    assert model.describe() == "2-6(mish)-1 → mish, logcosh"
    params, x, y = problem(model, jnp.float64)
    (_, manual), (_, autodiff) = fn.gradcheck.manual_and_autodiff(model, params, x, y)
    assert max_relative(manual, autodiff) < 1e-10


def test_mlp_takes_one_custom_activation_for_every_hidden_layer():
    model = fn.mlp([2, 8, 8, 1], hidden=MISH)
    assert model.hidden_activations == ("mish", "mish")


def test_a_custom_layer_may_not_take_a_built_in_kind_name():
    with pytest.raises(ValueError, match=r"`name='dense'` is a built-in layer kind \(dense, activation, dropout, "
                                         r"layer_norm\); give yours another name"):
        fn.layer("dense", lambda key, n, dtype: {}, lambda p, x: (x, None), lambda p, c, dy: ({}, dy))


@pytest.mark.x64
def test_keyed_custom_layer_gets_the_same_noise_in_both_gradient_modes():
    model = fn.sequential(3, [fn.dense(5, MISH), NOISE, fn.dense(1)], loss=LOGCOSH)
    params, x, y = problem(model, jnp.float64)
    (_, manual), (_, autodiff) = fn.gradcheck.manual_and_autodiff(model, params, x, y, key=jax.random.key(7))
    assert max_relative(manual, autodiff) < 1e-10
    assert float(jnp.abs(manual[1]["sigma"])) > 0  # the noise path is exercised


# ----------------------------------------------------------------------------- training
PRECISIONS = [(jnp.float64, 1e-12), (jnp.float32, 1e-5)]


@pytest.mark.x64
@pytest.mark.parametrize("dtype, rtol", PRECISIONS, ids=["float64", "float32"])
@pytest.mark.parametrize("model", [custom_model(), fn.sequential(3, [fn.dense(5, MISH), NOISE, fn.dense(1)],
                                                                 loss=LOGCOSH)],
                         ids=["dense-mish-scale-logcosh", "with-keyed-noise-layer"])
def test_fit_gives_the_same_params_in_both_gradient_modes(model, dtype, rtol):
    params, x, y = problem(model, dtype, rows=24)
    validation = (x[:8], y[:8])
    # fit's epoch loop (funcnet/engine.py) and optax.adam mix integer counts with floats: standard promotion
    optimizer = optax.adam(0.02)  # one object for both fits: they share its compiled set-up (prepare)
    with jax.numpy_dtype_promotion("standard"):
        results = {grad: fn.fit(model, params, optimizer, x, y, epochs=3, batch_size=8,
                                key=jax.random.key(1), grad=grad, validation_data=validation)
                   for grad in fn.engine.GRAD_MODES}
    (manual, manual_history), (autodiff, autodiff_history) = results["manual"], results["autodiff"]
    assert max_relative(manual, autodiff) < rtol
    np.testing.assert_allclose(manual_history["train_loss"], autodiff_history["train_loss"], rtol=rtol)
    np.testing.assert_allclose(manual_history["val_loss"], autodiff_history["val_loss"], rtol=rtol)
    assert manual_history["train_loss"][-1] < manual_history["train_loss"][0]


def test_predict_and_evaluate_work_with_custom_pieces():
    model = custom_model()
    params, x, y = problem(model, jnp.float32)
    np.testing.assert_array_equal(fn.predict(model, params, x), model.forward(params, x))
    np.testing.assert_allclose(fn.evaluate(model, params, x, y), jax.jit(model.eval_loss)(params, x, y), rtol=1e-6)


# ----------------------------------------------------------------------------- checkpoints
def test_save_then_load_with_the_model_predicts_bit_identically(tmp_path):
    model = custom_model()
    params, x, _ = problem(model, jnp.float32)
    path = tmp_path / "custom.npz"
    fn.save(path, model, params, history={"train_loss": [1.0]})
    checkpoint = fn.load(path, model=model)
    assert checkpoint.model is model
    for loaded, saved in zip(jax.tree.leaves(checkpoint.params), jax.tree.leaves(params)):
        np.testing.assert_array_equal(loaded, saved)
        assert loaded.dtype == saved.dtype
    np.testing.assert_array_equal(model.forward(checkpoint.params, x), model.forward(params, x))


@pytest.mark.parametrize("model, pieces", [
    (custom_model(), ["activation 'mish' (layer 0)", "layer 'scale' (layer 1)", "loss 'logcosh'"]),
    (fn.mlp([2, 4, 1], hidden=[MISH], output=MISH), ["activation 'mish' (layer 0)", "output 'mish'"]),
    (fn.sequential(2, [fn.dense(3), MISH, fn.dense(1)]), ["activation 'mish' (layer 1)"]),
], ids=["dense-scale-loss", "mlp-hidden-and-output", "activation-layer"])
def test_load_without_the_model_names_each_custom_piece(tmp_path, model, pieces):
    path = tmp_path / "custom.npz"
    fn.save(path, model, model.init(jax.random.key(0)))
    with pytest.raises(fn.CheckpointError, match="pass the model you saved it with: fn.load\\(path, model=model\\)") \
            as caught:
        fn.load(path)
    message = str(caught.value)
    assert f"names: {', '.join(pieces)};" in message
    for piece in pieces:
        assert re.search(re.escape(piece), message)


@pytest.mark.parametrize("other", [
    fn.sequential(3, [fn.dense(8, "tanh"), SCALE, fn.dense(2)], loss=LOGCOSH),
    fn.sequential(3, [fn.dense(8, fn.activation("mish2", mish, d_mish)), SCALE, fn.dense(2)], loss=LOGCOSH),
    fn.sequential(3, [fn.dense(8, MISH), SCALE._replace(name="scale2"), fn.dense(2)], loss=LOGCOSH),
    fn.sequential(3, [fn.dense(8, MISH), SCALE, fn.dense(2)], loss="mse"),
], ids=["builtin-activation", "other-custom-activation", "other-custom-layer", "builtin-loss"])
def test_load_rejects_a_model_with_a_different_custom_piece(tmp_path, other):
    model = custom_model()
    path = tmp_path / "custom.npz"
    fn.save(path, model, model.init(jax.random.key(0)))
    with pytest.raises(fn.CheckpointError, match="holds a different model"):
        fn.load(path, model=other)

"""funcnet's own code runs under ``jax.numpy_dtype_promotion("strict")``: no implicit dtype promotion anywhere.

Inside ``with jax.numpy_dtype_promotion("strict")`` JAX refuses every implicit
promotion between different dtypes (``float32 + int32``, ``float16 * float32``,
a Python float ``** int32``), so a path that runs there mixes no dtypes by
accident.  The main paths are checked here: forward, loss, the hand-written
and the ``jax.grad`` gradient, ``train_step`` with SGD (both modes), ``fit``
for one epoch (with a validation split and sample weights, a dropout and layer
norm model, integer class labels), ``fit_many``, ``predict`` and ``evaluate``,
and ``train_step`` given a float32 batch for float16 params (it casts the
batch explicitly, so nothing promotes).  Rank promotion ``"raise"`` is on for
the whole suite (``conftest.py``).

Which optax paths cannot run under strict promotion, and why (optax 0.2.8; each
found by running ``make_train_step`` twice under strict promotion, the
failing line is optax's):

* **The Adam family** (``adam``, ``adamw``, ``nadam``, ``adamax``, ``amsgrad``,
  ``adabelief``, ``lamb``, ``yogi``): ``optax.tree.bias_correction`` computes
  ``bias_correction_ = 1 - decay**count`` (``optax/tree_utils/_tree_math.py``,
  line 449), a Python float (``b1``; a float32 array under
  ``inject_hyperparams``) raised to the ``int32`` step count:
  ``TypePromotionError: Input dtypes (<class 'float'>, 'int32') have no
  available implicit dtype promotion path``.
  :func:`test_optax_adam_is_not_strict_because_of_its_bias_correction` pins it.
* ``radam``: ``b2t = b2**count_inc`` (``optax/_src/transform.py``, line 865), the same float ``**`` int32.
* ``noisy_sgd``: ``jnp.sqrt(eta / count_inc**gamma)`` (``optax/transforms/_adding.py``, line 164).
* **Schedules built on ``cosine_decay_schedule``** (``cosine_decay_schedule``,
  ``warmup_cosine_decay_schedule``): ``jnp.minimum(count, decay_steps)``
  (``optax/schedules/_schedule.py``, line 384) with the int32 count and a Python float.

These pass under strict promotion: ``sgd`` (plain, momentum, Nesterov),
``rmsprop`` (plain and centred), ``adagrad``, ``adadelta``, ``adafactor``,
``lars``, ``lion``, ``novograd``, ``sm3``, ``fromage``, ``sign_sgd``,
``clip_by_global_norm`` chained with ``sgd``, and ``inject_hyperparams(sgd)``.
None of the failures is in funcnet's code, and funcnet cannot cast inside
optax's update; the default (``"standard"``) promotion runs them all.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn

MODEL = fn.mlp([3, 8, 2], hidden="tanh")
SGD = optax.sgd(0.1)


@pytest.fixture(scope="module")
def problem():
    x = jax.random.normal(jax.random.key(1), (20, 3))
    return MODEL.init(jax.random.key(0)), x, jnp.sin(x[:, :2])


@pytest.fixture
def strict():
    with jax.numpy_dtype_promotion("strict"):
        yield


def test_forward_loss_and_both_gradients_run_under_strict_promotion(strict, problem):
    params, x, y = problem
    assert MODEL.forward(params, x).shape == (20, 2)
    loss = MODEL.loss(params, x, y, jnp.ones(20))
    manual_loss, manual = MODEL.manual_grad(params, x, y)
    autodiff_loss, autodiff = jax.value_and_grad(MODEL.loss)(params, x, y)
    assert np.isfinite(float(loss)) and abs(float(manual_loss) - float(autodiff_loss)) < 1e-6
    for a, b in zip(jax.tree.leaves(manual), jax.tree.leaves(autodiff)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("grad", fn.engine.GRAD_MODES)
def test_train_step_with_sgd_runs_under_strict_promotion(strict, problem, grad):
    params, x, y = problem
    train_step = fn.make_train_step(MODEL, SGD, grad)
    opt_state = SGD.init(params)
    first = None
    for _ in range(3):
        params, opt_state, loss = train_step(params, opt_state, x, y)
        first = float(loss) if first is None else first
    assert float(loss) < first


def test_train_step_casts_a_float32_batch_for_float16_params_explicitly_under_strict_promotion(strict, problem):
    params, x, y = problem
    params16 = jax.tree.map(lambda leaf: leaf.astype(jnp.float16), params)
    train_step = fn.make_train_step(MODEL, SGD, "manual")
    new_params, _, loss = train_step(params16, SGD.init(params16), x, y)
    assert loss.dtype == jnp.float16 and jax.tree.leaves(new_params)[0].dtype == jnp.float16


def test_fit_for_one_epoch_runs_under_strict_promotion(strict, problem):
    params, x, y = problem
    fitted, history = fn.fit(MODEL, params, SGD, x, y, epochs=1, batch_size=6, validation_split=0.25,
                             key=jax.random.key(2), sample_weight=np.linspace(0.5, 1.5, 20))
    assert np.isfinite(history["train_loss"][0]) and np.isfinite(history["val_loss"][0])
    assert np.isfinite(fn.evaluate(MODEL, fitted, x, y))
    assert fn.predict(MODEL, fitted, x).shape == (20, 2)


def test_fit_of_a_dropout_layer_norm_classifier_runs_under_strict_promotion(strict, problem):
    _, x, _ = problem
    model = fn.sequential(3, [fn.dense(6, "relu"), fn.layer_norm(), fn.dropout(0.2), fn.dense(3)],
                          loss="cross_entropy", l2=1e-3)
    labels = np.arange(20) % 3
    _, history = fn.fit(model, model.init(jax.random.key(0)), SGD, x, labels, epochs=1, batch_size=6,
                        key=jax.random.key(2), grad="manual")
    assert np.isfinite(history["train_loss"][0])
    assert fn.predict_labels(model, model.init(jax.random.key(0)), x).shape == (20,)


def test_fit_many_runs_under_strict_promotion(strict, problem):
    _, x, y = problem
    params = fn.stacked_init(MODEL, jax.random.split(jax.random.key(0), 2))
    _, _, histories = fn.fit_many(MODEL, params, SGD, x, y, epochs=1, batch_size=6, key=jax.random.key(2))
    assert all(np.isfinite(history["train_loss"][0]) for history in histories)


def test_optax_adam_is_not_strict_because_of_its_bias_correction(strict, problem):
    """Evidence for the module docstring: Adam's ``1 - decay**count`` mixes a float and the int32 step count."""
    params, x, y = problem
    adam = optax.adam(1e-3)
    train_step = fn.make_train_step(MODEL, adam, "manual")
    with pytest.raises(jax.dtypes.TypePromotionError,
                       match=r"Input dtypes \(\"<class 'float'>\", 'int32'\) have no available implicit dtype "
                             r"promotion path"):
        train_step(params, adam.init(params), x, y)

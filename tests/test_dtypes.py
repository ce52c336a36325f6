"""The dtype axis: float16, bfloat16, float32 and float64 through forward, loss, both gradients, train_step and fit.

One small model (3-8-2, tanh) and one batch per dtype.  Everything a dtype
needs compiles once: :func:`forward_loss_and_grads` returns the forward pass,
the loss and both gradient modes from one jitted call; the training tests
reuse one ``train_step`` per gradient mode and one compiled epoch.

What each dtype must do:

* every output (forward, loss, gradients, params, optimizer state) keeps the
  params' dtype, and the state's dtypes stay the same from step to step, so
  the jitted step compiles once (``_cache_size() == 1`` after several steps);
* losses stay finite, and training lowers the loss;
* the hand-written and ``jax.grad`` gradients agree, to a tolerance that fits
  the dtype (largest difference per leaf relative to the leaf's largest
  entry): 1e-12 in float64 (tight: both are exact up to rounding), 1e-5 in
  float32 (about 80 eps), 1e-2 in float16 (about 10 eps) and 5e-2 in bfloat16
  (about 6 eps).  The 16-bit results are also compared with the float32
  computation from the same params, to the same tolerance: the 16-bit path
  computes the same function, not just the same thing in both modes.
* ``fit`` sums the epoch's loss in float32 for 16-bit params and returns
  float losses; its epoch compiles once per dtype, however many epochs run.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn

MODEL = fn.mlp([3, 8, 2], hidden="tanh")
# this module's own: make_train_epoch caches per optimizer object.  eps=1e-4, not Adam's 1e-8: 1e-8 is 0 in
# float16 (smallest subnormal 6e-8), so a coordinate whose g² underflows divides m by 0 and the loss turns nan
OPTIMIZER = optax.adam(1e-2, eps=1e-4)
TOLERANCE = {"float16": 1e-2, "bfloat16": 5e-2, "float32": 1e-5, "float64": 1e-12}
DTYPES = [
    pytest.param(jnp.float16, id="float16"),
    pytest.param(jnp.bfloat16, id="bfloat16"),
    pytest.param(jnp.float32, id="float32"),
    pytest.param(jnp.float64, id="float64", marks=pytest.mark.x64),
]


def problem(dtype, rows=32):
    """``(params, x, y)`` in ``dtype``: the same float32 draws, cast (float64 draws under x64)."""
    wide = jnp.float64 if dtype == jnp.float64 else jnp.float32
    x = jax.random.normal(jax.random.key(1), (rows, 3), wide)
    y = jnp.sin(x[:, :2]) + 0.5 * x[:, 2:]
    params = jax.tree.map(lambda leaf: leaf.astype(dtype), MODEL.init(jax.random.key(0), wide))
    return params, x.astype(dtype), y.astype(dtype)


@jax.jit
def forward_loss_and_grads(params, x, y):
    """Forward pass, loss, the hand-written gradient and ``jax.grad``'s, in one compiled call."""
    return (MODEL.forward(params, x), MODEL.loss(params, x, y), MODEL.manual_grad(params, x, y),
            jax.value_and_grad(MODEL.loss)(params, x, y))


def dtypes_of(tree):
    return jax.tree.map(lambda leaf: jnp.asarray(leaf).dtype, tree)


def largest_relative_difference(tree, reference):
    """Per leaf ``max |a − b| / max |b|``, the largest over leaves (in float64 on the host)."""
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))
                     / np.max(np.abs(np.asarray(b, np.float64))))
               for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(reference)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_loss_and_both_gradient_modes_keep_the_dtype_and_agree(dtype):
    params, x, y = problem(dtype)
    outputs, loss, (manual_loss, manual), (autodiff_loss, autodiff) = forward_loss_and_grads(params, x, y)
    assert outputs.dtype == loss.dtype == manual_loss.dtype == autodiff_loss.dtype == dtype
    assert dtypes_of(manual) == dtypes_of(autodiff) == dtypes_of(params)
    assert np.isfinite(float(loss)) and float(manual_loss) == float(autodiff_loss) == float(loss)
    tolerance = TOLERANCE[jnp.dtype(dtype).name]
    assert largest_relative_difference(manual, autodiff) < tolerance
    if jnp.dtype(dtype).itemsize < 4:  # the same function as float32 computes from the same params
        wide = jax.tree.map(lambda leaf: leaf.astype(jnp.float32), (params, x, y))
        wide_outputs, wide_loss, (_, wide_manual), _ = forward_loss_and_grads(*wide)
        assert largest_relative_difference(outputs, wide_outputs) < tolerance
        assert abs(float(loss) - float(wide_loss)) < tolerance * float(wide_loss)
        assert largest_relative_difference(manual, wide_manual) < tolerance
        assert largest_relative_difference(autodiff, wide_manual) < tolerance


TRAIN_STEPS = {grad: fn.make_train_step(MODEL, OPTIMIZER, grad) for grad in fn.engine.GRAD_MODES}


@pytest.mark.parametrize("grad", fn.engine.GRAD_MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_train_step_keeps_params_and_optimizer_state_dtypes_and_compiles_once(dtype, grad):
    train_step = TRAIN_STEPS[grad]
    compiled_before = train_step._cache_size()
    params, x, y = problem(dtype)
    opt_state = OPTIMIZER.init(params)
    state_dtypes = dtypes_of((params, opt_state))
    losses = []
    for _ in range(6):
        params, opt_state, loss = train_step(params, opt_state, x, y)
        assert dtypes_of((params, opt_state)) == state_dtypes
        assert loss.dtype == dtype
        losses.append(float(loss))
    assert train_step._cache_size() - compiled_before == 1  # six steps, one compile for this dtype
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_fit_trains_in_the_dtype_with_float_losses_and_compiles_its_epoch_once(dtype):
    params, x, y = problem(dtype, rows=40)
    epoch_program = fn.engine.make_train_epoch(MODEL, OPTIMIZER, "manual", 8, None)  # as fit calls it
    before = epoch_program._cache_size()
    fitted, history = fn.fit(MODEL, params, OPTIMIZER, x, y, epochs=4, batch_size=8, validation_split=0.2,
                             key=jax.random.key(3), grad="manual")
    assert epoch_program._cache_size() - before == 1  # 4 epochs, one compiled program for this dtype
    assert dtypes_of(fitted) == dtypes_of(params)
    losses = history["train_loss"] + history["val_loss"]
    assert len(losses) == 8 and all(isinstance(value, float) and np.isfinite(value) for value in losses)
    assert history["train_loss"][-1] < history["train_loss"][0]

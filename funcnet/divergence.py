"""Why training went non-finite: the cause that :class:`funcnet.NonFiniteLossError` names.

``fit`` rules out two causes before it trains, with a ``ValueError`` that
names the argument: non-finite params or optimizer state
(:func:`funcnet.checks.check_params`), and non-finite data or data that
overflows the params' dtype (:func:`funcnet.check_data`, ``sample_weight``).
An epoch that ends with non-finite params reports a NaN loss
(:func:`funcnet.engine.make_train_epoch`), so when an epoch's loss is not finite the
params at its start are finite, and so is the data.  One more evaluation of
the loss at those params, at inference (dropout off, no L2 term), in the
training dtype and in float32 (float64 stays float64), tells the rest apart:

* ``"float16_overflow"``: 16-bit params, and the loss at the start of the
  epoch, or a sample's loss, is beyond the dtype's largest value (float16:
  65504), or is inf in the training dtype but finite in float32.  Scale the
  targets or train in float32.
* ``"optimizer_dtype"``: 16-bit params, and the optimizer's first update of
  a zero or small gradient is NaN/inf in that dtype but finite in float32
  (:func:`optimizer_breaks_in_dtype`): Adam's ``eps=1e-8`` is 0 in float16,
  so ``m / (sqrt(v) + eps)`` divides by 0.  ``fit`` refuses such an optimizer
  before training; the diagnosis catches what that probe cannot see.
* ``"manual_derivative"``: ``grad="manual"``, and at the start of the epoch
  the hand-written gradient over the training rows is not finite (or differs
  from ``jax.grad``'s by more than 10% of its norm) while ``jax.grad``'s is
  finite: a layer's or activation's hand-written derivative is wrong there
  (e.g. NaN at exactly ``z = 0``); the deepest such layer is named.
* ``"learning_rate"``: the loss at the start of the epoch is finite, so the
  epoch diverged from a finite point, and neither cause above holds: the
  learning rate is too high for this optimizer and data.
* ``"loss_at_start"``: the loss is not finite even at the start, with finite
  params and data: the forward pass or the loss overflows for these values
  (unscaled features or targets; a layer or loss of your own).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from funcnet.checks import params_dtype
from funcnet.row_chunks import MEAN_LOSS_ROWS, accumulation_dtype, map_row_chunks, mean_loss, per_sample_losses

CAUSES = ("float16_overflow", "optimizer_dtype", "manual_derivative", "learning_rate", "loss_at_start")
MANUAL_MISMATCH = 0.1  # a hand-written gradient this far (relative norm, per layer) from jax.grad's is suspect
GRADIENT_CHUNK = 4096  # rows per compiled gradient evaluation of the manual-derivative diagnosis


class Diagnosis(NamedTuple):
    """The cause of a non-finite loss and a sentence that explains it.

    Attributes:
      cause: one of :data:`CAUSES`.
      explanation: what was measured and what to do, for the error message.
    """

    cause: str
    explanation: str


@functools.partial(jax.jit, static_argnums=0)
def _losses_at(model, params, x, y):
    """``(loss in the training dtype, loss in float32, largest per-sample loss, largest |x|, largest |y|)``.

    Both means are :func:`funcnet.row_chunks.mean_loss`; the largest per-sample loss is taken over
    the same chunks, the padding masked out (``-inf``).
    """
    wide = accumulation_dtype(x.dtype)
    in_training_dtype = mean_loss(model, params, x, y)
    wide_params = jax.tree.map(lambda leaf: leaf.astype(wide), params)
    wide_x, wide_y = x.astype(wide), (y if jnp.issubdtype(y.dtype, jnp.integer) else y.astype(wide))

    def chunk_largest(mask, xc, yc):
        losses = per_sample_losses(model, wide_params, xc, yc)
        return jnp.max(jnp.where(mask.reshape(-1, *(1,) * (losses.ndim - 1)), losses, -jnp.inf))

    largest = jnp.max(map_row_chunks(chunk_largest, (wide_x, wide_y), min(MEAN_LOSS_ROWS, x.shape[0])))
    return (in_training_dtype.astype(wide), mean_loss(model, wide_params, wide_x, wide_y), largest,
            jnp.max(jnp.abs(x)).astype(wide), jnp.max(jnp.abs(wide_y)).astype(wide))


def diagnose(model, params, x, y, *, optimizer=None, grad: str = "autodiff", key=None) -> Diagnosis:
    """Why the loss on ``(x, y)`` went non-finite in training that started from ``params`` (finite).

    ``x`` and ``y`` are the training arrays as ``fit`` holds them (in the
    params' dtype).  Costs one compiled evaluation of the loss over the data;
    with ``optimizer`` and 16-bit params, one probe of its update
    (:func:`optimizer_breaks_in_dtype`); with ``grad="manual"``, one
    evaluation of both gradients over the data (``key``: the dropout key
    they share, needed when the model has dropout).
    """
    dtype = jnp.dtype(x.dtype)
    narrow, wide_mean, wide_max, largest_x, largest_y = (float(v) for v in _losses_at(model, params, x, y))
    if dtype.itemsize < 4:
        largest = float(jnp.finfo(dtype).max)
        if wide_max > largest or wide_mean > largest or (not math.isfinite(narrow) and math.isfinite(wide_mean)):
            return Diagnosis("float16_overflow", (
                f"the loss overflows {dtype.name}: at the start of the epoch it is {wide_mean:.6g} in float32 "
                f"(per-sample up to {wide_max:.6g}) but {narrow} in {dtype.name}, whose largest value is "
                f"{largest:.6g} (the loss or its terms, such as squared errors, exceed it). Scale the targets "
                "(e.g. standardise y) or train in float32 (model.init(key, jnp.float32))"))
    if math.isfinite(narrow) and optimizer is not None and optimizer_breaks_in_dtype(optimizer, params):
        return Diagnosis("optimizer_dtype", optimizer_dtype_advice(dtype))
    if math.isfinite(narrow) and grad == "manual":
        suspect = manual_derivative_suspect(model, params, x, y, key)
        if suspect is not None:
            return Diagnosis("manual_derivative", (
                f"the loss was finite ({narrow:.6g}) at the start of the epoch, and there {suspect}, while "
                "jax.grad's gradient is finite: the hand-written derivative (grad='manual') is the suspect, not "
                "the learning rate. Check it with fn.derivative_checks.check_activation / "
                "fn.derivative_checks.check_layer, or train with grad='autodiff'"))
    if math.isfinite(narrow):
        return Diagnosis("learning_rate", (
            f"it was finite ({narrow:.6g}) at the start of the epoch, so training diverged: the learning rate "
            "is most likely too high for this optimizer and data (try 10x smaller)"))
    return Diagnosis("loss_at_start", (
        f"the loss is already {narrow} at the start of the epoch, with finite params and finite data "
        f"(largest |x| {largest_x:.6g}, largest |y| {largest_y:.6g}): the forward pass or the loss overflows "
        f"{dtype.name} for these values. Standardise the features and targets, or check your own layers "
        "and losses with fn.derivative_checks.check_layer and fn.derivative_checks.check_loss"))


def optimizer_dtype_advice(dtype) -> str:
    """What breaks an optimizer in a 16-bit ``dtype`` and what to do, for error messages."""
    dtype = jnp.dtype(dtype)
    tiny = float(jnp.finfo(dtype).smallest_subnormal)
    return (f"the optimizer's update is NaN/inf in {dtype.name} for a zero or small gradient, though finite in "
            f"float32: an Adam-like optimizer divides by sqrt(v) + eps, and optax's default eps=1e-8 is 0 in "
            f"{dtype.name} (its smallest positive value is {tiny:.3g}), as is the square of a gradient below "
            f"{math.sqrt(tiny / 1e-3):.2g}, so the update is 0/0 or m/0. Use a larger eps (e.g. "
            f"optax.adam(learning_rate, eps=1e-4)), or float32 params (model.init(key, jnp.float32)), or a "
            f"float16 copy of float32 params for the forward pass only")


def optimizer_breaks_in_dtype(optimizer, params) -> bool:
    """Whether ``optimizer`` cannot update ``params`` of their (16-bit) dtype: NaN/inf where float32 is finite.

    The probe: from ``optimizer.init(params)``, one update of a zero gradient and one of a small gradient
    (1e-4 in every coordinate), in the params' dtype and in float32.  True when a 16-bit update is
    not finite while the float32 ones are.  An optimizer that the probe cannot run (one needing
    arguments funcnet does not pass) is not blamed.  One compiled call per optimizer and param shapes.
    """
    dtype = params_dtype(params)
    if dtype is None or jnp.dtype(dtype).itemsize >= 4:
        return False
    wide = jax.tree.map(lambda leaf: leaf.astype(jnp.float32), params)
    try:
        narrow_finite, wide_finite = _first_updates_finite(optimizer, params), _first_updates_finite(optimizer, wide)
    except Exception:  # noqa: BLE001  (a probe that cannot run blames nothing; training reports what happens)
        return False
    return wide_finite and not narrow_finite


@functools.partial(jax.jit, static_argnums=0)
def _finite_first_updates(optimizer, params):
    from funcnet.engine import optimizer_update, params_are_finite

    state = optimizer.init(params)
    dtype = params_dtype(params)
    finite = []
    for fill in (0.0, 1e-4):
        grads = jax.tree.map(lambda leaf: jnp.full_like(leaf, fill), params)
        updates, _ = optimizer_update(optimizer, grads, state, params, jnp.zeros((), dtype),
                                      lambda candidate: sum(jnp.vdot(g, c) for g, c in zip(
                                          jax.tree.leaves(grads), jax.tree.leaves(candidate))))
        finite.append(params_are_finite(updates))
    return jnp.all(jnp.stack(finite))


def _first_updates_finite(optimizer, params) -> bool:
    """Whether ``optimizer``'s first updates of a zero and a small gradient are finite (:func:`optimizer_breaks_in_dtype`)."""
    return bool(_finite_first_updates(optimizer, params))


def manual_derivative_suspect(model, params, x, y, key=None):
    """Where the hand-written gradient goes wrong at ``params`` over ``(x, y)``, or ``None``.

    Compares ``model.manual_grad`` with ``jax.grad(model.loss)``, each summed over
    chunks of :data:`GRADIENT_CHUNK` rows.  When ``jax.grad``'s is finite and the
    hand-written one is not, or differs by more than :data:`MANUAL_MISMATCH` of
    its norm, the deepest layer where that happens is named (a wrong derivative
    in layer ``l`` spoils the gradients of layer ``l`` and of the layers before
    it, not after): ``"layer 1 (dense, activation 'bad')'s gradient is not finite"``.
    """
    manual, autodiff = _both_gradients(model, params, x, y, key)
    suspects = []
    for index, (by_hand, by_autodiff) in enumerate(zip(manual, autodiff)):
        reference = [jnp.asarray(leaf, jnp.float32) for leaf in jax.tree.leaves(by_autodiff)]
        mine = [jnp.asarray(leaf, jnp.float32) for leaf in jax.tree.leaves(by_hand)]
        if not reference or not all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in reference):
            continue
        if not all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in mine):
            suspects.append((index, "is not finite"))
            continue
        difference = math.sqrt(sum(float(jnp.sum((a - b) ** 2)) for a, b in zip(mine, reference)))
        scale = math.sqrt(sum(float(jnp.sum(b ** 2)) for b in reference))
        if difference > MANUAL_MISMATCH * scale:
            suspects.append((index, f"differs from jax.grad's by {difference / max(scale, 1e-30):.3g} of its norm"))
    if not suspects:
        return None
    index, how = suspects[-1]
    layer = model.layers[index]
    activation = dict(layer.config).get("activation")
    named = f"layer {index} ({layer.name}" + (f", activation {activation!r})" if activation else ")")
    return f"the hand-written gradient of {named} {how}"


@functools.partial(jax.jit, static_argnums=0)
def _both_gradients(model, params, x, y, key):
    """``(manual grads, jax.grad's)`` of the mean loss over every row, in chunks of :data:`GRADIENT_CHUNK` rows.

    The chunks are :func:`funcnet.row_chunks.map_row_chunks`'s: the last is filled up by
    repeating the last row, at weight 0 (its mask), so no row is seen that is not in the data;
    each chunk's gradient (of the weighted mean loss) weighs its share of the real rows.
    """
    rows = x.shape[0]

    def chunk_gradients(mask, xc, yc):
        weights = mask.astype(xc.dtype)
        manual = model.manual_grad(params, xc, yc, weights, key=key)[1]
        autodiff = jax.grad(model.loss)(params, xc, yc, weights, key=key)
        share = jnp.sum(weights.astype(jnp.float32)) / rows
        return jax.tree.map(lambda g: g.astype(jnp.float32) * share, (manual, autodiff))

    per_chunk = map_row_chunks(chunk_gradients, (x, y), min(rows, GRADIENT_CHUNK))
    return jax.tree.map(lambda g: jnp.sum(g, axis=0), per_chunk)

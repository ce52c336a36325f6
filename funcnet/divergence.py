"""Why training went non-finite: the cause that :class:`funcnet.NonFiniteLossError` names.

``fit`` rules out two causes before it trains, with a ``ValueError`` that
names the argument: non-finite params or optimizer state
(:func:`funcnet.checks.check_params`), and non-finite data or data that
overflows the params' dtype (:func:`funcnet.check_data`, ``sample_weight``).
An epoch that ends with non-finite params reports a NaN loss
(:func:`funcnet.make_train_epoch`), so when an epoch's loss is not finite the
params at its start are finite, and so is the data.  One more evaluation of
the loss at those params, at inference (dropout off, no L2 term), in the
training dtype and in float32 (float64 stays float64), tells the rest apart:

* ``"float16_overflow"``: 16-bit params, and the loss at the start of the
  epoch, or a sample's loss, is beyond the dtype's largest value (float16:
  65504), or is inf in the training dtype but finite in float32.  Scale the
  targets or train in float32.
* ``"learning_rate"``: the loss at the start of the epoch is finite, so the
  epoch diverged from a finite point: the learning rate is too high for this
  optimizer and data.
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

from funcnet.data import map_in_chunks
from funcnet.engine import accumulation_dtype, mean_loss

CAUSES = ("float16_overflow", "learning_rate", "loss_at_start")


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
    """``(loss in the training dtype, loss in float32, largest per-sample loss, largest |x|, largest |y|)``."""
    wide = accumulation_dtype(x.dtype)
    in_training_dtype = mean_loss(model, params, x, y)
    wide_params = jax.tree.map(lambda leaf: leaf.astype(wide), params)
    wide_y = y if jnp.issubdtype(y.dtype, jnp.integer) else y.astype(wide)
    per_sample = map_in_chunks(
        lambda xc, yc: model.loss_fn.per_sample(model.logits(wide_params, xc), yc, model.output_fn),
        (x.astype(wide), wide_y), 8192)
    return (in_training_dtype.astype(wide), jnp.mean(per_sample), jnp.max(per_sample),
            jnp.max(jnp.abs(x)).astype(wide), jnp.max(jnp.abs(wide_y)).astype(wide))


def diagnose(model, params, x, y) -> Diagnosis:
    """Why the loss on ``(x, y)`` went non-finite in training that started from ``params`` (finite).

    ``x`` and ``y`` are the training arrays as ``fit`` holds them (in the
    params' dtype).  Costs one compiled evaluation of the loss over the data.
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
    if math.isfinite(narrow):
        return Diagnosis("learning_rate", (
            f"it was finite ({narrow:.6g}) at the start of the epoch, so training diverged: the learning rate "
            "is most likely too high for this optimizer and data (try 10x smaller)"))
    return Diagnosis("loss_at_start", (
        f"the loss is already {narrow} at the start of the epoch, with finite params and finite data "
        f"(largest |x| {largest_x:.6g}, largest |y| {largest_y:.6g}): the forward pass or the loss overflows "
        f"{dtype.name} for these values. Standardise the features and targets, or check your own layers "
        "and losses with fn.check_layer and fn.check_loss"))

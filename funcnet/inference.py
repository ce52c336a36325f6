"""Inference: predictions, class labels and the mean loss over whole datasets, in chunks of rows."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from funcnet import checks
from funcnet.data import map_in_chunks
from funcnet.engine import as_arrays, mean_loss


@functools.partial(jax.jit, static_argnums=(0, 3))
def _predict_compiled(model, params, x, batch_size):
    return map_in_chunks(lambda chunk: model.forward(params, chunk), (x,), batch_size)


def predict(model, params, x, batch_size: int = 8192):
    """The network's outputs ``model.forward(params, x)``, computed ``batch_size`` rows at a time.

    Checks ``x`` (shape, NaN/inf) first.  Returns ``(n, sizes[-1])``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    checks.check_params(model, params)
    dtype = jax.tree.leaves(params)[0].dtype
    checks.check_data(model, x, dtype=dtype)
    x = jnp.asarray(x, dtype)
    return _predict_compiled(model, params, x, batch_size)


def predict_labels(model, params, x, batch_size: int = 8192):
    """Class labels for classifiers: ``argmax`` for softmax, ``A > 0.5`` for sigmoid.

    Returns integer labels: ``(n,)`` for softmax outputs, ``(n, k)`` for sigmoid outputs.

    Raises:
      ValueError: for a model whose output is neither sigmoid nor softmax.
    """
    if model.output_activation not in ("sigmoid", "softmax"):
        raise ValueError(
            f"predict_labels needs a classifier (output='sigmoid' or 'softmax'), but this "
            f"model's output is {model.output_activation!r}; use predict for regression"
        )
    outputs = predict(model, params, x, batch_size)
    if model.output_activation == "softmax":
        return jnp.argmax(outputs, axis=-1)
    return (outputs > 0.5).astype(jnp.int32)


def evaluate(model, params, x, y, batch_size: int = 8192) -> float:
    """Mean loss over a whole dataset, in chunks of ``batch_size`` rows; checks the data first."""
    checks.check_params(model, params)
    checks.check_data(model, x, y, jax.tree.leaves(params)[0].dtype)
    x, y = as_arrays(model, params, x, y)
    return float(_evaluate_compiled(model, params, x, y, batch_size))


@functools.partial(jax.jit, static_argnums=(0, 4))
def _evaluate_compiled(model, params, x, y, batch_size):
    return mean_loss(model, params, x, y, batch_size)


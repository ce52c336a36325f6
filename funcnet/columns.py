"""The first article's column-major layout, used for training: activations are ``(features, batch)``.

:mod:`funcnet.backprop` is batch-first (``Z = A W + b``, rows are samples).
The first article keeps samples in columns, ``Z = W A + b``.  Both compute
the same numbers, transposed.  Here the *parameters and data keep funcnet's
public shapes* (``W`` is ``(n_in, n_out)``, ``x`` is ``(m, n_in)``) and only
the activations inside are transposed.  For layer ``l`` with ``A⁽ˡ⁻¹⁾`` of
shape ``(n_in, m)``:

    forward    Z = Wᵀ A⁽ˡ⁻¹⁾ + b            (n_out, m)    the article's W A + b
               A = g(Z)                    (n_out, m)

    backward   dZ = dA ⊙ g'(Z)             (n_out, m)
               dW = A⁽ˡ⁻¹⁾ dZᵀ              (n_in, n_out) already in funcnet's layout
               db = Σ_columns dZ           (n_out,)
               dA⁽ˡ⁻¹⁾ = W dZ               (n_in, m)     the article's Wᵀ dZ

with ``dZ⁽ᴸ⁾ = (δ / m)ᵀ`` at the output, exactly as in :mod:`funcnet.backprop`.
The loss and its output delta are computed on ``Zᵀ`` (``(m, k)``), so every
loss in :mod:`funcnet.losses` works unchanged; hidden activations are
elementwise, so they do not care about the layout.

Why a second layout: speed on XLA:CPU.  A tiny network's products, e.g.
``(64, 10) @ (10, 10)``, run through a dot library that is fastest when the
long dimension (the batch) is the contiguous one.  Measured on this project's
machine (one core, 5-10-10-1, batch 64, Adam): a training epoch in this layout
took 0.55x the time of the batch-first one for one model (18 -> 10 ms), and
0.4-0.5x for 16 models under ``jax.vmap`` (``fit_many``), where batch-first
products become batched products with a 10-wide minor dimension (see
BENCHMARKS.md).

Both gradient modes have a column-major form: ``jax.value_and_grad`` of
:func:`loss`, and the hand-written :func:`manual_value_and_grad`.  They agree
with ``jax.grad(model.loss)`` and ``model.manual_grad`` up to rounding (the
tests check float64 to 1e-10).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from funcnet import backprop

Array = jax.Array


def materialised(array: Array) -> Array:
    """``array`` as its own buffer, so that XLA cannot fold a transpose inside it into a product.

    XLA folds ``transpose`` into the ``dot`` that consumes it, as a transposed
    operand; XLA:CPU's fast small-matrix path takes row-major operands only
    and runs the folded product 2-4x slower.  The optimisation barrier
    changes no value and has the identity's gradient.
    """
    return lax.optimization_barrier(array)


def feature_rows(x: Array) -> Array:
    """``xᵀ``, ``(n_in, m)``: the first layer's input as a row-major array.

    With ``x`` itself the first layer's ``dW = xᵀ dZᵀ`` would be a product with
    both operands transposed, the slowest form.
    """
    return materialised(x.T)


@jax.custom_vjp
def linear(weights: Array, inputs: Array) -> Array:
    """``Wᵀ A``: ``(n_in, n_out)ᵀ @ (n_in, m) -> (n_out, m)``, the first article's ``W A``.

    ``jax.grad`` differentiates through this as through any product; its
    pullback is written out only to choose the operand layouts:

        dW = A dZᵀ      (n_in, n_out)
        dA = W dZ       (n_in, m)

    Left to itself, autodiff would compute ``dA = (Wᵀ)ᵀ dZ`` from the
    materialised ``Wᵀ``, a transposed operand again: a 5-10-10-1 epoch took
    12.0 ms that way and 10.0 ms with this pullback (one core).  The tests
    check ``jax.grad`` through this against ``jax.grad(model.loss)``.
    """
    return materialised(weights.T) @ inputs


def _linear_forward(weights, inputs):
    return linear(weights, inputs), (weights, inputs)


def linear_pullback(weights: Array, inputs: Array, dz: Array, need_input_grad: bool = True):
    """``(dW, dA) = (A dZᵀ, W dZ)`` for ``Z = Wᵀ A``; ``dA`` is None when not needed."""
    return inputs @ dz.T, (weights @ dz if need_input_grad else None)


def _linear_backward(residuals, dz):
    return linear_pullback(*residuals, dz)


linear.defvjp(_linear_forward, _linear_backward)


def dense_forward(layer: dict, inputs: Array) -> Array:
    """``Z = Wᵀ A + b``: ``(n_out, n_in) @ (n_in, m) + (n_out, 1) -> (n_out, m)``."""
    return linear(layer["W"], inputs) + layer["b"][:, None]


def dense_backward(layer: dict, inputs: Array, dz: Array, need_input_grad: bool = True):
    """One layer's backward step: ``dW = A dZᵀ``, ``db = Σ_columns dZ``, ``dA = W dZ``.

    Args:
      layer: ``{"W": (n_in, n_out), "b": (n_out,)}``.
      inputs: ``A⁽ˡ⁻¹⁾``, ``(n_in, m)``.
      dz: ``dZ``, ``(n_out, m)``.
      need_input_grad: whether to compute ``dA⁽ˡ⁻¹⁾`` (not needed for the first layer).

    Returns:
      ``({"W": (n_in, n_out), "b": (n_out,)}, dA⁽ˡ⁻¹⁾ (n_in, m) or None)``.
    """
    weight_grad, input_grad = linear_pullback(layer["W"], inputs, dz, need_input_grad)
    return {"W": weight_grad, "b": jnp.sum(dz, axis=1)}, input_grad


def loss(model, params: list, x: Array, y: Array, weights: Array | None = None) -> Array:
    """``model.loss(params, x, y, weights)``, computed column-major (same arguments and shapes)."""
    model._check_batch(params, x, y, weights)
    z_out = backprop.forward_with_cache(model, params, feature_rows(x), dense_forward)[1][-1].T
    return backprop.weighted_mean(backprop.per_sample_losses(model, z_out, y), weights)


def manual_value_and_grad(model, params: list, x: Array, y: Array, weights: Array | None = None):
    """``model.manual_grad(params, x, y, weights)``, computed column-major: ``(loss, grads)``."""
    model._check_batch(params, x, y, weights)
    inputs, preactivations = backprop.forward_with_cache(model, params, feature_rows(x), dense_forward)
    z_out = preactivations[-1].T
    value = backprop.weighted_mean(backprop.per_sample_losses(model, z_out, y), weights)
    dz = backprop.output_gradient(model, z_out, y, weights).T
    grads = backprop.propagate_back(model, params, inputs, preactivations, dz, dense_backward)
    return value, grads


def value_and_grad_fn(model, grad: str = "autodiff"):
    """``(params, x, y, weights=None) -> (loss, grads)`` in the column-major layout.

    ``grad="autodiff"`` is ``jax.value_and_grad`` of :func:`loss`;
    ``grad="manual"`` is :func:`manual_value_and_grad`.  Shapes in and out are
    funcnet's public, batch-first ones.  This is what training steps use.
    """
    if grad == "autodiff":
        return jax.value_and_grad(lambda params, x, y, weights=None: loss(model, params, x, y, weights))
    if grad == "manual":
        return lambda params, x, y, weights=None: manual_value_and_grad(model, params, x, y, weights)
    raise ValueError(f"unknown grad {grad!r}; expected one of autodiff, manual")

"""Hand-written backpropagation: the articles' equations, vectorised over the batch.

Shapes are batch-first.  For layer ``l`` with input ``A⁽ˡ⁻¹⁾`` (``(m, n_in)``),
weights ``W`` (``(n_in, n_out)``) and bias ``b`` (``(n_out,)``):

    forward    Z = A⁽ˡ⁻¹⁾ W + b            (m, n_out)
               A = g(Z)                    (m, n_out)

    backward   dZ = dA ⊙ g'(Z)             (m, n_out)   pre-activation gradient
               dW = A⁽ˡ⁻¹⁾ᵀ dZ              (n_in, n_out) weight gradient
               db = Σ_rows dZ              (n_out,)     bias gradient
               dA⁽ˡ⁻¹⁾ = dZ Wᵀ              (m, n_in)    gradient to the layer's input

``dA`` and ``dZ`` are gradients of the batch-mean loss ``L = (1/m) Σ_i ℓ_i``,
so row ``i`` is ``(1/m) ∂ℓ_i/∂Z_i``.  At the output layer

    dZ⁽ᴸ⁾ = δ / m                                        (m, k)

where ``δ`` is the loss's per-sample ``output_delta`` (fused to ``A - Y`` for
sigmoid + log-loss and softmax + cross-entropy).  The ``1/m`` is applied once,
there, and every ``dW`` and ``db`` inherits it.

How this maps to the articles:

* The first article is column-major: ``Z = W A1 + b`` with ``W`` of shape
  ``(n_out, n_in)`` and samples in columns.  Ours is its transpose:
  ``Zᵀ = A1ᵀ Wᵀ + bᵀ``, so our ``W`` is its ``W.T``.  It keeps per-sample
  ``dZ`` and divides in every layer (``dW = 1/m dZ A1ᵀ``, ``db = 1/m Σ dZ``);
  we divide once, at the output, so our ``dZ`` is its ``dZ / m`` (transposed)
  and our ``dW = A1ᵀ dZ`` is its ``dW.T``.  Same numbers, fewer operations:
  scaling the ``(m, k)`` output delta once instead of every ``dW`` was 14%
  of a step for 256-wide layers.  :mod:`funcnet.columns` writes the same
  equations in the article's own layout; training steps use that one (it is
  faster on CPU), and the tests hold both to ``jax.grad``.
* The second article uses ``dW = Aᵀ dZ`` (a *sum* over the batch) but
  ``db = mean(dZ)`` (a *mean*), with the per-sample "gradient" ``A - Y`` of
  ``½(A - Y)²``.  Those are not the gradients of any one loss.  With our
  ``dZ = 2(A - Y)/m`` both ``dW`` and ``db`` are sums, and ``manual_grad`` is
  the exact gradient of the mean loss that ``jax.grad`` differentiates;
  ``examples/worked_example.py`` shows both side by side.
* Both articles update ``W`` inside ``backprop`` and then propagate with the
  *updated* weights (``dA1 = W.T dZ`` after ``W -= lr dW``).  Here backprop
  only computes gradients, with the weights of the forward pass; the update
  is optax's job.

With sample weights ``w``, the output delta is scaled by ``w_i / Σ w``
instead of ``1/m``: the exact gradient of ``Σ w_i ℓ_i / Σ w_i``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def dense_forward(layer: dict, inputs: Array) -> Array:
    """``Z = A W + b``: ``(m, n_in) @ (n_in, n_out) + (n_out,) -> (m, n_out)``."""
    return inputs @ layer["W"] + layer["b"]


def dense_backward(layer: dict, inputs: Array, dz: Array, need_input_grad: bool = True):
    """The backward step of one dense layer, given its pre-activation gradient.

    Args:
      layer: ``{"W": (n_in, n_out), "b": (n_out,)}`` as used in the forward pass.
      inputs: ``A⁽ˡ⁻¹⁾``, the layer's input, ``(m, n_in)``.
      dz: ``dZ``, the loss's gradient at the pre-activation, ``(m, n_out)``.
      need_input_grad: whether to compute ``dA⁽ˡ⁻¹⁾`` (not needed for the first layer).

    Returns:
      ``({"W": dW, "b": db}, dA⁽ˡ⁻¹⁾ or None)`` with
      ``dW = A⁽ˡ⁻¹⁾ᵀ dZ``, ``db = Σ_rows dZ``, ``dA⁽ˡ⁻¹⁾ = dZ Wᵀ``.
    """
    grads = {"W": inputs.T @ dz, "b": jnp.sum(dz, axis=0)}
    input_grad = dz @ layer["W"].T if need_input_grad else None
    return grads, input_grad


def forward_with_cache(model, params: list, x: Array, layer_forward=dense_forward):
    """Run the network forward, keeping what backprop needs.

    ``layer_forward`` is :func:`dense_forward`, or the column-major one of
    :mod:`funcnet.columns` (then ``x`` is ``(n_in, m)``, and so is every array returned).

    Returns:
      ``(inputs, preactivations)``: ``inputs[l]`` is ``A⁽ˡ⁾`` fed to layer ``l``
      (``inputs[0] = x``) and ``preactivations[l]`` is its ``Z``.  The
      network's output is ``model.output_fn.apply(preactivations[-1])``.
    """
    inputs, preactivations = [x], []
    for index, layer in enumerate(params):
        z = layer_forward(layer, inputs[-1])
        preactivations.append(z)
        if index < len(params) - 1:
            inputs.append(model.hidden_fn.apply(z))
    return inputs, preactivations


def per_sample_losses(model, z_out: Array, y: Array) -> Array:
    """``ℓ_i`` for every row, from the output pre-activation, shape ``(m,)``."""
    return model.loss_fn.per_sample(z_out, y, model.output_fn)


def weighted_mean(values: Array, weights: Array | None) -> Array:
    """``Σ w_i v_i / Σ w_i``, or the plain mean when ``weights`` is ``None``."""
    if weights is None:
        return jnp.mean(values)
    return jnp.sum(weights * values) / jnp.sum(weights)


def output_gradient(model, z_out: Array, y: Array, weights=None) -> Array:
    """``dZ⁽ᴸ⁾``, the mean loss's gradient at the output pre-activation, ``(m, k)``.

    ``δ / m`` from the loss's per-sample ``output_delta``, or ``δ · w / Σw``
    with sample weights.
    """
    delta = model.loss_fn.output_delta(z_out, y, model.output_fn)
    if weights is None:
        return delta / delta.shape[0]
    weights = weights.astype(delta.dtype)
    return delta * (weights / jnp.sum(weights))[:, None]


def backward_pass(model, params: list, inputs: list, preactivations: list, y: Array, weights=None):
    """Propagate the loss gradient from the output layer back to the first.

    Implements, for ``l = L … 1``: output ``dZ⁽ᴸ⁾ = δ / m`` (the loss's
    ``output_delta``; ``δ · w / Σw`` when weighted), then
    ``dW, db, dA⁽ˡ⁻¹⁾ = dense_backward(...)`` and
    ``dZ⁽ˡ⁻¹⁾ = dA⁽ˡ⁻¹⁾ ⊙ g'(Z⁽ˡ⁻¹⁾)``.

    Returns:
      gradients with the same tree structure as ``params``.
    """
    dz = output_gradient(model, preactivations[-1], y, weights)
    return propagate_back(model, params, inputs, preactivations, dz)


def propagate_back(model, params: list, inputs: list, preactivations: list, dz: Array,
                   layer_backward=dense_backward):
    """The loop of :func:`backward_pass`, from a given output ``dZ⁽ᴸ⁾``.

    ``layer_backward`` is this module's :func:`dense_backward` or the
    column-major one of :mod:`funcnet.columns`; ``inputs``, ``preactivations``
    and ``dz`` must be in that function's layout.
    """
    grads = [None] * len(params)
    for index in reversed(range(len(params))):
        grads[index], input_grad = layer_backward(
            params[index], inputs[index], dz, need_input_grad=index > 0
        )
        if index > 0:
            dz = model.hidden_fn.backward(preactivations[index - 1], input_grad)
    return grads


def manual_value_and_grad(model, params: list, x: Array, y: Array, weights=None):
    """Mean loss and its gradient by hand-written backprop: one forward, one backward.

    Returns:
      ``(loss, grads)`` where ``grads`` has the structure of ``params`` and
      equals ``jax.grad(model.loss)(params, x, y, weights)`` up to rounding.
    """
    inputs, preactivations = forward_with_cache(model, params, x)
    value = weighted_mean(per_sample_losses(model, preactivations[-1], y), weights)
    grads = backward_pass(model, params, inputs, preactivations, y, weights)
    return value, grads

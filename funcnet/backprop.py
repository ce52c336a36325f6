"""Hand-written backpropagation: the reversed fold over the layers' backwards.

This is the only hand-written backward pass in funcnet.  ``model.manual_grad``,
``make_train_step(grad="manual")``, ``fit``, ``fit_many``, ``compare_grads``
and ``funcnet gradcheck`` all run :func:`manual_value_and_grad`.
``grad="autodiff"`` is ``jax.value_and_grad(model.loss)``, and both run the
same forward, :func:`funcnet.forward.forward` (``model.loss`` leaves its
caches unused), so the two modes differ only in who writes the backward: the
layers' ``backward`` functions here, ``jax.grad`` there.  The autodiff path
never runs this module.

For a network of layers ``f₁ … f_L`` with params ``θ₁ … θ_L`` (shapes batch-first;
the forward and the loss are :mod:`funcnet.forward`'s):

    forward     X⁽⁰⁾ = X,   X⁽ˡ⁾, cacheˡ = f_l.forward(θ_l, X⁽ˡ⁻¹⁾, keyˡ)       Z = X⁽ᴸ⁾  (m, k)
    loss        L = (1/m) Σ_i ℓ(Z_i, Y_i) + (λ/2) Σ_W ‖W‖²
    output      dZ = δ / m,  δ_i = ∂ℓ_i/∂Z_i  (the loss's output_delta)          (m, k)
    backward    dθ_l, dX⁽ˡ⁻¹⁾ = f_l.backward(θ_l, cacheˡ, dX⁽ˡ⁾)     for l = L … 1
    penalty     dW += λ W      for every leaf named "W"

``dX`` and ``dZ`` are gradients of the batch-mean loss, so row ``i`` is
``(1/m) ∂ℓ_i/∂Z_i``: the ``1/m`` is applied once, at the output, and every
``dW`` and ``db`` inherits it.  With sample weights ``w`` it is ``w_i / Σ w``
instead, the exact gradient of ``Σ w_i ℓ_i / Σ w_i``.

How this maps to the articles:

* The first article is column-major: ``Z = W A1 + b`` with ``W`` of shape
  ``(n_out, n_in)`` and samples in columns.  funcnet's public shapes are its
  transpose, ``Z = A1 W + b`` with ``W`` of shape ``(n_in, n_out)``;
  :func:`funcnet.dense` computes inside in the article's layout (faster on
  CPU).  The article keeps per-sample ``dZ`` and divides by ``m`` in every
  layer (``dW = 1/m dZ A1ᵀ``); here the division happens once at the output,
  so our ``dZ`` is its ``dZ / m`` (transposed) and our ``dW`` its ``dW.T``.
* The second article uses ``dW = Aᵀ dZ`` (a *sum* over the batch) but
  ``db = mean(dZ)`` (a *mean*), with the per-sample "gradient" ``A - Y`` of
  ``½(A - Y)²``.  Those are not the gradients of any one loss.  Here the
  output's ``dZ = 2(A - Y)/m`` and both ``dW`` and ``db`` are sums of it:
  the exact gradient of the mean loss that ``jax.grad`` differentiates
  (``examples/worked_example.py`` shows both).
* Both articles update ``W`` inside ``backprop`` and then propagate with the
  *updated* weights.  Here backprop only computes gradients, with the
  weights of the forward pass; the update is optax's job.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from funcnet.forward import forward_steps, l2_penalty, weighted_mean

Array = jax.Array


def backward_steps(layers, params, caches, dz: Array, observe=None):
    """The reversed fold: each layer's hand-written ``backward`` from the output gradient ``dZ`` down.

    ``observe``, if given, ``(index, name, value) -> value``, is passed to the
    ``backward`` of each layer with ``inner`` quantities (as ``(name, value)``;
    a dense layer reports ``"dZ"``), as :func:`funcnet.forward.forward_steps`
    passes it to their ``forward``.

    Returns:
      ``(grads, incoming, input_grads)``: gradients with the structure of
      ``params``; ``incoming[l] = dX⁽ˡ⁾``, the gradient arriving at layer ``l``
      from above; ``input_grads[l] = dX⁽ˡ⁻¹⁾``, what layer ``l`` passes down
      (the first layer's is computed and, under ``jit``, removed by XLA when unused).
    """
    count = len(layers)
    grads, incoming, input_grads = [None] * count, [None] * count, [None] * count
    for index in reversed(range(count)):
        incoming[index] = dz
        layer = layers[index]
        if observe is not None and layer.inner:
            grads[index], dz = layer.backward(params[index], caches[index], dz,
                                              observe=lambda name, value, index=index: observe(index, name, value))
        else:
            grads[index], dz = layer.backward(params[index], caches[index], dz)
        input_grads[index] = dz
    return grads, incoming, input_grads


def output_gradient(model, z_out: Array, y: Array, weights=None) -> Array:
    """``dZ⁽ᴸ⁾``, the mean loss's gradient at the network's output ``Z``, ``(m, k)``.

    ``δ / m`` from the loss's per-sample ``output_delta``, or ``δ · w / Σw``
    with sample weights.
    """
    delta = model.loss_fn.output_delta(z_out, y, model.output_fn)
    if weights is None:
        return delta / delta.shape[0]
    weights = weights.astype(delta.dtype)
    return delta * (weights / jnp.sum(weights))[:, None]


def add_l2_gradient(grads, params, strength: float):
    """``dW + λ W`` for every weight leaf: the hand-written gradient of
    :func:`funcnet.forward.l2_penalty`, ``(λ/2) Σ ‖W‖²``."""
    return [{name: grad + strength * layer[name] if name == "W" else grad for name, grad in layer_grads.items()}
            for layer_grads, layer in zip(grads, params)]


class ManualSteps(NamedTuple):
    """Everything the hand-written backprop computes (``manual_value_and_grad`` keeps the first two).

    Attributes:
      value: the objective ``L`` (with the L2 term).
      grads: ``∂L/∂θ``, the structure of ``params``.
      outputs: ``X⁽ˡ⁾`` each layer returned; ``outputs[-1]`` is ``Z``.
      caches: each layer's cache.
      incoming: ``dX⁽ˡ⁾`` arriving at each layer (``incoming[-1] = dZ = δ / m``).
      input_grads: ``dX⁽ˡ⁻¹⁾`` each layer passed down.
    """

    value: Array
    grads: list
    outputs: list
    caches: list
    incoming: list
    input_grads: list


def manual_steps(model, params, x: Array, y: Array, weights=None, key=None, observe=None) -> ManualSteps:
    """One forward fold, the loss, the output gradient, the reversed fold and the L2 gradient, kept step by step.

    This is the one hand-written backprop; :func:`manual_value_and_grad` and
    :func:`funcnet.trace.trace_backprop` both run it.  ``observe`` (``None`` in
    training) goes to both folds: :func:`funcnet.forward.forward_steps` and
    :func:`backward_steps`.
    """
    outputs, caches = forward_steps(model.layers, params, x, key, observe)
    z_out = outputs[-1]
    value = weighted_mean(model.loss_fn.per_sample(z_out, y, model.output_fn), weights)
    grads, incoming, input_grads = backward_steps(model.layers, params, caches,
                                                  output_gradient(model, z_out, y, weights), observe)
    if model.l2:
        value = value + l2_penalty(params, model.l2)
        grads = add_l2_gradient(grads, params, model.l2)
    return ManualSteps(value, grads, outputs, caches, incoming, input_grads)


def manual_value_and_grad(model, params, x: Array, y: Array, weights=None, key=None):
    """Mean loss and its gradient by hand-written backprop: one forward, one backward.

    Returns:
      ``(loss, grads)`` where ``grads`` has the structure of ``params`` and
      equals ``jax.value_and_grad(model.loss)(params, x, y, weights, key=key)``
      up to rounding.
    """
    steps = manual_steps(model, params, x, y, weights, key)
    return steps.value, steps.grads

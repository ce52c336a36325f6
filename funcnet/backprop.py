"""Hand-written backpropagation: one forward fold over the layers, one reversed fold over their backwards.

This is the only hand-written backward pass in funcnet.  ``model.manual_grad``,
``make_train_step(grad="manual")``, ``fit``, ``fit_many``, ``compare_grads``
and ``funcnet gradcheck`` all run :func:`manual_value_and_grad`.
``grad="autodiff"`` is ``jax.value_and_grad(model.loss)``, and ``model.loss``
runs the same :func:`forward` (its caches unused), so the two modes differ
only in who writes the backward: the layers' ``backward`` functions here,
``jax.grad`` there.

For a network of layers ``f₁ … f_L`` with params ``θ₁ … θ_L`` (shapes batch-first):

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

Array = jax.Array


def layer_keys(layers, key) -> list:
    """The key each layer's forward gets: ``fold_in(key, l)`` for layers that need one, else ``None``.

    ``key=None`` (inference) gives ``None`` to every layer.  Both gradient
    modes derive the keys here, so the same key means the same dropout masks.
    """
    return [None if key is None or not layer.needs_key else jax.random.fold_in(key, index)
            for index, layer in enumerate(layers)]


def forward_steps(layers, params, x: Array, key=None):
    """Run ``x`` through every layer: ``([X⁽¹⁾ … X⁽ᴸ⁾], [cache¹ … cacheᴸ])``; ``X⁽ᴸ⁾ = Z`` is ``(m, k)``."""
    outputs, caches = [], []
    for layer, layer_params, layer_key in zip(layers, params, layer_keys(layers, key)):
        x, cache = layer.forward(layer_params, x, layer_key)
        outputs.append(x)
        caches.append(cache)
    return outputs, caches


def forward(layers, params, x: Array, key=None):
    """``(Z, caches)``: the last layer's output ``(m, k)`` and every layer's cache."""
    outputs, caches = forward_steps(layers, params, x, key)
    return outputs[-1], caches


def infer(layers, params, x: Array) -> Array:
    """``Z`` at inference: every layer's ``infer`` (dropout off, no caches), ``(m, k)``."""
    for layer, layer_params in zip(layers, params):
        x = layer.infer(layer_params, x)
    return x


def backward_steps(layers, params, caches, dz: Array):
    """The reversed fold: each layer's hand-written ``backward`` from the output gradient ``dZ`` down.

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
        grads[index], dz = layers[index].backward(params[index], caches[index], dz)
        input_grads[index] = dz
    return grads, incoming, input_grads


def backward(layers, params, caches, dz: Array) -> list:
    """The gradients of :func:`backward_steps`, with the structure of ``params``."""
    return backward_steps(layers, params, caches, dz)[0]


def weighted_mean(values: Array, weights: Array | None) -> Array:
    """``Σ w_i v_i / Σ w_i``, or the plain mean when ``weights`` is ``None``."""
    if weights is None:
        return jnp.mean(values)
    return jnp.sum(weights * values) / jnp.sum(weights)


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


def l2_penalty(params, strength: float) -> Array:
    """``(λ/2) Σ ‖W‖²`` over every leaf named ``"W"`` (weights, not biases or norm scales).

    Each ``‖W‖² = ⟨W, W⟩`` is one ``vdot``: XLA:CPU compiles a 2-D
    ``sum(W ** 2)`` to a square and a two-stage reduction, which cost 0.2-0.3 ms
    more per 400-step epoch of the 20-100-1 scikit-learn benchmark (BENCHMARKS.md).
    """
    return 0.5 * strength * sum(jnp.vdot(layer["W"], layer["W"]) for layer in params if "W" in layer)


def add_l2_gradient(grads, params, strength: float):
    """``dW + λ W`` for every weight leaf: the hand-written gradient of :func:`l2_penalty`."""
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


def manual_steps(model, params, x: Array, y: Array, weights=None, key=None) -> ManualSteps:
    """One forward fold, the loss, the output gradient, the reversed fold and the L2 gradient, kept step by step.

    This is the one hand-written backprop; :func:`manual_value_and_grad` and
    :func:`funcnet.trace_backprop` both run it.
    """
    outputs, caches = forward_steps(model.layers, params, x, key)
    z_out = outputs[-1]
    value = weighted_mean(model.loss_fn.per_sample(z_out, y, model.output_fn), weights)
    grads, incoming, input_grads = backward_steps(model.layers, params, caches,
                                                  output_gradient(model, z_out, y, weights))
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

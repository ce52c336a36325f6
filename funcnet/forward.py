"""The forward pass both gradient modes run: one fold over the layers, and the objective on its output.

``model.loss`` (what ``grad="autodiff"`` differentiates with ``jax.grad``) and
the hand-written backprop of :mod:`funcnet.backprop` both run :func:`forward`;
they differ only in who writes the backward.  For layers ``f₁ … f_L`` with
params ``θ₁ … θ_L`` (shapes batch-first, ``m`` rows):

    X⁽⁰⁾ = X,   X⁽ˡ⁾, cacheˡ = f_l.forward(θ_l, X⁽ˡ⁻¹⁾, keyˡ)       Z = X⁽ᴸ⁾  (m, k)
    L = Σ_i w_i ℓ(Z_i, Y_i) / Σ_i w_i + (λ/2) Σ_W ‖W‖²            (w_i = 1: the plain mean)

At inference each layer runs its ``infer`` instead (dropout off, no caches).

The fold has one hook, ``observe``: a function ``(index, name, value) -> value``
called on every layer's output (``name`` ``"Y"``) and on the quantities inside
a layer that it lists in ``layer.inner`` (a dense layer's ``"Z"``, before its
activation); the fold goes on with what ``observe`` returns.  Training never
passes it, so its program is the hook-free one.  :func:`funcnet.trace.trace_backprop`
passes one that adds a zero perturbation ``ε`` and differentiates with respect
to it: ``∂L/∂ε = ∂L/∂(the quantity)``, through this very forward.
"""

from __future__ import annotations

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


def forward_steps(layers, params, x: Array, key=None, observe=None):
    """Run ``x`` ``(m, n_in)`` through every layer: ``([X⁽¹⁾ … X⁽ᴸ⁾], [cache¹ … cacheᴸ])``; ``X⁽ᴸ⁾ = Z`` ``(m, k)``.

    Args:
      layers, params: the model's layers and their params, one dict each.
      x: the inputs ``(m, n_in)``.
      key: one ``jax.random`` key (training mode; see :func:`layer_keys`), or ``None``.
      observe: ``None`` (training), or ``(index, name, value) -> value``, called
        on each layer's inner quantities (``layer.inner``, inside its
        ``forward``) and then on its output ``"Y"``; what it returns is used
        in their place (see the module docstring).
    """
    outputs, caches = [], []
    for index, (layer, layer_params, layer_key) in enumerate(zip(layers, params, layer_keys(layers, key))):
        if observe is None:
            x, cache = layer.forward(layer_params, x, layer_key)
        else:
            x, cache = _observed_forward(layer, index, layer_params, x, layer_key, observe)
        outputs.append(x)
        caches.append(cache)
    return outputs, caches


def _observed_forward(layer, index, params, x, key, observe):
    """``layer.forward`` with ``observe`` called inside it (``layer.inner``) and on its output."""
    if layer.inner:
        y, cache = layer.forward(params, x, key, observe=lambda name, value: observe(index, name, value))
    else:
        y, cache = layer.forward(params, x, key)
    return observe(index, "Y", y), cache


def forward(layers, params, x: Array, key=None, observe=None):
    """``(Z, caches)``: the last layer's output ``(m, k)`` and every layer's cache (:func:`forward_steps`)."""
    outputs, caches = forward_steps(layers, params, x, key, observe)
    return outputs[-1], caches


def infer(layers, params, x: Array) -> Array:
    """``Z`` at inference: every layer's ``infer`` (dropout off, no caches), ``(m, k)``."""
    for layer, layer_params in zip(layers, params):
        x = layer.infer(layer_params, x)
    return x


def weighted_mean(values: Array, weights: Array | None) -> Array:
    """``Σ w_i v_i / Σ w_i`` over ``values`` ``(m,)``, or the plain mean when ``weights`` is ``None``."""
    if weights is None:
        return jnp.mean(values)
    return jnp.sum(weights * values) / jnp.sum(weights)


def l2_penalty(params, strength: float) -> Array:
    """``(λ/2) Σ ‖W‖²`` over every leaf named ``"W"`` (weights, not biases or norm scales).

    Each ``‖W‖² = ⟨W, W⟩`` is one ``vdot``: XLA:CPU compiles a 2-D
    ``sum(W ** 2)`` to a square and a two-stage reduction, which is slower
    (BENCHMARKS.md).
    """
    return 0.5 * strength * sum(jnp.vdot(layer["W"], layer["W"]) for layer in params if "W" in layer)


def objective(model, params, z_out: Array, y: Array, weights: Array | None = None) -> Array:
    """The training objective from the network's output ``Z`` ``(m, k)``, a scalar.

    ``L = Σ_i w_i ℓ(Z_i, y_i) / Σ_i w_i + (λ/2) Σ ‖W‖²`` with ``ℓ`` the
    model's loss after its output activation, ``λ = model.l2`` (no term
    when 0) and the plain mean when ``weights`` is ``None``.
    """
    value = weighted_mean(model.loss_fn.per_sample(z_out, y, model.output_fn), weights)
    return value + l2_penalty(params, model.l2) if model.l2 else value

"""Losses per sample, and their hand-written gradients with respect to the output.

Every loss here is a function of the output layer's *pre-activation* ``Z``
(shape ``(batch, k)``), the labels ``Y`` and the output activation ``g``, so
that sigmoid + log-loss and softmax + cross-entropy can be computed stably
from ``Z`` (no ``log(0)``, no NaN even for ``|z| = 1e4``).  The loss the model
minimises is the mean over the batch of the per-sample loss ``ℓ_i``:

    L = (1/m) Σ_i ℓ_i            (or Σ_i w_i ℓ_i / Σ_i w_i with sample weights)

Each loss also has ``output_delta``, the hand-written per-sample gradient
``δ_i = ∂ℓ_i/∂Z_i`` (shape ``(batch, k)``).  Backprop starts from
``dZ = δ / m``, the gradient of the batch mean; see :mod:`funcnet.backprop`.

* ``mse``: ``ℓ_i = (1/k) Σ_j (A_ij - Y_ij)²``, so ``∂ℓ_i/∂A_i = 2 (A_i - Y_i) / k``
  and ``δ = g'(Z) ⊙ ∂ℓ/∂A``.  The second article's "gradient" ``A - Y`` is
  the derivative of ``½ (A - Y)²``: ours is twice that, because the loss we
  report and minimise is the true mean squared error.
* ``logloss`` (binary cross-entropy, sigmoid output):
  ``ℓ_i = (1/k) Σ_j softplus(Z_ij) - Y_ij Z_ij`` which equals
  ``-(y log a + (1 - y) log(1 - a))`` for ``a = σ(z)``.  The first article's
  ``d_logloss · d_sigmoid = (a - y)/(a(1 - a)) · a(1 - a)`` is fused to
  ``δ = (A - Y) / k``, which is exact and never divides by zero.
* ``cross_entropy`` (softmax output): ``ℓ_i = -Σ_j Y_ij log softmax(Z_i)_j``,
  labels either integer classes ``(batch,)`` or one-hot/probabilities
  ``(batch, k)``; fused ``δ = A - Y`` (the softmax Jacobian cancels).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from funcnet.activations import Activation

Array = jax.Array


class Loss(NamedTuple):
    """A loss as the model and manual backprop use it.

    Attributes:
      name: the name users pass to :func:`funcnet.mlp`.
      per_sample: ``(Z, Y, g) -> ℓ``, shape ``(batch,)``.
      output_delta: ``(Z, Y, g) -> δ = ∂ℓ_i/∂Z_i``, shape ``(batch, k)``.
      valid_outputs: output activations the loss accepts.
    """

    name: str
    per_sample: Callable[[Array, Array, Activation], Array]
    output_delta: Callable[[Array, Array, Activation], Array]
    valid_outputs: tuple[str, ...]


def squared_error(predictions: Array, targets: Array) -> Array:
    """Per-sample mean squared error ``(1/k) Σ_j (A_ij - Y_ij)²``, shape ``(batch,)``."""
    return jnp.mean(jnp.square(predictions - targets), axis=-1)


def d_squared_error(predictions: Array, targets: Array) -> Array:
    """``∂ℓ_i/∂A_i = 2 (A_i - Y_i) / k``, shape ``(batch, k)``."""
    return 2 * (predictions - targets) / predictions.shape[-1]


def mse_per_sample(z: Array, y: Array, output: Activation) -> Array:
    """Mean squared error of ``A = g(Z)`` against ``Y``, per sample."""
    return squared_error(output.apply(z), y)


def mse_delta(z: Array, y: Array, output: Activation) -> Array:
    """``δ = g'(Z) ⊙ 2 (A - Y) / k``: the output activation's backward of the MSE gradient."""
    return output.backward(z, d_squared_error(output.apply(z), y))


def logloss_from_logits(z: Array, y: Array) -> Array:
    """Binary cross-entropy of ``σ(Z)`` against ``Y ∈ {0, 1}``, per sample, stable.

    ``-(y log σ(z) + (1 - y) log(1 - σ(z))) = softplus(z) - y z``, and
    ``softplus(z) = max(z, 0) + log1p(e^{-|z|})`` never overflows.
    """
    return jnp.mean(jax.nn.softplus(z) - y * z, axis=-1)


def logloss_delta(z: Array, y: Array, output: Activation | None = None) -> Array:
    """Fused sigmoid + log-loss gradient ``δ = (σ(Z) - Y) / k``."""
    return (jax.nn.sigmoid(z) - y) / z.shape[-1]


def as_one_hot(y: Array, num_classes: int, dtype) -> Array:
    """Integer labels ``(batch,)`` to one-hot ``(batch, num_classes)``; 2-D labels pass through."""
    if y.ndim == 1:
        return jax.nn.one_hot(y, num_classes, dtype=dtype)
    return y.astype(dtype)


def cross_entropy_from_logits(z: Array, y: Array) -> Array:
    """Categorical cross-entropy ``-Σ_j Y_ij log softmax(Z_i)_j``, per sample, stable.

    ``log softmax(z) = z - logsumexp(z)`` is finite for any finite ``z``.
    ``y`` is integer classes ``(batch,)`` or one-hot ``(batch, k)``.
    """
    targets = as_one_hot(y, z.shape[-1], z.dtype)
    return -jnp.sum(targets * jax.nn.log_softmax(z, axis=-1), axis=-1)


def cross_entropy_delta(z: Array, y: Array, output: Activation | None = None) -> Array:
    """Fused softmax + cross-entropy gradient ``δ = softmax(Z) - Y``.

    Valid because one-hot (or probability) rows of ``Y`` sum to 1:
    ``(diag(a) - a aᵀ)(-y/a) = a Σ_j y_j - y = a - y``.
    """
    return jax.nn.softmax(z, axis=-1) - as_one_hot(y, z.shape[-1], z.dtype)


LOSS_NAMES = ("mse", "logloss", "cross_entropy")

_LOSSES = {
    "mse": Loss(
        "mse",
        mse_per_sample,
        mse_delta,
        ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"),
    ),
    "logloss": Loss(
        "logloss",
        lambda z, y, output: logloss_from_logits(z, y),
        logloss_delta,
        ("sigmoid",),
    ),
    "cross_entropy": Loss(
        "cross_entropy",
        lambda z, y, output: cross_entropy_from_logits(z, y),
        cross_entropy_delta,
        ("softmax",),
    ),
}


def get_loss(name: str) -> Loss:
    """Look up a loss by name; raises ``ValueError`` listing the valid names."""
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSS_NAMES)}")
    return _LOSSES[name]

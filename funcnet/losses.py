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
* ``mae``: ``ℓ_i = (1/k) Σ_j |A_ij - Y_ij|``, ``∂ℓ_i/∂A_i = sign(A_i - Y_i) / k``
  (``+1/k`` at a tie, as ``jax.grad(jnp.abs)`` gives at 0).
* ``huber`` with threshold ``δ_H`` (``delta``, default 1): for ``r = A - Y``,
  ``h(r) = ½ r²`` if ``|r| ≤ δ_H`` else ``δ_H (|r| - ½ δ_H)``, ``ℓ_i = (1/k) Σ_j h(r_ij)``,
  and ``h'(r) = clip(r, -δ_H, δ_H)``.  :func:`huber` makes one with another ``delta``.

For mse, mae and huber the hand-written ``δ`` is ``g'(Z) ⊙ ∂ℓ/∂A`` through
the output activation's backward.  Your own loss (:func:`loss`) is written
the same way, on the outputs ``A``; :func:`funcnet.derivative_checks.check_loss` checks its
gradient.
"""

from __future__ import annotations

# The namespace fn.losses: what it promises (the rest of the module is implementation).
__all__ = [
    "Loss", "loss", "get_loss", "huber", "LOSS_NAMES", "squared_error",
    "d_squared_error", "absolute_error", "d_absolute_error", "huber_error", "d_huber_error", "logloss_from_logits",
    "logloss_delta", "cross_entropy_from_logits", "cross_entropy_delta",
]

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from funcnet.activations import PARAMETER_DTYPE, Activation, softplus
from funcnet.checks import check_real

Array = jax.Array


class Loss(NamedTuple):
    """A loss as the model and manual backprop use it.

    Attributes:
      name: the name users pass to :func:`funcnet.mlp`.
      per_sample: ``(Z, Y, g) -> ℓ``, shape ``(batch,)``.
      output_delta: ``(Z, Y, g) -> δ = ∂ℓ_i/∂Z_i``, shape ``(batch, k)``.
      valid_outputs: output activations the loss accepts (``None``: any).
      default_output: the output activation a model uses when none is named.
      integer_labels: whether ``Y`` may be integer classes ``(batch,)``.
      config: JSON-able settings that rebuild it (``{"delta": 1.0}`` for huber).
      builtin: whether funcnet can rebuild it from its name (checkpoints).
    """

    name: str
    per_sample: Callable[[Array, Array, Activation], Array]
    output_delta: Callable[[Array, Array, Activation], Array]
    valid_outputs: tuple[str, ...] | None = None
    default_output: str = "identity"
    integer_labels: bool = False
    config: tuple = ()
    builtin: bool = True


def squared_error(predictions: Array, targets: Array) -> Array:
    """Per-sample mean squared error ``(1/k) Σ_j (A_ij - Y_ij)²``, shape ``(batch,)``."""
    return jnp.mean(jnp.square(predictions - targets), axis=-1)


def d_squared_error(predictions: Array, targets: Array) -> Array:
    """``∂ℓ_i/∂A_i = 2 (A_i - Y_i) / k``, shape ``(batch, k)``."""
    return 2 * (predictions - targets) / predictions.shape[-1]


def logloss_from_logits(z: Array, y: Array) -> Array:
    """Binary cross-entropy of ``σ(Z)`` against ``Y ∈ {0, 1}``, per sample, stable.

    ``-(y log σ(z) + (1 - y) log(1 - σ(z))) = softplus(z) - y z``, with
    :func:`funcnet.activations.softplus`, which never overflows.
    """
    return jnp.mean(softplus(z) - y * z, axis=-1)


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


def absolute_error(predictions: Array, targets: Array) -> Array:
    """Per-sample mean absolute error ``(1/k) Σ_j |A_ij - Y_ij|``, shape ``(batch,)``."""
    return jnp.mean(jnp.abs(predictions - targets), axis=-1)


def d_absolute_error(predictions: Array, targets: Array) -> Array:
    """``∂ℓ_i/∂A_i = sign(A_i - Y_i) / k``, taking ``+1/k`` at a tie (as ``jax.grad(jnp.abs)``)."""
    residual = predictions - targets
    return jnp.where(residual >= 0, 1.0, -1.0).astype(residual.dtype) / residual.shape[-1]


def huber_error(predictions: Array, targets: Array, delta: float = 1.0) -> Array:
    """Per-sample Huber loss ``(1/k) Σ_j h(r_ij)``: ``½ r²`` for ``|r| ≤ δ``, else ``δ (|r| - ½ δ)``."""
    residual = jnp.abs(predictions - targets)
    quadratic = jnp.minimum(residual, delta)
    return jnp.mean(0.5 * quadratic ** 2 + delta * (residual - quadratic), axis=-1)


def d_huber_error(predictions: Array, targets: Array, delta: float = 1.0) -> Array:
    """``∂ℓ_i/∂A_i = clip(A_i - Y_i, -δ, δ) / k``."""
    return jnp.clip(predictions - targets, -delta, delta) / predictions.shape[-1]


def loss(name: str, per_sample: Callable[[Array, Array], Array],
         output_delta: Callable[[Array, Array], Array]) -> Loss:
    """Your own loss on the network's outputs, usable everywhere a built-in name is.

    Args:
      name: a label for errors, reports and checkpoints; not a built-in name.
      per_sample: ``(A, Y) -> ℓ``: the loss of each sample, shape ``(batch,)``,
        from the outputs ``A = g(Z)`` ``(batch, k)`` and targets ``Y`` ``(batch, k)``.
        The model minimises its mean over the batch (or weighted mean).
      output_delta: ``(A, Y) -> ∂ℓ_i/∂A_i``, the hand-written gradient of
        *one sample's* loss with respect to its outputs, shape ``(batch, k)``
        (not divided by the batch size: backprop does that once).  Manual
        backprop chains it through the output activation,
        ``δ = g'(Z) ⊙ ∂ℓ/∂A``; ``grad="autodiff"`` never calls it.  Check it with
        :func:`funcnet.derivative_checks.check_loss`.

    Example (log-cosh):
      >>> logcosh = fn.loss("logcosh", lambda a, y: jnp.mean(jnp.log(jnp.cosh(a - y)), -1),
      ...                   lambda a, y: jnp.tanh(a - y) / a.shape[-1])
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string, got {name!r}")
    if name in LOSS_NAMES:
        raise ValueError(f"`name={name!r}` is a built-in loss; give yours another name")
    if not (callable(per_sample) and callable(output_delta)):
        raise TypeError(f"loss {name!r}: `per_sample` and `output_delta` must be callables ((A, Y) -> array)")
    return on_outputs(name, per_sample, output_delta, builtin=False)


def on_outputs(name, per_sample, gradient, **fields) -> Loss:
    """A :class:`Loss` from ``ℓ(A, Y)`` and ``∂ℓ/∂A``, chained through the output activation."""
    return Loss(
        name,
        lambda z, y, output: per_sample(output.apply(z), y),
        lambda z, y, output: output.backward(z, gradient(output.apply(z), y)),
        **fields,
    )


def huber(delta: float = 1.0) -> Loss:
    """The Huber loss with threshold ``delta`` (quadratic inside ``±delta``, linear outside).

    ``delta`` is a finite real number ``> 0`` of any real type (``float``, ``int``, NumPy scalars);
    NaN, ±inf, 0, negatives, bools and complex numbers raise, naming ``delta``, and so does a ``delta``
    that float32, the default params dtype, turns into inf or 0 (above 3.4e38, below 1.2e-38).
    """
    delta = _check_delta(delta)
    if delta not in _HUBERS:
        _HUBERS[delta] = on_outputs("huber", lambda a, y: huber_error(a, y, delta),
                                    lambda a, y: d_huber_error(a, y, delta), config=(("delta", delta),))
    return _HUBERS[delta]


_HUBERS: dict = {}


def _check_delta(delta) -> float:
    return check_real(delta, "delta", low=0.0, high=float("inf"), low_open=True, high_open=True,
                      dtype=PARAMETER_DTYPE)

LOSS_NAMES = ("mse", "mae", "huber", "logloss", "cross_entropy")

_LOSSES = {
    "mse": on_outputs("mse", squared_error, d_squared_error),
    "mae": on_outputs("mae", absolute_error, d_absolute_error),
    "logloss": Loss(
        "logloss",
        lambda z, y, output: logloss_from_logits(z, y),
        logloss_delta,
        ("sigmoid",),
        default_output="sigmoid",
    ),
    "cross_entropy": Loss(
        "cross_entropy",
        lambda z, y, output: cross_entropy_from_logits(z, y),
        cross_entropy_delta,
        ("softmax",),
        default_output="softmax",
        integer_labels=True,
    ),
}


def get_loss(name, delta: float = 1.0) -> Loss:
    """Look up a loss by name (a :class:`Loss` passes through); ``delta > 0`` is huber's threshold.

    ``delta`` is checked whatever the name (see :func:`huber`), so a NaN never waits unnoticed.

    Raises:
      ValueError: for an unknown name, listing the valid ones, or a ``delta`` that is not finite and positive
        (in float32 too).
    """
    delta = _check_delta(delta)
    if isinstance(name, Loss):
        return name
    if name == "huber":
        return huber(delta)
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSS_NAMES)}, "
                         "or your own from fn.loss(name, per_sample, output_delta)")
    return _LOSSES[name]

"""Activation functions and the hand-written derivatives that manual backprop uses.

Each activation ``g`` is applied elementwise to a layer's pre-activation ``Z``
(shape ``(batch, n_out)``) to give ``A = g(Z)``.  Manual backprop needs the
vector-Jacobian product of ``g``: given ``dA = ∂L/∂A`` it returns

    dZ = ∂L/∂Z = dA ⊙ g'(Z)                                  (elementwise g)

which is the first article's ``dZ = np.multiply(self.d_act(self.Z), dA)`` and
the second article's ``grad * np.heaviside(hidden, 0)`` for ReLU.  Softmax is
not elementwise, so its ``backward`` is the full Jacobian product (see
:func:`softmax_backward`); it is allowed only as an output activation.

The derivatives here are written by hand from the formulas in their
docstrings; ``tests/test_activations.py`` checks each against ``jax.grad``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class Activation(NamedTuple):
    """An activation ``g`` with what forward and manual backward need.

    Attributes:
      name: the name users pass to :func:`funcnet.mlp`.
      apply: ``Z -> A = g(Z)``, shape preserving.
      derivative: ``Z -> g'(Z)`` elementwise, or ``None`` for softmax, whose
        derivative is a Jacobian rather than a vector.
      backward: ``(Z, dA) -> dZ``, the vector-Jacobian product of ``g`` at ``Z``.
      hidden_ok: whether the activation may be used on hidden layers.
    """

    name: str
    apply: Callable[[Array], Array]
    derivative: Callable[[Array], Array] | None
    backward: Callable[[Array, Array], Array]
    hidden_ok: bool = True


def identity(z: Array) -> Array:
    """``g(z) = z``."""
    return z


def d_identity(z: Array) -> Array:
    """``g'(z) = 1``."""
    return jnp.ones_like(z)


def sigmoid(z: Array) -> Array:
    """``σ(z) = 1 / (1 + e^{-z})``, computed without overflow for large ``|z|``."""
    return jax.nn.sigmoid(z)


def d_sigmoid(z: Array) -> Array:
    """``σ'(z) = σ(z) (1 - σ(z))`` (the first article's ``d_sigmoid``)."""
    s = sigmoid(z)
    return s * (1 - s)


def tanh(z: Array) -> Array:
    """``tanh(z)``."""
    return jnp.tanh(z)


def d_tanh(z: Array) -> Array:
    """``tanh'(z) = 1 - tanh(z)² = (1 - tanh z)(1 + tanh z)``.

    The first article's ``d_tanh`` is ``1 - tanh²``; the factored form loses
    less precision where ``tanh z`` is near ±1.
    """
    t = jnp.tanh(z)
    return (1 - t) * (1 + t)


def relu(z: Array) -> Array:
    """``relu(z) = max(z, 0)``.

    Written with ``where`` so that ``jax.grad`` gives 0 at ``z = 0`` like
    :func:`d_relu` (``jnp.maximum`` would split the tie and give 0.5).
    """
    return jnp.where(z > 0, z, 0)


def d_relu(z: Array) -> Array:
    """``relu'(z) = 1 if z > 0 else 0``.

    At ``z = 0`` we take 0, as the second article's ``np.heaviside(z, 0)``
    does and as ``jax.grad(jax.nn.relu)`` does.
    """
    return (z > 0).astype(z.dtype)


def leaky_relu(z: Array, negative_slope: float = 0.01) -> Array:
    """``leaky_relu(z) = z if z > 0 else α z`` with ``α = negative_slope``."""
    return jnp.where(z > 0, z, negative_slope * z)


def d_leaky_relu(z: Array, negative_slope: float = 0.01) -> Array:
    """``leaky_relu'(z) = 1 if z > 0 else α`` (``α`` at ``z = 0``, as ``jax.grad`` gives)."""
    return jnp.where(z > 0, 1.0, negative_slope).astype(z.dtype)


def softmax(z: Array) -> Array:
    """``softmax(z)_j = e^{z_j - max z} / Σ_k e^{z_k - max z}`` over the last axis."""
    return jax.nn.softmax(z, axis=-1)


def softmax_backward(z: Array, upstream: Array) -> Array:
    """Vector-Jacobian product of softmax over the last axis.

    With ``A = softmax(Z)`` the Jacobian of one row is ``diag(a) - a aᵀ``, so

        dZ = A ⊙ (dA - Σ_j (dA ⊙ A)_j)          shapes (batch, k)

    Manual backprop never calls this with cross-entropy: there the output
    delta is fused to ``A - Y`` (see :mod:`funcnet.losses`).
    """
    a = softmax(z)
    return a * (upstream - jnp.sum(upstream * a, axis=-1, keepdims=True))


def _elementwise(name: str, apply, derivative) -> Activation:
    return Activation(
        name=name,
        apply=apply,
        derivative=derivative,
        backward=lambda z, upstream: upstream * derivative(z),
    )


def leaky_relu_activation(negative_slope: float) -> Activation:
    """The leaky-ReLU :class:`Activation` with slope ``negative_slope`` for ``z < 0``."""
    return _elementwise(
        "leaky_relu",
        lambda z: leaky_relu(z, negative_slope),
        lambda z: d_leaky_relu(z, negative_slope),
    )


ACTIVATION_NAMES = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")


def get_activation(name: str, negative_slope: float = 0.01) -> Activation:
    """Look up an activation by name.

    Args:
      name: one of ``ACTIVATION_NAMES``.
      negative_slope: the slope of ``leaky_relu`` for negative inputs; ignored
        by the other activations.

    Raises:
      ValueError: for an unknown name, listing the valid ones.
    """
    if name == "leaky_relu":
        return leaky_relu_activation(negative_slope)
    table = {
        "identity": _elementwise("identity", identity, d_identity),
        "sigmoid": _elementwise("sigmoid", sigmoid, d_sigmoid),
        "tanh": _elementwise("tanh", tanh, d_tanh),
        "relu": _elementwise("relu", relu, d_relu),
        "softmax": Activation("softmax", softmax, None, softmax_backward, hidden_ok=False),
    }
    if name not in table:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {', '.join(ACTIVATION_NAMES)}"
        )
    return table[name]

"""Activation functions and the hand-written derivatives that manual backprop uses.

Each activation ``g`` is applied elementwise to a layer's pre-activation ``Z``
to give ``A = g(Z)``.  Manual backprop needs its vector-Jacobian product:
given ``dA = ∂L/∂A`` it returns

    dZ = ∂L/∂Z = dA ⊙ g'(Z)                                  (elementwise g)

which is the first article's ``dZ = np.multiply(self.d_act(self.Z), dA)`` and
the second article's ``grad * np.heaviside(hidden, 0)`` for ReLU.  Softmax is
not elementwise, so its ``backward`` is the full Jacobian product (see
:func:`softmax_backward`); it is allowed only as an output activation.

The derivative table (``g'`` written from ``g``, as scikit-learn's
``DERIVATIVES``):

=============  ======================================  =====================================
name           g(z)                                    g'(z)
=============  ======================================  =====================================
identity       z                                       1
sigmoid        σ(z) = 1 / (1 + e⁻ᶻ)                    σ(z) (1 − σ(z))
tanh           tanh z                                  (1 − tanh z)(1 + tanh z)
relu           max(z, 0)                               1 if z > 0 else 0
leaky_relu     z if z > 0 else α z                     1 if z > 0 else α
elu            z if z > 0 else α (eᶻ − 1)              1 if z > 0 else α eᶻ
gelu           z Φ(z)  (exact, the default)            Φ(z) + z φ(z)
gelu_tanh      ½ z (1 + tanh u), u = c (z + 0.044715 z³), c = √(2/π)
                                                       ½ (1 + tanh u) + ½ z (1 − tanh² u) c (1 + 3·0.044715 z²)
softplus       log(1 + eᶻ)                             σ(z)
silu           z σ(z)                                  σ(z) (1 + z (1 − σ(z)))
softmax        e^{z_j} / Σ_k e^{z_k}  (output only)    Jacobian diag(a) − a aᵀ
=============  ======================================  =====================================

``Φ`` and ``φ`` are the standard normal CDF and density.  ``gelu`` is the exact
form (PyTorch's default); ``gelu_tanh`` is the tanh approximation of Hendrycks
& Gimpel (``jax.nn.gelu``'s default).  At a kink (relu, leaky_relu, elu at 0)
the derivative takes the right-hand value's convention documented on each
function, matching ``jax.grad``.

Your own activation: :func:`activation` takes a name, ``g`` and ``g'``;
:func:`funcnet.derivative_checks.check_activation` checks ``g'`` against ``jax.grad`` and finite
differences.
"""

from __future__ import annotations

# The namespace fn.activations: what it promises (the rest of the module is implementation).
__all__ = [
    "Activation", "activation", "get_activation", "with_parameter", "ACTIVATION_NAMES", "identity",
    "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu",
    "gelu_tanh", "softplus", "silu", "softmax", "d_identity", "d_sigmoid",
    "d_tanh", "d_relu", "d_leaky_relu", "d_elu", "d_gelu", "d_gelu_tanh",
    "d_softplus", "d_silu", "softmax_backward",
]

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from funcnet.checks import check_real

Array = jax.Array

PARAMETER_DTYPE = np.float32
"""Every real parameter of an activation, loss or layer (``negative_slope``, ``alpha``, ``delta``, ``l2``,
``epsilon``) must be finite in this dtype, the default params dtype: ``1e39`` is finite in float64 but ``inf`` in
float32, and a leaky_relu with that slope predicts ``[-inf, nan, inf]``.  A parameter that must be ``> 0`` must
also not round to 0 there (``check_real(..., dtype=PARAMETER_DTYPE)``).  With float16 or bfloat16 params a
parameter is rounded to that dtype as it meets the data: keep ``|parameter| ≤ 65504`` for float16."""


class Activation(NamedTuple):
    """An activation ``g`` with what forward and manual backward need.

    Attributes:
      name: the name users pass to :func:`funcnet.mlp` (or their own, for
        :func:`activation`).
      apply: ``Z -> A = g(Z)``, shape preserving.
      derivative: ``Z -> g'(Z)`` elementwise, or ``None`` for softmax, whose
        derivative is a Jacobian rather than a vector.
      backward: ``(Z, dA) -> dZ``, the vector-Jacobian product of ``g`` at ``Z``.
      hidden_ok: whether the activation may be used on hidden layers.
      initializer: ``"he"`` or ``"glorot"``: the weight initialisation of a
        dense layer followed by this activation (see :mod:`funcnet.initializers`).
      builtin: whether funcnet can rebuild it from its name (checkpoints).
      parameter: leaky_relu's slope or elu's ``α``, exactly as given (checkpoints).
    """

    name: str
    apply: Callable[[Array], Array]
    derivative: Callable[[Array], Array] | None
    backward: Callable[[Array, Array], Array]
    hidden_ok: bool = True
    initializer: str = "glorot"
    builtin: bool = True
    parameter: float | None = None


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


def elu(z: Array, alpha: float = 1.0) -> Array:
    """``elu(z) = z if z > 0 else α (eᶻ − 1)``; ``expm1`` keeps small negative ``z`` exact.

    The negative branch takes ``where(z > 0, 0, z)``, not ``minimum(z, 0)``:
    ``jax.grad`` splits ``minimum``'s tie at 0 and gave ``elu'(0) = α/2``,
    where :func:`d_elu` (and manual backprop) gives ``α``.
    """
    return jnp.where(z > 0, z, alpha * jnp.expm1(jnp.where(z > 0, 0, z)))


def d_elu(z: Array, alpha: float = 1.0) -> Array:
    """``elu'(z) = 1 if z > 0 else α eᶻ`` (``α`` at ``z = 0``)."""
    return jnp.where(z > 0, 1.0, alpha * jnp.exp(jnp.minimum(z, 0))).astype(z.dtype)


def gelu(z: Array) -> Array:
    """Exact GELU ``z Φ(z)`` with ``Φ(z) = ½ (1 + erf(z / √2))``."""
    return z * normal_cdf(z)


def normal_cdf(z: Array) -> Array:
    """``Φ(z) = ½ (1 + erf(z / √2))``, the standard normal CDF."""
    return 0.5 * (1 + jax.lax.erf(z / math.sqrt(2.0)))


def d_gelu(z: Array) -> Array:
    """``gelu'(z) = Φ(z) + z φ(z)`` with ``φ(z) = e^{−z²/2} / √(2π)``."""
    return normal_cdf(z) + z * jnp.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


GELU_C = math.sqrt(2 / math.pi)
GELU_CUBIC = 0.044715


def gelu_tanh(z: Array) -> Array:
    """Tanh-approximate GELU ``½ z (1 + tanh u)``, ``u = √(2/π) (z + 0.044715 z³)``."""
    return 0.5 * z * (1 + jnp.tanh(GELU_C * (z + GELU_CUBIC * z ** 3)))


def d_gelu_tanh(z: Array) -> Array:
    """``½ (1 + tanh u) + ½ z (1 − tanh² u) · √(2/π) (1 + 3 · 0.044715 z²)``."""
    t = jnp.tanh(GELU_C * (z + GELU_CUBIC * z ** 3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t) * (1 + t) * GELU_C * (1 + 3 * GELU_CUBIC * z * z)


def softplus(z: Array) -> Array:
    """``softplus(z) = log(1 + eᶻ)``: ``z + log1p(e^{−z})`` for ``z ≥ 0``, else ``log1p(eᶻ)``; finite for any ``z``.

    Both branches are one expression, ``where(z ≥ 0, z, 0) + log1p(e^{−|z|})``
    with ``−|z|`` written as ``where(z ≥ 0, −z, z)``: one ``exp`` and one
    ``log1p`` per element, and ``e^{−|z|} ≤ 1`` never overflows (two separate
    branches cost two of each: ``BENCHMARKS.md``, "scikit-learn
    estimators").  Written from primitives
    (``jax.nn.softplus`` goes through ``logaddexp``, a ``custom_jvp``), so
    ``jax.grad`` differentiates it with no rule of its own and gets ``σ(z)``:
    ``1 − σ(−z)`` for ``z ≥ 0``, ``σ(z)`` below, and ``σ(0) = ½`` at 0.
    """
    nonnegative = z >= 0
    return jnp.where(nonnegative, z, 0) + jnp.log1p(jnp.exp(jnp.where(nonnegative, -z, z)))


def d_softplus(z: Array) -> Array:
    """``softplus'(z) = σ(z)``."""
    return sigmoid(z)


def silu(z: Array) -> Array:
    """``silu(z) = z σ(z)`` (also called swish)."""
    return z * sigmoid(z)


def d_silu(z: Array) -> Array:
    """``silu'(z) = σ(z) + z σ(z)(1 − σ(z)) = σ(z) (1 + z (1 − σ(z)))``."""
    s = sigmoid(z)
    return s * (1 + z * (1 - s))


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


def activation(name: str, function: Callable[[Array], Array], derivative: Callable[[Array], Array], *,
               initializer: str = "glorot", hidden_ok: bool = True) -> Activation:
    """Your own elementwise activation, usable everywhere a built-in name is.

    Args:
      name: a label for errors, reports and checkpoints; it must not be a
        built-in name (see ``ACTIVATION_NAMES``).
      function: ``g``, elementwise: ``Z -> A`` of the same shape and dtype.
      derivative: ``g'``, elementwise: ``Z -> g'(Z)`` of the same shape and
        dtype.  Manual backprop computes ``dZ = dA ⊙ g'(Z)`` with it;
        ``grad="autodiff"`` never calls it (``jax.grad`` differentiates
        ``function``), so a wrong ``derivative`` shows as a difference between
        the two: check it with :func:`funcnet.derivative_checks.check_activation`.
      initializer: ``"he"`` (ReLU-like) or ``"glorot"`` for the dense layer
        that feeds it.
      hidden_ok: whether it may be used on hidden layers.

    Example:
      >>> mish = fn.activation("mish", lambda z: z * jnp.tanh(jax.nn.softplus(z)), d_mish)
      >>> model = fn.mlp([2, 8, 1], hidden=mish)

    A model with your activation saves like any other; :func:`funcnet.load`
    needs the model passed back (``fn.load(path, model=model)``), since
    funcnet cannot rebuild your functions from a name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string, got {name!r}")
    if name in ACTIVATION_NAMES:
        raise ValueError(f"`name={name!r}` is a built-in activation; give yours another name")
    if not (callable(function) and callable(derivative)):
        raise TypeError(f"activation {name!r}: `function` and `derivative` must be callables (z -> array)")
    if initializer not in INITIALIZERS:
        raise ValueError(f"`initializer` must be one of {', '.join(INITIALIZERS)}, got {initializer!r}")
    if not isinstance(hidden_ok, (bool, np.bool_)):
        raise TypeError(f"`hidden_ok` must be True or False, got {hidden_ok!r} ({type(hidden_ok).__name__})")
    return elementwise(name, function, derivative, initializer=initializer, hidden_ok=bool(hidden_ok),
                       builtin=False)


INITIALIZERS = ("he", "glorot")


def elementwise(name: str, apply, derivative, **fields) -> Activation:
    """An :class:`Activation` whose backward is ``dZ = dA ⊙ g'(Z)``."""
    return Activation(name=name, apply=apply, derivative=derivative,
                      backward=lambda z, upstream: upstream * derivative(z), **fields)


def _with_parameter(name, apply, derivative, value):
    return elementwise(name, lambda z: apply(z, value), lambda z: derivative(z, value), initializer="he",
                       parameter=value)


_TABLE = {
    "identity": elementwise("identity", identity, d_identity),
    "sigmoid": elementwise("sigmoid", sigmoid, d_sigmoid),
    "tanh": elementwise("tanh", tanh, d_tanh),
    "relu": elementwise("relu", relu, d_relu, initializer="he"),
    "gelu": elementwise("gelu", gelu, d_gelu, initializer="he"),
    "gelu_tanh": elementwise("gelu_tanh", gelu_tanh, d_gelu_tanh, initializer="he"),
    "softplus": elementwise("softplus", softplus, d_softplus, initializer="he"),
    "silu": elementwise("silu", silu, d_silu, initializer="he"),
    "softmax": Activation("softmax", softmax, None, softmax_backward, hidden_ok=False),
}
_PARAMETRISED = {"leaky_relu": (leaky_relu, d_leaky_relu), "elu": (elu, d_elu)}
_CACHE: dict = {}

ACTIVATION_NAMES = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh",
                    "softplus", "silu", "softmax")


def with_parameter(name: str, parameter: float) -> Activation:
    """``leaky_relu`` with slope ``parameter`` or ``elu`` with ``α = parameter`` (a checkpoint keeps one number)."""
    return get_activation(name, **{"negative_slope" if name == "leaky_relu" else "alpha": parameter})


def get_activation(name, negative_slope: float = 0.01, alpha: float = 1.0) -> Activation:
    """Look up an activation by name (an :class:`Activation` passes through).

    Args:
      name: one of ``ACTIVATION_NAMES``, or an :class:`Activation`.
      negative_slope: the slope ``α ≥ 0`` of ``leaky_relu`` for negative inputs
        (any real type: ``float``, ``int``, NumPy scalars).
      alpha: ``elu``'s ``α ≥ 0``.

    Both parameters are checked whatever the name (a NaN slope would make
    every negative pre-activation NaN), so pass each only where it means
    something.  The same arguments return the same object, so models built
    twice from the same names compare equal and share compiled code.

    Raises:
      ValueError: for an unknown name, listing the valid ones, or a parameter
        that is NaN, ±inf, negative, or infinite in float32 (``|value| > 3.4e38``,
        :data:`PARAMETER_DTYPE`), naming it.
      TypeError: for a parameter that is not a real number (a bool, a string, a complex number).
    """
    if isinstance(name, Activation):
        return name
    negative_slope = check_real(negative_slope, "negative_slope", low=0.0, dtype=PARAMETER_DTYPE)
    alpha = check_real(alpha, "alpha", low=0.0, dtype=PARAMETER_DTYPE)
    if name in _PARAMETRISED:
        value = negative_slope if name == "leaky_relu" else alpha
        key = (name, value)
        if key not in _CACHE:
            _CACHE[key] = _with_parameter(name, *_PARAMETRISED[name], value)
        return _CACHE[key]
    if name not in _TABLE:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {', '.join(ACTIVATION_NAMES)}, "
            "or your own from fn.activation(name, function, derivative)"
        )
    return _TABLE[name]


def hidden_activations(hidden, num_hidden: int, negative_slope: float = 0.01, alpha: float = 1.0, *,
                       name: str = "hidden", layers: str = "the network") -> tuple[Activation, ...]:
    """The activations of ``num_hidden`` hidden layers, ``(g_1, ..., g_num_hidden)``, from ``hidden``: one name
    (or :class:`Activation`) for every hidden layer, or a list or tuple with one per hidden layer.

    Names are looked up by :func:`get_activation` with ``negative_slope`` and ``alpha``.

    Raises:
      ValueError: for an unknown name (listing the valid ones), an activation only an output layer can take
        (softmax), or a list whose length is not ``num_hidden``; naming ``name`` and, for the length,
        ``layers`` (what has the hidden layers, e.g. ``"sizes [2, 3, 1]"``).
    """
    per_layer = isinstance(hidden, (list, tuple)) and not isinstance(hidden, Activation)  # a NamedTuple
    activations = tuple(get_activation(item, negative_slope, alpha) for item in (hidden if per_layer else [hidden]))
    for act in activations:
        if not act.hidden_ok:
            raise ValueError(f"`{name}={act.name!r}` can only be an output activation; hidden layers take an "
                             f"elementwise activation such as relu, tanh or gelu")
    if not per_layer:
        return activations * num_hidden
    if len(activations) != num_hidden:
        raise ValueError(f"`{name}` has {len(activations)} activations but {layers} has {num_hidden} hidden "
                         "layers; give one name for all or one per hidden layer")
    return activations

"""Layers: small values of pure functions, each with its backward written by hand.

A :class:`Layer` is what optax's ``GradientTransformation`` is to optimisers
and stax's ``(init, apply)`` pair is to layers: a NamedTuple of functions,
no state inside.  Arrays are batch-first: ``x`` is ``(m, n_in)``, ``y`` is ``(m, n_out)``.

    params         = layer.init(key, n_in, dtype)          a dict of arrays ({} when none)
    y, cache       = layer.forward(params, x, key)        training mode; key for dropout
    dparams, dx    = layer.backward(params, cache, dy)    the vector-Jacobian product
    y              = layer.infer(params, x)               inference: no cache, dropout off

A layer's ``forward`` is its *training* forward (it returns a cache for
``backward``); its inference is ``infer``.  A network's ``model.forward(params, x)``
is inference, and ``model.forward(params, x, key=key)`` training mode: see
:class:`funcnet.model.Network`.

A layer that computes named quantities inside it (:func:`dense`: ``Z``, before
its activation) lists them in ``layer.inner``; its ``forward`` and ``backward``
then take ``observe=``, a function ``(name, value) -> value`` they call on each
one (``"Z"`` in ``forward``, ``"dZ"`` in ``backward``), batch-first, and go on
with what it returns.  :mod:`funcnet.trace` uses it to show ``Z`` and ``dZ``
and to differentiate with respect to them; training never passes it.

``backward`` is the layer's hand-written VJP: given ``dy = ∂L/∂y`` it returns
``∂L/∂params`` (the structure of ``params``) and ``dx = ∂L/∂x``.  ``cache`` is
whatever ``forward`` saved for it and is private to the layer.  A network is
a sequence of layers; manual backprop is the reversed fold of their
``backward`` (:mod:`funcnet.backprop`), and ``jax.grad`` differentiates the
very same ``forward`` functions, ignoring the caches.

The built-in layers, with their equations (shapes for a batch of ``m``):

* :func:`dense` ``(n_in → units)``: ``Z = X W + b``, ``Y = g(Z)``;
  ``dZ = dY ⊙ g'(Z)``, ``dW = Xᵀ dZ``, ``db = Σ_rows dZ``, ``dX = dZ Wᵀ``.
* :func:`activation_layer`: ``Y = g(X)``; ``dX = dY ⊙ g'(X)``.
* :func:`dropout` (rate ``p``, keep ``q = 1 − p``): ``Y = M ⊙ X / q`` with
  ``M ~ Bernoulli(q)`` per element; ``dX = M ⊙ dY / q``; the identity at inference.
* :func:`layer_norm`: per row, ``μ = mean(x)``, ``σ² = mean((x − μ)²)``,
  ``x̂ = (x − μ) / √(σ² + ε)``, ``y = γ ⊙ x̂ + β``;
  ``dγ = Σ_rows dY ⊙ X̂``, ``dβ = Σ_rows dY``,
  ``dX = (1/√(σ²+ε)) (dX̂ − mean(dX̂) − X̂ ⊙ mean(dX̂ ⊙ X̂))`` with ``dX̂ = dY ⊙ γ``
  (means over the features of each row).
* :func:`layer` wraps your own ``init``/``forward``/``backward``.

The same arguments give the same layer object, so a model built twice from
the same description compares equal and shares compiled code.
"""

from __future__ import annotations

# The namespace fn.layers: what it promises (the rest of the module is implementation).
__all__ = [
    "Layer", "dense", "dropout", "layer_norm", "layer", "activation_layer",
    "default_dense_layout", "DENSE_LAYOUTS",
]

import functools
import os
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcnet.activations import PARAMETER_DTYPE, Activation, get_activation, with_parameter
from funcnet.checks import check_count, check_real, error_prefix
from funcnet.initializers import glorot_uniform, he_normal

Array = jax.Array


class _LayerFields(NamedTuple):
    """The fields of a :class:`Layer` (documented there)."""

    name: str
    init: Callable[[jax.Array, int, Any], dict]
    output_size: Callable[[int], int]
    forward: Callable[[dict, Array, jax.Array | None], tuple[Array, Any]]
    backward: Callable[[dict, Any, Array], tuple[dict, Array]]
    needs_key: bool = False
    config: tuple = ()
    builtin: bool = True
    infer_fn: Callable[[dict, Array], Array] | None = None
    inner: tuple[str, ...] = ()


class Layer(_LayerFields):
    """One layer as pure functions; see the module docstring for the protocol.

    Which name means what:

    * ``layer.forward(params, x, key) -> (y, cache)``: the **training** forward,
      the one both gradient modes differentiate; ``key`` is ``None`` for a layer
      that needs none, and at inference.
    * ``layer.infer(params, x) -> y``: the layer's **inference** (dropout off, no
      cache): its ``infer_fn`` when it has one, else ``forward(params, x, None)[0]``.
      ``model.forward(params, x)``, ``model.logits(params, x)``,
      ``fn.predict`` and validation losses run it.
    * ``infer_fn``: the field that holds a layer's own inference function, or
      ``None``; call ``layer.infer``, which resolves it.

    Attributes:
      name: ``"dense"``, ``"dropout"``, ... or your own layer's name.
      init: ``(key, n_in, dtype) -> params``, a dict of arrays (``{}`` when none).
      output_size: ``n_in -> n_out``.
      forward: ``(params, x, key) -> (y, cache)``; ``x`` ``(m, n_in)``, ``y``
        ``(m, n_out)``; ``key`` is a ``jax.random`` key in training mode and
        ``None`` at inference.
      backward: ``(params, cache, dy) -> (dparams, dx)``, hand-written.
      needs_key: whether training mode needs a key (dropout).
      config: the settings that rebuild a built-in layer, as ``((name, value), ...)``.
      builtin: whether funcnet can rebuild it from ``name`` and ``config`` (checkpoints).
      infer_fn: ``(params, x) -> y``, the layer's own inference, or ``None``
        for ``forward(params, x, None)[0]``.  It may compute the same values in
        another way (:func:`dense` uses the plain batch-first product there);
        gradients never go through it.  Its old name ``predict`` works for one
        minor release (``Layer(..., predict=f)``, ``layer._replace(predict=f)``,
        ``layer.predict``), with a ``DeprecationWarning`` naming ``infer_fn``.
      inner: the names of quantities inside the layer that ``forward`` reports
        to an ``observe=`` keyword (and ``backward`` their gradients, ``"d"`` +
        name); ``()``: ``forward`` and ``backward`` take no ``observe``.
    """

    __slots__ = ()

    def __new__(cls, *fields, predict=None, **named_fields):  # `predict=`: infer_fn's old name, for one release
        if predict is not None:
            given = len(fields) > _LayerFields._fields.index("infer_fn") or "infer_fn" in named_fields
            named_fields["infer_fn"] = _renamed_predict(predict, given)
        return super().__new__(cls, *fields, **named_fields)

    def _replace(self, **fields) -> Layer:
        """A copy with ``fields`` replaced (``predict=`` is ``infer_fn=``, deprecated)."""
        if "predict" in fields:
            fields["infer_fn"] = _renamed_predict(fields.pop("predict"), "infer_fn" in fields)
        return super()._replace(**fields)

    @property
    def predict(self):
        """Deprecated: :attr:`infer_fn` (call :meth:`infer` for the layer's inference)."""
        warnings.warn(_PREDICT_RENAMED, DeprecationWarning, stacklevel=2)
        return self.infer_fn

    def infer(self, params: dict, x: Array) -> Array:
        """``y`` ``(m, n_out)`` at inference: :attr:`infer_fn`, or the training forward with no key."""
        return self.infer_fn(params, x) if self.infer_fn is not None else self.forward(params, x, None)[0]


_PREDICT_RENAMED = ("Layer.predict is deprecated: use Layer.infer_fn (the layer's own inference function, "
                    "or None), or layer.infer(params, x) to run the layer's inference")


def _renamed_predict(predict, infer_fn_given: bool):
    """``predict=``, ``infer_fn``'s old name: warns, and refuses to be given together with ``infer_fn``."""
    if infer_fn_given:
        raise TypeError("Layer: give `infer_fn` only; `predict` is its deprecated old name")
    warnings.warn(_PREDICT_RENAMED, DeprecationWarning, stacklevel=3)
    return predict


# ----------------------------------------------------------------------------- dense
DENSE_LAYOUTS = ("columns", "rows")
LAYOUT_VARIABLE = "FUNCNET_DENSE_LAYOUT"


def default_dense_layout() -> str:
    """The layout :func:`dense` takes when it is not given one: ``"columns"`` on a CPU backend, else ``"rows"``.

    ``FUNCNET_DENSE_LAYOUT=columns|rows``, if set, is taken instead; any
    other value is refused.  It is read here, when a layer is built, never
    when a function is traced: a built model keeps its layout.

    Raises:
      ValueError: for a ``FUNCNET_DENSE_LAYOUT`` that is neither (``"ROWS"``, ``"column"``).
    """
    layout = os.environ.get(LAYOUT_VARIABLE, "").strip()
    if layout and layout not in DENSE_LAYOUTS:  # a typo must not pick a layout silently
        raise ValueError(f"{LAYOUT_VARIABLE} must be 'columns' or 'rows' (or unset), got {layout!r}")
    return layout or ("columns" if jax.default_backend() == "cpu" else "rows")


def materialise_transposes() -> bool:
    """Whether a :func:`dense` layer built now, without ``layout=``, computes in the ``"columns"`` layout."""
    return default_dense_layout() == "columns"


def _buffer(array: Array, materialise: bool) -> Array:
    return lax.optimization_barrier(array) if materialise else array


def dense(units: int, activation="identity", *, bias: bool = True, initializer: str | None = None,
          layout: str | None = None) -> Layer:
    """A fully connected layer with an elementwise activation: ``Y = g(X W + b)``.

    Args:
      units: ``n_out``, the layer's width: an integer ≥ 1 of any integral type (``int``, ``np.int64``, ...).
      activation: a name from ``funcnet.activations.ACTIVATION_NAMES`` (not softmax, which
        is an output: the model's ``output=``) or your own from
        :func:`funcnet.activation`.
      bias: whether the layer has ``b``; without it ``Z = X W``.
      initializer: ``"he"`` or ``"glorot"``; default from the activation
        (He normal for the ReLU family, Glorot uniform otherwise).
      layout: how the training forward and the hand-written backward lay out
        their products: ``"columns"``, ``"rows"``, or ``None`` for
        :func:`default_dense_layout`, decided now, when the layer is built.
        Both give the same values up to rounding; layers that differ only
        in layout are different layers (``jax.jit`` compiles each).

    Params: ``{"W": (n_in, units), "b": (units,)}`` (no ``"b"`` without bias).

    Forward and backward (``m`` rows), as in the first article:

        Z = X W + b                (m, units)        Y = g(Z)
        dZ = dY ⊙ g'(Z)            dW = Xᵀ dZ   (n_in, units)
        db = Σ_rows dZ  (units,)   dX = dZ Wᵀ   (m, n_in)

    Inside, the products are computed transposed, ``Zᵀ = Wᵀ Xᵀ + b``,
    ``dW = Xᵀ (dZᵀ)ᵀ``, ``dXᵀ = W dZᵀ``: the article's own column-major
    layout, so that the batch is the long, contiguous dimension of every
    product, and the activation is applied inside it (between two dense
    layers the transposes cancel).  In the ``"columns"`` layout ``Wᵀ`` and
    ``Xᵀ`` are kept as buffers of their own behind an optimisation barrier:
    left alone, XLA folds the transposes back into the dot as transposed
    operands, and XLA:CPU's small-matrix dot path is faster with row-major
    buffers (BENCHMARKS.md, "Dense layout").  In the ``"rows"`` layout the
    transposes are left for XLA to fold, as GPUs' matrix libraries read
    transposed operands natively.  The barrier changes no value and has the
    identity's derivative, and both gradient modes run this same forward.
    Inference (``layer.infer``) is the plain batch-first ``g(X W + b)`` in both.

    The layer's ``inner`` is ``("Z",)``: its ``forward`` and ``backward``
    take ``observe=`` and report ``Z`` and ``dZ``, ``(m, units)``.

    Raises:
      ValueError: for a ``layout`` other than those (and TypeError for a non-string one).
    """
    with error_prefix("dense "):
        units = check_count(units, "units")
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"dense `bias` must be True or False, got {bias!r} ({type(bias).__name__})")
    act = _elementwise_activation(activation, "dense")
    initializer = initializer or act.initializer
    if initializer not in ("he", "glorot"):
        raise ValueError(f"dense `initializer` must be 'he' or 'glorot', got {initializer!r}")
    if layout is not None and not isinstance(layout, str):
        raise TypeError(f"dense `layout` must be 'columns', 'rows' or None, got {layout!r} "
                        f"({type(layout).__name__})")
    if layout is not None and layout not in DENSE_LAYOUTS:
        raise ValueError(f"dense `layout` must be 'columns', 'rows' or None, got {layout!r}")
    return _dense(units, act, bool(bias), initializer, layout or default_dense_layout())


@functools.lru_cache(maxsize=None)
def _dense(units: int, act: Activation, bias: bool, initializer: str, layout: str) -> Layer:
    """:func:`dense` after its arguments are checked and normalised (one object per description and layout)."""
    materialise = layout == "columns"

    def init(key, n_in, dtype):
        lowest = jnp.nextafter(jnp.array(-1, dtype), jnp.array(0, dtype))  # keeps erfinv finite
        uniform = jax.random.uniform(key, (n_in, units), dtype, minval=lowest, maxval=1.0)
        weights = he_normal(uniform, n_in) if initializer == "he" else glorot_uniform(uniform, n_in, units)
        return {"W": weights, "b": jnp.zeros((units,), dtype)} if bias else {"W": weights}

    def forward(params, x, key, observe=None):
        inputs = _buffer(x.T, materialise)                                    # Xᵀ  (n_in, m)
        z = _buffer(params["W"].T, materialise) @ inputs                      # Zᵀ = Wᵀ Xᵀ  (units, m)
        if bias:
            z = z + params["b"][:, None]
        if observe is not None:
            z = observe("Z", z.T).T
        return act.apply(z).T, (inputs, z)

    def backward(params, cache, dy, observe=None):
        inputs, z = cache
        dz = act.backward(z, dy.T)                                            # dZᵀ = dYᵀ ⊙ g'(Zᵀ)
        if observe is not None:
            dz = observe("dZ", dz.T).T
        grads = {"W": inputs @ dz.T}                                          # dW = Xᵀ dZ
        if bias:
            grads["b"] = jnp.sum(dz, axis=1)                                  # db = Σ_rows dZ
        return grads, (params["W"] @ dz).T                                    # dX = (W dZᵀ)ᵀ

    def infer(params, x):  # Y = g(X W + b), batch-first: no backward to share a layout with
        z = x @ params["W"]
        return act.apply(z + params["b"][None, :] if bias else z)

    config = (("units", units), ("activation", act.name), ("bias", bias), ("initializer", initializer))
    if act.name in ("leaky_relu", "elu"):
        config += (("activation_parameter", act.parameter),)
    return Layer("dense", init, lambda n_in: units, forward, backward, config=config, builtin=act.builtin,
                 infer_fn=infer, inner=("Z",))


def _elementwise_activation(activation, where: str) -> Activation:
    act = get_activation(activation)
    if not act.hidden_ok:
        raise ValueError(f"{where}: activation {act.name!r} is not elementwise and can only be the model's "
                         f"output activation (output={act.name!r})")
    return act


# ----------------------------------------------------------------------------- activation
def activation_layer(activation) -> Layer:
    """An activation on its own: ``Y = g(X)``, ``dX = dY ⊙ g'(X)``; no params, same width.

    In :func:`funcnet.sequential` an activation name or :class:`Activation`
    in the list of layers becomes this layer.
    """
    return _activation_layer(_elementwise_activation(activation, "activation_layer"))


@functools.lru_cache(maxsize=None)
def _activation_layer(act: Activation) -> Layer:
    """:func:`activation_layer` for a resolved activation (one object per activation)."""

    def forward(params, x, key):
        return act.apply(x), x

    def backward(params, x, dy):
        return {}, act.backward(x, dy)

    config = (("activation", act.name),)
    if act.name in ("leaky_relu", "elu"):
        config += (("activation_parameter", act.parameter),)
    return Layer("activation", _no_params, _same_width, forward, backward, config=config, builtin=act.builtin)


def _no_params(key, n_in, dtype):
    return {}


def _same_width(n_in):
    return n_in


# ----------------------------------------------------------------------------- dropout
def dropout(rate: float) -> Layer:
    """Inverted dropout: in training, each element is zeroed with probability ``rate``.

    With keep probability ``q = 1 − rate`` and ``M ~ Bernoulli(q)`` drawn
    elementwise from the layer's key:

        Y = M ⊙ X / q              dX = M ⊙ dY / q

    so ``E[Y] = X`` and nothing needs rescaling at inference, where the layer
    is the identity (``key`` is ``None``).  The mask comes only from the key:
    the same key gives the same mask in ``model.loss`` and ``model.manual_grad``.

    ``rate`` is a real number in ``[0, 1)`` of any real type; NaN, ±inf,
    a bool or a rate outside raise, naming ``rate``.
    """
    with error_prefix("dropout "):
        rate = check_real(rate, "rate", low=0.0, high=1.0, high_open=True)
    return _dropout(rate)


@functools.lru_cache(maxsize=None)
def _dropout(rate: float) -> Layer:
    """:func:`dropout` for a checked rate (one object per rate, however it was spelled)."""
    keep = 1.0 - rate

    def forward(params, x, key):
        if key is None or rate == 0.0:
            return x, None
        mask = jax.random.bernoulli(key, keep, x.shape)
        return jnp.where(mask, x / keep, 0), mask

    def backward(params, mask, dy):
        if mask is None:
            return {}, dy
        return {}, jnp.where(mask, dy / keep, 0)

    return Layer("dropout", _no_params, _same_width, forward, backward, needs_key=rate > 0.0,
                 config=(("rate", rate),))


# ----------------------------------------------------------------------------- layer norm
def layer_norm(epsilon: float = 1e-5) -> Layer:
    """Layer normalisation over each row's features, with a learnable scale ``γ`` and shift ``β``.

    Params: ``{"scale": (n,), "shift": (n,)}``, initialised to ones and zeros.
    For a row ``x`` of ``n`` features (``ε = epsilon``):

        μ = (1/n) Σ_j x_j        σ² = (1/n) Σ_j (x_j − μ)²        r = 1 / √(σ² + ε)
        x̂ = (x − μ) r            y = γ ⊙ x̂ + β

    Backward, with ``dx̂ = dy ⊙ γ`` and means over the row's features:

        dγ = Σ_rows dy ⊙ x̂        dβ = Σ_rows dy
        dx = r (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂))

    ``epsilon`` is a finite real number ``> 0`` of any real type; NaN, ±inf,
    0, negatives and bools raise, naming ``epsilon``, and so does an ``epsilon``
    that float32, the default params dtype, turns into inf or 0 (above 3.4e38, below 1.2e-38).
    """
    with error_prefix("layer_norm "):
        epsilon = check_real(epsilon, "epsilon", low=0.0, low_open=True, high=np.inf, high_open=True,
                             dtype=PARAMETER_DTYPE)
    return _layer_norm(epsilon)


@functools.lru_cache(maxsize=None)
def _layer_norm(epsilon: float) -> Layer:
    """:func:`layer_norm` for a checked epsilon (one object per value, however it was spelled)."""

    def init(key, n_in, dtype):
        return {"scale": jnp.ones((n_in,), dtype), "shift": jnp.zeros((n_in,), dtype)}

    def forward(params, x, key):
        centred = x - jnp.mean(x, axis=-1, keepdims=True)
        inverse_std = lax.rsqrt(jnp.mean(centred * centred, axis=-1, keepdims=True) + epsilon)
        normalised = centred * inverse_std
        return normalised * params["scale"][None, :] + params["shift"][None, :], (normalised, inverse_std)

    def backward(params, cache, dy):
        normalised, inverse_std = cache
        d_normalised = dy * params["scale"][None, :]
        dx = inverse_std * (d_normalised - jnp.mean(d_normalised, axis=-1, keepdims=True)
                            - normalised * jnp.mean(d_normalised * normalised, axis=-1, keepdims=True))
        return {"scale": jnp.sum(dy * normalised, axis=0), "shift": jnp.sum(dy, axis=0)}, dx

    return Layer("layer_norm", init, _same_width, forward, backward, config=(("epsilon", epsilon),))


# ----------------------------------------------------------------------------- your own
def layer(name: str, init, forward, backward, *, output_size=None, needs_key: bool = False, infer=None) -> Layer:
    """Your own layer, usable in :func:`funcnet.sequential` exactly like a built-in.

    Args:
      name: a label for errors, reports and checkpoints.
      init: ``(key, n_in, dtype) -> params``: a dict of arrays, ``{}`` for none.
        A leaf named ``"W"`` is a weight: the model's ``l2`` penalty applies to it.
      forward: ``(params, x) -> (y, cache)``, or ``(params, x, key) -> (y, cache)``
        with ``needs_key=True`` (``key`` is ``None`` at inference).  ``x`` is
        ``(m, n_in)``, ``y`` is ``(m, output_size(n_in))``; ``cache`` is any
        pytree of what ``backward`` needs.  It must be a pure JAX function:
        ``grad="autodiff"`` differentiates it with ``jax.grad``.
      backward: ``(params, cache, dy) -> (dparams, dx)``: your hand-written
        vector-Jacobian product, ``dparams = ∂L/∂params`` (the structure of
        ``params``) and ``dx = ∂L/∂x``, given ``dy = ∂L/∂y``.  Manual backprop
        calls it; check it with :func:`funcnet.derivative_checks.check_layer`.
      output_size: ``n_in -> n_out``; default: the same width.
      needs_key: whether ``forward`` takes a random key (in training mode).
      infer: ``(params, x) -> y``, the layer's inference (``layer.infer``), when
        it computes the same ``y`` as the training forward in another way;
        default ``None``: ``forward`` with no key (dropout off), its cache dropped.
        :func:`funcnet.derivative_checks.check_layer` compares the two.

    Example (a learnable per-feature scale, ``y = x ⊙ s``):
      >>> scale = fn.layer("scale", lambda key, n, dtype: {"s": jnp.ones((n,), dtype)},
      ...                  lambda p, x: (x * p["s"], x),
      ...                  lambda p, x, dy: ({"s": jnp.sum(dy * x, 0)}, dy * p["s"]))
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string, got {name!r}")
    if name in LAYER_KINDS:
        raise ValueError(f"`name={name!r}` is a built-in layer kind ({', '.join(LAYER_KINDS)}); give yours "
                         "another name")
    for argument, value in (("init", init), ("forward", forward), ("backward", backward)):
        if not callable(value):
            raise TypeError(f"layer {name!r}: `{argument}` must be a callable, got {type(value).__name__}")
    if infer is not None and not callable(infer):
        raise TypeError(f"layer {name!r}: `infer` must be a callable (params, x) -> y or None, got "
                        f"{type(infer).__name__}")
    keyed_forward = forward if needs_key else (lambda params, x, key: forward(params, x))
    return Layer(name, init, output_size or _same_width, keyed_forward, backward,
                 needs_key=bool(needs_key), builtin=False, infer_fn=infer)


LAYER_KINDS = ("dense", "activation", "dropout", "layer_norm")


def layer_from_config(name: str, config: dict) -> Layer:
    """The built-in layer that ``(layer.name, dict(layer.config))`` describes (checkpoints)."""
    config = dict(config)
    if name in ("dense", "activation"):
        parameter = config.pop("activation_parameter", None)
        if parameter is not None:
            config["activation"] = with_parameter(config["activation"], parameter)
        return dense(**config) if name == "dense" else activation_layer(**config)
    if name == "dropout":
        return dropout(**config)
    if name == "layer_norm":
        return layer_norm(**config)
    raise ValueError(f"unknown layer kind {name!r}; funcnet builds {', '.join(LAYER_KINDS)}")


def as_layer(item) -> Layer:
    """A :class:`Layer` from an item of a ``sequential`` list: a layer, an activation name or value."""
    if isinstance(item, Layer):
        return item
    if isinstance(item, (str, Activation)):
        return activation_layer(item)
    raise TypeError(f"expected a layer (fn.dense(...), fn.dropout(...), ...) or an activation name, "
                    f"got {type(item).__name__}: {item!r}")


"""Networks: an immutable sequence of layers plus pure functions of params.

A :class:`Network` holds only the architecture (its layers, output
activation, loss and L2 strength), so it is hashable and can be a static
argument of ``jax.jit``.  Parameters live outside it, as a list with one
dict per layer (a pytree); layers without parameters get ``{}``.  For
:func:`mlp` without dropout that is exactly

    params[l]["W"]: (sizes[l], sizes[l+1])     params[l]["b"]: (sizes[l+1],)

The last layer's output is the pre-activation ``Z`` ``(m, k)``; the model's
``output`` activation turns it into predictions ``A = g(Z)``, and the loss is
computed from ``Z`` (stable log-loss and cross-entropy).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Iterable, Mapping, Set

import jax
import jax.numpy as jnp

from funcnet import backprop, checks, forward
from funcnet.activations import PARAMETER_DTYPE, Activation, get_activation, hidden_activations
from funcnet.layers import Layer, as_layer, dense
from funcnet.layers import dropout as dropout_layer  # mlp's `dropout` argument is the rate
from funcnet.losses import LOSS_NAMES, Loss, get_loss

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Network:
    """A feed-forward network: architecture only, no parameters.

    Build one with :func:`mlp` or :func:`sequential`.  All methods are pure
    functions of their arguments and work under ``jax.jit``, ``jax.grad``,
    ``jax.jvp``, ``jax.hessian`` and ``jax.vmap``.

    Which name means what (``x`` ``(m, n_in)``; ``Z`` the last layer's output,
    the logits, ``(m, n_out)``; ``A = g(Z)`` with ``g`` the output activation):

    * ``model.forward(params, x)``: **inference**, ``A`` (dropout off; each
      layer runs its ``layer.infer``).
    * ``model.forward(params, x, key=key)``: **training mode**, ``A`` through
      each layer's ``layer.forward``, the forward that the gradients go through.
    * ``model.logits(params, x[, key=key])``: ``Z`` instead of ``A``, in the
      same two modes.
    * ``model.loss(params, x, y[, weights, key=key])``: the training objective
      (training mode); ``model.eval_loss``: the data loss at inference.
    * ``fn.predict(model, params, x)``: ``model.forward(params, x)`` over a
      whole dataset, checked, in padded buckets of rows.

    A :class:`~funcnet.layers.Layer`'s ``forward`` is always its training
    forward; its inference is ``layer.infer``.

    Attributes:
      n_in: the number of input features.
      layers: the :class:`~funcnet.layers.Layer` values, first to last.
      output_fn: the output :class:`~funcnet.activations.Activation` ``g``.
      loss_fn: the :class:`~funcnet.losses.Loss`.
      l2: the L2 penalty strength ``λ``: the loss adds ``(λ/2) Σ ‖W‖²`` over weights.
    """

    n_in: int
    layers: tuple[Layer, ...]
    output_fn: Activation
    loss_fn: Loss
    l2: float = 0.0

    # ------------------------------------------------------------------ description
    @property
    def widths(self) -> tuple[int, ...]:
        """The output width of every layer, first to last."""
        widths, width = [], self.n_in
        for layer in self.layers:
            width = layer.output_size(width)
            widths.append(width)
        return tuple(widths)

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(n_in, width of each dense layer..., n_out)``: for an :func:`mlp`, the ``sizes`` it was given."""
        sizes = [self.n_in] + [w for layer, w in zip(self.layers, self.widths) if layer.name == "dense"]
        return tuple(sizes if sizes[-1] == self.n_out and len(sizes) > 1 else sizes + [self.n_out])

    @property
    def n_out(self) -> int:
        """The network's output width ``k``."""
        return self.widths[-1]

    @property
    def output_activation(self) -> str:
        """The output activation's name."""
        return self.output_fn.name

    @property
    def loss_name(self) -> str:
        """The loss's name."""
        return self.loss_fn.name

    @property
    def hidden_activations(self) -> tuple[str, ...]:
        """The activation names of the hidden dense layers, first to last."""
        dense_layers = [layer for layer in self.layers if layer.name == "dense"][:-1]
        return tuple(dict(layer.config)["activation"] for layer in dense_layers)

    @property
    def needs_key(self) -> bool:
        """Whether training mode needs a ``jax.random`` key (the model has dropout)."""
        return any(layer.needs_key for layer in self.layers)

    def describe(self) -> str:
        """One line, e.g. ``5-32(relu)-layer_norm-dropout(0.1)-1 → identity, huber``: :func:`summary_line`
        of :meth:`description`."""
        return summary_line(self.description())

    def description(self) -> dict:
        """The JSON-able description of the model that a checkpoint header holds and
        :func:`funcnet.checkpoint.model_from_description` turns back into it: ``n_in``, each layer's kind
        and config, the output activation, the loss and its config, ``l2``.  Pieces of your own are
        recorded by name with ``"custom": true``."""

        def piece(kind, name, config, builtin):
            entry = {"kind": kind, **dict(config)} if kind else {"name": name, **dict(config)}
            return entry if builtin else {**entry, "name": name, "custom": True}

        return {"n_in": self.n_in,
                "layers": [piece(layer.name, layer.name, layer.config, layer.builtin) for layer in self.layers],
                "output": piece(None, self.output_fn.name, (), self.output_fn.builtin),
                "loss": piece(None, self.loss_fn.name, self.loss_fn.config, self.loss_fn.builtin),
                "l2": self.l2}

    # ------------------------------------------------------------------ pure functions
    def init(self, key: jax.Array, dtype=jnp.float32) -> list[dict]:
        """Fresh parameters: one dict per layer, each made by its layer's ``init``.

        Dense weights are He normal (ReLU family) or Glorot uniform, biases
        zero (see :mod:`funcnet.initializers`); layer norm starts at scale 1,
        shift 0.  Layer ``l`` draws from ``fold_in(key, l)``.

        Args:
          key: a ``jax.random`` key; the same key gives bit-identical params.
          dtype: ``jnp.float32`` (default), ``jnp.float64`` (needs
            ``jax.config.update("jax_enable_x64", True)``), ``jnp.bfloat16``
            or ``jnp.float16``.  Training keeps this dtype: ``train_step`` and
            ``fit`` cast each batch to it; ``fit`` sums the epoch's losses in
            float32 for the 16-bit dtypes (float16 overflows beyond 65504).

        Returns:
          ``[{"W": (n_in, n_out), "b": (n_out,)}, {}, ...]``, one dict per layer.

        Raises:
          ValueError: for anything but one key, a batch of keys included
            (``fn.stacked_init(model, keys)`` or ``jax.vmap(model.init)(keys)``
            makes one set of params per key).
        """
        checks.check_key(key, "key", "model.init")
        _check_one_key(key)
        # Called with a concrete key, init is a program of its own, compiled with init's options; called
        # with a traced one (jax.jit, eval_shape, vmap), it is part of the program being traced around it,
        # where compiler options are refused.  Both compute the same bits (tests/test_model.py).
        compiled = _init_inside_a_trace if isinstance(key, jax.core.Tracer) else _init_compiled_alone()
        return compiled(self, key, jnp.dtype(dtype))

    def logits(self, params: list[dict], x: Array, *, key: jax.Array | None = None) -> Array:
        """The logits ``Z``, the last layer's output before the output activation, ``(batch, n_out)``.

        Without ``key`` inference (each layer's ``layer.infer``); with ``key``
        training mode (each layer's ``layer.forward``), as in :meth:`forward`.
        """
        checks.check_param_shapes(self, params)
        checks.check_inputs(self, x)
        if key is None:
            return forward.infer(self.layers, params, x)
        checks.check_key(key, "key", "model.forward", single=True)
        return forward.forward(self.layers, params, x, key)[0]

    def forward(self, params: list[dict], x: Array, *, key: jax.Array | None = None) -> Array:
        """The network's output ``A = g(Z)``: ``(batch, n_in) -> (batch, n_out)``.

        Without ``key`` this is inference: dropout is off, the result is
        deterministic, and each layer runs its ``layer.infer``.  With ``key`` it
        is the training-mode forward pass that the gradients go through (each
        layer's ``layer.forward``).
        """
        return self.output_fn.apply(self.logits(params, x, key=key))

    def loss(self, params: list[dict], x: Array, y: Array, weights: Array | None = None, *,
             key: jax.Array | None = None) -> Array:
        """The training objective, a scalar: ``(1/m) Σ_i ℓ_i + (λ/2) Σ ‖W‖²``.

        With ``weights`` the data term is ``Σ w_i ℓ_i / Σ w_i``.  This is the
        function ``grad="autodiff"`` differentiates with ``jax.value_and_grad``.

        Args:
          params: one dict per layer.
          x: inputs ``(m, n_in)``.
          y: targets ``(m, n_out)``; for ``cross_entropy`` also integer classes ``(m,)``.
          weights: optional per-sample weights ``(m,)`` (e.g. 0 for padding rows).
          key: one ``jax.random`` key for dropout (a batch of keys raises); required when
            the model has dropout (training mode).  Use :meth:`eval_loss` for the loss at inference.
        """
        self._check_batch(params, x, y, weights, key, "model.loss")
        checks.check_dropout_key(self, key, "model.loss", "model.loss(params, x, y, key=jax.random.key(0))",
                                 "for the loss at inference (dropout off) use model.eval_loss(params, x, y)")
        return forward.objective(self, params, forward.forward(self.layers, params, x, key)[0], y, weights)

    def eval_loss(self, params: list[dict], x: Array, y: Array, weights: Array | None = None) -> Array:
        """The data loss at inference (dropout off, no L2 term): ``(1/m) Σ_i ℓ_i``; what ``val_loss`` reports."""
        self._check_batch(params, x, y, weights)
        z_out = forward.infer(self.layers, params, x)
        return forward.weighted_mean(self.loss_fn.per_sample(z_out, y, self.output_fn), weights)

    def manual_grad(self, params: list[dict], x: Array, y: Array, weights: Array | None = None, *,
                    key: jax.Array | None = None):
        """``(loss, grads)`` by the hand-written backprop of :mod:`funcnet.backprop`.

        Same arguments as :meth:`loss`; equals
        ``jax.value_and_grad(model.loss)(params, x, y, weights, key=key)`` up to rounding.
        """
        self._check_batch(params, x, y, weights, key, "model.manual_grad")
        checks.check_dropout_key(self, key, "model.manual_grad",
                                 "model.manual_grad(params, x, y, key=jax.random.key(0))")
        return backprop.manual_value_and_grad(self, params, x, y, weights, key)

    def _check_batch(self, params, x, y, weights, key=None, where="model.loss") -> None:
        """The shape checks of :meth:`loss` and :meth:`manual_grad` (run while tracing), and the key's type."""
        checks.check_param_shapes(self, params)
        checks.check_inputs(self, x)
        checks.check_targets(self, x, y)
        checks.check_weights(x, weights)
        if key is not None:
            checks.check_key(key, "key", where, single=True)


MLP = Network  # the name of version 1's class; every model is a Network now


def _init_optimization_level(xla_flags: str) -> int:
    """LLVM level 1 for init, or the lower level the user asked for in ``XLA_FLAGS`` (never a higher one)."""
    asked = re.findall(r"--xla_backend_optimization_level=(\d+)", xla_flags)
    return min(1, int(asked[-1])) if asked else 1


def _check_one_key(key) -> None:
    """``key`` is one key: a typed key of shape ``()`` or a raw ``uint32[2]``, not a batch of them."""
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key) if hasattr(key, "dtype") else False
    batch = tuple(jnp.shape(key)) if typed else tuple(jnp.shape(key))[:-1]
    if batch:
        raise ValueError(f"`key` must be one jax.random key, got a batch of keys of shape {batch}; model.init "
                         "makes one set of params: for one per key use fn.stacked_init(model, keys) or "
                         "jax.vmap(model.init)(keys)")


def _init_layers(model: Network, key: jax.Array, dtype) -> list[dict]:
    """Each layer's ``init`` from ``fold_in(key, l)``, on the width the layer before it outputs."""
    params, width = [], model.n_in
    for index, layer in enumerate(model.layers):
        params.append(layer.init(jax.random.fold_in(key, index), width, dtype))
        width = layer.output_size(width)
    return params


_init_inside_a_trace = jax.jit(_init_layers, static_argnums=(0, 2))


@functools.cache
def _init_compiled_alone():
    """:func:`_init_layers` jitted as a top-level program, with :func:`_init_compiler_options` (read now, once).

    Init runs once per model, so its compile time is what a user waits for:
    LLVM's level-1 optimisation compiles the per-layer threefry draws in
    about half the time of XLA's default (a cold ``model.init`` of a
    5-10-10-1 mlp) and gives the same bits (tests/test_model.py).  A user
    (or the test suite) who asked for a lower level in ``XLA_FLAGS`` keeps it.
    """
    return jax.jit(_init_layers, static_argnums=(0, 2), compiler_options=_init_compiler_options())


def _init_compiler_options() -> dict:
    """``{"xla_backend_optimization_level": level}`` for init, the level from the ``XLA_FLAGS`` of now."""
    return {"xla_backend_optimization_level": _init_optimization_level(os.environ.get("XLA_FLAGS", ""))}


def _output_and_loss(output, loss, delta):
    loss_fn = get_loss(loss, delta)
    output_fn = get_activation(output if output is not None else loss_fn.default_output)
    if loss_fn.valid_outputs is not None and output_fn.name not in loss_fn.valid_outputs:
        pairs = "; ".join(f"{name}: {', '.join(get_loss(name).valid_outputs or ('any',))}" for name in LOSS_NAMES)
        raise ValueError(f"`loss={loss_fn.name!r}` does not pair with `output={output_fn.name!r}`; valid pairs "
                         f"are {pairs}")
    return output_fn, loss_fn


def _check_l2(l2) -> float:
    return checks.check_real(l2, "l2", low=0.0, dtype=PARAMETER_DTYPE)


def _check_outputs(n_out: int, loss_fn: Loss) -> None:
    if loss_fn.name == "cross_entropy" and n_out < 2:
        raise ValueError(
            f"`loss='cross_entropy'` needs at least 2 outputs (one per class), got {n_out}; for two "
            "classes with one output use output='sigmoid', loss='logloss'")


def summary_line(description: dict) -> str:
    """One line from a model's :meth:`Network.description` (also one read from a checkpoint, whose custom
    pieces cannot be rebuilt): ``n_in``, then each layer (a dense layer as ``units(activation)``, the
    activation left out when it is identity), then ``→ output, loss`` and the L2 strength when not 0.
    E.g. ``5-32(relu)-layer_norm-dropout(0.1)-1 → identity, huber``."""

    parts = [str(description["n_in"])]
    for item in description["layers"]:
        kind = item["kind"]
        if kind == "dense":
            parts.append(f"{item['units']}" + ("" if item["activation"] == "identity" else f"({item['activation']})"))
        elif kind == "dropout":
            parts.append(f"dropout({item['rate']:g})")
        elif kind == "activation":
            parts.append(item["activation"])
        else:
            parts.append(item.get("name", kind))
    penalty = f", l2 {description['l2']:g}" if description.get("l2") else ""
    return f"{'-'.join(parts)} → {description['output']['name']}, {description['loss']['name']}{penalty}"


def _check_layer_list(n_in: int, layers) -> None:
    """``layers`` must be an ordered collection (list, tuple, generator), not one layer, a name or a set."""
    if isinstance(layers, (Set, Mapping)):
        raise checks.ArgumentTypeError(f"`layers` must be a list of layers, got a {type(layers).__name__}, which has "
                                       "no order; give the layers in a list, first to last")
    if isinstance(layers, (Layer, Activation, str, bytes)) or not isinstance(layers, Iterable):
        if isinstance(layers, Layer):
            what, shown = f"one layer ({layers.name})", _call(layers)
        elif isinstance(layers, Activation):
            what, shown = f"one activation ({layers.name})", repr(layers.name)
        elif isinstance(layers, str):
            what, shown = f"the string {layers!r}", repr(layers)
        else:
            raise checks.ArgumentTypeError(f"`layers` must be a list of layers, got {type(layers).__name__}: "
                                           f"{layers!r}; e.g. fn.sequential({n_in}, [fn.dense(8, 'relu'), "
                                           "fn.dense(1)])")
        raise checks.ArgumentTypeError(f"`layers` must be a list of layers, got {what}; wrap it in a list: "
                                       f"fn.sequential({n_in}, [{shown}])")


def _call(layer: Layer) -> str:
    """How a built-in layer is written, for messages: ``fn.dense(3, 'relu')``; ``fn.layer(...)`` for your own."""
    config = dict(layer.config)
    if layer.name == "dense":
        act = config["activation"]
        return f"fn.dense({config['units']}{'' if act == 'identity' else f', {act!r}'})"
    if layer.name == "dropout":
        return f"fn.dropout({config['rate']:g})"
    if layer.name == "layer_norm":
        return "fn.layer_norm()"
    if layer.name == "activation":
        return repr(config["activation"])
    return "your_layer"


def sequential(n_in: int, layers, *, output=None, loss="mse", l2: float = 0.0, delta: float = 1.0) -> Network:
    """A network from a list of layers: ``fn.sequential(5, [fn.dense(32, "relu"), fn.dropout(0.1), fn.dense(1)])``.

    Args:
      n_in: the number of input features.
      layers: a list (or tuple, or any iterable) of
        :class:`~funcnet.layers.Layer` values (:func:`funcnet.dense`,
        :func:`funcnet.dropout`, :func:`funcnet.layer_norm`,
        :func:`funcnet.layer`); an activation name or :class:`Activation` in
        the list is an activation layer.  The last layer's output is ``Z``.
        A single layer or name not in a list is an error that says to wrap it.
      output: the output activation ``g`` with ``A = g(Z)``; default from the
        loss: sigmoid for logloss, softmax for cross_entropy, else identity.
      loss: ``mse``, ``mae``, ``huber``, ``logloss``, ``cross_entropy``, or
        your own from :func:`funcnet.loss`.
      l2: L2 penalty ``λ ≥ 0``: the loss adds ``(λ/2) Σ ‖W‖²`` over weight leaves ``"W"``.
      delta: huber's threshold ``> 0`` (with ``loss="huber"``; checked whatever the loss).

    Real-valued arguments take any real type (NumPy scalars included); NaN,
    ±inf and values out of range raise a ``ValueError`` naming the argument, and so
    do values that float32, the default params dtype, turns into inf (``|l2| > 3.4e38``)
    or, for ``delta > 0``, into 0.

    Returns:
      an immutable, hashable :class:`Network`.
    """
    n_in = checks.check_count(n_in, "n_in", integral_floats=True)
    _check_layer_list(n_in, layers)
    try:
        layers = tuple(as_layer(item) for item in layers)
    except TypeError as error:
        raise TypeError(f"`layers`: {error}") from None
    if not layers:
        raise ValueError("`layers` is empty; a network needs at least one layer, e.g. [fn.dense(1)]")
    output_fn, loss_fn = _output_and_loss(output, loss, delta)
    model = Network(n_in, layers, output_fn, loss_fn, _check_l2(l2))
    _check_outputs(model.n_out, loss_fn)
    return model


def mlp(sizes, hidden="relu", output="identity", loss="mse", negative_slope: float = 0.01, *,
        dropout: float = 0.0, l2: float = 0.0, delta: float = 1.0, alpha: float = 1.0) -> Network:
    """A multi-layer perceptron: dense layers, optional dropout after each hidden one.

    Args:
      sizes: layer widths, e.g. ``[5, 10, 10, 1]``: 5 inputs, two hidden layers
        of 10, one output.  At least two entries, all positive integers.
      hidden: the hidden layers' activation: one name (or :class:`Activation`)
        for all, or a list with one per hidden layer.  Any of identity,
        sigmoid, tanh, relu, leaky_relu, elu, gelu, gelu_tanh, softplus, silu,
        or your own from :func:`funcnet.activation`.
      output: the output activation (any of those, or softmax).
      loss: ``mse``, ``mae`` or ``huber`` (with any output), ``logloss``
        (binary cross-entropy, needs ``output="sigmoid"``), ``cross_entropy``
        (needs ``output="softmax"`` and at least 2 outputs), or your own.
      negative_slope: leaky_relu's slope ``≥ 0`` for negative inputs.
      dropout: the dropout rate in ``[0, 1)`` after every hidden layer
        (inverted dropout; off at inference).  0: no dropout layers.
      l2: L2 penalty ``λ ≥ 0`` on the weights (not the biases).
      delta: huber's threshold ``> 0``.
      alpha: elu's ``α ≥ 0``.

    Every numeric argument is checked whatever the activations and loss (a
    NaN ``negative_slope`` would turn every negative pre-activation into
    NaN): real ones take any real type, NumPy scalars included, and NaN,
    ±inf or a value out of range raises a ``ValueError`` naming the argument.
    ``negative_slope``, ``alpha``, ``l2`` and ``delta`` must also be finite in
    float32, the default params dtype (``negative_slope=1e39`` is inf there and
    predicts ``[-inf, nan, inf]``); ``delta`` must not round to 0 there.

    Returns:
      an immutable, hashable :class:`Network`.  Without dropout its params are
      ``[{"W", "b"}, ...]``, one dict per dense layer; with dropout every
      dropout layer adds an empty ``{}`` after its dense layer.

    Example:
      >>> import jax, funcnet as fn
      >>> model = fn.mlp([2, 3, 1], hidden="tanh", output="sigmoid", loss="logloss")
      >>> params = model.init(jax.random.key(0))
      >>> [p["W"].shape for p in params]
      [(2, 3), (3, 1)]
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Iterable):
        raise ValueError(f"`sizes` must be a list of positive integers, e.g. [5, 10, 1], got {sizes!r}")
    sizes = list(sizes)
    for index, size in enumerate(sizes):
        with checks.error_prefix(f"`sizes` must be a list of positive integers, got {sizes!r}: "):
            sizes[index] = checks.check_count(size, f"sizes[{index}]", integral_floats=True)
    negative_slope = checks.check_real(negative_slope, "negative_slope", low=0.0, dtype=PARAMETER_DTYPE)
    alpha = checks.check_real(alpha, "alpha", low=0.0, dtype=PARAMETER_DTYPE)
    rate = checks.check_real(dropout, "dropout", low=0.0, high=1.0, high_open=True)
    if len(sizes) < 2:
        raise ValueError(f"`sizes` must have at least 2 positive widths (inputs, ..., outputs), got {sizes}")
    num_hidden = len(sizes) - 2
    activations = hidden_activations(hidden, num_hidden, negative_slope, alpha, layers=f"sizes {sizes}")
    output_fn, loss_fn = _output_and_loss(get_activation(output, negative_slope, alpha), loss, delta)
    layers = []
    for width, act in zip(sizes[1:-1], activations):
        layers.append(dense(width, act))
        if rate:
            layers.append(dropout_layer(rate))
    # the last dense layer's initialiser follows the output activation, as for a hidden layer's
    layers.append(dense(sizes[-1], "identity", initializer=output_fn.initializer))
    model = Network(sizes[0], tuple(layers), output_fn, loss_fn, _check_l2(l2))
    _check_outputs(model.n_out, loss_fn)
    return model


"""A step-by-step trace of backprop: every layer's forward and backward numbers, by hand and by autodiff.

The second article prints every ``Z``, ``A``, ``dZ``, ``dW`` and ``db`` of its
small network for one input.  :func:`trace_backprop` prints the same for any
funcnet network, and computes every number twice:

* **manual**: the one hand-written backprop, :func:`funcnet.backprop.manual_steps`,
  which ``model.manual_grad`` also runs and which keeps what passes between
  the layers.  Forward, ``Y⁽ˡ⁾, cacheˡ = f_l.forward(θ_l, Y⁽ˡ⁻¹⁾, keyˡ)``;
  then, from the output gradient ``dZ = δ / m``,
  ``dθ_l, dY⁽ˡ⁻¹⁾ = f_l.backward(θ_l, cacheˡ, dY⁽ˡ⁾)`` for ``l = L … 1``,
  and ``dW += λ W``; nothing is re-derived.  A dense layer computes
  ``g(X W + b)`` in one call; the trace reads its ``Z`` and its hand-written
  ``dZ = dA ⊙ g'(Z)`` through the layers' ``observe`` hook, as the layer's
  own ``forward`` and ``backward`` compute them.
* **autodiff**: ``jax.grad`` through the forward ``grad="autodiff"`` trains
  with (:func:`funcnet.forward.forward`, each dense layer in its own layout),
  with a zero perturbation ``ε`` added by the fold's ``observe`` hook to
  every intermediate (``Z + ε_Z`` inside a dense layer, ``Y + ε_Y`` on every
  layer's output, ``A`` for a dense layer).  Since ``∂L/∂ε = ∂L/∂(what ε
  was added to)``, one ``jax.value_and_grad`` over ``(params, x, ε)`` gives
  every ``dA``, ``dZ``, ``dY``, ``dX`` and parameter gradient at once, as
  JAX's VJPs of that forward.

When a hand-written ``backward`` (or an activation's ``g'``) is wrong, the two
columns part at the first quantity it computes, and every quantity after it
inherits the difference: :meth:`BackpropTrace.first_difference` names it.

For a dense layer ``l`` with input ``X`` (the previous layer's output, ``m`` rows):

    Z = X W + b          (m, n)        A = g(Z)             (m, n)
    dA = ∂L/∂A           (m, n)        dZ = dA ⊙ g'(Z)      (m, n)
    dW = Xᵀ dZ + λ W     (n_in, n)     db = Σ_rows dZ       (n,)
    dX = dZ Wᵀ           (m, n_in)

and at the output, ``dA = δ / m`` with ``δ_i = ∂ℓ_i/∂A_i`` (``δ · w / Σw``
with sample weights): the ``1/m`` is applied once there, so ``dW`` and
``db`` are the exact gradients of the mean loss (the second article sums
``dW`` over the batch but averages ``db``; see :mod:`funcnet.backprop`).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from funcnet import backprop, checks, forward
from funcnet.gradcheck import leaf_difference

Array = jax.Array

__all__ = ["BackpropTrace", "LayerTrace", "TracedQuantity", "trace_backprop", "worked_example_network"]


@dataclasses.dataclass(frozen=True)
class TracedQuantity:
    """One number of the trace (an array), computed by hand and by autodiff.

    Attributes:
      name: the quantity within its layer: ``"Z"``, ``"A"``, ``"dA"``,
        ``"dZ"``, ``"dW"``, ``"db"``, ``"dX"``; ``"Y"``, ``"dY"`` and
        ``"d<leaf>"`` for other layers; ``"loss"`` (and ``"prediction"``
        for a non-identity output activation) on the last layer.
      label: the name as printed, with the layer's number: ``"dW2"``.
      equation: how it is computed, e.g. ``"dZ1 = dA1 ⊙ relu'(Z1)"``.
      phase: ``"forward"``, ``"loss"`` or ``"backward"``.
      manual: the hand-written fold's value (NumPy).
      autodiff: the value by ``jax.grad`` of the perturbed forward (NumPy).
      shape: the arrays' shape.
      max_abs: ``max|manual − autodiff|``.
      max_rel: ``max_abs / max(max|manual|, max|autodiff|, tiny)``, as
        :func:`funcnet.gradcheck.compare_grad_trees` measures it.
    """

    name: str
    label: str
    equation: str
    phase: str
    manual: np.ndarray
    autodiff: np.ndarray
    shape: tuple
    max_abs: float
    max_rel: float

    def as_dict(self) -> dict:
        """The fields as a plain dict (arrays stay NumPy)."""
        return dataclasses.asdict(self)

    def format(self, precision: int = 4, max_rows: int = 5) -> str:
        """The equation, the shape and difference, then the manual values (the first ``max_rows`` rows)."""
        _check_format(precision, max_rows)
        return "\n".join(_quantity_lines(self, precision, max_rows, indent=""))

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return (f"TracedQuantity({self.equation}; shape {self.shape}, {self.manual.dtype}; manual − autodiff "
                f"{self.max_abs:.1e}, relative {self.max_rel:.1e})")


@dataclasses.dataclass(frozen=True)
class LayerTrace:
    """The traced quantities of one layer, forward ones first.

    Attributes:
      index: the layer's position in ``model.layers`` and ``params`` (from 0);
        it is printed as ``layer index + 1``, the articles' numbering.
      kind: the layer's name: ``"dense"``, ``"dropout"``, ... or your own.
      description: e.g. ``"dense(2, relu)"``.
      quantities: the :class:`TracedQuantity` values, in the order computed.

    ``layer_trace["dW"]`` is the quantity named ``dW``.
    """

    index: int
    kind: str
    description: str
    quantities: tuple

    def __getitem__(self, name: str) -> TracedQuantity:
        for quantity in self.quantities:
            if quantity.name == name:
                return quantity
        raise KeyError(f"layer {self.index + 1} ({self.description}) has no quantity {name!r}; it has "
                       f"{', '.join(q.name for q in self.quantities)}")

    def names(self) -> tuple:
        """The names of the quantities, in order."""
        return tuple(quantity.name for quantity in self.quantities)

    def as_dict(self) -> dict:
        """``{"index", "kind", "description", "quantities": {name: quantity.as_dict()}}``."""
        return {"index": self.index, "kind": self.kind, "description": self.description,
                "quantities": {quantity.name: quantity.as_dict() for quantity in self.quantities}}

    @property
    def largest_difference(self) -> TracedQuantity:
        """The quantity with the largest ``max_rel`` (a NaN one first)."""
        return max(self.quantities, key=lambda quantity: np.inf if np.isnan(quantity.max_rel) else quantity.max_rel)

    def format(self, precision: int = 4, max_rows: int = 5) -> str:
        """Every quantity of the layer as :meth:`BackpropTrace.format` prints it, forward ones first."""
        _check_format(precision, max_rows)
        lines = [f"layer {self.index + 1} · {self.description}"]
        for quantity in self.quantities:
            lines += _quantity_lines(quantity, precision, max_rows, indent="  ")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        worst = self.largest_difference
        shapes = ", ".join(f"{quantity.name} {quantity.shape}" for quantity in self.quantities)
        return (f"LayerTrace(layer {self.index + 1} · {self.description}: {shapes}; largest manual vs autodiff "
                f"difference {worst.max_rel:.1e} ({worst.label}); print it for the numbers)")


@dataclasses.dataclass(frozen=True)
class BackpropTrace:
    """What :func:`trace_backprop` returns: one :class:`LayerTrace` per layer, and the loss.

    Attributes:
      layers: the :class:`LayerTrace` of every layer, first to last.
      loss: the loss by the hand-written fold (the value ``model.manual_grad`` returns).
      model_description: ``model.describe()``.
      dtype: the dtype the trace ran in.

    ``str(trace)`` (and ``print(trace)``) is the full table, :meth:`format`
    with its defaults; ``repr(trace)`` is a few lines: the model, the rows
    and dtype, each layer's output shape and the largest difference.
    """

    layers: tuple
    loss: float
    model_description: str
    dtype: str

    @property
    def max_difference(self) -> float:
        """The largest ``max_rel`` over every quantity of every layer (0 when all agree exactly)."""
        return max(quantity.max_rel for layer in self.layers for quantity in layer.quantities)

    @property
    def tolerance(self) -> float:
        """The default tolerance of :meth:`first_difference`: ``TOLERANCE_ULPS · eps`` of the trace's dtype.

        ``eps = finfo(dtype).eps`` is the spacing of floats at 1, so this is
        ``TOLERANCE_ULPS`` (256) units in the last place of each quantity's
        largest entry, since ``max_rel`` is relative to it: 3.1e-5 in
        float32, 5.7e-14 in float64, 0.25 in float16 and 2.0 in bfloat16.
        Correct networks differ by a few ulps (the two columns associate
        the same sums differently; 13 ulps at most over dense networks of up
        to 50 units and 32 rows); a wrong derivative differs by 1e-3 or more.
        """
        return TOLERANCE_ULPS * float(jnp.finfo(self.dtype).eps)

    def first_difference(self, tolerance: float | None = None):
        """Where the hand-written backprop first departs from autodiff, in the order it computes.

        The forward quantities layer by layer, the loss, then the backward
        ones from the output down: the first whose ``max_rel`` exceeds
        ``tolerance`` is where a wrong ``backward`` or ``g'`` is; everything
        after it inherits the difference.

        Args:
          tolerance: the largest ``max_rel`` that counts as agreement, a real
            number ≥ 0.  Default: :attr:`tolerance`, 256 ulps of the trace's
            dtype (``256 · finfo(dtype).eps``: 3.1e-5 in float32, 5.7e-14 in float64).

        Returns:
          ``(layer_trace, quantity)``, or ``None`` when the columns agree everywhere.
        """
        tolerance = self.tolerance if tolerance is None else checks.check_real(tolerance, "tolerance", low=0.0)
        for layer, quantity in self._in_computation_order():
            if not quantity.max_rel <= tolerance:  # NaN counts as a difference
                return layer, quantity
        return None

    def _in_computation_order(self):
        for phase, layers in (("forward", self.layers), ("loss", self.layers[-1:]),
                              ("backward", tuple(reversed(self.layers)))):
            for layer in layers:
                for quantity in layer.quantities:
                    if quantity.phase == phase:
                        yield layer, quantity

    @property
    def output_delta(self) -> TracedQuantity:
        """The output gradient ``δ / m``: the last layer's ``dA`` (or ``dY``)."""
        last = self.layers[-1]
        return last["dA"] if last.kind == "dense" else last["dY"]

    def as_dict(self) -> dict:
        """Plain data for code: ``{"loss", "max_difference", "model", "dtype", "layers": [...]}``."""
        return {"loss": self.loss, "max_difference": self.max_difference, "model": self.model_description,
                "dtype": self.dtype, "layers": [layer.as_dict() for layer in self.layers]}

    def format(self, precision: int = 4, max_rows: int = 5) -> str:
        """The trace as text, step by step as the second article prints it.

        First the forward pass layer by layer, then the loss, then the
        backward pass from the output down.  Each quantity gets its equation,
        its shape, its numbers (the manual column; the first ``max_rows``
        rows, ``precision`` digits after the point) and ``Δ``, its largest
        difference from the autodiff column (absolute, and relative to the
        quantity's scale).

        Args:
          precision: digits after the decimal point.
          max_rows: rows of each array to show (the rest are counted).
        """
        _check_format(precision, max_rows)
        rows = self._rows
        lines = [f"Backprop trace of {self.model_description}: {rows} row{'s' if rows > 1 else ''}, {self.dtype}",
                 "numbers: the hand-written backprop; manual − autodiff: its largest difference from jax.grad"]
        lines.append("\nForward")
        for layer in self.layers:
            lines.append(f"  layer {layer.index + 1} · {layer.description}")
            lines += _format_quantities(layer, ("forward",), precision, max_rows)
        lines.append("\nLoss")
        lines += _format_quantities(self.layers[-1], ("loss",), precision, max_rows)
        lines.append("\nBackward")
        for layer in reversed(self.layers):
            lines.append(f"  layer {layer.index + 1} · {layer.description}")
            lines += _format_quantities(layer, ("backward",), precision, max_rows,
                                        skip_incoming=layer is not self.layers[-1])
        lines.append(f"\nlargest relative difference, manual vs autodiff: {self.max_difference:.1e}")
        first = self.first_difference()
        if first is not None:
            layer, quantity = first
            lines.append(f"first above {self.tolerance:.1e} ({TOLERANCE_ULPS} ulps of {self.dtype}), in the order "
                         f"of computation: {quantity.label} in layer {layer.index + 1} · {layer.description} "
                         f"({quantity.equation})")
        return "\n".join(lines)

    @property
    def _rows(self) -> int:
        return self.layers[0]["dX"].shape[0]

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        worst = max(((layer, layer.largest_difference) for layer in self.layers),
                    key=lambda pair: np.inf if np.isnan(pair[1].max_rel) else pair[1].max_rel)
        first = self.first_difference()
        verdict = ("no quantity above the tolerance" if first is None else
                   f"first above it: {first[1].label} in layer {first[0].index + 1}")
        layers = ", ".join(f"{layer.description} → {layer.quantities[_output_position(layer)].shape}"
                           for layer in self.layers)
        return (f"BackpropTrace({self.model_description}; {self._rows} rows, {self.dtype}, loss {self.loss:.6g}\n"
                f"  layers: {layers}\n"
                f"  largest manual vs autodiff difference: {worst[1].max_rel:.1e} ({worst[1].label} in layer "
                f"{worst[0].index + 1}); tolerance {self.tolerance:.1e}: {verdict}\n"
                f"  print(trace) or trace.format() shows every number)")


TOLERANCE_ULPS = 256
""":meth:`BackpropTrace.first_difference`'s default tolerance, in units of ``finfo(dtype).eps``."""


def _check_format(precision, max_rows) -> None:
    checks.check_count(precision, "precision", minimum=0)
    checks.check_count(max_rows, "max_rows", minimum=1)


def _output_position(layer) -> int:
    """The position of a layer's output (``A`` of a dense layer, ``Y`` of the others) in its quantities."""
    return layer.names().index("A" if "A" in layer.names() else "Y")


def _quantity_lines(quantity, precision, max_rows, indent) -> list:
    lines = [f"{indent}{quantity.equation}",
             f"{indent}  shape {quantity.shape} · manual − autodiff: {quantity.max_abs:.1e} "
             f"(relative {quantity.max_rel:.1e})"]
    return lines + [f"{indent}  {line}" for line in _format_array(quantity.manual, precision, max_rows)]


def _format_quantities(layer, phases, precision, max_rows, skip_incoming=False) -> list:
    lines = []
    for quantity in layer.quantities:
        if quantity.phase not in phases:
            continue
        if skip_incoming and quantity.name in ("dA", "dY"):
            lines.append(f"    {quantity.label}: from layer {layer.index + 2}, above")
            continue
        lines += _quantity_lines(quantity, precision, max_rows, indent="    ")
    return lines


def _format_array(values: np.ndarray, precision: int, max_rows: int) -> list:
    values = np.asarray(values)
    hidden = 0
    if values.ndim >= 2 and values.shape[0] > max_rows:
        values, hidden = values[:max_rows], values.shape[0] - max_rows
    text = np.array2string(values, precision=precision, suppress_small=True, floatmode="maxprec")
    lines = text.splitlines()
    if hidden:
        lines.append(f"... {hidden} more row{'s' if hidden > 1 else ''}")
    return lines


# ----------------------------------------------------------------------------- the trace
def trace_backprop(model, params, x, y, weights=None, *, key=None) -> BackpropTrace:
    """Every layer's forward and backward quantities, by hand-written backprop and by ``jax.grad``.

    For a dense layer ``l`` (input ``X``, ``m`` rows, ``n`` units; ``λ = model.l2``):

        Z = X W + b   (m, n)      A = g(Z)         (m, n)
        dA = ∂L/∂A    (m, n)      dZ = dA ⊙ g'(Z)  (m, n)
        dW = Xᵀ dZ + λ W          db = Σ_rows dZ   dX = dZ Wᵀ   (m, n_in)

    for any other layer ``Y = f(X)``, ``dY = ∂L/∂Y``, each parameter leaf's
    gradient and ``dX``; at the output ``dA = δ / m`` (``δ ⊙ w / Σw`` with
    ``weights``) with ``δ_i = ∂ℓ_i/∂A_i``, and the loss
    ``L = (1/m) Σ ℓ_i + (λ/2) Σ ‖W‖²``.  The manual column is the
    hand-written fold (each layer's ``backward``, in reverse), the autodiff
    column ``jax.grad`` with respect to zero perturbations added to every
    ``Z``, ``A`` and ``Y`` of the training forward; see :mod:`funcnet.trace`.
    Run it in float64 (``jax.config.update("jax_enable_x64", True)`` and
    float64 params and ``x``) for the two columns to agree to ~1e-15; in
    float32 they agree to ~1e-6.

    Args:
      model: a :class:`funcnet.Network`.
      params: its params, one dict per layer.
      x: inputs ``(m, n_in)``; a handful of rows reads best.
      y: targets ``(m, k)`` (integer classes ``(m,)`` for cross-entropy).
      weights: optional per-sample weights ``(m,)``.
      key: one ``jax.random`` key for dropout; required when the model has
        dropout, and both columns see the same masks.

    Returns:
      a :class:`BackpropTrace`; ``print(trace)`` shows it step by step and
      ``trace.as_dict()`` gives plain data.

    Raises:
      ValueError: for params, ``x``, ``y`` or ``weights`` of the wrong shape or values, a model
        with dropout and no ``key``, or a ``key`` that is not one ``jax.random`` key (an int, a
        batch of keys from ``jax.random.split``), naming the argument.

    Example:
      >>> model, params, x, y = worked_example_network()
      >>> trace = trace_backprop(model, params, x, y)
      >>> trace.layers[1]["A"].manual.ravel().round(6).tolist()
      [8.92, 12.04, 4.0, 4.0, 4.864]
      >>> trace.layers[1]["dW"].equation
      'dW2 = A1ᵀ dZ2'
      >>> trace.max_difference < 1e-12
      True
    """
    checks.check_params(model, params)
    checks.check_inputs(model, x)
    checks.check_targets(model, x, y)
    checks.check_weights(x, weights)
    if key is not None:
        checks.check_key(key, "key", "trace_backprop", single=True)
    checks.check_dropout_key(model, key, "trace_backprop", "trace_backprop(model, params, x, y, key=jax.random.key(0))")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(checks.params_dtype(params, jnp.float32))
    manual, autodiff = _both_sides(model, params, x, y, weights, key)
    layers = [_layer_trace(model, index, manual, autodiff, key, weights) for index in range(len(model.layers))]
    return BackpropTrace(tuple(layers), float(manual["loss"]), model.describe(), str(manual["loss"].dtype))


@functools.partial(jax.jit, static_argnums=0)  # one compiled program per model and shapes, not op by op
def _both_sides(model, params, x, y, weights, key):
    manual = _manual_side(model, params, x, y, weights, key)
    return manual, _autodiff_side(model, params, x, y, weights, key, manual["inner"])


def _manual_side(model, params, x, y, weights, key) -> dict:
    """The hand-written backprop (:func:`funcnet.backprop.manual_steps`), with what its layers observe inside.

    ``inner[l]`` holds layer ``l``'s output ``"Y"`` and, for a dense layer,
    its ``"Z"`` and ``"dZ"``, as the layer's own ``forward`` and ``backward``
    computed them.
    """
    inner = [{} for _ in model.layers]

    def record(index, name, value):
        inner[index][name] = value
        return value

    steps = backprop.manual_steps(model, params, x, y, weights, key, observe=record)
    return {"loss": steps.value, "outputs": steps.outputs, "incoming": steps.incoming, "grads": steps.grads,
            "input_grads": steps.input_grads, "inner": inner, "prediction": model.output_fn.apply(steps.outputs[-1])}


def _autodiff_side(model, params, x, y, weights, key, inner) -> dict:
    """``jax.value_and_grad`` of the training objective, through :func:`funcnet.forward.forward` with zero
    perturbations added to every quantity its ``observe`` hook sees (each layer's ``Y``, a dense layer's ``Z``)."""

    def perturbed_loss(params, x, perturbations):
        values = [{} for _ in model.layers]

        def perturb(index, name, value):
            values[index][name] = value + perturbations[index][name]
            return values[index][name]

        z_out = forward.forward(model.layers, params, x, key, observe=perturb)[0]
        return forward.objective(model, params, z_out, y, weights), (values, model.output_fn.apply(z_out))

    zeros = [{name: jnp.zeros_like(inner[index][name]) for name in ("Z", "Y") if name in inner[index]}
             for index in range(len(model.layers))]
    (loss, (values, prediction)), (grads, input_grad, perturbation_grads) = jax.value_and_grad(
        perturbed_loss, argnums=(0, 1, 2), has_aux=True)(params, x, zeros)
    return {"loss": loss, "values": values, "prediction": prediction, "grads": grads, "input_grad": input_grad,
            "perturbation_grads": perturbation_grads}


# ----------------------------------------------------------------------------- the records
def _quantity(name, label, equation, phase, manual, autodiff) -> TracedQuantity:
    manual, autodiff = np.asarray(manual), np.asarray(autodiff)
    max_abs, max_rel = leaf_difference(manual, autodiff)
    return TracedQuantity(name, label, equation, phase, manual, autodiff, tuple(manual.shape), max_abs, max_rel)


def _output_name(model, index) -> str:
    """The printed name of layer ``index``'s output: ``A2`` for dense, ``Y3`` otherwise, ``X`` before layer 1."""
    if index < 0:
        return "X"
    return f"{_prefix(model.layers[index])}{index + 1}"


def _describe(layer) -> str:
    config = dict(layer.config)
    if layer.name == "dense":
        act = config["activation"]
        inside = f"{config['units']}" + ("" if act == "identity" else f", {act}")
        return f"dense({inside}{'' if config['bias'] else ', no bias'})"
    if layer.name == "activation":
        return f"activation({config['activation']})"
    if layer.name == "dropout":
        return f"dropout({config['rate']:g})"
    if layer.name == "layer_norm":
        return f"layer_norm(ε={config['epsilon']:g})"
    return f"{layer.name} (your own layer)"


_DELTAS = {  # δ_i = ∂ℓ_i/∂Z_i for the built-in losses with their usual outputs; {z}: the output's name
    ("mse", "identity"): "2 ({z}_i − y_i){per_k}",
    ("mae", "identity"): "sign({z}_i − y_i){per_k}",
    ("huber", "identity"): "clip({z}_i − y_i, −δ_H, δ_H){per_k}",
    ("logloss", "sigmoid"): "(σ({z}_i) − y_i){per_k}",
    ("cross_entropy", "softmax"): "softmax({z}_i) − y_i (one-hot)",
}


def _loss_equations(model, name, weights) -> tuple:
    """The loss's and the output delta's equations, for the last layer's output ``name``."""
    mean = "Σ_i w_i ℓ_i / Σ_i w_i" if weights is not None else "(1/m) Σ_i ℓ_i"
    output = model.output_fn.name
    loss = (f"L = {mean}{' + (λ/2) Σ ‖W‖²' if model.l2 else ''},   ℓ_i = {model.loss_fn.name}"
            f"({name}_i{'' if output == 'identity' else f' → {output}'}, y_i)")
    generic = "∂ℓ_i/∂{z}_i"
    delta = _DELTAS.get((model.loss_fn.name, output), generic) if model.loss_fn.builtin else generic
    delta = delta.format(z=name, per_k="" if model.n_out == 1 else " / k")
    scale = "δ ⊙ w / Σw" if weights is not None else "δ / m"
    return loss, f"d{name} = {scale},   δ_i = {delta}   (output gradient)"


def _layer_trace(model, index, manual, autodiff, key, weights) -> LayerTrace:
    layer, number, last = model.layers[index], index + 1, index == len(model.layers) - 1
    source, output = _output_name(model, index - 1), _output_name(model, index)
    perturbation_grads = autodiff["perturbation_grads"]
    # dX is ∂L/∂(the perturbation of the output of the layer below), or of x itself
    input_grad = perturbation_grads[index - 1]["Y"] if index else autodiff["input_grad"]
    l2 = model.l2 != 0
    config = dict(layer.config)
    dense = layer.name == "dense"
    quantities = []

    def add(name, label, equation, phase, manual_value, autodiff_value):
        quantities.append(_quantity(name, label, equation, phase, manual_value, autodiff_value))

    loss_equation, delta_equation = _loss_equations(model, output, weights)
    incoming_equation = delta_equation if last else f"d{output} = ∂L/∂{output}, from layer {number + 1}"
    if dense:
        bias = " + b{0}".format(number) if config["bias"] else ""
        add("Z", f"Z{number}", f"Z{number} = {source} W{number}{bias}", "forward",
            manual["inner"][index]["Z"], autodiff["values"][index]["Z"])
        add("A", output, f"{output} = {config['activation']}(Z{number})", "forward",
            manual["outputs"][index], autodiff["values"][index]["Y"])
    else:
        add("Y", output, f"{output} = {_forward_equation(layer, config, source, number, key)}", "forward",
            manual["outputs"][index], autodiff["values"][index]["Y"])
    if last:
        add("loss", "L", loss_equation, "loss", manual["loss"], autodiff["loss"])
        if model.output_fn.name != "identity":
            add("prediction", "ŷ", f"ŷ = {model.output_fn.name}({output})", "loss",
                manual["prediction"], autodiff["prediction"])
    add("dA" if dense else "dY", f"d{output}", incoming_equation, "backward",
        manual["incoming"][index], perturbation_grads[index]["Y"])
    if dense:
        add("dZ", f"dZ{number}", f"dZ{number} = d{output} ⊙ {config['activation']}'(Z{number})", "backward",
            manual["inner"][index]["dZ"], perturbation_grads[index]["Z"])
    for leaf in manual["grads"][index]:
        add(f"d{leaf}", f"d{leaf}{number}", _leaf_equation(layer, config, leaf, source, number, l2), "backward",
            manual["grads"][index][leaf], autodiff["grads"][index][leaf])
    add("dX", f"d{source}", _input_equation(layer, config, source, output, number, key), "backward",
        manual["input_grads"][index], input_grad)
    return LayerTrace(index, layer.name, _describe(layer), tuple(quantities))


def _forward_equation(layer, config, source, number, key) -> str:
    if layer.name == "activation":
        return f"{config['activation']}({source})"
    if layer.name == "dropout":
        if key is None or config["rate"] == 0.0:
            return f"{source}   (dropout off)"
        keep = 1.0 - config["rate"]
        return f"M{number} ⊙ {source} / {keep:g},   M{number} ~ Bernoulli({keep:g}) from the key"
    if layer.name == "layer_norm":
        return f"γ{number} ⊙ ({source} − μ) / √(σ² + ε) + β{number},   μ, σ² per row"
    return f"{layer.name}({source})"


def _leaf_equation(layer, config, leaf, source, number, l2) -> str:
    penalty = f" + λ {leaf}{number}" if l2 and leaf == "W" else ""
    output = _prefix(layer) + str(number)
    if layer.name == "dense":
        if leaf == "W":
            return f"dW{number} = {source}ᵀ dZ{number}{penalty}"
        return f"db{number} = Σ_rows dZ{number}"
    if layer.name == "layer_norm":
        if leaf == "scale":
            return f"dγ{number} = Σ_rows d{output} ⊙ X̂,   X̂ = ({source} − μ) / √(σ² + ε)"
        return f"dβ{number} = Σ_rows d{output}"
    return f"d{leaf}{number} = ∂L/∂{leaf}{number}   ({layer.name}'s backward){penalty}"


def _prefix(layer) -> str:
    """A layer's output letter as printed: ``A`` for dense, else ``Y``."""
    return "A" if layer.name == "dense" else "Y"


def _input_equation(layer, config, source, output, number, key) -> str:
    if layer.name == "dense":
        return f"d{source} = dZ{number} W{number}ᵀ"
    if layer.name == "activation":
        return f"d{source} = d{output} ⊙ {config['activation']}'({source})"
    if layer.name == "dropout":
        if key is None or config["rate"] == 0.0:
            return f"d{source} = d{output}"
        return f"d{source} = M{number} ⊙ d{output} / {1.0 - config['rate']:g}"
    if layer.name == "layer_norm":
        return (f"d{source} = (dX̂ − mean(dX̂) − X̂ ⊙ mean(dX̂ ⊙ X̂)) / √(σ² + ε),   "
                f"dX̂ = d{output} ⊙ γ{number}")
    return f"d{source} = ∂L/∂{source}   ({layer.name}'s backward)"


# ----------------------------------------------------------------------------- the article's network
def worked_example_network(dtype=jnp.float64):
    """The second article's worked example: ``(model, params, x, y)``.

    A 1-2-1 network, ReLU hidden layer, identity output, mean squared error,
    five samples (``examples/worked_example.py`` walks through it)::

        x = [10, 20, −20, −40, −3]ᵀ (5, 1)      y = [9, 13, 5, −2, −1]ᵀ (5, 1)
        W1 = [[.73, .2]] (1, 2)   b1 = [4, 2]   W2 = [[.4], [.1]] (2, 1)   b2 = [4]

    Its output is ``[8.92, 12.04, 4, 4, 4.864]``.  Float64 needs
    ``jax.config.update("jax_enable_x64", True)``.
    """
    from funcnet.model import mlp

    model = mlp([1, 2, 1], hidden="relu", output="identity", loss="mse")
    x = jnp.array([[10.0], [20.0], [-20.0], [-40.0], [-3.0]], dtype)
    y = jnp.array([[9.0], [13.0], [5.0], [-2.0], [-1.0]], dtype)
    params = [{"W": jnp.array([[0.73, 0.2]], dtype), "b": jnp.array([4.0, 2.0], dtype)},
              {"W": jnp.array([[0.4], [0.1]], dtype), "b": jnp.array([4.0], dtype)}]
    return model, params, x, y

"""The multi-layer perceptron: an immutable description plus pure functions of params.

``MLP`` holds only the architecture (sizes, activation and loss names), so it
is hashable and can be a static argument of ``jax.jit``.  Parameters live
outside it, as a list of ``{"W", "b"}`` dicts (a pytree):

    params[l]["W"]: (sizes[l], sizes[l+1])     params[l]["b"]: (sizes[l+1],)

Layer ``l`` computes ``A⁽ˡ⁺¹⁾ = g(A⁽ˡ⁾ W + b)`` with ``g = hidden`` for all
but the last layer and ``g = output`` for the last.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from funcnet import backprop, checks
from funcnet.activations import ACTIVATION_NAMES, Activation, get_activation
from funcnet.initializers import init_layers
from funcnet.losses import LOSS_NAMES, Loss, get_loss

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class MLP:
    """A fully connected network: architecture only, no parameters.

    Build one with :func:`mlp`.  All methods are pure functions of their
    arguments and work under ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

    Attributes:
      sizes: layer widths ``(n_inputs, hidden..., n_outputs)``.
      hidden_activation: name of the activation of every hidden layer.
      output_activation: name of the output layer's activation.
      loss_name: name of the loss (``mse``, ``logloss``, ``cross_entropy``).
      negative_slope: slope of ``leaky_relu`` for negative inputs.
    """

    sizes: tuple[int, ...]
    hidden_activation: str = "relu"
    output_activation: str = "identity"
    loss_name: str = "mse"
    negative_slope: float = 0.01

    @property
    def num_layers(self) -> int:
        """Number of dense layers, ``len(sizes) - 1``."""
        return len(self.sizes) - 1

    @property
    def hidden_fn(self) -> Activation:
        """The hidden :class:`~funcnet.activations.Activation`."""
        return get_activation(self.hidden_activation, self.negative_slope)

    @property
    def output_fn(self) -> Activation:
        """The output :class:`~funcnet.activations.Activation`."""
        return get_activation(self.output_activation, self.negative_slope)

    @property
    def loss_fn(self) -> Loss:
        """The :class:`~funcnet.losses.Loss`."""
        return get_loss(self.loss_name)

    def init(self, key: jax.Array, dtype=jnp.float32) -> list[dict]:
        """Fresh parameters: He or Glorot weights (see :mod:`funcnet.initializers`), zero biases.

        Args:
          key: a ``jax.random`` key; the same key gives bit-identical params.
          dtype: ``jnp.float32`` (default) or ``jnp.float64`` (needs
            ``jax.config.update("jax_enable_x64", True)``).

        Returns:
          ``[{"W": (n_in, n_out), "b": (n_out,)}, ...]``, one dict per layer.
        """
        return _init_params(self, key, jnp.dtype(dtype))

    def logits(self, params: list[dict], x: Array) -> Array:
        """The output layer's pre-activation ``Z⁽ᴸ⁾``, shape ``(batch, sizes[-1])``."""
        checks.check_params(self, params)
        checks.check_inputs(self, x)
        return backprop.forward_with_cache(self, params, x)[1][-1]

    def forward(self, params: list[dict], x: Array) -> Array:
        """The network's output ``A⁽ᴸ⁾ = output(Z⁽ᴸ⁾)``: ``(batch, sizes[0]) -> (batch, sizes[-1])``."""
        return self.output_fn.apply(self.logits(params, x))

    def loss(self, params: list[dict], x: Array, y: Array, weights: Array | None = None) -> Array:
        """Mean loss over the batch, a scalar: ``(1/m) Σ_i ℓ_i`` or ``Σ w_i ℓ_i / Σ w_i``.

        Args:
          params: the layer dicts.
          x: inputs ``(m, sizes[0])``.
          y: targets ``(m, sizes[-1])``; for ``cross_entropy`` also integer classes ``(m,)``.
          weights: optional per-sample weights ``(m,)`` (e.g. 0 for padding rows).
        """
        self._check_batch(params, x, y, weights)
        z_out = backprop.forward_with_cache(self, params, x)[1][-1]
        return backprop.weighted_mean(backprop.per_sample_losses(self, z_out, y), weights)

    def manual_grad(self, params: list[dict], x: Array, y: Array, weights: Array | None = None):
        """``(loss, grads)`` by the hand-written backprop of :mod:`funcnet.backprop`.

        Same arguments as :meth:`loss`; agrees with
        ``jax.value_and_grad(model.loss)(params, x, y, weights)``.
        """
        self._check_batch(params, x, y, weights)
        return backprop.manual_value_and_grad(self, params, x, y, weights)

    def _check_batch(self, params, x, y, weights) -> None:
        """The shape checks of :meth:`loss` and :meth:`manual_grad` (run while tracing)."""
        checks.check_params(self, params)
        checks.check_inputs(self, x)
        checks.check_targets(self, x, y)
        checks.check_weights(x, weights)


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init_params(model: MLP, key: jax.Array, dtype) -> list[dict]:
    """Compiled once per (model, dtype): eagerly, every op would compile on its own."""
    activations = [model.hidden_activation] * (model.num_layers - 1) + [model.output_activation]
    return init_layers(key, model.sizes, activations, dtype)


def _valid_pairs() -> str:
    return "; ".join(f"{name}: {', '.join(get_loss(name).valid_outputs)}" for name in LOSS_NAMES)


def mlp(
    sizes,
    hidden: str = "relu",
    output: str = "identity",
    loss: str = "mse",
    negative_slope: float = 0.01,
) -> MLP:
    """Describe a multi-layer perceptron.

    Args:
      sizes: layer widths, e.g. ``[5, 10, 10, 1]``: 5 inputs, two hidden layers
        of 10, one output.  At least two entries, all positive integers.
      hidden: activation of every hidden layer: identity, sigmoid, tanh, relu,
        leaky_relu.
      output: activation of the output layer: any of the above or softmax.
      loss: ``mse`` (with any output activation),
        ``logloss`` (binary cross-entropy, needs ``output="sigmoid"``) or
        ``cross_entropy`` (needs ``output="softmax"`` and at least 2 outputs).
      negative_slope: leaky_relu's slope for negative inputs.

    Returns:
      an immutable, hashable :class:`MLP`.

    Example:
      >>> import jax, funcnet as fn
      >>> model = fn.mlp([2, 3, 1], hidden="tanh", output="sigmoid", loss="logloss")
      >>> params = model.init(jax.random.key(0))
      >>> [p["W"].shape for p in params]
      [(2, 3), (3, 1)]
    """
    try:
        sizes = tuple(int(size) for size in sizes)
    except (TypeError, ValueError):
        raise ValueError(f"`sizes` must be a list of positive integers, got {sizes!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(
            f"`sizes` must have at least 2 positive widths (inputs, ..., outputs), got {list(sizes)}"
        )
    if not get_activation(hidden, negative_slope).hidden_ok:
        allowed = [name for name in ACTIVATION_NAMES if get_activation(name).hidden_ok]
        raise ValueError(
            f"`hidden={hidden!r}` can only be an output activation; "
            f"hidden layers take one of {', '.join(allowed)}"
        )
    get_activation(output, negative_slope)
    loss_fn = get_loss(loss)
    if output not in loss_fn.valid_outputs:
        raise ValueError(
            f"`loss={loss!r}` does not pair with `output={output!r}`; valid pairs are "
            f"{_valid_pairs()}"
        )
    if loss == "cross_entropy" and sizes[-1] < 2:
        raise ValueError(
            f"`loss='cross_entropy'` needs at least 2 outputs (one per class), got sizes[-1] = "
            f"{sizes[-1]}; for two classes with one output use output='sigmoid', loss='logloss'"
        )
    return MLP(sizes, hidden, output, loss, float(negative_slope))

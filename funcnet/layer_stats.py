"""Per-layer training statistics after each epoch: gradient norms, update ratios, activations, dead ReLUs.

``fit(..., track="layers")`` calls :func:`layer_stats` after every epoch and
appends its result to ``history["layer_stats"]``; :func:`plot_layer_stats`
draws them.  For layer ``l`` with params ``θ_l`` (all its leaves flattened
together), output ``Y⁽ˡ⁾`` ``(m, n_l)`` at inference, and the epoch's params
before (``θ⁻``) and after (``θ⁺``) its updates:

    grad_norm        ‖∂L/∂θ_l‖₂          L = the training objective (model.loss) at θ⁺ on the sample
    update_ratio     ‖θ⁺_l − θ⁻_l‖₂ / ‖θ⁻_l‖₂
    activation_mean  mean over rows and units of Y⁽ˡ⁾
    activation_std   standard deviation (population, ÷ m·n_l) over rows and units of Y⁽ˡ⁾
    dead_fraction    (1/n_l) · #{units j : Y⁽ˡ⁾_ij ≤ 0 for every row i}    ReLU layers only

``Y⁽ˡ⁾`` is ``layer.infer(θ⁺_l, Y⁽ˡ⁻¹⁾)`` with ``Y⁽⁰⁾ = X``: the inference
forward (dropout off), the same values as ``model.forward`` layer by layer;
the last layer's output is the pre-activation ``Z`` (the model's output
activation is not applied).  A ReLU layer is a :func:`~funcnet.dense` or
activation layer whose activation is ``relu``: its outputs are ``≥ 0``, so a
unit never positive on the sample outputs exactly 0 for every row and passes
no gradient back (it is "dead").  Other activations (leaky_relu, elu, gelu…)
have no units that are exactly zero, and their ``dead_fraction`` is ``None``.

The sample is the training rows, or at most :data:`STATS_MAX_ROWS` of them
evenly spaced (:func:`stats_rows`); the gradient uses the sample weights
when ``fit`` has them and, for a model with dropout, the key
:func:`stats_key` ``(key, epoch)``, which no training step uses: tracking
never changes what is trained.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from funcnet import checks
from funcnet.engine import value_and_grad_fn
from funcnet.plotting import headless_figure, image_format, save_figure

LAYER_STAT_NAMES = ("grad_norm", "update_ratio", "activation_mean", "activation_std", "dead_fraction")
TRACK_OPTIONS = (None, "layers")
STATS_MAX_ROWS = 4096
STATS_STREAM = 2**31 - 2  # fold_in constant of the statistics' dropout keys; training steps use 2**31 - 1


def stats_rows(num_rows: int, max_rows: int = STATS_MAX_ROWS) -> np.ndarray:
    """The rows the statistics are computed on: every row, or ``max_rows`` of them evenly spaced.

    Row ``i`` of the sample is row ``⌊i · n / s⌋`` of the data, ``s = min(n, max_rows)``:
    deterministic (the same rows every epoch) and spread over the whole set.

    ``num_rows`` (``>= 0``) and ``max_rows`` (``>= 1``) take any integral type
    (``np.int64`` too), not ``bool`` or ``2.0``.

    Returns:
      integer indices ``(s,)``, increasing.
    """
    num_rows = checks.check_count(num_rows, "num_rows", minimum=0)
    max_rows = checks.check_count(max_rows, "max_rows")
    count = min(num_rows, max_rows)
    return (np.arange(count, dtype=np.int64) * num_rows) // max(count, 1)


def stats_key(key: jax.Array, epoch: int) -> jax.Array:
    """The dropout key of epoch ``epoch``'s statistics: ``fold_in(fold_in(key, S), epoch)``.

    ``S`` (:data:`STATS_STREAM`) differs from the training steps' stream
    (:func:`funcnet.engine.step_key`), so the statistics draw their own masks.
    ``epoch`` is any integral type ``>= 0``.
    """
    epoch = checks.check_count(epoch, "epoch", minimum=0)
    return jax.random.fold_in(jax.random.fold_in(key, STATS_STREAM), epoch)


def _is_relu(layer) -> bool:
    return layer.name in ("dense", "activation") and dict(layer.config).get("activation") == "relu"


def _norm(tree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in leaves))


@functools.lru_cache(maxsize=64)
def _compiled_stats(model, grad: str):
    """One jitted call per ``(model, grad)``: every statistic of every layer, as scalar arrays."""
    value_and_grad = value_and_grad_fn(model, grad)

    def compute(params_before, params_after, x, y, weights, key):
        _, grads = value_and_grad(params_after, x, y, weights, key=key)
        stats, outputs = [], x
        for layer, before, after, layer_grads in zip(model.layers, params_before, params_after, grads):
            outputs = layer.infer(after, outputs)
            has_params = bool(jax.tree.leaves(after))
            update = jax.tree.map(jnp.subtract, after, before)
            stats.append({
                "grad_norm": _norm(layer_grads) if has_params else None,
                "update_ratio": _norm(update) / _norm(before) if has_params else None,
                "activation_mean": jnp.mean(outputs),
                "activation_std": jnp.std(outputs),
                "dead_fraction": (jnp.mean(jnp.logical_not(jnp.any(outputs > 0, axis=0)).astype(outputs.dtype))
                                  if _is_relu(layer) else None),
            })
        return stats

    return jax.jit(compute)


def layer_stats(model, params_before, params_after, x, y, weights=None, *, key=None, grad: str = "autodiff",
                epoch: int | None = None) -> list[dict]:
    """Every layer's statistics for one epoch, as plain Python floats (see the module docstring).

    Args:
      model: a :class:`~funcnet.model.Network`.
      params_before: the params at the start of the epoch (for ``update_ratio``).
      params_after: the params at its end (everything else is computed with these).
      x: the sample's inputs ``(m, n_in)``; ``y`` its targets (as ``model.loss`` takes them).
      weights: optional per-row weights ``(m,)`` of the gradient's loss.
      key: the dropout key of the gradient (required for a model with dropout).
      grad: ``"autodiff"`` or ``"manual"``: which gradient ``grad_norm`` measures
        (they agree up to rounding).
      epoch: recorded as ``"epoch"`` in every entry when given (0-based, as
        ``history["best_epoch"]``): any integral type ``>= 0``.

    Returns:
      one dict per layer: ``{"epoch": e, "layer": l, "name": layer.name,
      "grad_norm": float, "update_ratio": float, "activation_mean": float,
      "activation_std": float, "dead_fraction": float}``; ``grad_norm`` and
      ``update_ratio`` are ``None`` for a layer without params,
      ``dead_fraction`` for a layer that is not ReLU, and any statistic that
      is not finite (``update_ratio`` when ``‖θ⁻_l‖ = 0``) is ``None``, so the
      result is JSON.

    Raises:
      ValueError: naming the argument: ``key`` missing for a model with
        dropout, ``epoch`` not an integer ``>= 0``, ``x``/``y``/``weights`` not
        real numbers (an ``ArgumentTypeError``, also a ``TypeError``) or of
        the wrong shape.
    """
    if epoch is not None:
        epoch = checks.check_count(epoch, "epoch", minimum=0)
    x, y, weights = (checks.as_real_array(name, value) for name, value in (("x", x), ("y", y), ("weights", weights)))
    checks.check_dropout_key(model, key, "layer_stats", "layer_stats(..., key=jax.random.key(0))",
                             "fit passes stats_key(key, epoch)")
    stats = jax.device_get(_compiled_stats(model, grad)(params_before, params_after, x, y, weights, key))
    entries = []
    for index, (layer, values) in enumerate(zip(model.layers, stats)):
        entry = {} if epoch is None else {"epoch": epoch}
        entry.update(layer=index, name=layer.name)
        for name in LAYER_STAT_NAMES:
            value = None if values[name] is None else float(values[name])
            entry[name] = value if value is not None and math.isfinite(value) else None
        entries.append(entry)
    return entries


def check_track(track) -> bool:
    """Whether ``fit``'s ``track`` turns statistics on; raises for a value other than ``None`` or ``"layers"``."""
    if track is None or (isinstance(track, str) and track == "layers"):
        return track is not None
    raise ValueError(f"`track` must be one of {', '.join(map(repr, TRACK_OPTIONS))}, got {track!r}")


_TITLES = {"grad_norm": "gradient norm ‖∂L/∂θ‖", "update_ratio": "update ratio ‖Δθ‖ / ‖θ‖",
           "activation_mean": "activation mean", "activation_std": "activation std",
           "dead_fraction": "dead ReLU fraction"}


def plot_layer_stats(history: dict, path, title: str = "layer statistics") -> None:
    """Write a picture of ``history["layer_stats"]``: one panel per statistic, one line per layer over the epochs.

    The x axis is the epoch (1-based); the gradient-norm and update-ratio
    panels are logarithmic when their values span more than a decade.  A
    statistic no layer has (``dead_fraction`` without ReLU layers) gets an
    empty panel saying so.  Drawn on matplotlib's Agg canvas: no display needed.

    Args:
      history: a ``fit`` history trained with ``track="layers"`` (or a loaded checkpoint's).
      path: the image file to write, in the format its suffix names (``.png``,
        ``.jpg``, ``.pdf``, ``.svg``...: :func:`funcnet.plotting.image_format`).
      title: the figure's title.

    Raises:
      ValueError: for a history without ``"layer_stats"`` entries, or a
        ``path`` whose suffix names no supported image format.
      ImportError: without matplotlib (``pip install "funcnet[plot]"``).
    """
    image_format(path)  # before drawing anything
    epochs = list(history.get("layer_stats") or [])
    if not epochs:
        raise ValueError("`history` has no 'layer_stats' to plot; train with fit(..., track=\"layers\") "
                         "or `funcnet train --plot-stats PNG`")
    series = {}  # (layer, name) -> {statistic: ([epoch + 1], [value])}
    for position, entries in enumerate(epochs):
        for entry in entries:
            lines = series.setdefault((entry["layer"], entry["name"]), {})
            for statistic in LAYER_STAT_NAMES:
                if entry.get(statistic) is not None:
                    points = lines.setdefault(statistic, ([], []))
                    points[0].append(entry.get("epoch", position) + 1)
                    points[1].append(entry[statistic])
    columns, legend = 3, {}
    figure = headless_figure(width=4.2 * columns, height=3.4 * 2)
    for index, statistic in enumerate(LAYER_STAT_NAMES):
        axes = figure.add_subplot(2, columns, index + 1)
        values = []
        for colour, ((layer, name), lines) in enumerate(sorted(series.items())):  # one colour per layer
            if statistic in lines:
                epoch_numbers, points = lines[statistic]
                legend[layer, name] = axes.plot(epoch_numbers, points, marker="o", markersize=3,
                                                color=f"C{colour % 10}")[0]
                values.extend(points)
        if not values:
            axes.text(0.5, 0.5, "no layer has this statistic", ha="center", va="center",
                      transform=axes.transAxes, color="gray")
        positive = [value for value in values if value > 0]
        if statistic in ("grad_norm", "update_ratio") and positive and max(positive) / min(positive) > 10:
            axes.set_yscale("log")
        if statistic == "dead_fraction":
            axes.set_ylim(-0.05, 1.05)
        axes.set_title(_TITLES[statistic], fontsize=10)
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(True, alpha=0.3)
    legend_axes = figure.add_subplot(2, columns, 6)
    legend_axes.axis("off")
    ordered = sorted(legend)
    legend_axes.legend([legend[item] for item in ordered], [f"{layer}: {name}" for layer, name in ordered],
                       title="layer", loc="center", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)

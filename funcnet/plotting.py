"""Learning curves as image files, drawn without a display (matplotlib's Agg canvas, no pyplot).

Every picture funcnet writes (these, :func:`~funcnet.layer_stats.plot_layer_stats`,
:func:`~funcnet.decision_boundary.plot_decision_boundary`, the CLI's ``--plot*``
flags) is in the format its file name's suffix names, by one rule,
:func:`image_format`: ``.png``, ``.jpg``/``.jpeg``, ``.pdf``, ``.svg``, ``.eps``, ``.ps``,
``.tif``/``.tiff``, ``.webp`` or ``.gif``; any other suffix is refused before anything is drawn.

matplotlib is an optional extra: ``pip install "funcnet[plot]"``.
"""

from __future__ import annotations

import os
import warnings

# suffix (lower case) -> matplotlib's format name; the raster ones beyond PNG go through Pillow, which
# matplotlib requires
IMAGE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".pdf": "pdf", ".svg": "svg", ".eps": "eps",
                 ".ps": "ps", ".tif": "tiff", ".tiff": "tiff", ".webp": "webp", ".gif": "gif"}


def image_format(path, name: str = "path") -> str:
    """The image format ``path``'s suffix names (case-insensitive), e.g. ``"jpeg"`` for ``"curve.JPG"``.

    One rule for every picture funcnet writes, from Python and from the CLI;
    see :data:`IMAGE_FORMATS`.  A file object is named by its ``name`` (an
    open file); one without a name (``io.BytesIO``) gets PNG.

    Raises:
      ValueError: naming ``name``, for a suffix that names no supported format (or none at all).
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        path = getattr(path, "name", None)
        if not isinstance(path, (str, bytes, os.PathLike)):
            return "png"
    text = os.fsdecode(path)
    suffix = os.path.splitext(text)[1].lower()
    if suffix not in IMAGE_FORMATS:
        found = f"the suffix {suffix!r}" if suffix else "no suffix"
        raise ValueError(f"`{name}` must end in one of {', '.join(IMAGE_FORMATS)} (the suffix picks the image "
                         f"format), found {found} in {text!r}")
    return IMAGE_FORMATS[suffix]


def save_figure(figure, path, name: str = "path") -> None:
    """``figure.savefig(path)`` in the format :func:`image_format` reads from ``path``'s suffix."""
    figure.savefig(path, format=image_format(path, name))


def headless_figure(width: float = 6.4, height: float = 4.0):
    """A matplotlib ``Figure`` of ``width × height`` inches at 100 dpi on the Agg canvas: no display, no pyplot.

    Raises:
      ImportError: naming the ``funcnet[plot]`` extra when matplotlib is missing.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib, an optional extra: pip install \"funcnet[plot]\""
        ) from None
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def plot_history(history: dict, path, title: str = "learning curve") -> None:
    """Write a picture of ``history["train_loss"]`` and ``history["val_loss"]`` per epoch to ``path``.

    The y axis is logarithmic when the losses span more than a decade (as in
    the regression example, 2500 down to 100).  The format is the one
    ``path``'s suffix names (``.png``, ``.jpg``, ``.pdf``, ``.svg``...: :func:`image_format`).

    Raises:
      ValueError: for a history without training losses, or a ``path`` whose
        suffix names no supported image format.
    """
    image_format(path)  # before drawing anything
    train = list(history.get("train_loss", []))
    if not train:
        raise ValueError("`history` has no 'train_loss' values to plot")
    figure = headless_figure()
    axes = figure.add_subplot()
    epochs = range(1, len(train) + 1)
    axes.plot(epochs, train, marker="o", markersize=3, label="train")
    validation = list(history.get("val_loss", []))
    if validation:
        axes.plot(range(1, len(validation) + 1), validation, marker="o", markersize=3, label="validation")
    values = [v for v in train + validation if v > 0]
    if values and max(values) / min(values) > 10:
        axes.set_yscale("log")
    if "best_epoch" in history:
        axes.axvline(history["best_epoch"] + 1, color="gray", linestyle=":", label="best epoch")
    axes.set_xlabel("epoch")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    save_figure(figure, path)


def plot_activations(rows, path) -> None:
    """Deprecated: the picture of ``examples/activations.py``, which now draws it itself.

    Writes one panel per activation (five to a row): ``g``, ``g'`` by hand and
    ``jax.grad``'s ``g'``, from ``rows`` ``[(name, z, values, manual_derivative,
    autodiff_derivative), ...]`` (arrays of one shape), to ``path`` in the
    format its suffix names (:func:`image_format`).  Works for one minor
    release, with a ``DeprecationWarning``; copy the example's
    ``plot_activations`` to keep it.
    """
    warnings.warn("funcnet.plotting.plot_activations is deprecated: it draws one example's picture, and "
                  "examples/activations.py now has it (copy its plot_activations to keep using it)",
                  DeprecationWarning, stacklevel=2)
    image_format(path)
    columns = min(len(rows), 5)
    grid_rows = -(-len(rows) // columns)
    figure = headless_figure(width=3.2 * columns, height=3.0 * grid_rows)
    for index, (name, z, values, manual, autodiff) in enumerate(rows):
        axes = figure.add_subplot(grid_rows, columns, index + 1)
        axes.plot(z, values, label=f"{name}(z)")
        axes.plot(z, manual, label="derivative by hand", linewidth=3, alpha=0.5)
        axes.plot(z, autodiff, "--", label="jax.grad", color="black", linewidth=1)
        axes.set_title(name)
        axes.set_xlabel("z")
        axes.grid(True, alpha=0.3)
        if index == 0:
            axes.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, path)

"""Learning curves as PNG files, drawn without a display (matplotlib's Agg canvas, no pyplot).

matplotlib is an optional extra: ``pip install "funcnet[plot]"``.
"""

from __future__ import annotations


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
    """Write a PNG of ``history["train_loss"]`` and ``history["val_loss"]`` per epoch to ``path``.

    The y axis is logarithmic when the losses span more than a decade (as in
    the regression example, 2500 down to 100).

    Raises:
      ValueError: for a history without training losses.
    """
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
    figure.savefig(path, format="png")


def plot_activations(rows, path) -> None:
    """Write a PNG with one panel per activation (five to a row): ``g``, the hand-written ``g'``, ``jax.grad``'s ``g'``.

    Args:
      rows: ``[(name, z, values, manual_derivative, autodiff_derivative), ...]``, arrays of one shape.
      path: the PNG file.
    """
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
    figure.savefig(path, format="png")

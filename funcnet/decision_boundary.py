"""Decision boundaries of 2-feature classifiers: the grid of predicted probabilities, and its picture.

:func:`decision_grid` is pure NumPy/JAX (no matplotlib): it lays a
``resolution × resolution`` grid over the data and predicts every point in
one :func:`funcnet.predict` call.  :func:`plot_decision_boundary` draws that
grid as filled contours with the data on top, headless (matplotlib's Agg
canvas, no pyplot).  matplotlib is an optional extra: ``pip install "funcnet[plot]"``.
"""

from __future__ import annotations

import math

import numpy as np

from funcnet import checks
from funcnet.inference import predict
from funcnet.plotting import headless_figure, image_format, save_figure

# Binary: dark blue for class 0 and dark red for class 1, the ends of the background's RdBu_r map, so a
# point shows up against the paler background and a misclassified one against the other colour.
_BINARY_POINT_COLOURS = ("#053061", "#67001f")
_CLASS_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                  "#bcbd22", "#17becf")


def _check_classifier(model, function_name: str) -> None:
    """The model must map 2 features to class probabilities (sigmoid with 1 output, or softmax)."""
    if model.n_in != 2:
        raise ValueError(
            f"{function_name} needs a model with exactly 2 input features (one axis each), but this "
            f"model's first layer expects {model.n_in} (sizes[0] = {model.n_in})"
        )
    output = model.output_activation
    if output == "sigmoid" and model.n_out == 1 or output == "softmax":
        return
    if output == "sigmoid":
        raise ValueError(
            f"{function_name} needs a binary classifier with 1 sigmoid output or a softmax classifier, but "
            f"this model has {model.n_out} sigmoid outputs (multi-label); plot one output at a time"
        )
    raise ValueError(
        f"{function_name} needs a classifier (output='sigmoid' with 1 output, or 'softmax'), but this "
        f"model's output is {output!r} with loss {model.loss_name!r}: a regression model has no classes"
    )


def _check_points(x) -> np.ndarray:
    """``x`` as a finite float array of shape ``(n, 2)`` with ``n >= 1`` (real numbers: not complex, bool, text)."""
    points = np.asarray(checks.as_real_array("x", x), dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ValueError(f"`x` must have shape (n, 2) with n >= 1: one row per point, one column per "
                         f"feature; got shape {np.shape(x)}")
    if not np.all(np.isfinite(points)):
        raise ValueError("`x` contains NaN or inf; the grid needs finite data limits")
    return points


def _class_labels(model, x: np.ndarray, y) -> np.ndarray:
    """True classes ``(n,)`` from ``y`` of shape ``(n,)``, ``(n, 1)`` or one-hot ``(n, k)``."""
    labels = np.asarray(checks.as_real_array("y", y))
    if labels.ndim == 0 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"`x` has {x.shape[0]} rows but `y` has shape {labels.shape}; "
                         "`x` and `y` need the same number of samples")
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = np.argmax(labels, axis=1)
    elif labels.ndim > 2 or labels.ndim == 2 and labels.shape[1] != 1:
        raise ValueError(f"`y` must have shape (n,), (n, 1) or one-hot (n, k); got {labels.shape}")
    labels = labels.reshape(-1)
    classes = 2 if model.n_out == 1 else model.n_out
    bad = (labels < 0) | (labels >= classes) | (labels != np.round(labels))
    if bad.any():
        raise ValueError(f"`y` must hold class labels 0..{classes - 1} for this classifier, but contains "
                         f"{np.unique(labels[bad])[:5].tolist()}")
    return labels.astype(np.int64)


def _check_padding(padding) -> np.ndarray:
    """``padding`` as the margin of each feature, ``(2,)``: one finite number >= 0, or a pair of them."""
    try:  # real numbers only: a complex padding would lose its imaginary part, a string would be parsed
        checks.check_real_dtype("padding", padding)
        margins = np.broadcast_to(np.asarray(padding, dtype=np.float64), (2,))
    except (TypeError, ValueError):
        margins = None
    if isinstance(padding, bool) or margins is None or not np.all((margins >= 0) & (margins < math.inf)):
        raise ValueError(f"`padding` must be a finite number >= 0 (data units) or a pair of them, "
                         f"one per feature; got {padding!r}")
    return margins


def decision_grid(model, params, x, resolution: int = 200, padding: float = 0.5, *, transform=None):
    """The classifier's class probabilities on a regular grid covering ``x`` plus ``padding``.

    The grid spans ``[min xⱼ − paddingⱼ, max xⱼ + paddingⱼ]`` along each feature
    ``j ∈ {1, 2}`` with ``resolution`` evenly spaced values, and every point
    ``(xx[i, j], yy[i, j])`` is predicted in a single :func:`funcnet.predict`
    call on the ``(resolution², 2)`` stacked points::

        probabilities[i, j] = model.forward(params, transform([[xx[i, j], yy[i, j]]]))[0]

    For a sigmoid output that is ``P(class 1)`` (shape ``(..., 1)``); for a
    softmax output, ``P(class c)`` for each of the ``k`` classes.  The
    predicted class is ``probabilities[..., 0] > 0.5`` or
    ``argmax(probabilities, -1)``.

    Args:
      model: a classifier with 2 inputs: ``output="sigmoid"`` with 1 output, or ``"softmax"``.
      params: its parameters.
      x: the data, ``(n, 2)``; only its per-column minimum and maximum are used.
      resolution: grid points along each axis (at least 2; any integral type, not ``bool`` or ``2.0``).
      padding: margin added on every side, in the units of ``x``: one number
        for both features, or a pair ``(padding₁, padding₂)`` for features on
        different scales.
      transform: optional function applied to the ``(resolution², 2)`` grid
        points before the model sees them, e.g. ``standardizer.apply`` when
        the model was trained on standardised features and ``x`` is in the
        original units.

    Returns:
      ``(xx, yy, probabilities)``: NumPy arrays ``(resolution, resolution)``,
      ``(resolution, resolution)`` (``np.meshgrid`` layout: ``xx`` varies along
      columns, ``yy`` along rows, ready for ``contourf``) and
      ``(resolution, resolution, k)`` with ``k = model.n_out``.

    Raises:
      ValueError: for a model without exactly 2 inputs, a regression or
        multi-label model, ``x`` not ``(n, 2)``, or a bad ``resolution`` or ``padding``.

    Example::

        >>> import jax, numpy as np, funcnet as fn
        >>> from funcnet.decision_boundary import decision_grid
        >>> model = fn.mlp([2, 1], output="sigmoid", loss="logloss")
        >>> params = [{"W": jax.numpy.array([[1.0], [-1.0]]), "b": jax.numpy.zeros(1)}]   # sigmoid(x1 - x2)
        >>> xx, yy, probabilities = decision_grid(model, params, np.array([[0., 0.], [1., 1.]]), 3, 0.0)
        >>> probabilities.shape, bool(np.all((probabilities[..., 0] > 0.5) == (xx > yy)))
        ((3, 3, 1), True)
    """
    _check_classifier(model, "decision_grid")
    points = _check_points(x)
    resolution = checks.check_count(resolution, "resolution", minimum=2)  # grid points per axis
    margins = _check_padding(padding)
    low = points.min(axis=0) - margins
    high = points.max(axis=0) + margins
    xx, yy = np.meshgrid(np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution))
    grid_points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    if transform is not None:
        grid_points = transform(grid_points)
    probabilities = np.asarray(predict(model, params, grid_points))
    return xx, yy, probabilities.reshape(resolution, resolution, model.n_out)


def plot_decision_boundary(model, params, x, y, path=None, *, resolution: int = 200, padding: float = 0.5,
                           title: str | None = None, ax=None, transform=None, feature_names=None):
    """Draw what a 2-feature classifier predicts over the plane, with the data on top, as an image file.

    The background is :func:`decision_grid`: for a binary (sigmoid) model the
    filled contours of ``P(class 1)`` from blue (0) through white (0.5) to red
    (1), with the boundary ``P = 0.5`` as a black line; for a ``k``-way
    softmax the predicted class ``argmax_c P(class c)`` in one colour per
    class.  The points ``x`` are drawn on top in the colour of their true
    label ``y``, so misclassified points stand out against the background.

    Args:
      model: a classifier with 2 inputs: ``output="sigmoid"`` with 1 output, or ``"softmax"``.
      params: its parameters.
      x: the points, ``(n, 2)``; the grid covers them plus ``padding``.
      y: their true classes: ``(n,)`` or ``(n, 1)`` integers, or one-hot ``(n, k)``.
      path: the image to write, in the format its suffix names (``.png``,
        ``.jpg``, ``.pdf``, ``.svg``...: :func:`funcnet.plotting.image_format`).
        Required without ``ax``; with ``ax`` it is optional (the figure
        holding ``ax`` is saved there if given).
      resolution: grid points per axis (``resolution²`` predictions).
      padding: margin around the data, in the units of ``x`` (one number, or one per feature).
      title: the axes' title (default ``"decision boundary"``).
      ax: a matplotlib ``Axes`` to draw into (e.g. one panel of a grid);
        default: a new headless figure with a colour bar.
      transform: applied to grid points before prediction (see :func:`decision_grid`).
      feature_names: two axis labels (default ``("x1", "x2")``).

    Returns:
      The matplotlib ``Axes`` drawn into.

    Raises:
      ValueError: for a model without exactly 2 inputs, a regression (or
        multi-label) model, ``x`` and ``y`` with different numbers of rows,
        labels outside the model's classes, neither ``path`` nor ``ax``, or a
        ``path`` whose suffix names no supported image format.
      ImportError: without matplotlib, saying how to install it.
    """
    _check_classifier(model, "plot_decision_boundary")
    points = _check_points(x)
    labels = _class_labels(model, points, y)
    if path is None and ax is None:
        raise ValueError("plot_decision_boundary needs `path` (the PNG to write) or `ax` (axes to draw into)")
    if path is not None:
        image_format(path)  # before the grid's predictions
    names = ("x1", "x2") if feature_names is None else tuple(feature_names)
    if len(names) != 2:
        raise ValueError(f"`feature_names` must name the 2 features, got {feature_names!r}")
    xx, yy, probabilities = decision_grid(model, params, points, resolution, padding, transform=transform)

    own_figure = ax is None
    if own_figure:
        figure = headless_figure(6.4, 4.8)
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    from matplotlib.colors import BoundaryNorm, ListedColormap

    marker_size = max(8.0, min(80.0, 4000.0 / len(points)))
    if model.n_out == 1:
        filled = ax.contourf(xx, yy, probabilities[..., 0], levels=np.linspace(0.0, 1.0, 21), cmap="RdBu_r",
                             vmin=0.0, vmax=1.0, alpha=0.6)
        ax.contour(xx, yy, probabilities[..., 0], levels=[0.5], colors="black", linewidths=1.5)
        point_colours = ListedColormap([_BINARY_POINT_COLOURS[0], _BINARY_POINT_COLOURS[1]])
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap=point_colours, vmin=0, vmax=1, s=marker_size,
                   edgecolors="white", linewidths=0.8)
        colour_label, ticks = "P(class 1)", [0.0, 0.25, 0.5, 0.75, 1.0]
    else:
        classes = model.n_out
        colours = ListedColormap([_CLASS_COLOURS[c % len(_CLASS_COLOURS)] for c in range(classes)])
        norm = BoundaryNorm(np.arange(classes + 1) - 0.5, classes)
        predicted = np.argmax(probabilities, axis=-1)
        filled = ax.contourf(xx, yy, predicted, levels=np.arange(classes + 1) - 0.5, cmap=colours, norm=norm,
                             alpha=0.45)
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap=colours, norm=norm, s=marker_size,
                   edgecolors="black", linewidths=0.6)
        colour_label, ticks = "predicted class", list(range(classes))
    ax.set_xlim(xx[0, 0], xx[0, -1])
    ax.set_ylim(yy[0, 0], yy[-1, 0])
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title("decision boundary" if title is None else title)
    if own_figure:
        figure.colorbar(filled, ax=ax, label=colour_label, ticks=ticks)
        figure.tight_layout()
    if path is not None:
        save_figure(figure, path)
    return ax

"""Every picture funcnet draws, in one namespace: ``fn.plots``.

Each function is defined beside the numbers it draws and re-exported here:

* :func:`plot_history`: training and validation loss per epoch (``fit``'s ``history``);
* :func:`plot_layer_stats`: per-layer gradient norms, update ratios and activations per epoch
  (``history["layer_stats"]`` from ``fit(..., track="layers")``);
* :func:`plot_decision_boundary`: a 2-feature classifier's predicted probabilities over the plane,
  with the data on top; :func:`decision_grid` computes that grid without drawing it.

Every picture is drawn headless (matplotlib's Agg canvas, no pyplot) in the format its file name's
suffix names (:func:`funcnet.plotting.image_format`).  matplotlib is an optional extra:
``pip install "funcnet[plot]"``.
"""

from funcnet.decision_boundary import decision_grid, plot_decision_boundary
from funcnet.layer_stats import plot_layer_stats
from funcnet.plotting import plot_history

__all__ = ["plot_history", "plot_layer_stats", "plot_decision_boundary", "decision_grid"]

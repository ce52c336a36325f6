"""funcnet: small functional neural networks on JAX, with backprop by hand beside ``jax.grad``.

    import jax, optax, funcnet as fn
    model = fn.mlp([5, 10, 10, 1], hidden="relu", output="identity", loss="mse")
    params = model.init(jax.random.key(0))
    value, grads = model.manual_grad(params, x, y)                 # by hand
    value, grads = jax.value_and_grad(model.loss)(params, x, y)    # by jax.grad
    train_step = fn.make_train_step(model, optax.adam(1e-3), grad="manual")

    model = fn.sequential(5, [fn.dense(32, "relu"), fn.layer_norm(), fn.dropout(0.1), fn.dense(1)],
                          loss="huber")
"""

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what readers and type checkers see; at run time each name is imported on first use
    from funcnet.activations import ACTIVATION_NAMES, Activation, activation, get_activation
    from funcnet.checkpoint import Checkpoint, CheckpointError, load, save
    from funcnet.checks import check_data
    from funcnet.decision_boundary import decision_grid, plot_decision_boundary
    from funcnet.data import (
        Standardizer,
        fit_standardizer,
        make_regression_data,
        train_test_split,
        xor_data,
    )
    from funcnet.derivative_checks import DerivativeReport, check_activation, check_layer, check_loss
    from funcnet.early_stopping import EarlyStopping
    from funcnet.engine import (
        GRAD_MODES,
        make_train_epoch,
        make_train_step,
        shuffled_batch_rows,
        shuffled_batches,
        step_key,
        value_and_grad_fn,
    )
    from funcnet.fitting import NonFiniteLossError, fit, fit_state
    from funcnet.gradcheck import (
        LeafDifference,
        compare_grad_trees,
        compare_grads,
        finite_difference_grad,
        format_differences,
        manual_and_autodiff,
    )
    from funcnet.inference import evaluate, predict, predict_labels
    from funcnet.layer_stats import LAYER_STAT_NAMES, layer_stats, plot_layer_stats, stats_key, stats_rows
    from funcnet.layers import Layer, activation_layer, dense, dropout, layer, layer_norm
    from funcnet.losses import LOSS_NAMES, Loss, get_loss, huber, loss
    from funcnet.many import fit_many, stacked_init, with_hyperparam
    from funcnet.model import MLP, Network, mlp, sequential
    from funcnet.plotting import plot_history
    from funcnet.sharding import replicate, shard_rows
    from funcnet.trace import BackpropTrace, LayerTrace, TracedQuantity, trace_backprop, worked_example_network


__version__ = "0.2.0"

# Every public name is imported from its submodule on first use (PEP 562), so that ``import funcnet``
# costs no JAX: ``funcnet --help`` and a Ctrl-C at start-up stay fast (funcnet.cli imports JAX only
# when a command needs it).  ``fn.mlp``, ``from funcnet import mlp`` and ``from funcnet import *`` work
# as with eager imports; the first of them imports JAX.
_SUBMODULE_EXPORTS = {  # submodule -> the public names it defines
    "activations": ("ACTIVATION_NAMES", "Activation", "activation", "get_activation"),
    "checkpoint": ("Checkpoint", "CheckpointError", "load", "save"),
    "checks": ("check_data",),
    "decision_boundary": ("decision_grid", "plot_decision_boundary"),
    "data": ("Standardizer", "fit_standardizer", "make_regression_data", "train_test_split", "xor_data"),
    "derivative_checks": ("DerivativeReport", "check_activation", "check_layer", "check_loss"),
    "early_stopping": ("EarlyStopping",),
    "engine": ("GRAD_MODES", "make_train_epoch", "make_train_step", "shuffled_batch_rows", "shuffled_batches",
               "step_key", "value_and_grad_fn"),
    "fitting": ("NonFiniteLossError", "fit", "fit_state"),
    "gradcheck": ("LeafDifference", "compare_grad_trees", "compare_grads", "finite_difference_grad",
                  "format_differences", "manual_and_autodiff"),
    "inference": ("evaluate", "predict", "predict_labels"),
    "layer_stats": ("LAYER_STAT_NAMES", "layer_stats", "plot_layer_stats", "stats_key", "stats_rows"),
    "layers": ("Layer", "activation_layer", "dense", "dropout", "layer", "layer_norm"),
    "losses": ("LOSS_NAMES", "Loss", "get_loss", "huber", "loss"),
    "many": ("fit_many", "stacked_init", "with_hyperparam"),
    "model": ("MLP", "Network", "mlp", "sequential"),
    "plotting": ("plot_history",),
    "sharding": ("replicate", "shard_rows"),
    "trace": ("BackpropTrace", "LayerTrace", "TracedQuantity", "trace_backprop", "worked_example_network"),
}
_EXPORTS = {name: module for module, names in _SUBMODULE_EXPORTS.items() for name in names}

__all__ = [
    # building models
    "mlp", "sequential", "Network", "MLP", "Layer", "dense", "dropout", "layer_norm", "activation_layer",
    "layer", "Activation", "activation", "get_activation", "ACTIVATION_NAMES", "Loss", "loss", "huber",
    "get_loss", "LOSS_NAMES",
    # training
    "GRAD_MODES", "make_train_step", "make_train_epoch", "value_and_grad_fn", "step_key", "fit", "fit_state",
    "NonFiniteLossError", "EarlyStopping", "shuffled_batches", "shuffled_batch_rows", "check_data",
    "fit_many", "stacked_init", "with_hyperparam", "shard_rows", "replicate",
    "layer_stats", "LAYER_STAT_NAMES", "stats_rows", "stats_key",
    # inference and data
    "predict", "predict_labels", "evaluate", "make_regression_data", "xor_data", "train_test_split",
    "Standardizer", "fit_standardizer",
    # looking inside
    "trace_backprop", "BackpropTrace", "LayerTrace", "TracedQuantity", "worked_example_network",
    # checking gradients
    "compare_grads", "compare_grad_trees", "manual_and_autodiff", "finite_difference_grad",
    "format_differences", "LeafDifference", "check_activation", "check_loss", "check_layer",
    "DerivativeReport",
    # saving and plotting
    "save", "load", "Checkpoint", "CheckpointError", "plot_history", "plot_layer_stats",
    "plot_decision_boundary", "decision_grid",
]


def __getattr__(name: str):
    """``funcnet.NAME``: the public name imported from its submodule (then cached), or a submodule itself."""
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    if name in _SUBMODULE_EXPORTS or name in _OTHER_SUBMODULES:  # as after the eager imports of funcnet <= 0.2
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))


# Submodules that ``import funcnet`` used to load as a side effect of the public ones.
_OTHER_SUBMODULES = ("backprop", "divergence", "initializers", "shuffle")


class _Package(types.ModuleType):
    """This package's module type: importing the submodule ``funcnet.layer_stats`` must not hide the
    function ``funcnet.layer_stats`` (the import system sets the package attribute of a submodule's name)."""

    def __setattr__(self, name, value):
        if (name in _EXPORTS and isinstance(value, types.ModuleType)
                and value.__name__ == f"{__name__}.{_EXPORTS[name]}"):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

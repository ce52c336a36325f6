"""funcnet: small functional neural networks on JAX, with backprop by hand beside ``jax.grad``.

    import jax, optax, funcnet as fn
    model = fn.mlp([5, 10, 10, 1], hidden="relu", output="identity", loss="mse")
    params = model.init(jax.random.key(0))
    value, grads = model.manual_grad(params, x, y)                 # by hand
    value, grads = jax.value_and_grad(model.loss)(params, x, y)    # by jax.grad
    train_step = fn.make_train_step(model, optax.adam(1e-3), grad="manual")

    model = fn.sequential(5, [fn.dense(32, "relu"), fn.layer_norm(), fn.dropout(0.1), fn.dense(1)],
                          loss="huber")

The public API is ``__all__`` plus the namespaces below; everything else is implementation.

**The rule for the top level.**  A name is in ``__all__`` when a user needs it to build a model,
train it, use it, feed it data or save it, i.e. to go from data to a trained, saved model with
nothing else imported.  Tools that serve one family of tasks (checking gradients, tracing
backprop, plotting, spreading rows over devices, the activation and loss tables) live in a
namespace named for that family; helpers that only the library itself needs live in their
modules and are not promised.

**Namespaces** (attributes, each imported on first use):

* ``fn.gradcheck``: a model's gradients three ways: ``compare_grads``, ``finite_difference_grad``,
  ``compare_grad_trees``, ``manual_and_autodiff``, ``format_differences``, ``LeafDifference``;
* ``fn.derivative_checks``: one hand-written piece's derivative against ``jax`` and finite
  differences: ``check_activation``, ``check_loss``, ``check_layer``, ``DerivativeReport``;
* ``fn.trace``: backprop step by step, by hand beside ``jax.grad``: ``trace_backprop``,
  ``BackpropTrace``, ``LayerTrace``, ``TracedQuantity``, ``worked_example_network``;
* ``fn.plots``: ``plot_history``, ``plot_layer_stats``, ``plot_decision_boundary``, ``decision_grid``;
* ``fn.activations``, ``fn.losses``, ``fn.layers``: the built-in pieces and their tables
  (``ACTIVATION_NAMES``, ``get_activation``, ``LOSS_NAMES``, ``get_loss``, ``huber``, ``activation_layer``);
* ``fn.sharding``: data parallelism in your own loop: ``shard_rows``, ``replicate``.

A name removed from the top level keeps working as ``fn.NAME`` for one minor release, with a
``DeprecationWarning`` that names its replacement.
"""

import importlib
import sys
import types
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what readers and type checkers see of __all__; at run time each name is imported on first use
    from funcnet.activations import Activation, activation
    from funcnet.checkpoint import Checkpoint, CheckpointError, load, save
    from funcnet.checks import check_data
    from funcnet.data import Standardizer, fit_standardizer, make_regression_data, train_test_split, xor_data
    from funcnet.early_stopping import EarlyStopping
    from funcnet.engine import make_train_step, shuffled_batches
    from funcnet.fitting import NonFiniteLossError, fit
    from funcnet.inference import evaluate, predict, predict_labels
    from funcnet.layer_stats import layer_stats
    from funcnet.layers import Layer, dense, dropout, layer, layer_norm
    from funcnet.losses import Loss, loss
    from funcnet.many import fit_many, stacked_init, with_hyperparam
    from funcnet.model import Network, mlp, sequential


__version__ = "0.2.0"

# Every public name is imported from its submodule on first use (PEP 562), so that ``import funcnet``
# costs no JAX: ``funcnet --help`` and a Ctrl-C at start-up stay fast (funcnet.cli imports JAX only
# when a command needs it).  ``fn.mlp``, ``from funcnet import mlp`` and ``from funcnet import *`` work
# as with eager imports; the first of them imports JAX.
_SUBMODULE_EXPORTS = {  # submodule -> the public names it defines
    "activations": ("Activation", "activation"),
    "checkpoint": ("Checkpoint", "CheckpointError", "load", "save"),
    "checks": ("check_data",),
    "data": ("Standardizer", "fit_standardizer", "make_regression_data", "train_test_split", "xor_data"),
    "early_stopping": ("EarlyStopping",),
    "engine": ("make_train_step", "shuffled_batches"),
    "fitting": ("NonFiniteLossError", "fit"),
    "inference": ("evaluate", "predict", "predict_labels"),
    "layer_stats": ("layer_stats",),
    "layers": ("Layer", "dense", "dropout", "layer", "layer_norm"),
    "losses": ("Loss", "loss"),
    "many": ("fit_many", "stacked_init", "with_hyperparam"),
    "model": ("Network", "mlp", "sequential"),
}
_EXPORTS = {name: module for module, names in _SUBMODULE_EXPORTS.items() for name in names}

__all__ = [
    # building models
    "mlp", "sequential", "Network", "Layer", "dense", "dropout", "layer_norm", "layer",
    "Activation", "activation", "Loss", "loss",
    # training
    "make_train_step", "shuffled_batches", "fit", "NonFiniteLossError", "EarlyStopping",
    "fit_many", "stacked_init", "with_hyperparam", "layer_stats",
    # inference
    "predict", "predict_labels", "evaluate",
    # data
    "make_regression_data", "xor_data", "train_test_split", "Standardizer", "fit_standardizer", "check_data",
    # checkpoints
    "save", "load", "Checkpoint", "CheckpointError",
]

# The diagnostic families and the tables of built-in pieces: ``fn.<namespace>.<name>``.
_NAMESPACES = ("gradcheck", "derivative_checks", "trace", "plots", "activations", "losses", "layers", "sharding")

# Other submodules that resolve as attributes, as after the eager imports of funcnet <= 0.2.
_OTHER_SUBMODULES = ("backprop", "checkpoint", "checks", "data", "decision_boundary", "divergence",
                     "early_stopping", "engine", "fitting", "inference", "initializers", "many", "model",
                     "plotting", "shuffle")

# Names removed from the top level: old name -> (submodule, name there, the replacement the warning names).
# Each works for one minor release; internals without a public replacement say where they live.
_DEPRECATED = {
    **{name: ("gradcheck", name, f"fn.gradcheck.{name}")
       for name in ("compare_grads", "compare_grad_trees", "manual_and_autodiff", "finite_difference_grad",
                    "format_differences", "LeafDifference")},
    **{name: ("derivative_checks", name, f"fn.derivative_checks.{name}")
       for name in ("check_activation", "check_loss", "check_layer", "DerivativeReport")},
    **{name: ("trace", name, f"fn.trace.{name}")
       for name in ("trace_backprop", "BackpropTrace", "LayerTrace", "TracedQuantity", "worked_example_network")},
    **{name: ("plots", name, f"fn.plots.{name}")
       for name in ("plot_history", "plot_layer_stats", "plot_decision_boundary", "decision_grid")},
    **{name: ("activations", name, f"fn.activations.{name}") for name in ("ACTIVATION_NAMES", "get_activation")},
    **{name: ("losses", name, f"fn.losses.{name}") for name in ("LOSS_NAMES", "get_loss", "huber")},
    "activation_layer": ("layers", "activation_layer", "fn.layers.activation_layer (or the activation's name "
                                                        "in a sequential list)"),
    **{name: ("sharding", name, f"fn.sharding.{name}") for name in ("shard_rows", "replicate")},
    "MLP": ("model", "Network", "fn.Network"),
    **{name: ("engine", name, f"funcnet.engine.{name} (internal)")
       for name in ("GRAD_MODES", "make_train_epoch", "value_and_grad_fn", "step_key", "shuffled_batch_rows")},
    "fit_state": ("fitting", "fit_state", "fn.fit, whose result carries .opt_state"),
    **{name: ("layer_stats", name, f"funcnet.layer_stats.{name} (internal; write `from funcnet.layer_stats import "
                                f"{name}`: the attribute fn.layer_stats is the function of that name)")
       for name in ("LAYER_STAT_NAMES", "stats_rows", "stats_key")},
}


def __getattr__(name: str):
    """``funcnet.NAME``: a public name (imported from its submodule, then cached), a namespace or
    submodule, or a deprecated name (with a ``DeprecationWarning`` naming its replacement, every time)."""
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    if name in _NAMESPACES or name in _OTHER_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _DEPRECATED:
        module, attribute, replacement = _DEPRECATED[name]
        warnings.warn(f"fn.{name} is deprecated: use {replacement}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    """The public API: ``__all__``, the namespaces and the module's own dunder attributes."""
    dunders = {name for name in globals() if name.startswith("__") and name.endswith("__")}
    return sorted(dunders | set(__all__) | set(_NAMESPACES))


class _Package(types.ModuleType):
    """This package's module type: importing the submodule ``funcnet.layer_stats`` must not hide the
    function ``funcnet.layer_stats`` (the import system sets the package attribute of a submodule's name)."""

    def __setattr__(self, name, value):
        if (name in _EXPORTS and isinstance(value, types.ModuleType)
                and value.__name__ == f"{__name__}.{_EXPORTS[name]}"):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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

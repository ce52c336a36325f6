"""funcnet: small functional neural networks on JAX, with backprop by hand beside ``jax.grad``.

    import jax, optax, funcnet as fn
    model = fn.mlp([5, 10, 10, 1], hidden="relu", output="identity", loss="mse")
    params = model.init(jax.random.key(0))
    value, grads = model.manual_grad(params, x, y)          # by hand
    value, grads = jax.value_and_grad(model.loss)(params, x, y)   # by jax.grad
    train_step = fn.make_train_step(model, optax.adam(1e-3), grad="manual")
"""

from funcnet.activations import ACTIVATION_NAMES, Activation, get_activation
from funcnet.backprop import (
    backward_pass,
    dense_backward,
    dense_forward,
    forward_with_cache,
    manual_value_and_grad,
)
from funcnet.checkpoint import Checkpoint, CheckpointError, load, save
from funcnet.checks import check_data
from funcnet.data import (
    Standardizer,
    fit_standardizer,
    make_regression_data,
    train_test_split,
    xor_data,
)
from funcnet.gradcheck import (
    LeafDifference,
    compare_grad_trees,
    compare_grads,
    finite_difference_grad,
    format_differences,
    manual_and_autodiff,
)
from funcnet.early_stopping import EarlyStopping
from funcnet.losses import LOSS_NAMES, Loss, get_loss
from funcnet.many import fit_many, stacked_init, with_hyperparam
from funcnet.model import MLP, mlp
from funcnet.plotting import plot_history
from funcnet.sharding import replicate, shard_rows
from funcnet.train import (
    GRAD_MODES,
    NonFiniteLossError,
    evaluate,
    fit,
    fit_state,
    make_train_epoch,
    make_train_step,
    predict,
    predict_labels,
    shuffled_batch_rows,
    shuffled_batches,
    value_and_grad_fn,
)

__version__ = "0.1.0"

__all__ = [
    "ACTIVATION_NAMES", "Activation", "Checkpoint", "CheckpointError", "EarlyStopping", "GRAD_MODES", "LOSS_NAMES", "LeafDifference", "Loss",
    "MLP", "NonFiniteLossError", "Standardizer", "backward_pass", "check_data",
    "compare_grad_trees", "compare_grads", "dense_backward", "dense_forward", "evaluate",
    "finite_difference_grad", "fit", "fit_many", "fit_standardizer", "fit_state", "format_differences",
    "forward_with_cache", "get_activation", "get_loss", "make_regression_data",
    "make_train_epoch", "make_train_step", "manual_and_autodiff", "manual_value_and_grad", "mlp", "predict",
    "plot_history", "predict_labels", "replicate", "shard_rows", "load", "save", "shuffled_batch_rows", "shuffled_batches", "stacked_init", "train_test_split", "value_and_grad_fn", "with_hyperparam", "xor_data",
]

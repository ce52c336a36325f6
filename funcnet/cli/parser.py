"""The ``funcnet`` command's options: sub-commands, their arguments, and per-dataset defaults."""

from __future__ import annotations

import argparse

OPTIMIZER_NAMES = ("sgd", "momentum", "adam", "rmsprop", "adamw")
TASKS = ("auto", "regression", "binary", "multiclass")

# What each built-in dataset trains with unless told otherwise.
DATASET_DEFAULTS = {
    "regression": dict(layers="10,10", hidden="relu", optimizer="adam", lr=1e-3, epochs=20, batch_size=64,
                       validation_split=0.2, test_split=0.2),
    "xor": dict(layers="3", hidden="tanh", optimizer="sgd", lr=0.1, epochs=1500, batch_size=4,
                validation_split=0.0, test_split=0.0),
    "csv": dict(layers="16,16", hidden="relu", optimizer="adam", lr=1e-3, epochs=20, batch_size=64,
                validation_split=0.2, test_split=0.2),
}


MAX_SEED = 2**32 - 1  # with JAX's default 32-bit mode jax.random.key(2**32) is key(0): larger seeds collide


def seed(text: str) -> int:
    """``--seed``: a whole number in ``[0, 2^32 - 1]``, every one a different ``jax.random.key``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number in [0, {MAX_SEED}], got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a whole number in [0, {MAX_SEED}] (JAX's 32-bit seeds: a larger "
                                         f"or negative one would repeat another seed's run), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of all sub-commands (``funcnet --help``, ``funcnet train --help``, ...)."""
    parser = argparse.ArgumentParser(
        prog="funcnet", description="Train and use small neural networks (funcnet on JAX).",
        epilog="examples:\n  funcnet train --data regression --save model.npz\n"
               "  funcnet predict --checkpoint model.npz --csv new.csv\n  funcnet gradcheck --data xor\n"
               "  funcnet explain --example article",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (_add_train, _add_predict, _add_gradcheck, _add_explain):
        add_command(commands)
    return parser


def _add_train(commands) -> None:
    """``funcnet train``'s flags: the data, the network, the optimizer, and what to write."""
    train = commands.add_parser(
        "train", help="train a network and report its losses",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train an MLP on a built-in dataset or a CSV file. Defaults depend on the data "
                    "(regression: 5-10-10-1 relu, adam 1e-3, 20 epochs, batch 64; xor: 2-3-1 tanh, "
                    "sgd 0.1, 1500 epochs, full batch; csv: 16,16 relu, adam 1e-3).",
        epilog="examples:\n"
               "  funcnet train --data regression --epochs 20 --save model.npz --plot curve.png\n"
               "  funcnet train --data xor --grad manual --plot-boundary xor.png\n"
               "  funcnet train --data regression --hidden tanh,gelu --dropout 0.1 --plot-stats stats.png\n"
               "  funcnet train --csv data.csv --target y --layers 32,32 --optimizer adamw --lr 3e-3\n"
               "  funcnet train --resume model.npz --epochs 40      # continue to epoch 40\n"
               "  funcnet train --data regression --jsonl > log.jsonl")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--data", choices=["regression", "xor"],
                        help="built-in dataset: the second article's regression (100,000 rows) or XOR")
    source.add_argument("--csv", metavar="FILE",
                        help="your own CSV: header row, numeric feature columns (UTF-8); with --resume: "
                             "where the run's data file is now (checked against the checkpoint)")
    train.add_argument("--resume", metavar="CHECKPOINT",
                       help="continue a run saved with --save (same data, optimizer state and key); only "
                            "--epochs, --lr and --grad may change")
    train.add_argument("--target", metavar="COLUMN", help="the CSV column to predict (required with --csv)")
    train.add_argument("--task", choices=TASKS,
                       help="output and loss: regression (identity, mse), binary (sigmoid, logloss), "
                            "multiclass (softmax, cross_entropy); auto (default): text labels or two "
                            "distinct values -> classes, non-whole numbers -> regression, 3+ whole "
                            "numbers -> asks you to choose")
    train.add_argument("--layers", help="hidden layer widths, comma-separated (e.g. 10,10)")
    train.add_argument("--hidden", metavar="ACTIVATION[,ACTIVATION...]",
                       help="hidden activation, or one per hidden layer comma-separated (e.g. tanh,gelu): "
                            "identity, sigmoid, tanh, relu, leaky_relu, elu, gelu, gelu_tanh, softplus, silu")
    train.add_argument("--dropout", type=float, metavar="RATE",
                       help="dropout after every hidden layer (inverted dropout; off at prediction)")
    train.add_argument("--l2", type=float, metavar="LAMBDA", help="L2 penalty (LAMBDA/2)·ΣW² on the weights")
    train.add_argument("--optimizer", choices=OPTIMIZER_NAMES, help="optax optimizer (momentum = sgd with 0.9)")
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--epochs", type=int, help="number of epochs (with --resume: the total to reach)")
    train.add_argument("--batch-size", type=int, help="rows per step")
    train.add_argument("--validation-split", type=float, help="fraction of training rows held out")
    train.add_argument("--test-split", type=float, help="fraction of all rows held out as the test set")
    train.add_argument("--grad", choices=["manual", "autodiff"],
                       help="hand-written backprop or jax.grad (default manual)")
    train.add_argument("--seed", type=seed, help="seed for init, splits and shuffling (default 0)")
    train.add_argument("--patience", type=int, help="early stopping: epochs without a lower val loss")
    train.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) at the end")
    train.add_argument("--checkpoint-every", type=int, metavar="N",
                       help="also write the checkpoint every N epochs (needs --save)")
    train.add_argument("--plot", metavar="PNG", help="write the learning curve (.png; or .jpg, .pdf, .svg...: "
                                                      "the suffix picks the format; needs funcnet[plot])")
    train.add_argument("--track-stats", action="store_true",
                       help="compute per-layer statistics after every epoch (gradient norm, update ratio, "
                            "activation mean/std, dead ReLU fraction on up to 4096 training rows); they go "
                            "into the checkpoint's history and every --jsonl epoch record as \"layer_stats\"")
    train.add_argument("--plot-stats", metavar="PNG",
                       help="write the per-layer statistics per epoch, one panel each (implies --track-stats; "
                            "needs funcnet[plot])")
    train.add_argument("--plot-boundary", metavar="PNG",
                       help="write the decision boundary over the data (classifiers on 2 features, e.g. "
                            "--data xor; needs funcnet[plot])")
    output = train.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="print only the final summary")
    output.add_argument("--jsonl", action="store_true", help="one JSON object per line, for scripts")
    train.add_argument("--no-cache", action="store_true",
                       help="do not use JAX's persistent compilation cache (~/.cache/funcnet)")


def _add_predict(commands) -> None:
    """``funcnet predict``'s flags: a checkpoint, a CSV of features, and where to write."""
    predict = commands.add_parser(
        "predict", help="predict with a saved checkpoint",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read a CSV with the training features (by column name), apply the saved "
                    "standardisation, and write predictions as CSV.",
        epilog="example:\n  funcnet predict --checkpoint model.npz --csv new.csv --out predictions.csv")
    predict.add_argument("--checkpoint", required=True, metavar="PATH")
    predict.add_argument("--csv", required=True, metavar="FILE")
    predict.add_argument("--out", metavar="FILE", help="output CSV (default: standard output)")


def _add_gradcheck(commands) -> None:
    """``funcnet gradcheck``'s flags: a checkpoint or a built-in model, and the rows to check on."""
    gradcheck = commands.add_parser(
        "gradcheck", help="manual backprop vs jax.grad vs finite differences",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="For each layer and leaf: max relative difference between the hand-written "
                    "gradient, jax.grad, and central finite differences, in float64.",
        epilog="examples:\n  funcnet gradcheck --data regression\n  funcnet gradcheck --checkpoint model.npz")
    target = gradcheck.add_mutually_exclusive_group()
    target.add_argument("--checkpoint", metavar="PATH", help="check a saved model at its saved params")
    target.add_argument("--data", choices=["regression", "xor"], default="regression",
                        help="check the built-in model for this dataset at fresh params")
    gradcheck.add_argument("--batch", type=int, default=32, help="random rows to check on")
    gradcheck.add_argument("--seed", type=seed, default=0)


def _add_explain(commands) -> None:
    """``funcnet explain``'s flags: an example or a checkpoint with its rows, and how to print them."""
    explain = commands.add_parser(
        "explain", help="print backprop step by step: every Z, A, dZ, dW, db, by hand and by jax.grad",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Trace one batch through a network, in float64: for every layer the forward and\n"
                    "backward quantities with their equations, shapes and numbers, each computed by the\n"
                    "hand-written backprop and by jax.grad, and the difference between the two.",
        epilog="examples:\n  funcnet explain --example article      # the second article's worked example\n"
               "  funcnet explain --example xor --seed 1\n"
               "  funcnet explain --checkpoint model.npz --csv data.csv --rows 3")
    explained = explain.add_mutually_exclusive_group()
    explained.add_argument("--example", choices=["article", "xor"],
                           help="a built-in network: the second article's 1-2-1 ReLU example (the default) "
                                "or a fresh 2-3-1 tanh/sigmoid network on the four XOR rows")
    explained.add_argument("--checkpoint", metavar="PATH", help="a saved model, traced on rows of --csv")
    explain.add_argument("--csv", metavar="FILE", help="with --checkpoint: the rows (the model's feature "
                                                       "columns by name, and the target column)")
    explain.add_argument("--target", metavar="COLUMN",
                         help="with --checkpoint: the target column (default: the one the model was trained on)")
    explain.add_argument("--rows", type=int, metavar="N", help="trace the first N rows (default: 5, or all "
                                                              "of an example's)")
    explain.add_argument("--precision", type=int, default=4, metavar="DIGITS",
                         help="digits after the decimal point (default 4)")
    explain.add_argument("--seed", type=seed, default=0, metavar="N", help="init of --example xor, and dropout masks")

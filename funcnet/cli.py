"""The ``funcnet`` command: train, predict and gradcheck from a shell.

    funcnet train --data regression --save model.npz --plot curve.png
    funcnet train --csv houses.csv --target price --layers 32,32 --epochs 50
    funcnet predict --checkpoint model.npz --csv new.csv --out predictions.csv
    funcnet gradcheck --checkpoint model.npz

Exit codes: 0 done, 2 bad arguments or data, 3 training diverged (NaN/inf),
130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130
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


class UserError(Exception):
    """A problem with the command line or the data, reported without a traceback."""


# ----------------------------------------------------------------------------- argument parsing
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of all sub-commands (``funcnet --help``, ``funcnet train --help``, ...)."""
    parser = argparse.ArgumentParser(
        prog="funcnet", description="Train and use small neural networks (funcnet on JAX).",
        epilog="examples:\n  funcnet train --data regression --save model.npz\n"
               "  funcnet predict --checkpoint model.npz --csv new.csv\n  funcnet gradcheck --data xor",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a network and report its losses",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train an MLP on a built-in dataset or a CSV file. Defaults depend on the data "
                    "(regression: 5-10-10-1 relu, adam 1e-3, 20 epochs, batch 64; xor: 2-3-1 tanh, "
                    "sgd 0.1, 1500 epochs, full batch; csv: 16,16 relu, adam 1e-3).",
        epilog="examples:\n"
               "  funcnet train --data regression --epochs 20 --save model.npz --plot curve.png\n"
               "  funcnet train --data xor --grad manual\n"
               "  funcnet train --csv data.csv --target y --layers 32,32 --optimizer adamw --lr 3e-3\n"
               "  funcnet train --resume model.npz --epochs 40      # continue to epoch 40\n"
               "  funcnet train --data regression --jsonl > log.jsonl")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--data", choices=["regression", "xor"],
                        help="built-in dataset: the second article's regression (100,000 rows) or XOR")
    source.add_argument("--csv", metavar="FILE", help="your own CSV: header row, numeric columns")
    source.add_argument("--resume", metavar="CHECKPOINT",
                        help="continue a run saved with --save (same data, optimizer state and key)")
    train.add_argument("--target", metavar="COLUMN", help="the CSV column to predict (required with --csv)")
    train.add_argument("--task", choices=TASKS, default="auto",
                       help="output and loss: regression (identity, mse), binary (sigmoid, logloss), "
                            "multiclass (softmax, cross_entropy); auto decides from the target column")
    train.add_argument("--layers", help="hidden layer widths, comma-separated (e.g. 10,10)")
    train.add_argument("--hidden", choices=["relu", "leaky_relu", "tanh", "sigmoid", "identity"],
                       help="hidden activation")
    train.add_argument("--optimizer", choices=OPTIMIZER_NAMES, help="optax optimizer (momentum = sgd with 0.9)")
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--epochs", type=int, help="number of epochs (with --resume: the total to reach)")
    train.add_argument("--batch-size", type=int, help="rows per step")
    train.add_argument("--validation-split", type=float, help="fraction of training rows held out")
    train.add_argument("--test-split", type=float, help="fraction of all rows held out as the test set")
    train.add_argument("--grad", choices=["manual", "autodiff"], default="manual",
                       help="hand-written backprop or jax.grad (default manual)")
    train.add_argument("--seed", type=int, default=0, help="seed for init, splits and shuffling")
    train.add_argument("--patience", type=int, help="early stopping: epochs without a lower val loss")
    train.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) at the end")
    train.add_argument("--checkpoint-every", type=int, metavar="N",
                       help="also write the checkpoint every N epochs (needs --save)")
    train.add_argument("--plot", metavar="PNG", help="write the learning curve (needs funcnet[plot])")
    output = train.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="print only the final summary")
    output.add_argument("--jsonl", action="store_true", help="one JSON object per line, for scripts")
    train.add_argument("--no-cache", action="store_true",
                       help="do not use JAX's persistent compilation cache (~/.cache/funcnet)")

    predict = commands.add_parser(
        "predict", help="predict with a saved checkpoint",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read a CSV with the training features (by column name), apply the saved "
                    "standardisation, and write predictions as CSV.",
        epilog="example:\n  funcnet predict --checkpoint model.npz --csv new.csv --out predictions.csv")
    predict.add_argument("--checkpoint", required=True, metavar="PATH")
    predict.add_argument("--csv", required=True, metavar="FILE")
    predict.add_argument("--out", metavar="FILE", help="output CSV (default: standard output)")

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
    gradcheck.add_argument("--seed", type=int, default=0)
    return parser


# ----------------------------------------------------------------------------- data
def read_csv(path: str) -> tuple[list[str], np.ndarray]:
    """A numeric CSV with a header row: ``(column names, float64 array (rows, columns))``."""
    import numpy as np

    try:
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise UserError(f"{path}: the file is empty; expected a header row and numeric rows")
            rows = []
            for line_number, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise UserError(f"{path}, line {line_number}: {len(row)} values but the header has "
                                    f"{len(header)} columns")
                try:
                    rows.append([float(value) for value in row])
                except ValueError:
                    bad = next(i for i, value in enumerate(row) if not _is_number(value))
                    raise UserError(f"{path}, line {line_number}, column {header[bad]!r}: {row[bad]!r} is "
                                    "not a number; all columns must be numeric") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    if not rows:
        raise UserError(f"{path}: no data rows after the header")
    return [name.strip() for name in header], np.array(rows)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def infer_task(target_values) -> str:
    """regression, binary ({0, 1} only) or multiclass (integers 0..k-1, 3 <= k <= 50)."""
    import numpy as np

    unique = np.unique(target_values)
    if set(unique.tolist()) <= {0.0, 1.0}:
        return "binary"
    if np.all(unique == np.round(unique)) and unique.min() >= 0 and 3 <= unique.max() + 1 <= 50:
        return "multiclass"
    return "regression"


def task_model_args(task: str, num_classes: int) -> dict:
    """Output width, activation and loss for a task."""
    return {"regression": dict(outputs=1, output="identity", loss="mse"),
            "binary": dict(outputs=1, output="sigmoid", loss="logloss"),
            "multiclass": dict(outputs=num_classes, output="softmax", loss="cross_entropy")}[task]


def load_dataset(config: dict):
    """``(x, y, feature_names, task, num_classes)`` for a run config (built-in or CSV), as NumPy."""
    import jax
    import numpy as np

    import funcnet as fn

    if config["data"] == "xor":
        x, y = fn.xor_data()
        return np.asarray(x), np.asarray(y), ["x1", "x2"], "binary", 2
    if config["data"] == "regression":
        x, y = fn.make_regression_data(jax.random.key(42), 100_000)
        return np.asarray(x), np.asarray(y), ["a", "b", "c", "d", "e"], "regression", 1
    names, table = read_csv(config["csv"])
    if config["target"] not in names:
        raise UserError(f"--target {config['target']!r} is not a column of {config['csv']}; "
                        f"columns: {', '.join(names)}")
    column = names.index(config["target"])
    y = table[:, column]
    x = np.delete(table, column, axis=1)
    if x.shape[1] == 0:
        raise UserError(f"{config['csv']} has no feature columns besides the target")
    task = infer_task(y) if config["task"] == "auto" else config["task"]
    num_classes = int(y.max()) + 1 if task == "multiclass" else 1
    y = y.astype(np.int32) if task == "multiclass" else y.reshape(-1, 1)
    return x.astype(np.float32), y, [n for i, n in enumerate(names) if i != column], task, num_classes


# ----------------------------------------------------------------------------- train
def load_checkpoint(path: str, context: str = "", **kwargs):
    """:func:`funcnet.load`, with its errors turned into a :class:`UserError` (exit status 2)."""
    from funcnet import checkpoint

    try:
        return checkpoint.load(path, **kwargs)
    except (checkpoint.CheckpointError, FileNotFoundError) as error:
        raise UserError(f"{context}{error}") from None


def make_optimizer(name: str, learning_rate: float):
    """The optax optimizer for a CLI name."""
    import optax

    return {"sgd": lambda: optax.sgd(learning_rate),
            "momentum": lambda: optax.sgd(learning_rate, momentum=0.9),
            "adam": lambda: optax.adam(learning_rate),
            "rmsprop": lambda: optax.rmsprop(learning_rate),
            "adamw": lambda: optax.adamw(learning_rate)}[name]()


def train_config(args) -> dict:
    """The full run configuration: data source plus every setting, defaults filled in per dataset."""
    if args.csv and not args.target:
        raise UserError("--csv needs --target COLUMN: the column to predict")
    data = "csv" if args.csv else (args.data or "regression")
    config = dict(DATASET_DEFAULTS[data], data=data, csv=args.csv, target=args.target, task=args.task,
                  grad=args.grad, seed=args.seed, patience=args.patience)
    for name in ("layers", "hidden", "optimizer", "lr", "epochs", "batch_size", "validation_split", "test_split"):
        if getattr(args, name) is not None:
            config[name] = getattr(args, name)
    config.setdefault("hidden", "relu")
    try:
        config["layer_sizes"] = [int(width) for width in str(config["layers"]).split(",") if width.strip()]
    except ValueError:
        raise UserError(f"--layers must be comma-separated integers, got {config['layers']!r}") from None
    if config["epochs"] < 1:
        raise UserError(f"--epochs must be at least 1, got {config['epochs']}")
    if args.checkpoint_every is not None and (args.checkpoint_every < 1 or not args.save):
        raise UserError("--checkpoint-every N needs N >= 1 and --save PATH")
    if config["patience"] is not None and not config["validation_split"]:
        raise UserError("--patience needs a validation split (--validation-split > 0)")
    return config


class Reporter:
    """Per-epoch lines (with ETA), JSON lines, or silence."""

    def __init__(self, mode: str, epochs: int, first_epoch: int):
        self.mode, self.epochs, self.first_epoch = mode, epochs, first_epoch
        self.start = time.perf_counter()

    def epoch(self, epoch: int, history: dict) -> None:
        elapsed = time.perf_counter() - self.start
        done = epoch + 1 - self.first_epoch
        eta = elapsed / done * (self.epochs - epoch - 1)
        record = {"epoch": epoch + 1, "epochs": self.epochs, "train_loss": history["train_loss"][-1],
                  "val_loss": history["val_loss"][-1] if history["val_loss"] else None,
                  "elapsed_s": round(elapsed, 3), "eta_s": round(eta, 3)}
        if self.mode == "jsonl":
            print(json.dumps(record), flush=True)
        elif self.mode == "lines":
            val = f"  val_loss {record['val_loss']:.6g}" if record["val_loss"] is not None else ""
            print(f"epoch {epoch + 1}/{self.epochs}  train_loss {record['train_loss']:.6g}{val}"
                  f"  [{elapsed:.1f}s, ETA {eta:.1f}s]", flush=True)

    def message(self, text: str, **fields) -> None:
        """A note for people (stderr in JSON mode so stdout stays parseable)."""
        if self.mode == "jsonl":
            print(json.dumps({"event": fields.pop("event", "note"), "message": text, **fields}), flush=True)
        else:
            print(text, file=sys.stderr if fields.get("error") else sys.stdout, flush=True)


def enable_compilation_cache() -> None:
    """JAX's persistent compilation cache in ``$FUNCNET_CACHE_DIR`` or ``~/.cache/funcnet/jax``."""
    import jax

    path = os.environ.get("FUNCNET_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "funcnet", "jax")
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def run_train(args) -> int:
    import jax
    import numpy as np

    import funcnet as fn
    from funcnet import checkpoint

    if not args.no_cache:
        enable_compilation_cache()
    if args.resume:
        saved = load_checkpoint(args.resume, "--resume: ")
        config = dict(saved.config)
        if not config.get("data"):
            raise UserError(f"--resume: {args.resume} was not written by `funcnet train` (no run config)")
        if args.epochs is not None:
            config["epochs"] = args.epochs
    else:
        config = train_config(args)
    x, y, feature_names, task, num_classes = load_dataset(config)
    model_args = task_model_args(task, num_classes)
    model = fn.mlp([x.shape[1], *config["layer_sizes"], model_args["outputs"]], hidden=config["hidden"],
                   output=model_args["output"], loss=model_args["loss"])
    optimizer = make_optimizer(config["optimizer"], config["lr"])
    key = jax.random.key(config["seed"])
    data_key, init_key, fit_key = jax.random.split(key, 3)
    if config["test_split"]:
        x_train, x_test, y_train, y_test = (np.asarray(a) for a in fn.train_test_split(
            data_key, x, y, config["test_split"]))
    else:
        x_train, x_test, y_train, y_test = x, None, y, None
    standardizer = None
    if config["data"] != "xor":
        standardizer = fn.fit_standardizer(x_train)
        x_train = np.asarray(standardizer.apply(x_train))
        x_test = np.asarray(standardizer.apply(x_test)) if x_test is not None else None
    config.update(features=feature_names, task=task)

    params, opt_state, history, initial_epoch = model.init(init_key), None, None, 0
    if args.resume:
        saved = load_checkpoint(args.resume, "--resume: ", model=model, optimizer=optimizer)
        params, opt_state, history = saved.params, saved.opt_state, saved.history
        initial_epoch = len(history.get("train_loss", []))

    mode = "jsonl" if args.jsonl else "quiet" if args.quiet else "lines"
    reporter = Reporter(mode, config["epochs"], initial_epoch)
    latest = {"params": params, "opt_state": opt_state, "history": history or {}}

    def save(state):
        if args.save:
            checkpoint.save(args.save, model, state["params"], opt_state=state["opt_state"],
                            history=state["history"], standardizer=standardizer, config=config)

    def on_epoch(epoch, params, opt_state, history):
        latest.update(params=params, opt_state=opt_state, history=json.loads(json.dumps(history)))
        reporter.epoch(epoch, history)
        if args.checkpoint_every and (epoch + 1) % args.checkpoint_every == 0:
            save(latest)

    if mode == "lines":
        print(f"training {'-'.join(map(str, model.sizes))} {model.hidden_activation}/"
              f"{model.output_activation}, {model.loss_name}, {config['optimizer']} lr {config['lr']}, "
              f"batch {config['batch_size']}, grad={config['grad']} on {len(x_train)} rows", flush=True)
    try:
        params, opt_state, history = fn.fit_state(
            model, params, optimizer, x_train, y_train, epochs=config["epochs"],
            batch_size=config["batch_size"], key=fit_key, validation_split=config["validation_split"],
            grad=config["grad"], opt_state=opt_state, callback=on_epoch, initial_epoch=initial_epoch,
            history=history, patience=config["patience"])
    except fn.NonFiniteLossError as error:
        latest.update(params=error.params, opt_state=error.opt_state, history=error.history)
        save(latest)
        saved_note = f"; the last finite state (epoch {error.epoch}) is saved in {args.save}" if args.save else ""
        reporter.message(f"error: training diverged: {error}{saved_note}", event="diverged", error=True,
                         epoch=error.epoch)
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        completed = len(latest["history"].get("train_loss", []))
        if args.save and latest["opt_state"] is not None:
            save(latest)
            reporter.message(f"interrupted: saved the state after epoch {completed} to {args.save}; "
                             f"continue with: funcnet train --resume {args.save}", event="interrupted")
        else:
            reporter.message(f"interrupted after epoch {completed}; nothing saved (no --save)",
                             event="interrupted")
        return EXIT_INTERRUPTED
    latest.update(params=params, opt_state=opt_state, history=history)
    save(latest)
    summary = {"event": "done", "epochs": len(history["train_loss"]), "train_loss": history["train_loss"][-1],
               "val_loss": history["val_loss"][-1] if history["val_loss"] else None}
    if "best_epoch" in history:
        summary["best_epoch"] = history["best_epoch"] + 1
    if x_test is not None:
        summary["test_loss"] = fn.evaluate(model, params, x_test, y_test)
        if task != "regression":
            labels = np.asarray(fn.predict_labels(model, params, x_test))
            summary["test_accuracy"] = float(np.mean(labels.reshape(np.shape(y_test)) == y_test))
    elif task == "binary":
        predictions = np.asarray(fn.predict(model, params, x_train))
        summary["predictions"] = [round(float(p), 4) for p in predictions[:, 0]]
    if args.plot:
        fn.plot_history(history, args.plot, title=f"{config['data']}: {'-'.join(map(str, model.sizes))}")
    if mode == "jsonl":
        print(json.dumps(summary), flush=True)
    else:
        loss_name = "MSE" if model.loss_name == "mse" else model.loss_name
        parts = [f"done: {summary['epochs']} epochs, train {loss_name} {summary['train_loss']:.4f}"]
        if summary["val_loss"] is not None:
            parts.append(f"validation {loss_name} {summary['val_loss']:.4f}")
        if "test_loss" in summary:
            parts.append(f"test {loss_name} {summary['test_loss']:.4f}")
        if "test_accuracy" in summary:
            parts.append(f"test accuracy {summary['test_accuracy']:.4f}")
        if "best_epoch" in summary:
            parts.append(f"best epoch {summary['best_epoch']}")
        print(", ".join(parts))
        if "predictions" in summary:
            print(f"predictions on the training rows: {summary['predictions']}")
        if args.save:
            print(f"saved checkpoint to {args.save}")
        if args.plot:
            print(f"wrote learning curve to {args.plot}")
    return 0


# ----------------------------------------------------------------------------- predict, gradcheck
def run_predict(args) -> int:
    import numpy as np

    import funcnet as fn

    saved = load_checkpoint(args.checkpoint)
    names, table = read_csv(args.csv)
    features = saved.config.get("features") or [f"x{i}" for i in range(saved.model.sizes[0])]
    missing = [name for name in features if name not in names]
    if missing:
        raise UserError(f"{args.csv} lacks the feature columns {missing} that the model was trained on "
                        f"(it needs {features})")
    x = table[:, [names.index(name) for name in features]].astype(np.float32)
    if saved.standardizer is not None:
        x = np.asarray(saved.standardizer.apply(x))
    try:
        outputs = np.asarray(fn.predict(saved.model, saved.params, x))
    except ValueError as error:
        raise UserError(str(error)) from None
    if saved.model.output_activation == "softmax":
        header = ["label"] + [f"p_{k}" for k in range(outputs.shape[1])]
        rows = [[int(np.argmax(row)), *row] for row in outputs]
    elif saved.model.output_activation == "sigmoid":
        header = ["label", "probability"]
        rows = [[int(row[0] > 0.5), row[0]] for row in outputs]
    else:
        header = ["prediction"] if outputs.shape[1] == 1 else [f"prediction_{k}" for k in range(outputs.shape[1])]
        rows = outputs.tolist()
    handle = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[value if isinstance(value, int) else repr(float(value)) for value in row]
                          for row in rows])
    finally:
        if args.out:
            handle.close()
    return 0


def run_gradcheck(args) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import funcnet as fn

    if args.checkpoint:
        saved = load_checkpoint(args.checkpoint)
        model = saved.model
        params = jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.float64), saved.params)
    else:
        sizes = [2, 3, 1] if args.data == "xor" else [5, 10, 10, 1]
        model = (fn.mlp(sizes, hidden="tanh", output="sigmoid", loss="logloss") if args.data == "xor"
                 else fn.mlp(sizes))
        params = model.init(jax.random.key(args.seed), jnp.float64)
    rng = np.random.default_rng(args.seed)
    x = jnp.asarray(rng.normal(size=(args.batch, model.sizes[0])))
    k = model.sizes[-1]
    if model.loss_name == "cross_entropy":
        y = jnp.asarray(rng.integers(0, k, size=args.batch))
    elif model.loss_name == "logloss":
        y = jnp.asarray(rng.integers(0, 2, size=(args.batch, k)), jnp.float64)
    else:
        y = jnp.asarray(rng.normal(size=(args.batch, k)))
    (_, manual), (_, autodiff) = fn.manual_and_autodiff(model, params, x, y)
    numeric = fn.finite_difference_grad(model, params, x, y)
    rows = zip(fn.compare_grad_trees(manual, autodiff), fn.compare_grad_trees(manual, numeric),
               fn.compare_grad_trees(autodiff, numeric))
    print(f"model {'-'.join(map(str, model.sizes))} {model.hidden_activation}/{model.output_activation}, "
          f"{model.loss_name}; float64, {args.batch} random rows; max relative differences")
    print(f"{'layer':>5} {'leaf':>4} {'shape':>12} {'manual-autodiff':>16} {'manual-finite':>14} {'autodiff-finite':>16}")
    worst = 0.0
    for first, second, third in rows:
        worst = max(worst, first.max_rel)
        print(f"{first.layer:>5} {first.leaf:>4} {str(first.shape):>12} {first.max_rel:>16.2e} "
              f"{second.max_rel:>14.2e} {third.max_rel:>16.2e}")
    print(f"largest manual vs autodiff difference: {worst:.2e}")
    return 0 if worst < 1e-8 else 1


def main(argv=None) -> int:
    """Entry point of the ``funcnet`` console script and ``python -m funcnet``."""
    args = build_parser().parse_args(argv)
    try:
        return {"train": run_train, "predict": run_predict, "gradcheck": run_gradcheck}[args.command](args)
    except UserError as error:
        print(f"funcnet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as error:  # the library's input checks
        print(f"funcnet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())

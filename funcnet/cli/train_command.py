"""``funcnet train``: build the model for the data, fit it, report, save and plot."""

from __future__ import annotations

import json
import os
import sys
import time

from funcnet.cli.checkpoints import load_checkpoint
from funcnet.cli.csv_data import load_dataset, task_model_args
from funcnet.cli.errors import EXIT_DIVERGED, EXIT_INTERRUPTED, UserError
from funcnet.cli.parser import DATASET_DEFAULTS


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
    config["dropout"] = 0.0 if args.dropout is None else args.dropout
    config["l2"] = 0.0 if args.l2 is None else args.l2
    if not 0.0 <= config["dropout"] < 1.0:
        raise UserError(f"--dropout must be in [0, 1), got {config['dropout']}")
    if not 0.0 <= config["l2"] < float("inf"):
        raise UserError(f"--l2 must be a non-negative number, got {config['l2']}")
    try:
        config["layer_sizes"] = [int(width) for width in str(config["layers"]).split(",") if width.strip()]
    except ValueError:
        raise UserError(f"--layers must be comma-separated integers, got {config['layers']!r}") from None
    config["hidden"] = hidden_activations(config["hidden"], len(config["layer_sizes"]))
    if config["epochs"] < 1:
        raise UserError(f"--epochs must be at least 1, got {config['epochs']}")
    if args.checkpoint_every is not None and (args.checkpoint_every < 1 or not args.save):
        raise UserError("--checkpoint-every N needs N >= 1 and --save PATH")
    if config["patience"] is not None and not config["validation_split"]:
        raise UserError("--patience needs a validation split (--validation-split > 0)")
    return config


def hidden_activations(text, num_hidden: int):
    """``--hidden``: one activation name for every hidden layer, or a comma-separated name per layer."""
    from funcnet.activations import ACTIVATION_NAMES

    names = [name.strip() for name in str(text).split(",")] if isinstance(text, str) else list(text)
    allowed = [name for name in ACTIVATION_NAMES if name != "softmax"]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise UserError(f"--hidden: unknown activation {unknown[0]!r}; expected one of {', '.join(allowed)}")
    if len(names) == 1:
        return names[0]
    if len(names) != num_hidden:
        raise UserError(f"--hidden has {len(names)} activations but --layers has {num_hidden} hidden layers; "
                        "give one for all or one per layer")
    return names


class Reporter:
    """Per-epoch lines (with ETA), JSON lines, or silence."""

    def __init__(self, mode: str, epochs: int, first_epoch: int):
        self.mode, self.epochs, self.first_epoch = mode, epochs, first_epoch
        self.start = time.perf_counter()

    def epoch(self, epoch: int, history: dict) -> None:
        """Report the epoch just finished (0-based ``epoch``) from the last entries of ``history``."""
        elapsed = time.perf_counter() - self.start
        done = epoch + 1 - self.first_epoch
        eta = elapsed / done * (self.epochs - epoch - 1)
        record = {"epoch": epoch + 1, "epochs": self.epochs, "train_loss": history["train_loss"][-1],
                  "val_loss": history["val_loss"][-1] if history["val_loss"] else None,
                  "elapsed_s": round(elapsed, 3), "eta_s": round(eta, 3)}
        stats = history.get("layer_stats")
        if stats and stats[-1] and stats[-1][0].get("epoch") == epoch:  # tracked (--track-stats) this epoch
            record["layer_stats"] = stats[-1]
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
    """``funcnet train``: fit, report each epoch, save and plot; returns the exit status.

    0 when done, :data:`EXIT_DIVERGED` when the loss stops being finite (the last finite state is
    saved with ``--save``), :data:`EXIT_INTERRUPTED` on Ctrl-C (the last completed epoch is saved).
    """
    import jax
    import numpy as np

    import funcnet as fn
    from funcnet import checkpoint

    if not args.no_cache:
        enable_compilation_cache()
    for flag, path in (("--plot-stats", args.plot_stats), ("--plot-boundary", args.plot_boundary)):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UserError(f"{flag}: the folder of {path!r} does not exist")
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
    if args.plot_boundary and (x.shape[1] != 2 or task == "regression"):
        raise UserError(f"--plot-boundary needs a classifier on 2 features, but this run is {task} on "
                        f"{x.shape[1]} feature(s) ({', '.join(feature_names)})")
    model_args = task_model_args(task, num_classes)
    model = fn.mlp([x.shape[1], *config["layer_sizes"], model_args["outputs"]], hidden=config["hidden"],
                   dropout=config.get("dropout", 0.0), l2=config.get("l2", 0.0),
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
        """Write ``state`` to ``--save``, if given, with the run's standardizer and config."""
        if args.save:
            checkpoint.save(args.save, model, state["params"], opt_state=state["opt_state"],
                            history=state["history"], standardizer=standardizer, config=config)

    def on_epoch(epoch, params, opt_state, history):
        """Keep the epoch's state for Ctrl-C and divergence, report it, and checkpoint every N."""
        latest.update(params=params, opt_state=opt_state, history=json.loads(json.dumps(history)))
        reporter.epoch(epoch, history)
        if args.checkpoint_every and (epoch + 1) % args.checkpoint_every == 0:
            save(latest)

    if mode == "lines":
        print(f"training {model.describe()}, {config['optimizer']} lr {config['lr']}, "
              f"batch {config['batch_size']}, grad={config['grad']} on {len(x_train)} rows", flush=True)
    try:
        params, opt_state, history = fn.fit_state(
            model, params, optimizer, x_train, y_train, epochs=config["epochs"],
            batch_size=config["batch_size"], key=fit_key, validation_split=config["validation_split"],
            grad=config["grad"], opt_state=opt_state, callback=on_epoch, initial_epoch=initial_epoch,
            history=history, patience=config["patience"],
            track="layers" if args.track_stats or args.plot_stats else None)
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
    if args.plot_stats:
        from funcnet.layer_stats import plot_layer_stats

        plot_layer_stats(history, args.plot_stats, title=f"{config['data']}: {model.describe()}")
    if args.plot_boundary:  # all rows in the data's own units; the grid is standardised like training was
        from funcnet.decision_boundary import plot_decision_boundary

        plot_decision_boundary(
            model, params, x, y, args.plot_boundary, feature_names=feature_names,
            padding=0.5 if standardizer is None else 0.1 * np.ptp(x, axis=0),  # 10% of each feature's range
            transform=None if standardizer is None else (lambda points: np.asarray(standardizer.apply(points))),
            title=f"{config['data']}: {'-'.join(map(str, model.sizes))} decision boundary")
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
        if args.plot_stats:
            print(f"wrote layer statistics to {args.plot_stats}")
        if args.plot_boundary:
            print(f"wrote decision boundary to {args.plot_boundary}")
    return 0

"""``funcnet train``: build the model for the data, fit it, report, save and plot.

Every output path is checked before any work (:mod:`~funcnet.cli.output_paths`);
Ctrl-C and SIGTERM stop training at the end of the epoch in progress, which is
saved (:mod:`~funcnet.cli.interrupts`); a checkpoint that cannot be written at
the end goes to a fallback path, after the summary is printed.

``--resume`` continues a saved run exactly: its data must have the
fingerprint the checkpoint recorded, only ``--epochs``, ``--lr`` and
``--grad`` may change (and the header says so), and any other flag that would
change the run is an error unless it repeats the saved value.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
import time
from typing import NamedTuple

from funcnet.cli.checkpoints import load_checkpoint
from funcnet.cli.csv_data import fit_feature_standardizer, load_dataset, standardize_features, task_model_args
from funcnet.cli.errors import EXIT_BAD_INPUT, EXIT_DIVERGED, UserError
from funcnet.cli.interrupts import SIGNALS, SignalRecorder, exit_status
from funcnet.cli.output_paths import check_distinct_paths, check_matplotlib, check_output_path, fallback_paths
from funcnet.cli.parser import DATASET_DEFAULTS

# Flags that define a run: on --resume they must repeat the saved value (or be left out).
RUN_FLAGS = {"data": "--data", "target": "--target", "task": "--task", "layers": "--layers",
             "hidden": "--hidden", "dropout": "--dropout", "l2": "--l2", "optimizer": "--optimizer",
             "batch_size": "--batch-size", "validation_split": "--validation-split",
             "test_split": "--test-split", "seed": "--seed", "patience": "--patience"}
# Flags a resumed run applies: safe to change between epochs (the optimizer state keeps its structure).
RESUME_CHANGES = {"epochs": "--epochs", "lr": "--lr", "grad": "--grad"}


@functools.lru_cache(maxsize=32)
def make_optimizer(name: str, learning_rate: float):
    """The optax optimizer for a CLI name; the same object for the same settings, so runs in one
    process (``funcnet.cli.main`` called again) reuse the compiled epoch."""
    import optax

    return {"sgd": lambda: optax.sgd(learning_rate),
            "momentum": lambda: optax.sgd(learning_rate, momentum=0.9),
            "adam": lambda: optax.adam(learning_rate),
            "rmsprop": lambda: optax.rmsprop(learning_rate),
            "adamw": lambda: optax.adamw(learning_rate)}[name]()


def layer_widths(text) -> list[int]:
    """``--layers``: comma-separated positive widths, e.g. ``"10,10"`` → ``[10, 10]``."""
    try:
        widths = [int(width) for width in str(text).split(",") if width.strip()]
    except ValueError:
        raise UserError(f"--layers must be comma-separated integers, got {text!r}") from None
    bad = [width for width in widths if width < 1]
    if bad:
        raise UserError(f"--layers: every hidden layer needs at least 1 unit, got {bad[0]} in {text!r}")
    return widths


def check_settings(config: dict) -> None:
    """The numeric flags, checked with their flag names."""
    learning_rate = config["lr"]
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise UserError(f"--lr must be a positive finite number, got {learning_rate}")
    if config["epochs"] < 1:
        raise UserError(f"--epochs must be at least 1, got {config['epochs']}")
    if config["batch_size"] < 1:
        raise UserError(f"--batch-size must be at least 1, got {config['batch_size']}")
    for name, flag in (("validation_split", "--validation-split"), ("test_split", "--test-split")):
        if not 0.0 <= config[name] < 1.0:
            raise UserError(f"{flag} must be in [0, 1), got {config[name]}")
    if config["patience"] is not None and config["patience"] < 1:
        raise UserError(f"--patience must be at least 1, got {config['patience']}")
    if config["patience"] is not None and not config["validation_split"]:
        raise UserError("--patience needs a validation split (--validation-split > 0)")


def train_config(args) -> dict:
    """The full run configuration: data source plus every setting, defaults filled in per dataset."""
    if args.csv and not args.target:
        raise UserError("--csv needs --target COLUMN: the column to predict")
    if args.target and not args.csv:
        raise UserError(f"--target {args.target!r} needs --csv FILE: the built-in datasets have their own target")
    if args.task and not args.csv:
        raise UserError(f"--task {args.task} applies to --csv data; the built-in --data "
                        f"{args.data or 'regression'} has its own task")
    data = "csv" if args.csv else (args.data or "regression")
    config = dict(DATASET_DEFAULTS[data], data=data, csv=args.csv, target=args.target,
                  task=args.task or "auto", task_flag=args.task or "auto", grad=args.grad or "manual",
                  seed=0 if args.seed is None else args.seed, patience=args.patience)
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
    config["layer_sizes"] = layer_widths(config["layers"])
    config["hidden"] = hidden_activations(config["hidden"], len(config["layer_sizes"]))
    check_settings(config)
    if args.checkpoint_every is not None and (args.checkpoint_every < 1 or not args.save):
        raise UserError("--checkpoint-every N needs N >= 1 and --save PATH")
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


def _per_layer(hidden, num_hidden: int) -> list:
    return [hidden] * num_hidden if isinstance(hidden, str) else list(hidden)


def resume_config(args, saved_config: dict) -> tuple[dict, list[str]]:
    """The saved run's config with the changes ``--resume`` allows; ``(config, header notes)``.

    A run-defining flag (:data:`RUN_FLAGS`) must repeat the saved value;
    ``--epochs``, ``--lr`` and ``--grad`` are applied and reported.
    """
    config = dict(saved_config)
    config.setdefault("patience", None)
    config.setdefault("seed", 0)
    config.setdefault("dropout", 0.0)
    config.setdefault("l2", 0.0)
    for name, flag in RUN_FLAGS.items():
        given = getattr(args, name, None)
        if given is None:
            continue
        saved = config.get(name)
        if name == "layers":
            same = layer_widths(given) == list(config["layer_sizes"])
            saved = ",".join(map(str, config["layer_sizes"]))
        elif name == "hidden":
            widths = len(config["layer_sizes"])
            same = _per_layer(hidden_activations(given, widths), widths) == _per_layer(config["hidden"], widths)
            saved = config["hidden"] if isinstance(config["hidden"], str) else ",".join(config["hidden"])
        elif name == "task":
            same = given in (config.get("task"), config.get("task_flag"))
        elif name in ("dropout", "l2", "validation_split", "test_split"):
            same = saved is not None and float(given) == float(saved)
        else:
            same = given == saved
        if not same:
            raise UserError(f"--resume: {flag} {given} would change the saved run, which was trained with "
                            f"{flag} {saved}; leave {flag} out to continue it, or start a new run without "
                            f"--resume (a resumed run may change only --epochs, --lr and --grad)")
    if args.csv and config.get("data") != "csv":
        raise UserError(f"--resume: --csv {args.csv} given, but {args.resume} was trained on the built-in "
                        f"--data {config.get('data')}")
    notes = []
    for name, flag in RESUME_CHANGES.items():
        given = getattr(args, name, None)
        if given is not None and given != config.get(name):
            if name != "epochs":
                notes.append(f"{flag} {given} (the saved run used {config.get(name)})")
            config[name] = given
    check_settings(config)
    if args.checkpoint_every is not None and (args.checkpoint_every < 1 or not args.save):
        raise UserError("--checkpoint-every N needs N >= 1 and --save PATH")
    return config, notes


def resume_data_path(args, config: dict) -> str:
    """Where the resumed run's CSV is: ``--csv``, or the checkpoint's path (relative: to the checkpoint's folder)."""
    if args.csv:
        return args.csv
    recorded = config.get("csv")
    if not recorded:
        raise UserError(f"--resume: {args.resume} does not record its data file; pass --csv FILE")
    if os.path.isabs(recorded):
        path = recorded
    else:
        path = os.path.join(os.path.dirname(os.path.abspath(args.resume)), recorded)
        if not os.path.exists(path) and "data_fingerprint" not in config and os.path.exists(recorded):
            path = recorded  # funcnet <= 0.2 recorded the path relative to the working folder
    if not os.path.exists(path):
        raise UserError(f"--resume: the training data {recorded!r}, the path recorded in the checkpoint "
                        f"{args.resume} (relative to its folder: {path}), does not exist; if the file moved, "
                        "pass --csv NEW_PATH")
    return path


def check_fingerprint(args, config: dict, fingerprint: dict, data_path: str | None) -> str | None:
    """Raise unless the data is what the checkpoint was trained on; a note for checkpoints without a fingerprint."""
    saved = config.get("data_fingerprint")
    source = data_path or f"the built-in --data {config['data']}"
    if saved is None:
        return f"{args.resume} has no data fingerprint (written by funcnet 0.2 or earlier); {source} is not checked"
    if saved != fingerprint:
        raise UserError(
            f"--resume: {source} is not the data {args.resume} was trained on: it has {fingerprint['rows']} rows "
            f"and fingerprint {fingerprint['sha256'][:16]}…, the checkpoint's data had {saved['rows']} rows and "
            f"{saved['sha256'][:16]}… (SHA-256 of the features and targets in file order); resuming on other or "
            "reordered rows would re-split them and put test rows into training")
    return None


def format_seconds(seconds: float) -> str:
    """A duration for the epoch lines: three significant digits below 10 s (``0.0123s``), whole seconds above."""
    return f"{seconds:.3g}s" if seconds < 10 else f"{seconds:.0f}s"


class Reporter:
    """Per-epoch lines (with each epoch's own time and an ETA), JSON lines, or silence.

    The timing rule: an epoch's time runs from the end of the previous epoch's report (from
    the reporter's creation for the run's first epoch, which therefore includes set-up and
    compiling).  The ETA leaves the first epoch out: none is shown until a second epoch has
    been timed, then ``ETA = remaining epochs × mean time of this run's epochs after its
    first``.  ``clock`` (seconds, monotonic) is injectable for tests.
    """

    def __init__(self, mode: str, epochs: int, first_epoch: int, clock=time.perf_counter):
        self.mode, self.epochs, self.first_epoch, self.clock = mode, epochs, first_epoch, clock
        self.start = self.previous = clock()
        self.end_of_first = None  # the clock when the run's first (compiling) epoch ended

    def epoch(self, epoch: int, history: dict) -> None:
        """Report the epoch just finished (0-based ``epoch``) from the last entries of ``history``."""
        now = self.clock()
        epoch_time, self.previous = now - self.previous, now
        if self.end_of_first is None:
            self.end_of_first, eta = now, None
        else:
            steady_epochs = epoch + 1 - self.first_epoch - 1
            eta = (now - self.end_of_first) / steady_epochs * (self.epochs - epoch - 1)
        record = {"epoch": epoch + 1, "epochs": self.epochs, "train_loss": history["train_loss"][-1],
                  "val_loss": history["val_loss"][-1] if history["val_loss"] else None,
                  "epoch_s": round(epoch_time, 4), "elapsed_s": round(now - self.start, 3),
                  "eta_s": None if eta is None else round(eta, 3)}
        stats = history.get("layer_stats")
        if stats and stats[-1] and stats[-1][0].get("epoch") == epoch:  # tracked (--track-stats) this epoch
            record["layer_stats"] = stats[-1]
        if self.mode == "jsonl":
            print(json.dumps(record), flush=True)
        elif self.mode == "lines":
            val = f"  val_loss {record['val_loss']:.6g}" if record["val_loss"] is not None else ""
            timing = (f"{format_seconds(epoch_time)} incl. compile" if eta is None
                      else f"{format_seconds(epoch_time)}, ETA {format_seconds(eta)}")
            print(f"epoch {epoch + 1}/{self.epochs}  train_loss {record['train_loss']:.6g}{val}"
                  f"  [{timing}]", flush=True)

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


def output_flags(args) -> list:
    """``(flag, path)`` of every file ``funcnet train`` may write (``None`` for a flag not given)."""
    return [("--save", args.save), ("--plot", args.plot), ("--plot-stats", args.plot_stats),
            ("--plot-boundary", args.plot_boundary)]


def check_outputs(args) -> None:
    """Every file the run will write, checked before any work: folders, writability, suffixes, matplotlib.

    No two outputs may be one file, and no output may be an input (``--csv``,
    ``--resume``), except ``--save`` onto its own ``--resume`` checkpoint.
    """
    check_distinct_paths(output_flags(args), [("--csv", args.csv), ("--resume", args.resume)],
                         may_overwrite=[("--save", "--resume")])
    if args.save:
        check_output_path("--save", args.save, example="model.npz", checkpoint=True)
    for flag, path in output_flags(args)[1:]:
        if path:
            check_output_path(flag, path, example=flag.lstrip("-"), image=True)
            check_matplotlib(flag)


def run_train(args) -> int:
    """``funcnet train``: fit, report each epoch, save and plot; returns the exit status.

    0 when done, :data:`EXIT_DIVERGED` when the loss stops being finite (the last finite state is
    saved with ``--save``), 130 on Ctrl-C and 143 on SIGTERM (training stops when the epoch in
    progress has finished, and the last completed epoch is saved with ``--save``),
    :data:`EXIT_BAD_INPUT` when an output could not be written at the end (the checkpoint then goes
    to a fallback path that the message names).  A signal before training starts raises
    :class:`~funcnet.cli.interrupts.Interrupted` (nothing saved); one after the last epoch lets the
    checkpoint be written, then skips the plots.
    """
    with SIGNALS.recording() as interrupt:
        try:
            return _train(args, interrupt)
        finally:
            interrupt.notify = ""


class _Run(NamedTuple):
    """Everything ``funcnet train`` decided before the first epoch."""
    config: dict            # the run's settings, as the checkpoint records them
    changes: list           # what --resume changed (``--epochs``, ``--lr``, ``--grad``)
    notes: list             # lines printed with the resume header
    data_path: str | None   # the CSV read, if any
    dataset: object         # :class:`~funcnet.cli.csv_data.Dataset`
    model: object
    optimizer: object
    fit_key: object
    splits: tuple           # (x_train, x_test, y_train, y_test), standardised; x_test None without --test-split
    standardizer: object
    start: tuple            # (params, opt_state, history, initial_epoch, best) to train from


def _train(args, interrupt: SignalRecorder) -> int:
    interrupt.check()  # a signal during the imports (JAX's take a second or two)
    if not args.no_cache:
        enable_compilation_cache()
    check_outputs(args)
    run = _prepare(args, interrupt)
    interrupt.check()  # a signal during start-up: exit before any training
    mode = "jsonl" if args.jsonl else "quiet" if args.quiet else "lines"
    params, opt_state, history, initial_epoch, best = run.start
    record = _RunRecord(args, run, interrupt, Reporter(mode, run.config["epochs"], initial_epoch))
    interrupt.notify = "{signal}: stopping when the epoch in progress has finished (the first one compiles)" + (
        ", then saving" if args.save else "")
    if not interrupt.notified:  # a signal that came before the notice was set: stop before training
        interrupt.check()
    _announce(args, run, mode)
    return _fit(args, run, record, mode)


def _prepare(args, interrupt: SignalRecorder) -> _Run:
    """Read the config (fresh or ``--resume``d) and the data, build the model, split and standardise."""
    import jax
    import numpy as np

    import funcnet as fn
    from funcnet.data import split_count

    config, changes, data_path = _run_config(args)
    # reading a file (perhaps a pipe that never delivers) may be left at once
    dataset = interrupt.wait_for(load_dataset, config, data_path) if data_path else load_dataset(config, None)
    interrupt.check()
    notes = []
    if args.resume:
        note = check_fingerprint(args, config, dataset.fingerprint, data_path)
        notes += [note] if note else []
        dataset = dataset._replace(reason=config.get("task_reason") or dataset.reason)
    x, task = dataset.x, dataset.task
    if args.plot_boundary and (x.shape[1] != 2 or task == "regression"):
        raise UserError(f"--plot-boundary needs a classifier on 2 features, but this run is {task} on "
                        f"{x.shape[1]} feature(s) ({', '.join(dataset.feature_names)})")
    model_args = task_model_args(task, len(dataset.classes))
    model = fn.mlp([x.shape[1], *config["layer_sizes"], model_args["outputs"]], hidden=config["hidden"],
                   dropout=config.get("dropout", 0.0), l2=config.get("l2", 0.0),
                   output=model_args["output"], loss=model_args["loss"])
    optimizer = make_optimizer(config["optimizer"], config["lr"])
    data_key, init_key, fit_key = jax.random.split(jax.random.key(config["seed"]), 3)
    y = dataset.y
    if config["test_split"]:
        split_count(len(x), config["test_split"], "--test-split")
        x_train, x_test, y_train, y_test = (np.asarray(a) for a in fn.train_test_split(
            data_key, x, y, config["test_split"]))
    else:
        x_train, x_test, y_train, y_test = x, None, y, None
    split_count(len(x_train), config["validation_split"], "--validation-split")
    standardizer, constant_features = None, {}
    if config["data"] != "xor":
        standardizer, constant_features = fit_feature_standardizer(x_train, dataset.feature_names)
        # every row in file order, so that a value standardising beyond float32 is reported by its CSV line
        standardize_features(standardizer, dataset.x, dataset.feature_names, dataset.where)
    x_train = standardize_features(standardizer, x_train)
    x_test = standardize_features(standardizer, x_test) if x_test is not None else None
    config.update(features=dataset.feature_names, task=task, task_reason=dataset.reason,
                  classes=dataset.classes, data_fingerprint=dataset.fingerprint,
                  constant_features=constant_features)  # {name: [min, max]}: predict notes other values
    return _Run(config, changes, notes, data_path, dataset, model, optimizer, fit_key,
                (x_train, x_test, y_train, y_test), standardizer, _starting_state(args, model, optimizer, init_key))


def _run_config(args) -> tuple[dict, list, str | None]:
    """``(config, changes, data path)``: from the flags, or from ``--resume``'s checkpoint and the flags."""
    if not args.resume:
        config = train_config(args)
        return config, [], config["csv"]
    saved = load_checkpoint(args.resume, "--resume: ")
    if not saved.config.get("data"):
        raise UserError(f"--resume: {args.resume} was not written by `funcnet train` (no run config)")
    config, changes = resume_config(args, saved.config)
    data_path = resume_data_path(args, config) if config["data"] == "csv" else None
    if data_path and not args.csv:  # the data file the checkpoint records is an input too
        check_distinct_paths(output_flags(args), [("(the training data that --resume records)", data_path)])
    config["task"] = config.get("task") or "auto"
    return config, changes, data_path


def _starting_state(args, model, optimizer, init_key) -> tuple:
    """``(params, opt_state, history, initial_epoch, best)``: fresh, or ``--resume``'s last state.

    With early stopping a checkpoint's params are the best epoch's; the run
    continues from its ``last_params`` and keeps the best as ``best``.
    """
    if not args.resume:
        return model.init(init_key), None, None, 0, None
    saved = load_checkpoint(args.resume, "--resume: ", model=model, optimizer=optimizer)
    history = saved.history
    initial_epoch = len(history.get("train_loss", []))
    if saved.last_params is not None:
        return saved.last_params, saved.last_opt_state, history, initial_epoch, (saved.params, saved.opt_state)
    return saved.params, saved.opt_state, history, initial_epoch, None


class _RunRecord:
    """The run's latest whole epoch (and best one, with ``--patience``), and how to save them.

    Ctrl-C, SIGTERM, divergence and the end of the run all save what this holds.
    """

    def __init__(self, args, run: _Run, interrupt: SignalRecorder, reporter: Reporter):
        params, opt_state, history, _, best = run.start
        self.args, self.run, self.interrupt, self.reporter = args, run, interrupt, reporter
        self.latest = {"params": params, "opt_state": opt_state, "history": history or {}}
        self.best = {} if best is None else {"params": best[0], "opt_state": best[1]}
        self.warned = False

    def config_for(self, path) -> dict:
        """The config as saved in ``path``: the CSV's path relative to the checkpoint's folder."""
        saved_config = dict(self.run.config)
        if self.run.data_path:
            csv_file = os.path.abspath(self.run.data_path)
            saved_config["csv"] = os.path.relpath(csv_file, os.path.dirname(os.path.abspath(path)))
        return saved_config

    def save(self, path) -> None:
        """Write the run to ``path``: with --patience the best epoch's state plus the last one to resume from."""
        import funcnet as fn

        run, latest = self.run, self.latest
        if run.config["patience"] is not None and self.best:
            fn.save(path, run.model, self.best["params"], opt_state=self.best["opt_state"],
                    history=latest["history"], standardizer=run.standardizer, config=self.config_for(path),
                    last_params=latest["params"], last_opt_state=latest["opt_state"])
        else:
            fn.save(path, run.model, latest["params"], opt_state=latest["opt_state"], history=latest["history"],
                    standardizer=run.standardizer, config=self.config_for(path))

    def save_or_fallback(self) -> str | None:
        """Save to --save; when that fails, to a fallback path. An error message, or None when saved."""
        target = self.args.save
        try:
            self.save(target)
            return None
        except OSError as error:
            problem = f"could not write the checkpoint to {target} ({error.strerror or error})"
        for path in fallback_paths(target):
            try:
                self.save(path)
                return f"error: {problem}; saved it to {path} instead"
            except OSError:
                continue
        return f"error: {problem}, nor to {' or '.join(fallback_paths(target))}; the trained model is lost"

    def on_epoch(self, epoch, params, opt_state, history) -> bool:
        """Keep the epoch's state for Ctrl-C and divergence, report it, checkpoint every N; True stops."""
        self.latest.update(params=params, opt_state=opt_state, history=json.loads(json.dumps(history)))
        if self.run.config["patience"] is not None and history.get("best_epoch") == epoch:
            self.best.update(params=params, opt_state=opt_state)
        self.reporter.epoch(epoch, history)
        every = self.args.checkpoint_every
        if every and (epoch + 1) % every == 0:
            try:
                self.save(self.args.save)
            except OSError as error:
                if not self.warned:
                    self.warned = True
                    self.reporter.message(f"warning: could not write the checkpoint of epoch {epoch + 1} to "
                                          f"{self.args.save} ({error.strerror or error}); training goes on",
                                          event="warning", error=True)
        return self.interrupt.requested


def _announce(args, run: _Run, mode: str) -> None:
    """The lines before the first epoch: the model, the task a CSV implies, what ``--resume`` continues."""
    config, dataset, initial_epoch = run.config, run.dataset, run.start[3]
    if mode == "lines":
        print(f"training {run.model.describe()}, {config['optimizer']} lr {config['lr']}, "
              f"batch {config['batch_size']}, grad={config['grad']} on {len(run.splits[0])} rows", flush=True)
    if config["data"] == "csv":
        classes = ""
        if dataset.classes:
            shown = ", ".join(map(str, dataset.classes[:6])) + (", ..." if len(dataset.classes) > 6 else "")
            classes = f"; classes {shown} are learned as 0..{len(dataset.classes) - 1}"
        line = f"task: {dataset.task} ({dataset.reason}{classes}; --task overrides)"
        if mode == "jsonl":
            print(json.dumps({"event": "task", "task": dataset.task, "reason": dataset.reason,
                              "classes": dataset.classes, "message": line}), flush=True)
        else:
            print(line, flush=True)
    if args.resume:
        line = (f"resuming {args.resume} after epoch {initial_epoch} of {config['epochs']}"
                + (f", with {', '.join(run.changes)}" if run.changes else "")
                + (f"; data {run.data_path}" if run.data_path else ""))
        for text in [line, *run.notes]:
            if mode == "jsonl":
                print(json.dumps({"event": "resume", "message": text}), flush=True)
            else:
                print(text, flush=True)
        if initial_epoch >= config["epochs"]:
            raise UserError(f"--resume: {args.resume} already has {initial_epoch} epochs; pass --epochs N "
                            f"with N > {initial_epoch} to train further")


def _fit(args, run: _Run, record: _RunRecord, mode: str) -> int:
    """Train through ``fn.fit``; save on divergence or a signal, else summarise, save and plot."""
    import funcnet as fn
    from funcnet.fitting import fit

    config, interrupt = run.config, record.interrupt
    params, opt_state, history, initial_epoch, best = run.start
    x_train, _, y_train, _ = run.splits
    try:
        trained = fit(
            run.model, params, run.optimizer, x_train, y_train, epochs=config["epochs"],
            batch_size=config["batch_size"], key=run.fit_key, validation_split=config["validation_split"],
            grad=config["grad"], opt_state=opt_state, callback=record.on_epoch, initial_epoch=initial_epoch,
            history=history, patience=config["patience"], best=best,
            track="layers" if args.track_stats or args.plot_stats else None)
        params, opt_state, history = trained.params, trained.opt_state, trained.history
    except fn.NonFiniteLossError as error:
        return _diverged(args, record, error)
    interrupt.notify = ""  # a later signal is reported once, at the end (_finish)
    if interrupt.requested:
        return _interrupted(args, record, initial_epoch)
    if config["patience"] is None:
        record.latest.update(params=params, opt_state=opt_state)
    record.latest.update(history=history)
    return _finish(args, run, params, history, mode, record.save_or_fallback)


def _diverged(args, record: _RunRecord, error) -> int:
    """Save the last finite state (with ``--save``) and report the divergence: :data:`EXIT_DIVERGED`."""
    record.latest.update(params=error.params, opt_state=error.opt_state, history=error.history)
    cause = re.sub(r"^epoch \d+:\s*", "", str(error))  # the CLI numbers epochs from 1 itself
    cause = re.sub(r"\s*The last finite params are in this exception's `\.params`\.", "", cause).rstrip(". ")
    saved_note = ""
    if args.save:
        failure = record.save_or_fallback()
        state = f"after epoch {error.epoch}" if error.epoch else "before epoch 1 (the initial state)"
        saved_note = failure or f"; the last finite state ({state}) is saved in {args.save}"
    record.reporter.message(f"error: training diverged in epoch {error.epoch + 1}: {cause}{saved_note}",
                            event="diverged", error=True, epoch=error.epoch + 1)
    return EXIT_DIVERGED


def _interrupted(args, record: _RunRecord, initial_epoch: int) -> int:
    """Save the last whole epoch (with ``--save``) after Ctrl-C or SIGTERM; the signal's exit status."""
    completed = len(record.latest["history"].get("train_loss", []))
    if args.save and completed > initial_epoch:
        failure = record.save_or_fallback()
        record.reporter.message(failure or f"interrupted: saved the state after epoch {completed} to {args.save}; "
                                f"continue with: funcnet train --resume {args.save}", event="interrupted")
    elif args.save:
        record.reporter.message(f"interrupted before an epoch finished; {args.save} was not written",
                                event="interrupted")
    else:
        record.reporter.message(f"interrupted after epoch {completed}; nothing saved (no --save)",
                                event="interrupted")
    return exit_status(record.interrupt.received)


def _finish(args, run: _Run, params, history, mode: str, save_or_fallback) -> int:
    """Print the summary, then write the checkpoint and plots; a failed write is reported after the summary.

    The summary evaluates the test rows; should that fail, the checkpoint is
    written first and the error raised after, so a finished run is never lost.
    A signal that came after the last epoch lets the checkpoint be written, then
    ends the command before the plots (:class:`~funcnet.cli.interrupts.Interrupted`).
    """
    import numpy as np

    import funcnet as fn

    config, model, dataset, standardizer = run.config, run.model, run.dataset, run.standardizer
    x_train, x_test, _, y_test = run.splits
    try:
        _print_summary(model, params, history, x_train, x_test, y_test, dataset.task, mode)
    except BaseException:
        if args.save:
            failure = save_or_fallback()
            print(failure or f"saved checkpoint to {args.save} (before the error below)", file=sys.stderr, flush=True)
        raise
    failures = []

    def written(text):
        if mode != "jsonl":  # under --jsonl the "done" record stays the last line
            print(text, flush=True)

    if args.save:
        failure = save_or_fallback()
        failures += [failure] if failure else []
        if not failure:
            written(f"saved checkpoint to {args.save}")
    if SIGNALS.requested:
        for failure in failures:
            print(failure, file=sys.stderr, flush=True)
        saved = f"; the finished run is saved in {args.save}" if args.save and not failures else ""
        skipped = "; plots not written" if args.plot or args.plot_stats or args.plot_boundary else ""
        SIGNALS.check(f" after the last epoch{saved}{skipped}")
    plots = []
    if args.plot:
        plots.append(("learning curve", args.plot, lambda: fn.plots.plot_history(
            history, args.plot, title=f"{config['data']}: {'-'.join(map(str, model.sizes))}")))
    if args.plot_stats:
        from funcnet.layer_stats import plot_layer_stats

        plots.append(("layer statistics", args.plot_stats, lambda: plot_layer_stats(
            history, args.plot_stats, title=f"{config['data']}: {model.describe()}")))
    if args.plot_boundary:  # all rows in the data's own units; the grid is standardised like training was
        from funcnet.decision_boundary import plot_decision_boundary

        x, y = dataset.x, dataset.y
        plots.append(("decision boundary", args.plot_boundary, lambda: plot_decision_boundary(
            model, params, x.astype(np.float32), y, args.plot_boundary, feature_names=dataset.feature_names,
            padding=0.5 if standardizer is None else 0.1 * np.ptp(x, axis=0),  # 10% of each feature's range
            transform=None if standardizer is None else (
                lambda points: standardize_features(standardizer, np.asarray(points, np.float64))),
            title=f"{config['data']}: {'-'.join(map(str, model.sizes))} decision boundary")))
    for what, path, draw in plots:
        try:
            draw()
            written(f"wrote {what} to {path}")
        except (OSError, ImportError) as error:
            failures.append(f"error: could not write the {what} to {path} ({getattr(error, 'strerror', None) or error})")
    for failure in failures:
        print(failure, file=sys.stderr, flush=True)
    return EXIT_BAD_INPUT if failures else 0


def _print_summary(model, params, history, x_train, x_test, y_test, task, mode) -> None:
    """The "done" line (or JSON record): epochs, the kept epoch's losses, test loss and accuracy, best epoch.

    With early stopping the params kept are the best epoch's, so its train and
    validation losses are reported, beside the test loss of those same params.
    """
    import numpy as np

    import funcnet as fn

    kept = history.get("best_epoch", -1)
    summary = {"event": "done", "epochs": len(history["train_loss"]), "train_loss": history["train_loss"][kept],
               "val_loss": history["val_loss"][kept] if history["val_loss"] else None}
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
    if mode == "jsonl":
        print(json.dumps(summary), flush=True)
    else:
        loss_name = "MSE" if model.loss_name == "mse" else model.loss_name
        kept_epoch = f", kept best epoch {summary['best_epoch']}:" if "best_epoch" in summary else ","
        parts = [f"done: {summary['epochs']} epochs{kept_epoch} train {loss_name} {summary['train_loss']:.4f}"]
        if summary["val_loss"] is not None:
            parts.append(f"validation {loss_name} {summary['val_loss']:.4f}")
        if "test_loss" in summary:
            parts.append(f"test {loss_name} {summary['test_loss']:.4f}")
        if "test_accuracy" in summary:
            parts.append(f"test accuracy {summary['test_accuracy']:.4f}")
        print(", ".join(parts), flush=True)
        if "predictions" in summary:
            print(f"predictions on the training rows: {summary['predictions']}", flush=True)

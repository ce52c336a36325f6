"""``funcnet explain``: print a backprop trace step by step, by hand and by ``jax.grad``, in float64."""

from __future__ import annotations

from funcnet.cli.checkpoints import load_checkpoint
from funcnet.cli.csv_data import is_number, note_unlearned_columns, numeric_columns, read_table
from funcnet.cli.errors import UserError
from funcnet.cli.interrupts import SIGNALS

ARTICLE_NOTE = """\
The article's own layer-2 gradients, dW2 = A1ᵀ(A2 − y) = [[-8.14616], [2.1296]] and db2 = mean(A2 − y)
= [1.9648], are those of ½(A2 − y)², summed over the rows for dW2 and averaged for db2.  Above are the
exact gradients of the mean squared error L = (1/m) Σ (A2 − y)²: dW2 = (2/m) A1ᵀ(A2 − y) and
db2 = (2/m) Σ (A2 − y), as jax.grad gives them (examples/worked_example.py shows both)."""


def check_explain_args(args) -> None:
    """Every argument of ``funcnet explain`` checked before any work, as a :class:`UserError` naming the flag."""
    if args.rows is not None and args.rows < 1:
        raise UserError(f"--rows must be at least 1, got {args.rows}")
    if not 0 <= args.precision <= 16:
        raise UserError(f"--precision must be between 0 and 16 digits, got {args.precision}")
    if args.checkpoint and not args.csv:
        raise UserError("--checkpoint needs --csv FILE, the rows to trace (with the model's feature columns)")
    if args.csv and not args.checkpoint:
        raise UserError("--csv goes with --checkpoint PATH; the built-in --example models bring their own rows")
    if args.target and not args.checkpoint:
        raise UserError("--target goes with --checkpoint PATH and --csv FILE")


def run_explain(args) -> int:
    """``funcnet explain``: trace one batch through a network and print every step; returns 0.

    It runs inside ``jax.enable_x64(True)``, switched back afterwards.  A Ctrl-C
    or SIGTERM is acted on before the trace is printed (:mod:`~funcnet.cli.interrupts`),
    never inside XLA.
    """
    check_explain_args(args)
    import jax

    with jax.enable_x64(True):
        return _explain(args)


def _explain(args) -> int:
    import jax
    import jax.numpy as jnp

    from funcnet.trace import trace_backprop

    SIGNALS.check()  # a signal during the imports
    if args.checkpoint:
        title, model, params, x, y = _checkpoint_problem(args)
    else:
        title, model, params, x, y = _example_problem(args.example or "article", args.seed)
    rows = x.shape[0] if args.rows is None else min(args.rows, x.shape[0])
    x, y = x[:rows], y[:rows]
    key = jax.random.key(args.seed) if model.needs_key else None
    if key is not None:
        title += f"; dropout masks from --seed {args.seed}"
    params = jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.float64), params)
    trace = trace_backprop(model, params, jnp.asarray(x, jnp.float64), y, key=key)
    text = f"{title}\n{trace.format(precision=args.precision, max_rows=rows)}"
    if not args.checkpoint and (args.example or "article") == "article":
        text += "\n\n" + ARTICLE_NOTE
    SIGNALS.check()  # the last safe point: the trace is printed whole
    print(text)
    return 0


def _example_problem(example: str, seed: int):
    import jax
    import jax.numpy as jnp

    import funcnet as fn
    from funcnet.trace import worked_example_network

    if example == "article":
        model, params, x, y = worked_example_network()
        return "The second article's worked example: x = [10, 20, −20, −40, −3], y = [9, 13, 5, −2, −1]", \
            model, params, x, y
    model = fn.mlp([2, 3, 1], hidden="tanh", output="sigmoid", loss="logloss")
    x, y = fn.xor_data(jnp.float64)
    return f"XOR, a fresh 2-3-1 network at --seed {seed}", model, model.init(jax.random.key(seed), jnp.float64), x, y


def _checkpoint_problem(args):
    """``(title, model, params, x, y)`` from the checkpoint and the first rows of the CSV."""
    import numpy as np

    import funcnet as fn

    saved = load_checkpoint(args.checkpoint, "--checkpoint: ")
    table = SIGNALS.wait_for(read_table, args.csv)  # --csv may be a pipe that never delivers
    names = table.names
    features = saved.config.get("features") or [f"x{i}" for i in range(saved.model.n_in)]
    missing = [name for name in features if name not in names]
    if missing:
        raise UserError(f"--csv {args.csv} lacks the feature columns {missing} that the model was trained on "
                        f"(it needs {features})")
    target = args.target or saved.config.get("target")
    if not target:
        raise UserError(f"--target: the checkpoint does not name its target column, so name the column of "
                        f"{args.csv} that holds the targets with --target COLUMN (columns: {', '.join(names)})")
    if target not in names:
        raise UserError(f"--target {target!r} is not a column of {args.csv}; columns: {', '.join(names)}")
    rows = args.rows or 5
    table = table._replace(rows=table.rows[:rows], lines=table.lines[:rows])
    x = numeric_columns(table, features)
    note_unlearned_columns(saved.config, table, x, features)
    if saved.standardizer is not None:
        x = np.asarray(saved.standardizer.apply(x))
    model = saved.model
    classes = saved.config.get("classes")
    if classes and model.loss_name in ("cross_entropy", "logloss"):  # the training data's labels, as trained: 0..k-1
        column = names.index(target)
        as_text = {str(label): index for index, label in enumerate(classes)}
        as_number = {float(label): index for index, label in enumerate(classes) if not isinstance(label, str)}
        ids = []
        for row, line in zip(table.rows, table.lines):
            cell = row[column]
            index = as_text.get(cell)
            if index is None and is_number(cell):
                index = as_number.get(float(cell))
            if index is None:
                raise UserError(f"--csv {args.csv}, line {line}, column {target!r}: {cell!r} is not one of the "
                                f"model's classes ({', '.join(map(str, classes))})")
            ids.append(index)
        y = np.array(ids, np.int32 if model.loss_name == "cross_entropy" else np.float64)
    else:
        y = numeric_columns(table, [target], role="target")[:, 0]
    if model.loss_name == "cross_entropy":
        y = y.astype(np.int32)
    elif model.n_out == 1:
        y = y.reshape(-1, 1)
    else:
        raise UserError(f"--target {target!r} is one column but the model has {model.n_out} outputs")
    try:
        fn.check_data(model, x, y)
    except ValueError as error:
        raise UserError(f"--csv {args.csv}: {error}") from None
    standardised = ", standardised as in training" if saved.standardizer is not None else ""
    return (f"{args.checkpoint} on the first {len(x)} rows of {args.csv}{standardised}; target {target!r}",
            model, saved.params, x, y)


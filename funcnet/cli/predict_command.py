"""``funcnet predict``: a saved model's predictions for the rows of a CSV file."""

from __future__ import annotations

import csv
import io
import sys

from funcnet.cli.checkpoints import load_checkpoint
from funcnet.cli.csv_data import (note_unlearned_columns, numeric_columns, read_table, row_location,
                                  standardize_features)
from funcnet.cli.errors import UserError
from funcnet.cli.interrupts import SIGNALS
from funcnet.cli.output_paths import check_distinct_paths, check_output_path


def _text(label) -> str:
    """A class label as the training CSV had it: text as is, whole numbers without ``.0``."""
    return label if isinstance(label, str) else str(label)


def run_predict(args) -> int:
    """``funcnet predict``: write the saved model's predictions for ``--csv`` as CSV; returns 0.

    Features are found by column name and standardised as in training
    (:func:`~funcnet.cli.csv_data.standardize_features`); classifiers write the
    label, in the training data's own labels (the checkpoint's ``classes``),
    and the probabilities; regressions the outputs.  A column that was constant
    in training and differs here gets one note on stderr
    (:func:`~funcnet.cli.csv_data.note_unlearned_columns`).

    The whole CSV is formatted first and written with one call, after a last
    look for a signal (:mod:`~funcnet.cli.interrupts`): a Ctrl-C or SIGTERM
    before then writes nothing, one during the write lets it finish, so
    ``--out`` is never left half-written.
    """
    import numpy as np

    import funcnet as fn

    if args.out:
        check_distinct_paths([("--out", args.out)], [("--checkpoint", args.checkpoint), ("--csv", args.csv)])
        check_output_path("--out", args.out, example="predictions.csv")
    SIGNALS.check()  # a signal during the imports
    saved = load_checkpoint(args.checkpoint)
    table = SIGNALS.wait_for(read_table, args.csv)  # --csv may be a pipe that never delivers
    features = saved.config.get("features") or [f"x{i}" for i in range(saved.model.sizes[0])]
    missing = [name for name in features if name not in table.names]
    if missing:
        raise UserError(f"{args.csv} lacks the feature columns {missing} that the model was trained on "
                        f"(it needs {features})")
    x = numeric_columns(table, features)
    note_unlearned_columns(saved.config, table, x, features)
    x = standardize_features(saved.standardizer, x, features, row_location(table))
    try:
        outputs = np.asarray(fn.predict(saved.model, saved.params, x))
    except ValueError as error:
        raise UserError(str(error)) from None
    classes = saved.config.get("classes") or None
    if saved.model.output_activation == "softmax":
        names = classes or list(range(outputs.shape[1]))
        header = ["label"] + [f"p_{_text(name)}" for name in names]
        rows = [[_text(names[int(np.argmax(row))]), *map(repr, map(float, row))] for row in outputs]
    elif saved.model.output_activation == "sigmoid":
        names = classes or [0, 1]
        header = ["label", "probability"]
        rows = [[_text(names[int(row[0] > 0.5)]), repr(float(row[0]))] for row in outputs]
    else:
        header = ["prediction"] if outputs.shape[1] == 1 else [f"prediction_{k}" for k in range(outputs.shape[1])]
        rows = [[repr(float(value)) for value in row] for row in outputs]
    text = _csv_text(header, rows)
    SIGNALS.check()  # the last safe point: from here on the output is written whole
    if args.out:
        try:
            with open(args.out, "w", newline="") as handle:
                handle.write(text)
        except OSError as error:
            raise UserError(f"--out {args.out!r}: cannot write ({error.strerror or error})") from None
    else:
        for start in range(0, len(text), 8192):  # in pieces: a reader that goes away mid-way is then noticed
            sys.stdout.write(text[start:start + 8192])
        sys.stdout.flush()
    return 0


def _csv_text(header, rows) -> str:
    """The header and rows as CSV text (``\r\n`` line ends, as Python's csv module writes them)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()

"""``funcnet predict``: a saved model's predictions for the rows of a CSV file."""

from __future__ import annotations

import csv
import sys

from funcnet.cli.checkpoints import load_checkpoint
from funcnet.cli.csv_data import read_csv
from funcnet.cli.errors import UserError


def run_predict(args) -> int:
    """``funcnet predict``: write the saved model's predictions for ``--csv`` as CSV; returns 0.

    Features are found by column name and standardised as in training; classifiers write the
    label and the probabilities, regressions the outputs.
    """
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

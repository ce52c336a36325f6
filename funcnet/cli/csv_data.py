"""The data a ``funcnet train`` run learns from: a built-in dataset or a numeric CSV file."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

from funcnet.cli.errors import UserError

if TYPE_CHECKING:
    import numpy as np


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

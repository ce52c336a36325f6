"""Shared by the tests/test_cli_*.py files: tiny CSV files and in-process `funcnet` runs."""

import numpy as np

from funcnet import cli

FEATURES = ["a", "b", "c"]


def write_csv(path, header, rows):
    """A CSV file with a header row; cells are written with ``str``."""
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    return path


def feature_rows(rows=40, seed=0):
    """``rows`` rows of 3 standard-normal features, rounded to 4 digits (exact in the CSV)."""
    return np.round(np.random.default_rng(seed).normal(size=(rows, 3)), 4)


def labelled_csv(path, labels, rows=40, seed=0):
    """Features a, b, c and a ``label`` column: ``labels[i % len(labels)]``, set by the sign of a + b."""
    x = feature_rows(rows, seed)
    order = np.argsort(x[:, 0] + x[:, 1])  # label grows with a + b: learnable, every label present
    column = [None] * rows
    for rank, row in enumerate(order):
        column[row] = labels[rank * len(labels) // rows]
    return write_csv(path, [*FEATURES, "label"], [[*row, label] for row, label in zip(x.tolist(), column)])


def regression_csv(path, rows=40, seed=0):
    """Features a, b, c and ``y = a - 2b + c/2`` (4 digits)."""
    x = feature_rows(rows, seed)
    y = np.round(x @ np.array([1.0, -2.0, 0.5]), 4)
    return write_csv(path, [*FEATURES, "y"], [[*row, target] for row, target in zip(x.tolist(), y.tolist())])


def run(capsys, *argv):
    """``funcnet ARGV`` in-process (``train`` without the persistent cache): ``(status, stdout, stderr)``."""
    argv = [str(arg) for arg in argv]
    if argv[0] == "train":
        argv.append("--no-cache")
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err

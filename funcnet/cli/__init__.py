"""The ``funcnet`` command: train, predict, gradcheck and explain from a shell.

    funcnet train --data regression --save model.npz --plot curve.png
    funcnet train --csv houses.csv --target price --layers 32,32 --epochs 50
    funcnet predict --checkpoint model.npz --csv new.csv --out predictions.csv
    funcnet gradcheck --checkpoint model.npz
    funcnet explain --example article

Exit codes: 0 done, 2 bad arguments or data (or an output that could not be
written), 3 training diverged (NaN/inf), 130 interrupted with Ctrl-C, 141 the
reader of the output went away (``funcnet predict ... | head``), quietly.

One module per job: :mod:`~funcnet.cli.parser` (the options),
:mod:`~funcnet.cli.csv_data` (datasets and CSV files), :mod:`~funcnet.cli.train_command`,
:mod:`~funcnet.cli.predict_command`, :mod:`~funcnet.cli.gradcheck_command`,
:mod:`~funcnet.cli.explain_command`, and
:mod:`~funcnet.cli.checkpoints`. JAX and NumPy are imported inside the commands, so
``funcnet --help`` starts fast.
"""

from __future__ import annotations

import os
import sys

from funcnet.cli.errors import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_DIVERGED, EXIT_INTERRUPTED, UserError
from funcnet.cli.explain_command import run_explain
from funcnet.cli.gradcheck_command import run_gradcheck
from funcnet.cli.parser import build_parser
from funcnet.cli.predict_command import run_predict
from funcnet.cli.train_command import run_train

__all__ = ["EXIT_BAD_INPUT", "EXIT_BROKEN_PIPE", "EXIT_DIVERGED", "EXIT_INTERRUPTED", "UserError", "main"]


def main(argv=None) -> int:
    """Entry point of the ``funcnet`` console script and ``python -m funcnet``; returns the exit status.

    Usage errors return argparse's status 2 (and ``--help`` 0) instead of
    raising ``SystemExit``, so ``main`` can be called in-process.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else EXIT_BAD_INPUT
    try:
        return {"train": run_train, "predict": run_predict, "gradcheck": run_gradcheck,
                "explain": run_explain}[args.command](args)
    except UserError as error:
        print(f"funcnet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as error:  # the library's input checks
        print(f"funcnet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # train defers Ctrl-C once training starts; this is start-up
        done = "before training started; nothing saved" if args.command == "train" else "(Ctrl-C)"
        print(f"funcnet {args.command}: interrupted {done}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `funcnet predict ... | head`: the reader has gone, end quietly
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (e.g. captured in-process)
        pass

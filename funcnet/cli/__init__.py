"""The ``funcnet`` command: train, predict, gradcheck and explain from a shell.

    funcnet train --data regression --save model.npz --plot curve.png
    funcnet train --csv houses.csv --target price --layers 32,32 --epochs 50
    funcnet predict --checkpoint model.npz --csv new.csv --out predictions.csv
    funcnet gradcheck --checkpoint model.npz
    funcnet explain --example article

Exit codes: 0 done, 2 bad arguments or data (or an output that could not be
written), 3 training diverged (NaN/inf), 130 interrupted with Ctrl-C (SIGINT),
143 stopped by SIGTERM, 129 by SIGHUP (the terminal or ssh session closed;
left alone under ``nohup``), 141 the reader of the output went away
(``funcnet predict ... | head``), quietly.  A signal is acted on at the next
safe point (:mod:`~funcnet.cli.interrupts`): ``train`` saves its last whole
epoch with ``--save``; no command leaves an output half-written.

One module per job: :mod:`~funcnet.cli.parser` (the options),
:mod:`~funcnet.cli.csv_data` (datasets and CSV files), :mod:`~funcnet.cli.train_command`,
:mod:`~funcnet.cli.predict_command`, :mod:`~funcnet.cli.gradcheck_command`,
:mod:`~funcnet.cli.explain_command`, and
:mod:`~funcnet.cli.checkpoints`. The commands, JAX and NumPy are imported only when a
command runs (``import funcnet`` itself imports no JAX), so ``funcnet --help``
starts fast.
"""

from __future__ import annotations

import os
import sys

from funcnet.cli.errors import (EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_DIVERGED, EXIT_HANGUP, EXIT_INTERRUPTED,
                                EXIT_TERMINATED, UserError)
from funcnet.cli.interrupts import SIGNALS, Interrupted, signal_name

__all__ = ["EXIT_BAD_INPUT", "EXIT_BROKEN_PIPE", "EXIT_DIVERGED", "EXIT_HANGUP", "EXIT_INTERRUPTED",
           "EXIT_TERMINATED", "UserError", "main"]

# The end of the one-line message of a signal acted on before a command's work was done.
INTERRUPTED_BEFORE = {"train": " before training started; nothing saved",
                      "predict": " before the predictions were written; nothing written",
                      "gradcheck": " before the table was printed",
                      "explain": " before the trace was printed"}


def main(argv=None) -> int:
    """Entry point of the ``funcnet`` console script and ``python -m funcnet``; returns the exit status.

    Usage errors return argparse's status 2 (and ``--help`` 0) instead of
    raising ``SystemExit``, so ``main`` can be called in-process.  SIGINT,
    SIGTERM and SIGHUP are recorded while it runs (:data:`~funcnet.cli.interrupts.SIGNALS`)
    and end the command at its next safe point with status 130, 143 or 129 and
    one line on stderr; one that comes after the command's work is done still
    ends it with that status.
    """
    from funcnet.cli.parser import build_parser

    with SIGNALS.recording():
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as stop:
            return stop.code if isinstance(stop.code, int) else EXIT_BAD_INPUT
        status = _run(args)
        if status == 0 and SIGNALS.received is not None:  # too late to stop anything: say so, in the status too
            print(f"funcnet {args.command}: interrupted by {signal_name(SIGNALS.received)} as it finished; "
                  "its output is complete", file=sys.stderr)
            return 128 + SIGNALS.received
        return status


def _run(args) -> int:
    """Run the parsed command; its errors, signals and a closed pipe become an exit status and one line."""
    try:
        SIGNALS.check(INTERRUPTED_BEFORE[args.command])
        if args.command == "train":
            from funcnet.cli.train_command import run_train as run
        elif args.command == "predict":
            from funcnet.cli.predict_command import run_predict as run
        elif args.command == "gradcheck":
            from funcnet.cli.gradcheck_command import run_gradcheck as run
        else:
            from funcnet.cli.explain_command import run_explain as run
        return run(args)
    except UserError as error:
        print(f"funcnet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as error:  # the library's input checks
        print(f"funcnet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Interrupted as stop:
        print(f"funcnet {args.command}: {stop}{'' if stop.detail else INTERRUPTED_BEFORE[args.command]}",
              file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:  # SIGINT raised by a handler not ours (a host program's, or outside the main thread)
        print(f"funcnet {args.command}: interrupted by Ctrl-C (SIGINT){INTERRUPTED_BEFORE[args.command]}",
              file=sys.stderr)
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

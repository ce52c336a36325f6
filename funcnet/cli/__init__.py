"""The ``funcnet`` command: train, predict, gradcheck and explain from a shell.

    funcnet train --data regression --save model.npz --plot curve.png
    funcnet train --csv houses.csv --target price --layers 32,32 --epochs 50
    funcnet predict --checkpoint model.npz --csv new.csv --out predictions.csv
    funcnet gradcheck --checkpoint model.npz
    funcnet explain --example article

Exit codes: 0 done, 2 bad arguments or data, 3 training diverged (NaN/inf),
130 interrupted with Ctrl-C.

One module per job: :mod:`~funcnet.cli.parser` (the options),
:mod:`~funcnet.cli.csv_data` (datasets and CSV files), :mod:`~funcnet.cli.train_command`,
:mod:`~funcnet.cli.predict_command`, :mod:`~funcnet.cli.gradcheck_command`,
:mod:`~funcnet.cli.explain_command`, and
:mod:`~funcnet.cli.checkpoints`. JAX and NumPy are imported inside the commands, so
``funcnet --help`` starts fast.
"""

from __future__ import annotations

import sys

from funcnet.cli.errors import EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED, UserError
from funcnet.cli.explain_command import run_explain
from funcnet.cli.gradcheck_command import run_gradcheck
from funcnet.cli.parser import build_parser
from funcnet.cli.predict_command import run_predict
from funcnet.cli.train_command import run_train

__all__ = ["EXIT_BAD_INPUT", "EXIT_DIVERGED", "EXIT_INTERRUPTED", "UserError", "main"]


def main(argv=None) -> int:
    """Entry point of the ``funcnet`` console script and ``python -m funcnet``."""
    args = build_parser().parse_args(argv)
    try:
        return {"train": run_train, "predict": run_predict, "gradcheck": run_gradcheck,
                "explain": run_explain}[args.command](args)
    except UserError as error:
        print(f"funcnet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as error:  # the library's input checks
        print(f"funcnet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

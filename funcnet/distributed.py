"""Deprecated: the multi-process launcher moved to :mod:`funcnet.cli.distributed`.

``python -m funcnet.distributed`` and ``from funcnet.distributed import ...``
keep working for one minor release, with a ``DeprecationWarning`` naming the
new place: ``python -m funcnet.cli.distributed``.
"""

import sys
import warnings

from funcnet.cli.distributed import build_parser, local_rows, main, regression_problem  # noqa: F401

warnings.warn("funcnet.distributed moved to funcnet.cli.distributed (python -m funcnet.cli.distributed); "
              "the old name will be removed in the next minor release", DeprecationWarning, stacklevel=2)

if __name__ == "__main__":  # Python's default filter hides a DeprecationWarning raised by runpy: say it here
    print("note: python -m funcnet.distributed moved to python -m funcnet.cli.distributed; the old name will be "
          "removed in the next minor release", file=sys.stderr, flush=True)
    raise SystemExit(main())

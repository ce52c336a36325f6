"""``python -m funcnet.cli``: the same as ``python -m funcnet``."""

import sys

from funcnet.cli import main

sys.exit(main())

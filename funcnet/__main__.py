"""``python -m funcnet``: the command line (see funcnet.cli)."""

import sys

from funcnet.cli import main

sys.exit(main())

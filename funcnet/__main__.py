"""``python -m funcnet``: the command line (see funcnet.cli), through the console script's entry point,
which records SIGINT and SIGTERM from its first line (see funcnet.cli.interrupts)."""

import sys

from funcnet_console import main

sys.exit(main())

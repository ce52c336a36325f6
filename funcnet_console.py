"""The ``funcnet`` console script's entry point, kept outside the ``funcnet`` package on purpose.

``import funcnet`` imports JAX, which takes a second or two.  A Ctrl-C in that
time is a Ctrl-C during start-up like any other (exit 130, one line, no
traceback), and only code that runs before ``import funcnet`` can catch it;
code inside the package runs after its ``__init__`` has imported JAX.
"""

import sys

EXIT_INTERRUPTED = 130


def main() -> int:
    """Import the command line, then run it; a Ctrl-C during the import exits 130 with one line."""
    try:
        from funcnet.cli import main as run_command
    except KeyboardInterrupt:
        command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
        print(f"funcnet{' ' + command if command else ''}: interrupted during start-up; nothing saved",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return run_command()

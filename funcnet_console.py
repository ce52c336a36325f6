"""The ``funcnet`` console script's entry point (``python -m funcnet`` runs it too).

Its first act is to make SIGINT, SIGTERM and SIGHUP only *record* themselves
(:mod:`funcnet.cli.interrupts`), before anything slow is imported: from then
on, a Ctrl-C, SIGTERM or SIGHUP at any moment, during the imports of JAX
included, ends the command at its next safe point with status 130, 143 or 129
and one line on stderr (SIGHUP where it is not ignored, as ``nohup`` does).
``import funcnet`` and ``funcnet.cli`` import no JAX, so that takes a few
milliseconds; a Ctrl-C within them (before the handler is in place)
still exits 130 with one line.
"""

import sys

EXIT_INTERRUPTED = 130


def main() -> int:
    """Record signals, then run the command line; returns the exit status."""
    try:
        from funcnet.cli.interrupts import SIGNALS  # the standard library only

        SIGNALS.install()
        from funcnet.cli import main as run_command
    except KeyboardInterrupt:  # Python's own SIGINT handler, before ours was installed
        command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
        print(f"funcnet{' ' + command if command else ''}: interrupted by Ctrl-C (SIGINT) during start-up; "
              "nothing saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    status = run_command()
    SIGNALS.ignore()  # the status is decided: a signal while the interpreter shuts down must not kill it now
    return status

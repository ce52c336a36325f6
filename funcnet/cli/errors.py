"""What the ``funcnet`` command reports without a traceback, and its exit codes."""

EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 3, 130, 141
EXIT_TERMINATED = 143  # SIGTERM; a signal's status is 128 + its number (funcnet.cli.interrupts)
EXIT_HANGUP = 129  # SIGHUP: the terminal or ssh session was closed


class UserError(Exception):
    """A problem with the command line or the data, reported without a traceback."""

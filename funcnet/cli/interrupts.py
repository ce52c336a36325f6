"""Ctrl-C during ``funcnet train``: deferred to the end of the compiled call that is running.

A KeyboardInterrupt raised while XLA compiles or runs (JAX's tracing and
compilation call back into Python) can leave the runtime half-way and crash the
process — a segfault in 5 of 6 tries during the first epoch's compilation.  So
while :class:`DeferredInterrupt` is active, SIGINT only sets
``interrupt.requested``: training stops at the next epoch boundary (``fit``'s
callback returns True), the last completed epoch is saved, and the command
exits with 130.  Nothing is ever interrupted half-way, and what is saved is
always a whole epoch that ``--resume`` continues exactly.  The cost: a Ctrl-C
takes effect only when the epoch in progress (with its compilation, the first
time) has finished.
"""

from __future__ import annotations

import signal
import sys
import threading


class DeferredInterrupt:
    """A context manager: SIGINT sets ``requested`` instead of raising KeyboardInterrupt.

    ``notify`` (a message) is printed to stderr at the first Ctrl-C once
    ``announce`` is True (during training), so the user knows it was heard.
    Outside the main thread, or where SIGINT is not Python's default handler
    (ignored by the shell, or a host program's own), nothing is installed.
    """

    def __init__(self, notify: str = ""):
        self.requested = False
        self.announce = False
        self.notify = notify
        self._previous = None

    def _handler(self, signum, frame):
        if not self.requested and self.announce and self.notify:
            print(self.notify, file=sys.stderr, flush=True)
        self.requested = True

    def __enter__(self) -> "DeferredInterrupt":
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def raise_if_requested(self) -> None:
        """At a safe point before training: turn a deferred Ctrl-C into KeyboardInterrupt."""
        if self.requested:
            raise KeyboardInterrupt

"""Ctrl-C (SIGINT), SIGTERM and SIGHUP in the ``funcnet`` command: recorded when they come, acted on at safe points.

A signal handler that raises can fire between any two Python operations.
Python's default for SIGINT raises KeyboardInterrupt there: inside JAX's
tracing and compilation, which call back into Python, it can leave XLA
half-way and crash the process (``gradcheck`` segfaulted, as did ``train``
during its first compile); inside a garbage-collection callback it is printed
as "Exception ignored in ..." and lost, so the run went on to the end and
exited 0; inside an import it left a half-initialised module and a raw
ImportError traceback.  SIGTERM's default (sent by schedulers, ``timeout`` and
container runtimes) ends the process at once, losing every finished epoch, and
so does SIGHUP's (sent when the terminal or the ssh session is closed).

So from the console script's first line (``funcnet_console.main``, also
behind ``python -m funcnet``) until the process ends, these signals only
*record* themselves in :data:`SIGNALS` (:meth:`SignalRecorder.install`;
``funcnet.cli.main`` installs it for the duration of a command when called
in-process).  The commands look at the record at safe points: after their
imports, between phases, before writing any output (:meth:`SignalRecorder.check`
raises :class:`Interrupted` there), and ``funcnet train`` between epochs,
where it stops and saves the last whole epoch.  The command then exits with
``128 + the signal's number`` (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP)
and one line on stderr that names the signal.  A signal whose handler is not
Python's default is left alone: SIGINT in a background job, SIGHUP under
``nohup`` (both ignored), or one a host program handles.  After SIGHUP, standard
output and error that went to the terminal that hung up (a write there fails
with ``EIO``) are pointed at ``/dev/null``, so the run can still save.  Nothing is interrupted half-way and no output
is half-written.  The cost: a signal takes effect at the next safe point
(during training: when the epoch in progress, with its compilation the first
time, has finished).

The one exception is waiting for input: during :meth:`SignalRecorder.wait_for`
(reading a CSV file, which may be a pipe or a FIFO that never delivers) the
handler raises :class:`Interrupted` at once; the reader is plain Python and
safe to leave anywhere.

This module imports nothing but the standard library, so that it can be
installed before anything slow is imported.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
from typing import Callable, TypeVar

# The signals recorded, each with the handler that must be in place for us to take it over: Python's
# own default.  A signal ignored (SIGINT in a background job, SIGHUP under nohup) or handled by a host
# program is left alone.  SIGHUP does not exist on Windows.
RECORDED = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL,
            **({signal.SIGHUP: signal.SIG_DFL} if hasattr(signal, "SIGHUP") else {})}
T = TypeVar("T")
WAIT_SLICE = 0.05  # seconds: how soon a signal ends a wait on input, whichever thread the kernel gave it to
SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


def signal_name(signum: int) -> str:
    """How messages name a signal: ``"Ctrl-C (SIGINT)"``, ``"SIGTERM"``, ``"SIGHUP"``."""
    return SIGNAL_NAMES.get(signum) or signal.Signals(signum).name


def exit_status(signum: int) -> int:
    """The shell's convention for a process ended by a signal: ``128 + signum`` (130 SIGINT, 143 SIGTERM,
    129 SIGHUP)."""
    return 128 + signum


def silence_hung_up_outputs() -> None:
    """Point standard output and error at ``/dev/null`` where they went to a terminal that has hung up.

    After a hang-up every write to that terminal fails with ``EIO`` (which a
    zero-length write shows without writing anything); an epoch's report line
    would then raise and end the run before it saved.  Other outputs (files,
    pipes, a terminal still open) are left as they are.
    """
    for descriptor in (1, 2):
        try:
            os.write(descriptor, b"")
        except OSError as error:
            if error.errno == errno.EIO:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, descriptor)
                os.close(devnull)


class Interrupted(Exception):
    """A recorded signal, raised at a safe point; ``detail`` ends the one-line message (e.g. what was saved)."""

    def __init__(self, signum: int, detail: str = ""):
        super().__init__(f"interrupted by {signal_name(signum)}{detail}")
        self.signum, self.detail = signum, detail

    @property
    def exit_status(self) -> int:
        return exit_status(self.signum)


def _say(text: str) -> None:
    """One line on stderr from a signal handler, which may run while the main thread is writing to stderr."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (RuntimeError, OSError, ValueError):  # a reentrant write into stderr's buffer, or no stderr
        try:
            os.write(2, (text + "\n").encode())
        except OSError:
            pass


class SignalRecorder:
    """SIGINT, SIGTERM and SIGHUP handlers that record the first signal in ``received`` and never raise.

    ``notify`` (a format string with ``{signal}``), when set, is printed to
    stderr at the first signal, so that the user knows it was heard;
    ``notified`` says whether it was.  During :meth:`wait_for` a signal raises
    :class:`Interrupted` instead.  SIGHUP also calls :func:`silence_hung_up_outputs`.
    """

    def __init__(self):
        self.received: int | None = None
        self.notify = ""
        self.notified = False
        self._previous: dict = {}
        self._raise_at_once = False

    @property
    def requested(self) -> bool:
        """Whether a signal has been received."""
        return self.received is not None

    def _handler(self, signum, frame) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            silence_hung_up_outputs()
        if self.received is None:
            self.received = signum
            if self.notify and not self._raise_at_once:
                self.notified = True
                _say(self.notify.format(signal=signal_name(signum)))
        if self._raise_at_once:
            self._raise_at_once = False
            raise Interrupted(self.received)

    def install(self) -> bool:
        """Take over SIGINT, SIGTERM and SIGHUP where Python's defaults are in place; True when this call did.

        Nothing happens outside the main thread (Python runs handlers only
        there), or when this recorder is installed already.  A fresh install
        forgets an earlier signal.
        """
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return False
        for signum, default in RECORDED.items():
            if signal.getsignal(signum) is default:
                self._previous[signum] = signal.signal(signum, self._handler)
        if self._previous:
            self.received, self.notify, self.notified = None, "", False
        return bool(self._previous)

    def uninstall(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def ignore(self) -> None:
        """Ignore the signals this recorder took over, from now on: for the end of the process, once its exit
        status is decided (Python's shutdown puts its default handlers back, and a signal then would kill it)."""
        for signum in self._previous:
            signal.signal(signum, signal.SIG_IGN)

    @contextlib.contextmanager
    def recording(self):
        """Record signals inside the block; the handlers are put back at its end if this block installed them."""
        installed = self.install()
        try:
            yield self
        finally:
            if installed:
                self.uninstall()

    def wait_for(self, read: Callable[..., T], *args) -> T:
        """``read(*args)``, a wait on input (a pipe or FIFO that may never deliver), that a signal ends at once.

        A signal interrupts a blocking read only in the thread the kernel
        delivers it to, which may be one of XLA's threads rather than the main
        one: a read in the main thread could then wait forever.  So ``read``
        runs in a daemon thread, and the main thread waits for it in slices of
        :data:`WAIT_SLICE` seconds; a pending handler runs at the end of each
        and raises :class:`Interrupted` (the reader is abandoned: it is plain
        Python, safe to leave anywhere).  ``read``'s exception is raised here.
        """
        self.check()
        outcome: dict = {}

        def run():
            try:
                outcome["value"] = read(*args)
            except BaseException as error:  # raised in the main thread below
                outcome["error"] = error

        reader = threading.Thread(target=run, name="funcnet-input", daemon=True)
        self._raise_at_once = True
        try:
            reader.start()
            while reader.is_alive():
                reader.join(WAIT_SLICE)
        finally:
            self._raise_at_once = False
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def check(self, detail: str = "") -> None:
        """At a safe point: raise :class:`Interrupted` (with ``detail``) if a signal was received."""
        if self.received is not None:
            raise Interrupted(self.received, detail)


SIGNALS = SignalRecorder()

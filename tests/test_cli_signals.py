"""Ctrl-C (SIGINT), SIGTERM and SIGHUP in every command, at start-up and mid-work; ``predict | head``; no JAX
for --help.

The real-process tests run ``python -m funcnet`` (the console script's entry
point) through a launcher that resets SIGINT to its default before ``exec``:
a test runner started in the background by a non-interactive shell inherits
SIGINT *ignored*, and the child would then never see Ctrl-C.  They run the
working tree's funcnet (PYTHONPATH), not an installed copy.  Instead of
sleeping a fixed time they wait for a marker: a line on stdout, a reader on a
FIFO, or the child's handler for SIGTERM in ``/proc/PID/status`` (caught only
once funcnet records signals: the start of start-up).  The in-process tests
deliver a signal at one exact safe point by calling the recorder's handler,
which is what Python does when the signal arrives.
"""

import ast
import errno
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import funcnet as fn
from cli_helpers import regression_csv, write_csv
from funcnet.cli import EXIT_HANGUP, interrupts
from funcnet.cli.interrupts import SIGNALS, Interrupted, SignalRecorder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINT = os.path.join(ROOT, "tests", "fixtures", "v1_cli_regression.npz")  # features a, b, c
# A command started from a terminal: every signal the CLI handles at its default disposition, whatever this
# process inherited (pytest under nohup ignores SIGHUP, and funcnet rightly leaves an ignored SIGHUP alone).
LAUNCH = ("import os, signal, sys\n"
          "for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(signum, signal.SIG_DFL)\n"
          "os.execv(sys.executable, [sys.executable, '-m', 'funcnet', *sys.argv[1:]])")
NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
NOTICE = "{}: stopping when the epoch in progress has finished (the first one compiles), then saving\n"
on_linux = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the start-up marker reads /proc")


def start(tmp_path, *argv):
    env = dict(os.environ, JAX_PLATFORMS="cpu", FUNCNET_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", LAUNCH, *map(str, argv)], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process, timeout=180):
    """``(status, stdout, stderr)`` of a child that was signalled; killed if it hangs."""
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        process.kill()
    return process.returncode, out, err


def proc_status(process) -> dict:
    """The child's ``/proc/PID/status`` as ``{field: first value}`` (empty once it has gone)."""
    try:
        with open(f"/proc/{process.pid}/status") as status:
            return dict((line.split(":")[0], line.split()[1]) for line in status if len(line.split()) > 1)
    except OSError:
        return {}


def wait_for_status(process, ready, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the process ended before {what}"
        if ready(proc_status(process)):
            return
        time.sleep(0.005)
    raise AssertionError(f"the process never reached: {what}")


def wait_until_recording(process):
    """Wait until the child catches SIGTERM: funcnet's recorder is installed and start-up has begun."""
    wait_for_status(process, lambda status: int(status.get("SigCgt", "0"), 16) & (1 << (signal.SIGTERM - 1)),
                    "funcnet recorded signals")


def wait_until_xla_runs(process):
    """Wait until XLA's thread pools exist (1 thread at start-up, 2 after importing JAX, 10+ then)."""
    wait_for_status(process, lambda status: int(status.get("Threads", "0")) > 4, "XLA started its threads")


def open_fifo_writer(process, fifo, timeout=120):
    """Open ``fifo`` for writing once the child has opened it for reading (it then waits for data)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            assert error.errno == errno.ENXIO and process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)


def assert_one_clean_line(status, err, signum):
    assert status == 128 + signum, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "Exception ignored" not in err


# ----------------------------------------------------------------------------- import cost


def test_import_funcnet_and_help_import_no_jax_and_every_public_name_resolves():
    script = ("import sys, funcnet, funcnet.cli\n"
              "assert funcnet.cli.main(['--help']) == 0\n"
              "assert 'jax' not in sys.modules, 'import funcnet or funcnet --help imported jax'\n"
              "names = {}\n"
              "exec('from funcnet import *', names)\n"
              "missing = [name for name in funcnet.__all__\n"
              "           if name not in names or getattr(funcnet, name) is not names[name]]\n"
              "assert not missing, missing\n"
              "import funcnet.layer_stats\n"  # the submodule of that name must not hide the function
              "assert callable(funcnet.layer_stats) and funcnet.layer_stats.__module__ == 'funcnet.layer_stats'\n"
              "assert funcnet.engine.__name__ == 'funcnet.engine' and set(funcnet.__all__) <= set(dir(funcnet))\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                               env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "usage: funcnet" in completed.stdout


def test_console_script_help_imports_no_jax():
    completed = subprocess.run([sys.executable, "-X", "importtime", "-m", "funcnet", "--help"], capture_output=True,
                               text=True, cwd=ROOT, timeout=120)
    assert completed.returncode == 0 and "usage: funcnet" in completed.stdout, completed.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if "|" in line]
    assert "funcnet_console" in imported and not [name for name in imported if name.split(".")[0] == "jax"]


def test_every_public_name_resolves_and_an_unknown_one_is_an_attribute_error():
    assert all(getattr(fn, name) is not None for name in fn.__all__)
    assert set(fn._EXPORTS) == set(fn.__all__)
    with open(fn.__file__) as source:  # what type checkers read says the same as the lazy table
        checked = next(node for node in ast.parse(source.read()).body if isinstance(node, ast.If))
    assert {alias.name: node.module for node in checked.body for alias in node.names} == {
        name: f"funcnet.{module}" for name, module in fn._EXPORTS.items()}
    with pytest.raises(AttributeError, match="module 'funcnet' has no attribute 'no_such_name'"):
        fn.no_such_name


# ----------------------------------------------------------------------------- real processes, start-up


@on_linux
@pytest.mark.parametrize("command, signum, delay", [
    ("train", signal.SIGINT, 0.0),
    ("train", signal.SIGTERM, 0.2),
    ("explain", signal.SIGTERM, 0.0),
    ("train", signal.SIGHUP, 0.1),
])
def test_a_signal_during_start_up_exits_with_one_line(tmp_path, command, signum, delay):
    argv = (["train", "--data", "xor", "--epochs", "3", "--save", "m.npz", "--no-cache"] if command == "train"
            else ["explain", "--example", "xor"])
    process = start(tmp_path, *argv)
    wait_until_recording(process)  # the imports of JAX (a second or more) are still to come
    time.sleep(delay)
    process.send_signal(signum)
    status, out, err = finish(process)
    assert_one_clean_line(status, err, signum)
    before = "before training started; nothing saved" if command == "train" else "before the trace was printed"
    assert err == f"funcnet {command}: interrupted by {NAMES[signum]} {before}\n"
    assert out == "" and not (tmp_path / "m.npz").exists()


def test_ctrl_c_while_train_waits_for_its_csv_exits_at_once(tmp_path):
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)  # the child blocks reading its data here, and must not wait for it after Ctrl-C
    process = start(tmp_path, "train", "--csv", fifo, "--target", "y", "--layers", "4", "--save", "m.npz",
                    "--no-cache")
    writer = open_fifo_writer(process, fifo)
    try:
        process.send_signal(signal.SIGINT)
        status, out, err = finish(process)
    finally:
        os.close(writer)
    assert_one_clean_line(status, err, signal.SIGINT)
    assert err == "funcnet train: interrupted by Ctrl-C (SIGINT) before training started; nothing saved\n"
    assert "epoch" not in out and not (tmp_path / "m.npz").exists()


# ----------------------------------------------------------------------------- real processes, mid-work


def test_ctrl_c_while_the_first_epoch_compiles_saves_that_epoch(tmp_path):
    process = start(tmp_path, "train", "--data", "xor", "--save", "m.npz", "--no-cache")
    try:
        header = process.stdout.readline()
        assert header.startswith("training "), header + process.stderr.read()
        process.send_signal(signal.SIGINT)  # fit starts right after the header: its first epoch compiles
    finally:
        status, out, err = finish(process)
    assert_one_clean_line(status, err, signal.SIGINT)
    assert err == NOTICE.format("Ctrl-C (SIGINT)")
    assert "interrupted: saved the state after epoch 1 to m.npz; continue with: funcnet train --resume m.npz" in out
    assert len(fn.load(tmp_path / "m.npz").history["train_loss"]) == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_mid_training_saves_the_last_whole_epoch_and_exits_143_or_129(tmp_path, signum):
    process = start(tmp_path, "train", "--data", "xor", "--epochs", "100000", "--save", "m.npz", "--no-cache")
    try:
        line = ""
        while not line.startswith("epoch 3/"):
            line = process.stdout.readline()
            assert line, process.stderr.read()
        process.send_signal(signum)
    finally:
        status, out, err = finish(process)
    assert_one_clean_line(status, err, signum)
    assert err == NOTICE.format(NAMES[signum])
    epochs = int(out.split("saved the state after epoch ")[1].split()[0])
    assert epochs >= 3 and f"continue with: funcnet train --resume m.npz" in out
    saved = fn.load(tmp_path / "m.npz")
    assert len(saved.history["train_loss"]) == epochs
    assert np.asarray(fn.predict(saved.model, saved.params, np.zeros((1, 2), np.float32))).shape == (1, 1)


@pytest.mark.parametrize("signum, when", [(signal.SIGINT, "waiting for --csv"), (signal.SIGTERM, "predicting")])
def test_a_signal_during_predict_writes_nothing(tmp_path, signum, when):
    rows = np.round(np.random.default_rng(0).normal(size=(2000, 3)), 3)
    data = write_csv(tmp_path / "x.csv", ["a", "b", "c"], rows.tolist()).read_bytes()
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    process = start(tmp_path, "predict", "--checkpoint", CHECKPOINT, "--csv", fifo, "--out", "p.csv")
    writer = open_fifo_writer(process, fifo)
    try:
        if when == "predicting":  # all rows, then the signal: it lands while they are parsed and predicted
            os.write(writer, data)
            os.close(writer)
            writer = None
        process.send_signal(signum)
        status, out, err = finish(process)
    finally:
        if writer is not None:
            os.close(writer)
    assert_one_clean_line(status, err, signum)
    assert err == (f"funcnet predict: interrupted by {NAMES[signum]} before the predictions were written; "
                   "nothing written\n")
    assert out == "" and not (tmp_path / "p.csv").exists()


@on_linux
def test_gradcheck_under_a_storm_of_ctrl_c_exits_130_with_one_line(tmp_path):
    """Ctrl-C every 50 ms from the moment XLA starts to the end: tracing, compiling and running (it crashed)."""
    process = start(tmp_path, "gradcheck", "--data", "regression", "--batch", "64")
    wait_until_xla_runs(process)
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline:
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
    status, out, err = finish(process)
    assert_one_clean_line(status, err, signal.SIGINT)  # a crash would be status -11
    assert err == "funcnet gradcheck: interrupted by Ctrl-C (SIGINT) before the table was printed\n"
    assert out == ""


def test_predict_into_a_pipe_closed_early_ends_quietly(tmp_path):
    rows = np.round(np.random.default_rng(0).normal(size=(20_000, 3)), 3)  # ~400 kB of output: more than a pipe holds
    write_csv(tmp_path / "x.csv", ["a", "b", "c"], rows.tolist())
    process = start(tmp_path, "predict", "--checkpoint", CHECKPOINT, "--csv", "x.csv")
    try:
        assert process.stdout.readline() == "prediction\n"
        process.stdout.close()  # like `| head -1`
        err = process.stderr.read()
        process.wait(timeout=120)
    finally:
        process.kill()
    assert err == "" and process.returncode == 141


# ----------------------------------------------------------------------------- in process, at each safe point


@pytest.fixture
def deliver():
    """``deliver(signum)``: what Python does when the signal arrives and funcnet records it."""
    yield lambda signum: SIGNALS._handler(signum, None)
    SIGNALS.received, SIGNALS.notify, SIGNALS.notified = None, "", False


def test_sigterm_after_an_epoch_in_process_saves_it(cli_run, tmp_path, monkeypatch, deliver):
    fit = fn.fitting.fit

    def fit_with_sigterm(*args, callback, **kwargs):
        def on_epoch(epoch, *state):
            if epoch == 1:
                deliver(signal.SIGTERM)
            return callback(epoch, *state)
        return fit(*args, callback=on_epoch, **kwargs)

    monkeypatch.setattr(fn.fitting, "fit", fit_with_sigterm)
    result = cli_run("train", "--data", "xor", "--epochs", "50", "--save", "m.npz", expect=143)
    assert result.stderr == NOTICE.format("SIGTERM")
    assert "interrupted: saved the state after epoch 2 to m.npz" in result.stdout
    assert len(fn.load(tmp_path / "m.npz").history["train_loss"]) == 2


def test_a_signal_after_the_last_epoch_saves_the_run_and_skips_the_plots(cli_run, tmp_path, monkeypatch, deliver):
    from funcnet.cli import train_command

    print_summary = train_command._print_summary

    def summary_then_ctrl_c(*args):
        print_summary(*args)
        deliver(signal.SIGINT)

    monkeypatch.setattr(train_command, "_print_summary", summary_then_ctrl_c)
    result = cli_run("train", "--data", "xor", "--epochs", "3", "--save", "m.npz", "--plot", "c.png", expect=130)
    assert result.stderr == ("funcnet train: interrupted by Ctrl-C (SIGINT) after the last epoch; the finished run "
                             "is saved in m.npz; plots not written\n")
    assert len(fn.load(tmp_path / "m.npz").history["train_loss"]) == 3 and not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("out", ["p.csv", None])
def test_a_signal_while_predicting_in_process_writes_nothing(cli_run, tmp_path, monkeypatch, deliver, out):
    regression_csv(tmp_path / "x.csv")
    predict = fn.predict

    def predict_then_sigterm(*args, **kwargs):
        outputs = predict(*args, **kwargs)
        deliver(signal.SIGTERM)
        return outputs

    monkeypatch.setattr(fn, "predict", predict_then_sigterm)
    result = cli_run("predict", "--checkpoint", CHECKPOINT, "--csv", "x.csv", *(["--out", out] if out else []),
                     expect=143)
    assert result.stderr == ("funcnet predict: interrupted by SIGTERM before the predictions were written; "
                             "nothing written\n")
    assert result.stdout == "" and not (tmp_path / "p.csv").exists()


def test_a_signal_after_the_work_is_done_still_exits_with_its_status(cli_run, monkeypatch, deliver):
    from funcnet.cli import gradcheck_command

    monkeypatch.setattr(gradcheck_command, "run_gradcheck", lambda args: deliver(signal.SIGTERM) or 0)
    result = cli_run("gradcheck", expect=143)
    assert result.stderr == "funcnet gradcheck: interrupted by SIGTERM as it finished; its output is complete\n"


def test_a_signal_while_explain_traces_prints_nothing(cli_run, monkeypatch, deliver):
    from funcnet import trace

    trace_backprop = trace.trace_backprop
    monkeypatch.setattr(trace, "trace_backprop", lambda *a, **k: (trace_backprop(*a, **k), deliver(signal.SIGINT))[0])
    result = cli_run("explain", "--example", "article", expect=130)
    assert result.stderr == "funcnet explain: interrupted by Ctrl-C (SIGINT) before the trace was printed\n"
    assert result.stdout == ""


# ----------------------------------------------------------------------------- the recorder itself


def test_the_recorder_leaves_an_ignored_sigint_alone_and_restores_what_it_replaced():
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    recorder = SignalRecorder()
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's Ctrl-C
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with recorder.recording():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == recorder._handler
            with recorder.recording():  # nested: the outer one keeps the handlers
                pass
            assert signal.getsignal(signal.SIGTERM) == recorder._handler
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_the_recorder_raises_only_at_safe_points_or_while_waiting_for_input():
    recorder = SignalRecorder()
    recorder.check()  # nothing received: nothing raised
    recorder._handler(signal.SIGTERM, None)
    recorder._handler(signal.SIGINT, None)  # only the first signal counts
    with pytest.raises(Interrupted, match=r"^interrupted by SIGTERM; so far$") as stopped:
        recorder.check("; so far")
    assert stopped.value.exit_status == 143
    waiting = SignalRecorder()
    with pytest.raises(Interrupted, match=r"^interrupted by Ctrl-C \(SIGINT\)$"):
        waiting.wait_for(waiting._handler, signal.SIGINT, None)
    with pytest.raises(Interrupted, match=r"^interrupted by Ctrl-C \(SIGINT\)$"):  # one signal, kept
        waiting.wait_for(int, "42")
    reading = SignalRecorder()
    with pytest.raises(ValueError, match="^invalid literal for int"):  # what the reader raises is raised here
        reading.wait_for(int, "forty-two")
    assert reading.wait_for(int, "42") == 42
    assert interrupts.exit_status(signal.SIGINT) == 130 and interrupts.signal_name(signal.SIGHUP) == "SIGHUP"
    assert interrupts.exit_status(signal.SIGHUP) == EXIT_HANGUP == 129


def test_a_wait_on_input_ends_at_once_whichever_thread_the_kernel_gives_the_signal_to():
    """The kernel delivers a process's signal to any thread that does not block it (under load, often one of
    XLA's): a read blocked in the main thread would never see it. Here it goes to the reading thread itself,
    blocked on a pipe that never delivers, and the signal still ends the wait.  (Should it not, the pipe
    delivers a byte after 60 s, the read returns it and the test fails on a missing Interrupted, not a hang.)"""
    read_end, write_end = os.pipe()
    saved = {signum: signal.getsignal(signum) for signum in interrupts.RECORDED}
    recorder = SignalRecorder()
    fallback = threading.Timer(60, os.write, (write_end, b"x"))

    def read():
        threading.Timer(0.2, signal.pthread_kill, (threading.get_ident(), signal.SIGTERM)).start()
        return os.read(read_end, 1)

    try:
        for signum, default in interrupts.RECORDED.items():
            signal.signal(signum, default)
        fallback.start()
        with recorder.recording():
            with pytest.raises(Interrupted, match=r"^interrupted by SIGTERM$") as stopped:
                recorder.wait_for(read)
        assert stopped.value.exit_status == 143
    finally:
        fallback.cancel()
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        os.close(write_end)  # the abandoned reader reads end-of-file and ends
        os.close(read_end)


# ----------------------------------------------------------------------------- SIGHUP: a terminal that closes


@on_linux
def test_closing_the_terminal_mid_training_saves_the_last_whole_epoch_and_exits_129(tmp_path):
    """What ssh or a terminal window does on closing: the pty hangs up (writes to it fail with EIO from then
    on) and the kernel sends SIGHUP to the session leader, here funcnet itself."""
    import pty

    master, terminal = pty.openpty()
    env = dict(os.environ, JAX_PLATFORMS="cpu", FUNCNET_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    take_terminal = ("import os; os.setsid(); os.close(os.open(os.ttyname(1), os.O_RDWR)); "  # the controlling tty
                     "exec(compile(" + repr(LAUNCH) + ", 'launch', 'exec'))")
    process = subprocess.Popen([sys.executable, "-c", take_terminal, "train", "--data", "xor", "--epochs", "100000",
                                "--save", "m.npz", "--no-cache"], env=env, cwd=tmp_path, stdin=terminal,
                               stdout=terminal, stderr=terminal)
    os.close(terminal)
    try:
        shown = b""
        while b"epoch 3/" not in shown:
            chunk = os.read(master, 4096)
            assert chunk, shown
            shown += chunk
    finally:
        os.close(master)  # the hang-up: the kernel sends SIGHUP to the child, the session leader
        try:
            status = process.wait(timeout=180)
        finally:
            process.kill()
    assert status == 129  # without pointing the hung-up terminal at /dev/null: 1, an OSError (EIO), nothing saved
    assert len(fn.load(tmp_path / "m.npz").history["train_loss"]) >= 3


def test_an_ignored_sighup_is_left_alone_as_nohup_sets_it():
    saved = {signum: signal.getsignal(signum) for signum in interrupts.RECORDED}
    recorder = SignalRecorder()
    try:
        for signum, default in interrupts.RECORDED.items():  # whatever an earlier in-process CLI run left
            signal.signal(signum, default)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
        with recorder.recording():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == recorder._handler
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        with recorder.recording():
            assert signal.getsignal(signal.SIGHUP) == recorder._handler
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_sighup_points_only_a_hung_up_terminal_at_dev_null(tmp_path):
    """The recorder's SIGHUP handler, in a child whose stdout is a pty that has hung up and stderr a file."""
    script = ("import os, pty, signal, sys\n"
              "from funcnet.cli.interrupts import SignalRecorder\n"
              "master, terminal = pty.openpty()\n"
              "os.dup2(terminal, 1)\n"
              "os.close(master)\n"  # the hang-up
              "recorder = SignalRecorder()\n"
              "recorder._handler(signal.SIGHUP, None)\n"
              "print('lost with the terminal', flush=True)\n"  # it raised OSError EIO before
              "sys.stderr.write('still written to the file\\n')\n"
              "assert recorder.received == signal.SIGHUP\n")
    with open(tmp_path / "err.txt", "w") as err:
        completed = subprocess.run([sys.executable, "-c", script], stderr=err, cwd=ROOT, timeout=120,
                                   env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert completed.returncode == 0, (tmp_path / "err.txt").read_text()
    assert (tmp_path / "err.txt").read_text() == "still written to the file\n"

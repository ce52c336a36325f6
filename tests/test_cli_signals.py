"""Issue #10 cases 2 and 3, in real processes: Ctrl-C at start-up and during the first compile; `predict | head`.

The child resets SIGINT to Python's default handler before it runs the CLI: a
test runner started in the background by a non-interactive shell inherits SIGINT
*ignored*, and Python would then never see Ctrl-C.  It runs the working tree's
funcnet (PYTHONPATH), not an installed copy.
"""

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np

import funcnet as fn
from cli_helpers import regression_csv, write_csv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "from funcnet.cli import main; sys.exit(main(sys.argv[1:]))")


def start(tmp_path, *argv, **popen):
    env = dict(os.environ, JAX_PLATFORMS="cpu", FUNCNET_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", LAUNCH, *map(str, argv)], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def test_ctrl_c_during_start_up_exits_130_with_one_line(tmp_path):
    regression_csv(tmp_path / "real.csv")
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)  # the child blocks reading its data here: start-up, before any training
    process = start(tmp_path, "train", "--csv", fifo, "--target", "y", "--layers", "4", "--no-cache")
    try:
        deadline = time.monotonic() + 120
        while True:  # a writer can open a FIFO without blocking only once its reader has it open
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as error:
                assert error.errno == errno.ENXIO and process.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)
        os.write(writer, (tmp_path / "real.csv").read_bytes())
        os.close(writer)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    assert err == "funcnet train: interrupted before training started; nothing saved\n"
    assert "epoch" not in out


def test_ctrl_c_while_the_first_epoch_compiles_saves_that_epoch(tmp_path):
    process = start(tmp_path, "train", "--data", "xor", "--save", "m.npz", "--no-cache")
    try:
        header = process.stdout.readline()
        assert header.startswith("training "), header + process.stderr.read()
        process.send_signal(signal.SIGINT)  # fit starts right after the header: its first epoch compiles
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "nothing saved" not in out
    assert "Ctrl-C: stopping when the epoch in progress has finished" in err
    assert "interrupted: saved the state after epoch 1 to m.npz; continue with: funcnet train --resume m.npz" in out
    assert len(fn.load(tmp_path / "m.npz").history["train_loss"]) == 1


def test_predict_into_a_pipe_closed_early_ends_quietly(tmp_path):
    rows = np.round(np.random.default_rng(0).normal(size=(20_000, 3)), 3)  # ~400 kB of output: more than a pipe holds
    write_csv(tmp_path / "x.csv", ["a", "b", "c"], rows.tolist())
    checkpoint = os.path.join(ROOT, "tests", "fixtures", "v1_cli_regression.npz")
    process = start(tmp_path, "predict", "--checkpoint", checkpoint, "--csv", "x.csv")
    try:
        assert process.stdout.readline() == "prediction\n"
        process.stdout.close()  # like `| head -1`
        err = process.stderr.read()
        process.wait(timeout=120)
    finally:
        process.kill()
    assert err == "" and process.returncode == 141

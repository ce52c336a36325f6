"""Two processes on 127.0.0.1 (2 CPU devices each, gloo) train what one process trains."""

import importlib
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

import funcnet as fn
from conftest import ROOT
from funcnet.cli.distributed import local_rows, regression_problem


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_match_a_single_process_run(tmp_path):
    """The hand-written backprop across processes; both modes on several devices: test_sharding.py."""
    grad = "manual"
    port, out = free_port(), tmp_path / "params.npz"
    env = dict(os.environ)  # the suite's XLA_FLAGS; the child adds its device count
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    processes = [
        subprocess.Popen([sys.executable, "-m", "funcnet.cli.distributed", "--coordinator", f"127.0.0.1:{port}",
                          "--num-processes", "2", "--process-id", str(rank), "--local-devices", "2",
                          "--grad", grad, *(["--out", str(out)] if rank == 0 else [])],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
        for rank in (0, 1)
    ]
    try:
        outputs = [process.communicate(timeout=240)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [process.returncode for process in processes] == [0, 0], "\n".join(outputs)[-3000:]
    assert all("2 local of 4 devices" in output for output in outputs)

    # the processes run in JAX's default float32 mode; so must the reference: with x64 on, optax's
    # bias correction rounds differently by an ulp, and Adam amplifies that for near-zero gradients
    with jax.enable_x64(False):
        model, params, x, y = regression_problem(2_000, 0)
        expected, history = fn.fit(model, params, optax.adam(1e-2), x, y, epochs=3, batch_size=32,
                                   key=jax.random.key(2), grad=grad)
    saved = fn.load(out)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), saved.params, expected)
    np.testing.assert_allclose(saved.history["train_loss"], history["train_loss"], rtol=1e-4)


def test_each_process_feeds_its_own_block_of_rows():
    blocks = [local_rows(10, 2, rank) for rank in (0, 1)]
    assert blocks == [slice(0, 5), slice(5, 10)]


def test_the_old_module_name_works_for_one_release_with_a_deprecation_warning():
    sys.modules.pop("funcnet.distributed", None)  # a warning is given on import
    with pytest.warns(DeprecationWarning, match=r"^funcnet\.distributed moved to funcnet\.cli\.distributed "
                                                r"\(python -m funcnet\.cli\.distributed\)"):
        old = importlib.import_module("funcnet.distributed")
    assert old.local_rows is local_rows and old.regression_problem is regression_problem

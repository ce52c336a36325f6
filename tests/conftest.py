"""Test setup: JAX's strict settings, float32 by default, float64 only where a test asks.

* ``jax_numpy_rank_promotion="raise"``: no implicit broadcasting between arrays of
  different rank anywhere in the library or the tests.
* x64 is **off** (JAX's default).  A test that needs float64 carries
  ``@pytest.mark.x64`` (or a module sets ``pytestmark = pytest.mark.x64``); the
  whole test, fixtures included, then runs inside ``jax.enable_x64(True)`` and
  the mode is switched back afterwards, so it cannot leak into other tests.
"""

import logging
import os
import sys

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


pytest_plugins = ["pytester"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Run ``@pytest.mark.x64`` tests (setup, call and teardown) with float64 on."""
    if item.get_closest_marker("x64") is not None:
        with jax.enable_x64(True):
            yield
    else:
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    """A test that switched float64 on globally fails here (and the switch is undone), so it cannot leak."""
    from jax._src.config import enable_x64

    result = yield
    if enable_x64.get_global():
        enable_x64.set_global(False)
        raise AssertionError(f"{item.nodeid} left jax_enable_x64 switched on globally")
    return result


class CompileLog(logging.Handler):
    """Names of the programs XLA compiles (JAX's ``jax_log_compiles`` records), e.g. ``"jit(epoch_fn)"``."""

    PREFIX = "Finished XLA compilation of "

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.programs = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith(self.PREFIX):
            self.programs.append(message[len(self.PREFIX):].split(" in ")[0])


@pytest.fixture
def compile_log():
    """The list of programs compiled during the test (in order; a name repeats when it compiles again)."""
    handler, logger = CompileLog(), logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            yield handler.programs
    finally:
        logger.removeHandler(handler)


class CliResult:
    """What one in-process ``funcnet`` command returned and printed."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli_run(tmp_path, capsys, monkeypatch):
    """Run ``funcnet ARGS`` in this process (``funcnet.cli.main``) in ``tmp_path``.

    Every command shares this process's compiled programs, which is what makes
    the CLI tests cheap.  JAX's persistent compilation cache is left off (it is
    global configuration); ``test_cli.py`` covers it through the console script.
    ``--help`` and argparse errors exit through ``SystemExit``; its code is returned.
    """
    from funcnet import cli
    from funcnet.cli import train_command

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train_command, "enable_compilation_cache", lambda: None)

    def run(*args, expect=0):
        capsys.readouterr()
        try:
            code = cli.main([str(arg) for arg in args])
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        assert code == expect, out + err
        return CliResult(code, out, err)

    return run


@pytest.fixture
def run_example(capsys, monkeypatch):
    """Run ``examples/NAME.py ARGS`` as ``__main__`` in this process and return what it printed.

    In-process, so it reuses this process's compiled programs.  Examples that
    want float64 switch ``jax_enable_x64`` on globally (as a user's script
    would); the tests' global float32 mode is restored afterwards.
    """
    import runpy

    def run(relative_path, *args):
        path = os.path.join(ROOT, relative_path)
        monkeypatch.setattr(sys, "argv", [path, *map(str, args)])
        monkeypatch.chdir(ROOT)
        capsys.readouterr()
        try:
            runpy.run_path(path, run_name="__main__")
        finally:
            jax.config.update("jax_enable_x64", False)  # the tests' global mode
        return capsys.readouterr().out

    return run


@pytest.fixture
def run_script():
    """Run a repository script in a fresh Python process and return its stdout."""
    import subprocess

    def run(relative_path, *args, timeout=300, env_extra=None):
        env = dict(os.environ, JAX_PLATFORMS="cpu", **(env_extra or {}))
        completed = subprocess.run(
            [sys.executable, os.path.join(ROOT, relative_path), *args],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        return completed.stdout

    return run

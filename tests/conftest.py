"""Test setup: JAX's strict settings, float32 by default, float64 only where a test asks.

* ``jax_numpy_rank_promotion="raise"``: no implicit broadcasting between arrays of
  different rank anywhere in the library or the tests.
* x64 is **off** (JAX's default).  A test that needs float64 carries
  ``@pytest.mark.x64`` (or a module sets ``pytestmark = pytest.mark.x64``); the
  whole test, fixtures included, then runs inside ``jax.enable_x64(True)`` and
  the mode is switched back afterwards, so it cannot leak into other tests.
* XLA compiles with its **fast-compile settings** (``FAST_COMPILE_FLAGS``, put in
  ``XLA_FLAGS`` before JAX starts, inherited by every subprocess): LLVM at
  ``-O0`` without its expensive passes, and XLA:CPU's older loop emitters.
  About 80% of the suite's time was XLA compiling programs; these settings
  cut compile time by about 70%.  Kernels run slower and may round differently in the
  last bits, which no tolerance-based test notices.  The few tests whose claim
  *is* the default compiler's bits (v1 checkpoints predicting bit-identically,
  the README's printed session, ``init``'s own compiler options) carry
  ``@pytest.mark.default_compiler``: they run in a child pytest process with
  the user's ``XLA_FLAGS`` as they were, one child per test module.
"""

import logging
import os
import subprocess
import sys

FAST_COMPILE_FLAGS = ("--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true",
                      "--xla_cpu_use_fusion_emitters=false")
IN_DEFAULT_COMPILER_CHILD = "FUNCNET_TESTS_DEFAULT_COMPILER"  # set in the child that runs marked tests
USER_XLA_FLAGS = os.environ.get("FUNCNET_TESTS_USER_XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
if not os.environ.get(IN_DEFAULT_COMPILER_CHILD):  # before JAX starts; the user's own flags come last and win
    os.environ["FUNCNET_TESTS_USER_XLA_FLAGS"] = USER_XLA_FLAGS
    os.environ["XLA_FLAGS"] = " ".join([*FAST_COMPILE_FLAGS, USER_XLA_FLAGS]).strip()

import jax  # noqa: E402  (after XLA_FLAGS)
import pytest  # noqa: E402

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


_default_compiler_outcomes = {}  # node id -> (passed, report) from the child of its module
_default_compiler_modules_run = set()


def _run_module_under_default_compiler(item):
    """Run every ``default_compiler`` test of ``item``'s module in one child pytest with the default XLA flags."""
    module = item.nodeid.split("::")[0]
    _default_compiler_modules_run.add(module)
    env = {key: value for key, value in os.environ.items() if not key.startswith("COV_CORE")}
    env.update(XLA_FLAGS=USER_XLA_FLAGS, **{IN_DEFAULT_COMPILER_CHILD: "1"})
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", module, "-m", "default_compiler", "-rA", "-q", "-p", "no:xdist",
         "-p", "no:cacheprovider", "-p", "no:cov", "-p", "no:benchmark", "--rootdir", str(item.config.rootpath)],
        capture_output=True, text=True, env=env, cwd=item.config.rootpath, timeout=600)
    report = completed.stdout[-6000:] + completed.stderr[-2000:]
    for line in completed.stdout.splitlines():
        outcome, _, node_id = line.partition(" ")
        if outcome in ("PASSED", "FAILED", "ERROR"):
            node_id = node_id.split(" - ")[0]
            _default_compiler_outcomes[node_id] = (outcome == "PASSED", report)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A ``default_compiler`` test passes here exactly when it passed in its module's default-compiler child."""
    if pyfuncitem.get_closest_marker("default_compiler") is None or os.environ.get(IN_DEFAULT_COMPILER_CHILD):
        return None
    if pyfuncitem.nodeid.split("::")[0] not in _default_compiler_modules_run:
        _run_module_under_default_compiler(pyfuncitem)
    passed, report = _default_compiler_outcomes.get(pyfuncitem.nodeid, (False, "the child did not run it"))
    if not passed:
        pytest.fail(f"{pyfuncitem.nodeid} failed under XLA's default compiler settings:\n{report}", pytrace=False)
    return True


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


def trained_state(result):
    """``(params, opt_state, history)`` of what ``fn.fit`` returns (a ``funcnet.fitting.FitResult``)."""
    return result.params, result.opt_state, result.history

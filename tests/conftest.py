"""Test setup: float64 available everywhere (float32 tests ask for it explicitly)."""

import os
import sys

import jax
import pytest

jax.config.update("jax_enable_x64", True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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

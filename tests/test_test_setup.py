"""The suite's own settings (tests/conftest.py): strict rank promotion, float32 unless marked x64, no leaks."""

import os

import jax
import jax.numpy as jnp
import pytest


@pytest.mark.x64
def test_a_test_marked_x64_computes_in_float64():
    assert jax.config.jax_enable_x64 and jnp.ones(2, jnp.float64).dtype == jnp.float64


def test_every_other_test_runs_in_jaxs_default_float32_mode():
    assert not jax.config.jax_enable_x64 and jnp.asarray(1.5).dtype == jnp.float32


def test_implicit_rank_promotion_is_an_error():
    with pytest.raises(ValueError, match="jax_numpy_rank_promotion='raise'"):
        jnp.ones((3, 2)) + jnp.ones(2)


def test_a_test_that_switches_float64_on_globally_is_caught_and_undone(pytester):
    pytester.makeconftest(open(__file__.replace("test_test_setup.py", "conftest.py")).read())
    pytester.makepyfile(test_leak="""
        import jax
        def test_leaks():
            jax.config.update("jax_enable_x64", True)
        def test_after():
            assert not jax.config.jax_enable_x64
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:cov")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_leaks left jax_enable_x64 switched on globally*"])


def test_the_suite_compiles_with_xlas_fast_compile_settings():
    from conftest import FAST_COMPILE_FLAGS

    assert os.environ["XLA_FLAGS"].split()[:len(FAST_COMPILE_FLAGS)] == list(FAST_COMPILE_FLAGS)


@pytest.mark.default_compiler
def test_a_default_compiler_test_runs_in_a_child_with_the_users_xla_flags():
    from conftest import FAST_COMPILE_FLAGS, IN_DEFAULT_COMPILER_CHILD

    assert os.environ.get(IN_DEFAULT_COMPILER_CHILD) == "1"
    assert not set(FAST_COMPILE_FLAGS) & set(os.environ.get("XLA_FLAGS", "").split())


def test_a_failing_default_compiler_test_fails_the_suite_with_the_childs_report(pytester):
    pytester.makeconftest(open(__file__.replace("test_test_setup.py", "conftest.py")).read())
    pytester.makepyfile(test_child="""
        import os
        import pytest
        @pytest.mark.default_compiler
        def test_fails_in_child():
            assert os.environ.get("FUNCNET_TESTS_DEFAULT_COMPILER") != "1", "ran in the child"
        @pytest.mark.default_compiler
        def test_passes_in_child():
            assert os.environ.get("FUNCNET_TESTS_DEFAULT_COMPILER") == "1"
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:cov",
                                          "--rootdir", str(pytester.path))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_fails_in_child failed under XLA's default compiler settings*",
                                 "*ran in the child*"])

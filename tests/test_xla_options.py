"""The compile options of the estimators' compiled epoch: 512-bit vectors on CPU, overridable, really passed."""

import jax
import pytest

from funcnet import xla_options

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU compile options")


def test_epochs_ask_for_512_bit_vectors_on_cpu_by_default(monkeypatch):
    monkeypatch.delenv("FUNCNET_CPU_VECTOR_WIDTH", raising=False)
    assert xla_options.epoch_compiler_options() == {"xla_cpu_prefer_vector_width": 512}


@pytest.mark.parametrize("text, width", [("256", 256), (" 128 ", 128), ("512", 512), ("", 512)])
def test_the_environment_variable_sets_the_width(monkeypatch, text, width):
    monkeypatch.setenv("FUNCNET_CPU_VECTOR_WIDTH", text)
    assert xla_options.epoch_compiler_options() == {"xla_cpu_prefer_vector_width": width}


@pytest.mark.parametrize("text", ["1024", "wide", "256bits"])
def test_a_width_xla_does_not_take_is_refused_by_name(monkeypatch, text):
    monkeypatch.setenv("FUNCNET_CPU_VECTOR_WIDTH", text)
    with pytest.raises(ValueError, match=rf"FUNCNET_CPU_VECTOR_WIDTH must be one of 128, 256 or 512 \(bits\), "
                                         rf"got '{text}'"):
        xla_options.cpu_vector_width()


@pytest.fixture
def jit_options(monkeypatch):
    """The ``compiler_options`` of every ``jax.jit`` call made while the test runs."""
    seen, real_jit = [], jax.jit

    def spy(fun, *args, **kwargs):
        seen.append(kwargs.get("compiler_options"))
        return real_jit(fun, *args, **kwargs)

    monkeypatch.setattr(jax, "jit", spy)
    monkeypatch.setenv("FUNCNET_CPU_VECTOR_WIDTH", "256")  # a width no default would give
    return seen


def test_the_top_level_epoch_is_compiled_with_the_options_and_the_nestable_one_without(jit_options):
    from funcnet import engine, sklearn as fn_sklearn

    network = fn_sklearn._network((2, 3, 1), ("relu",), "identity", "mse", 0.0)
    optimizer = fn_sklearn._optimizer("adam", False)
    engine.compiled_epoch.__wrapped__(network, optimizer, "manual", 4, None, engine.EpochOptions(), top_level=True)
    assert jit_options[-1] == {"xla_cpu_prefer_vector_width": 256}
    engine.compiled_epoch.__wrapped__(network, optimizer, "manual", 4)  # make_train_epoch's: nestable
    assert jit_options[-1] is None


def test_the_estimators_fit_through_the_top_level_epoch(monkeypatch):
    import numpy as np

    from funcnet import engine, sklearn as fn_sklearn

    seen = []
    real = engine.compiled_epoch

    def spy(*args, **kwargs):
        seen.append(kwargs.get("top_level"))
        return real(*args, **kwargs)

    monkeypatch.setattr(fn_sklearn, "compiled_epoch", spy)
    features = np.random.default_rng(0).standard_normal((20, 2)).astype(np.float32)
    fn_sklearn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=1, batch_size=8).fit(features, features[:, 0])
    assert seen == [True]

"""One training engine: fit, fit_many and both estimators train through engine.epoch_function, and nothing else.

Also the pieces that make one engine serve them all: the scatter gives fit's batch order, and the estimators'
objective s·L + (α/2m)Σ‖W‖² has one hand-written α gradient, added once.
"""

import functools
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from funcnet import engine, many

pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from funcnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

X = np.random.default_rng(0).standard_normal((70, 3)).astype(np.float32)
Y = (X[:, :1] - 0.5 * X[:, 1:2]).astype(np.float32)
LABELS = (X[:, 0] > 0).astype(np.int32)


@pytest.fixture
def epoch_traces(monkeypatch):
    """``(traces, scans)``: the names of the trainers whose epoch the engine traced, and the function that
    called ``lax.scan`` each time one was traced, while the test runs (fresh compiled-epoch caches)."""
    traces, scans = [], []
    real_function, real_scan = engine.epoch_function, jax.lax.scan

    def counted_epoch_function(*args, **kwargs):
        train_epoch = real_function(*args, **kwargs)

        @functools.wraps(train_epoch)
        def counted(*epoch_args, **epoch_kwargs):
            traces.append(current[0])
            return train_epoch(*epoch_args, **epoch_kwargs)

        return counted

    def spied_scan(*args, **kwargs):
        caller = sys._getframe(1).f_code
        scans.append((caller.co_filename.replace("\\", "/").rsplit("/", 2)[-2:], caller.co_name))
        return real_scan(*args, **kwargs)

    current = [None]
    monkeypatch.setattr(engine, "epoch_function", counted_epoch_function)
    monkeypatch.setattr(jax.lax, "scan", spied_scan)
    engine.compiled_epoch.cache_clear()
    many._many_epoch.cache_clear()
    yield traces, scans, current
    engine.compiled_epoch.cache_clear()
    many._many_epoch.cache_clear()


def _fit():
    model = fn.mlp([3, 8, 1])
    fn.fit(model, model.init(jax.random.key(0)), optax.adam(1e-2), X, Y, epochs=2, batch_size=16,
           key=jax.random.key(1))


def _fit_many():
    model = fn.mlp([3, 8, 1])
    keys = jax.random.split(jax.random.key(0), 3)
    fn.fit_many(model, fn.stacked_init(model, keys), optax.sgd(1e-2), X, Y, epochs=2, batch_size=16, keys=keys)


def _classifier():
    MLPClassifier(hidden_layer_sizes=(8,), batch_size=16, max_iter=2, random_state=0).fit(X, LABELS)


def _regressor():
    MLPRegressor(hidden_layer_sizes=(8,), batch_size=16, max_iter=2, random_state=0).fit(X, Y[:, 0])


@pytest.mark.parametrize("trainer", [_fit, _fit_many, _classifier, _regressor],
                         ids=["fit", "fit_many", "MLPClassifier.fit", "MLPRegressor.fit"])
def test_every_trainer_traces_the_engines_one_epoch_and_no_other_scan_over_batches(epoch_traces, trainer):
    traces, scans, current = epoch_traces
    current[0] = trainer.__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        trainer()
    assert traces == [trainer.__name__]  # traced once (the second epoch reuses the program)
    assert scans and all(where == (["funcnet", "engine.py"], "train_epoch") for where in scans), scans


def test_the_estimators_and_fit_share_the_epoch_function_and_differ_only_in_options():
    model, optimizer = fn.mlp([3, 8, 1]), optax.sgd(1e-2)
    nestable = engine.make_train_epoch(model, optimizer, "manual", 16)
    top_level = engine.compiled_epoch(model, optimizer, "manual", 16, None, engine.EpochOptions(), top_level=True)
    assert nestable.__wrapped__.__code__ is top_level.__wrapped__.__code__ is \
        engine.epoch_function(model, optimizer, "manual", 16).__code__


@pytest.mark.parametrize("num_rows", [64, 70])
def test_the_scatter_gives_the_order_of_shuffled_batch_rows(num_rows):
    key = jax.random.key(3)
    x = jnp.arange(num_rows * 2, dtype=jnp.float32).reshape(num_rows, 2)
    full, remainder = engine.shuffled_batch_rows(key, num_rows, 16, epoch=5)
    order = jnp.concatenate([full.reshape(-1)] + ([] if remainder is None else [remainder]))
    shuffled, weights = engine.shuffled_copy((x, jnp.arange(num_rows)), key, 5)
    np.testing.assert_array_equal(shuffled, x[order])
    np.testing.assert_array_equal(weights, order)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_manual_penalised_gradient_adds_the_alpha_term_once(weighted):
    """∂J/∂W = s ∂L/∂W + (α/m) W: the hand-written α gradient once, as jax.grad of J has it."""
    model = fn.mlp([3, 8, 1])
    params = model.init(jax.random.key(0))
    weights = jnp.linspace(0.5, 2.0, 70) if weighted else None
    alpha, scale = jnp.float32(3.0), 0.5
    manual = engine.penalised_value_and_grad_fn(model, "manual", scale)(params, X, Y, weights, None, alpha)
    autodiff = engine.penalised_value_and_grad_fn(model, "autodiff", scale)(params, X, Y, weights, None, alpha)
    loss, grads = model.manual_grad(params, X, Y, weights)
    m = 70 if weights is None else float(jnp.sum(weights))
    by_hand = [{name: scale * g + (alpha / m) * layer[name] if name == "W" else scale * g
                for name, g in layer_grads.items()} for layer_grads, layer in zip(grads, params)]
    for ours, theirs, reference in zip(jax.tree.leaves(manual[1]), jax.tree.leaves(autodiff[1]),
                                       jax.tree.leaves(by_hand)):
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    penalty = alpha / (2 * m) * sum(float(jnp.vdot(layer["W"], layer["W"])) for layer in params)
    np.testing.assert_allclose(manual[0], scale * loss + penalty, rtol=1e-6)
    np.testing.assert_allclose(autodiff[0], manual[0], rtol=1e-6)


def test_without_alpha_and_scale_the_objective_is_model_loss_itself():
    model = fn.mlp([3, 8, 1])
    params = model.init(jax.random.key(0))
    for grad in engine.GRAD_MODES:
        ours = engine.penalised_value_and_grad_fn(model, grad)(params, X, Y, None, None, None)
        theirs = engine.value_and_grad_fn(model, grad)(params, X, Y)
        jax.tree.map(np.testing.assert_array_equal, ours, theirs)


def test_the_estimators_train_loss_weighs_batches_by_rows_and_fits_by_weight():
    """``loss_per="row"``: Σ rows_b J_b / n (scikit-learn's loss_); ``"weight"``: Σ w_b J_b / Σ w (fit)."""
    model, optimizer = fn.mlp([3, 1]), optax.sgd(0.0)  # lr 0: every batch sees the same params
    params = model.init(jax.random.key(0))
    weights = jnp.concatenate([jnp.full(32, 1.0), jnp.full(38, 3.0)])
    losses = {}
    for loss_per in ("row", "weight"):
        epoch = engine.compiled_epoch(model, optimizer, "autodiff", 32, None,
                                      engine.EpochOptions(shuffle=False, loss_per=loss_per))
        losses[loss_per] = float(epoch(params, optimizer.init(params), X, Y, jax.random.key(0), 0,
                                       sample_weight=weights)[2])
    batch_losses = [float(model.loss(params, X[a:b], Y[a:b], weights[a:b])) for a, b in ((0, 32), (32, 64),
                                                                                         (64, 70))]
    rows, weight_sums = [32, 32, 6], [32.0, 96.0, 18.0]
    np.testing.assert_allclose(losses["row"], np.dot(batch_losses, rows) / 70, rtol=1e-6)
    np.testing.assert_allclose(losses["weight"], np.dot(batch_losses, weight_sums) / sum(weight_sums), rtol=1e-6)


def test_an_unknown_loss_weighting_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^EpochOptions\.loss_per must be one of weight, row, got 'rows'$"):
        engine.epoch_function(fn.mlp([2, 3, 1]), optax.sgd(0.1), "autodiff", 4,
                              options=engine.EpochOptions(loss_per="rows"))

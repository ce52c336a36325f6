"""Issue #10 case 8 (Python): early stopping returns the best epoch's params *and* optimizer state, and resumes exactly."""

import jax
import numpy as np
import optax
import pytest

import funcnet as fn
from conftest import trained_state
from funcnet.early_stopping import replay

MODEL = fn.mlp([3, 4, 1])
OPTIMIZER = optax.sgd(0.1, momentum=0.9)


def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float32)
    # validation targets opposite to the training ones: the better the fit, the worse validation
    return x, y, dict(batch_size=8, key=jax.random.key(0), validation_data=(x, -y), grad="manual")


def test_fit_state_returns_the_best_epochs_params_and_optimizer_state():
    x, y, arguments = problem()
    params = MODEL.init(jax.random.key(1))
    stopped, stopped_state, history = trained_state(fn.fit(MODEL, params, OPTIMIZER, x, y, epochs=20, patience=2,
                                                   **arguments))
    best = history["best_epoch"]
    assert len(history["train_loss"]) == best + 3
    at_best, state_at_best, _ = trained_state(fn.fit(MODEL, params, OPTIMIZER, x, y, epochs=best + 1, **arguments))
    jax.tree.map(np.testing.assert_array_equal, (stopped, stopped_state), (at_best, state_at_best))


@pytest.mark.parametrize("split", [1, 2])
def test_a_resumed_fit_with_patience_equals_the_uninterrupted_one(split):
    x, y, arguments = problem()
    params = MODEL.init(jax.random.key(1))
    full = trained_state(fn.fit(MODEL, params, OPTIMIZER, x, y, epochs=20, patience=2, **arguments))
    last = {}
    best_params, best_state, history = trained_state(fn.fit(
        MODEL, params, OPTIMIZER, x, y, epochs=split, patience=2,
        callback=lambda epoch, p, s, h: last.update(params=p, opt_state=s), **arguments))
    resumed = trained_state(fn.fit(MODEL, last["params"], OPTIMIZER, x, y, epochs=20, patience=2, initial_epoch=split,
                           opt_state=last["opt_state"], history=history, best=(best_params, best_state),
                           **arguments))
    jax.tree.map(np.testing.assert_array_equal, full[:2], resumed[:2])
    assert full[2] == resumed[2]


def test_resuming_with_patience_needs_the_best_state_when_it_is_not_the_last():
    x, y, arguments = problem()
    params = MODEL.init(jax.random.key(1))
    best = fn.fit(MODEL, params, OPTIMIZER, x, y, epochs=20, patience=2, **arguments)[1]["best_epoch"]
    last, split = {}, best + 2  # one epoch after the best: the best is not the last epoch run
    _, _, history = trained_state(fn.fit(MODEL, params, OPTIMIZER, x, y, epochs=split, patience=5,
                                 callback=lambda epoch, p, s, h: last.update(params=p, opt_state=s), **arguments))
    assert history["best_epoch"] == best
    with pytest.raises(ValueError, match=rf"resuming with `patience`: the best epoch so far is epoch {best + 1}, not "
                                         rf"the last one run \({split}\); pass best=\(params, opt_state\) of that"):
        trained_state(fn.fit(MODEL, last["params"], OPTIMIZER, x, y, epochs=split + 2, patience=5, initial_epoch=split,
                     opt_state=last["opt_state"], history=history, **arguments))
    with pytest.raises(ValueError, match=rf"needs the {split} validation losses so far in history\['val_loss'\], "
                                         "got 0"):
        trained_state(fn.fit(MODEL, last["params"], OPTIMIZER, x, y, epochs=split + 2, patience=5, initial_epoch=split,
                     opt_state=last["opt_state"], **arguments))


def test_a_run_that_had_stopped_runs_no_more_epochs_when_resumed():
    x, y, arguments = problem()
    params = MODEL.init(jax.random.key(1))
    stopped, state, history = trained_state(fn.fit(MODEL, params, OPTIMIZER, x, y, epochs=20, patience=2, **arguments))
    again = trained_state(fn.fit(MODEL, stopped, OPTIMIZER, x, y, epochs=30, patience=2, opt_state=state,
                         initial_epoch=len(history["train_loss"]), history=history, best=(stopped, state), **arguments))
    assert again[2] == history
    jax.tree.map(np.testing.assert_array_equal, (stopped, state), again[:2])


def test_replay_is_the_state_an_uninterrupted_run_had():
    losses = [5.0, 4.0, 4.5, 3.9, 4.0, 4.1]
    stepped = fn.EarlyStopping(patience=2)
    for epoch, loss in enumerate(losses):
        stepped = stepped.update(loss, epoch)
    assert replay(2, losses) == stepped and replay(2, losses).should_stop
    assert replay(2, []) == fn.EarlyStopping(patience=2)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_a_fit_with_patience_resumes_exactly_from_its_result_alone(split):
    """The result carries the best epoch (params, opt_state) and the last one (last_params, last_opt_state):
    resuming from both, without a callback, equals the uninterrupted run, whichever epoch was best."""
    x, y, arguments = problem()
    params = MODEL.init(jax.random.key(1))
    full = fn.fit(MODEL, params, OPTIMIZER, x, y, epochs=20, patience=2, **arguments)
    part = fn.fit(MODEL, params, OPTIMIZER, x, y, epochs=split, patience=2, **arguments)
    resumed = fn.fit(MODEL, part.last_params, OPTIMIZER, x, y, epochs=20, patience=2,
                     opt_state=part.last_opt_state, history=part.history, best=(part.params, part.opt_state),
                     **arguments)
    jax.tree.map(np.testing.assert_array_equal, (full.params, full.opt_state, full.last_params),
                 (resumed.params, resumed.opt_state, resumed.last_params))
    assert full.history == resumed.history


def test_without_patience_the_last_epoch_is_the_result():
    x, y, arguments = problem()
    result = fn.fit(MODEL, MODEL.init(jax.random.key(1)), OPTIMIZER, x, y, epochs=2, **arguments)
    assert result.last_params is result.params and result.last_opt_state is result.opt_state


def test_resuming_with_patience_from_the_best_epoch_alone_names_both_states_to_pass():
    x, y, arguments = problem()
    part = fn.fit(MODEL, MODEL.init(jax.random.key(1)), OPTIMIZER, x, y, epochs=3, patience=2, **arguments)
    assert part.history["best_epoch"] != 2  # validation against -y: the best epoch is not the last
    with pytest.raises(ValueError, match=r"pass best=\(params, opt_state\) of that epoch \(result\.params, "
                                         r"result\.opt_state .*\) and continue from the last epoch's state "
                                         r"\(result\.last_params, opt_state=result\.last_opt_state"):
        fn.fit(MODEL, part.params, OPTIMIZER, x, y, epochs=6, patience=2, opt_state=part.opt_state,
               history=part.history, **arguments)

"""Training: train_step with any optax optimizer, fit's epoch contract, determinism, compilations."""

import copy
import pickle
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

import funcnet as fn
from conftest import trained_state

MODEL = fn.mlp([3, 8, 1], hidden="tanh")
ADAM = optax.adam(1e-2)  # one object: fits with equal arguments and shapes share their compiled epoch (lru cache)
LOSS, FORWARD = jax.jit(MODEL.loss), jax.jit(MODEL.forward)  # reference values: one compile, not one per op
SHUFFLED_BATCHES = jax.jit(fn.shuffled_batches, static_argnums=3)  # one compile per shape, not one per op

OPTIMIZERS = [
    ("sgd", optax.sgd(0.05)),
    ("momentum", optax.sgd(0.02, momentum=0.9)),
    ("adam", optax.adam(1e-2)),
    ("rmsprop", optax.rmsprop(1e-3)),
    ("adamw", optax.adamw(1e-2, weight_decay=1e-3)),
    ("sgd_schedule", optax.sgd(optax.exponential_decay(0.1, transition_steps=10, decay_rate=0.5))),
    ("adam_cosine", optax.adam(optax.cosine_decay_schedule(1e-2, decay_steps=40))),
    ("chain", optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))),
]


def regression_problem(rows=40, dtype=jnp.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = np.sin(x @ np.array([[1.0], [-0.5], [0.3]]))
    # cast in NumPy, then copy to the device: jnp.asarray would compile a conversion for every new shape
    return jax.device_put(np.asarray(x, dtype)), jax.device_put(np.asarray(y, dtype))


@pytest.fixture(scope="module")
def optax_runs():
    """40 steps of ``make_train_step`` for every optimizer and both gradient modes, in one compiled call.

    ``{name: {grad: (final params, the 40 losses)}}``; the steps run in a ``lax.scan``.
    """
    x, y = regression_problem()
    start = MODEL.init(jax.random.key(0))

    def run_all(start, x, y):
        runs = {}
        for name, optimizer in OPTIMIZERS:
            for grad in fn.engine.GRAD_MODES:
                step = fn.make_train_step(MODEL, optimizer, grad=grad)

                def body(carry, _, step=step):
                    params, state, value = step(*carry, x, y)
                    return (params, state), value

                (params, _), losses = lax.scan(body, (start, optimizer.init(start)), length=40)
                runs.setdefault(name, {})[grad] = (params, losses)
        return runs

    return jax.jit(run_all)(start, x, y)


@pytest.mark.parametrize("name", [name for name, _ in OPTIMIZERS])
def test_train_step_works_with_optax_optimizers_and_both_gradients_agree(optax_runs, name):
    for grad in fn.engine.GRAD_MODES:
        _, losses = optax_runs[name][grad]
        assert losses[-1] < losses[0], (grad, losses[0], losses[-1])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5),
                 optax_runs[name]["manual"][0], optax_runs[name]["autodiff"][0])


def test_train_step_returns_the_loss_before_the_update():
    x, y = regression_problem()
    params = MODEL.init(jax.random.key(0))
    optimizer = optax.sgd(0.1)
    _, _, value = fn.make_train_step(MODEL, optimizer)(params, optimizer.init(params), x, y)
    np.testing.assert_allclose(value, LOSS(params, x, y), rtol=1e-6)


def test_one_sgd_step_matches_numbers_worked_out_by_hand():
    # y = w x + b with w = 2, b = 0 on x = [1, 2], y = [1, 1]: residuals A - Y = [1, 3],
    # dL/dw = 2 * mean(r * x) = 2 * (1 + 6) / 2 = 7, dL/db = 2 * mean(r) = 4.
    model = fn.mlp([1, 1])
    params = [{"W": jnp.array([[2.0]]), "b": jnp.array([0.0])}]
    x, y = jnp.array([[1.0], [2.0]]), jnp.array([[1.0], [1.0]])
    optimizer = optax.sgd(0.1)
    for grad in fn.engine.GRAD_MODES:
        new, _, value = fn.make_train_step(model, optimizer, grad)(params, optimizer.init(params), x, y)
        np.testing.assert_allclose(value, 5.0)  # (1 + 9) / 2
        np.testing.assert_allclose(new[0]["W"], [[2.0 - 0.7]], rtol=1e-6)
        np.testing.assert_allclose(new[0]["b"], [-0.4], rtol=1e-6)


@pytest.mark.parametrize("rows, batch_size", [(10, 4), (12, 4), (3, 8), (7, 1)])
def test_shuffled_batches_hold_every_row_exactly_once(rows, batch_size):
    x = np.arange(rows, dtype=np.float32)[:, None]  # NumPy in, the jitted shuffle copies it to the device
    full, remainder = SHUFFLED_BATCHES(jax.random.key(0), x, x * 10, batch_size)
    assert full[0].shape == (rows // batch_size, batch_size, 1)
    seen = [np.asarray(full[0]).reshape(-1)] + ([np.asarray(remainder[0]).reshape(-1)] if remainder else [])
    seen = np.concatenate(seen)
    assert sorted(seen.tolist()) == list(range(rows))
    assert (remainder is None) == (rows % batch_size == 0)
    np.testing.assert_array_equal(full[1], np.asarray(full[0]) * 10)  # x and y stay paired


@pytest.mark.x64
@pytest.mark.parametrize("grad", fn.engine.GRAD_MODES)
def test_fit_visits_every_sample_each_epoch(grad):
    # With a learning rate of 0 the params never move, so the epoch's sample-weighted
    # mean of batch losses equals the loss on all rows only if every row counts once.
    x, y = regression_problem(rows=10, dtype=jnp.float64)
    params = MODEL.init(jax.random.key(1), jnp.float64)
    _, history = fn.fit(MODEL, params, optax.sgd(0.0), x, y, epochs=3, batch_size=4,
                        key=jax.random.key(2), grad=grad)
    np.testing.assert_allclose(history["train_loss"], [float(LOSS(params, x, y))] * 3, rtol=1e-12)
    assert history["val_loss"] == []


def test_fit_is_reproducible_per_key_and_differs_between_keys():
    x, y = regression_problem()
    params = MODEL.init(jax.random.key(0))
    run = lambda key: fn.fit(MODEL, params, ADAM, x, y, epochs=3, batch_size=8,  # noqa: E731
                             key=jax.random.key(key), validation_split=0.25)
    (first, history), (again, history_again), (other, _) = run(5), run(5), run(6)
    jax.tree.map(np.testing.assert_array_equal, first, again)
    assert history == history_again
    assert not np.array_equal(first[0]["W"], other[0]["W"])


def test_fit_equals_a_users_own_loop_around_train_step():
    x, y = regression_problem(rows=30)
    params = MODEL.init(jax.random.key(0))
    optimizer = ADAM
    key = jax.random.key(9)
    fitted, history = fn.fit(MODEL, params, optimizer, x, y, epochs=2, batch_size=8, key=key)

    step = fn.make_train_step(MODEL, optimizer)
    state = optimizer.init(params)
    own = params
    for epoch in range(2):
        full, remainder = fn.shuffled_batches(key, x, y, 8, epoch)  # eagerly, as a user's loop calls it
        for xb, yb in zip(*full):
            own, state, _ = step(own, state, xb, yb)
        own, state, _ = step(own, state, *remainder)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), fitted, own)
    assert len(history["train_loss"]) == 2


@pytest.mark.x64
def test_fit_with_manual_and_autodiff_gradients_reaches_the_same_params():
    x, y = regression_problem(dtype=jnp.float64)
    params = MODEL.init(jax.random.key(0), jnp.float64)
    results = [fn.fit(MODEL, params, optax.adam(1e-2), x, y, epochs=4, batch_size=8,
                      key=jax.random.key(1), grad=grad)[0] for grad in fn.engine.GRAD_MODES]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10), *results)


def test_fit_records_validation_loss_of_the_final_params_on_validation_data():
    x, y = regression_problem(rows=30)
    x_val, y_val = regression_problem(rows=10, seed=1)
    params = MODEL.init(jax.random.key(0))
    fitted, history = fn.fit(MODEL, params, ADAM, x, y, epochs=3, batch_size=8,
                             key=jax.random.key(0), validation_data=(x_val, y_val))
    assert len(history["train_loss"]) == len(history["val_loss"]) == 3
    np.testing.assert_allclose(history["val_loss"][-1], fn.evaluate(MODEL, fitted, x_val, y_val), rtol=1e-6)


def test_validation_split_holds_out_ceil_fraction_of_rows():
    x, y = regression_problem(rows=10)
    params = MODEL.init(jax.random.key(0))
    # lr 0: train loss is the loss on the 7 training rows, val loss on the other 3 rows
    _, history = fn.fit(MODEL, params, optax.sgd(0.0), x, y, epochs=1, batch_size=3,
                        key=jax.random.key(4), validation_split=0.25)
    per_row = np.mean((np.asarray(FORWARD(params, x)) - np.asarray(y)) ** 2, axis=1)
    total = per_row.sum()
    np.testing.assert_allclose(7 * history["train_loss"][0] + 3 * history["val_loss"][0], total, rtol=1e-5)


def test_fit_does_not_touch_the_callers_params():
    x, y = regression_problem(rows=30)
    params = MODEL.init(jax.random.key(0))
    copy = jax.tree.map(np.array, params)
    fn.fit(MODEL, params, ADAM, x, y, epochs=2, batch_size=8, key=jax.random.key(0))
    jax.tree.map(np.testing.assert_array_equal, copy, jax.tree.map(np.array, params))


class CompileCounter:
    """Counts XLA backend compilations while active (a structural fact, not a timing)."""

    def __init__(self):
        self.count = 0

    def __call__(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self)


@pytest.mark.parametrize("grad", fn.engine.GRAD_MODES)
def test_fit_compiles_its_epoch_once_and_reuses_it_across_epochs_and_calls(grad):
    x, y = regression_problem(rows=50)
    params = MODEL.init(jax.random.key(0))
    optimizer = optax.adam(1e-2)
    arguments = dict(batch_size=8, validation_split=0.2, grad=grad)
    fn.fit(MODEL, params, optimizer, x, y, epochs=1, key=jax.random.key(0), **arguments)
    with CompileCounter() as again:
        fn.fit(MODEL, params, optimizer, x, y, epochs=6, key=jax.random.key(1), **arguments)
    assert again.count == 0
    x, y = np.asarray(x), np.asarray(y)
    with CompileCounter() as one_epoch:
        fn.fit(MODEL, params, optimizer, x[:45], y[:45], epochs=1, key=jax.random.key(1), **arguments)
    with CompileCounter() as many_epochs:
        fn.fit(MODEL, params, optimizer, x[:44], y[:44], epochs=6, key=jax.random.key(1), **arguments)
    # a new data shape costs the set-up and the epoch, once each, however many epochs run
    assert one_epoch.count == many_epochs.count == 2


def test_divergence_stops_training_and_keeps_the_last_finite_params():
    x, y = regression_problem()
    params = MODEL.init(jax.random.key(0))
    with pytest.raises(fn.NonFiniteLossError, match=r"epoch \d+: the loss became (nan|inf).*learning rate") as info:
        fn.fit(MODEL, params, optax.sgd(1e8), x, y, epochs=10, batch_size=8, key=jax.random.key(0))
    error = info.value
    assert len(error.history["train_loss"]) == error.epoch
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(error.params))


def test_predict_in_batches_equals_forward_on_everything():
    x, _ = regression_problem(rows=37)
    params = MODEL.init(jax.random.key(0))
    expected = FORWARD(params, x)
    np.testing.assert_allclose(fn.predict(MODEL, params, x, batch_size=8), expected, rtol=1e-6)
    np.testing.assert_allclose(fn.predict(MODEL, params, x), expected, rtol=1e-6)


def test_predict_labels_for_softmax_and_sigmoid_classifiers():
    x, _ = regression_problem(rows=6)
    softmax = fn.mlp([3, 4, 3], output="softmax", loss="cross_entropy")
    params = softmax.init(jax.random.key(0))
    np.testing.assert_array_equal(fn.predict_labels(softmax, params, x),
                                  np.argmax(jax.jit(softmax.forward)(params, x), axis=1))
    sigmoid = fn.mlp([3, 4, 2], output="sigmoid", loss="logloss")
    params = sigmoid.init(jax.random.key(0))
    labels = fn.predict_labels(sigmoid, params, x)
    assert labels.shape == (6, 2) and labels.dtype == jnp.int32
    np.testing.assert_array_equal(labels, np.asarray(jax.jit(sigmoid.forward)(params, x)) > 0.5)


def test_classifier_trains_with_integer_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 3)).astype(np.float32)
    labels = np.argmax(x, axis=1)
    model = fn.mlp([3, 16, 3], output="softmax", loss="cross_entropy")
    params, history = fn.fit(model, model.init(jax.random.key(0)), optax.adam(3e-2), x, labels,
                             epochs=30, batch_size=16, key=jax.random.key(0), grad="manual")
    assert history["train_loss"][-1] < 0.3 * history["train_loss"][0]
    assert np.mean(np.asarray(fn.predict_labels(model, params, x)) == labels) > 0.9


def test_callback_sees_every_epoch_and_can_stop_training():
    x, y = regression_problem(rows=30)
    params = MODEL.init(jax.random.key(0))
    seen = []

    def callback(epoch, params, opt_state, history):
        seen.append((epoch, len(history["train_loss"])))
        return epoch == 2

    _, history = fn.fit(MODEL, params, ADAM, x, y, epochs=10, batch_size=8,
                        key=jax.random.key(0), callback=callback)
    assert seen == [(0, 1), (1, 2), (2, 3)]
    assert len(history["train_loss"]) == 3


def test_resuming_from_an_epoch_matches_an_uninterrupted_fit():
    x, y = regression_problem(rows=40)
    params = MODEL.init(jax.random.key(0))
    optimizer = ADAM
    arguments = dict(batch_size=8, key=jax.random.key(3), validation_split=0.25)
    full, _, full_history = trained_state(fn.fit(MODEL, params, optimizer, x, y, epochs=4, **arguments))
    part, state, history = trained_state(fn.fit(MODEL, params, optimizer, x, y, epochs=2, **arguments))
    resumed, _, resumed_history = trained_state(fn.fit(MODEL, part, optimizer, x, y, epochs=4, opt_state=state,
                                               initial_epoch=2, history=history, **arguments))
    jax.tree.map(np.testing.assert_array_equal, full, resumed)
    assert resumed_history == full_history and len(history["train_loss"]) == 2


def test_early_stopping_returns_the_best_epochs_params():
    x, y = regression_problem(rows=32)
    params = MODEL.init(jax.random.key(0))
    optimizer = optax.adam(5e-2)
    # validation targets opposite to the training ones: the better the fit, the worse validation
    arguments = dict(batch_size=8, key=jax.random.key(0), validation_data=(x, -y))
    stopped, history = fn.fit(MODEL, params, optimizer, x, y, epochs=50, patience=2, **arguments)
    best = history["best_epoch"]
    assert len(history["train_loss"]) == best + 3  # two epochs without improvement after the best
    assert history["val_loss"][best] == min(history["val_loss"])
    at_best, _ = fn.fit(MODEL, params, optimizer, x, y, epochs=best + 1, **arguments)
    jax.tree.map(np.testing.assert_array_equal, stopped, at_best)


def test_early_stopping_state_is_an_immutable_value():
    stopper = fn.EarlyStopping(patience=2)
    states = []
    for epoch, loss in enumerate([5.0, 4.0, 4.5, 3.9, 4.0, 4.1]):
        stopper = stopper.update(loss, epoch)
        states.append((stopper.best_epoch, stopper.improved, stopper.should_stop))
    assert states == [(0, True, False), (1, True, False), (1, False, False), (3, True, False),
                      (3, False, False), (3, False, True)]


@pytest.mark.parametrize("kwargs, message", [
    (dict(patience=0), r"`patience` must be an integer ≥ 1, got 0"),
    (dict(patience=3), r"`patience` needs validation data"),
    (dict(initial_epoch=-1), r"`initial_epoch` must be an integer ≥ 0, got -1"),
])
def test_fit_rejects_bad_resume_and_early_stopping_arguments(kwargs, message):
    x, y = regression_problem(rows=8)
    with pytest.raises(ValueError, match=message):
        fn.fit(MODEL, MODEL.init(jax.random.key(0)), optax.sgd(0.1), x, y, epochs=1, key=jax.random.key(0),
               **kwargs)


def test_fit_returns_params_and_history_as_a_pair_and_the_optimizer_state_beside_them():
    x, y = regression_problem()
    params = MODEL.init(jax.random.key(0))
    result = fn.fit(MODEL, params, ADAM, x, y, epochs=2, batch_size=8, key=jax.random.key(1))
    trained, history = result  # unpacks as it always did
    assert isinstance(result, fn.fitting.FitResult) and len(result) == 2
    assert trained is result.params and history is result.history and len(history["train_loss"]) == 2
    chex.assert_trees_all_equal_structs(result.opt_state, ADAM.init(params))
    assert int(result.opt_state[0].count) == 10  # 2 epochs of 5 steps: the state after the last step
    for copied in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result)):
        assert isinstance(copied, fn.fitting.FitResult) and copied.history == history
        jax.tree.map(np.testing.assert_array_equal, (copied.params, copied.opt_state), (trained, result.opt_state))


def test_fit_state_still_returns_the_three_with_a_deprecation_warning_naming_fit():
    x, y = regression_problem()
    arguments = dict(epochs=2, batch_size=8, key=jax.random.key(1))
    result = fn.fit(MODEL, MODEL.init(jax.random.key(0)), ADAM, x, y, **arguments)
    deprecated = (r"^funcnet\.fitting\.fit_state is deprecated: `result = fn\.fit\(\.\.\.\)` carries it, as "
                  r"result\.params, result\.opt_state and result\.history")
    with pytest.warns(DeprecationWarning, match=deprecated):
        triple = fn.fitting.fit_state(MODEL, MODEL.init(jax.random.key(0)), ADAM, x, y, **arguments)
    jax.tree.map(np.testing.assert_array_equal, triple[:2], (result.params, result.opt_state))
    assert triple[2] == result.history


def test_fits_result_is_a_pytree_of_all_it_holds_and_says_so_in_its_repr():
    x, y = regression_problem()
    result = fn.fit(MODEL, MODEL.init(jax.random.key(0)), ADAM, x, y, epochs=2, batch_size=8, key=jax.random.key(1))
    fetched = jax.device_get(result)
    assert isinstance(fetched, fn.fitting.FitResult) and isinstance(fetched.params[0]["W"], np.ndarray)
    assert isinstance(fetched.opt_state[0].mu[0]["W"], np.ndarray) and fetched.history == result.history
    leaves = jax.tree.leaves(result)
    assert len(leaves) == len(jax.tree.leaves((result.params, result.opt_state, result.history)))
    assert repr(result) == ("FitResult(params: 2 layer dicts, opt_state: tuple, history: 2 epochs; "
                            "unpacks as (params, history))")


def test_passing_fits_result_where_params_go_says_to_take_result_params():
    x, y = regression_problem()
    result = fn.fit(MODEL, MODEL.init(jax.random.key(0)), ADAM, x, y, epochs=1, batch_size=8, key=jax.random.key(1))
    with pytest.raises(ValueError, match=r"got a FitResult of length 2; fn\.fit's result, which unpacks as "
                                         r"\(params, history\): pass result\.params$"):
        fn.predict(MODEL, result, x)


def test_resuming_without_the_optimizer_state_warns_unless_the_optimizer_keeps_none():
    x, y = regression_problem()
    first = fn.fit(MODEL, MODEL.init(jax.random.key(0)), ADAM, x, y, epochs=2, batch_size=8, key=jax.random.key(1))
    with pytest.warns(UserWarning, match=r"^fit resumes after 2 epochs with a fresh optimizer state \(no "
                                         r"`opt_state=`\), so it will not continue the earlier run exactly; pass "
                                         r"opt_state=result\.opt_state"):
        fn.fit(MODEL, first.params, ADAM, x, y, epochs=3, batch_size=8, key=jax.random.key(1), history=first.history)
    sgd = optax.sgd(0.1)  # no state: a fresh one is the same state, so nothing to warn about
    plain = fn.fit(MODEL, MODEL.init(jax.random.key(0)), sgd, x, y, epochs=2, batch_size=8, key=jax.random.key(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn.fit(MODEL, plain.params, sgd, x, y, epochs=3, batch_size=8, key=jax.random.key(1), history=plain.history)

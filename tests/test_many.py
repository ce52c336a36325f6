"""fit_many: N models in one vmapped program equal N separate fits, and compile once."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from conftest import trained_state
from test_train import MODEL, CompileCounter, regression_problem

CLOSE = dict(rtol=2e-5, atol=2e-6)
ADAM = optax.adam(1e-2)  # one object: equal fits (same arguments and shapes) share their compiled programs


def model_i(tree, i):
    """Model ``i``'s leaves of a stacked tree (in NumPy: no per-shape eager gather to compile)."""
    return jax.tree.map(lambda leaf: np.asarray(leaf)[i], tree)


def stacked_opt_init(optimizer, params):
    """``vmap(optimizer.init)(params)`` in one compiled call (eagerly, every op compiles on its own)."""
    return jax.jit(jax.vmap(optimizer.init))(params)


def separate_fits(params, optimizer, x, y, keys, states=None, **kwargs):
    results = []
    for i, key in enumerate(keys):
        single = model_i(params, i)
        state = None if states is None else model_i(states, i)
        results.append(trained_state(fn.fit(MODEL, single, optimizer, x, y, key=key, opt_state=state, **kwargs)))
    return results


@pytest.mark.parametrize("grad", fn.engine.GRAD_MODES)
def test_vmapped_seeds_equal_separate_fits(grad):
    x, y = regression_problem(rows=30)
    keys = jax.random.split(jax.random.key(0), 3)
    params = fn.stacked_init(MODEL, keys)
    arguments = dict(epochs=3, batch_size=8, validation_split=0.2, grad=grad)
    many, _, histories = fn.fit_many(MODEL, params, ADAM, x, y, keys=keys, **arguments)
    for i, (single, _, history) in enumerate(separate_fits(params, ADAM, x, y, keys, **arguments)):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, **CLOSE), many, single)
        np.testing.assert_allclose(histories[i]["train_loss"], history["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(histories[i]["val_loss"], history["val_loss"], rtol=1e-5)


@pytest.mark.parametrize("grad", fn.engine.GRAD_MODES)
def test_one_shared_key_gives_every_model_the_fit_with_that_key(grad):
    x, y = regression_problem(rows=30)
    params = fn.stacked_init(MODEL, jax.random.split(jax.random.key(0), 3))
    key = jax.random.key(7)
    arguments = dict(epochs=3, batch_size=8, validation_split=0.2, grad=grad)
    many, _, histories = fn.fit_many(MODEL, params, ADAM, x, y, key=key, **arguments)
    singles = separate_fits(params, ADAM, x, y, [key] * 3, **arguments)
    for i, (single, _, history) in enumerate(singles):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, **CLOSE), many, single)
        np.testing.assert_allclose(histories[i]["train_loss"], history["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(histories[i]["val_loss"], history["val_loss"], rtol=1e-5)
    assert len({history["train_loss"][-1] for history in histories}) == 3  # different inits, same data


def test_vmapped_learning_rates_equal_separate_fits():
    x, y = regression_problem(rows=24)
    rates = jnp.array([1e-3, 1e-2, 5e-2, 1e-1], jnp.float32)
    keys = jax.random.split(jax.random.key(1), 4)
    params = fn.stacked_init(MODEL, jnp.stack([jax.random.key(0)] * 4))  # same init, different rates
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    states = fn.with_hyperparam(stacked_opt_init(optimizer, params), "learning_rate", rates)
    many, many_states, histories = fn.fit_many(MODEL, params, optimizer, x, y, epochs=3, batch_size=8,
                                               keys=keys, opt_state=states)
    np.testing.assert_array_equal(many_states.hyperparams["learning_rate"], rates)
    for i, (single, _, history) in enumerate(separate_fits(params, optimizer, x, y, keys, states,
                                                           epochs=3, batch_size=8)):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, **CLOSE), many, single)
        np.testing.assert_allclose(histories[i]["train_loss"], history["train_loss"], rtol=1e-5)
    finals = [history["train_loss"][-1] for history in histories]
    assert len(set(finals)) == 4  # the rates really differ


@pytest.mark.parametrize("shared_key", [False, True], ids=["own keys", "shared key"])
def test_compilations_do_not_grow_with_the_number_of_models(shared_key):
    x, y = regression_problem(rows=20)
    optimizer = optax.adam(1e-2)
    counts = []
    for num_models in (2, 7):
        keys = jax.random.split(jax.random.key(num_models), num_models)
        params = fn.stacked_init(MODEL, keys)
        key_arguments = {"key": keys[0]} if shared_key else {"keys": keys}
        with CompileCounter() as counter:
            fn.fit_many(MODEL, params, optimizer, x, y, epochs=4, batch_size=8, validation_split=0.25,
                        **key_arguments)
        counts.append(counter.count)
    assert counts[0] == counts[1] <= 3


def test_a_diverging_model_does_not_stop_the_others():
    x, y = regression_problem(rows=16)
    keys = jax.random.split(jax.random.key(0), 2)
    optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    params = fn.stacked_init(MODEL, keys)
    states = fn.with_hyperparam(stacked_opt_init(optimizer, params), "learning_rate", [0.05, 1e9])
    _, _, histories = fn.fit_many(MODEL, params, optimizer, x, y, epochs=3, batch_size=4, keys=keys,
                                  opt_state=states)
    assert all(np.isfinite(histories[0]["train_loss"]))
    assert not np.isfinite(histories[1]["train_loss"][-1])


@pytest.mark.parametrize("make_args, message", [
    (lambda params, keys: (jax.tree.map(lambda a: a[0], params), keys),
     r"`params` holds one model's params \(the shapes model.init makes\); fit_many needs them stacked"),
    (lambda params, keys: ([{**params[0], "b": params[0]["b"][:2]}, params[1]], keys),
     r"`params` must be stacked: every leaf needs the same leading \(model\) axis, but their leading sizes "
     r"are \[2, 3\]"),
    (lambda params, keys: ([{**params[0], "W": params[0]["W"][:, :2]}, params[1]], keys),
     r"`params` must be stacked: a leading model axis \(3\) on every leaf, then the shapes model.init makes, "
     r"but one model's slice does not fit: `params\[0\]\['W'\]` has shape \(2, 8\)"),
    (lambda params, keys: (params, keys[:2]), r"`keys` has shape \(2,\); expected one key per model, \(3,\)"),
    (lambda params, keys: (params, jax.random.key_data(keys)[:2]),
     r"`keys` has shape \(2, 2\); expected one key per model, \(3, 2\)"),
])
def test_fit_many_rejects_mismatched_inputs(make_args, message):
    x, y = regression_problem(rows=8)
    keys = jax.random.split(jax.random.key(0), 3)
    params, keys = make_args(fn.stacked_init(MODEL, keys), keys)
    with pytest.raises(ValueError, match=message):
        fn.fit_many(MODEL, params, optax.sgd(0.1), x, y, epochs=1, keys=keys)


@pytest.mark.parametrize("key_arguments", [
    lambda keys: {},
    lambda keys: {"keys": keys, "key": keys[0]},
], ids=["neither", "both"])
def test_fit_many_needs_either_per_model_keys_or_one_shared_key(key_arguments):
    x, y = regression_problem(rows=8)
    keys = jax.random.split(jax.random.key(0), 2)
    with pytest.raises(ValueError, match=r"give exactly one of `keys` \(one jax.random key per model.*or `key`"):
        fn.fit_many(MODEL, fn.stacked_init(MODEL, keys), optax.sgd(0.1), x, y, epochs=1,
                    **key_arguments(keys))


def test_with_hyperparam_explains_how_to_make_rates_batchable():
    state = stacked_opt_init(optax.adam(1e-3), fn.stacked_init(MODEL, jax.random.split(jax.random.key(0), 2)))
    with pytest.raises(ValueError, match=r"build the optimizer with optax.inject_hyperparams"):
        fn.with_hyperparam(state, "learning_rate", [1e-3, 1e-2])


def test_with_hyperparam_needs_one_value_per_model():
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    state = stacked_opt_init(optimizer, fn.stacked_init(MODEL, jax.random.split(jax.random.key(0), 2)))
    with pytest.raises(ValueError, match=r"`values` for 'learning_rate' has shape \(3,\); expected one per model, \(2,\)"):
        fn.with_hyperparam(state, "learning_rate", [1e-3, 1e-2, 1e-1])


def test_fit_many_rejects_a_negative_epoch_count():
    x, y = regression_problem(rows=8)
    keys = jax.random.split(jax.random.key(0), 2)
    with pytest.raises(ValueError, match=r"`epochs` must be an integer ≥ 0, got -1"):
        fn.fit_many(MODEL, fn.stacked_init(MODEL, keys), optax.sgd(0.1), x, y, epochs=-1, keys=keys)


@pytest.mark.parametrize("grad", fn.engine.GRAD_MODES)
def test_vmapped_models_with_dropout_get_the_masks_fit_gives_them(grad):
    model = fn.mlp([3, 6, 1], dropout=0.3)
    x, y = regression_problem(rows=30)
    keys = jax.random.split(jax.random.key(3), 2)
    params = fn.stacked_init(model, keys)
    arguments = dict(epochs=2, batch_size=8, grad=grad)
    many, _, _ = fn.fit_many(model, params, ADAM, x, y, keys=keys, **arguments)
    for i, key in enumerate(keys):
        single, _ = fn.fit(model, model_i(params, i), ADAM, x, y, key=key, **arguments)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, **CLOSE), many, single)
    # params[::2] drops the dropout layer's empty {}: the same dense params without dropout
    no_dropout = fn.fit_many(fn.mlp([3, 6, 1]), params[::2], ADAM, x, y, keys=keys, **arguments)[0]
    assert not np.allclose(many[0]["W"], no_dropout[0]["W"])


@pytest.mark.parametrize("keys, message", [
    pytest.param(jax.random.split(jax.random.key(0), (2, 2)),
                 r"^`keys` must be one batch of jax.random keys, one per model, of shape \(N,\) \(typed keys\), got "
                 r"shape \(2, 2\): a batch of 2 axes; for 4 models pass keys.reshape\(-1\)$", id="typed"),
    pytest.param(jax.random.split(jax.random.PRNGKey(0), (2, 3)),
                 r"of shape \(N, 2\) \(raw uint32 keys\), got shape \(2, 3, 2\): a batch of 2 axes; for 6 models "
                 r"pass keys.reshape\(-1, 2\)$", id="raw"),
    pytest.param(jax.random.key(0), r"^`keys` must be a batch of jax.random keys, one per model, got a single key",
                 id="single"),
])
def test_stacked_init_needs_one_batch_axis_of_keys_and_names_keys(keys, message):
    with pytest.raises(ValueError, match=message):
        fn.stacked_init(MODEL, keys)

"""Many independent models in one compiled program: ``jax.vmap`` over params, optimizer states and keys.

``fit_many`` runs :func:`funcnet.engine.make_train_epoch` under ``jax.vmap``: model
``i`` has its own parameters, optimizer state and key (so its own init, its
own validation split and its own shuffles), and all of them advance one
epoch per compiled call.  With one shared key instead, the split and the
batches are the same for every model, and vmap computes them once.
Learning rates can differ per model when they live in the optimizer state::

    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    states = jax.vmap(optimizer.init)(stacked_params)
    states = fn.with_hyperparam(states, "learning_rate", jnp.logspace(-4, -1, 16))

Model ``i`` of ``fit_many`` computes what ``fit`` computes for params ``i``,
key ``i`` and state ``i`` (the tests check this to float32 rounding).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from funcnet import checks
from funcnet.data import split_count
from funcnet.engine import as_arrays, check_opt_state, make_train_epoch, prepare


def stacked_init(model, keys: jax.Array, dtype=jnp.float32) -> list[dict]:
    """``model.init`` for each key, stacked: every leaf gets a leading axis of ``len(keys)``.

    ``keys`` is one batch of ``jax.random`` keys, one per model: typed keys of shape ``(N,)`` or raw
    ``uint32`` ones of shape ``(N, 2)``, e.g. ``jax.random.split(jax.random.key(0), 8)``.

    Raises:
      ValueError: naming ``keys`` for a single key or a batch with more than one axis
        (``jax.random.split(key, (2, 2))``: flatten it with ``keys.reshape(-1)``, or ``(-1, 2)`` for raw keys).
    """
    checks.check_key(keys, "keys", "stacked_init")
    batch_shape = np.shape(keys)[: -1 if _raw_keys(keys) else None]
    if not batch_shape:
        raise ValueError(f"`keys` must be a batch of jax.random keys, one per model, got a single key; make "
                         f"them with jax.random.split(jax.random.key(0), num_models)")
    if len(batch_shape) > 1:
        expected, flat = ("(N, 2) (raw uint32 keys)", "keys.reshape(-1, 2)") if _raw_keys(keys) else \
            ("(N,) (typed keys)", "keys.reshape(-1)")
        raise ValueError(f"`keys` must be one batch of jax.random keys, one per model, of shape {expected}, got "
                         f"shape {np.shape(keys)}: a batch of {len(batch_shape)} axes; for "
                         f"{int(np.prod(batch_shape))} models pass {flat}")
    return jax.vmap(lambda key: model.init(key, dtype))(keys)


def _raw_keys(keys) -> bool:
    """Whether ``keys`` are raw ``uint32[..., 2]`` keys rather than typed ``jax.random.key`` ones."""
    return not jnp.issubdtype(jnp.asarray(keys).dtype, jax.dtypes.prng_key)


def with_hyperparam(opt_state, name: str, values):
    """A copy of an ``optax.inject_hyperparams`` state with hyperparameter ``name`` set per model.

    Raises:
      ValueError: if the state has no ``hyperparams`` (build the optimizer
        with ``optax.inject_hyperparams``) or no hyperparameter ``name``, or
        ``values`` are not finite real numbers, one per model.
    """
    hyperparams = getattr(opt_state, "hyperparams", None)
    checks.check_real_dtype("values", values)
    checks.check_finite("values", np.asarray(values), advice="Each model needs a finite value")
    if hyperparams is None or name not in hyperparams:
        known = sorted(hyperparams) if hyperparams is not None else []
        raise ValueError(
            f"the optimizer state has no hyperparameter {name!r} (it has {known}); build the optimizer "
            f"with optax.inject_hyperparams, e.g. optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)"
        )
    values = jnp.asarray(values, jnp.asarray(hyperparams[name]).dtype)
    if values.shape != jnp.shape(hyperparams[name]):
        raise ValueError(f"`values` for {name!r} has shape {values.shape}; expected one per model, "
                         f"{jnp.shape(hyperparams[name])}")
    return opt_state._replace(hyperparams={**hyperparams, name: values})


def _train_axis(held_out: int, key_axis):
    """0 when each model holds its own training rows (own split), None when all share one copy."""
    return 0 if held_out and key_axis == 0 else None


@functools.lru_cache(maxsize=32)
def _many_prepare(optimizer, held_out, fresh_state, key_axis):
    """The set-up of every model in one compiled call (each with its own split when keys are per model)."""
    train_axis = _train_axis(held_out, key_axis)
    return jax.jit(jax.vmap(functools.partial(prepare, optimizer, held_out),
                            in_axes=(0, None if fresh_state else 0, None, None, key_axis),
                            out_axes=(0, 0, train_axis, train_axis)))


@functools.lru_cache(maxsize=32)
def _many_epoch(model, optimizer, grad, batch_size, train_axis, val_axis, key_axis):
    train_epoch = make_train_epoch(model, optimizer, grad, batch_size)
    in_axes = (0, 0, train_axis, train_axis, key_axis, None)
    if val_axis is not False:
        in_axes += (val_axis, val_axis)
    return jax.jit(jax.vmap(train_epoch, in_axes=in_axes))


_STACK_HINT = "build them with fn.stacked_init(model, keys)"


def _is_one_model(model, params) -> bool:
    """Whether ``params`` have exactly the shapes ``model.init`` makes: one model's, not stacked."""
    try:
        checks.check_param_shapes(model, params)
    except ValueError:
        return False
    return True


def _one_model_shapes(model, params):
    """``(N, one model's params as jax.ShapeDtypeStruct)`` of stacked ``params``, whose every leaf has the
    shape ``(N, *shape model.init makes)``.

    Raises:
      ValueError: for a model without params, params of one model (not stacked), leading axes that differ
        between leaves, or per-model shapes the model does not make.
    """
    checks.check_has_params(model, params, "fit_many")
    leaves = jax.tree.leaves(params)
    if _is_one_model(model, params):
        raise ValueError("`params` holds one model's params (the shapes model.init makes); fit_many needs "
                         f"them stacked, every leaf with a leading model axis: {_STACK_HINT}")
    sizes = sorted({np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}, key=str)
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"`params` must be stacked: every leaf needs the same leading (model) axis, but their "
                         f"leading sizes are {sizes}; {_STACK_HINT}")
    one = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(np.shape(leaf)[1:], leaf.dtype), params)
    try:
        checks.check_param_shapes(model, one)
    except ValueError as error:
        raise ValueError(f"`params` must be stacked: a leading model axis ({sizes[0]}) on every leaf, then the "
                         f"shapes model.init makes, but one model's slice does not fit: {error}") from None
    return sizes[0], one


def _key_axis(count: int, keys, key):
    """0 for one key per model (``keys``), None for one key shared by all (``key``)."""
    if (keys is None) == (key is None):
        raise ValueError("give exactly one of `keys` (one jax.random key per model: own split and "
                         "shuffles) or `key` (one key: every model sees the same split and batches)")
    if key is not None:
        checks.check_key(key, "key", "fit_many")
        if np.shape(key) != ((2,) if _raw_keys(key) else ()):
            raise ValueError(f"`key` must be one jax.random key (shared by all models), got a batch of shape "
                             f"{np.shape(key)}; pass one key per model as keys=")
        return None
    checks.check_key(keys, "keys", "fit_many")
    expected = (count, 2) if _raw_keys(keys) else (count,)
    if np.shape(keys) != expected:
        raise ValueError(f"`keys` has shape {np.shape(keys)}; expected one key per model, {expected}")
    return 0


def fit_many(model, params, optimizer, x, y, *, epochs: int, batch_size: int = 32, keys: jax.Array = None,
             key: jax.Array = None, validation_split: float = 0.0, validation_data=None,
             grad: str = "autodiff", opt_state=None):
    """Train N copies of ``model`` at once, one compiled call per epoch for all of them.

    Args:
      model: a :class:`~funcnet.model.Network`.
      params: stacked params (leading axis N), e.g. ``fn.stacked_init(model, keys)``.
      optimizer: any optax ``GradientTransformation``; for per-model learning
        rates use ``optax.inject_hyperparams`` and :func:`with_hyperparam`.
      x, y: one dataset shared by all models.
      epochs, batch_size, validation_split, validation_data, grad: as in :func:`funcnet.fit`.
      keys: N ``jax.random`` keys: model ``i``'s validation split and shuffles.
      key: instead of ``keys``, one key shared by all models: every model sees
        the same split and the same batches (a fair comparison of learning
        rates or initialisations), and the shuffle, the gather of each epoch's
        batches and the data are paid for once, not N times.  Model ``i``
        still gets what ``fit(..., key=key)`` gives it, up to float32 rounding
        (vmapped products sum in another order).
      opt_state: stacked optimizer states, one per model (default ``jax.vmap(optimizer.init)(params)``);
        one model's state (``optimizer.init`` of unstacked params) is refused.

    Returns:
      ``(params, opt_state, histories)``: stacked params and states, and one
      history dict per model.  A model whose loss becomes NaN/inf keeps
      training (its history shows it); the others are unaffected.

    Raises:
      ValueError: naming the argument: params not stacked (or of a model
        without params), ``keys`` not one per model, ``key`` a batch,
        ``opt_state`` not one stacked state per model, bad data (as
        :func:`funcnet.fit`); ``epochs`` and ``batch_size`` take any integral
        type (``np.int64`` too) but not ``bool`` or ``2.0``.

    Memory: with per-model ``keys`` each model trains on its own shuffled
    copy of the training rows during an epoch (the engine's scatter,
    :func:`funcnet.engine.shuffled_copy`), so the rows are held N + 1 times
    (2N with ``validation_split``, each model having its own split); with one
    shared ``key`` all models share one shuffled copy.  Time: with per-model
    ``keys`` each epoch also shuffles and copies the rows N times.
    """
    epochs = checks.check_count(epochs, "epochs", minimum=0)
    batch_size = checks.check_count(batch_size, "batch_size")
    # one model's shapes and dtypes, for the checks (slicing would compile an op per leaf)
    num_models, first = _one_model_shapes(model, params)
    key_axis = _key_axis(num_models, keys, key)
    keys = key if key_axis is None else keys
    checks.check_param_dtypes(params)
    checks.check_param_values(params)
    dtype = checks.params_dtype(first)
    checks.check_data(model, x, y, dtype)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError(f"`validation_data` must be a pair (x_val, y_val), got {type(validation_data).__name__}"
                             + (f" of length {len(validation_data)}" if isinstance(validation_data, (tuple, list))
                                else ""))
        checks.check_data(model, *validation_data, dtype)
    x, y = as_arrays(model, first, x, y)
    held_out = 0 if validation_data is not None else split_count(x.shape[0], validation_split)
    train_axis = _train_axis(held_out, key_axis)
    val_axis = None if validation_data is not None else train_axis if held_out else False
    # built first: it checks `optimizer`, `grad` and `batch_size`, before anything calls the optimizer
    run_epoch = _many_epoch(model, optimizer, grad, batch_size, train_axis, val_axis, key_axis)
    if opt_state is not None:
        check_opt_state(optimizer, first, opt_state, num_models)
        checks.check_param_values(opt_state, "opt_state")
    prepare = _many_prepare(optimizer, held_out, opt_state is None, key_axis)
    params, opt_state, train, validation = prepare(params, opt_state, x, y, keys)
    if validation_data is not None:
        validation = as_arrays(model, first, *validation_data)
    train_losses, val_losses = [], []
    for epoch in range(epochs):
        params, opt_state, train_loss, val_loss = run_epoch(
            params, opt_state, *train, keys, epoch, *(validation or ()))
        train_losses.append(np.asarray(train_loss))
        val_losses.append(np.asarray(val_loss))
    histories = [
        {"train_loss": [float(losses[i]) for losses in train_losses],
         "val_loss": [float(losses[i]) for losses in val_losses] if validation is not None else []}
        for i in range(num_models)
    ]
    return params, opt_state, histories

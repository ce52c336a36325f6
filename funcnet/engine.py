"""The training engine: a jitted ``train_step`` and a whole epoch as one compiled call.

Backpropagation (computing gradients) and gradient descent (using them) are
separate stages, as the second article recommends: ``grad="manual"`` or
``grad="autodiff"`` picks the first, any ``optax.GradientTransformation``
is the second.  One step is

    loss, grads     = value_and_grad(params, x, y, key=k)   # manual or jax.grad
    updates, state  = optimizer.update(grads, state, params)
    params          = optax.apply_updates(params, updates)

with ``value_and_grad`` either ``model.manual_grad`` (the hand-written
backprop of :mod:`funcnet.backprop`) or ``jax.value_and_grad(model.loss)``:
the very functions users call, nothing else.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from jax import lax

from funcnet import sharding
from funcnet.data import map_in_chunks
from funcnet.shuffle import permutation

GRAD_MODES = ("autodiff", "manual")
VALIDATION_STREAM = 2**32 - 1  # the shuffle stream that picks validation rows; epochs use 0, 1, ...
DROPOUT_STREAM = 2**31 - 1  # fold_in constant that separates dropout keys from the shuffle's use of the key


def value_and_grad_fn(model, grad: str = "autodiff"):
    """``(params, x, y, weights=None, *, key=None) -> (loss, grads)``: ``jax.grad`` or by hand.

    ``"autodiff"`` is ``jax.value_and_grad(model.loss)``; ``"manual"`` is
    ``model.manual_grad``.  Training steps use exactly these.

    Raises:
      ValueError: for a ``grad`` other than ``"autodiff"`` or ``"manual"``.
    """
    if grad == "autodiff":
        return jax.value_and_grad(model.loss)
    if grad == "manual":
        return model.manual_grad
    raise ValueError(f"unknown grad {grad!r}; expected one of {', '.join(GRAD_MODES)}")


def check_optimizer(optimizer) -> None:
    """``optimizer`` must look like an ``optax.GradientTransformation``."""
    if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
        raise TypeError(
            f"`optimizer` must be an optax.GradientTransformation (e.g. optax.adam(1e-3)), "
            f"got {type(optimizer).__name__}"
        )


def update_fn(model, optimizer, grad):
    """The un-jitted step ``(params, state, x, y, weights=None, *, key=None) -> (params, state, loss)``."""
    compute = value_and_grad_fn(model, grad)

    def update(params, opt_state, x, y, weights=None, *, key=None):
        value, grads = compute(params, x, y, weights, key=key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return update


def make_train_step(model, optimizer, grad: str = "autodiff"):
    """A jitted training step: gradients (by hand or ``jax.grad``), then the optax update.

    Args:
      model: a :class:`~funcnet.model.Network` (from :func:`funcnet.mlp` or :func:`funcnet.sequential`).
      optimizer: any ``optax.GradientTransformation`` (sgd, adam, a chain, a schedule...).
      grad: ``"autodiff"`` (``jax.value_and_grad(model.loss)``) or ``"manual"``
        (``model.manual_grad``, the hand-written backprop).

    Returns:
      ``train_step(params, opt_state, x, y, weights=None, *, key=None) -> (params, opt_state, loss)``,
      jitted; ``loss`` is the batch's objective *before* the update.  A model
      with dropout needs a fresh ``key`` every step (``fit`` uses
      :func:`step_key`).  Shape checks run while it traces (once per shape);
      call :func:`funcnet.check_data` once on your dataset for the value checks.

    Example:
      >>> opt = optax.adam(1e-3)
      >>> train_step = fn.make_train_step(model, opt, grad="manual")
      >>> opt_state = opt.init(params)
      >>> params, opt_state, loss = train_step(params, opt_state, x, y)
    """
    check_optimizer(optimizer)
    return jax.jit(update_fn(model, optimizer, grad))


def step_key(key, epoch, step):
    """The dropout key of step ``step`` of epoch ``epoch``: ``fold_in(fold_in(fold_in(key, S), epoch), step)``.

    ``S`` is a fixed stream constant that keeps these keys apart from the
    shuffle's use of ``key``.  ``fit`` gives step ``s`` of epoch ``e`` exactly
    this key, so a loop of your own around ``train_step`` can reproduce it.
    """
    return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, DROPOUT_STREAM), epoch), step)


def shuffled_batch_rows(key, num_samples: int, batch_size: int, epoch=0):
    """The row indices of one epoch's batches: ``(full (n // batch_size, batch_size), remainder or None)``.

    The order is ``funcnet.shuffle.permutation(key, n, stream=epoch)`` (a
    fused swap-or-not shuffle, 20x faster on CPU than ``jax.random.permutation``):
    one key gives a different, reproducible order for every ``epoch``.
    ``remainder`` holds the last ``n % batch_size`` indices, or is ``None``
    when ``batch_size`` divides ``n``.
    """
    order = permutation(key, num_samples, stream=epoch)
    num_full = num_samples // batch_size
    cut = num_full * batch_size
    return order[:cut].reshape(num_full, batch_size), (order[cut:] if cut < num_samples else None)


def shuffled_batches(key, x, y, batch_size: int, epoch=0):
    """One epoch's batches in a random order: every row exactly once.

    The rows of :func:`shuffled_batch_rows`; the batches ``fit`` trains on.

    Returns:
      ``(full, remainder)``: ``full`` is ``(x, y)`` stacked to
      ``(n // batch_size, batch_size, ...)``; ``remainder`` is ``(x, y)`` for
      the last ``n % batch_size`` rows, or ``None`` when ``batch_size``
      divides ``n``.  Both shapes are static, so nothing recompiles between
      epochs and no row is dropped or repeated.
    """
    full, remainder = shuffled_batch_rows(key, x.shape[0], batch_size, epoch)
    return (x[full], y[full]), (None if remainder is None else (x[remainder], y[remainder]))


def mean_loss(model, params, x, y, chunk_size: int = 8192):
    """The model's data loss at inference over all of ``(x, y)``, in chunks of rows (traceable)."""
    per_sample = map_in_chunks(
        lambda xc, yc: model.loss_fn.per_sample(model.logits(params, xc), yc, model.output_fn),
        (x, y),
        chunk_size,
    )
    return jnp.mean(per_sample)


@functools.lru_cache(maxsize=64)
def make_train_epoch(model, optimizer, grad: str = "autodiff", batch_size: int = 32, mesh=None):
    """One whole epoch as one compiled call: shuffle, a scan over batches, the remainder, validation.

    Returns:
      jitted ``train_epoch(params, opt_state, x, y, key, epoch, x_val=None, y_val=None,
      sample_weight=None) -> (params, opt_state, train_loss, val_loss)``.  Each
      batch's loss is weighted by ``sample_weight`` (per row, ``(n,)``) when
      given.  ``train_loss`` is the weighted mean of the batch objectives seen
      during the epoch (each
      computed before its update, as the articles do, with dropout and the
      L2 term); ``val_loss`` is the data loss at inference on
      ``(x_val, y_val)`` after the epoch, NaN when not given.  Step ``s``
      gets ``step_key(key, epoch, s)`` when the model has dropout.
      The function is cached per ``(model, optimizer, grad, batch_size, mesh)``,
      so repeated ``fit`` calls with the same arguments and data shapes do
      not recompile.  With a ``mesh`` every batch's rows are split over its
      ``"data"`` axis (see :mod:`funcnet.sharding`).
    """
    check_optimizer(optimizer)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    update = update_fn(model, optimizer, grad)
    devices = 1 if mesh is None else sharding.check_mesh(mesh, batch_size)

    def split_rows(arrays):
        if mesh is None or arrays[0].shape[0] % devices:
            return arrays  # a leftover batch that does not divide runs whole on every device
        return tuple(sharding.constrain_rows(mesh, a, 0) for a in arrays)

    def train_epoch(params, opt_state, x, y, key, epoch, x_val=None, y_val=None, sample_weight=None):
        num_samples = x.shape[0]
        full, remainder = shuffled_batch_rows(key, num_samples, batch_size, epoch)

        def keyed_update(params, opt_state, rows, step):  # each step gathers its own rows: no shuffled copy
            batch = (x[rows], y[rows]) + (() if sample_weight is None else (sample_weight[rows],))
            params, opt_state, value = update(params, opt_state, *split_rows(batch),
                                              key=step_key(key, epoch, step) if model.needs_key else None)
            weight = rows.shape[0] if sample_weight is None else jnp.sum(sample_weight[rows])
            return params, opt_state, (value * weight, weight)

        def scan_body(state, rows_and_step):
            params, opt_state, totals = keyed_update(*state, *rows_and_step)
            return (params, opt_state), totals

        total, weight = jnp.zeros((), x.dtype), jnp.zeros((), x.dtype)
        if full.shape[0]:
            steps = jnp.arange(full.shape[0], dtype=jnp.uint32)
            (params, opt_state), (values, weights) = lax.scan(scan_body, (params, opt_state), (full, steps))
            total, weight = jnp.sum(values), jnp.sum(weights)
        if remainder is not None:
            params, opt_state, (value, rows) = keyed_update(params, opt_state, remainder, full.shape[0])
            total, weight = total + value, weight + rows
        val_loss = jnp.nan if x_val is None else mean_loss(model, params, x_val, y_val)
        return params, opt_state, total / weight, jnp.asarray(val_loss, x.dtype)

    return jax.jit(train_epoch)


def as_arrays(model, params, x, y):
    """``x`` in the params' dtype; ``y`` too, or int32 for integer class labels."""
    dtype = jax.tree.leaves(params)[0].dtype
    x = jnp.asarray(x, dtype)
    is_class_index = model.loss_fn.integer_labels and jnp.ndim(y) == 1
    y = jnp.asarray(y, jnp.int32 if is_class_index else dtype)
    return x, y


@functools.partial(jax.jit, static_argnums=(0, 1))
def prepare(optimizer, held_out: int, params, opt_state, x, y, key, sample_weight=None):
    """One compiled call that sets a fit up: copy params, init the optimizer, split off validation.

    Done eagerly these are a dozen small ops, each compiled anew for every
    data shape; jitted together they are one compilation.  The outputs of a
    jitted function are fresh buffers, so the caller's params are never aliased.

    Returns:
      ``(params, opt_state, train, validation)``: ``train`` is ``(x, y)``, or
      ``(x, y, sample_weight)`` with weights; ``validation`` is ``(x, y)`` of
      the held-out rows or ``None``.
    """
    params = jax.tree.map(jnp.copy, params)
    opt_state = optimizer.init(params) if opt_state is None else opt_state
    weights = () if sample_weight is None else (sample_weight,)
    if held_out == 0:
        return params, opt_state, (x, y, *weights), None
    order = permutation(key, x.shape[0], stream=VALIDATION_STREAM)
    val_rows, train_rows = order[:held_out], order[held_out:]
    train = (x[train_rows], y[train_rows], *(w[train_rows] for w in weights))
    return params, opt_state, train, (x[val_rows], y[val_rows])

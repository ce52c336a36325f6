"""Training: a jitted ``train_step``, a compiled whole epoch, and ``fit`` on top of them.

Backpropagation (computing gradients) and gradient descent (using them) are
separate stages, as the second article recommends: ``grad="manual"`` or
``grad="autodiff"`` picks the first, any ``optax.GradientTransformation``
is the second.  One step is

    loss, grads     = value_and_grad(params, x, y)        # manual or jax.grad
    updates, state  = optimizer.update(grads, state, params)
    params          = optax.apply_updates(params, updates)

``fit`` is optional sugar: each epoch is one compiled call of
:func:`make_train_epoch` (shuffle on the device, a ``lax.scan`` of the same
step over every batch), so a user's own loop around ``train_step`` can do
exactly what ``fit`` does.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import optax
from jax import lax

from funcnet import checks, columns, sharding
from funcnet.data import map_in_chunks, split_count
from funcnet.early_stopping import EarlyStopping
from funcnet.shuffle import permutation

GRAD_MODES = ("autodiff", "manual")
VALIDATION_STREAM = 2**32 - 1  # the shuffle stream that picks validation rows; epochs use 0, 1, ...


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; carries the last finite state.

    Attributes:
      epoch: the (0-based) epoch whose loss was not finite.
      params, opt_state: the state at the end of the last finite epoch (the
        initial state when the first epoch failed).
      history: the per-epoch losses up to the last finite epoch.
    """

    def __init__(self, message, *, epoch, params, opt_state, history):
        super().__init__(message)
        self.epoch, self.params, self.opt_state, self.history = epoch, params, opt_state, history


def value_and_grad_fn(model, grad: str = "autodiff"):
    """``(params, x, y, weights=None) -> (loss, grads)`` by ``jax.grad`` or by hand.

    Raises:
      ValueError: for a ``grad`` other than ``"autodiff"`` or ``"manual"``.
    """
    if grad == "autodiff":
        return jax.value_and_grad(model.loss)
    if grad == "manual":
        return model.manual_grad
    raise ValueError(f"unknown grad {grad!r}; expected one of {', '.join(GRAD_MODES)}")


def _check_optimizer(optimizer) -> None:
    if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))):
        raise TypeError(
            f"`optimizer` must be an optax.GradientTransformation (e.g. optax.adam(1e-3)), "
            f"got {type(optimizer).__name__}"
        )


def _update_fn(model, optimizer, grad):
    """The un-jitted step ``(params, state, x, y, weights) -> (params, state, loss)``.

    Gradients are computed in the first article's column-major layout
    (:mod:`funcnet.columns`): the same values as :func:`value_and_grad_fn`, faster on CPU.
    """
    compute = columns.value_and_grad_fn(model, grad)

    def update(params, opt_state, x, y, weights=None):
        value, grads = compute(params, x, y, weights)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return update


def make_train_step(model, optimizer, grad: str = "autodiff"):
    """A jitted training step: gradients (by hand or ``jax.grad``), then the optax update.

    Args:
      model: an :class:`~funcnet.model.MLP`.
      optimizer: any ``optax.GradientTransformation`` (sgd, adam, a chain, a schedule...).
      grad: ``"autodiff"`` (``jax.value_and_grad`` of the loss) or ``"manual"``
        (the hand-written backprop).  Both are computed in the first
        article's column-major layout (:mod:`funcnet.columns`), which is faster
        on CPU and gives ``jax.value_and_grad(model.loss)`` and
        ``model.manual_grad`` up to rounding.

    Returns:
      ``train_step(params, opt_state, x, y, weights=None) -> (params, opt_state, loss)``,
      jitted; ``loss`` is the batch's mean loss *before* the update.  Shape
      checks run while it traces (once per shape); call
      :func:`funcnet.check_data` once on your dataset for the value checks.

    Example:
      >>> opt = optax.adam(1e-3)
      >>> train_step = fn.make_train_step(model, opt, grad="manual")
      >>> opt_state = opt.init(params)
      >>> params, opt_state, loss = train_step(params, opt_state, x, y)
    """
    _check_optimizer(optimizer)
    return jax.jit(_update_fn(model, optimizer, grad))


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
    """The model's mean loss over all of ``(x, y)``, evaluated in chunks of rows (traceable)."""
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
      jitted ``train_epoch(params, opt_state, x, y, key, epoch, x_val=None, y_val=None)
      -> (params, opt_state, train_loss, val_loss)``.  ``train_loss`` is the
      sample-weighted mean of the batch losses seen during the epoch (each
      computed before its update, as the articles do); ``val_loss`` is the
      mean loss on ``(x_val, y_val)`` after the epoch, NaN when not given.
      The function is cached per ``(model, optimizer, grad, batch_size, mesh)``,
      so repeated ``fit`` calls with the same arguments and data shapes do
      not recompile.  With a ``mesh`` every batch's rows are split over its
      ``"data"`` axis (see :mod:`funcnet.sharding`).
    """
    _check_optimizer(optimizer)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    update = _update_fn(model, optimizer, grad)
    devices = 1 if mesh is None else sharding.check_mesh(mesh, batch_size)

    def split_rows(arrays):
        if mesh is None or arrays[0].shape[0] % devices:
            return arrays  # a leftover batch that does not divide runs whole on every device
        return tuple(sharding.constrain_rows(mesh, a, 0) for a in arrays)

    def train_epoch(params, opt_state, x, y, key, epoch, x_val=None, y_val=None):
        num_samples = x.shape[0]
        full, remainder = shuffled_batch_rows(key, num_samples, batch_size, epoch)

        def scan_body(state, rows):  # each step gathers its own rows: no shuffled copy of the data
            params, opt_state, value = update(*state, *split_rows((x[rows], y[rows])))
            return (params, opt_state), value

        total = jnp.zeros((), x.dtype)
        if full.shape[0]:
            (params, opt_state), values = lax.scan(scan_body, (params, opt_state), full)
            total = jnp.sum(values) * batch_size
        if remainder is not None:
            params, opt_state, value = update(params, opt_state, *split_rows((x[remainder], y[remainder])))
            total = total + value * remainder.shape[0]
        val_loss = jnp.nan if x_val is None else mean_loss(model, params, x_val, y_val)
        return params, opt_state, total / num_samples, jnp.asarray(val_loss, x.dtype)

    return jax.jit(train_epoch)


def _as_arrays(model, params, x, y):
    dtype = jax.tree.leaves(params)[0].dtype
    x = jnp.asarray(x, dtype)
    is_class_index = model.loss_name == "cross_entropy" and jnp.ndim(y) == 1
    y = jnp.asarray(y, jnp.int32 if is_class_index else dtype)
    return x, y


@functools.partial(jax.jit, static_argnums=(0, 1))
def _prepare(optimizer, held_out: int, params, opt_state, x, y, key):
    """One compiled call that sets a fit up: copy params, init the optimizer, split off validation.

    Done eagerly these are a dozen small ops, each compiled anew for every
    data shape; jitted together they are one compilation.  The outputs of a
    jitted function are fresh buffers, so the caller's params are never aliased.
    """
    params = jax.tree.map(jnp.copy, params)
    opt_state = optimizer.init(params) if opt_state is None else opt_state
    if held_out == 0:
        return params, opt_state, (x, y), None
    order = permutation(key, x.shape[0], stream=VALIDATION_STREAM)
    val_rows, train_rows = order[:held_out], order[held_out:]
    return params, opt_state, (x[train_rows], y[train_rows]), (x[val_rows], y[val_rows])


def _place_on_mesh(mesh, tree):
    """Replicate host data and single-device arrays on ``mesh``; leave global (multi-process) arrays as they are."""
    def place(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return leaf
        return sharding.replicate(mesh, leaf)

    return jax.tree.map(place, tree)


def fit(
    model,
    params,
    optimizer,
    x,
    y,
    *,
    epochs: int,
    batch_size: int = 32,
    key: jax.Array,
    validation_split: float = 0.0,
    validation_data=None,
    grad: str = "autodiff",
    opt_state=None,
    verbose: bool = False,
    callback=None,
    initial_epoch: int = 0,
    history=None,
    patience: int | None = None,
    mesh=None,
):
    """Train ``model`` with mini-batch gradient descent; every row is visited once per epoch.

    Args:
      model: an :class:`~funcnet.model.MLP`.
      params: initial parameters (never modified: ``fit`` works on a copy).
      optimizer: any ``optax.GradientTransformation``.
      x: inputs ``(n, sizes[0])``.  y: targets (see ``model.loss``).
      epochs: number of passes over the training rows.
      batch_size: rows per step; the last batch of an epoch holds the
        ``n % batch_size`` leftover rows (a smaller step, not padding).
      key: ``jax.random`` key for the validation split and the per-epoch
        shuffles (epoch ``e`` uses ``shuffled_batches(key, ..., epoch=e)``);
        same key, same result, bit for bit.
      validation_split: fraction of rows held out (``ceil``), chosen at
        random with ``key``; 0 (default) trains on every row.
      validation_data: explicit ``(x_val, y_val)``; overrides ``validation_split``.
      grad: ``"autodiff"`` or ``"manual"``.
      opt_state: optimizer state to continue from (default ``optimizer.init(params)``).
      verbose: print one line per epoch.
      callback: optional ``callback(epoch, params, opt_state, history)`` called
        after every epoch (progress bars, checkpoints, timing); returning
        ``True`` stops training after that epoch.
      initial_epoch: the epoch to start from when resuming (epochs
        ``initial_epoch … epochs-1`` run, each with its own shuffle), so that
        a run resumed from a checkpoint matches an uninterrupted one.
      history: a history to continue (copied, not modified).
      patience: early stopping: stop after this many epochs without a lower
        validation loss and return the params of the best epoch (needs
        validation data).  ``history["best_epoch"]`` records which.
      mesh: a ``jax.sharding.Mesh`` with a ``"data"`` axis: data-parallel
        training, every batch split over the devices, params and optimizer
        state replicated, gradients all-reduced by XLA (see
        :mod:`funcnet.sharding` for the batch-size rule).  Gives the same
        params as one device, up to float32 summation order.

    Returns:
      ``(params, history)``; ``history["train_loss"]`` and ``history["val_loss"]``
      are lists with one float per epoch (``val_loss`` empty without validation).

    Raises:
      ValueError: for bad data or arguments (see :mod:`funcnet.checks`).
      NonFiniteLossError: when an epoch's loss is NaN/inf; it carries the last finite state.
    """
    params, _opt_state, history = fit_state(
        model, params, optimizer, x, y, epochs=epochs, batch_size=batch_size, key=key,
        validation_split=validation_split, validation_data=validation_data, grad=grad,
        opt_state=opt_state, verbose=verbose, callback=callback, initial_epoch=initial_epoch,
        history=history, patience=patience, mesh=mesh,
    )
    return params, history


def fit_state(model, params, optimizer, x, y, *, epochs, batch_size=32, key,
              validation_split=0.0, validation_data=None, grad="autodiff",
              opt_state=None, verbose=False, callback=None, initial_epoch=0, history=None,
              patience=None, mesh=None):
    """:func:`fit`, returning ``(params, opt_state, history)`` so training can be resumed."""
    for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise ValueError(f"`patience` must be a positive integer or None, got {patience!r}")
    if patience is not None and validation_data is None and not validation_split:
        raise ValueError("`patience` needs validation data: pass validation_split > 0 or validation_data")
    train_epoch = make_train_epoch(model, optimizer, grad, batch_size, mesh)
    checks.check_params(model, params)
    checks.check_data(model, x, y)
    x, y = _as_arrays(model, params, x, y)
    if mesh is not None:
        params, opt_state, x, y = _place_on_mesh(mesh, (params, opt_state, x, y))
    held_out = 0 if validation_data is not None else split_count(x.shape[0], validation_split)
    params, opt_state, train, validation = _prepare(
        optimizer, held_out, params, opt_state, x, y, key)
    if validation_data is not None:
        checks.check_data(model, *validation_data)
        validation = _as_arrays(model, params, *validation_data)
        if mesh is not None:
            validation = _place_on_mesh(mesh, validation)
    history = {"train_loss": list((history or {}).get("train_loss", [])),
               "val_loss": list((history or {}).get("val_loss", []))}
    stopper = None if patience is None else EarlyStopping(patience)
    best_params = params
    for epoch in range(initial_epoch, epochs):
        new_params, new_opt_state, train_loss, val_loss = train_epoch(
            params, opt_state, *train, key, epoch,
            *(validation or ()),
        )
        train_loss, val_loss = float(train_loss), float(val_loss)
        if not (math.isfinite(train_loss) and (validation is None or math.isfinite(val_loss))):
            raise NonFiniteLossError(
                f"epoch {epoch}: the loss became {train_loss if not math.isfinite(train_loss) else val_loss}"
                " (not finite). Likely causes: a learning rate too high for this optimizer and "
                "data (try 10x smaller), or unscaled features/targets. The last finite params "
                "are in this exception's `.params`.",
                epoch=epoch, params=params, opt_state=opt_state, history=history,
            )
        params, opt_state = new_params, new_opt_state
        history["train_loss"].append(train_loss)
        if validation is not None:
            history["val_loss"].append(val_loss)
        if verbose:
            shown = f"  val_loss {val_loss:.6g}" if validation is not None else ""
            print(f"epoch {epoch + 1}/{epochs}  train_loss {train_loss:.6g}{shown}", flush=True)
        if stopper is not None:
            stopper = stopper.update(val_loss, epoch)
            best_params = params if stopper.improved else best_params
            history["best_epoch"] = stopper.best_epoch
        if callback is not None and callback(epoch, params, opt_state, history):
            break
        if stopper is not None and stopper.should_stop:
            if verbose:
                print(f"early stopping: no lower val_loss for {patience} epochs; keeping epoch "
                      f"{stopper.best_epoch + 1} (val_loss {stopper.best_loss:.6g})", flush=True)
            break
    if stopper is not None:
        params = best_params
    return params, opt_state, history


@functools.partial(jax.jit, static_argnums=(0, 3))
def _predict_compiled(model, params, x, batch_size):
    return map_in_chunks(lambda chunk: model.forward(params, chunk), (x,), batch_size)


def predict(model, params, x, batch_size: int = 8192):
    """The network's outputs ``model.forward(params, x)``, computed ``batch_size`` rows at a time.

    Checks ``x`` (shape, NaN/inf) first.  Returns ``(n, sizes[-1])``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    checks.check_params(model, params)
    checks.check_data(model, x)
    x = jnp.asarray(x, jax.tree.leaves(params)[0].dtype)
    return _predict_compiled(model, params, x, batch_size)


def predict_labels(model, params, x, batch_size: int = 8192):
    """Class labels for classifiers: ``argmax`` for softmax, ``A > 0.5`` for sigmoid.

    Returns integer labels: ``(n,)`` for softmax outputs, ``(n, k)`` for sigmoid outputs.

    Raises:
      ValueError: for a model whose output is neither sigmoid nor softmax.
    """
    if model.output_activation not in ("sigmoid", "softmax"):
        raise ValueError(
            f"predict_labels needs a classifier (output='sigmoid' or 'softmax'), but this "
            f"model's output is {model.output_activation!r}; use predict for regression"
        )
    outputs = predict(model, params, x, batch_size)
    if model.output_activation == "softmax":
        return jnp.argmax(outputs, axis=-1)
    return (outputs > 0.5).astype(jnp.int32)


def evaluate(model, params, x, y, batch_size: int = 8192) -> float:
    """Mean loss over a whole dataset, in chunks of ``batch_size`` rows; checks the data first."""
    checks.check_params(model, params)
    checks.check_data(model, x, y)
    x, y = _as_arrays(model, params, x, y)
    return float(_evaluate_compiled(model, params, x, y, batch_size))


@functools.partial(jax.jit, static_argnums=(0, 4))
def _evaluate_compiled(model, params, x, y, batch_size):
    return mean_loss(model, params, x, y, batch_size)


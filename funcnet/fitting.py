"""``fit``: mini-batch training, one compiled epoch at a time, with validation, early stopping and resuming.

``fit`` is optional sugar over :mod:`funcnet.engine`: each epoch is one
compiled call of :func:`~funcnet.engine.make_train_epoch` (shuffle on the
device, a ``lax.scan`` of the same step over every batch), so a user's own
loop around ``train_step`` can do exactly what ``fit`` does.
"""

from __future__ import annotations

import math
import warnings

import jax

from funcnet import checks, sharding
from funcnet.data import split_count
from funcnet.divergence import diagnose, optimizer_breaks_in_dtype, optimizer_dtype_advice
from funcnet.early_stopping import EarlyStopping, replay
from funcnet.engine import as_arrays, check_opt_state, make_train_epoch, prepare, step_key
from funcnet.layer_stats import check_track, layer_stats, stats_key, stats_rows


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; carries the last finite state.

    The message counts epochs from 1, as ``verbose`` and the CLI print them.

    Attributes:
      epoch: the (0-based) epoch whose loss was not finite.
      params, opt_state: the state at the end of the last finite epoch (the
        initial state when the first epoch failed).
      history: the per-epoch losses up to the last finite epoch.
      cause: what :func:`funcnet.divergence.diagnose` found:
        ``"learning_rate"`` (finite at the start of the epoch, then diverged),
        ``"float16_overflow"`` (the loss exceeds the 16-bit dtype's largest
        value), ``"optimizer_dtype"`` (the optimizer's update is not finite in
        the 16-bit dtype, e.g. Adam's eps=1e-8 is 0 in float16),
        ``"manual_derivative"`` (``grad="manual"`` and the hand-written
        gradient is not finite, or far from ``jax.grad``'s, where
        ``jax.grad``'s is finite) or ``"loss_at_start"`` (not finite even for
        the finite params and data at the start of the epoch); ``None`` when not diagnosed.
    """

    def __init__(self, message, *, epoch, params, opt_state, history, cause=None):
        super().__init__(message)
        self.epoch, self.params, self.opt_state, self.history = epoch, params, opt_state, history
        self.cause = cause


def row_weights(model, y, sample_weight=None, class_weight=None):
    """Per-row weights ``(n,)`` from ``sample_weight`` and ``class_weight``, or ``None`` for neither.

    ``class_weight`` is ``{label: weight}`` (labels as in ``y``: class ids for
    cross_entropy, 0/1 for logloss; a label not named gets weight 1) or
    ``"balanced"``, scikit-learn's rule ``n / (k · count(label))`` over the
    ``k`` labels present.  With both, row ``i`` weighs
    ``sample_weight[i] · class_weight[y_i]``.  The loss is then
    ``Σ w_i ℓ_i / Σ w_i`` per batch.

    Raises:
      TypeError: (:class:`funcnet.checks.ArgumentTypeError`) for a ``sample_weight`` that is not
        real numbers (complex, text, object: :func:`funcnet.checks.check_real_dtype`) or a
        ``class_weight`` value that is not a real number (``class_weight[label]`` named).
      ValueError: for a wrong shape, negative or non-finite weights, labels not in ``y``, or
        weights that give every row 0.
    """
    import numpy as np

    if sample_weight is None and class_weight is None:
        return None
    num_rows = np.shape(y)[0]
    weights = np.ones(num_rows)
    if sample_weight is not None:
        checks.check_real_dtype("sample_weight", sample_weight)
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (num_rows,):
            raise ValueError(f"`sample_weight` has shape {weights.shape}; expected one weight per row, ({num_rows},)")
        if not np.all(np.isfinite(weights)) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("`sample_weight` must be finite and non-negative, with a positive sum")
    if class_weight is not None:
        labels = class_labels(model, y)
        present, counts = np.unique(labels, return_counts=True)
        if isinstance(class_weight, str):
            if class_weight != "balanced":
                raise ValueError(f"`class_weight` must be a dict {{label: weight}} or 'balanced', got {class_weight!r}")
            table = dict(zip(present.tolist(), (num_rows / (len(present) * counts)).tolist()))
        elif isinstance(class_weight, dict):
            unknown = sorted(set(class_weight) - set(present.tolist()))
            if unknown:
                raise ValueError(f"`class_weight` names labels {unknown} that are not in `y` (labels: "
                                 f"{present.tolist()})")
            table = {label: checks.check_real(class_weight.get(label, 1.0), f"class_weight[{label!r}]", low=0.0)
                     for label in present.tolist()}
        else:
            raise ValueError(f"`class_weight` must be a dict {{label: weight}} or 'balanced', got "
                             f"{type(class_weight).__name__}")
        weights = weights * np.array([table[label] for label in labels.tolist()])
        if not weights.sum() > 0:
            raise ValueError(f"`class_weight` {class_weight!r} gives every row weight 0 (times `sample_weight`); "
                             "nothing would train")
    return weights


def class_labels(model, y):
    """The class label of each row: ids ``(n,)`` as given, argmax of one-hot rows, or 0/1 for logloss."""
    import numpy as np

    values = checks.host_values(y)
    if model.loss_name == "cross_entropy":
        return values.astype(np.int64) if values.ndim == 1 else np.argmax(values, axis=1)
    if model.loss_name == "logloss" and values.ndim == 2 and values.shape[1] == 1:
        return values[:, 0].astype(np.int64)
    raise ValueError(f"`class_weight` needs a classifier with one label per row (cross_entropy, or logloss "
                     f"with one output); this model's loss is {model.loss_name!r} with targets of shape "
                     f"{np.shape(y)}; use sample_weight instead")


def _place_on_mesh(mesh, tree):
    """Replicate host data and single-device arrays on ``mesh``; leave global (multi-process) arrays as they are."""
    def place(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return leaf
        return sharding.replicate(mesh, leaf)

    return jax.tree.map(place, tree)


class FitResult(tuple):
    """What :func:`fit` returns: the pair ``(params, history)``, and the optimizer state beside it.

    ``params, history = fn.fit(...)`` unpacks it as a pair, as ``os.stat_result``
    unpacks to fewer fields than it holds; ``result.params``,
    ``result.opt_state`` and ``result.history`` name all three.  ``opt_state``
    is what to pass back as ``fit(..., opt_state=...)`` to continue training.

    With ``patience``, ``params`` and ``opt_state`` are the best epoch's and
    ``last_params``, ``last_opt_state`` the last epoch's; continuing such a run
    exactly takes both::

        fn.fit(model, result.last_params, optimizer, x, y, epochs=..., patience=...,
               opt_state=result.last_opt_state, history=result.history,
               best=(result.params, result.opt_state), key=key)

    Without ``patience`` the last epoch is the result: ``last_params is params``.
    It is a pytree of all it holds (``jax.device_get(result)`` fetches it all).
    """

    def __new__(cls, params, opt_state, history, last_params=None, last_opt_state=None):
        result = super().__new__(cls, (params, history))
        result.opt_state = opt_state
        result._last = (last_params, last_opt_state)  # None: the same as params, opt_state
        return result

    def __getnewargs__(self):  # pickling and copying rebuild everything
        return (self.params, self.opt_state, self.history, *self._last)

    def __repr__(self) -> str:
        epochs = len(self.history.get("train_loss", ()))
        best = f", best epoch {self.history['best_epoch'] + 1}" if "best_epoch" in self.history else ""
        return (f"FitResult(params: {len(self.params)} layer dicts, opt_state: {type(self.opt_state).__name__}, "
                f"history: {epochs} epochs{best}; unpacks as (params, history))")

    @property
    def params(self):
        """The trained params (the best epoch's with ``patience``)."""
        return self[0]

    @property
    def history(self) -> dict:
        """``{"train_loss": [...], "val_loss": [...], ...}``: one entry per epoch (see :func:`fit`)."""
        return self[1]

    @property
    def last_params(self):
        """The last epoch's params (the same as :attr:`params` without ``patience``)."""
        return self.params if self._last[0] is None else self._last[0]

    @property
    def last_opt_state(self):
        """The last epoch's optimizer state (the same as ``opt_state`` without ``patience``)."""
        return self.opt_state if self._last[1] is None else self._last[1]


jax.tree_util.register_pytree_node(
    FitResult, lambda result: ((result.params, result.opt_state, result.history, *result._last), None),
    lambda _, children: FitResult(*children))


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
    initial_epoch: int | None = None,
    history=None,
    patience: int | None = None,
    mesh=None,
    sample_weight=None,
    class_weight=None,
    track=None,
    best=None,
):
    """Train ``model`` with mini-batch gradient descent; every row is visited once per epoch.

    Args:
      model: a :class:`~funcnet.model.Network`.
      params: initial parameters (never modified: ``fit`` works on a copy).
      optimizer: any ``optax.GradientTransformation``.
      x: inputs ``(n, sizes[0])``.  y: targets (see ``model.loss``).
      epochs: the epoch to stop before: epochs ``initial_epoch … epochs-1`` run.
        Resuming (``initial_epoch > 0``, or a ``history`` that holds epochs),
        it must be greater than ``initial_epoch``: it is not a count of epochs
        to add, and a run that would train nothing is refused.  ``epochs=0``
        from the start returns the params as given.
      batch_size: rows per step; the last batch of an epoch holds the
        ``n % batch_size`` leftover rows (a smaller step, not padding).
        ``epochs``, ``batch_size``, ``initial_epoch`` and ``patience`` take
        any integral type (``int``, ``np.int64``, ...), never a bool or a float.
      key: one ``jax.random`` key (typed, shape ``()``, or raw ``uint32[2]``;
        a batch of keys is an error: :func:`funcnet.fit_many` trains one
        model per key) for the validation split, the per-epoch
        shuffles (epoch ``e`` uses ``shuffled_batches(key, ..., epoch=e)``) and
        dropout (step ``s`` of epoch ``e`` uses ``step_key(key, e, s)``);
        same key, same result, bit for bit.
      validation_split: fraction of rows held out (``ceil``), chosen at
        random with ``key``; 0 (default) trains on every row.
      validation_data: explicit ``(x_val, y_val)``; overrides ``validation_split``.
      grad: ``"autodiff"`` or ``"manual"``.  Optimizers that take the loss
        (``optax.lbfgs``, ``optax.contrib.reduce_on_plateau``) get it: see
        :func:`funcnet.engine.optimizer_update`.  With float16 params, an
        optimizer whose first update is NaN/inf in float16 but not in float32
        (Adam's default ``eps=1e-8`` is 0 in float16) is refused before training.
      opt_state: optimizer state to continue from (default ``optimizer.init(params)``); another
        optimizer's state, another model's or ``fit_many``'s stacked states are refused
        (:func:`funcnet.engine.check_opt_state`).
      verbose: print one line per epoch.
      callback: optional ``callback(epoch, params, opt_state, history)`` called
        after every epoch (progress bars, checkpoints, timing); returning
        ``True`` stops training after that epoch.
      initial_epoch: the epoch to start from when resuming (epochs
        ``initial_epoch … epochs-1`` run, each with its own shuffle), so that
        a run resumed from a checkpoint matches an uninterrupted one.  Default:
        the number of epochs in ``history`` (``len(history["train_loss"])``),
        0 without one; given with a ``history``, it must equal that number.
      history: a history to continue (copied, not modified): a dict, as
        ``fit`` returns it, with keys among ``"train_loss"``, ``"val_loss"``,
        ``"layer_stats"`` and ``"best_epoch"`` (another key is refused); its
        ``"train_loss"`` lists the epochs run so far, ``"val_loss"`` one per
        epoch too (empty when they ran without validation, and then this run
        must have none either, and the other way round), ``"layer_stats"`` at
        most one per epoch.  New epochs are appended, numbered after it.
      patience: early stopping: stop after this many epochs without a lower
        validation loss and return the params of the best epoch (needs
        validation data).  ``history["best_epoch"]`` records which (0-based).
        ``.opt_state`` is that epoch's optimizer state.
        Resuming (``initial_epoch > 0``), the early-stopping counters are
        rebuilt from ``history["val_loss"]`` (:func:`funcnet.early_stopping.replay`),
        so the resumed run stops where the uninterrupted one does; a run that
        had already stopped runs no more epochs.
      best: resuming with ``patience``: ``(params, opt_state)`` of the best
        epoch so far, as ``fit`` returned them or a checkpoint
        stored them.  Needed unless the best epoch is the last one run
        (then it is ``(params, opt_state)``).
      mesh: a ``jax.sharding.Mesh`` with a ``"data"`` axis: data-parallel
        training, every batch split over the devices, params and optimizer
        state replicated, gradients all-reduced by XLA (see
        :mod:`funcnet.sharding` for the batch-size rule).  Gives the same
        params as one device, up to float32 summation order.
      track: ``None`` (default: nothing extra is computed) or ``"layers"``:
        after every epoch, one compiled call computes each layer's gradient
        norm, update-to-param ratio, activation mean and standard deviation
        and dead-ReLU fraction (:mod:`funcnet.layer_stats`) on the training
        rows (at most 4096 of them, evenly spaced: :func:`~funcnet.layer_stats.stats_rows`),
        with the epoch's params, the fit's ``grad`` mode and, for dropout,
        the key ``stats_key(key, epoch)``.  It reads the params and changes
        nothing: the params trained are the same bits as without it.

    Returns:
      a :class:`FitResult`: ``params, history = fit(...)`` as a pair, and
      ``.params``, ``.opt_state`` (to resume: pass it back as ``opt_state=``)
      and ``.history``.  With ``patience``, ``params`` and ``opt_state`` are
      both the best epoch's (``history["best_epoch"]``): continuing from them
      repeats what followed that epoch; the last epoch's state is what
      ``callback`` saw last.  ``history["train_loss"]`` and ``history["val_loss"]``
      are lists with one float per epoch (``val_loss`` empty without validation).
      With ``track="layers"``, ``history["layer_stats"]`` has one entry per
      epoch: a list with one dict of floats per layer, ``{"epoch", "layer",
      "name", "grad_norm", "update_ratio", "activation_mean",
      "activation_std", "dead_fraction"}`` (see :func:`funcnet.layer_stats.layer_stats`);
      it is plain JSON, so checkpoints keep it.  A ``history`` passed in keeps
      its ``"layer_stats"`` and new epochs are appended.

    Raises:
      ValueError: for bad data or arguments (see :mod:`funcnet.checks`), e.g. ``epochs`` not
        past the epochs a ``history`` holds, or a ``history`` with keys ``fit`` does not write.
      TypeError: for arguments of the wrong type (``model`` not a Network,
        ``optimizer`` not an optax transformation, ``mesh`` not a Mesh, ...);
        funcnet's are also ValueErrors (:class:`funcnet.checks.ArgumentTypeError`).
      NonFiniteLossError: when an epoch's loss is NaN/inf; it carries the last finite state.
    """
    epochs, patience, validation_split = (checks.check_count(epochs, "epochs", 0),
                                          None if patience is None else checks.check_count(patience, "patience"),
                                          checks.check_real(validation_split, "validation_split", low=0.0,
                                                            high=1.0, high_open=True))
    history_in, initial_epoch = _checked_run(epochs, patience, validation_split, validation_data, callback, best,
                                             history, initial_epoch, key)
    if initial_epoch and opt_state is None and jax.tree.leaves(jax.eval_shape(optimizer.init, params)):
        warnings.warn(f"fit resumes after {initial_epoch} epochs with a fresh optimizer state (no `opt_state=`), "
                      "so it will not continue the earlier run exactly; pass opt_state=result.opt_state (or a "
                      "checkpoint's opt_state) to continue it", UserWarning, stacklevel=2)
    tracking = check_track(track)
    train_epoch = make_train_epoch(model, optimizer, grad, batch_size, mesh)
    params, opt_state, train, validation = _training_data(
        model, params, optimizer, opt_state, best, x, y, key, validation_split, validation_data, sample_weight,
        class_weight, mesh)
    history = _continued_history(history_in, tracking)
    if tracking:
        sample = stats_rows(train[0].shape[0])
        stats_sample = tuple(array[sample] for array in train)
    stopper = None if patience is None else _resumed_stopper(patience, history, initial_epoch, best)
    best_params, best_opt_state = (params, opt_state) if best is None else best
    if stopper is not None and stopper.best_epoch >= 0:
        history["best_epoch"] = stopper.best_epoch
    first_epoch = epochs if stopper is not None and stopper.should_stop else initial_epoch  # had stopped
    for epoch in range(first_epoch, epochs):
        new_params, new_opt_state, train_loss, val_loss = train_epoch(
            params, opt_state, *train[:2], key, epoch, *(validation or ()),
            **({} if len(train) == 2 else {"sample_weight": train[2]}),
        )
        train_loss, val_loss = float(train_loss), float(val_loss)
        if not (math.isfinite(train_loss) and (validation is None or math.isfinite(val_loss))):
            raise _non_finite_loss_error(model, epoch, train_loss, val_loss, params, opt_state, history,
                                         train if not math.isfinite(train_loss) else validation,
                                         optimizer=optimizer, grad=grad,
                                         key=step_key(key, epoch, 0) if model.needs_key else None)
        if tracking:
            history["layer_stats"].append(layer_stats(
                model, params, new_params, *stats_sample, grad=grad, epoch=epoch,
                key=stats_key(key, epoch) if model.needs_key else None))
        params, opt_state = new_params, new_opt_state
        history["train_loss"].append(train_loss)
        if validation is not None:
            history["val_loss"].append(val_loss)
        if verbose:
            shown = f"  val_loss {val_loss:.6g}" if validation is not None else ""
            print(f"epoch {epoch + 1}/{epochs}  train_loss {train_loss:.6g}{shown}", flush=True)
        if stopper is not None:
            stopper = stopper.update(val_loss, epoch)
            if stopper.improved:
                best_params, best_opt_state = params, opt_state
            history["best_epoch"] = stopper.best_epoch
        if callback is not None and callback(epoch, params, opt_state, history):
            break
        if stopper is not None and stopper.should_stop:
            if verbose:
                print(f"early stopping: no lower val_loss for {patience} epochs; keeping epoch "
                      f"{stopper.best_epoch + 1} (val_loss {stopper.best_loss:.6g})", flush=True)
            break
    if stopper is not None:
        return FitResult(best_params, best_opt_state, history, params, opt_state)
    return FitResult(params, opt_state, history)


def fit_state(*args, **kwargs):
    """Deprecated: ``fit(...)`` returns its optimizer state as ``.opt_state``.

    ``fit_state(...)`` is ``(result.params, result.opt_state, result.history)``
    of ``result = fit(...)``, with the same arguments; it works for one minor
    release, with a ``DeprecationWarning``.
    """
    warnings.warn("funcnet.fitting.fit_state is deprecated: `result = fn.fit(...)` carries it, as result.params, "
                  "result.opt_state and result.history (and `params, history = fn.fit(...)` works as before)",
                  DeprecationWarning, stacklevel=2)
    result = fit(*args, **kwargs)
    return result.params, result.opt_state, result.history


def _checked_run(epochs, patience, validation_split, validation_data, callback, best, history, initial_epoch,
                 key) -> tuple[dict, int]:
    """:func:`fit`'s checks of the run's settings; ``(the history to continue, initial_epoch)``."""
    _check_callables_and_pairs(callback, validation_data, best)
    has_validation = validation_data is not None or validation_split > 0
    if patience is not None and not has_validation:
        raise ValueError("`patience` needs validation data: pass validation_split > 0 or validation_data")
    history_in, initial_epoch = _checked_history(history, initial_epoch, has_validation)
    _check_epochs_after(epochs, initial_epoch, history_in)
    checks.check_key(key, "key", "fit", single=True)
    return history_in, initial_epoch


def _training_data(model, params, optimizer, opt_state, best, x, y, key, validation_split, validation_data,
                   sample_weight, class_weight, mesh):
    """:func:`fit`'s checks of params, optimizer state and data, then the data as arrays in the params'
    dtype, placed on ``mesh``: ``(params, opt_state, train (x, y[, weights]), validation (x, y) or None)``."""
    checks.check_params(model, params)
    checks.check_has_params(model, params, "fit")
    if opt_state is not None:
        check_opt_state(optimizer, params, opt_state)
        checks.check_param_values(opt_state, "opt_state")
    if best is not None and best[1] is not None:
        check_opt_state(optimizer, params, best[1], name="best[1]")
    dtype = checks.params_dtype(params)
    if optimizer_breaks_in_dtype(optimizer, params):
        raise ValueError(f"`optimizer` cannot train {jax.numpy.dtype(dtype).name} params: "
                         f"{optimizer_dtype_advice(dtype)}")
    checks.check_data(model, x, y, dtype)
    weights = row_weights(model, y, sample_weight, class_weight)
    if weights is not None:
        checks.check_finite("sample_weight" if class_weight is None else "sample_weight × class_weight",
                            weights, dtype, advice="Use finite weights")
    x, y = as_arrays(model, params, x, y)
    weights = None if weights is None else jax.numpy.asarray(weights, x.dtype)
    if mesh is not None:
        params, opt_state, x, y, weights = _place_on_mesh(mesh, (params, opt_state, x, y, weights))
    held_out = 0 if validation_data is not None else split_count(x.shape[0], validation_split)
    params, opt_state, train, validation = prepare(optimizer, held_out, params, opt_state, x, y, key, weights)
    if validation_data is not None:
        checks.check_data(model, *validation_data, dtype)
        validation = as_arrays(model, params, *validation_data)
        if mesh is not None:
            validation = _place_on_mesh(mesh, validation)
    return params, opt_state, train, validation


def _continued_history(history_in: dict, tracking: bool) -> dict:
    """A new history holding copies of ``history_in``'s lists: ``train_loss``, ``val_loss``, and ``layer_stats``
    when tracked now or before."""
    history = {"train_loss": list(history_in.get("train_loss", [])),
               "val_loss": list(history_in.get("val_loss", []))}
    if tracking or "layer_stats" in history_in:
        history["layer_stats"] = list(history_in.get("layer_stats", []))
    return history


def _non_finite_loss_error(model, epoch, train_loss, val_loss, params, opt_state, history, data, *,
                           optimizer=None, grad="autodiff", key=None):
    """The :class:`NonFiniteLossError` for ``epoch``, naming its cause (:func:`funcnet.divergence.diagnose`)."""
    which = "loss" if not math.isfinite(train_loss) else "validation loss"
    value = train_loss if not math.isfinite(train_loss) else val_loss
    cause, explanation = diagnose(model, params, *data[:2], optimizer=optimizer, grad=grad, key=key)
    return NonFiniteLossError(
        f"epoch {epoch + 1}: the {which} became {value} (not finite); {explanation}. The last finite params "
        "are in this exception's `.params`.",
        epoch=epoch, params=params, opt_state=opt_state, history=history, cause=cause)


def _check_callables_and_pairs(callback, validation_data, best) -> None:
    """``callback`` callable or None; ``validation_data`` an ``(x_val, y_val)`` pair; ``best`` a ``(params, opt_state)`` pair."""
    if callback is not None and not callable(callback):
        raise checks.ArgumentTypeError(f"`callback` must be callable, callback(epoch, params, opt_state, history), "
                                       f"or None, got {type(callback).__name__}")
    for name, value, pair in (("validation_data", validation_data, "(x_val, y_val)"),
                              ("best", best, "(params, opt_state)")):
        if value is not None and (not isinstance(value, (tuple, list)) or len(value) != 2):
            got = f"a {type(value).__name__} of length {len(value)}" if isinstance(value, (tuple, list)) else \
                type(value).__name__
            raise checks.ArgumentTypeError(f"`{name}` must be a pair {pair} or None, got {got}")


HISTORY_KEYS = ("train_loss", "val_loss", "layer_stats", "best_epoch")  # what fit writes into a history


def _check_epochs_after(epochs, initial_epoch, history) -> None:
    """Resuming (``initial_epoch > 0``), ``epochs`` must be greater: it is the epoch to stop before, not a count
    of epochs to add, and a run of epochs ``initial_epoch … epochs-1`` that holds none would train nothing."""
    if initial_epoch and epochs <= initial_epoch:
        done = (f"the history already holds {initial_epoch} epochs" if history.get("train_loss") else
                f"`initial_epoch` is {initial_epoch}")
        more = f" (epochs={initial_epoch + epochs} for {epochs} more)" if epochs else ""
        raise ValueError(f"`epochs` is the epoch to stop before: {done}, so epochs={epochs} would train nothing; "
                         f"pass epochs > {initial_epoch}{more}")


def _checked_history(history, initial_epoch, has_validation):
    """``(history, initial_epoch)``: a history to continue (``{}`` for none) and the epoch to start from.

    ``initial_epoch`` defaults to the number of epochs in ``history``; given, it must equal it.  The
    history's keys must be among :data:`HISTORY_KEYS`, what :func:`fit` writes.
    """
    if history is None:
        return {}, 0 if initial_epoch is None else checks.check_count(initial_epoch, "initial_epoch", 0)
    if not isinstance(history, dict):
        raise checks.ArgumentTypeError(f"`history` must be a dict of lists ({{'train_loss': [...], 'val_loss': "
                                       f"[...]}}, as fit returns it) or None, got {type(history).__name__}")
    unknown = sorted(set(history) - set(HISTORY_KEYS), key=repr)
    if unknown:
        raise ValueError(f"`history` has unknown keys {', '.join(map(repr, unknown))}; expected a history as fit "
                         f"returns it, with keys among {', '.join(map(repr, HISTORY_KEYS))}")
    lengths = {}
    for name in ("train_loss", "val_loss", "layer_stats"):
        entries = history.get(name, [])
        if not isinstance(entries, (list, tuple)):
            raise checks.ArgumentTypeError(f"`history['{name}']` must be a list, one entry per epoch, got "
                                           f"{type(entries).__name__}")
        lengths[name] = len(entries)
    done = lengths["train_loss"]
    if lengths["val_loss"] not in (0, done):
        raise ValueError(f"`history` holds {done} train_loss entries but {lengths['val_loss']} val_loss entries; "
                         "expected one of each per epoch (or no val_loss at all)")
    if lengths["layer_stats"] > done:
        raise ValueError(f"`history` holds {lengths['layer_stats']} layer_stats entries for {done} epochs "
                         "(history['train_loss']); expected at most one per epoch")
    if done and has_validation != bool(lengths["val_loss"]):
        raise ValueError(
            f"`history` holds {done} epochs {'with' if lengths['val_loss'] else 'without'} val_loss, but this run "
            f"has {'validation data' if has_validation else 'none'}: the val_loss list would no longer match the "
            f"epochs; continue with {'the same' if lengths['val_loss'] else 'no'} validation_split/validation_data")
    if initial_epoch is None:
        return history, done
    initial_epoch = checks.check_count(initial_epoch, "initial_epoch", 0)
    if initial_epoch != done:
        raise ValueError(f"`initial_epoch={initial_epoch}` does not match `history`, which holds {done} epochs "
                         f"(len(history['train_loss'])): epoch numbers and the history would disagree; leave "
                         f"initial_epoch out to continue after epoch {done}, or pass the history of the "
                         f"first {initial_epoch} epochs")
    return history, initial_epoch


def _resumed_stopper(patience, history, initial_epoch, best):
    """The early-stopping state after the ``initial_epoch`` epochs already in ``history``."""
    losses = history["val_loss"]
    if initial_epoch == 0:
        return EarlyStopping(patience)
    if len(losses) != initial_epoch:
        raise ValueError(f"resuming with `patience` at `initial_epoch={initial_epoch}` needs the "
                         f"{initial_epoch} validation losses so far in history['val_loss'], got {len(losses)}")
    stopper = replay(patience, losses)
    if best is None and stopper.best_epoch != initial_epoch - 1:
        raise ValueError(f"resuming with `patience`: the best epoch so far is epoch {stopper.best_epoch + 1}, "
                         f"not the last one run ({initial_epoch}); pass best=(params, opt_state) of that epoch "
                         "(result.params, result.opt_state of the fit that ran it, or a checkpoint's params and "
                         "opt_state) and continue from the last epoch's state (result.last_params, "
                         "opt_state=result.last_opt_state, or the checkpoint's last_params, last_opt_state)")
    return stopper



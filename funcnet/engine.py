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
the very functions users call, nothing else.  Optimizers that take extra
arguments (``optax.GradientTransformationExtraArgs``: ``optax.lbfgs``,
``optax.contrib.reduce_on_plateau``, any ``optax.chain``) also get
``value=loss, grad=grads, value_fn=objective`` (:func:`optimizer_update`).
"""

from __future__ import annotations

import collections.abc
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

from funcnet import backprop, checks, sharding
from funcnet.forward import l2_penalty
from funcnet.row_chunks import accumulation_dtype, mean_loss  # noqa: F401  (mean_loss: engine.mean_loss)
from funcnet.shuffle import permutation
from funcnet.xla_options import epoch_compiler_options

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
    check_grad(grad)
    return jax.value_and_grad(model.loss) if grad == "autodiff" else model.manual_grad


def check_grad(grad) -> None:
    """``grad`` must be one of :data:`GRAD_MODES`."""
    if not isinstance(grad, str):
        raise checks.ArgumentTypeError(f"`grad` must be one of {', '.join(map(repr, GRAD_MODES))}, got "
                                       f"{grad!r} ({type(grad).__name__})")
    if grad not in GRAD_MODES:
        raise ValueError(f"unknown grad {grad!r}; expected one of {', '.join(GRAD_MODES)}")


def objective_fn(model, grad: str = "autodiff"):
    """``(params, x, y, weights, key) -> loss``: ``model.loss``, differentiated the ``grad`` way.

    For ``"autodiff"`` it is ``model.loss``.  For ``"manual"`` it has the same
    value, but its derivative (``jax.grad``, ``jax.jvp``, ``jax.linearize``)
    is the hand-written backprop: a ``jax.custom_jvp`` whose tangent is
    ``⟨model.manual_grad(params, ...)[1], dparams⟩``; ``x``, ``y``, ``weights``
    and ``key`` are data (zero tangent).  It is the ``value_fn`` that line
    searches (``optax.lbfgs``) differentiate, so manual training stays manual.
    """
    check_grad(grad)
    if grad == "autodiff":
        return lambda params, x, y, weights, key: model.loss(params, x, y, weights, key=key)

    @jax.custom_jvp
    def manual_objective(params, x, y, weights, key):
        return model.loss(params, x, y, weights, key=key)

    @manual_objective.defjvp
    def manual_objective_jvp(primals, tangents):
        params, x, y, weights, key = primals
        value, grads = model.manual_grad(params, x, y, weights, key=key)
        slope = sum(jnp.vdot(g, t) for g, t in zip(jax.tree.leaves(grads), jax.tree.leaves(tangents[0])))
        return value, jnp.asarray(slope, value.dtype)

    return manual_objective


# JAX's own complaints (strict dtype promotion, a traced value used as a Python one) are the user's settings or
# code speaking, not an optimizer funcnet cannot drive: they pass unchanged.
JAX_OWN_ERRORS = (jax.dtypes.TypePromotionError, jax.errors.JAXTypeError, jax.errors.JAXIndexError)


def optimizer_update(optimizer, grads, opt_state, params, value, value_fn):
    """``optimizer.update(grads, opt_state, params)``, with the loss for optimizers that take it.

    An ``optax.GradientTransformationExtraArgs`` (``optax.lbfgs``,
    ``optax.contrib.reduce_on_plateau``, every ``optax.chain``) is called with
    ``value=value, grad=grads, value_fn=value_fn`` (``value_fn(params) -> loss``
    on the same batch), as optax documents for ``optax.lbfgs``; transformations
    that do not use them ignore them.  A plain ``GradientTransformation`` gets
    the three positional arguments only.

    Raises:
      ArgumentTypeError: (a ``TypeError`` and a ``ValueError``) naming ``optimizer`` when its update
        fails with a ``TypeError``, ``AttributeError`` or ``ValueError`` from inside optax: an optimizer
        funcnet cannot drive this way (``optax.lookahead``, which trains ``optax.LookaheadParams``;
        ``optax.contrib.sam``; ``optax.MultiSteps`` around one that needs ``value``).  The message says
        what funcnet passed and quotes the original error, which is chained.  Errors of funcnet's own
        objective, which a line search calls, and JAX's own (:data:`JAX_OWN_ERRORS`) pass unchanged.
        (Runs while the step is traced: free.)
        :func:`optimizer_init` does the same for ``optimizer.init``.
    """
    takes_extra_args = isinstance(optimizer, optax.GradientTransformationExtraArgs)
    from_objective = []  # errors raised by funcnet's objective inside the optimizer: not the optimizer's fault

    def objective(candidate):
        try:
            return value_fn(candidate)
        except Exception as error:
            from_objective.append(error)
            raise

    try:
        if takes_extra_args:
            return optimizer.update(grads, opt_state, params, value=value, grad=grads, value_fn=objective)
        return optimizer.update(grads, opt_state, params)
    except (TypeError, AttributeError, ValueError) as error:
        own = isinstance(error, (checks.ArgumentTypeError, *JAX_OWN_ERRORS))
        if own or any(error is raised for raised in from_objective):
            raise
        call = ("optimizer.update(grads, opt_state, params, value=loss, grad=grads, value_fn=objective) in every "
                "step, as optax.GradientTransformationExtraArgs promises" if takes_extra_args else
                "optimizer.update(grads, opt_state, params) in every step (it is not an "
                "optax.GradientTransformationExtraArgs, so it gets no value=, grad= or value_fn=)")
        if any(isinstance(node, optax.LookaheadState) for node in jax.tree.leaves(
                opt_state, is_leaf=lambda node: isinstance(node, optax.LookaheadState))):
            hint = (" optax.lookahead needs its params as optax.LookaheadParams (fast and slow copies), but "
                    "funcnet trains plain params (a list of layer dicts): use its fast optimizer alone, or write "
                    "a loop of your own around model.loss.")
        elif not takes_extra_args and "value" in str(error):
            hint = (" A wrapper that is not an optax.GradientTransformationExtraArgs (e.g. optax.MultiSteps) "
                    "cannot hand the loss to an optimizer inside it that needs it (reduce_on_plateau, lbfgs): use "
                    "that optimizer unwrapped.")
        else:
            hint = ""
        raise checks.ArgumentTypeError(_undrivable(optimizer, f"{call}, opt_state as optimizer.init(params) makes it",
                                                   error, hint)) from error


def optimizer_init(optimizer, params):
    """``optimizer.init(params)``; a ``TypeError``, ``AttributeError`` or ``ValueError`` from inside optax is an
    :class:`~funcnet.checks.ArgumentTypeError` naming ``optimizer`` (as in :func:`optimizer_update`), e.g. an
    ``optax.masked`` mask or ``optax.multi_transform`` label tree without the structure of ``params``."""
    try:
        return optimizer.init(params)
    except (TypeError, AttributeError, ValueError) as error:
        if isinstance(error, (checks.ArgumentTypeError, *JAX_OWN_ERRORS)):
            raise
        hint = (" A mask or label tree (optax.masked, optax.multi_transform) must have the structure of the "
                "params: a list with one dict per layer, as model.init(key) makes them.")
        raise checks.ArgumentTypeError(_undrivable(optimizer, "optimizer.init(params)", error, hint)) from error


def _undrivable(optimizer, call: str, error, hint: str) -> str:
    """The message for an ``optimizer`` that failed inside optax when funcnet made ``call``."""
    made_by = getattr(optimizer.update, "__qualname__", type(optimizer).__name__).split(".")[0]  # "sam", "MultiSteps"
    return (f"`optimizer` ({made_by}) is not one funcnet can drive: funcnet calls {call}, params being a list of "
            f"layer dicts, and that failed inside optax with {type(error).__name__}: {error}.{hint} Optimizers whose "
            f"init and update take these work: e.g. optax.adam(1e-3), optax.chain(...), optax.lbfgs()")


def _state_names(state) -> str:
    """The kinds of an optax state, e.g. ``"ScaleByAdamState, EmptyState"``: its named tuples, outermost first."""
    names = []

    def visit(node):
        if hasattr(node, "_fields"):
            names.append(type(node).__name__)
        if isinstance(node, (tuple, list)):
            for child in node:
                visit(child)

    visit(state)
    return ", ".join(names) or type(state).__name__


def check_opt_state(optimizer, params, opt_state, num_models: int | None = None, name: str = "opt_state") -> None:
    """``opt_state`` must be what ``optimizer.init(params)`` makes for ``params``, one model's (``fit``),
    or, with ``num_models``, that stacked ``num_models`` times (``fit_many``).

    Compared with ``jax.eval_shape(optimizer.init, params)`` (nothing is computed; ``params`` may be
    ``jax.ShapeDtypeStruct``): the same tree of states, and every leaf of one model's shape, or of shape
    ``(num_models, *one model's shape)``.

    Raises:
      ValueError: naming ``name`` (or its first wrong leaf, e.g. ``opt_state[0].mu[0]['W']``), what
        ``optimizer.init`` makes and what was found: another optimizer's state, another model's, a stacked
        one for one model or one model's for ``fit_many``.
    """
    stacked = num_models is not None
    hint = ("make it with jax.vmap(optimizer.init)(params), from the stacked params" if stacked else
            "pass opt_state=optimizer.init(params), or leave it out")
    single = jax.eval_shape(functools.partial(optimizer_init, optimizer), params)
    if jax.tree.structure(opt_state) != jax.tree.structure(single):
        found, expected = _state_names(opt_state), _state_names(single)
        inside = "" if found != expected else " (the same kinds, with another tree inside: another model's params?)"
        raise ValueError(f"`{name}` is not a state of this `optimizer`: it holds {found}, but optimizer.init "
                         f"makes {expected}{inside}; {hint}")
    paths = jax.tree_util.tree_leaves_with_path(opt_state)
    shapes = [jnp.shape(leaf) for _, leaf in paths]
    one_shapes = [tuple(leaf.shape) for leaf in jax.tree.leaves(single)]
    if stacked and shapes and shapes == one_shapes:
        raise ValueError(f"`{name}` is one model's optimizer state (the shapes optimizer.init(params) makes "
                         f"for one model); fit_many needs one state per model, {num_models} stacked: {hint}")
    leading = {shape[:1] for shape in shapes}
    if not stacked and len(leading) == 1 and shapes != one_shapes and \
            shapes == [(*next(iter(leading)), *one) for one in one_shapes]:
        raise ValueError(f"`{name}` holds {next(iter(leading))[0]} models' optimizer states, stacked (as "
                         f"fit_many makes them), but this trains one model: {hint}")
    for (path, _), shape, one_shape in zip(paths, shapes, one_shapes):
        expected = (num_models, *one_shape) if stacked else one_shape
        if shape != expected:
            wanted = "one state per model" if stacked else "the shape optimizer.init(params) makes"
            raise ValueError(f"`{name}{jax.tree_util.keystr(path)}` has shape {shape}; expected {wanted}, "
                             f"{expected}: {hint}")


def check_optimizer(optimizer) -> None:
    """``optimizer`` must look like an ``optax.GradientTransformation`` (callable ``init`` and ``update``), hashable."""
    if not (callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))) \
            or not isinstance(optimizer, collections.abc.Hashable):
        raise TypeError(
            f"`optimizer` must be an optax.GradientTransformation (e.g. optax.adam(1e-3)), "
            f"got {type(optimizer).__name__}"
        )


def batch_in_params_dtype(model, params, x, y, weights=None):
    """``(x, y, weights)`` cast to the params' dtype; integer class labels ``(m,)`` stay integers.

    A no-op (no operation is traced) when the dtypes already match.  The
    training step casts rather than promotes: with a ``float64`` batch and
    ``float32`` params (numpy's default dtype under ``jax_enable_x64``) the
    gradients and the optimizer state would otherwise become ``float64``
    after the first step, and the step would compile a second time.
    """
    dtype = checks.params_dtype(params)
    if dtype is None:
        return x, y, weights
    is_class_index = model.loss_fn.integer_labels and jnp.ndim(y) == 1
    return (jnp.asarray(x, dtype), y if is_class_index else jnp.asarray(y, dtype),
            None if weights is None else jnp.asarray(weights, dtype))


def penalised_value_and_grad_fn(model, grad: str = "autodiff", loss_scale: float = 1.0):
    """``(params, x, y, weights, key, alpha) -> (J, ∂J/∂params)``, the objective a training step descends.

        J = s · model.loss(params, x, y, weights)  +  (α / 2m) Σ_layers ‖W‖²
        ∂J/∂W = s · ∂L/∂W + (α / m) W

    with ``s = loss_scale`` (static) and ``α = alpha`` a runtime scalar, or no
    penalty at all for ``alpha=None``; ``m`` is the batch's row count, or its
    weight sum ``Σ w_i`` with weights.  ``s = 1`` and ``alpha=None`` (``fit``)
    is exactly :func:`value_and_grad_fn`.  ``"autodiff"`` is ``jax.grad`` of
    ``J``; ``"manual"`` is ``model.manual_grad`` (the hand-written backprop,
    with the model's own ``l2`` inside it), scaled by ``s``, plus the
    hand-written ``(α/m) W`` of :func:`funcnet.backprop.add_l2_gradient`, once.
    """
    compute = value_and_grad_fn(model, grad)
    objective = penalised_objective_fn(model, grad, loss_scale)

    def value_and_grad(params, x, y, weights, key, alpha):
        if alpha is None and loss_scale == 1.0:
            return compute(params, x, y, weights, key=key)
        if grad == "autodiff":
            return jax.value_and_grad(objective)(params, x, y, weights, key, alpha)
        value, grads = compute(params, x, y, weights, key=key)
        if loss_scale != 1.0:
            value, grads = loss_scale * value, jax.tree.map(lambda g: loss_scale * g, grads)
        if alpha is None:
            return value, grads
        strength = penalty_strength(x, weights, alpha)
        return value + l2_penalty(params, strength), backprop.add_l2_gradient(grads, params, strength)

    return value_and_grad


def penalty_strength(x, weights, alpha):
    """``λ = α / m`` of the penalty ``(λ/2) Σ ‖W‖²``: ``m`` rows of ``x``, or ``Σ weights``."""
    return alpha * (1.0 / x.shape[0] if weights is None else 1.0 / jnp.sum(weights))


def penalised_objective_fn(model, grad: str = "autodiff", loss_scale: float = 1.0):
    """``(params, x, y, weights, key, alpha) -> J`` of :func:`penalised_value_and_grad_fn`, differentiated the
    ``grad`` way (:func:`objective_fn`); the ``value_fn`` line searches get."""
    objective = objective_fn(model, grad)

    def penalised(params, x, y, weights, key, alpha):
        value = objective(params, x, y, weights, key)
        if loss_scale != 1.0:
            value = loss_scale * value
        return value if alpha is None else value + l2_penalty(params, penalty_strength(x, weights, alpha))

    return penalised


def update_fn(model, optimizer, grad, where: str = "train_step", loss_scale: float = 1.0, unravel=None):
    """The un-jitted step ``(params, state, x, y, weights=None, *, key=None, alpha=None) -> (params, state, loss)``.

    The batch is cast to the params' dtype first (:func:`batch_in_params_dtype`);
    the gradient is that of :func:`penalised_value_and_grad_fn` (``model.loss``
    itself for ``loss_scale=1`` and ``alpha=None``); the optimizer update is
    :func:`optimizer_update`, with ``value_fn`` the step's own objective on
    this batch, weights, key and ``alpha``.  With ``unravel`` (from
    ``jax.flatten_util.ravel_pytree(params)``) ``params`` is that one flat
    vector: the model sees ``unravel(params)`` and the optimizer the flat
    gradient, so its state is the state of one vector.
    """
    compute = penalised_value_and_grad_fn(model, grad, loss_scale)
    objective = penalised_objective_fn(model, grad, loss_scale)
    as_tree = (lambda params: params) if unravel is None else unravel

    def update(params, opt_state, x, y, weights=None, *, key=None, alpha=None):
        if key is not None:
            checks.check_key(key, "key", where, single=True)
        checks.check_dropout_key(model, key, where, f"{where}(params, opt_state, x, y, "
                                 "key=fn.engine.step_key(key, epoch, step))", "a fresh key every step")
        x, y, weights = batch_in_params_dtype(model, as_tree(params), x, y, weights)
        value, grads = compute(as_tree(params), x, y, weights, key, alpha)
        if unravel is not None:
            grads = ravel_pytree(grads)[0]
        updates, opt_state = optimizer_update(optimizer, grads, opt_state, params, value,
                                              lambda candidate: objective(as_tree(candidate), x, y, weights, key,
                                                                          alpha))
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
      jitted; ``loss`` is the batch's objective *before* the update.  Optimizers
      that take extra arguments get ``value=loss, grad=grads, value_fn=``
      the batch's objective (:func:`optimizer_update`), so ``optax.lbfgs`` and
      ``optax.contrib.reduce_on_plateau`` work as they are; with
      ``grad="manual"`` the line search's gradients are the hand-written ones too.  A model
      with dropout needs a fresh ``key`` every step (``fit`` uses
      :func:`step_key`).  Shape checks run while it traces (once per shape);
      call :func:`funcnet.check_data` once on your dataset for the value checks.

    Dtypes: the batch is **cast to the params' dtype** inside the step
    (integer class labels stay integers), so ``loss``, the gradients and the
    optimizer state keep the params' dtype, step after step, and the step
    compiles once per input signature: a ``float64`` batch never turns
    ``float32`` params' Adam moments into ``float64`` (which would change the
    state's dtype and compile the step again).  Casting down loses precision
    and casting to ``float16`` can overflow: check the data in the params'
    dtype with ``fn.check_data(model, x, y, dtype=...)``.

    Example:
      >>> opt = optax.adam(1e-3)
      >>> train_step = fn.make_train_step(model, opt, grad="manual")
      >>> opt_state = opt.init(params)
      >>> params, opt_state, loss = train_step(params, opt_state, x, y)
    """
    check_network(model)
    check_optimizer(optimizer)
    return jax.jit(update_fn(model, optimizer, grad))


def check_network(model) -> None:
    """``model`` must be a :class:`~funcnet.model.Network`."""
    from funcnet.model import Network

    if not isinstance(model, Network):
        raise checks.ArgumentTypeError(f"`model` must be a funcnet Network (from fn.mlp or fn.sequential), got "
                                       f"{type(model).__name__}")


def step_key(key, epoch, step):
    """The dropout key of step ``step`` of epoch ``epoch``: ``fold_in(fold_in(fold_in(key, S), epoch), step)``.

    ``S`` is a fixed stream constant that keeps these keys apart from the
    shuffle's use of ``key``.  ``fit`` gives step ``s`` of epoch ``e`` exactly
    this key, so a loop of your own around ``train_step`` can reproduce it.
    ``key`` is one key; ``epoch`` and ``step`` are integers ≥ 0 of any integral type, checked, or
    JAX integer scalars (concrete or traced, e.g. inside ``jax.jit`` or ``lax.scan``), taken as
    they are: their value is not read.
    """
    checks.check_key(key, "key", "step_key", single=True)
    epoch, step = _index(epoch, "epoch"), _index(step, "step")
    return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, DROPOUT_STREAM), epoch), step)


def _index(value, name: str):
    """An epoch or step number: a Python or NumPy integer as a Python ``int`` ≥ 0
    (:func:`funcnet.checks.check_count`); a JAX integer scalar as it is.

    A JAX array, concrete or traced alike, is checked by its dtype and shape only (static
    facts), never by its value, so a traced ``fit`` epoch and a user's own jitted loop pass it
    through and the program depends only on the arguments.

    Raises:
      ArgumentTypeError: naming ``name``, for a JAX array that is not an integer scalar.
    """
    if isinstance(value, jax.Array):
        if value.ndim != 0 or not jnp.issubdtype(value.dtype, jnp.integer):
            raise checks.ArgumentTypeError(f"`{name}` must be an integer ≥ 0 (a JAX array is taken when it is an "
                                           f"integer scalar), got a {value.dtype} array of shape {value.shape}")
        return value
    return checks.check_count(value, name, 0)


def shuffled_batch_rows(key, num_samples: int, batch_size: int, epoch=0):
    """The row indices of one epoch's batches: ``(full (n // batch_size, batch_size), remainder or None)``.

    The order is ``funcnet.shuffle.permutation(key, n, stream=epoch)`` (a
    fused swap-or-not shuffle, 20x faster on CPU than ``jax.random.permutation``):
    one key gives a different, reproducible order for every ``epoch``.
    ``remainder`` holds the last ``n % batch_size`` indices, or is ``None``
    when ``batch_size`` divides ``n``.  ``key`` is one key; the counts are any integral type;
    ``epoch`` is taken as by :func:`step_key`.
    """
    checks.check_key(key, "key", "shuffled_batch_rows", single=True)
    num_samples, batch_size = checks.check_count(num_samples, "num_samples"), checks.check_count(batch_size,
                                                                                                  "batch_size")
    order = permutation(key, num_samples, stream=_index(epoch, "epoch"))
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
    checks.check_key(key, "key", "shuffled_batches", single=True)
    full, remainder = shuffled_batch_rows(key, x.shape[0], batch_size, epoch)
    return (x[full], y[full]), (None if remainder is None else (x[remainder], y[remainder]))


def params_are_finite(params) -> jax.Array:
    """A scalar bool: whether every leaf of ``params`` is free of NaN and inf (traceable)."""
    leaves = jax.tree.leaves(params)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves])) if leaves else jnp.bool_(True)


LOSS_PER = ("weight", "row")  # EpochOptions.loss_per


class EpochOptions(NamedTuple):
    """What differs between the trainers that drive :func:`epoch_function`; static (part of the program).

    Attributes:
      shuffle: ``True``: every epoch trains on the rows in the order ``π = permutation(key, n, stream=epoch)``
        (slot ``j`` holds row ``π(j)``, :func:`shuffled_batch_rows`' order); ``False``: in row order
        (the estimators' ``shuffle=False``).
      loss_scale: ``s`` in the objective ``J = s · model.loss + (α/2m) Σ ‖W‖²``
        (:func:`penalised_value_and_grad_fn`); 1 for ``fit``.
      loss_per: how ``train_loss`` weighs the batch objectives ``J_b``: ``"weight"``, ``Σ w_b J_b / Σ w``
        with ``w_b`` a batch's weight sum (its row count without weights: ``fit``), or ``"row"``,
        ``Σ rows_b J_b / n`` whatever the weights (scikit-learn's ``loss_``).
      flat_params: ``False``: the optimizer updates the params' tree and its state is the tree state
        ``optimizer.init(params)`` makes (``fit``: users pass it and resume from it).  ``True``: the epoch
        carries the params as one flat vector (``ravel_pytree``) and the optimizer updates that vector;
        its state is ``optimizer.init(flat vector)``'s, as ``optax.flatten(optimizer)`` makes it (the
        estimators, which keep their state).  Adam's update is then one fused loop instead of one per leaf.
    """

    shuffle: bool = True
    loss_scale: float = 1.0
    loss_per: str = "weight"
    flat_params: bool = False


def make_train_epoch(model, optimizer, grad: str = "autodiff", batch_size: int = 32, mesh=None, *,
                     top_level: bool = False):
    """One whole epoch as one compiled call: shuffle, a scan over batches, the remainder, validation.

    Returns:
      jitted ``train_epoch(params, opt_state, x, y, key, epoch, x_val=None, y_val=None,
      sample_weight=None) -> (params, opt_state, train_loss, val_loss)``, the
      function :func:`epoch_function` builds, compiled with XLA's defaults so
      that it nests in ``jax.vmap`` and ``jax.jit`` (``fit_many``, users' own
      loops).  Each batch's loss is weighted by ``sample_weight`` (per row,
      ``(n,)``) when given; a batch whose weights are all 0 is skipped (params
      and optimizer state unchanged), as if its rows were not there.
      ``train_loss`` is the weighted mean of the batch objectives seen during
      the epoch (each computed before its update, as the articles do, with
      dropout and the L2 term); ``val_loss`` is the data loss at inference on
      ``(x_val, y_val)`` after the epoch, NaN when not given.  Step ``s``
      gets ``step_key(key, epoch, s)`` when the model has dropout.
      ``train_loss`` is also NaN when the epoch leaves any param non-finite
      (a last step that diverges has a finite loss, computed before its
      update), so a caller that checks the loss never keeps broken params.
      Both losses are summed and returned in float32 for float16 and
      bfloat16 params (:func:`accumulation_dtype`), in the params' dtype otherwise.
      The function is cached per ``(model, optimizer, grad, batch_size, mesh)``,
      so repeated calls with the same arguments and data shapes do
      not recompile.  With a ``mesh`` every batch's rows are split over its
      ``"data"`` axis (see :mod:`funcnet.sharding`).  ``key`` is one key
      (a batch of keys is refused: :func:`funcnet.fit_many` trains one model per key).

    ``top_level=True`` compiles it for 512-bit vectors on CPU
    (:mod:`funcnet.xla_options`); such a function must not be called inside
    another ``jit`` or ``vmap``, which refuse compile options.

    Raises:
      TypeError, ValueError: for a ``model`` that is not a Network, an
        ``optimizer`` that is not an optax transformation, an unknown ``grad``,
        a ``batch_size`` that is not an integer ≥ 1 (any integral type is
        accepted) or a ``mesh`` that is not a ``jax.sharding.Mesh`` with a ``"data"`` axis.
    """
    batch_size = _checked_epoch_arguments(model, optimizer, grad, batch_size, mesh)
    return compiled_epoch(model, optimizer, grad, batch_size, mesh, top_level=top_level)


def _checked_epoch_arguments(model, optimizer, grad, batch_size, mesh) -> int:
    """The checks of :func:`make_train_epoch`'s arguments; ``batch_size`` as a Python int."""
    check_network(model)
    check_optimizer(optimizer)
    check_grad(grad)
    batch_size = checks.check_count(batch_size, "batch_size")
    if mesh is not None:
        sharding.check_mesh(mesh, batch_size, or_none=True)
    return batch_size


@functools.lru_cache(maxsize=64)
def compiled_epoch(model, optimizer, grad, batch_size, mesh=None, options=EpochOptions(), top_level=False):
    """``jax.jit`` of :func:`epoch_function` for checked arguments, cached.

    ``top_level=True`` compiles it with :func:`funcnet.xla_options.epoch_compiler_options`
    (512-bit vectors on CPU), for callers that never nest it in another
    ``jit`` or ``vmap`` (JAX refuses compile options there).
    """
    train_epoch = epoch_function(model, optimizer, grad, batch_size, mesh, options)
    return jax.jit(train_epoch, compiler_options=epoch_compiler_options() if top_level else None)


make_train_epoch.cache_info = compiled_epoch.cache_info  # the cache is behind the argument checks
make_train_epoch.cache_clear = compiled_epoch.cache_clear


def shuffled_copy(columns, key, epoch):
    """``columns`` (a tuple of ``(n, ...)`` arrays, ``None`` entries kept) with their rows in the epoch's order.

    Slot ``j`` holds row ``π(j)``, ``π = permutation(key, n, stream=epoch)``: the
    order of :func:`shuffled_batch_rows`.  Row ``i`` is *scattered* to slot
    ``π⁻¹(i)`` (``permutation(..., inverse=True)``, the same cost as ``π``):
    the rows are read in order and written at random, once per epoch, and a
    CPU retires random writes without waiting on them, where a gather waits
    on every random read (``BENCHMARKS.md``, "scikit-learn estimators").  The
    price is one shuffled copy of every column while the epoch runs.
    """
    num_rows = jax.tree.leaves(columns)[0].shape[0]
    slots = permutation(key, num_rows, stream=_index(epoch, "epoch"), inverse=True)
    return jax.tree.map(lambda column: jnp.zeros_like(column).at[slots].set(
        column, unique_indices=True, mode="promise_in_bounds"), columns)


def epoch_function(model, optimizer, grad, batch_size, mesh=None, options=EpochOptions()):
    """The one training epoch every trainer compiles (``fit``, ``fit_many``, the estimators, the CLI).

    Returns the un-jitted ``train_epoch(params, opt_state, x, y, key, epoch,
    x_val=None, y_val=None, sample_weight=None, alpha=None) -> (params,
    opt_state, train_loss, val_loss)`` described by :func:`make_train_epoch`:
    the rows in the epoch's order (:func:`shuffled_copy`, or as they are
    without ``options.shuffle``), cut into ``n // batch_size`` full batches
    (one ``lax.scan``) and one batch of the ``n % batch_size`` rest, one
    :func:`update_fn` step each on the objective of
    :func:`penalised_value_and_grad_fn` (``alpha`` a runtime scalar, or
    ``None`` for no penalty).  ``train_loss`` weighs the batch objectives as
    ``options.loss_per`` says.  The optimizer's state is the tree state
    ``optimizer.init(params)`` makes (``fit``), or, with ``options.flat_params``,
    the state of one flat vector of every parameter (the estimators).
    """
    if options.loss_per not in LOSS_PER:  # an unknown one would weigh like "weight" without a word
        raise ValueError(f"EpochOptions.loss_per must be one of {', '.join(LOSS_PER)}, got {options.loss_per!r}")
    devices = 1 if mesh is None else sharding.check_mesh(mesh, batch_size)

    def split_rows(arrays):
        if mesh is None or arrays[0].shape[0] % devices:
            return arrays  # a leftover batch that does not divide runs whole on every device
        return tuple(sharding.constrain_rows(mesh, a, 0) for a in arrays)

    def train_epoch(params, opt_state, x, y, key, epoch, x_val=None, y_val=None, sample_weight=None, alpha=None):
        checks.check_key(key, "key", "make_train_epoch", single=True)
        unravel = None
        if options.flat_params:
            params, unravel = ravel_pytree(params)
        update = update_fn(model, optimizer, grad, "fit", options.loss_scale, unravel)
        num_samples = x.shape[0]
        columns = (x, y, sample_weight)  # sample_weight may be None: tree.map keeps it None
        if options.shuffle:
            columns = shuffled_copy(columns, key, epoch)
        # the epoch's sums run in float32 at least: a float16 sum of 32 batch losses of 3000 overflows
        total_dtype = accumulation_dtype(x.dtype)

        def step(params, opt_state, x_batch, y_batch, batch_weights, index):
            step_dropout_key = step_key(key, epoch, index) if model.needs_key else None
            rows = x_batch.shape[0]
            if batch_weights is None:  # a batch weighs its row count, known when tracing: only losses are summed
                params, opt_state, value = update(params, opt_state, *split_rows((x_batch, y_batch)),
                                                  key=step_dropout_key, alpha=alpha)
                return params, opt_state, {"loss": value.astype(total_dtype) * rows}
            # a batch whose weights are all 0 holds no data (Σ w ℓ / Σ w would be 0/0): its step is skipped
            weight = jnp.sum(batch_weights.astype(total_dtype))
            has_data = weight > 0
            batch_weights = jnp.where(has_data, batch_weights, jnp.ones_like(batch_weights))
            stepped = update(params, opt_state, *split_rows((x_batch, y_batch, batch_weights)), key=step_dropout_key,
                             alpha=alpha)
            params, opt_state = jax.tree.map(lambda new, old: jnp.where(has_data, new, old), stepped[:2],
                                             (params, opt_state))
            value = jnp.where(has_data, stepped[2].astype(total_dtype), 0)
            if options.loss_per == "row":
                return params, opt_state, {"loss": value * rows}
            return params, opt_state, {"loss": value * weight, "weight": weight}

        def scan_body(state, batch_and_index):
            params, opt_state, sums = step(*state, *batch_and_index)
            return (params, opt_state), sums

        num_full = num_samples // batch_size
        cut = num_full * batch_size
        sums = {"loss": jnp.zeros((), total_dtype)}
        if sample_weight is not None and options.loss_per == "weight":
            sums["weight"] = jnp.zeros((), total_dtype)
        if num_full:
            batches = jax.tree.map(lambda column: column[:cut].reshape(num_full, batch_size, *column.shape[1:]),
                                   columns)
            steps = jnp.arange(num_full, dtype=jnp.uint32)
            (params, opt_state), per_step = lax.scan(scan_body, (params, opt_state), (*batches, steps))
            sums = jax.tree.map(jnp.sum, per_step)
        if cut < num_samples:
            rest = jax.tree.map(lambda column: column[cut:], columns)
            params, opt_state, last = step(params, opt_state, *rest, num_full)
            sums = jax.tree.map(jnp.add, sums, last)
        if unravel is not None:
            params = unravel(params)
        val_loss = jnp.nan if x_val is None else mean_loss(model, params, x_val, y_val)
        # XLA turns division by a constant into multiplication by its rounded reciprocal: the barrier keeps
        # the mean an exact division, as when the row count was summed at run time (same bits as 0.2.0)
        weight = sums.get("weight", lax.optimization_barrier(jnp.asarray(num_samples, total_dtype)))
        # a last step that breaks the params leaves every batch loss finite: report it as NaN
        train_loss = jnp.where(params_are_finite(params), sums["loss"] / weight, jnp.nan)
        return params, opt_state, train_loss, jnp.asarray(val_loss, total_dtype)

    return train_epoch


def as_arrays(model, params, x, y):
    """``x`` in the params' dtype; ``y`` too, or int32 for integer class labels."""
    dtype = checks.params_dtype(params)
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
    opt_state = optimizer_init(optimizer, params) if opt_state is None else opt_state
    weights = () if sample_weight is None else (sample_weight,)
    if held_out == 0:
        return params, opt_state, (x, y, *weights), None
    order = permutation(key, x.shape[0], stream=VALIDATION_STREAM)
    val_rows, train_rows = order[:held_out], order[held_out:]
    train = (x[train_rows], y[train_rows], *(w[train_rows] for w in weights))
    return params, opt_state, train, (x[val_rows], y[val_rows])

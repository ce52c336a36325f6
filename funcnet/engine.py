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

import jax
import jax.numpy as jnp
import optax
from jax import lax

from funcnet import checks, sharding
from funcnet.row_chunks import accumulation_dtype, mean_loss  # noqa: F401  (mean_loss: engine.mean_loss)
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
    """``opt_state`` must be what ``optimizer.init(params)`` makes for ``params``, one model's (``fit``,
    ``fit_state``), or, with ``num_models``, that stacked ``num_models`` times (``fit_many``).

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


def update_fn(model, optimizer, grad, where: str = "train_step"):
    """The un-jitted step ``(params, state, x, y, weights=None, *, key=None) -> (params, state, loss)``.

    The batch is cast to the params' dtype first (:func:`batch_in_params_dtype`);
    the optimizer update is :func:`optimizer_update`, with ``value_fn`` the
    step's own objective (:func:`objective_fn`) on this batch, weights and key.
    """
    compute = value_and_grad_fn(model, grad)
    objective = objective_fn(model, grad)

    def update(params, opt_state, x, y, weights=None, *, key=None):
        if key is not None:
            checks.check_key(key, "key", where, single=True)
        checks.check_dropout_key(model, key, where, f"{where}(params, opt_state, x, y, "
                                 "key=fn.engine.step_key(key, epoch, step))", "a fresh key every step")
        x, y, weights = batch_in_params_dtype(model, params, x, y, weights)
        value, grads = compute(params, x, y, weights, key=key)
        updates, opt_state = optimizer_update(optimizer, grads, opt_state, params, value,
                                              lambda candidate: objective(candidate, x, y, weights, key))
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


def make_train_epoch(model, optimizer, grad: str = "autodiff", batch_size: int = 32, mesh=None):
    """One whole epoch as one compiled call: shuffle, a scan over batches, the remainder, validation.

    Returns:
      jitted ``train_epoch(params, opt_state, x, y, key, epoch, x_val=None, y_val=None,
      sample_weight=None) -> (params, opt_state, train_loss, val_loss)``.  Each
      batch's loss is weighted by ``sample_weight`` (per row, ``(n,)``) when
      given; a batch whose weights are all 0 is skipped (params and optimizer
      state unchanged), as if its rows were not there.  ``train_loss`` is the weighted mean of the batch objectives seen
      during the epoch (each
      computed before its update, as the articles do, with dropout and the
      L2 term); ``val_loss`` is the data loss at inference on
      ``(x_val, y_val)`` after the epoch, NaN when not given.  Step ``s``
      gets ``step_key(key, epoch, s)`` when the model has dropout.
      ``train_loss`` is also NaN when the epoch leaves any param non-finite
      (a last step that diverges has a finite loss, computed before its
      update), so a caller that checks the loss never keeps broken params.
      Both losses are summed and returned in float32 for float16 and
      bfloat16 params (:func:`accumulation_dtype`), in the params' dtype otherwise.
      The function is cached per ``(model, optimizer, grad, batch_size, mesh)``,
      so repeated ``fit`` calls with the same arguments and data shapes do
      not recompile.  With a ``mesh`` every batch's rows are split over its
      ``"data"`` axis (see :mod:`funcnet.sharding`).  ``key`` is one key
      (a batch of keys is refused: :func:`funcnet.fit_many` trains one model per key).

    Raises:
      TypeError, ValueError: for a ``model`` that is not a Network, an
        ``optimizer`` that is not an optax transformation, an unknown ``grad``,
        a ``batch_size`` that is not an integer ≥ 1 (any integral type is
        accepted) or a ``mesh`` that is not a ``jax.sharding.Mesh`` with a ``"data"`` axis.
    """
    check_network(model)
    check_optimizer(optimizer)
    check_grad(grad)
    batch_size = checks.check_count(batch_size, "batch_size")
    if mesh is not None:
        sharding.check_mesh(mesh, batch_size, or_none=True)
    return _compiled_epoch(model, optimizer, grad, batch_size, mesh)


@functools.lru_cache(maxsize=64)
def _compiled_epoch(model, optimizer, grad, batch_size, mesh):
    """:func:`make_train_epoch` for checked arguments, cached."""
    update = update_fn(model, optimizer, grad, "fit")
    devices = 1 if mesh is None else sharding.check_mesh(mesh, batch_size)

    def split_rows(arrays):
        if mesh is None or arrays[0].shape[0] % devices:
            return arrays  # a leftover batch that does not divide runs whole on every device
        return tuple(sharding.constrain_rows(mesh, a, 0) for a in arrays)

    def train_epoch(params, opt_state, x, y, key, epoch, x_val=None, y_val=None, sample_weight=None):
        num_samples = x.shape[0]
        full, remainder = shuffled_batch_rows(key, num_samples, batch_size, epoch)

        # the epoch's sums run in float32 at least: a float16 sum of 32 batch losses of 3000 overflows
        total_dtype = accumulation_dtype(x.dtype)

        def keyed_update(params, opt_state, rows, step):  # each step gathers its own rows: no shuffled copy
            step_dropout_key = step_key(key, epoch, step) if model.needs_key else None
            if sample_weight is None:  # a batch weighs its row count, known when tracing: only losses are summed
                params, opt_state, value = update(params, opt_state, *split_rows((x[rows], y[rows])),
                                                  key=step_dropout_key)
                return params, opt_state, {"loss": value.astype(total_dtype) * rows.shape[0]}
            # a batch whose weights are all 0 holds no data (Σ w ℓ / Σ w would be 0/0): its step is skipped
            batch_weights = sample_weight[rows]
            weight = jnp.sum(batch_weights.astype(total_dtype))
            has_data = weight > 0
            batch_weights = jnp.where(has_data, batch_weights, jnp.ones_like(batch_weights))
            stepped = update(params, opt_state, *split_rows((x[rows], y[rows], batch_weights)), key=step_dropout_key)
            params, opt_state = jax.tree.map(lambda new, old: jnp.where(has_data, new, old), stepped[:2],
                                             (params, opt_state))
            value = jnp.where(has_data, stepped[2].astype(total_dtype), 0)
            return params, opt_state, {"loss": value * weight, "weight": weight}

        def scan_body(state, rows_and_step):
            params, opt_state, sums = keyed_update(*state, *rows_and_step)
            return (params, opt_state), sums

        sums = {"loss": jnp.zeros((), total_dtype)}
        if sample_weight is not None:
            sums["weight"] = jnp.zeros((), total_dtype)
        if full.shape[0]:
            steps = jnp.arange(full.shape[0], dtype=jnp.uint32)
            (params, opt_state), per_step = lax.scan(scan_body, (params, opt_state), (full, steps))
            sums = jax.tree.map(jnp.sum, per_step)
        if remainder is not None:
            params, opt_state, last = keyed_update(params, opt_state, remainder, full.shape[0])
            sums = jax.tree.map(jnp.add, sums, last)
        val_loss = jnp.nan if x_val is None else mean_loss(model, params, x_val, y_val)
        # XLA turns division by a constant into multiplication by its rounded reciprocal: the barrier keeps
        # the mean an exact division, as when the row count was summed at run time (same bits as 0.2.0)
        weight = sums.get("weight", lax.optimization_barrier(jnp.asarray(num_samples, total_dtype)))
        # a last step that breaks the params leaves every batch loss finite: report it as NaN
        train_loss = jnp.where(params_are_finite(params), sums["loss"] / weight, jnp.nan)
        return params, opt_state, train_loss, jnp.asarray(val_loss, total_dtype)

    return jax.jit(train_epoch)


make_train_epoch.cache_info = _compiled_epoch.cache_info  # the cache is behind the argument checks
make_train_epoch.cache_clear = _compiled_epoch.cache_clear


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

"""Input checks at the public boundary, with errors that say what, expected and got.

Two kinds of check:

* **Shape checks** read only static shapes (and dtypes: data must be real
  numbers, :func:`check_real_dtype`; params floating, :func:`check_param_dtypes`),
  so they run while JAX traces a function (once per input shape) and cost
  nothing in the compiled step.
  ``model.forward``, ``model.loss`` and ``model.manual_grad`` call them.
* **Value checks** (NaN/inf, empty data, label ranges, values that overflow
  the params' dtype, non-finite params) must read the data, so they run on
  the host, once, before training: :func:`funcnet.fit` and
  :func:`funcnet.predict` call :func:`check_data` and :func:`check_params`;
  users who write their own loop around ``train_step`` call them once on
  their dataset and params.  Every floating dtype is checked, float16 and
  bfloat16 included (numpy does not count bfloat16 as ``np.inexact``, so the
  dtype test is ``jnp.issubdtype``).

Where the value checks run: NumPy (host) inputs are read where they are.
JAX arrays of more than :data:`DEVICE_CHECK_MIN_SIZE` elements are checked on
their device by one compiled reduction that brings back a few scalars (any
NaN/inf, the largest magnitude, any bad label), so a dataset already on an
accelerator is not copied to the host on every call; only when that says
something is wrong is the array read on the host, to build the same message
as before.  Smaller JAX arrays (params, small batches) are copied: a copy of
at most 256 KiB is cheaper than compiling a reduction for their shape.
Arrays sharded over several processes are read shard by shard on the host
(:func:`host_values`).
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import operator

import jax
import jax.numpy as jnp
import numpy as np


DEVICE_CHECK_MIN_SIZE = 1 << 16  # JAX arrays with more elements are checked on their device


def _shape(array) -> tuple[int, ...]:
    return tuple(np.shape(array))


def host_values(array) -> np.ndarray:
    """The values of ``array`` this process can see: all of it, or, for an array sharded over
    several processes, the rows of its local shards (each process checks its own part)."""
    shards = getattr(array, "addressable_shards", None)
    if shards is not None and not array.is_fully_addressable:
        return np.concatenate([np.asarray(shard.data) for shard in shards])
    return np.asarray(array)


def checked_on_device(array) -> bool:
    """Whether ``array``'s values are checked on its device: a concrete JAX array of more than
    :data:`DEVICE_CHECK_MIN_SIZE` elements that this process holds whole."""

    return isinstance(array, jax.Array) and array.size > DEVICE_CHECK_MIN_SIZE and array.is_fully_addressable


@functools.lru_cache(maxsize=None)
def _device_value_summary():

    @jax.jit
    def summary(values):
        """``(any NaN/inf, the largest |value|)``: two scalars for the host to judge."""
        if jnp.issubdtype(values.dtype, jnp.inexact):
            return jnp.any(~jnp.isfinite(values)), jnp.max(jnp.abs(values))
        if jnp.issubdtype(values.dtype, jnp.number):  # |int| in float32: no overflow at int32's minimum
            return jnp.bool_(False), jnp.max(jnp.abs(values.astype(jnp.float32)))
        return jnp.bool_(False), jnp.float32(0)

    return summary


def _passes_on_device(array, dtype) -> bool:
    """For a JAX array checked on its device: true when it is all finite and fits ``dtype``.

    False means "read it on the host": something is wrong, or its largest
    value needs the exact cast test of :func:`check_fits`.
    """

    nonfinite, largest = jax.device_get(_device_value_summary()(array))
    if nonfinite:
        return False
    if dtype is None or not is_floating(dtype) or np.dtype(array.dtype) == np.dtype(dtype):
        return True
    return float(largest) <= float(jnp.finfo(dtype).max)


TIME_KINDS = {"m": "time spans (timedelta64)", "M": "dates and times (datetime64)"}


def check_real_dtype(name: str, array) -> None:
    """``array`` must hold real numbers: a bool, integer or floating dtype (float16 and bfloat16 included).

    Bools are the numbers 0 and 1, exactly, as in NumPy and scikit-learn.  Everything else is refused
    rather than cast to the params' dtype: complex values would lose their imaginary part (NumPy only
    warns), strings would be parsed, and object, datetime64, timedelta64 (which NumPy counts as an
    integer type, but whose numbers depend on its unit) or key arrays hold no numbers to compute with.
    Reads only the dtype (a list or a DataFrame is converted to find it), so it runs while JAX traces.

    Raises:
      ArgumentTypeError: (a ``TypeError`` and a ``ValueError``) naming ``name``, its dtype and what to do.
    """

    dtype = getattr(array, "dtype", None)
    if dtype is None:  # a list, a tuple, a DataFrame...
        try:
            dtype = np.asarray(array).dtype
        except (TypeError, ValueError) as error:
            raise ArgumentTypeError(f"`{name}` must be an array of real numbers, but it cannot be read as one: "
                                    f"{error}") from None
    expected = "expected real numbers (a bool, integer or floating array)"
    kind = getattr(dtype, "kind", None)
    if kind in TIME_KINDS:  # NumPy files timedelta64 under the integers
        raise ArgumentTypeError(f"`{name}` has dtype {dtype}: {TIME_KINDS[kind]}, not numbers; {expected}. Convert "
                                f"it to numbers in a unit first, e.g. {name} / np.timedelta64(1, 's') for seconds")
    try:
        if any(jnp.issubdtype(dtype, kind) for kind in (jnp.bool_, jnp.integer, jnp.floating)):
            return
        is_complex = jnp.issubdtype(dtype, jnp.complexfloating)
    except TypeError:  # a dtype NumPy does not know (pandas' extension dtypes)
        is_complex = False
    if is_complex:
        raise ArgumentTypeError(f"`{name}` has dtype {dtype}: complex numbers, but the network computes with real "
                                f"ones and casting would drop the imaginary part; {expected}. Pass "
                                f"`{name}.real` if the imaginary part is meant to be dropped")
    raise ArgumentTypeError(f"`{name}` has dtype {dtype}; {expected}. Convert it first, e.g. "
                            f"np.asarray({name}, dtype=np.float32)")


def as_real_array(name: str, value):
    """``value`` checked by :func:`check_real_dtype`, as an array: a list becomes a NumPy array,
    arrays pass unchanged, ``None`` stays ``None``.  For arguments of a jitted function, which
    refuses object or string arrays with an error that names none of its arguments."""
    if value is None:
        return None
    check_real_dtype(name, value)
    return value if hasattr(value, "dtype") else np.asarray(value)


def check_inputs(model, x) -> None:
    """``x`` must be real numbers (:func:`check_real_dtype`), ``(batch, sizes[0])`` with ``batch >= 1``."""
    check_real_dtype("x", x)
    shape = _shape(x)
    if len(shape) != 2:
        hint = " ; for one sample use x.reshape(1, -1)" if len(shape) == 1 else ""
        raise ValueError(
            f"`x` must be 2-D (batch, features) but has shape {shape}{hint}"
        )
    if shape[0] == 0:
        raise ValueError("`x` is empty: it has 0 rows; expected at least one sample")
    if shape[1] != model.n_in:
        raise ValueError(
            f"`x` has {shape[1]} features (shape {shape}) but the model's first layer "
            f"expects {model.n_in} (sizes[0] = {model.n_in})"
        )


@functools.lru_cache(maxsize=256)
def expected_param_shapes(model) -> tuple:
    """One ``{leaf name: shape}`` per layer, read off ``model.init`` without running it.

    The key is made inside :func:`jax.eval_shape`'s own trace, so a call from
    inside a function being traced adds nothing to that function's program:
    its program is the same whether or not this model's shapes were cached.
    """

    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0)))
    return tuple({name: tuple(leaf.shape) for name, leaf in layer.items()} for layer in shapes)


def _layer_label(model, index: int) -> str:
    layer = model.layers[index]
    width = model.widths[index]
    return f"layer {index} ({layer.name} → {width})"


def check_params(model, params) -> None:
    """``params`` must be one dict per layer, with the leaves and shapes that ``model.init`` makes, all finite.

    The shapes are checked always; the values (NaN/inf) on the host, for
    leaves that hold values (not tracers or ``jax.ShapeDtypeStruct``).  A NaN
    weight is an error, not something to train on: behind a ReLU that never
    fires it would hide in the outputs and survive training.
    """
    check_param_shapes(model, params)
    check_param_dtypes(params)
    check_param_values(params)


def check_param_dtypes(params, name: str = "params") -> None:
    """Every leaf of ``params`` must have a floating dtype (float16, bfloat16, float32, float64).

    Integer, bool or complex weights are not a network funcnet can run: the inputs would be cast to
    their dtype (integer params predict truncated values, 0.0 for small weights).  Reads only dtypes.

    Raises:
      ArgumentTypeError: naming the first such leaf, e.g. ``params[0]['W']``, and its dtype.
    """

    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        dtype = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
        if not is_floating(dtype) or is_complex(dtype):
            raise ArgumentTypeError(
                f"`{name}{jax.tree_util.keystr(path)}` has dtype {dtype}; expected floating-point arrays "
                "(float32, float64, float16 or bfloat16): create them with model.init(key), or cast them "
                "with jax.tree.map(lambda leaf: leaf.astype(jnp.float32), params)")


def params_dtype(params, default=None):
    """The params' dtype, the one the network computes in: their first leaf's (:func:`check_param_dtypes`
    keeps them floating; ``model.init`` gives every leaf one dtype).  ``default`` for params without
    leaves (a network of activations only, params ``[{}]``)."""

    leaves = jax.tree.leaves(params)
    return leaves[0].dtype if leaves else default


def is_complex(dtype) -> bool:
    """Whether ``dtype`` is a complex type (which ``jnp.inexact`` counts as floating)."""

    return bool(jnp.issubdtype(dtype, jnp.complexfloating))


def check_has_params(model, params, where: str = "fit") -> None:
    """``params`` must hold at least one array: a network of activations only (``fn.sequential(5, ["relu"])``,
    params ``[{}]``) computes a function (``fn.predict`` runs it) but has nothing to train.

    Raises:
      ValueError: naming ``params``, the model and ``where``.
    """

    if not jax.tree.leaves(params):
        raise ValueError(f"`params` has no leaves: {model.describe()} has no parameters to train, so {where} has "
                         "nothing to do; fn.predict(model, params, x) computes it as it is")


def check_param_values(params, name: str = "params") -> None:
    """Every leaf of ``params`` (or an optimizer state) that holds values must be finite (checked on the host).

    ``jax.ShapeDtypeStruct`` leaves have no values to read and are skipped; so
    are random keys (``noisy_sgd``'s state holds one); integer leaves (step
    counts) pass.  Like every value check, it needs concrete values: inside
    ``jit`` or ``grad`` JAX refuses to read a tracer (``ConcretizationTypeError``).
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if isinstance(leaf, jax.ShapeDtypeStruct) or (
                hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)):
            continue
        check_finite(f"{name}{jax.tree_util.keystr(path)}", leaf,
                     advice=f"The {name} must be finite before training: re-initialise with model.init(key) "
                            "(and optimizer.init(params)) or load a checkpoint saved before it diverged")


def check_param_shapes(model, params) -> None:
    """``params`` must be one dict per layer, with the leaves and shapes that ``model.init`` makes.

    Reads only shapes, so it runs while JAX traces (``model.forward``, ``model.loss``).
    """
    expected = expected_param_shapes(model)
    if not isinstance(params, (list, tuple)) or len(params) != len(expected) or type(params).__name__ == "FitResult":
        got = f"a {type(params).__name__} of length {len(params)}" if isinstance(
            params, (list, tuple)) else f"a {type(params).__name__}"
        hint = ("fn.fit's result, which unpacks as (params, history): pass result.params"
                if type(params).__name__ == "FitResult" else "create them with model.init(key)")
        raise ValueError(f"`params` must be a list of {len(expected)} layer dicts for {model.describe()}, got {got}; "
                         f"{hint}")
    for index, (layer, leaves) in enumerate(zip(params, expected)):
        if not isinstance(layer, dict) or set(layer) != set(leaves):
            keys = sorted(layer) if isinstance(layer, dict) else type(layer).__name__
            raise ValueError(f"`params[{index}]` must be a dict with keys {sorted(leaves)} for "
                             f"{_layer_label(model, index)}, got {keys}")
        for leaf, shape in leaves.items():
            if _shape(layer[leaf]) != shape:
                raise ValueError(
                    f"`params[{index}]['{leaf}']` has shape {_shape(layer[leaf])} but "
                    f"{_layer_label(model, index)} of {model.describe()} expects {shape}"
                )


class ArgumentTypeError(ValueError, TypeError):
    """An argument of the wrong type.  Both a ``TypeError`` (what it is) and a ``ValueError`` (what
    funcnet's checks have always raised, and what the CLI turns into exit 2), as scikit-learn's
    ``InvalidParameterError`` is."""


def check_count(value, name: str, minimum: int = 1, *, integral_floats: bool = False) -> int:
    """``value`` as a Python ``int`` ≥ ``minimum``: any integral type (``int``, ``np.int64``, a 0-d integer
    array, anything with ``__index__``), never a ``bool``, a string, or (unless ``integral_floats``) a float.

    With ``integral_floats=True`` a finite real with an integer value (``10.0``, ``np.float64(10)``) counts
    too, as a layer width does in :func:`funcnet.mlp`.  Returns the ``int``, so callers use a plain Python
    number (hashable, a static argument for ``jit``).

    Raises:
      ArgumentTypeError: (a ``TypeError`` and a ``ValueError``) naming ``name``, for a value of the wrong type.
      ValueError: naming ``name``, for an integer below ``minimum``.
    """
    expected = f"`{name}` must be an integer ≥ {minimum}"
    if isinstance(value, (bool, np.bool_)) or getattr(value, "dtype", None) == np.bool_:
        raise ArgumentTypeError(f"{expected}, got the bool {value!r}")
    try:
        count = operator.index(value)
    except TypeError:
        if not (integral_floats and isinstance(value, numbers.Real) and np.isfinite(value)
                and float(value).is_integer()):
            raise ArgumentTypeError(f"{expected}, got {value!r} ({type(value).__name__})") from None
        count = int(value)
    if count < minimum:
        raise ValueError(f"{expected}, got {count}")
    return count


@contextlib.contextmanager
def error_prefix(prefix: str):
    """Within the block, a ``TypeError`` or ``ValueError`` from a check gets ``prefix`` in front of its
    message, same type: ``with error_prefix("check_loss: "): check_count(0, "batch")`` raises
    ``ValueError("check_loss: `batch` must be an integer ≥ 1, got 0")``.  For checks run on behalf of a
    named function or layer."""
    try:
        yield
    except (TypeError, ValueError) as error:
        raise type(error)(f"{prefix}{error}") from None


def check_real(value, name: str, *, low: float = -np.inf, high: float = np.inf, low_open: bool = False,
               high_open: bool = False, dtype=None) -> float:
    """``value`` as a finite Python ``float`` in the interval from ``low`` to ``high``.

    Any real number type is accepted (``int``, ``float``, NumPy and JAX scalars, 0-d integer or floating
    arrays); ``bool``, complex numbers, NaN and ±inf are refused, since a NaN or infinite hyper-parameter
    silently turns every result it touches into NaN.  ``low_open``/``high_open`` exclude the end points.

    With ``dtype`` (a parameter the network computes with, e.g. ``np.float32``, the default params dtype) the
    value must also stay finite there, ``|value| ≤ finfo(dtype).max`` (``1e39`` is finite in float64 but
    ``inf`` in float32), and a value that must be ``> 0`` (``low=0, low_open=True``) must be at least
    ``finfo(dtype).tiny``, the smallest normal number: smaller ones become 0 there (XLA flushes subnormals).
    """

    value_dtype = getattr(value, "dtype", None)
    real = (isinstance(value, numbers.Real) and not isinstance(value, bool) if value_dtype is None else
            np.ndim(value) == 0 and np.dtype(value_dtype).kind not in "mM"  # NumPy files time spans as integers
            and (jnp.issubdtype(value_dtype, jnp.integer) or jnp.issubdtype(value_dtype, jnp.floating)))
    if not real:
        raise ArgumentTypeError(f"`{name}` must be a real number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"`{name}` must be finite, got {number}")
    if number < low or number > high or (low_open and number == low) or (high_open and number == high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"`{name}` must be in {interval}, got {number}")
    if dtype is not None:
        finfo = jnp.finfo(dtype)
        where = f"{finfo.dtype.name}{', the default params dtype' if finfo.dtype == np.float32 else ''}"
        if abs(number) > float(finfo.max):
            raise ValueError(f"`{name}` must be finite in {where} (|{name}| ≤ {float(finfo.max):g}), got {number:g}, "
                             f"which is inf there")
        if low == 0 and low_open and number < float(finfo.tiny):
            raise ValueError(f"`{name}` must be > 0 in {where} (at least its smallest normal number, "
                             f"{float(finfo.tiny):g}), got {number:g}, which is 0 or a subnormal number there "
                             "(XLA flushes those to 0)")
    return number


def check_key(key, name: str = "key", where: str = "fit", *, single: bool = False) -> None:
    """``key`` must be a ``jax.random`` key: a typed key or a raw ``uint32[..., 2]``.

    With ``single=True`` it must be exactly one key: a typed key of shape ``()`` or a raw
    ``uint32[2]``; a batch of keys (``jax.random.split(k, 2)``) is refused, naming ``name``
    (a function that uses one key would otherwise use the batch as one, a key matching none of them).
    """

    hint = f"make one with jax.random.key(0) and pass it as {where}(..., {name}=jax.random.key(0))"
    if key is None or isinstance(key, (bool, int, float)):
        raise ValueError(f"`{name}` must be a jax.random key, got {key!r}; {hint}")
    try:
        dtype = jnp.asarray(key).dtype if not hasattr(key, "dtype") else key.dtype
    except TypeError:
        raise ValueError(f"`{name}` must be a jax.random key, got {type(key).__name__}; {hint}") from None
    typed = jnp.issubdtype(dtype, jax.dtypes.prng_key)
    if not typed and (dtype != jnp.uint32 or _shape(key)[-1:] != (2,)):
        raise ValueError(f"`{name}` must be a jax.random key, got an array of {dtype} and shape {_shape(key)}; "
                         f"{hint}")
    if single and _shape(key) != (() if typed else (2,)):
        fit_many = "; to train one model per key use fn.fit_many(..., keys=keys)" if where.startswith("fit") else ""
        raise ValueError(f"`{name}` must be a single jax.random key (a typed key of shape () or a raw uint32 "
                         f"array of shape (2,)), got a batch of keys of shape {_shape(key)}; {where} uses one "
                         f"key: pass one, e.g. jax.random.key(0){fit_many}")


def check_dropout_key(model, key, where: str, example: str, advice: str = "") -> None:
    """A model with dropout (``model.needs_key``) needs ``key=`` in training mode, where dropout draws its mask.

    Raises:
      ValueError: when ``key`` is ``None`` for such a model, naming ``where`` and showing ``example``, a call
        that passes a key; ``advice``, when given, ends the message.
    """

    if key is None and model.needs_key:
        raise ValueError(f"this model has dropout, so {where} needs `key=` (training mode draws the dropout mask "
                         f"from it), e.g. {example}{'; ' + advice if advice else ''}")


def check_targets(model, x, y) -> None:
    """``y`` must match the output's shape exactly, so nothing broadcasts silently.

    ``mse`` and ``logloss`` need ``(batch, k)``; ``cross_entropy`` takes integer
    classes ``(batch,)`` or one-hot ``(batch, k)``.  ``y`` must be real numbers
    (:func:`check_real_dtype`): complex, bool, string and object arrays are refused.
    """
    check_real_dtype("y", y)
    x_shape, y_shape = _shape(x), _shape(y)
    k = model.n_out
    if len(y_shape) == 0 or y_shape[0] != x_shape[0]:
        raise ValueError(
            f"`x` has {x_shape[0]} rows but `y` has shape {y_shape}; "
            "`x` and `y` need the same number of samples"
        )
    if model.loss_fn.integer_labels:
        if y_shape not in ((x_shape[0],), (x_shape[0], k)):
            raise ValueError(
                f"`y` has shape {y_shape}; {model.loss_name} expects integer classes "
                f"({x_shape[0]},) or one-hot ({x_shape[0]}, {k})"
            )
        return
    if y_shape != (x_shape[0], k):
        hint = f"; reshape with y.reshape(-1, {k})" if y_shape == (x_shape[0],) else ""
        raise ValueError(
            f"`y` has shape {y_shape} but the model's output is ({x_shape[0]}, {k})"
            f"{hint}"
        )


def check_weights(x, weights) -> None:
    """Sample weights, when given, are one real number per row of ``x``: ``(batch,)``."""
    if weights is None:
        return
    check_real_dtype("weights", weights)
    if _shape(weights) != (_shape(x)[0],):
        raise ValueError(
            f"`weights` has shape {_shape(weights)}; expected one weight per sample, "
            f"({_shape(x)[0]},)"
        )


def is_floating(dtype) -> bool:
    """Whether ``dtype`` is a floating type, bfloat16 and float16 included (``np.inexact`` misses bfloat16)."""

    return bool(jnp.issubdtype(dtype, jnp.inexact))


def check_finite(name: str, array, dtype=None, *, advice: str = "Clean or impute the data first") -> None:
    """Raise if ``array`` holds NaN or inf, saying how many and where the first is.

    Every floating dtype is checked: float16, bfloat16, float32, float64.
    With ``dtype`` (the dtype the values will be cast to, e.g. the params'),
    finite values that become inf in ``dtype`` are an error too: ``70000``
    overflows float16, whose largest value is 65504.

    A large JAX array is checked on its device (:func:`checked_on_device`):
    only two scalars come back, unless there is an error to describe.
    """
    if checked_on_device(array) and _passes_on_device(array, dtype):
        return
    values = host_values(array)
    if is_floating(values.dtype):
        bad = ~np.isfinite(values)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"`{name}` contains {int(bad.sum())} non-finite values (NaN or inf); "
                f"the first is at index {first}: {values[first]}. {advice}"
            )
    if dtype is not None and is_floating(dtype) and values.size and (
            is_floating(values.dtype) or np.issubdtype(values.dtype, np.number)):
        check_fits(name, values, np.dtype(dtype))


def check_fits(name: str, values: np.ndarray, dtype, advice: str = "Scale the data (e.g. standardise it) or use "
               "params of a wider dtype (model.init(key, jnp.float32))") -> None:
    """Finite ``values`` must stay finite in ``dtype``: ``|v| ≤ finfo(dtype).max`` after the cast.

    Only a suspicious maximum pays for the cast.  ``advice`` ends the message.
    """

    dtype = np.dtype(dtype)
    largest = float(jnp.finfo(dtype).max)
    if values.dtype == dtype or float(np.max(np.abs(values))) <= largest:
        return
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(values.astype(dtype))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"`{name}` has {int(bad.sum())} values too large for {dtype.name} (largest {largest:.6g}), "
            f"the params' dtype it is cast to; the first is at index {first}: {float(values[first]):.6g}. {advice}"
        )


def check_labels(model, y) -> None:
    """Labels must be in {0, 1} for logloss and in ``0..k-1`` for cross-entropy.

    A large JAX ``y`` is checked on its device; it is read on the host only to describe an error.
    """
    if model.loss_name not in ("logloss", "cross_entropy"):
        return
    if checked_on_device(y):

        if not jax.device_get(_device_labels_wrong(model.loss_name, model.n_out)(y)):
            return
    values = host_values(y)
    if model.loss_name == "logloss":
        outside = ~np.isin(values, (0, 1))
        if outside.any():
            raise ValueError(
                "`y` must hold only 0 or 1 for loss='logloss', but contains "
                f"{np.unique(values[outside])[:5].tolist()}"
            )
    elif model.loss_name == "cross_entropy":
        k = model.n_out
        if values.ndim == 1:
            outside = (values < 0) | (values >= k) | (values != np.round(values))
            if outside.any():
                raise ValueError(
                    f"`y` class labels must be integers in 0..{k - 1} for a {k}-way "
                    f"softmax, but contains {np.unique(values[outside])[:5].tolist()}"
                )
        elif (values < 0).any() or not np.allclose(values.sum(axis=1), 1.0, atol=1e-5):
            raise ValueError(
                "`y` one-hot rows must be non-negative and sum to 1 for cross_entropy"
            )


@functools.lru_cache(maxsize=None)
def _device_labels_wrong(loss_name: str, k: int):
    """A compiled ``y -> bool``: whether :func:`check_labels` would raise (it then reads ``y`` on the host)."""

    @jax.jit
    def wrong(values):
        if loss_name == "logloss":
            return jnp.any((values != 0) & (values != 1))
        if values.ndim == 1:
            return jnp.any((values < 0) | (values >= k) | (values != jnp.round(values)))
        return jnp.any(values < 0) | ~jnp.allclose(values.sum(axis=1), 1.0, atol=1e-5)

    return wrong


def check_data(model, x, y=None, dtype=None) -> None:
    """All checks for a dataset before training or prediction: shapes, emptiness, NaN/inf, labels.

    Call it once on a dataset when you drive ``train_step`` from your own loop;
    :func:`funcnet.fit` and :func:`funcnet.predict` call it for you.

    Args:
      model, x, y: the model and its data (``y`` optional, for prediction).
      dtype: the dtype the data will be cast to (the params'); values that
        overflow it (beyond 65504 for float16) are an error.  ``None``: not checked.

    Raises:
      ValueError: naming the argument, what was expected and what was found.
    """
    check_inputs(model, x)
    check_finite("x", x, dtype)
    if y is not None:
        check_targets(model, x, y)
        is_class_index = model.loss_fn.integer_labels and len(_shape(y)) == 1
        check_finite("y", y, None if is_class_index else dtype)
        check_labels(model, y)

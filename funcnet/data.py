"""Datasets from the articles, splitting, and standardisation.

All randomness comes from explicit ``jax.random`` keys: the same key gives
the same data and the same split, bit for bit.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from funcnet.checks import check_count, check_key, check_real
from funcnet.shuffle import permutation

Array = jax.Array


def xor_data(dtype=jnp.float32) -> tuple[Array, Array]:
    """The first article's XOR table, batch-first: ``x`` (4, 2), ``y`` (4, 1).

    The article stores it column-major as ``x`` (2, 4) and ``y`` (1, 4); these
    are the transposes.  ``dtype``: any real dtype (float32 by default);
    complex or non-numeric dtypes raise ``TypeError`` naming it.
    """
    dtype = _real_dtype(dtype)
    x = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype)
    y = jnp.array([[0], [1], [1], [0]], dtype)
    return x, y


def make_regression_data(key: jax.Array, num_samples: int = 100_000, dtype=jnp.float32):
    """The second article's synthetic regression (its ``generate_data``), from a key.

    Features ``a, b, c ~ N(0, 1)``, ``d ~ U{0, 1, 2, 3}``, ``e ~ Bernoulli(0.5)``;

        target = 50 + 0.8 a + 0.4 b - 0.2 c + 10 d + 20 e + N(0, 10²)

    so the best achievable mean squared error is the noise variance, 100.

    Returns:
      ``x`` of shape ``(num_samples, 5)`` (columns a, b, c, d, e) and ``y``
      of shape ``(num_samples, 1)``, both of the floating ``dtype``.
    """
    check_key(key, "key", "make_regression_data", single=True)
    num_samples = check_count(num_samples, "num_samples")
    return _regression_data(key, num_samples, _floating_dtype(dtype))


def _floating_dtype(dtype):
    """``dtype`` as a JAX floating dtype (float16, bfloat16, float32, float64), or a clear error."""
    resolved = _real_dtype(dtype, "a floating")
    if not jnp.issubdtype(resolved, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype such as jnp.float32, got {resolved.name}")
    return resolved


def _real_dtype(dtype, kind: str = "a real"):
    """``dtype`` as a NumPy dtype of real numbers (floating, integer or bool), or a clear error."""
    try:
        resolved = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"`dtype` must be {kind} dtype such as jnp.float32, got {dtype!r}") from None
    if not _is_real(resolved):
        raise TypeError(f"`dtype` must be {kind} dtype such as jnp.float32, got {resolved.name}")
    return resolved


@functools.partial(jax.jit, static_argnums=(1, 2))
def _regression_data(key, num_samples, dtype):
    keys = jax.random.split(key, 5)
    continuous = jax.random.normal(keys[0], (num_samples, 3), dtype)
    category = jax.random.randint(keys[1], (num_samples, 1), 0, 4, jnp.int32).astype(dtype)
    coin = (jax.random.uniform(keys[2], (num_samples, 1), dtype) < 0.5).astype(dtype)  # x64-independent
    noise = 10 * jax.random.normal(keys[3], (num_samples, 1), dtype)
    x = jnp.concatenate([continuous, category, coin], axis=1)
    slopes = jnp.array([0.8, 0.4, -0.2, 10.0, 20.0], dtype)
    y = 50 + x @ slopes[:, None] + noise
    return x, y


def split_count(num_samples: int, fraction: float, name: str = "validation_split") -> int:
    """How many of ``num_samples`` rows a ``fraction`` holds out: ``ceil(n · fraction)``.

    Raises if the fraction is not a real number in ``[0, 1)`` (NaN, inf, bool
    and complex are refused) or leaves either side empty.
    """
    fraction = check_real(fraction, name, low=0, high=1, high_open=True)
    held_out = math.ceil(num_samples * fraction)
    if fraction > 0 and not 0 < held_out < num_samples:
        raise ValueError(
            f"`{name}={fraction}` of {num_samples} rows leaves {held_out} held out and "
            f"{num_samples - held_out} for training; both need at least one row"
        )
    return held_out


def train_test_split(key: jax.Array, x, y, test_fraction: float = 0.2):
    """Shuffle rows with ``key`` and hold out ``ceil(n · test_fraction)`` of them.

    Args:
      key: a ``jax.random`` key; the same key gives the same split.
      x, y: arrays with the same number of rows ``n`` (the first axis), e.g.
        ``x`` (n, features) and ``y`` (n, 1) or (n,).  NumPy and JAX arrays are
        indexed as they are; other array-likes (lists, tuples, pandas frames)
        are converted with ``np.asarray`` first.
      test_fraction: a real number in ``[0, 1)``.

    Returns:
      ``(x_train, x_test, y_train, y_test)``; every row lands in exactly one part.

    Raises:
      ValueError: ``key`` is not a key, ``x`` or ``y`` has no rows axis or is
        ragged, their row counts differ, or ``test_fraction`` is outside
        ``[0, 1)`` or leaves a part empty; the message names the argument.
      TypeError: ``test_fraction`` is not a real number (a string, a bool).
    """
    check_key(key, "key", "train_test_split", single=True)
    x, y = _rows_array("x", x), _rows_array("y", y)
    num_samples = x.shape[0]
    if y.shape[0] != num_samples:
        raise ValueError(f"`x` has {num_samples} rows but `y` has {y.shape[0]} (shape {y.shape}); "
                         "`x` and `y` need one row per sample each")
    held_out = split_count(num_samples, test_fraction, "test_fraction")
    order = permutation(key, num_samples)
    train_rows, test_rows = order[held_out:], order[:held_out]
    return x[train_rows], x[test_rows], y[train_rows], y[test_rows]


def _rows_array(name: str, value):
    """``value`` as an array with a rows axis: NumPy and JAX arrays as they are, other array-likes via NumPy."""
    import numpy as np

    if not isinstance(value, (np.ndarray, jax.Array)):
        try:
            value = np.asarray(value)
        except ValueError as error:  # ragged lists
            raise ValueError(f"`{name}` must be an array of rows of equal length, got a "
                             f"{type(value).__name__} that NumPy cannot make one array of ({error})") from None
    if value.ndim == 0:
        raise ValueError(f"`{name}` must have a rows axis (shape (n, ...)), got a scalar {value!r}")
    return value


class Standardizer(NamedTuple):
    """Per-feature ``mean`` and ``scale``: ``apply(x) = (x - mean) / scale``.

    :func:`fit_standardizer` stores both as NumPy float64 arrays (shape ``(features,)``).
    """

    mean: Array
    scale: Array

    def apply(self, x: Array) -> Array:
        """``(x - mean) / scale`` for ``x`` (batch, features), rounded once to ``x``'s floating dtype.

        The arithmetic is never narrower than float32, so a float16 or bfloat16
        ``x`` does not round the statistics away (float16 holds a mean of
        2049.25 as 2050); the result is then cast to ``x``'s dtype (float32
        for integers and bools).

        * Host data (NumPy, lists) is computed on the host in the widest of the
          statistics', ``x``'s and float32 precision: float64 statistics, float64
          arithmetic, whatever ``x`` is.  Statistics stored as float32
          (checkpoints of funcnet 0.2 and earlier) applied to float32 ``x`` give
          the same bits as they always did.
        * JAX arrays (and traced values) are computed with JAX in ``x``'s dtype
          widened to at least float32 (float32 stays float32, float64 float64).

        Raises:
          TypeError: ``x`` does not hold real numbers (complex numbers, text).
          ValueError: ``x`` is not 2-D with one column per statistic.
        """
        import numpy as np

        if isinstance(x, jax.Array):
            dtype = _standardized_dtype(x.dtype, x.shape, np.shape(self.mean))
            work = jnp.promote_types(dtype, jnp.float32)
            mean = jnp.asarray(self.mean, work)
            scale = jnp.asarray(self.scale, work)
            return ((x.astype(work) - mean[None, :]) / scale[None, :]).astype(dtype)
        values = np.asarray(x)
        dtype = _standardized_dtype(values.dtype, values.shape, np.shape(self.mean))
        mean, scale = np.asarray(self.mean), np.asarray(self.scale)
        work = np.result_type(mean.dtype, scale.dtype, dtype, np.float32)
        if work != np.float64:  # float32 statistics: JAX's arithmetic, as funcnet 0.2 computed it
            wide = (jnp.asarray(values, work) - jnp.asarray(mean, work)[None, :]) / jnp.asarray(scale, work)[None, :]
            return np.asarray(wide).astype(dtype)
        return ((values.astype(work) - mean.astype(work)[None, :]) / scale.astype(work)[None, :]).astype(dtype)


def _is_real(dtype) -> bool:
    """Whether ``dtype`` holds real numbers: any float (bfloat16 included), integer or bool."""
    return bool(jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
                or jnp.issubdtype(dtype, jnp.bool_))


def _standardized_dtype(dtype, shape, statistics_shape):
    """The dtype :meth:`Standardizer.apply` returns for an ``x`` of ``dtype`` and ``shape``, after checking both."""
    import numpy as np

    if not _is_real(dtype):
        raise TypeError(f"`x` must hold real numbers, got an array of {np.dtype(dtype).name}")
    if len(statistics_shape) == 1 and (len(shape) != 2 or shape[1] != statistics_shape[0]):
        raise ValueError(f"`x` must have shape (batch, {statistics_shape[0]}): the standardizer holds "
                         f"statistics for {statistics_shape[0]} features; got shape {tuple(shape)}")
    return np.dtype(dtype) if jnp.issubdtype(dtype, jnp.floating) else np.dtype(np.float32)


# A column whose values span at most this many units in the last place (in the column's own
# dtype) of its largest magnitude varies only by rounding: it is constant.
CONSTANT_COLUMN_ULPS = 2
# Columns whose largest magnitude is beyond these bounds are scaled by it before their
# moments are taken, so that the squares in the variance neither overflow nor underflow.
_SAFE_MAGNITUDES = (1e-100, 1e100)


def unit_in_last_place(magnitude, dtype):
    """The spacing of ``dtype``'s numbers at ``magnitude`` (float64, any shape): ``eps · 2^floor(log2 |m|)``.

    That is ``np.spacing`` in ``dtype`` (0.5 for float16 at 1000, 1.2e-16 at
    1.0 in float64), at least the smallest subnormal of ``dtype``, and finite
    at the largest finite value, where ``np.spacing`` gives inf.
    """
    import numpy as np

    info = jnp.finfo(dtype)
    _, exponent = np.frexp(np.abs(np.asarray(magnitude, np.float64)))
    return np.maximum(np.ldexp(float(info.eps), exponent - 1), float(info.smallest_subnormal))


def varies_only_by_rounding(low, high, dtype):
    """Whether values from ``low`` to ``high`` (float64, any shape) are one value up to rounding in ``dtype``.

        high - low ≤ 2 · ulp(max(|low|, |high|))

    with ``ulp`` the spacing of ``dtype``'s numbers there
    (:func:`unit_in_last_place`); for integer and bool dtypes ``high == low``.
    This needs only the extremes, not a mean, so the number of values cannot
    blur it.
    """
    import numpy as np

    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    if not jnp.issubdtype(dtype, jnp.floating):
        return high == low
    magnitude = np.maximum(np.abs(low), np.abs(high))
    with np.errstate(over="ignore"):  # -max to +max: the span overflows to inf, which is not constant
        return high - low <= CONSTANT_COLUMN_ULPS * unit_in_last_place(magnitude, dtype)


class ColumnMoments(NamedTuple):
    """Per-column ``mean`` and ``std`` (NumPy float64, ``(features,)``) and which columns are ``constant`` (bool)."""

    mean: object
    std: object
    constant: object


def column_moments(x: Array, names=None) -> ColumnMoments:
    """Mean, standard deviation and constancy of each column of ``x`` ``(n, features)``, in float64.

        mean_j = Σ_i x_ij / n,   std_j = sqrt(Σ_i (x_ij - mean_j)² / n)

    computed on the host in float64 whatever ``x``'s dtype.  Columns of
    magnitude beyond 1e100 or below 1e-100 are divided by their largest
    magnitude first, so the squares neither overflow nor underflow.

    **Constant** (``constant_j``) is decided from the values themselves, not
    from the computed std (a mean summed over many rows is off by more than
    the spread of a column that varies only by rounding):

        max_i x_ij - min_i x_ij ≤ 2 · ulp(max_i |x_ij|)

    with ``ulp`` the spacing of numbers in ``x``'s own dtype at that magnitude
    (:func:`varies_only_by_rounding`: 5.6e-17 at 0.3 in float64, 0.5 at 1000
    in float16); integer and bool columns are constant when every value is
    equal.  A constant column's mean is its smallest value (exactly its value
    when all are equal: summing n copies of 0.0025 is not exactly n · 0.0025)
    and its std the spread about it, computed from the exact differences
    ``x_ij - min_i x_ij``.

    Raises:
      TypeError: ``x`` does not hold real numbers.
      ValueError: ``x`` is not 2-D with at least one row, ``names`` does not
        name every column, or a value is NaN or infinite (the message names
        the column and row).
    """
    import numpy as np

    values = np.asarray(x)
    if not _is_real(values.dtype):
        raise TypeError(f"`x` must hold real numbers, got an array of {values.dtype.name}")
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"`x` must have shape (rows, features) with at least one row, got {values.shape}")
    if names is not None and len(names) != values.shape[1]:
        raise ValueError(f"`names` must name each of the {values.shape[1]} columns of `x`, got {len(names)} names")
    dtype = values.dtype if jnp.issubdtype(values.dtype, jnp.floating) else np.dtype(np.float64)
    wide = values.astype(np.float64)
    label = (lambda j: repr(names[j])) if names is not None else (lambda j: f"column {j}")
    finite = np.isfinite(wide)
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        raise ValueError(f"{label(column)} of `x` has the value {wide[row, column]} at row {row}; "
                         "standardisation needs finite values")
    largest = np.abs(wide).max(axis=0)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # extreme columns are redone below
        mean, std = wide.mean(axis=0), wide.std(axis=0)
    extreme = (largest < _SAFE_MAGNITUDES[0]) | (largest > _SAFE_MAGNITUDES[1])
    if extreme.any():
        unit = np.where(largest[extreme] > 0, largest[extreme], 1.0)
        scaled = wide[:, extreme] / unit
        mean[extreme], std[extreme] = unit * scaled.mean(axis=0), unit * scaled.std(axis=0)
    if jnp.issubdtype(values.dtype, jnp.floating):
        low = wide.min(axis=0)
        constant = varies_only_by_rounding(low, wide.max(axis=0), dtype)
    else:  # compared in the integers' own dtype: float64 would merge 2^53 and 2^53 + 1
        low, constant = wide.min(axis=0), values.min(axis=0) == values.max(axis=0)
    if constant.any():  # within 2 ulps of the smallest value, so these differences are exact
        unit = np.where(largest[constant] > 0, largest[constant], 1.0)  # squares of 1e-300 would underflow
        spread = unit * ((wide[:, constant] - low[constant]) / unit).std(axis=0)
        mean[constant], std[constant] = low[constant], spread
    return ColumnMoments(mean, std, np.asarray(constant))


def fit_standardizer(x: Array, names=None) -> Standardizer:
    """Mean and standard deviation of each column of ``x`` ``(n, features)``, in float64.

        mean_j = Σ_i x_ij / n,   scale_j = sqrt(Σ_i (x_ij - mean_j)² / n),  or 1 for a constant column

    computed on the host in float64 whatever ``x``'s dtype, so float32 data
    cannot overflow or lose the small differences of large values
    (:func:`column_moments`).  Fit on training rows only.

    A **constant** column gets scale 1, so it standardises to about 0 instead
    of a tiny scale blowing rounding noise (or any other value at predict
    time) up into huge inputs.  Constant means every value equal, in any
    dtype, or varying only by rounding: ``max_j - min_j ≤ 2 · ulp(max_i
    |x_ij|)`` in ``x``'s own dtype (every value equal for integers and bools),
    decided from the values, not from a computed std.  A constant column's
    mean is its smallest value (exactly its value when all are equal).
    :func:`column_moments` says which columns are constant.

    Args:
      x: the training features ``(n, features)``: any real dtype.
      names: optional column names for error messages (default ``column 0``, ...).

    Returns:
      a :class:`Standardizer` of two NumPy float64 arrays ``(features,)``.

    Raises:
      TypeError: ``x`` does not hold real numbers (complex numbers, text).
      ValueError: ``x`` is not 2-D with at least one row, or has a NaN or
        infinite value; the message names the column.
    """
    import numpy as np

    moments = column_moments(x, names)
    return Standardizer(moments.mean, np.where(moments.constant, 1.0, moments.std))

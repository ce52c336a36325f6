"""Datasets from the articles, splitting, standardisation, and chunked evaluation.

All randomness comes from explicit ``jax.random`` keys: the same key gives
the same data and the same split, bit for bit.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from funcnet.shuffle import permutation

Array = jax.Array


def xor_data(dtype=jnp.float32) -> tuple[Array, Array]:
    """The first article's XOR table, batch-first: ``x`` (4, 2), ``y`` (4, 1).

    The article stores it column-major as ``x`` (2, 4) and ``y`` (1, 4); these
    are the transposes.
    """
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
      of shape ``(num_samples, 1)``.
    """
    if num_samples < 1:
        raise ValueError(f"`num_samples` must be at least 1, got {num_samples}")
    return _regression_data(key, num_samples, jnp.dtype(dtype))


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

    Raises if the fraction is outside ``[0, 1)`` or leaves either side empty.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1), got {fraction}")
    held_out = math.ceil(num_samples * fraction)
    if fraction > 0 and not 0 < held_out < num_samples:
        raise ValueError(
            f"`{name}={fraction}` of {num_samples} rows leaves {held_out} held out and "
            f"{num_samples - held_out} for training; both need at least one row"
        )
    return held_out


def train_test_split(key: jax.Array, x, y, test_fraction: float = 0.2):
    """Shuffle rows with ``key`` and hold out ``ceil(n · test_fraction)`` of them.

    Returns:
      ``(x_train, x_test, y_train, y_test)``; every row lands in exactly one part.
    """
    num_samples = x.shape[0]
    held_out = split_count(num_samples, test_fraction, "test_fraction")
    order = permutation(key, num_samples)
    train_rows, test_rows = order[held_out:], order[:held_out]
    return x[train_rows], x[test_rows], y[train_rows], y[test_rows]


class Standardizer(NamedTuple):
    """Per-feature ``mean`` and ``scale``: ``apply(x) = (x - mean) / scale``.

    :func:`fit_standardizer` stores both as NumPy float64 arrays (shape ``(features,)``).
    """

    mean: Array
    scale: Array

    def apply(self, x: Array) -> Array:
        """Standardise ``x`` (batch, features) with the stored statistics; the result has ``x``'s dtype.

        Host data (NumPy, lists) is computed on the host in the wider of the
        statistics' and ``x``'s precision — float64 statistics, float64
        arithmetic, whatever ``x`` is — and returned in ``x``'s float dtype
        (float32 for integers).  Statistics stored as float32 (checkpoints of
        funcnet 0.2 and earlier) applied to float32 ``x`` give the same bits as
        they always did.  JAX arrays (and traced values) are computed with JAX
        in ``x``'s dtype.
        """
        import numpy as np

        if isinstance(x, jax.Array):
            mean = jnp.asarray(self.mean, x.dtype)
            scale = jnp.asarray(self.scale, x.dtype)
            return (x - mean[None, :]) / scale[None, :]
        values = np.asarray(x)
        dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.dtype(np.float32)
        mean, scale = np.asarray(self.mean), np.asarray(self.scale)
        work = np.result_type(mean.dtype, scale.dtype, dtype)
        if work != np.float64:  # float32 statistics: JAX's arithmetic, as funcnet 0.2 computed it
            wide = (jnp.asarray(values, work) - jnp.asarray(mean, work)[None, :]) / jnp.asarray(scale, work)[None, :]
            return np.asarray(wide).astype(dtype)
        return ((values.astype(work) - mean.astype(work)[None, :]) / scale.astype(work)[None, :]).astype(dtype)


# A column whose standard deviation is at most this many units of rounding of its
# largest magnitude (in the data's own precision) is constant up to rounding.
CONSTANT_COLUMN_ULPS = 16


def fit_standardizer(x: Array, names=None) -> Standardizer:
    """Mean and standard deviation of each column of ``x`` ``(n, features)``, in float64.

        mean_j = Σ_i x_ij / n,   std_j = sqrt(Σ_i (x_ij - mean_j)² / n)

    computed on the host in float64 whatever ``x``'s dtype, so float32 data
    cannot overflow or lose the small differences of large values.  Fit on
    training rows only.

    A column that is constant up to rounding — ``std_j ≤ 16 · eps · max_i |x_ij|``
    with ``eps`` the machine epsilon of ``x``'s dtype (e.g. every value 0.1 in
    float32) — gets scale 1 instead of a tiny scale that would blow rounding
    noise up into huge inputs; an exactly constant column likewise.

    Args:
      x: the training features ``(n, features)``.
      names: optional column names for error messages (default ``column 0``, ...).

    Returns:
      a :class:`Standardizer` of two NumPy float64 arrays ``(features,)``.

    Raises:
      ValueError: ``x`` has a NaN or infinite value; the message names the column.
    """
    import numpy as np

    values = np.asarray(x)
    dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.dtype(np.float64)
    wide = values.astype(np.float64)
    if wide.ndim != 2 or wide.shape[0] == 0:
        raise ValueError(f"`x` must have shape (rows, features) with at least one row, got {wide.shape}")
    label = (lambda j: repr(names[j])) if names is not None else (lambda j: f"column {j}")
    finite = np.isfinite(wide)
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        raise ValueError(f"{label(column)} of `x` has the value {wide[row, column]} at row {row}; "
                         "standardisation needs finite values")
    mean = wide.mean(axis=0)
    std = wide.std(axis=0)
    largest = np.abs(wide).max(axis=0)
    constant = std <= CONSTANT_COLUMN_ULPS * np.finfo(dtype).eps * largest
    scale = np.where(constant, 1.0, std)
    return Standardizer(mean, scale)


def map_in_chunks(fn, arrays: tuple, chunk_size: int) -> Array:
    """``fn`` applied to row-chunks of ``arrays`` and concatenated: bounded memory for large inputs.

    Up to ``chunk_size`` rows is one call.  Beyond, the rows are padded (by
    repeating the first row) to a whole number of chunks and mapped with one
    ``lax.map``, and the padding is cut from the result: one compiled body,
    whatever the remainder.  ``fn`` must map ``(rows, ...)`` to ``(rows, ...)``
    row by row.
    """
    num_rows = arrays[0].shape[0]
    if num_rows <= chunk_size:
        return fn(*arrays)
    num_chunks = -(-num_rows // chunk_size)
    padding = num_chunks * chunk_size - num_rows
    chunked = tuple(
        jnp.concatenate([a, jnp.broadcast_to(a[:1], (padding, *a.shape[1:]))]).reshape(
            num_chunks, chunk_size, *a.shape[1:])
        for a in arrays
    )
    mapped = lax.map(lambda chunk: fn(*chunk), chunked)
    return mapped.reshape(num_chunks * chunk_size, *mapped.shape[2:])[:num_rows]

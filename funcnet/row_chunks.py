"""A computation over a whole dataset in fixed-size chunks of rows: one padding rule, one mask, one mean loss.

``n`` rows go through a computation ``r`` rows at a time, in ``C = ⌈n / r⌉``
chunks of exactly ``r`` rows, so that one compiled program serves every
chunk.  The one padding rule: every array is filled up to ``C·r`` rows by
repeating its **last row** (a row of the data, so the padding holds no value
the data does not: it cannot overflow, be NaN or be an invalid label).  Chunk
``c`` holds rows ``c·r … c·r + r − 1``, and its mask marks the real ones,

    m[c, i] = (c·r + i < n)        (C, r) booleans

:func:`map_row_chunks` applies a per-chunk computation ``chunk_fn(m[c], *chunk)``
to every chunk, either inside the caller's trace (one ``lax.map``) or from the
host, one compiled call per chunk (``host_loop=True``: the chunk's row count
``r``, not ``n``, is what a jitted ``chunk_fn`` compiles for).
:func:`mean_loss` is the mean loss over a dataset built on it,

    mean loss = (1 / (n·k)) Σ_c Σ_i m[c, i] · ℓ(x_ci, y_ci)

(``k`` loss values per row, 1 for every loss of :mod:`funcnet.losses`), each
chunk's sum and the total in :func:`accumulation_dtype` (float32 for 16-bit
data), the chunks' sums added in chunk order from the host, or by one
reduction in a trace; the division is exact (not a product with ``1/(n·k)``
rounded).  It equals the unpadded mean up to the order of the float summation.

From the host, :func:`bucket_rows` picks ``r`` for ``n`` rows: the next power
of two, at least :data:`MIN_BUCKET` and at most a ``batch_size``, so a new row
count reuses the program of its bucket instead of compiling anew.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcnet import checks

MIN_BUCKET = 64  # the fewest rows one compiled call sees (when batch_size allows)
MEAN_LOSS_ROWS = 8192  # rows per chunk of a traced mean_loss: bounded memory for a large validation set


def bucket_rows(num_rows: int, batch_size: int) -> int:
    """Rows per compiled call for ``num_rows`` rows: ``min(batch_size, max(MIN_BUCKET, 2**ceil(log2 n)))``.

    Both are integers ``>= 1`` of any integral type; the result is a Python ``int``.
    """
    num_rows, batch_size = checks.check_count(num_rows, "num_rows"), checks.check_count(batch_size, "batch_size")
    if num_rows >= batch_size:
        return batch_size
    return min(batch_size, max(MIN_BUCKET, 1 << (num_rows - 1).bit_length()))


def accumulation_dtype(dtype):
    """The dtype sums of losses run in: float32 for 16-bit floats (float16 overflows at 65504), else ``dtype``."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4 else dtype


def chunk_masks(num_rows: int, rows: int) -> np.ndarray:
    """``m``, ``(C, rows)`` booleans with ``C = ⌈num_rows / rows⌉``: ``m[c, i] = c·rows + i < num_rows``."""
    num_chunks = -(-num_rows // rows)
    return (np.arange(num_chunks * rows) < num_rows).reshape(num_chunks, rows)


def _padded(array, total_rows: int):
    """``array`` with its last row repeated up to ``total_rows`` rows (NumPy for NumPy, else ``jax.numpy``)."""
    padding = total_rows - np.shape(array)[0]
    if not padding:
        return array
    numpy = np if isinstance(array, np.ndarray) else jnp
    return numpy.concatenate([array, numpy.broadcast_to(array[-1:], (padding, *array.shape[1:]))])


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _pad_on_device(array, dtype, rows, num_chunks):
    """``array`` in ``dtype``, padded to ``rows * num_chunks`` rows by the one rule, as ``num_chunks`` chunks."""
    padded = _padded(array.astype(dtype), rows * num_chunks)
    return tuple(padded[i * rows:(i + 1) * rows] for i in range(num_chunks))


def _host_chunks(array, dtype, rows: int) -> list:
    """``array`` cast to ``dtype`` and cut into chunks of exactly ``rows`` rows (the last padded), from the host.

    NumPy (and other host) inputs, and JAX arrays small enough to copy
    (:func:`funcnet.checks.checked_on_device` false: a copy of at most 256 KiB
    costs less than compiling a pad program), are cast and padded on the
    host; larger JAX arrays on their device by one small program per row count.
    """
    num_rows = np.shape(array)[0]
    num_chunks = -(-num_rows // rows)
    if checks.checked_on_device(array):
        if num_chunks == 1 and num_rows == rows and array.dtype == dtype:
            return [array]
        return list(_pad_on_device(array, np.dtype(dtype), rows, num_chunks))
    values = _padded(np.asarray(array, dtype), rows * num_chunks)
    return [values[i * rows:(i + 1) * rows] for i in range(num_chunks)]


def map_row_chunks(chunk_fn, arrays: tuple, rows: int, *, dtypes=None, host_loop: bool = False):
    """``chunk_fn(m[c], *chunk_c)`` for every chunk ``c`` of ``rows`` rows of ``arrays`` (see the module docstring).

    Args:
      chunk_fn: ``(mask (rows,) bool, *chunks (rows, ...)) -> outputs`` (a pytree).
      arrays: arrays with the same number ``n ≥ 1`` of rows.
      rows: rows per chunk, ``r ≥ 1``.
      dtypes: with ``host_loop``, the dtype each array is cast to (cast and padded in one step).
      host_loop: ``False`` (traceable; use it inside ``jax.jit``): one chunk is one call, more are one
        ``lax.map``; returns the outputs stacked along a new leading axis ``(C, ...)``.
        ``True`` (eager, from the host): ``chunk_fn``, normally jitted, is called once per chunk, on
        chunks cut on the host or on the device; returns the list of the ``C`` outputs.
    """
    num_rows = np.shape(arrays[0])[0]
    masks = chunk_masks(num_rows, rows)
    if host_loop:
        dtypes = [np.asarray(a).dtype if d is None else d for a, d in zip(arrays, dtypes or [None] * len(arrays))]
        chunked = [_host_chunks(array, dtype, rows) for array, dtype in zip(arrays, dtypes)]
        return [chunk_fn(mask, *chunks) for mask, *chunks in zip(masks, *chunked)]
    total = masks.size
    if masks.shape[0] == 1:
        return jax.tree.map(lambda output: output[None], chunk_fn(jnp.asarray(masks[0]), *(
            _padded(array, total) for array in arrays)))
    chunked = tuple(_padded(array, total).reshape(masks.shape[0], rows, *array.shape[1:]) for array in arrays)
    return lax.map(lambda chunk: chunk_fn(*chunk), (jnp.asarray(masks), *chunked))


def per_sample_losses(model, params, x, y):
    """``ℓ``: ``model``'s per-sample data loss at inference (no dropout, no L2 term), ``(m,)``."""
    return model.loss_fn.per_sample(model.logits(params, x), y, model.output_fn)


def masked_loss_sum(model, params, x, y, mask):
    """``Σ_i mask_i · ℓ_i`` over one chunk, in :func:`accumulation_dtype` (the padding weighs exactly 0)."""
    losses = per_sample_losses(model, params, x, y)
    losses = losses.astype(accumulation_dtype(losses.dtype))
    return jnp.sum(jnp.where(mask.reshape(-1, *(1,) * (losses.ndim - 1)), losses, 0))


@functools.partial(jax.jit, static_argnums=0)
def _loss_sum(model, params, x, y, mask):
    """:func:`masked_loss_sum`, compiled per chunk shape: one chunk's sum from the host."""
    return masked_loss_sum(model, params, x, y, mask)


@jax.jit
def _add(total, chunk_sum):
    return total + chunk_sum


@jax.jit
def _mean(total, count):
    """The sum divided by the number of real values (an exact division, not a reciprocal's product)."""
    return total / count.astype(total.dtype)


def mean_loss(model, params, x, y, rows: int = MEAN_LOSS_ROWS, *, dtypes=None, host_loop: bool = False):
    """The mean data loss at inference over all of ``(x, y)``, ``(1/(n·k)) Σ_c Σ_i m[c, i] ℓ_ci``, in chunks.

    ``x`` is ``(n, n_in)``, ``y`` as ``model.loss`` takes it.  Traceable by
    default: chunks of ``min(rows, n)`` rows (so at most ``rows`` rows in
    memory), one ``lax.map`` beyond one chunk.  With ``host_loop`` (from the
    host; ``dtypes`` the dtypes ``x`` and ``y`` are cast to) each chunk of
    ``rows`` rows is one call of a program compiled per chunk shape, the sums
    are added one by one in chunk order.  Returns a scalar in
    :func:`accumulation_dtype` (float32 for float16 and bfloat16 losses).
    """
    num_rows = np.shape(x)[0]
    if host_loop:
        sums = map_row_chunks(lambda mask, xc, yc: _loss_sum(model, params, xc, yc, mask), (x, y), rows,
                              dtypes=dtypes, host_loop=True)
        values_per_row = _values_per_row(model, params, x[:1], y[:1], dtypes)
        return _mean(functools.reduce(_add, sums), np.int32(num_rows * values_per_row))
    sums = map_row_chunks(functools.partial(_traced_loss_sum, model, params), (x, y), min(rows, num_rows))
    values_per_row = _values_per_row(model, params, x[:1], y[:1], None)
    total = sums[0] if sums.shape[0] == 1 else jnp.sum(sums)
    return total / (num_rows * values_per_row)


def _traced_loss_sum(model, params, mask, x, y):
    return masked_loss_sum(model, params, x, y, mask)


def _values_per_row(model, params, x, y, dtypes) -> int:
    """``k``: the loss values per row (the product of ``ℓ``'s shape after its first axis), known without computing."""
    if dtypes is not None:
        x, y = (jax.ShapeDtypeStruct(np.shape(a), d) for a, d in zip((x, y), dtypes))
    shape = jax.eval_shape(functools.partial(per_sample_losses, model), params, x, y).shape
    return int(np.prod(shape[1:], dtype=np.int64))


def concatenate_real_rows(outputs: list, num_rows: int):
    """The chunks' outputs of a host loop as one array of its first ``num_rows`` rows (the padding cut off).

    Cut on the host and put back on the device: slicing on the device would
    compile a program for every row count; the outputs are small (``n`` by the output width).
    """
    if len(outputs) == 1 and outputs[0].shape[0] == num_rows:
        return outputs[0]
    return jax.device_put(np.concatenate([np.asarray(output) for output in outputs])[:num_rows])

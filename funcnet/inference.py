"""Inference: predictions, class labels and the mean loss over whole datasets, in padded buckets of rows.

Every compiled call sees a fixed number of rows, so a new row count does not
compile the network anew.  ``n`` rows go through :func:`bucket_rows` rows at a
time: the next power of two, at least :data:`MIN_BUCKET` and at most
``batch_size``; beyond ``batch_size`` rows, whole chunks of ``batch_size``
rows.  The last chunk is padded by repeating its last real row, and the
padding is cut from the outputs (``predict``, ``predict_labels``) or weighted
by zero (``evaluate``: the sum of the real rows' losses, divided by the real
row count).  Row counts 1..64 share one program, 65..128 another, and so on
up to ``batch_size``; every larger input reuses the ``batch_size`` program.

A row's outputs do not depend on the other rows of its call: at inference no
layer couples rows (``layer_norm`` normalises each row, dropout is the
identity).  They can depend on the call's row count in the last bits: another
bucket is another compiled program, which XLA may vectorise differently (with
``layer_norm``, ``predict(x[:64])`` and ``predict(x)[:64]`` differ by a few
float32 ulps, 3e-7; a dense MLP measured no difference).  NumPy inputs and small JAX arrays are cast and padded on the host;
large JAX arrays on their device by a small program (compiled per row count,
but with no network in it).
The outputs are cut to the real rows on the host and put back on the device
(one small copy each way), because a device slice would compile per row count.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from funcnet import checks
from funcnet.engine import accumulation_dtype

MIN_BUCKET = 64  # the fewest rows one compiled call sees (when batch_size allows)


def bucket_rows(num_rows: int, batch_size: int) -> int:
    """Rows per compiled call for ``num_rows`` rows: ``min(batch_size, max(MIN_BUCKET, 2**ceil(log2 n)))``.

    Both are integers ``>= 1`` of any integral type; the result is a Python ``int``.
    """
    num_rows, batch_size = checks.check_count(num_rows, "num_rows"), checks.check_count(batch_size, "batch_size")
    if num_rows >= batch_size:
        return batch_size
    return min(batch_size, max(MIN_BUCKET, 1 << (num_rows - 1).bit_length()))


def compute_dtype(params, x):
    """The dtype ``x`` is cast to: the params' (their first leaf's); for a network without params
    (only activations) ``x``'s own floating dtype, or JAX's default float (float32; float64 with x64)
    for integer ``x``."""
    leaves = jax.tree.leaves(params)
    if leaves:
        return leaves[0].dtype
    dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
    return jax.dtypes.canonicalize_dtype(dtype if checks.is_floating(dtype) else float)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _pad_on_device(array, dtype, rows, num_chunks):
    """``array`` in ``dtype``, its last row repeated up to ``rows * num_chunks`` rows, as ``num_chunks`` chunks."""
    array = array.astype(dtype)
    padding = rows * num_chunks - array.shape[0]
    padded = jnp.concatenate([array, jnp.broadcast_to(array[-1:], (padding, *array.shape[1:]))])
    return tuple(padded[i * rows:(i + 1) * rows] for i in range(num_chunks))


def _row_chunks(array, dtype, rows: int) -> list:
    """``array`` cast to ``dtype`` and cut into chunks of exactly ``rows`` rows (the last padded).

    NumPy (and other host) inputs, and JAX arrays small enough to copy
    (:func:`funcnet.checks.checked_on_device` false: a copy of at most 256 KiB
    costs less than compiling a pad program), are cast and padded on the
    host; larger JAX arrays on their device by :func:`_pad_on_device`.
    """
    num_rows = np.shape(array)[0]
    num_chunks = -(-num_rows // rows)
    if checks.checked_on_device(array):
        if num_chunks == 1 and num_rows == rows and array.dtype == dtype:
            return [array]
        return list(_pad_on_device(array, np.dtype(dtype), rows, num_chunks))
    values = np.asarray(array, dtype)
    padding = rows * num_chunks - num_rows
    if padding:
        values = np.concatenate([values, np.broadcast_to(values[-1:], (padding, *values.shape[1:]))])
    return [values[i * rows:(i + 1) * rows] for i in range(num_chunks)]


def _join(num_rows: int, outputs: list):
    """The buckets' outputs as one array of their first ``num_rows`` rows.

    Cut on the host and put back on the device: slicing on the device would
    compile a program for every row count (about 30 ms each on a CPU); the
    outputs are small (``n`` by the output width).
    """
    if len(outputs) == 1 and outputs[0].shape[0] == num_rows:
        return outputs[0]
    return jax.device_put(np.concatenate([np.asarray(output) for output in outputs])[:num_rows])


def _outputs(model, params, x, batch_size, labels: bool):
    batch_size = checks.check_count(batch_size, "batch_size")
    checks.check_params(model, params)
    checks.check_inputs(model, x)
    dtype = compute_dtype(params, x)
    checks.check_data(model, x, dtype=dtype)
    num_rows = np.shape(x)[0]
    chunks = _row_chunks(x, dtype, bucket_rows(num_rows, batch_size))
    outputs = [_forward_rows(model, params, chunk, labels) for chunk in chunks]
    return _join(num_rows, outputs)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _forward_rows(model, params, x, labels):
    """``model.forward`` on one bucket of rows, or its class labels when ``labels``."""
    outputs = model.forward(params, x)
    if not labels:
        return outputs
    if model.output_activation == "softmax":
        return jnp.argmax(outputs, axis=-1)
    return (outputs > 0.5).astype(jnp.int32)


def predict(model, params, x, batch_size: int = 8192):
    """The network's outputs ``model.forward(params, x)``, in padded buckets of rows.

    Checks ``x`` (shape, NaN/inf) first.  Returns ``(n, sizes[-1])``.  The rows
    go through the network :func:`bucket_rows` ``(n, batch_size)`` at a time
    (the last bucket padded, the padding cut off), so a new row count reuses
    the program of its bucket instead of compiling anew; each row's outputs
    are those of ``model.forward`` on a bucket holding it.

    ``x`` is cast to the params' dtype (:func:`compute_dtype`; a network
    without params, e.g. ``fn.sequential(5, ["relu"])``, keeps ``x``'s
    floating dtype).  ``batch_size`` is any integral type ``>= 1``
    (``np.int64`` and 0-d integer arrays too).

    Raises:
      ValueError: naming the argument, for params that do not fit the model
        or are not floating point, ``x`` of the wrong shape or with NaN/inf,
        or a ``batch_size`` that is not an integer ``>= 1`` (a
        :class:`~funcnet.checks.ArgumentTypeError`, also a ``TypeError``, for
        ``2.0`` or ``True``); ``x`` that is not real numbers (complex, bool,
        string or object arrays) is an ``ArgumentTypeError`` too.
    """
    return _outputs(model, params, x, batch_size, labels=False)


def predict_labels(model, params, x, batch_size: int = 8192):
    """Class labels for classifiers: ``argmax`` for softmax, ``A > 0.5`` for sigmoid.

    Returns integer labels: ``(n,)`` for softmax outputs, ``(n, k)`` for
    sigmoid outputs; computed in the same buckets of rows as :func:`predict`.

    Raises:
      ValueError: for a model whose output is neither sigmoid nor softmax,
        and the errors of :func:`predict`.
    """
    if model.output_activation not in ("sigmoid", "softmax"):
        raise ValueError(
            f"predict_labels needs a classifier (output='sigmoid' or 'softmax'), but this "
            f"model's output is {model.output_activation!r}; use predict for regression"
        )
    return _outputs(model, params, x, batch_size, labels=True)


def evaluate(model, params, x, y, batch_size: int = 8192) -> float:
    """Mean loss over a whole dataset, ``(1/n) Σ_i ℓ(x_i, y_i)``, in padded buckets of rows; checks the data first.

    Padded rows get weight zero: each bucket returns the sum of its real rows'
    losses (in :func:`funcnet.engine.accumulation_dtype`, float32 for 16-bit
    data), the sums are added, and the total is divided by ``n``.  This equals
    the unpadded mean up to the order of the float summation.

    Raises:
      ValueError: the errors of :func:`predict`, and for ``y`` of the wrong
        shape, with NaN/inf, labels outside the loss's classes, or not real
        numbers (complex, bool, string, object: an ``ArgumentTypeError``).
    """
    batch_size = checks.check_count(batch_size, "batch_size")
    checks.check_params(model, params)
    checks.check_inputs(model, x)
    dtype = compute_dtype(params, x)
    checks.check_data(model, x, y, dtype)
    is_class_index = model.loss_fn.integer_labels and np.ndim(y) == 1
    num_rows = np.shape(x)[0]
    rows = bucket_rows(num_rows, batch_size)
    x_chunks = _row_chunks(x, dtype, rows)
    y_chunks = _row_chunks(y, np.int32 if is_class_index else dtype, rows)
    total = None
    for index, (x_chunk, y_chunk) in enumerate(zip(x_chunks, y_chunks)):
        real = np.int32(min(rows, num_rows - index * rows))
        chunk_sum = _loss_sum(model, params, x_chunk, y_chunk, real)
        total = chunk_sum if total is None else _add(total, chunk_sum)
    return float(_mean(total, np.int32(num_rows)))


@functools.partial(jax.jit, static_argnums=0)
def _loss_sum(model, params, x, y, real):
    """``Σ`` of the per-sample losses of the first ``real`` rows of one bucket (the rest weigh zero)."""
    per_sample = model.loss_fn.per_sample(model.logits(params, x), y, model.output_fn)
    per_sample = per_sample.astype(accumulation_dtype(per_sample.dtype))
    is_real = (jnp.arange(per_sample.shape[0]) < real).reshape(-1, *(1,) * (per_sample.ndim - 1))
    return jnp.sum(jnp.where(is_real, per_sample, 0)), np.prod(per_sample.shape[1:], dtype=int)


@jax.jit
def _add(total, chunk_sum):
    return total[0] + chunk_sum[0], total[1]


@jax.jit
def _mean(total, num_rows):
    """The sum divided by the number of real values (an exact division, not a reciprocal's product)."""
    value, per_row = total
    return value / (num_rows * per_row).astype(value.dtype)

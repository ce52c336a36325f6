"""Inference: predictions, class labels and the mean loss over whole datasets, in padded buckets of rows.

Every compiled call sees a fixed number of rows, so a new row count does not
compile the network anew: the rows go through
:func:`funcnet.row_chunks.map_row_chunks` from the host, :func:`bucket_rows`
rows at a time (the next power of two, at least :data:`MIN_BUCKET` and at
most ``batch_size``; beyond ``batch_size`` rows, whole chunks of
``batch_size`` rows), padded by the one rule of :mod:`funcnet.row_chunks`
(the last row repeated).  The padding is cut from the outputs (``predict``,
``predict_labels``) or weighted by zero (``evaluate``, which is
:func:`funcnet.row_chunks.mean_loss`).  Row counts 1..64 share one program,
65..128 another, and so on up to ``batch_size``; every larger input reuses
the ``batch_size`` program.

A row's outputs do not depend on the other rows of its call: at inference no
layer couples rows (``layer_norm`` normalises each row, dropout is the
identity).  They can depend on the call's row count in the last bits: another
bucket is another compiled program, which XLA may vectorise differently (with
``layer_norm``, ``predict(x[:64])`` and ``predict(x)[:64]`` differ by a few
float32 ulps; a dense MLP measured no difference).  NumPy inputs and small
JAX arrays are cast and padded on the host; large JAX arrays on their device
by a small program (compiled per row count, but with no network in it).  The
outputs are cut to the real rows on the host and put back on the device (one
small copy each way), because a device slice would compile per row count.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from funcnet import checks
from funcnet.row_chunks import MIN_BUCKET, bucket_rows, concatenate_real_rows, map_row_chunks, mean_loss  # noqa: F401


def compute_dtype(params, x):
    """The dtype ``x`` is cast to: the params' (their first leaf's); for a network without params
    (only activations) ``x``'s own floating dtype, or JAX's default float (float32; float64 with x64)
    for integer ``x``."""
    dtype = checks.params_dtype(params)
    if dtype is not None:
        return dtype
    dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
    return jax.dtypes.canonicalize_dtype(dtype if checks.is_floating(dtype) else float)


def _outputs(model, params, x, batch_size, labels: bool):
    batch_size = checks.check_count(batch_size, "batch_size")
    checks.check_params(model, params)
    checks.check_inputs(model, x)
    dtype = compute_dtype(params, x)
    checks.check_data(model, x, dtype=dtype)
    num_rows = np.shape(x)[0]
    outputs = map_row_chunks(lambda mask, chunk: _forward_rows(model, params, chunk, labels), (x,),
                             bucket_rows(num_rows, batch_size), dtypes=(dtype,), host_loop=True)
    return concatenate_real_rows(outputs, num_rows)


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

    :func:`funcnet.row_chunks.mean_loss` from the host, in buckets of
    :func:`bucket_rows` rows: padded rows get weight zero, each bucket returns
    the sum of its real rows' losses (in
    :func:`funcnet.row_chunks.accumulation_dtype`, float32 for 16-bit data),
    the sums are added in order, and the total is divided by ``n``.  This
    equals the unpadded mean up to the order of the float summation.

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
    rows = bucket_rows(np.shape(x)[0], batch_size)
    return float(mean_loss(model, params, x, y, rows, dtypes=(dtype, np.int32 if is_class_index else dtype),
                           host_loop=True))

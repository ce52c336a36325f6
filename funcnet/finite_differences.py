"""Finite differences, and how far a derivative is from another: one engine for every gradient check.

:mod:`funcnet.gradcheck` (a model's loss, its params) and :mod:`funcnet.derivative_checks`
(an activation, a loss, a layer) both check derivatives with the three pieces here:

* :func:`sample_coordinates`: which coordinates finite differences evaluate, all of them or a
  sample from an explicit seed, spread over every array;
* :func:`central_differences`: ``∂φ/∂θᵢ`` of a scalar objective ``φ`` of a list of arrays at those
  coordinates, ``(φ(θ + ε eᵢ) − φ(θ − ε eᵢ)) / ((θᵢ + ε) − (θᵢ − ε))``;
* :func:`max_difference`: the one definition of how far two derivatives of one array are apart,
  ``max abs`` and ``max rel``, and :func:`passes`, what passing a tolerance means.

The relative difference of ``a`` and ``b`` (two derivatives of one array, e.g. a params leaf) is

    max rel = max_i |aᵢ − bᵢ| / s,        s = max(max_j |aⱼ|, max_j |bⱼ|, tiny)

over the positions where ``b`` is not NaN.  It is symmetric (neither side is "the truth"; a part
that is ``f`` times the other shows ``|f − 1| / max(|f|, 1)``: 0.0099 for 1.01, 0.5 for 2, 1 for 0,
2 for the opposite sign), and it measures every entry against the array's scale ``s`` rather than
its own magnitude.  That is the floor: an entry smaller than ``s`` counts as if it were of size ``s``,
because the rounding of the array's computation (and the ``u·|φ|/ε`` rounding of a central
difference) is of the order of ``u·s`` for every entry; measured elementwise, entries near zero
(behind a dead ReLU, a sum that cancels) would turn that rounding into differences of order 1.
An array of float64 gradients that agree has ``max rel`` around 1e-15 (vs ``jax.grad``) or 1e-9
(vs central differences); a wrong formula shows 1e-3 or more.

A comparison **passes** with tolerances ``rtol`` and ``atol`` when ``max rel ≤ rtol`` or
``max abs ≤ atol``: the absolute floor lets an array whose true values are all (near) zero pass on
rounding noise.  NaN passes nothing.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

MIN_COORDINATES_PER_ARRAY = 4  # a sample gives every array min(its size, this) coordinates, budget allowing


def max_difference(first, second) -> tuple[float, float]:
    """``(max|a − b|, max|a − b| / s)`` for two arrays ``a``, ``b`` of the same shape (the module's definition).

    ``s = max(max|a|, max|b|, tiny)`` over the compared positions, ``tiny`` the smallest normal
    number of their dtype (at least float32's).  Only the positions where ``second`` is not NaN
    are compared, so ``second`` may be a sampled :func:`central_differences` gradient (NaN where a
    coordinate was not evaluated).  ``first`` is never masked: a NaN in ``first`` at a compared
    position makes both numbers NaN, and so does an inf on either side (unless both are the same
    inf: then ``|a − b|`` is NaN too, since ``inf − inf`` is).  When ``second`` is NaN everywhere
    (nothing could be compared) both numbers are NaN too; two empty arrays give ``(0.0, 0.0)``.

    Raises:
      ValueError: for arrays of different shapes.
    """
    first, second = np.asarray(first), np.asarray(second)
    if first.shape != second.shape:
        raise ValueError(f"`first` has shape {first.shape} but `second` has shape {second.shape}; "
                         "compare gradients of the same parameter")
    if first.size == 0:
        return 0.0, 0.0
    compared = ~np.isnan(second)
    if not compared.any():
        return float("nan"), float("nan")
    first, second = first[compared], second[compared]
    max_abs = np.max(np.abs(first - second))
    tiny = np.finfo(np.result_type(first.dtype, second.dtype, np.float32)).tiny
    # np.max propagates NaN, unlike Python's max(), whose answer would depend on argument order
    scale = np.max([np.max(np.abs(first)), np.max(np.abs(second)), tiny])
    return float(max_abs), float(max_abs / scale)


def passes(max_abs: float, max_rel: float, rtol: float, atol: float) -> bool:
    """Whether a :func:`max_difference` passes: ``max rel ≤ rtol`` or ``max abs ≤ atol`` (``False`` for NaN)."""
    return bool(max_rel <= rtol or max_abs <= atol)


def sample_coordinates(sizes: Sequence[int], max_coordinates: int, seed) -> np.ndarray:
    """Sorted flat indices, into the arrays of ``sizes`` laid end to end, of the coordinates to evaluate.

    All of them when ``Σ sizes ≤ max_coordinates``; otherwise exactly ``max_coordinates``, drawn
    without replacement from ``numpy.random.default_rng(seed)`` (``seed``: an integer ``≥ 0`` or a
    ``numpy.random.Generator``, which is drawn from) and spread over every array: each first gets
    ``min(size, 4)`` coordinates (``1`` if the budget is too small for that), and the rest of the
    budget goes to the arrays in proportion to their remaining sizes (largest remainders first).
    The same seed gives the same sample; no random number is drawn when every coordinate is evaluated.

    Raises:
      ValueError: when ``max_coordinates`` is below the number of non-empty arrays.
    """
    total = sum(sizes)
    if total <= max_coordinates:
        return np.arange(total, dtype=np.int32)
    sizes = np.asarray(sizes, dtype=np.int64)
    minimum = np.minimum(sizes, MIN_COORDINATES_PER_ARRAY)
    if minimum.sum() > max_coordinates:
        minimum = np.minimum(sizes, 1)
        arrays = int(minimum.sum())
        if arrays > max_coordinates:
            raise ValueError(
                f"`max_coordinates` is {max_coordinates} but params has {arrays} non-empty leaves and "
                f"every leaf gets at least one coordinate; pass max_coordinates >= {arrays}")
    # the rest of the budget in proportion to what each array has left, by largest remainder
    # (each share is at most its capacity, because the budget is below the total capacity)
    capacity = sizes - minimum
    budget = max_coordinates - int(minimum.sum())
    shares = budget * capacity / capacity.sum()
    counts = minimum + np.floor(shares).astype(np.int64)
    leftover = max_coordinates - int(counts.sum())
    counts[np.argsort(-(shares - np.floor(shares)), kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    chosen = [offset + rng.choice(size, count, replace=False)
              for offset, size, count in zip(offsets, sizes, counts)]
    return np.sort(np.concatenate(chosen)).astype(np.int32)


def central_differences(objective: Callable[..., jax.Array], arguments: Sequence[jax.Array], coordinates,
                        epsilon, chunk_size: int | None = None) -> jax.Array:
    """``∂φ/∂θᵢ`` by central differences, ``φ = objective(*arguments)``, at flat ``coordinates`` (traceable).

    ``θ`` is ``arguments`` (a list of arrays) flattened and laid end to end (``ravel_pytree``
    order, the order of :func:`sample_coordinates`'s indices), ``eᵢ`` the ``i``-th unit vector, and

        ∂φ/∂θᵢ ≈ (φ(θ + ε eᵢ) − φ(θ − ε eᵢ)) / ((θᵢ + ε) − (θᵢ − ε))

    divided by the step actually taken in floating point, which can differ from ``2ε`` by an
    ulp of ``θᵢ``.  The error is ``ε²/6·|φ'''| + u·|φ|/ε`` (``u`` the unit roundoff; in float64 with
    ``ε = 1e-6`` about ``1e-12 + 2e-10·|φ|``), as long as no kink of ``φ`` lies within ``ε``.

    The coordinates are evaluated ``chunk_size`` at a time (a ``lax.map`` over chunks, each
    vectorised over its coordinates; ``None``: all at once), so memory is
    ``O(chunk_size · (P + activations))``, not the ``O(P²)`` of perturbing every coordinate at once.

    Args:
      objective: ``(*arguments) -> scalar``.
      arguments: the arrays ``θ``, of one floating dtype.
      coordinates: integer indices ``(c,)`` into the flattened ``θ``.
      epsilon: the step ``ε > 0`` (a number or a scalar array; cast to ``θ``'s dtype).
      chunk_size: coordinates perturbed together, or ``None``.

    Returns:
      ``(c,)``: the differences at ``coordinates``, in ``θ``'s dtype.
    """
    flat, unravel = ravel_pytree(list(arguments))
    epsilon = jnp.asarray(epsilon, flat.dtype)
    if not np.shape(coordinates)[0]:
        return jnp.zeros((0,), flat.dtype)

    def difference(index):
        # under the chunk's vmap, each of these is (chunk_size, P): one perturbed copy per coordinate
        above, below = flat[index] + epsilon, flat[index] - epsilon
        step = above - below
        return ((objective(*unravel(flat.at[index].set(above))) - objective(*unravel(flat.at[index].set(below))))
                / step).astype(flat.dtype)

    if chunk_size is None:
        return jax.vmap(difference)(coordinates)
    return jax.lax.map(difference, coordinates, batch_size=chunk_size)

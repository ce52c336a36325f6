"""Checking gradients three ways: hand-written backprop, ``jax.grad``, finite differences.

Two gradients of one leaf are compared by
:func:`funcnet.finite_differences.max_difference`, the definition every
gradient check in funcnet uses,

    max rel = max|g₁ - g₂| / max(max|g₁|, max|g₂|, tiny)

symmetric, and measured against the leaf's scale, so that entries that are
(near) zero, as behind a dead ReLU, do not turn rounding noise into huge
ratios.

Finite differences cost two loss evaluations per coordinate, so for a large
network :func:`finite_difference_grad` evaluates a random sample of
coordinates (:func:`funcnet.finite_differences.sample_coordinates`) and
leaves the rest ``NaN``; :func:`compare_grad_trees` compares only where its
second tree is not ``NaN``.
"""

from __future__ import annotations

# The namespace fn.gradcheck: what it promises (the rest of the module is implementation).
__all__ = [
    "compare_grads", "compare_grad_trees", "finite_difference_grad", "manual_and_autodiff", "format_differences", "LeafDifference",
]

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from funcnet import checks
from funcnet.finite_differences import central_differences, max_difference, sample_coordinates

DEFAULT_MAX_COORDINATES = 4096
"""Coordinates :func:`finite_difference_grad` evaluates when ``max_coordinates`` is not given."""

DEFAULT_CHUNK_SIZE = 32
"""Coordinates perturbed together in one vectorised step of :func:`finite_difference_grad`.

A chunk holds about ``3 · chunk_size · P`` numbers (``P`` parameters).
"""


class LeafDifference(NamedTuple):
    """How far two gradients of one parameter leaf are apart.

    ``layer`` is the index in the params list, ``leaf`` the key in that layer's dict.
    """

    layer: int
    leaf: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float


leaf_difference = max_difference
"""``(max abs, max rel)`` of two gradients of one leaf: :func:`funcnet.finite_differences.max_difference`."""


def finite_difference_grad(model, params, x, y, epsilon: float | None = None, *, weights=None, key=None,
                           max_coordinates: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                           sample_seed: int = 0):
    """Central differences ``(L(θ + εeᵢ) - L(θ - εeᵢ)) / 2ε`` for all or a sample of coordinates ``i``.

    Computed by :func:`funcnet.finite_differences.central_differences`, which
    divides by the step actually taken, ``(θᵢ + ε) − (θᵢ − ε)``, rather than ``2ε``.

    ``L(θ) = model.loss(θ, x, y, weights)`` (with ``key=key`` when a key is
    given, so that a dropout mask is the same on both sides of every
    difference), ``θ`` is ``params`` flattened to ``P`` numbers and ``eᵢ`` the
    ``i``-th unit vector.

    Coordinates are evaluated ``chunk_size`` at a time (a ``lax.map`` over
    chunks, each vectorised over its coordinates), so memory is
    ``O(chunk_size · (P + activations))`` rather than the ``O(P²)`` of
    perturbing every coordinate at once; no ``P × P`` matrix is ever built.

    Which coordinates: all of them when ``P <= max_coordinates``; otherwise a
    sample of exactly ``max_coordinates``, drawn without replacement from
    ``numpy.random.default_rng(sample_seed)`` (so the same seed gives the same
    sample) and spread over every leaf: each leaf first gets
    ``min(leaf size, 4)`` coordinates (``1`` if the budget is too small for
    that), and the rest of the budget goes to the leaves in proportion to their
    remaining sizes.  ``max_coordinates`` defaults to
    :data:`DEFAULT_MAX_COORDINATES` (4096): a 5-10-10-1 network (191
    parameters) is checked in full, a 5-256-256-1 one (67,585) on a sample.

    Use float64 for meaningful comparisons (the default ``ε`` is ``1e-6`` in
    float64 and ``1e-3`` in float32, where the truncation and rounding errors
    balance).  The work is one compiled call per model, argument shapes,
    number of coordinates and ``chunk_size``; a new ``ε``, ``sample_seed`` or
    batch of the same shape does not recompile.

    Args:
      model: any hashable object with ``loss(params, x, y, weights)``, e.g. an
        :class:`~funcnet.model.MLP`.
      params: the parameter pytree ``θ``.
      x, y: one batch, as for ``model.loss``.
      epsilon: the step ``ε > 0``; ``None`` picks it from the dtype.
      weights: optional per-sample weights ``(m,)``, passed to ``model.loss``.
      key: optional ``jax.random`` key, passed as ``model.loss(..., key=key)``.
      max_coordinates: at most this many coordinates are evaluated (see above).
      chunk_size: coordinates perturbed together; peak memory grows with it.
      sample_seed: the seed of the coordinate sample (an integer ``>= 0``).

    The three integer arguments take any integral type (``np.int64``, a 0-d
    integer array) but not ``bool`` or ``2.0``.

    Raises:
      ValueError: naming the argument, for a count below its minimum, an
        ``epsilon`` that is not a finite number ``> 0``, or ``x``/``y``/``weights``
        that are not real numbers (an ``ArgumentTypeError``, also a ``TypeError``).

    Returns:
      a gradient with the tree structure, shapes and dtypes of ``params``;
      coordinates that were not evaluated are ``NaN`` (none when
      ``P <= max_coordinates``).

    Usage, with the finite differences passed second so that unevaluated
    coordinates are skipped (see :func:`compare_grad_trees`)::

        numeric = fn.gradcheck.finite_difference_grad(model, params, x, y)
        rows = fn.gradcheck.compare_grad_trees(jax.grad(model.loss)(params, x, y), numeric)
    """
    leaves = jax.tree.leaves(params)
    if max_coordinates is None:
        max_coordinates = DEFAULT_MAX_COORDINATES
    max_coordinates = checks.check_count(max_coordinates, "max_coordinates")
    chunk_size = checks.check_count(chunk_size, "chunk_size")
    sample_seed = checks.check_count(sample_seed, "sample_seed", minimum=0)
    if epsilon is None:
        is_float64 = bool(leaves) and jnp.result_type(*leaves) == jnp.float64
        epsilon = 1e-6 if is_float64 else 1e-3
    epsilon = _check_epsilon(epsilon)
    x, y, weights = _batch_arrays(x, y, weights)
    sizes = [int(np.size(leaf)) for leaf in leaves]
    indices = sample_coordinates(sizes, max_coordinates, sample_seed)
    if indices.size == 0:  # no parameters at all
        return jax.tree.map(lambda leaf: jnp.full_like(leaf, jnp.nan), params)
    return _finite_difference_values(model, min(chunk_size, indices.size), params, x, y, weights, key,
                                     jnp.asarray(indices), epsilon)


def _check_epsilon(epsilon) -> float:
    """``epsilon`` as a finite Python float ``> 0``; any real number type, never ``bool`` or complex."""
    try:
        return checks.check_real(epsilon, "epsilon", low=0.0, low_open=True)
    except checks.ArgumentTypeError:
        raise
    except ValueError:
        raise ValueError(f"`epsilon` must be a finite number > 0, got {epsilon!r}") from None


def _batch_arrays(x, y, weights):
    """``(x, y, weights)`` checked to be real numbers and made arrays, before a jitted function sees them."""
    return (checks.as_real_array("x", x), checks.as_real_array("y", y),
            checks.as_real_array("weights", weights))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _finite_difference_values(model, chunk_size, params, x, y, weights, key, indices, epsilon):
    """:func:`funcnet.finite_differences.central_differences` of ``model.loss`` at ``indices``, NaN elsewhere."""
    leaves, structure = jax.tree.flatten(params)

    def loss(*leaves):
        arguments = (jax.tree.unflatten(structure, leaves), x, y, weights)
        return model.loss(*arguments) if key is None else model.loss(*arguments, key=key)

    values = central_differences(loss, leaves, indices, epsilon, chunk_size)
    flat, unravel = ravel_pytree(params)
    return unravel(jnp.full_like(flat, jnp.nan).at[indices].set(values))


def compare_grad_trees(first, second) -> list[LeafDifference]:
    """Per-layer, per-leaf differences between two gradient trees shaped like params.

    Both trees are lists (or tuples) with one dict of arrays per layer; a layer
    without parameters is an empty dict and gives no rows.  Rows come layer by
    layer, and within a layer in sorted key order (``"W"`` before ``"b"``).
    What is compared is as in :func:`leaf_difference`: positions where
    ``second`` is ``NaN`` (coordinates a sampled :func:`finite_difference_grad`
    did not evaluate) are skipped, and any ``NaN`` in ``first`` shows.  So pass
    the finite-difference gradient second.

    Raises:
      TypeError: if a tree is not a list/tuple of dicts.
      ValueError: if the trees differ in layers, keys or shapes.
    """
    for name, tree in (("first", first), ("second", second)):
        if not isinstance(tree, (list, tuple)):
            found = type(tree).__name__
        elif not all(isinstance(layer, dict) for layer in tree):
            found = f"a {type(tree).__name__} of " + ", ".join(sorted({type(layer).__name__ for layer in tree}))
        else:
            continue
        raise TypeError(f"`{name}` must be a list or tuple of dicts of arrays, one dict per layer; got {found}")
    if len(first) != len(second):
        raise ValueError(f"`first` has {len(first)} layers but `second` has {len(second)}; "
                         "compare gradients of the same params")
    rows = []
    for index, (first_layer, second_layer) in enumerate(zip(first, second)):
        if sorted(first_layer) != sorted(second_layer):
            raise ValueError(f"layer {index} of `first` has leaves {sorted(first_layer)} but `second` has "
                             f"{sorted(second_layer)}")
        for leaf in sorted(first_layer):
            shape, other_shape = np.shape(first_layer[leaf]), np.shape(second_layer[leaf])
            if shape != other_shape:
                raise ValueError(f"`first[{index}][{leaf!r}]` has shape {shape} but "
                                 f"`second[{index}][{leaf!r}]` has shape {other_shape}")
            rows.append(LeafDifference(index, leaf, tuple(shape),
                                       *leaf_difference(first_layer[leaf], second_layer[leaf])))
    return rows


def compare_grads(model, params, x, y, weights=None, *, key=None) -> list[LeafDifference]:
    """Manual backprop vs ``jax.grad`` on one batch, per layer and leaf: the gradients training applies.

    ``make_train_step``/``fit`` call exactly ``model.manual_grad`` and
    ``jax.value_and_grad(model.loss)``; these are the two compared.  For a
    model with dropout pass ``key``: both modes then use the same masks.

    Returns:
      one :class:`LeafDifference` per layer and leaf (for an MLP
      ``(layer, "W" | "b")``) with the max absolute and max relative
      difference.  In float64 expect ``max_rel`` around 1e-15; in float32
      around 1e-7.

    Example:
      >>> for row in fn.gradcheck.compare_grads(model, params, x, y):
      ...     print(row.layer, row.leaf, row.max_abs, row.max_rel)
    """
    (_, manual), (_, autodiff) = manual_and_autodiff(model, params, x, y, weights, key=key)
    return compare_grad_trees(manual, autodiff)


def manual_and_autodiff(model, params, x, y, weights=None, *, key=None):
    """``((loss, grads) by hand, (loss, grads) by jax.grad)`` in one compiled call (same ``key``).

    ``x``, ``y`` and ``weights`` must be real numbers (lists are made arrays); the shapes are
    checked as ``model.loss`` checks them.
    """
    return _manual_and_autodiff(model, params, *_batch_arrays(x, y, weights), key=key)


@functools.partial(jax.jit, static_argnums=0)
def _manual_and_autodiff(model, params, x, y, weights=None, *, key=None):
    return (model.manual_grad(params, x, y, weights, key=key),
            jax.value_and_grad(model.loss)(params, x, y, weights, key=key))


def format_differences(rows: list[LeafDifference], title: str = "") -> str:
    """A plain-text table of :class:`LeafDifference` rows."""
    leaf_width = max([4, *(len(row.leaf) for row in rows)])
    lines = [title] if title else []
    lines.append(f"{'layer':>5} {'leaf':>{leaf_width}} {'shape':>12} {'max abs diff':>14} {'max rel diff':>14}")
    for row in rows:
        lines.append(f"{row.layer:>5} {row.leaf:>{leaf_width}} {str(row.shape):>12} "
                     f"{row.max_abs:>14.3e} {row.max_rel:>14.3e}")
    return "\n".join(lines)

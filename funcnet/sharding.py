"""Data parallelism with JAX's own sharding: batches split over a mesh axis, params replicated.

With ``mesh = jax.make_mesh((n,), ("data",))``, :func:`shard_rows` places the
rows of a batch across the ``n`` devices and :func:`replicate` puts a copy of
params and optimizer state on each.  ``jax.jit`` then partitions the same
``train_step`` (or the whole compiled epoch) over the devices and inserts the
all-reduce of the gradients: no ``pmap``, no hand-written collectives.

Rules:
* ``batch_size`` must be a multiple of the device count (else ``ValueError``);
* the epoch's leftover batch (``n % batch_size`` rows) is split over the
  devices when its size is a multiple of the device count, and otherwise
  computed whole on every device: no row is dropped either way.
"""

from __future__ import annotations

# The namespace fn.sharding: what it promises (the rest of the module is implementation).
__all__ = [
    "shard_rows", "replicate", "DATA_AXIS",
]

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from funcnet.checks import ArgumentTypeError, check_count

DATA_AXIS = "data"


def auto_axes(mesh) -> Mesh:
    """The same devices and axis names with every axis in "auto" mode.

    ``jax.make_mesh`` makes "explicit" axes by default, where shardings become
    part of the array types; funcnet only asks XLA where rows should live
    (``with_sharding_constraint``) and lets it propagate the rest.
    """
    check_mesh_type(mesh)
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def check_mesh_type(mesh, or_none: bool = False) -> None:
    """``mesh`` must be a ``jax.sharding.Mesh`` (a ``TypeError`` naming it otherwise).

    ``or_none``: the caller also takes ``None`` (``fit(mesh=None)``: one device), and the message says so.
    """
    if not isinstance(mesh, Mesh):
        raise ArgumentTypeError(f"`mesh` must be a jax.sharding.Mesh with a {DATA_AXIS!r} axis (e.g. "
                                f"jax.make_mesh((jax.device_count(),), ('data',))){' or None' if or_none else ''}, "
                                f"got {type(mesh).__name__}")


def check_mesh(mesh, batch_size: int | None = None, or_none: bool = False) -> int:
    """The number of devices along the mesh's ``"data"`` axis; errors for unusable meshes.

    ``mesh`` must be a ``jax.sharding.Mesh`` (``TypeError`` otherwise; ``or_none`` as in
    :func:`check_mesh_type`) with a ``"data"`` axis; ``batch_size``, any integral type, a multiple
    of that axis's device count.
    """
    check_mesh_type(mesh, or_none)
    if DATA_AXIS not in mesh.axis_names:
        raise ValueError(f"`mesh` needs an axis named {DATA_AXIS!r} to split batches over, it has "
                         f"{list(mesh.axis_names)}; e.g. jax.make_mesh((n,), ('data',))")
    devices = mesh.shape[DATA_AXIS]
    batch_size = None if batch_size is None else check_count(batch_size, "batch_size")
    if batch_size is not None and batch_size % devices:
        raise ValueError(f"`batch_size={batch_size}` must be a multiple of the {devices} devices on the "
                         f"mesh's 'data' axis, so every device gets the same number of rows")
    return devices


def row_sharding(mesh, rank: int, row_axis: int = 0) -> NamedSharding:
    """Split axis ``row_axis`` of a rank-``rank`` array over the ``"data"`` axis (integers of any integral type)."""
    rank = check_count(rank, "rank")
    row_axis = check_count(row_axis, "row_axis", 0)
    if row_axis >= rank:
        raise ValueError(f"`row_axis` must be an axis of the rank-{rank} array, 0..{rank - 1}, got {row_axis}")
    spec = [None] * rank
    spec[row_axis] = DATA_AXIS
    return NamedSharding(auto_axes(mesh), PartitionSpec(*spec))


def _check_mesh_first(mesh, other, call: str) -> None:
    """``mesh`` must be a Mesh; when it is not and ``other`` is, the arguments came swapped: say so."""
    if not isinstance(mesh, Mesh) and isinstance(other, Mesh):
        raise ArgumentTypeError(f"`mesh` must be a jax.sharding.Mesh, got {type(mesh).__name__}, and the mesh "
                                f"was passed second: the mesh comes first, {call}")
    check_mesh_type(mesh)


def shard_rows(mesh, array, row_axis: int = 0):
    """``array`` with its rows (axis ``row_axis``) split across the mesh's ``"data"`` devices.

    ``mesh`` is a ``jax.sharding.Mesh`` with a ``"data"`` axis (:func:`check_mesh`); ``array`` has at
    least one axis; ``row_axis`` is one of its axes (any integral type).

    Raises:
      TypeError: (:class:`~funcnet.checks.ArgumentTypeError`) for a ``mesh`` that is not a Mesh, naming
        the order ``shard_rows(mesh, array)`` when the two came swapped.
      ValueError: for a mesh without a ``"data"`` axis, a 0-d ``array`` or a ``row_axis`` it does not have.
    """
    _check_mesh_first(mesh, array, "shard_rows(mesh, array)")
    check_mesh(mesh)
    if np.ndim(array) == 0:
        raise ValueError(f"`array` must have an axis of rows to split over the mesh's {DATA_AXIS!r} devices, got "
                         f"a 0-d array (a scalar); replicate(mesh, value) puts a copy on every device instead")
    return jax.device_put(array, row_sharding(mesh, np.ndim(array), row_axis))


def replicate(mesh, tree):
    """A copy of every leaf of ``tree`` on every device of ``mesh``.

    Raises:
      TypeError: (:class:`~funcnet.checks.ArgumentTypeError`) for a ``mesh`` that is not a
        ``jax.sharding.Mesh``, naming the order ``replicate(mesh, tree)`` when the two came swapped.
    """
    _check_mesh_first(mesh, tree, "replicate(mesh, tree)")
    return jax.device_put(tree, NamedSharding(auto_axes(mesh), PartitionSpec()))


def constrain_rows(mesh, array, row_axis: int = 0):
    """Inside a jitted function: ask XLA to keep ``array``'s rows split over the devices."""
    return jax.lax.with_sharding_constraint(array, row_sharding(mesh, array.ndim, row_axis))

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


def check_mesh_type(mesh) -> None:
    """``mesh`` must be a ``jax.sharding.Mesh`` (a ``TypeError`` naming it otherwise)."""
    if not isinstance(mesh, Mesh):
        raise ArgumentTypeError(f"`mesh` must be a jax.sharding.Mesh with a {DATA_AXIS!r} axis (e.g. "
                                f"jax.make_mesh((jax.device_count(),), ('data',))) or None, got "
                                f"{type(mesh).__name__}")


def check_mesh(mesh, batch_size: int | None = None) -> int:
    """The number of devices along the mesh's ``"data"`` axis; errors for unusable meshes.

    ``mesh`` must be a ``jax.sharding.Mesh`` (``TypeError`` otherwise) with a ``"data"`` axis;
    ``batch_size``, any integral type, a multiple of that axis's device count.
    """
    check_mesh_type(mesh)
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


def shard_rows(mesh, array, row_axis: int = 0):
    """``array`` with its rows (axis ``row_axis``) split across the mesh's ``"data"`` devices."""
    return jax.device_put(array, row_sharding(mesh, np.ndim(array), row_axis))


def replicate(mesh, tree):
    """A copy of every leaf of ``tree`` on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(auto_axes(mesh), PartitionSpec()))


def constrain_rows(mesh, array, row_axis: int = 0):
    """Inside a jitted function: ask XLA to keep ``array``'s rows split over the devices."""
    return jax.lax.with_sharding_constraint(array, row_sharding(mesh, array.ndim, row_axis))

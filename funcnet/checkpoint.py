"""Checkpoints: one ``.npz`` file of arrays plus a JSON header; no pickle, atomic writes.

Layout of the file (a NumPy ``.npz`` zip archive, loaded with ``allow_pickle=False``,
so loading never executes code):

* ``__header__``: UTF-8 JSON as uint8 bytes: format name and version, the
  model description (sizes, activations, loss), the number of leaves of each
  tree, the training ``config`` and ``history``, and free ``metadata``.
* ``params/<i>``: the params leaves in ``jax.tree`` order (layer 0 W, b, ...).
* ``opt_state/<i>``: the optimizer state's leaves.  The state's *structure*
  is not stored (that would need pickle): ``load(path, optimizer=opt)``
  rebuilds it from ``opt.init(params)`` and checks that every leaf fits.
* ``standardizer/mean``, ``standardizer/scale``: the data standardisation.

Writes go to a temporary file in the same folder, are flushed and fsynced,
then renamed over the target: a crash mid-save leaves the previous checkpoint
intact.  Arrays are stored bit for bit, so a loaded model predicts exactly
what the saved one did.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from funcnet.data import Standardizer
from funcnet.model import MLP, mlp

FORMAT = "funcnet-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: truncated, corrupted, wrong version or wrong model."""


class Checkpoint(NamedTuple):
    """What :func:`load` returns."""

    model: MLP
    params: list
    opt_state: Any
    history: dict
    standardizer: Standardizer | None
    config: dict
    metadata: dict


def model_description(model: MLP) -> dict:
    """The JSON-able description that :func:`model_from_description` turns back into the model."""
    return {"sizes": list(model.sizes), "hidden": model.hidden_activation,
            "output": model.output_activation, "loss": model.loss_name,
            "negative_slope": model.negative_slope}


def model_from_description(description: dict) -> MLP:
    """The :class:`MLP` a checkpoint header describes (validated by :func:`funcnet.mlp`)."""
    return mlp(**description)


def save(path, model: MLP, params, *, opt_state=None, history=None, standardizer=None,
         config=None, metadata=None) -> None:
    """Write a checkpoint atomically to ``path`` (``.npz``).

    Args:
      path: the file to write; its folder must exist.  An existing file is
        replaced only once the new one is completely written.
      model, params: the network.
      opt_state: optimizer state to resume from (any pytree of arrays).
      history: per-epoch losses (``{"train_loss": [...], ...}``).
      standardizer: the :class:`~funcnet.data.Standardizer` applied to inputs.
      config: training settings (JSON-able), e.g. what the CLI needs to resume.
      metadata: anything else JSON-able.
    """
    param_leaves = jax.tree.leaves(params)
    arrays = {f"params/{i}": np.asarray(leaf) for i, leaf in enumerate(param_leaves)}
    opt_leaves = jax.tree.leaves(opt_state) if opt_state is not None else []
    arrays.update({f"opt_state/{i}": np.asarray(leaf) for i, leaf in enumerate(opt_leaves)})
    if standardizer is not None:
        arrays["standardizer/mean"] = np.asarray(standardizer.mean)
        arrays["standardizer/scale"] = np.asarray(standardizer.scale)
    header = {
        "format": FORMAT, "version": VERSION, "model": model_description(model),
        "num_params": len(param_leaves),
        "num_opt_state": len(opt_leaves) if opt_state is not None else None,
        "history": history or {}, "config": config or {}, "metadata": metadata or {},
    }
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _read(path) -> tuple[dict, dict]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupted and cannot be read ({error})"
        ) from None
    if "__header__" not in arrays:
        raise CheckpointError(f"{str(path)!r} is not a funcnet checkpoint: it has no header")
    try:
        header = json.loads(arrays.pop("__header__").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} has a corrupted header ({error})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a funcnet checkpoint (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {header.get('version')!r}; this funcnet "
            f"reads version {VERSION}"
        )
    return header, arrays


def _leaves(arrays: dict, prefix: str, count: int, path) -> list:
    names = [f"{prefix}/{i}" for i in range(count)]
    missing = [name for name in names if name not in arrays]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} is incomplete: missing {missing[:3]}")
    return [jnp.asarray(arrays[name]) for name in names]


def load(path, *, model: MLP | None = None, optimizer=None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    Args:
      path: the ``.npz`` file.
      model: if given, the checkpoint must describe exactly this model.
      optimizer: if given, the optimizer state is rebuilt with the structure
        of ``optimizer.init(params)``; without it ``opt_state`` is ``None``.

    Raises:
      CheckpointError: truncated or corrupted file, unknown format or version,
        a different architecture than ``model``, or an optimizer state that
        does not fit ``optimizer``.  Nothing is loaded partially.
    """
    header, arrays = _read(path)
    try:
        saved_model = model_from_description(header["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} describes an invalid model ({error})") from None
    if model is not None and model != saved_model:
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds a different model: saved {model_description(saved_model)}, "
            f"expected {model_description(model)}"
        )
    template = saved_model.init(jax.random.key(0))
    leaves = _leaves(arrays, "params", header["num_params"], path)
    expected = jax.tree.leaves(template)
    if len(leaves) != len(expected) or any(a.shape != b.shape for a, b in zip(leaves, expected)):
        raise CheckpointError(
            f"checkpoint {str(path)!r} params do not match its model {header['model']['sizes']}: "
            f"shapes {[a.shape for a in leaves]}"
        )
    params = jax.tree.unflatten(jax.tree.structure(template), leaves)
    opt_state = None
    if optimizer is not None and header["num_opt_state"] is not None:
        fresh = jax.tree.leaves(optimizer.init(params))
        structure = jax.tree.structure(optimizer.init(params))
        opt_leaves = _leaves(arrays, "opt_state", header["num_opt_state"], path)
        if len(fresh) != len(opt_leaves) or any(
                np.shape(a) != np.shape(b) for a, b in zip(fresh, opt_leaves)):
            raise CheckpointError(
                f"checkpoint {str(path)!r} optimizer state ({len(opt_leaves)} arrays) does not fit the "
                f"given optimizer's state ({len(fresh)} arrays): it was saved with another optimizer"
            )
        opt_state = jax.tree.unflatten(structure, opt_leaves)
    standardizer = None
    if "standardizer/mean" in arrays:
        standardizer = Standardizer(jnp.asarray(arrays["standardizer/mean"]),
                                    jnp.asarray(arrays["standardizer/scale"]))
    return Checkpoint(saved_model, params, opt_state, header["history"], standardizer,
                      header["config"], header["metadata"])

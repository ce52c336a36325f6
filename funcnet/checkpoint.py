"""Checkpoints: one ``.npz`` file of arrays plus a JSON header; no pickle, atomic writes.

Layout of the file (a NumPy ``.npz`` zip archive, loaded with ``allow_pickle=False``,
so loading never executes code):

* ``__header__``: UTF-8 JSON as uint8 bytes: format name and version, the
  model description (input width, every layer's kind and settings, output
  activation, loss, L2), the number of leaves of each tree, the training
  ``config`` and ``history``, and free ``metadata``.
* ``params/<i>``: the params leaves in ``jax.tree`` order (layer 0 W, b, ...).

Version 1 files (funcnet 0.1, MLPs only: ``{"sizes", "hidden", "output",
"loss", "negative_slope"}``) load as the same :func:`funcnet.mlp` and predict
bit-identically.  A model with a piece of your own (an activation, loss or
layer funcnet cannot rebuild from a name) saves like any other and records
that piece's name; loading it needs the model: ``fn.load(path, model=model)``.
* ``opt_state/<i>``: the optimizer state's leaves.  The state's *structure*
  is not stored (that would need pickle): ``load(path, optimizer=opt)``
  rebuilds it from ``opt.init(params)`` and checks that every leaf fits.
* ``standardizer/mean``, ``standardizer/scale``: the data standardisation
  (float64 since version 3; float32 in older files, which load as they were).
* ``last_params/<i>``, ``last_opt_state/<i>`` (version 3, optional): with early
  stopping, ``params``/``opt_state`` are the best epoch's, and these are the
  state after the last epoch run, which a resumed run continues from.

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

from funcnet.activations import get_activation
from funcnet.data import Standardizer
from funcnet.layers import layer_from_config
from funcnet.losses import get_loss
from funcnet.model import Network, mlp, sequential

FORMAT = "funcnet-checkpoint"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: truncated, corrupted, wrong version or wrong model."""


class Checkpoint(NamedTuple):
    """What :func:`load` returns."""

    model: Network
    params: list
    opt_state: Any
    history: dict
    standardizer: Standardizer | None
    config: dict
    metadata: dict
    last_params: Any = None
    last_opt_state: Any = None


def model_description(model: Network) -> dict:
    """The JSON-able description that :func:`model_from_description` turns back into the model.

    Pieces of your own are recorded by name with ``"custom": true``.
    """
    def piece(kind, name, config, builtin):
        entry = {"kind": kind, **dict(config)} if kind else {"name": name, **dict(config)}
        return entry if builtin else {**entry, "name": name, "custom": True}

    return {"n_in": model.n_in,
            "layers": [piece(layer.name, layer.name, layer.config, layer.builtin) for layer in model.layers],
            "output": piece(None, model.output_fn.name, (), model.output_fn.builtin),
            "loss": piece(None, model.loss_fn.name, model.loss_fn.config, model.loss_fn.builtin),
            "l2": model.l2}


def custom_pieces(description: dict) -> list[str]:
    """What in a description funcnet cannot rebuild, e.g. ``["activation 'mish' (layer 0)", "loss 'logcosh'"]``."""
    if "sizes" in description:
        return []
    missing = [f"{'layer' if item['kind'] not in ('dense', 'activation') else 'activation'} "
               f"{item.get('name') if item['kind'] not in ('dense', 'activation') else item['activation']!r} "
               f"(layer {index})"
               for index, item in enumerate(description["layers"]) if item.get("custom")]
    missing += [f"{what} {description[what]['name']!r}" for what in ("output", "loss")
                if description[what].get("custom")]
    return missing


def _describe(description: dict) -> str:
    """A one-line summary of a description with pieces of your own (which cannot be rebuilt)."""
    layers = [item.get("name") or item["kind"] for item in description["layers"]]
    return (f"{description['n_in']}-{'-'.join(layers)} → {description['output']['name']}, "
            f"{description['loss']['name']}")


def model_from_description(description: dict) -> Network:
    """The :class:`~funcnet.model.Network` a checkpoint header describes (version 1 or 2)."""
    if "sizes" in description:  # version 1: an MLP by names
        return mlp(**description)
    layers = [layer_from_config(item["kind"], {k: v for k, v in item.items() if k != "kind"})
              for item in description["layers"]]
    loss = get_loss(description["loss"]["name"], **{k: v for k, v in description["loss"].items() if k != "name"})
    return sequential(description["n_in"], layers, output=get_activation(description["output"]["name"]),
                      loss=loss, l2=description["l2"])


def save(path, model: Network, params, *, opt_state=None, history=None, standardizer=None,
         config=None, metadata=None, last_params=None, last_opt_state=None) -> None:
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
      last_params, last_opt_state: with early stopping (``params`` and
        ``opt_state`` the best epoch's), the state after the last epoch run,
        to resume from; :func:`load` returns them as ``last_params`` and
        ``last_opt_state``.
    """
    param_leaves = jax.tree.leaves(params)
    arrays = {f"params/{i}": np.asarray(leaf) for i, leaf in enumerate(param_leaves)}
    opt_leaves = jax.tree.leaves(opt_state) if opt_state is not None else []
    arrays.update({f"opt_state/{i}": np.asarray(leaf) for i, leaf in enumerate(opt_leaves)})
    last_param_leaves = jax.tree.leaves(last_params) if last_params is not None else []
    arrays.update({f"last_params/{i}": np.asarray(leaf) for i, leaf in enumerate(last_param_leaves)})
    last_opt_leaves = jax.tree.leaves(last_opt_state) if last_opt_state is not None else []
    arrays.update({f"last_opt_state/{i}": np.asarray(leaf) for i, leaf in enumerate(last_opt_leaves)})
    if standardizer is not None:
        arrays["standardizer/mean"] = np.asarray(standardizer.mean)
        arrays["standardizer/scale"] = np.asarray(standardizer.scale)
    header = {
        "format": FORMAT, "version": VERSION, "model": model_description(model),
        "num_params": len(param_leaves),
        "num_opt_state": len(opt_leaves) if opt_state is not None else None,
        "num_last_params": len(last_param_leaves) if last_params is not None else None,
        "num_last_opt_state": len(last_opt_leaves) if last_opt_state is not None else None,
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
    if header.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {header.get('version')!r}; this funcnet "
            f"reads versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    return header, arrays


def _leaves(arrays: dict, prefix: str, count: int, path) -> list:
    names = [f"{prefix}/{i}" for i in range(count)]
    missing = [name for name in names if name not in arrays]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} is incomplete: missing {missing[:3]}")
    return [jnp.asarray(arrays[name]) for name in names]


def load(path, *, model: Network | None = None, optimizer=None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    Args:
      path: the ``.npz`` file.
      model: if given, the checkpoint must describe exactly this model, and
        it is the model returned.  Needed for a model with pieces of your own.
      optimizer: if given, the optimizer state is rebuilt with the structure
        of ``optimizer.init(params)``; without it ``opt_state`` is ``None``.

    Raises:
      CheckpointError: truncated or corrupted file, unknown format or version,
        a different architecture than ``model``, a model with pieces of your
        own and no ``model`` given, or an optimizer state that does not fit
        ``optimizer``.  Nothing is loaded partially.
    """
    header, arrays = _read(path)
    description = header.get("model")
    try:
        missing = custom_pieces(description)
    except (KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} describes an invalid model ({error!r})") from None
    if model is not None:
        saved_model = model
        saved = model_from_description(description) if not missing else None
        if model_description(model) != (model_description(saved) if saved is not None else description):
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds a different model: saved "
                f"{saved.describe() if saved is not None else _describe(description)}, expected {model.describe()}"
            )
    elif missing:
        raise CheckpointError(
            f"checkpoint {str(path)!r} uses pieces of your own that funcnet cannot rebuild from their "
            f"names: {', '.join(missing)}; pass the model you saved it with: fn.load(path, model=model)")
    else:
        try:
            saved_model = model_from_description(description)
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"checkpoint {str(path)!r} describes an invalid model ({error})") from None
    template = jax.eval_shape(saved_model.init, jax.random.key(0))
    leaves = _leaves(arrays, "params", header["num_params"], path)
    expected = jax.tree.leaves(template)
    if len(leaves) != len(expected) or any(a.shape != b.shape for a, b in zip(leaves, expected)):
        raise CheckpointError(
            f"checkpoint {str(path)!r} params do not match its model {saved_model.describe()}: "
            f"shapes {[a.shape for a in leaves]}"
        )
    params = jax.tree.unflatten(jax.tree.structure(template), leaves)
    opt_state = _opt_state(arrays, "opt_state", header["num_opt_state"], optimizer, params, path)
    last_params = None
    if header.get("num_last_params") is not None:
        last_leaves = _leaves(arrays, "last_params", header["num_last_params"], path)
        if len(last_leaves) != len(expected) or any(a.shape != b.shape for a, b in zip(last_leaves, expected)):
            raise CheckpointError(f"checkpoint {str(path)!r} last_params do not match its model "
                                  f"{saved_model.describe()}: shapes {[a.shape for a in last_leaves]}")
        last_params = jax.tree.unflatten(jax.tree.structure(template), last_leaves)
    last_opt_state = _opt_state(arrays, "last_opt_state", header.get("num_last_opt_state"), optimizer,
                                params, path)
    standardizer = None
    if "standardizer/mean" in arrays:  # NumPy, as stored: float64 statistics stay float64
        standardizer = Standardizer(np.asarray(arrays["standardizer/mean"]),
                                    np.asarray(arrays["standardizer/scale"]))
    return Checkpoint(saved_model, params, opt_state, header["history"], standardizer,
                      header["config"], header["metadata"], last_params, last_opt_state)


def _opt_state(arrays, prefix, count, optimizer, params, path):
    """The optimizer state stored under ``prefix``, rebuilt with ``optimizer.init(params)``'s structure."""
    if optimizer is None or count is None:
        return None
    fresh = jax.tree.leaves(optimizer.init(params))
    structure = jax.tree.structure(optimizer.init(params))
    opt_leaves = _leaves(arrays, prefix, count, path)
    if len(fresh) != len(opt_leaves) or any(
            np.shape(a) != np.shape(b) for a, b in zip(fresh, opt_leaves)):
        raise CheckpointError(
            f"checkpoint {str(path)!r} optimizer state ({len(opt_leaves)} arrays) does not fit the "
            f"given optimizer's state ({len(fresh)} arrays): it was saved with another optimizer"
        )
    return jax.tree.unflatten(structure, opt_leaves)

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
* ``opt_state/<i>``: the optimizer state's leaves.  The state's tree is not
  pickled; the header's ``opt_state_paths`` (version 3, since funcnet 0.2.1)
  lists each leaf's path in it (``jax.tree_util.keystr``, e.g.
  ``[0].nu[0]['W']`` for RMSProp, ``[0].trace[0]['W']`` for SGD with
  momentum).  ``load(path, optimizer=opt)`` rebuilds the state from
  ``opt.init(params)`` and checks the paths (when stored) and every leaf's
  shape, so one optimizer's state never loads as another's.
* ``standardizer/mean``, ``standardizer/scale``: the data standardisation
  (float64 since version 3; float32 in older files, which load as they were).
* ``last_params/<i>``, ``last_opt_state/<i>`` (version 3, optional): with early
  stopping, ``params``/``opt_state`` are the best epoch's, and these are the
  state after the last epoch run, which a resumed run continues from.

Writes go to a temporary file in the same folder, are flushed and fsynced,
given the mode the user's umask gives new files (``0o666 & ~umask``, 0644
typically; ``mkstemp`` alone would leave 0600), renamed over the target, and
the folder is fsynced so the rename itself survives a crash: a crash mid-save
leaves the previous checkpoint intact.  Every header field is checked on
loading; a missing or malformed one is a :class:`CheckpointError`, as is a
file that is not a checkpoint at all.  Arrays are stored bit for bit, so a loaded model predicts exactly
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


def _read_umask_racily() -> int:
    """The umask by setting and restoring it: done once, at import, before any thread of ours runs."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _read_umask_racily()


def process_umask() -> int:
    """The process's current umask, read without changing it where the OS allows (Linux ``/proc``).

    Elsewhere, the umask at import of this module (read once by setting and
    restoring it, which other threads could otherwise observe).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _UMASK_AT_IMPORT


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
    from funcnet.checks import check_param_shapes

    check_param_shapes(model, params)  # before anything is written: a wrong tree is never saved
    if last_params is not None:
        check_param_shapes(model, last_params)
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
        "opt_state_paths": leaf_paths(opt_state) if opt_state is not None else None,
        "num_last_params": len(last_param_leaves) if last_params is not None else None,
        "num_last_opt_state": len(last_opt_leaves) if last_opt_state is not None else None,
        "history": history or {}, "config": config or {}, "metadata": metadata or {},
    }
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    try:
        _write_atomically(path, arrays)
    except OSError as error:  # name the user's path, never the temporary file
        raise type(error)(error.errno, f"{error.strerror or error} (writing the checkpoint)",
                          os.fspath(path)) from None


def leaf_paths(tree) -> list[str]:
    """Each leaf's path in ``tree`` as ``jax.tree_util.keystr`` writes it, e.g. ``"[0].nu[0]['W']"``."""
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _write_atomically(path, arrays: dict) -> None:
    """``np.savez`` to a temporary file beside ``path``, fsync, umask mode, rename over ``path``, fsync the folder."""
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            if hasattr(os, "fchmod"):  # POSIX: the mode new files get under the umask (mkstemp made it 0600)
                os.fchmod(handle.fileno(), 0o666 & ~process_umask())
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


def _read(path) -> tuple[dict, dict]:
    """The header (checked field by field) and the arrays of the checkpoint at ``path``."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(4)
    except IsADirectoryError:
        raise CheckpointError(f"{str(path)!r} is a folder, not a funcnet checkpoint") from None
    if not start:
        raise CheckpointError(f"{str(path)!r} is empty: not a funcnet checkpoint")
    if start not in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):  # e.g. a CSV, a pickle, a bare .npy
        raise CheckpointError(f"{str(path)!r} is not a funcnet checkpoint (an .npz archive written "
                              f"by fn.save or `funcnet train --save`); it starts with {start!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        if "pickle" in str(error):  # not numpy's advice to unpickle: loading never runs code
            raise CheckpointError(f"{str(path)!r} is not a funcnet checkpoint: it holds pickled objects, "
                                  "which funcnet never writes and does not load") from None
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupted and cannot be read ({error})"
        ) from None
    if "__header__" not in arrays:
        raise CheckpointError(f"{str(path)!r} is not a funcnet checkpoint: it has no header")
    try:
        header = json.loads(arrays.pop("__header__").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} has a corrupted header ({error})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} has a corrupted header (a JSON "
                              f"{type(header).__name__}, not an object)")
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a funcnet checkpoint (format {header.get('format')!r})")
    if header.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {header.get('version')!r}; this funcnet "
            f"reads versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    _check_header(header, path)
    return header, arrays


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# field: (required, is it valid?, what it must be)
HEADER_FIELDS = {
    "model": (True, lambda v: isinstance(v, dict), "an object describing the model"),
    "num_params": (True, _is_count, "a count of arrays"),
    "num_opt_state": (True, lambda v: v is None or _is_count(v), "a count of arrays or null"),
    "opt_state_paths": (False, lambda v: v is None or (isinstance(v, list) and all(isinstance(p, str) for p in v)),
                        "a list of strings or null"),
    "num_last_params": (False, lambda v: v is None or _is_count(v), "a count of arrays or null"),
    "num_last_opt_state": (False, lambda v: v is None or _is_count(v), "a count of arrays or null"),
    "history": (True, lambda v: isinstance(v, dict), "an object"),
    "config": (True, lambda v: isinstance(v, dict), "an object"),
    "metadata": (True, lambda v: isinstance(v, dict), "an object"),
}


def _check_header(header: dict, path) -> None:
    """Every header field :func:`load` reads must be there (unless optional) and of the right kind."""
    for field, (required, valid, expected) in HEADER_FIELDS.items():
        if field not in header:
            if required:
                raise CheckpointError(f"checkpoint {str(path)!r} has a damaged header: field {field!r} "
                                      f"is missing")
        elif not valid(header[field]):
            raise CheckpointError(f"checkpoint {str(path)!r} has a damaged header: field {field!r} must be "
                                  f"{expected}, found {header[field]!r:.80}")
    paths, count = header.get("opt_state_paths"), header["num_opt_state"]
    if paths is not None and len(paths) != count:
        raise CheckpointError(f"checkpoint {str(path)!r} has a damaged header: {len(paths)} "
                              f"'opt_state_paths' for {count} optimizer state arrays")


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
        try:
            saved = model_from_description(description) if not missing else None
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CheckpointError(f"checkpoint {str(path)!r} describes an invalid model ({error})") from None
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
        except (KeyError, TypeError, ValueError, AttributeError) as error:
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
    paths = header.get("opt_state_paths")
    opt_state = _opt_state(arrays, "opt_state", header["num_opt_state"], optimizer, params, path, paths)
    last_params = None
    if header.get("num_last_params") is not None:
        last_leaves = _leaves(arrays, "last_params", header["num_last_params"], path)
        if len(last_leaves) != len(expected) or any(a.shape != b.shape for a, b in zip(last_leaves, expected)):
            raise CheckpointError(f"checkpoint {str(path)!r} last_params do not match its model "
                                  f"{saved_model.describe()}: shapes {[a.shape for a in last_leaves]}")
        last_params = jax.tree.unflatten(jax.tree.structure(template), last_leaves)
    last_opt_state = _opt_state(arrays, "last_opt_state", header.get("num_last_opt_state"), optimizer,
                                params, path, paths)
    standardizer = None
    if "standardizer/mean" in arrays:  # NumPy, as stored: float64 statistics stay float64
        standardizer = Standardizer(np.asarray(arrays["standardizer/mean"]),
                                    np.asarray(arrays["standardizer/scale"]))
    return Checkpoint(saved_model, params, opt_state, header["history"], standardizer,
                      header["config"], header["metadata"], last_params, last_opt_state)


def _opt_state(arrays, prefix, count, optimizer, params, path, saved_paths=None):
    """The optimizer state stored under ``prefix``, rebuilt with ``optimizer.init(params)``'s structure.

    ``saved_paths`` (the header's ``opt_state_paths``; absent before 0.2.1) must equal the
    fresh state's leaf paths: RMSProp's ``nu`` and momentum's ``trace`` have the same count
    and shapes, and only the paths tell them apart.  Older files are checked by count and shape.
    """
    if optimizer is None or count is None:
        return None
    fresh_state = optimizer.init(params)
    fresh = jax.tree.leaves(fresh_state)
    structure = jax.tree.structure(fresh_state)
    opt_leaves = _leaves(arrays, prefix, count, path)
    if saved_paths is not None and saved_paths != leaf_paths(fresh_state):
        expected = leaf_paths(fresh_state)
        first = next((i for i, (a, b) in enumerate(zip(saved_paths, expected)) if a != b),
                     min(len(saved_paths), len(expected)))
        def at(paths):
            return repr(paths[first]) if first < len(paths) else "nothing (it ends there)"
        raise CheckpointError(
            f"checkpoint {str(path)!r} optimizer state was saved with another optimizer: its leaf "
            f"{first} is {at(saved_paths)}, the given optimizer's is {at(expected)} "
            f"({len(saved_paths)} and {len(expected)} arrays); pass the optimizer it was saved with"
        )
    if len(fresh) != len(opt_leaves) or any(
            np.shape(a) != np.shape(b) for a, b in zip(fresh, opt_leaves)):
        raise CheckpointError(
            f"checkpoint {str(path)!r} optimizer state ({len(opt_leaves)} arrays) does not fit the "
            f"given optimizer's state ({len(fresh)} arrays): it was saved with another optimizer"
        )
    return jax.tree.unflatten(structure, opt_leaves)

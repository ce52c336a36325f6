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
  (float64 since version 3; float32 in older files, which load as they were),
  one value per input feature: every mean finite and every scale positive and
  finite, checked by :func:`save` (``ValueError``) and :func:`load`
  (:class:`CheckpointError`, naming the column), since a scale of 0, NaN or a
  negative one would make every prediction wrong or NaN without a word.
* ``last_params/<i>``, ``last_opt_state/<i>`` (version 3, optional): with early
  stopping, ``params``/``opt_state`` are the best epoch's, and these are the
  state after the last epoch run, which a resumed run continues from.
* ``leaf_types`` (header, optional; absent from older files): the arrays NumPy cannot
  store as they are, by name: a typed PRNG key (``noisy_sgd``'s state) is stored
  as ``jax.random.key_data`` and recorded as ``"key<threefry2x32>"`` (its
  implementation), restored with ``jax.random.wrap_key_data``; a bfloat16 (or
  other ``ml_dtypes``) array is stored as its bits (``uint16``) and recorded as
  ``"bfloat16"``.  Both round-trip bit for bit.

Params (and ``last_params``) must be real floating point (float16, bfloat16,
float32, float64): :func:`save` refuses others with a ``TypeError`` and
:func:`load` with a :class:`CheckpointError`, both naming the leaf; an integer
network would load and predict 0.0.  A loaded optimizer state's leaves must be
of the kind (floating, integer, key...) ``optimizer.init(params)`` makes.

``history``, ``config`` and ``metadata`` are stored as JSON.  :func:`save`
converts NumPy and JAX scalars and arrays (``np.float32``, the scalar
``train_step`` returns, 0-d arrays) to Python numbers and lists, tuples to
lists and paths (``os.PathLike``) to strings: :func:`load` returns those
types.  What JSON cannot hold unambiguously (a set, a non-string dict key, a
complex number, any other object) is a ``TypeError`` naming its place, e.g.
``metadata['tags']``.

Writes go to a temporary file in the same folder, are flushed and fsynced,
given the mode of the file they replace, or for a new file the mode the
user's umask gives new files (``0o666 & ~umask``, 0644 typically; ``mkstemp``
alone would leave 0600), renamed over the target, and the folder is fsynced
so the rename itself survives a crash: a crash mid-save leaves the previous
checkpoint intact.  A symbolic link (or a chain of them, or one whose target
does not exist yet) is kept: its final target is written, as ``open`` would.
A read-only file (no write bit in its mode) is never replaced: ``save``
raises ``PermissionError``, even as root.  As with any atomic save, the new
file is a new inode: the file's other hard links (if any) keep the old
contents, so :func:`save` refuses a file with other hard links (an ``OSError``
naming ``path`` and the link count) rather than leave them with the old
checkpoint; its owner is the saving user.  ``path`` is a file name (``str``,
``bytes`` or ``os.PathLike``); an open file object is a ``TypeError``.  Every header field is checked on
loading; a missing or malformed one is a :class:`CheckpointError`, as is a
file that is not a checkpoint at all.  Arrays are stored bit for bit, so a loaded model predicts exactly
what the saved one did.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import zipfile
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from funcnet.activations import get_activation
from funcnet.checks import ArgumentTypeError, check_count, check_param_shapes
from funcnet.data import Standardizer
from funcnet.layers import layer_from_config
from funcnet.losses import get_loss
from funcnet.model import Network, mlp, sequential, summary_line

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
      path: the file to write (a ``str``, ``bytes`` or ``os.PathLike`` name); its
        folder must exist.  An existing file is replaced only once the new one
        is completely written, and keeps its mode; a symbolic link is kept and
        its target written.
      model, params: the network; params real floating point (float16,
        bfloat16, float32, float64).
      opt_state: optimizer state to resume from (any pytree of numeric arrays
        and typed PRNG keys, such as ``optax.noisy_sgd``'s).
      history: per-epoch losses (``{"train_loss": [...], ...}``), a dict.
      standardizer: the :class:`~funcnet.data.Standardizer` applied to inputs:
        ``mean`` and ``scale`` of shape ``(model.n_in,)``, real floating point,
        every mean finite and every scale positive and finite.
      config: training settings (a JSON-able dict), e.g. what the CLI needs to resume.
      metadata: anything else JSON-able, a dict.  In ``history``, ``config`` and
        ``metadata``, NumPy/JAX scalars and arrays become Python numbers and
        lists, tuples lists, paths strings (what :func:`load` returns).
      last_params, last_opt_state: with early stopping (``params`` and
        ``opt_state`` the best epoch's), the state after the last epoch run,
        to resume from; :func:`load` returns them as ``last_params`` and
        ``last_opt_state``.

    Raises:
      ValueError: params that do not fit ``model``, or a standardizer that
        cannot standardise its inputs (a scale of 0, negative or not finite, a
        mean not finite, a shape other than ``(model.n_in,)``), named by column,
        e.g. ``standardizer.scale[1]`` (checked before anything is written).
      TypeError: ``path`` that is not a file name (an open file object), params
        (or ``last_params``) that are not real floating point,
        a leaf that is not a numeric array, or a ``history``/``config``/``metadata``
        value JSON cannot hold (a set, a non-string key, an object), each named
        by its place, e.g. ``params[0]['W']`` or ``metadata['tags']``.
      PermissionError: ``path`` is a read-only file (its mode has no write bit).
      OSError: ``path`` is a file with other hard links (which an atomic save
        would leave with the old checkpoint), or the file cannot be written
        (named by ``path``, never the temporary file).
    """
    path = checkpoint_path(path, "a checkpoint is written by renaming a new file over the old one, which needs "
                                 "a name: save to a file, then read its bytes")
    check_param_shapes(model, params)  # before anything is written: a wrong tree is never saved
    _check_real_floating(params, "params")
    if last_params is not None:
        check_param_shapes(model, last_params)
        _check_real_floating(last_params, "last_params")
    documents = {name: _json_document(value, name) for name, value in
                 (("history", history), ("config", config), ("metadata", metadata))}
    arrays, leaf_types = {}, {}
    counts = {prefix: _store_leaves(tree, prefix, arrays, leaf_types) if tree is not None else None
              for prefix, tree in (("params", params), ("opt_state", opt_state), ("last_params", last_params),
                                   ("last_opt_state", last_opt_state))}
    if standardizer is not None:
        arrays.update(_standardizer_arrays(standardizer, model.n_in))
    header = {
        "format": FORMAT, "version": VERSION, "model": model.description(),
        "num_params": counts["params"],
        "num_opt_state": counts["opt_state"],
        "opt_state_paths": leaf_paths(opt_state) if opt_state is not None else None,
        "num_last_params": counts["last_params"],
        "num_last_opt_state": counts["last_opt_state"],
        **documents,
    }
    if leaf_types:
        header["leaf_types"] = leaf_types
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    try:
        _write_atomically(path, arrays)
    except OSError as error:  # name the user's path, never the temporary file
        raise type(error)(error.errno, f"{error.strerror or error} (writing the checkpoint)", path) from None


def checkpoint_path(path, advice: str) -> str:
    """``path`` as a ``str``: a ``str``, ``bytes`` or ``os.PathLike`` file name (``bytes`` decoded as the OS does).

    Raises:
      TypeError: anything else (an open file, ``io.BytesIO``, a file descriptor,
        ``None``), naming ``path``; ``advice`` ends the message.
    """
    if isinstance(path, (str, bytes, os.PathLike)):
        try:
            return os.fsdecode(path)
        except TypeError:  # a PathLike whose __fspath__ returns something else
            pass
    raise ArgumentTypeError(f"`path` must be a file name (a str, bytes or os.PathLike such as pathlib.Path), "
                            f"found {type(path).__name__} {path!r:.60}; {advice}")


def _standardizer_arrays(standardizer, n_in: int) -> dict:
    """``standardizer/mean`` and ``/scale``, real floating point (bfloat16 widened exactly to float32),
    checked by :func:`standardizer_fault`."""
    stored = {}
    for field in ("mean", "scale"):
        value = getattr(standardizer, field)
        if not _is_real_floating(value):
            raise ArgumentTypeError(f"`standardizer.{field}` must be {REAL_FLOATING}, found {_dtype(value)}")
        array = np.asarray(value)
        stored[f"standardizer/{field}"] = array.astype(np.float32) if array.dtype.kind == "V" else array
    fault = standardizer_fault(stored["standardizer/mean"], stored["standardizer/scale"], n_in)
    if fault is not None:
        field, column, expected, found = fault
        if column is None:
            raise ValueError(f"`standardizer.{field}` must have {expected}, found {found}")
        raise ValueError(f"`standardizer.{field}[{column}]` must be {expected}, found {found}: dividing by such a "
                         "scale (or subtracting such a mean) makes every prediction wrong or NaN")
    return stored


def standardizer_fault(mean: np.ndarray, scale: np.ndarray, n_in: int):
    """What keeps ``(x - mean) / scale`` from standardising ``n_in`` features, or ``None`` when nothing does.

    Returns ``(field, column, expected, found)``: ``field`` is ``"mean"`` or
    ``"scale"``, ``column`` the first bad feature's index (``None`` for a shape
    other than ``(n_in,)``).  Every mean must be finite and every scale positive
    and finite: a scale of 0 gives inf or NaN, a negative one flips the feature.
    """
    for field, values in (("mean", mean), ("scale", scale)):
        if values.shape != (n_in,):
            return field, None, f"shape ({n_in},) (one value per input feature)", f"shape {values.shape}"
    wide_mean, wide_scale = mean.astype(np.float64), scale.astype(np.float64)
    for field, values, bad, expected in (
            ("mean", wide_mean, ~np.isfinite(wide_mean), "a finite number"),
            ("scale", wide_scale, ~(np.isfinite(wide_scale) & (wide_scale > 0)), "a positive finite number")):
        if bad.any():
            column = int(np.argmax(bad))
            return field, column, expected, repr(float(values[column]))
    return None


def _dtype(leaf) -> np.dtype:
    return leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype


def _is_key(leaf) -> bool:
    """Whether ``leaf`` is a typed PRNG key (``jax.random.key``), which NumPy cannot hold."""
    return hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _is_real_floating(leaf) -> bool:
    return not _is_key(leaf) and bool(jnp.issubdtype(_dtype(leaf), jnp.floating))


REAL_FLOATING = "real floating point (float16, bfloat16, float32 or float64)"


def _check_real_floating(params, name: str) -> None:
    """Every leaf of ``params`` must be real floating point: integer weights predict 0.0, complex ones are not real."""
    for where, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if not _is_real_floating(leaf):
            raise ArgumentTypeError(
                f"`{name}{jax.tree_util.keystr(where)}` must be {REAL_FLOATING}, found {_dtype(leaf)}; "
                "cast the params, e.g. jax.tree.map(lambda a: a.astype(jnp.float32), params)")


def _bit_dtypes() -> dict:
    """The ``ml_dtypes`` types (bfloat16, float8s, int4...) by name: NumPy stores them as raw bytes (``|V2``)."""
    import ml_dtypes

    found = {}
    for name in dir(ml_dtypes):
        kind = getattr(ml_dtypes, name)
        if not (isinstance(kind, type) and issubclass(kind, np.generic)):
            continue
        dtype = np.dtype(kind)
        if dtype.kind == "V":
            found[dtype.name] = dtype
    return found


BIT_DTYPES = _bit_dtypes()


def _store_leaves(tree, prefix: str, arrays: dict, leaf_types: dict) -> int:
    """Put ``tree``'s leaves into ``arrays`` as ``prefix/<i>``; the ones NumPy cannot hold go in ``leaf_types``.

    A typed PRNG key is stored as its ``key_data`` (``"key<impl>"``), a bfloat16
    array as its bits (``"bfloat16"``).  Returns the number of leaves.
    """
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    for index, (where, leaf) in enumerate(leaves):
        name = f"{prefix}/{index}"
        if _is_key(leaf):
            leaf_types[name] = f"key<{jax.random.key_impl(leaf)}>"
            leaf = jax.random.key_data(leaf)
        array = np.asarray(leaf)
        if array.dtype.kind == "V" and array.dtype.name in BIT_DTYPES:
            leaf_types[name] = array.dtype.name
            array = array.view(f"u{array.dtype.itemsize}")
        elif array.dtype.kind not in "biufc":
            raise ArgumentTypeError(
                f"`{prefix}{jax.tree_util.keystr(where)}` must be a numeric array (or a PRNG key), found "
                f"{type(leaf).__name__} of dtype {array.dtype}: a checkpoint stores numbers, never objects or text")
        arrays[name] = array
    return len(leaves)


JSON_TYPES = "strings, numbers, booleans, None, and lists and string-keyed dicts of them"


def _json_document(value, name: str) -> dict:
    """``history``, ``config`` or ``metadata`` (``None``: ``{}``) as JSON-able values; see :func:`_json_value`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ArgumentTypeError(f"`{name}` must be a dict, found {type(value).__name__} {value!r:.60}")
    return _json_value(value, name, ())


def _json_value(value, where: str, containing: tuple):
    """``value`` with NumPy/JAX scalars and arrays as Python numbers and lists, tuples as lists, paths as strings.

    Raises ``TypeError`` naming ``where`` (e.g. ``metadata['tags']``) for what
    JSON cannot hold unambiguously: a set, a non-string dict key, a complex
    number, bytes, a PRNG key, any other object; ``ValueError`` for a container
    that holds itself.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):  # np.str_ too
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (dict, list, tuple)):
        if any(value is outer for outer in containing):
            raise ValueError(f"`{where}` is a container that holds itself (a cycle), which a checkpoint's "
                             "JSON header cannot hold")
        inner = (*containing, value)
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise ArgumentTypeError(
                        f"`{where}` has the key {key!r} ({type(key).__name__}); JSON keys are strings, and "
                        "JSON would turn it into a string silently: use string keys")
            return {key: _json_value(item, f"{where}[{key!r}]", inner) for key, item in value.items()}
        return [_json_value(item, f"{where}[{index}]", inner) for index, item in enumerate(value)]
    if isinstance(value, os.PathLike) and isinstance(os.fspath(value), str):
        return os.fspath(value)
    if hasattr(value, "dtype") and hasattr(value, "shape") and not isinstance(value, jax.core.Tracer) \
            and not _is_key(value):
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            return array.tolist()
        if array.dtype.name in BIT_DTYPES and "complex" not in array.dtype.name:  # bfloat16, int4...
            # (tolist() would keep their own scalar types, which JSON cannot write)
            return array.astype(int if "int" in array.dtype.name else float).tolist()
    shown, kind = " ".join(repr(value).split()), type(value).__name__
    advice = "a sorted list" if isinstance(value, (set, frozenset)) else "one of those"
    raise ArgumentTypeError(
        f"`{where}` is {'an' if kind[0] in 'aeiou' else 'a'} {kind} ({shown:.60}), which a checkpoint's JSON "
        f"header cannot hold ({JSON_TYPES}); convert it to {advice}")


def leaf_paths(tree) -> list[str]:
    """Each leaf's path in ``tree`` as ``jax.tree_util.keystr`` writes it, e.g. ``"[0].nu[0]['W']"``."""
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _write_atomically(path, arrays: dict) -> None:
    """``np.savez`` to a temporary file beside ``path``'s target, fsync, set the mode, rename over it, fsync the folder.

    The target is ``path`` or, for a symbolic link, its final target (see
    :func:`replaced_file`); the mode is the replaced file's, or what the umask
    gives new files (``mkstemp`` makes 0600).
    """
    target, mode = replaced_file(path)
    folder = os.path.dirname(target)
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            if hasattr(os, "fchmod"):  # POSIX
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync_folder(folder)


def replaced_file(path) -> tuple[str, int]:
    """The file a save to ``path`` replaces, and the mode the new file gets.

    ``path`` itself, or the final target of a symbolic link (or a chain of
    them) at ``path``, even one that does not exist yet, as ``open`` follows
    links: the link is kept and points at the new file.  The mode is the
    replaced file's; a new file gets ``0o666 & ~umask``.

    Raises:
      PermissionError: the file is read-only (no write bit in its mode): it is
        never replaced, even by root, whom the OS would let.
      IsADirectoryError: ``path`` is (or links to) a folder.
      OSError: a loop of links (``ELOOP``), something that is not a regular
        file (a device, a FIFO), which a rename would remove, or a file with
        other hard links (``EMLINK``): a rename replaces one name only, and the
        others would keep the old contents without a word.
    """
    target = os.path.realpath(path)
    if os.path.islink(target):  # realpath stops inside a loop
        raise OSError(errno.ELOOP, "Too many levels of symbolic links (a loop)", os.fspath(path))
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        return target, 0o666 & ~process_umask()
    linked = f" (the link's target {target})" if target != os.path.abspath(path) else ""
    if stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"Is a directory{linked}", os.fspath(path))
    if not stat.S_ISREG(existing.st_mode):
        raise OSError(errno.EINVAL, f"not a regular file{linked} (a device, FIFO or socket, which saving "
                      "would replace); give a file name", os.fspath(path))
    mode = stat.S_IMODE(existing.st_mode)
    if not mode & 0o222:
        raise PermissionError(errno.EACCES, f"Permission denied: the file{linked} is read-only (mode {mode:#o}); "
                              "make it writable (chmod u+w) to replace it, or save under another name",
                              os.fspath(path))
    if existing.st_nlink > 1:
        raise OSError(errno.EMLINK, f"the file{linked} has {existing.st_nlink} hard links; saving would replace this "
                      "name only and leave the others with the old checkpoint; remove the other links or save to "
                      "another file", os.fspath(path))
    return target, mode


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
    """Whether a header value is a count, an integer ≥ 0 (:func:`funcnet.checks.check_count`)."""
    try:
        check_count(value, "count", 0)
    except ValueError:
        return False
    return True


# field: (required, is it valid?, what it must be)
HEADER_FIELDS = {
    "model": (True, lambda v: isinstance(v, dict), "an object describing the model"),
    "num_params": (True, _is_count, "a count of arrays"),
    "num_opt_state": (True, lambda v: v is None or _is_count(v), "a count of arrays or null"),
    "opt_state_paths": (False, lambda v: v is None or (isinstance(v, list) and all(isinstance(p, str) for p in v)),
                        "a list of strings or null"),
    "num_last_params": (False, lambda v: v is None or _is_count(v), "a count of arrays or null"),
    "num_last_opt_state": (False, lambda v: v is None or _is_count(v), "a count of arrays or null"),
    "leaf_types": (False, lambda v: isinstance(v, dict) and all(isinstance(t, str) for t in v.values()),
                   "an object of strings"),
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


def _leaves(arrays: dict, prefix: str, count: int, path, leaf_types: dict) -> list:
    """The ``count`` arrays ``prefix/<i>`` as JAX arrays, keys and bfloat16 restored as ``leaf_types`` records."""
    names = [f"{prefix}/{i}" for i in range(count)]
    missing = [name for name in names if name not in arrays]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} is incomplete: missing {missing[:3]}")
    return [_restore(arrays[name], leaf_types.get(name), name, path) for name in names]


def _restore(array: np.ndarray, leaf_type: str | None, name: str, path):
    """One stored array as the leaf it was: a typed PRNG key, a bfloat16 array from its bits, or as is."""
    if leaf_type is None and array.dtype.kind == "V" and array.dtype.itemsize == 2:
        leaf_type, array = "bfloat16", array.view(np.uint16)  # files before leaf_types: bfloat16 as raw |V2
    try:
        if leaf_type is None:
            return jnp.asarray(array)
        if leaf_type.startswith("key<") and leaf_type.endswith(">"):
            return jax.random.wrap_key_data(array, impl=leaf_type[4:-1])
        dtype = BIT_DTYPES.get(leaf_type)
        if dtype is not None and array.dtype == np.dtype(f"u{dtype.itemsize}"):
            return jnp.asarray(array.view(dtype))
        raise ValueError(f"stored as {array.dtype}, not the bits of a known type")
    except (TypeError, ValueError) as error:
        kind = f" as {leaf_type!r}" if leaf_type else ""
        raise CheckpointError(f"checkpoint {str(path)!r} array {name!r} cannot be read{kind} "
                              f"({str(error).splitlines()[0]})") from None


def _check_loaded_params(template, leaves: list, name: str, path) -> None:
    """Loaded params must be real floating point: integer weights would load and predict 0.0."""
    for (where, _), leaf in zip(jax.tree_util.tree_flatten_with_path(template)[0], leaves):
        if not _is_real_floating(leaf):
            raise CheckpointError(f"checkpoint {str(path)!r} {name}{jax.tree_util.keystr(where)} is {leaf.dtype}; "
                                  f"a network's params must be {REAL_FLOATING} (this file was not written by "
                                  "fn.save, or was altered)")


def _check_loaded_standardizer(standardizer, n_in: int, features, path) -> None:
    """The stored standardisation must pass :func:`standardizer_fault`; the column is named by ``features``."""
    fault = standardizer_fault(standardizer.mean, standardizer.scale, n_in)
    if fault is None:
        return
    field, column, expected, found = fault
    if column is None:
        raise CheckpointError(f"checkpoint {path!r} standardizer/{field} has {found}; expected {expected} "
                              "(this file was not written by fn.save, or was altered)")
    named = (f" ({features[column]!r})" if isinstance(features, list) and len(features) == n_in
             and isinstance(features[column], str) else "")
    raise CheckpointError(f"checkpoint {path!r} standardizer/{field} of column {column}{named} is {found}; expected "
                          f"{expected} (this file was not written by fn.save, or was altered): predictions would be "
                          "wrong or NaN")


def _kind(leaf) -> str:
    """What a leaf holds, for comparing a loaded optimizer state with a fresh one: its key type, or its kind."""
    dtype = _dtype(leaf)
    if _is_key(leaf):
        return str(dtype)
    for kind in (jnp.bool_, jnp.integer, jnp.floating, jnp.complexfloating):
        if jnp.issubdtype(dtype, kind):
            return kind.__name__
    return str(dtype)


def load(path, *, model: Network | None = None, optimizer=None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    Args:
      path: the ``.npz`` file (a ``str``, ``bytes`` or ``os.PathLike`` name).
      model: if given, the checkpoint must describe exactly this model, and
        it is the model returned.  Needed for a model with pieces of your own.
      optimizer: if given, the optimizer state is rebuilt with the structure
        of ``optimizer.init(params)``; without it ``opt_state`` is ``None``.

    Raises:
      TypeError: ``path`` is not a file name (an open file object, ``io.BytesIO``).
      CheckpointError: truncated or corrupted file, unknown format or version,
        a different architecture than ``model``, a model with pieces of your
        own and no ``model`` given, params that are not real floating point
        (named by leaf), or an optimizer state that does not fit
        ``optimizer`` (its paths, shapes, or the kind of a leaf), or a
        standardisation that cannot standardise (a mean not finite, a scale
        not positive and finite, named by column and, when ``config`` has
        ``features``, by name).  Nothing is loaded partially.
    """
    path = checkpoint_path(path, "give the name of the file to read")
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
        if model.description() != (saved.description() if saved is not None else description):
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds a different model: saved "
                f"{saved.describe() if saved is not None else summary_line(description)}, "
                f"expected {model.describe()}"
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
    types = header.get("leaf_types") or {}
    leaves = _leaves(arrays, "params", header["num_params"], path, types)
    expected = jax.tree.leaves(template)
    if len(leaves) != len(expected) or any(a.shape != b.shape for a, b in zip(leaves, expected)):
        raise CheckpointError(
            f"checkpoint {str(path)!r} params do not match its model {saved_model.describe()}: "
            f"shapes {[a.shape for a in leaves]}"
        )
    _check_loaded_params(template, leaves, "params", path)
    params = jax.tree.unflatten(jax.tree.structure(template), leaves)
    paths = header.get("opt_state_paths")
    opt_state = _opt_state(arrays, "opt_state", header["num_opt_state"], optimizer, params, path, paths, types)
    last_params = None
    if header.get("num_last_params") is not None:
        last_leaves = _leaves(arrays, "last_params", header["num_last_params"], path, types)
        if len(last_leaves) != len(expected) or any(a.shape != b.shape for a, b in zip(last_leaves, expected)):
            raise CheckpointError(f"checkpoint {str(path)!r} last_params do not match its model "
                                  f"{saved_model.describe()}: shapes {[a.shape for a in last_leaves]}")
        _check_loaded_params(template, last_leaves, "last_params", path)
        last_params = jax.tree.unflatten(jax.tree.structure(template), last_leaves)
    last_opt_state = _opt_state(arrays, "last_opt_state", header.get("num_last_opt_state"), optimizer,
                                params, path, paths, types)
    standardizer = None
    if "standardizer/mean" in arrays:  # NumPy, as stored: float64 statistics stay float64
        for name in ("standardizer/mean", "standardizer/scale"):
            if name not in arrays:
                raise CheckpointError(f"checkpoint {str(path)!r} is incomplete: missing {[name]}")
            if not np.issubdtype(arrays[name].dtype, np.floating):
                raise CheckpointError(f"checkpoint {str(path)!r} {name} is {arrays[name].dtype}; the standardisation "
                                      "must be floating point (this file was not written by fn.save, or was altered)")
        standardizer = Standardizer(np.asarray(arrays["standardizer/mean"]),
                                    np.asarray(arrays["standardizer/scale"]))
        _check_loaded_standardizer(standardizer, saved_model.n_in, header["config"].get("features"), path)
    return Checkpoint(saved_model, params, opt_state, header["history"], standardizer,
                      header["config"], header["metadata"], last_params, last_opt_state)


def _opt_state(arrays, prefix, count, optimizer, params, path, saved_paths=None, leaf_types=None):
    """The optimizer state stored under ``prefix``, rebuilt with ``optimizer.init(params)``'s structure.

    ``saved_paths`` (the header's ``opt_state_paths``; absent before 0.2.1) must equal the
    fresh state's leaf paths: RMSProp's ``nu`` and momentum's ``trace`` have the same count
    and shapes, and only the paths tell them apart.  Older files are checked by count and shape.
    Every leaf must also be of the fresh leaf's kind (floating, integer, bool, the same key type):
    an integer moment or a float step count would train wrongly without a word.
    """
    if optimizer is None or count is None:
        return None
    fresh_state = optimizer.init(params)
    fresh = jax.tree.leaves(fresh_state)
    structure = jax.tree.structure(fresh_state)
    opt_leaves = _leaves(arrays, prefix, count, path, leaf_types or {})
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
    for where, fresh_leaf, leaf in zip(leaf_paths(fresh_state), fresh, opt_leaves):
        if _kind(leaf) != _kind(fresh_leaf):
            def described(leaf):
                return str(_dtype(leaf)) if _is_key(leaf) else f"{_dtype(leaf)} ({_kind(leaf)})"
            raise CheckpointError(
                f"checkpoint {str(path)!r} {prefix}{where} is {described(leaf)}, but the given optimizer's is "
                f"{described(fresh_leaf)}: this file was not written by fn.save, or was altered")
    return jax.tree.unflatten(structure, opt_leaves)

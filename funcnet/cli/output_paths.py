"""Output files of the commands, checked before any work starts, and a fallback when a write fails anyway."""

from __future__ import annotations

import os
import stat
import tempfile

from funcnet.cli.errors import UserError


def check_output_path(flag: str, path: str, suffix: str | None = None, example: str = "out",
                      image: bool = False, checkpoint: bool = False) -> None:
    """Raise :class:`UserError` unless ``path`` can be written: its folder exists and takes a new file.

    Also rejects a path that is an existing folder (or a link to one), an
    existing file that is read-only (no write bit in its mode; even root is
    refused, as :func:`funcnet.save` refuses it), and (with ``suffix``) a
    file name with another ending.  With ``image``, the suffix must name an
    image format, by the rule the plotting functions follow
    (:func:`funcnet.plotting.image_format`: ``.png``, ``.jpg``, ``.pdf``,
    ``.svg``...), and a loop of symbolic links.  With ``checkpoint`` (the
    path :func:`funcnet.save` will write), also what ``fn.save`` refuses
    (:func:`funcnet.checkpoint.replaced_file`): a device or FIFO, and a file
    with other hard links, which its atomic rename would leave with the old
    checkpoint (the other outputs are written in place, which every link
    sees).  The folder (the target's, for a symbolic link to an existing file)
    is probed by creating and removing a temporary file in it, which is what
    the real write will do.
    """
    if image:
        suffix = None
        example += ".png"
    if os.path.isdir(path):
        raise UserError(f"{flag} {path!r} is a folder; give a file name in it, e.g. "
                        f"{os.path.join(path, example + (suffix or ''))}")
    if suffix and not path.lower().endswith(suffix):
        raise UserError(f"{flag} writes a {suffix[1:].upper()} image, so the file name must end in {suffix}; "
                        f"got {path!r}")
    if image:
        from funcnet.plotting import IMAGE_FORMATS, image_format

        try:
            image_format(path)
        except ValueError:
            raise UserError(f"{flag} writes an image in the format its file name's suffix names, so the name must "
                            f"end in one of {', '.join(IMAGE_FORMATS)}; got {path!r}") from None
    target = os.path.realpath(path)
    if os.path.islink(target):  # realpath stops inside a loop
        raise UserError(f"{flag} {path!r} is a loop of symbolic links; give a file name")
    mode = os.stat(target).st_mode if os.path.isfile(target) else None
    if mode is not None and not mode & 0o222:
        raise UserError(f"{flag} {path!r} is a read-only file (mode {stat.S_IMODE(mode):#o}); make it writable "
                        "(chmod u+w) to replace it, or give another file name")
    if checkpoint:
        from funcnet.checkpoint import replaced_file  # imports JAX: only for a command that trains

        try:
            replaced_file(path)
        except OSError as error:
            raise UserError(f"{flag} {path!r}: {error.strerror}") from None
    # a link to a file is written in its target's folder, as fn.save does (a device such as /dev/stdout
    # is opened where it is)
    folder = os.path.dirname(target if os.path.islink(path) and mode is not None else os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{flag} {path!r}: the folder {folder} does not exist; create it first")
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".funcnet-probe-", dir=folder)
    except OSError as error:
        raise UserError(f"{flag} {path!r}: cannot write in the folder {folder} ({error.strerror})") from None
    os.close(descriptor)
    os.remove(probe)


def _same_file(first: str, second: str) -> bool:
    """Do two paths name one file: the same real path, or (both existing) the same inode, as a hard link does."""
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist yet
        return False


def check_distinct_paths(outputs, inputs=(), may_overwrite=()) -> None:
    """Raise :class:`UserError` when an output would replace another output or an input of the same run.

    ``outputs`` and ``inputs`` are ``(flag, path)`` pairs (a ``None`` path is
    skipped); ``may_overwrite`` holds ``(output flag, input flag)`` pairs that
    are allowed to be one file, such as ``("--save", "--resume")``: a resumed
    run may update its own checkpoint.  Checked before any work, so that a
    finished run is never written over its own checkpoint or its data.
    """
    given = [(flag, path) for flag, path in outputs if path]
    for index, (flag, path) in enumerate(given):
        for other_flag, other in given[:index]:
            if _same_file(path, other):
                raise UserError(f"{flag} {path!r} is the same file as {other_flag} {other!r}; each output needs its "
                                "own file name (the later write would replace the earlier one)")
        for input_flag, source in inputs:
            if source and (flag, input_flag) not in may_overwrite and _same_file(path, source):
                raise UserError(f"{flag} {path!r} is the same file as the input {input_flag} {source!r}; writing it "
                                f"would destroy that input. Give {flag} another file name")


def check_matplotlib(flag: str) -> None:
    """Raise :class:`UserError` when matplotlib, which the plots need, cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError(f"{flag} needs matplotlib, which is not installed: pip install 'funcnet[plot]' "
                        f"(or leave out {flag})") from None


def fallback_paths(path: str) -> list[str]:
    """Where to put a checkpoint whose ``path`` could not be written: the working folder, then the temp folder."""
    name = f"funcnet-rescued-{os.getpid()}-{os.path.basename(path) or 'model.npz'}"
    return [os.path.abspath(name), os.path.join(tempfile.gettempdir(), name)]

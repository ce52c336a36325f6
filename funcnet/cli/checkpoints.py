"""Reading checkpoints for the commands, with their errors reported as :class:`UserError`."""

from __future__ import annotations

from funcnet.cli.errors import UserError


def load_checkpoint(path: str, context: str = "", **kwargs):
    """:func:`funcnet.load`, with its errors turned into a :class:`UserError` (exit status 2).

    Also a file that cannot be opened (no permission, a path through a file: ``data.csv/model.npz``).
    """
    from funcnet import checkpoint

    try:
        return checkpoint.load(path, **kwargs)
    except (checkpoint.CheckpointError, FileNotFoundError) as error:
        raise UserError(f"{context}{error}") from None
    except OSError as error:
        raise UserError(f"{context}cannot read the checkpoint {path!r}: {error.strerror or error}") from None

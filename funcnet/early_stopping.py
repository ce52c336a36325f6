"""Early stopping on validation loss, as an immutable value (after flax's ``EarlyStopping``).

    stopper = EarlyStopping(patience=3)
    for epoch ...:
        stopper = stopper.update(val_loss, epoch)
        if stopper.improved: best_params = params
        if stopper.should_stop: break

The state is a function of the validation losses alone, so a resumed run
rebuilds it from its history with :func:`replay`; only the best epoch's params
(and optimizer state) must be kept beside it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from funcnet.checks import check_count, check_real


class EarlyStopping(NamedTuple):
    """Tracks the best validation loss; ``should_stop`` after ``patience`` epochs without improvement.

    Attributes:
      patience: epochs without improvement to tolerate (>= 1).
      min_delta: an improvement must lower the best loss by more than this.
      best_loss: the lowest loss seen (inf before the first update).
      best_epoch: the epoch of ``best_loss`` (-1 before the first update).
      epochs_without_improvement: epochs since ``best_epoch``.
      improved: whether the last ``update`` set a new best.
    """

    patience: int
    min_delta: float = 0.0
    best_loss: float = math.inf
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    improved: bool = False

    def update(self, loss: float, epoch: int) -> "EarlyStopping":
        """A new state after an epoch whose validation loss was ``loss``."""
        if loss < self.best_loss - self.min_delta:
            return self._replace(best_loss=loss, best_epoch=epoch, epochs_without_improvement=0,
                                 improved=True)
        return self._replace(epochs_without_improvement=self.epochs_without_improvement + 1,
                             improved=False)

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` epochs have passed without improvement."""
        return self.epochs_without_improvement >= self.patience


def replay(patience: int, losses, min_delta: float = 0.0) -> EarlyStopping:
    """The state after updating a fresh ``EarlyStopping(patience, min_delta)`` with ``losses``, epoch 0 first.

    ``replay(p, history["val_loss"])`` is exactly the state an uninterrupted run
    had after those epochs: what a resumed run continues from.  ``patience`` is
    an integer ≥ 1 of any integral type; ``min_delta`` a finite real ≥ 0.
    """
    patience = check_count(patience, "patience")
    min_delta = check_real(min_delta, "min_delta", low=0.0)
    stopper = EarlyStopping(patience, min_delta)
    for epoch, loss in enumerate(losses):
        stopper = stopper.update(float(loss), epoch)
    return stopper

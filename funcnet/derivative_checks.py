"""Check a hand-written derivative against ``jax`` and finite differences: activations, losses, layers.

Manual backprop trusts three kinds of hand-written code: an activation's
``g'``, a loss's ``output_delta`` and a layer's ``backward``.  Each check here
compares one piece's hand-written part with two references in float64, at
points that cover the real line (activations) or random ones (losses, layers):

* **jax**: ``jax.vjp`` (or ``jax.jvp``/``jax.grad``) of the piece's *forward*
  function, the derivative ``grad="autodiff"`` uses;
* **finite differences**: the central difference of the forward function,
  coordinate by coordinate, which trusts nothing but the forward itself.

Everything is a vector-Jacobian product.  For a forward ``f`` with inputs
``θ`` (an activation's ``Z``, a loss's ``Z``, a layer's params and ``x``) and a
random cotangent ``v`` of ``f``'s output, the reference for input ``θ`` is
``∂φ/∂θ`` with ``φ(θ) = Σ v ⊙ f(θ)``, and coordinate ``i`` of its finite
difference is

    (φ(θ + ε eᵢ) − φ(θ − ε eᵢ)) / 2ε            ε = 1e-6 (``EPSILON``)

(divided by the step actually taken, ``(θᵢ + ε) − (θᵢ − ε)`` in floating
point).  Its error is ``ε²/6 · |φ'''| + u |φ| / ε ≈ 1e-12 + 2e-10 |φ|`` in
float64 (``u ≈ 2.2e-16``), as long as no kink of ``f`` lies within ``ε`` of a
point.  An activation is checked on a dense deterministic cover of the real
line, 0 and its kinks included (step 0.05 on ``[-20, 20]``, 50 points a
decade from ``1e-8`` to ``1e4``, finiteness only beyond, up to ``1e300``):
where a kink lies within ``ε`` the one-sided differences differ, and the
derivative must lie between them (see :func:`check_activation`); a loss's
residuals keep away from its kinks.
A part with more than ``MAX_COORDINATES`` coordinates is checked by finite
differences on a random sample of that many.

How far apart the hand-written part ``h`` and a reference ``r`` are, over
the coordinates of one part where the reference is finite, is reported as
every gradient check in funcnet reports it
(:func:`funcnet.finite_differences.max_difference`):

    max abs = max |h − r|            max rel = max |h − r| / max(max |h|, max |r|, tiny)

Symmetric and measured against the part's scale, so a hand-written part that
is ``f×`` the truth shows ``max rel = |f − 1| / max(|f|, 1)``: 0.0099 for
``1.01×``, 0.5 for twice the truth, 1 for zero, 2 for the opposite sign,
whatever the size of the entries.  A part passes a comparison when
``max rel ≤ rtol`` or ``max abs ≤ atol``
(:func:`funcnet.finite_differences.passes`); the absolute floor lets a part
whose true value is (near) zero pass on rounding
noise.  The tolerances (keyword arguments, defaults below) are tight because
everything is float64:

    hand-written vs jax:                  rtol AUTODIFF_RTOL = 1e-6,           atol AUTODIFF_ATOL = 1e-12
    hand-written vs finite differences:   rtol FINITE_DIFFERENCE_RTOL = 1e-5,  atol FINITE_DIFFERENCE_ATOL = 1e-8

Two correct float64 formulas of the same derivative agree to about 1e-14
(different association of the same operations; a factored ``tanh'``, a fused
``softmax − Y``), so 1e-6 leaves eight orders of margin, while a real mistake
(a wrong constant, a missing factor, a sign) is 1e-3 or more.  Finite
differences carry their own error of about 1e-10 relative, hence 1e-5.

The checks run under ``jax.enable_x64(True)``, so they work whether or not
the caller turned on ``jax_enable_x64``; whatever the pieces' own dtype, the
report is about float64.

Example:
  >>> import jax, jax.numpy as jnp, funcnet as fn
  >>> mish = lambda z: z * jnp.tanh(jax.nn.softplus(z))
  >>> report = fn.derivative_checks.check_activation(fn.activation("mish", mish, lambda z: jnp.tanh(z)))
  >>> report.ok, report.failures
  (False, ['derivative', 'backward'])
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from funcnet.activations import ACTIVATION_NAMES, Activation, get_activation
from funcnet.checks import check_count, check_key, check_real, error_prefix
from funcnet.finite_differences import central_differences, max_difference, passes, sample_coordinates
from funcnet.layers import Layer
from funcnet.losses import LOSS_NAMES, Loss, get_loss

AUTODIFF_RTOL = 1e-6
"""Default relative tolerance of a hand-written part against ``jax`` (float64)."""
AUTODIFF_ATOL = 1e-12
"""Absolute floor against ``jax``: a part within this of the reference passes."""
FINITE_DIFFERENCE_RTOL = 1e-5
"""Default relative tolerance of a hand-written part against central finite differences."""
FINITE_DIFFERENCE_ATOL = 1e-8
"""Absolute floor against finite differences (their rounding error is ``≈ 2e-10 |φ|``)."""
EPSILON = 1e-6
"""The central-difference step ``ε`` (float64: truncation ``ε²`` and rounding ``u/ε`` balance near here)."""
MAX_COORDINATES = 512
"""Parts larger than this are checked by finite differences on a random sample of this many coordinates."""
KINK_MARGIN = 0.05
"""A loss's random residuals keep at least this far (relative to ``δ``) from its kinks."""
UNIFORM_STEP = 0.05
""":func:`check_activation`'s default points include every multiple of this step in ``[-20, 20]`` (801 points,
0 and ±1 exactly among them), where activations bend."""
LOG_POINTS_PER_DECADE = 50
"""... and ``±10^(k/50)`` from ``1e-8`` to ``1e4`` (1202 points, 4.7 % apart): both sides of 0 closely (``|z|`` below
``ε`` straddles a kink at 0), and moderate to large magnitudes."""
COMPARED_UP_TO = 1e4
"""Beyond ``|z| = 1e4`` float64's rounding of ``g(z ± ε)`` exceeds the finite-difference tolerance for
``g(z) ≈ z``: there :func:`check_activation` checks only that the hand-written derivative is finite wherever
``g`` and ``jax``'s derivative are."""
FAR_POINTS_PER_DECADE = 20
"""The default points beyond ``COMPARED_UP_TO``: ``±10^(4 + k/20)`` up to ``1e300`` (11840 points, 12 % apart)."""


class PartDifference(NamedTuple):
    """How far one hand-written part is from the references: one row of a :class:`DerivativeReport`.

    Attributes:
      part: what was checked, e.g. ``"derivative"``, ``"output_delta (output=identity)"``,
        ``"params['W']"``, ``"x"``, ``"infer"``.
      max_abs_vs_jax, max_rel_vs_jax: ``max|h − r|`` and ``max|h − r| / max(max|h|, max|r|)``
        against ``jax`` (for ``"infer"``: ``layer.infer`` against the
        training forward with no key); ``None`` where the reference is
        nowhere finite (nothing compared).
      max_abs_vs_finite_differences, max_rel_vs_finite_differences: the same
        against central finite differences; ``None`` where not applicable.
      ok: whether the part passed both comparisons.
      note: why a part failed without numbers (a missing leaf, a wrong shape), else ``""``.
    """

    part: str
    max_abs_vs_jax: float | None
    max_rel_vs_jax: float | None
    max_abs_vs_finite_differences: float | None
    max_rel_vs_finite_differences: float | None
    ok: bool
    note: str = ""


@dataclasses.dataclass(frozen=True)
class DerivativeReport:
    """The result of :func:`check_activation`, :func:`check_loss` or :func:`check_layer`.

    ``str(report)`` is a table with one row per part; ``report.ok`` says
    whether every hand-written part passed, ``report.failures`` names those
    that did not.

    Attributes:
      subject: what was checked, e.g. ``"activation 'mish'"``.
      parts: one :class:`PartDifference` per hand-written part.
      autodiff_rtol, finite_difference_rtol: the relative tolerances used.
      epsilon: the central-difference step.
      kinks: for :func:`check_activation`, the points ``z`` within ``ε`` of a
        kink, where the one-sided differences ``(g(z) − g(z − ε))/ε`` and
        ``(g(z + ε) − g(z))/ε`` differ (relu's 0 and the default points with
        ``|z| < 1e-6``; ``str(report)`` groups them): there a
        hand-written derivative passes when it lies between them (any
        one-sided derivative or value between is a valid convention); ``()`` elsewhere.
    """

    subject: str
    parts: tuple[PartDifference, ...]
    autodiff_rtol: float = AUTODIFF_RTOL
    finite_difference_rtol: float = FINITE_DIFFERENCE_RTOL
    epsilon: float = EPSILON
    kinks: tuple = ()

    @property
    def ok(self) -> bool:
        """``True`` when every part is within tolerance of both references."""
        return all(part.ok for part in self.parts)

    @property
    def failures(self) -> list[str]:
        """The names of the parts that are not, e.g. ``["params['W']"]``; empty when :attr:`ok`."""
        return [part.part for part in self.parts if not part.ok]

    def __getitem__(self, part: str) -> PartDifference:
        """The row of one part by name: ``report["x"]``.  (``"predict"``, the old name of the part
        ``"infer"``, works for one minor release, with a ``DeprecationWarning``.)"""
        if part == "predict" and any(row.part == "infer" for row in self.parts):
            warnings.warn('the part "predict" of a layer\'s report is deprecated: use report["infer"]',
                          DeprecationWarning, stacklevel=2)
            part = "infer"
        for row in self.parts:
            if row.part == part:
                return row
        raise KeyError(f"{self.subject} has no part {part!r}; its parts are "
                       f"{', '.join(row.part for row in self.parts)}")

    def __str__(self) -> str:
        verdict = "ok" if self.ok else f"WRONG: {', '.join(self.failures)}"
        header = ("part", "max abs vs jax", "max rel vs jax", "max abs vs fin. diff.", "max rel vs fin. diff.", "")
        rows = [header] + [
            (row.part, _number(row.max_abs_vs_jax), _number(row.max_rel_vs_jax),
             _number(row.max_abs_vs_finite_differences), _number(row.max_rel_vs_finite_differences),
             ("ok" if row.ok else "WRONG") + (f" ({row.note})" if row.note else ""))
            for row in self.parts
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(5)]
        lines = [f"{self.subject}: {verdict}"]
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:5], widths[1:])]
            lines.append("  ".join(cells + [row[5]]).rstrip())
        if self.kinks:
            lines.append(f"kinks within ε of z = {_kink_groups(self.kinks, self.epsilon)}: the one-sided differences "
                         "differ there, and the derivative must lie between them")
        lines.append(f"(float64; a part passes when max rel ≤ {self.autodiff_rtol:g} vs jax and "
                     f"≤ {self.finite_difference_rtol:g} vs central differences with ε = {self.epsilon:g})")
        return "\n".join(lines)


def _number(value) -> str:
    return "—" if value is None else f"{value:.1e}"


def _kink_groups(kinks, epsilon: float) -> str:
    """``"-9.5e-07 … 9.5e-07 (201 points), 3"``: sorted points within ``2ε`` of each other printed as one range."""
    groups = [[kinks[0]]]
    for z in kinks[1:]:
        if z - groups[-1][-1] <= 2 * epsilon:
            groups[-1].append(z)
        else:
            groups.append([z])
    return ", ".join(f"{group[0]:g}" if len(group) == 1 else f"{group[0]:g} … {group[-1]:g} ({len(group)} points)"
                     for group in groups)


# ----------------------------------------------------------------------------- comparisons
def _compare(part: str, hand_written, autodiff, finite_differences, rtol: tuple[float, float],
             points=None, finite_reference=None) -> PartDifference:
    """One row: ``hand_written`` against ``jax`` and (when given) finite differences.

    Where ``jax`` is finite and the hand-written part is not, the row's note
    says how often, and with ``points`` (an array of its shape) where first,
    and the part fails.  ``finite_reference`` (default ``autodiff``) is the
    reference for that test alone: :func:`check_activation` passes ``jax``'s
    derivative at points where it compares no numbers (beyond ``COMPARED_UP_TO``).
    """
    if np.shape(hand_written) != np.shape(autodiff):
        return PartDifference(part, math.nan, math.nan, None, None, False,
                              f"shape {tuple(np.shape(hand_written))}, expected {tuple(np.shape(autodiff))}")
    abs_jax, rel_jax = _difference(hand_written, autodiff)
    note = _non_finite_note(hand_written, autodiff if finite_reference is None else finite_reference, points)
    ok = _passes(abs_jax, rel_jax, rtol[0], AUTODIFF_ATOL) and not note
    if finite_differences is None:
        return PartDifference(part, abs_jax, rel_jax, None, None, ok, note)
    abs_fd, rel_fd = _difference(hand_written, finite_differences)
    ok = ok and _passes(abs_fd, rel_fd, rtol[1], FINITE_DIFFERENCE_ATOL)
    return PartDifference(part, abs_jax, rel_jax, abs_fd, rel_fd, ok, note)


def _difference(hand_written, reference) -> tuple[float | None, float | None]:
    """:func:`funcnet.finite_differences.max_difference` over the positions where ``reference`` is finite.

    Where the reference is NaN or ±inf (the function or ``jax``'s derivative
    overflows, a coordinate not sampled, a point beyond ``COMPARED_UP_TO``)
    nothing is compared; ``(None, None)`` when that is everywhere (the row
    prints "—", and the part is judged on finiteness alone).
    """
    hand_written, reference = np.asarray(hand_written, np.float64), np.asarray(reference, np.float64)
    reference = np.where(np.isfinite(reference), reference, np.nan)
    if hand_written.size and np.isnan(reference).all():
        return None, None
    return max_difference(hand_written, reference)


def _passes(max_abs, max_rel, rtol: float, atol: float) -> bool:
    """:func:`funcnet.finite_differences.passes`; a comparison of nothing (``None``) passes."""
    return max_rel is None or passes(max_abs, max_rel, rtol, atol)


def _non_finite_note(hand_written, reference, points) -> str:
    """``"not finite at 1 of 64 points where jax is finite, first z = 0"``, or ``""``."""
    hand_written, reference = np.asarray(hand_written, np.float64), np.asarray(reference, np.float64)
    bad = np.isfinite(reference) & ~np.isfinite(hand_written)
    if not bad.any():
        return ""
    where = f", first z = {float(np.asarray(points)[bad][0]):g}" if points is not None else ""
    return f"not finite at {int(bad.sum())} of {bad.size} points where jax is finite{where}"


def _coordinates(size: int, rng: np.random.Generator) -> np.ndarray:
    """The flat coordinates of a part that finite differences evaluate: all, or a sample of ``MAX_COORDINATES``
    drawn from ``rng`` (:func:`funcnet.finite_differences.sample_coordinates`)."""
    return sample_coordinates([size], MAX_COORDINATES, rng)


def _central_differences(objective: Callable[..., jax.Array], arguments: Sequence[jax.Array],
                         coordinates: Sequence[jax.Array]) -> list[jax.Array]:
    """``∂φ/∂a`` by central differences (step ``EPSILON``) at given flat coordinates of each argument ``a``.

    :func:`funcnet.finite_differences.central_differences` over all arguments at once; returns one
    1-D array per argument, the values at its ``coordinates``.
    """
    offsets = np.cumsum([0] + [int(np.size(argument)) for argument in arguments])
    flat = jnp.concatenate([int(offset) + jnp.asarray(chosen, jnp.int32)
                            for offset, chosen in zip(offsets, coordinates)])
    values = central_differences(objective, arguments, flat, EPSILON)
    counts = np.cumsum([0] + [int(np.shape(chosen)[0]) for chosen in coordinates])
    return [values[start:stop] for start, stop in zip(counts[:-1], counts[1:])]


def _scatter(values, coordinates: np.ndarray, shape) -> np.ndarray:
    """A NumPy array of ``shape``: ``values`` at the flat ``coordinates``, NaN elsewhere."""
    result = np.full(int(np.prod(shape, dtype=np.int64)), np.nan)
    result[coordinates] = np.asarray(values)
    return result.reshape(shape)


def _tolerances(autodiff_rtol, finite_difference_rtol) -> tuple[float, float]:
    """Both relative tolerances as floats: finite and ``> 0``, of any real type (NumPy scalars included)."""
    return tuple(check_real(value, name, low=0.0, low_open=True) for name, value in
                 (("autodiff_rtol", autodiff_rtol), ("finite_difference_rtol", finite_difference_rtol)))


def _away_from_zero(rng: np.random.Generator, shape, low: float, high: float) -> np.ndarray:
    """Random numbers with ``low ≤ |value| ≤ high`` and random signs."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


def _seed(key) -> np.random.Generator:
    """A NumPy generator from a ``jax.random`` key (points drawn with NumPy cost no compilation)."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng(np.asarray(data, np.uint32).ravel().tolist())


def _default_key(key, where: str):
    if key is None:
        return jax.random.key(0)
    check_key(key, "key", where, single=True)
    return key


# ----------------------------------------------------------------------------- activations
def _as_activation(act) -> Activation:
    if isinstance(act, Activation):
        return act
    if isinstance(act, str):
        try:
            return get_activation(act)
        except ValueError:
            raise ValueError(f"check_activation: `act` is {act!r}, not an activation; expected one of "
                             f"{', '.join(ACTIVATION_NAMES)}, or your own from "
                             "fn.activation(name, function, derivative)") from None
    raise TypeError(f"check_activation: `act` must be an activation name or fn.activation(...), got "
                    f"{type(act).__name__}: {act!r}")


def check_activation(act, *, points=None, key=None, autodiff_rtol: float = AUTODIFF_RTOL,
                     finite_difference_rtol: float = FINITE_DIFFERENCE_RTOL) -> DerivativeReport:
    """Check an activation's hand-written ``g'`` and backward against ``jax`` and finite differences.

    Parts (rows of the report), at points ``Z``:

    * ``"derivative"`` (elementwise activations): ``g'(Z)`` against
      ``jax.jvp(g, (Z,), (1,))``, which is ``g'(Z)`` for an elementwise ``g``,
      and against ``(g(Z + ε) − g(Z − ε)) / 2ε``;
    * ``"backward"``: ``dZ = backward(Z, dA)`` for a random ``dA`` against
      ``jax.vjp(g, Z)`` and the central differences of ``φ(Z) = Σ dA ⊙ g(Z)``
      (for an elementwise ``g``, coordinate ``i``'s is ``dA_i (g(z_i + ε) − g(z_i − ε)) / 2ε``).
      For softmax this is the full Jacobian product ``A ⊙ (dA − Σ dA ⊙ A)``.

    Wherever ``jax``'s derivative is finite, the hand-written one must be
    finite too (a NaN at ``z = 0`` fails); where ``jax``'s is NaN or ±inf
    (``g`` overflows) nothing is compared.  Beyond ``|z| = 1e4``
    (``COMPARED_UP_TO``) no numbers are compared, since the central
    differences round away there: the hand-written parts must only be finite
    wherever ``g`` and ``jax``'s derivative are.

    Resolution: the default points are a deterministic grid, so a mistake
    confined to an interval narrower than the grid's step there can be
    missed: step 0.05 on ``[-20, 20]``, 4.7 % of ``|z|`` from ``1e-8`` to
    ``1e4``; beyond, only finiteness, every 12 % of ``|z|`` up to ``1e300``.
    Pass ``points`` to look closer.  Cost: 13840 points in one compiled
    call, a few milliseconds once compiled on a CPU (softmax's 512 finite
    differences are taken row by row); compiling is most of a first call.

    Kinks: at a point ``z`` within ``ε`` of a kink (relu at 0) the one-sided
    differences ``l = (g(z) − g(z − ε))/ε`` and ``r = (g(z + ε) − g(z))/ε``
    differ (by more than ``finite_difference_rtol`` times the largest central
    difference), and the central difference there is neither's derivative.
    At such a point both references are the interval between ``l`` and
    ``r``: a hand-written ``g'(z)`` (and ``jax``'s, whose convention may be
    another one) passes when it lies in it, so relu's ``g'(0) = 0`` and a
    ``g'(0) = 1`` both pass, ``2`` or NaN fails.  :attr:`DerivativeReport.kinks`
    lists these points.  (On smooth ``g`` the two differ by ``ε |g''|``; a
    point taken for a kink is then checked against an interval that narrow.)

    Args:
      act: a name from ``fn.activations.ACTIVATION_NAMES`` or your own :func:`funcnet.activation`.
      points: where to check: any real array (a scalar counts as one point;
        softmax works along the last axis).  Default: a sorted ``(3460, 4)``
        array covering the real line: every multiple of 0.05 in ``[-20, 20]``
        (``UNIFORM_STEP``; 0 and ±1 exactly), ``±10^(k/50)`` from ``1e-8`` to
        ``1e4`` (``LOG_POINTS_PER_DECADE``), ``±10^(4 + k/20)`` up to
        ``1e300`` (finiteness only), and ``-0.0``, ``±1e-300``.
      key: one ``jax.random`` key for ``dA`` and softmax's sample of
        coordinates for finite differences (default ``key(0)``).
      autodiff_rtol, finite_difference_rtol: the relative tolerances (see the module docstring).

    Returns:
      a :class:`DerivativeReport`; ``report.ok`` is ``False`` when a part differs.

    Raises:
      ValueError, TypeError: for an unknown ``act`` or ``points`` that are not finite real numbers.
    """
    tolerances = _tolerances(autodiff_rtol, finite_difference_rtol)
    act = _as_activation(act)
    rng = _seed(_default_key(key, "fn.derivative_checks.check_activation"))
    if points is None:
        points = _default_points()
    else:
        try:
            points = np.array(points, dtype=np.float64, ndmin=1)
        except (TypeError, ValueError):
            raise TypeError(f"check_activation: `points` must be an array of real numbers, got "
                            f"{type(points).__name__}: {points!r}") from None
        if points.size == 0 or not np.all(np.isfinite(points)):
            raise ValueError(f"check_activation: `points` must be a non-empty array of finite numbers, "
                             f"got {points!r}")
    upstream = rng.normal(size=points.shape)
    far = np.abs(points) > COMPARED_UP_TO  # finiteness only
    near = np.flatnonzero(~far)
    coordinates = near[_coordinates(near.size, rng)]
    with jax.enable_x64(True):
        arrays = jax.device_get(_activation_arrays(act, jnp.asarray(points, jnp.float64),
                                                   jnp.asarray(upstream, jnp.float64), jnp.asarray(coordinates)))
    g_finite = np.isfinite(arrays["value"])
    if "derivative" not in arrays:  # softmax: a Jacobian, no kinks
        hand_written, autodiff, numeric = arrays["backward"]
        part = _compare("backward", hand_written, _near(autodiff, far), _scatter(numeric, coordinates, points.shape),
                        tolerances, points, _finiteness_reference(autodiff, autodiff, far, g_finite))
        return DerivativeReport(f"activation {act.name!r}", (part,), *tolerances, EPSILON)
    derivative, autodiff, central = arrays["derivative"]
    left, right = (_near(values, far) for values in arrays["one_sided"])
    central = _near(central, far)
    kinks = _kinks(central, left, right, tolerances[1])
    low, high = np.minimum(left, right), np.maximum(left, right)
    reference = _at_kinks(_near(autodiff, far), derivative, kinks, low, high)
    parts = [_compare("derivative", derivative, reference, _at_kinks(central, derivative, kinks, low, high),
                      tolerances, points, _finiteness_reference(reference, autodiff, far, g_finite))]
    backward, autodiff_backward = arrays["backward"]
    low, high = np.minimum(upstream * left, upstream * right), np.maximum(upstream * left, upstream * right)
    reference = _at_kinks(_near(autodiff_backward, far), backward, kinks, low, high)
    parts.append(_compare("backward", backward, reference, _at_kinks(upstream * central, backward, kinks, low, high),
                          tolerances, points, _finiteness_reference(reference, autodiff_backward, far, g_finite)))
    kink_points = tuple(sorted({float(z) for z in points[kinks]}))
    return DerivativeReport(f"activation {act.name!r}", tuple(parts), *tolerances, EPSILON, kink_points)


def _near(values, far) -> np.ndarray:
    """``values`` with NaN at the ``far`` points (beyond ``COMPARED_UP_TO``): a NaN reference is not compared."""
    return np.where(far, np.nan, values)


def _finiteness_reference(compared, autodiff, far, g_finite) -> np.ndarray:
    """Where the hand-written part must be finite: where ``compared`` is, and at the ``far`` points where
    ``jax``'s derivative and ``g`` itself are finite."""
    return np.where(far, np.where(g_finite, autodiff, np.nan), compared)


def _default_points() -> np.ndarray:
    """``(3460, 4)`` points, sorted, covering the real line deterministically (see :func:`check_activation`)."""
    per_unit = round(1 / UNIFORM_STEP)
    uniform = np.arange(-20 * per_unit, 20 * per_unit + 1) / per_unit  # exact multiples: 0, ±1 among them
    magnitudes = 10.0 ** (np.arange(-8 * LOG_POINTS_PER_DECADE, 4 * LOG_POINTS_PER_DECADE + 1) / LOG_POINTS_PER_DECADE)
    far = 10.0 ** (4 + np.arange(1, 296 * FAR_POINTS_PER_DECADE + 1) / FAR_POINTS_PER_DECADE)
    points = np.unique(np.concatenate([uniform, magnitudes, -magnitudes, far, -far, [1e-300, -1e-300]]))
    return np.sort(np.append(points, -0.0)).reshape(-1, 4)  # -0.0 too (np.unique took it for 0.0)


def _kinks(central, left, right, rtol: float) -> np.ndarray:
    """Where the one-sided differences differ by more than the central difference's tolerance: a kink within ε."""
    finite = np.isfinite(central)
    scale = float(np.max(np.abs(central[finite]))) if finite.any() else 0.0
    with np.errstate(invalid="ignore"):
        return np.abs(right - left) > rtol * scale + FINITE_DIFFERENCE_ATOL


def _at_kinks(reference, hand_written, kinks, low, high) -> np.ndarray:
    """``reference``, but at a kink the point of ``[low, high]`` nearest to the hand-written value.

    A hand-written value in the interval then differs by 0; a NaN one stays a difference (never skipped).
    """
    nearest = np.where(np.isnan(hand_written), low, np.clip(hand_written, low, high))
    return np.where(kinks, nearest, reference)


@functools.partial(jax.jit, static_argnums=0)
def _activation_arrays(act: Activation, z, upstream, coordinates) -> dict:
    """What :func:`check_activation` compares (compiled per activation).

    Elementwise: ``{"value": g, "derivative": (g', jax, central), "one_sided": (left, right),
    "backward": (backward, jax)}``; softmax: ``{"value": g, "backward": (backward, jax, central at coordinates)}``.
    """
    outputs = act.apply(z)
    if outputs.shape != z.shape:
        raise ValueError(f"activation {act.name!r}: `function` maps points of shape {z.shape} to "
                         f"shape {outputs.shape}; an activation must keep the shape")
    autodiff_backward = jax.vjp(act.apply, z)[1](upstream)[0]
    if act.derivative is None:  # softmax, row by row: a coordinate moves only its own row of the last axis
        width = z.shape[-1]
        rows, upstream_rows = z.reshape(-1, width), upstream.reshape(-1, width)

        def row_difference(coordinate):
            row = coordinate // width
            return _central_differences(lambda values: jnp.sum(upstream_rows[row] * act.apply(values)), [rows[row]],
                                        [(coordinate % width)[None]])[0][0]

        numeric = jax.vmap(row_difference)(coordinates) if coordinates.size else jnp.zeros((0,), z.dtype)
        return {"value": outputs, "backward": (act.backward(z, upstream), autodiff_backward, numeric)}
    above, below = z + EPSILON, z - EPSILON
    value, value_above, value_below = outputs, act.apply(above), act.apply(below)
    return {"value": value, "derivative": (act.derivative(z), jax.jvp(act.apply, (z,), (jnp.ones_like(z),))[1],
                           (value_above - value_below) / (above - below)),
            "one_sided": ((value - value_below) / (z - below), (value_above - value) / (above - z)),
            "backward": (act.backward(z, upstream), autodiff_backward)}


# ----------------------------------------------------------------------------- losses
def _as_loss(loss) -> Loss:
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        try:
            return get_loss(loss)
        except ValueError:
            raise ValueError(f"check_loss: `loss` is {loss!r}, not a loss; expected one of "
                             f"{', '.join(LOSS_NAMES)}, or your own from fn.loss(name, per_sample, "
                             "output_delta)") from None
    raise TypeError(f"check_loss: `loss` must be a loss name or fn.loss(...), got {type(loss).__name__}: {loss!r}")


def _outputs_for(loss: Loss, output, n_out: int) -> list[Activation]:
    """The output activations to pair ``loss`` with (see :func:`check_loss`)."""
    if output is None:
        if loss.valid_outputs is not None:
            names = list(loss.valid_outputs)
        elif loss.builtin:
            names = [loss.default_output]
        else:
            names = ["identity", "sigmoid"] + (["softmax"] if n_out >= 2 else [])
    else:
        # an Activation is a NamedTuple, so test for it before taking a tuple as a list of outputs
        names = [output] if isinstance(output, (str, Activation)) or not isinstance(output, (list, tuple)) \
            else list(output)
        if not names:
            raise ValueError("check_loss: `output` is an empty list; give an output activation or leave it None")
    outputs = []
    for name in names:
        if not isinstance(name, (str, Activation)):
            raise TypeError(f"check_loss: `output` must be an activation name or fn.activation(...) (or a list "
                            f"of them), got {type(name).__name__}: {name!r}")
        try:
            activation = get_activation(name)
        except ValueError:
            raise ValueError(f"check_loss: `output={name!r}` is not an activation; expected one of "
                             f"{', '.join(ACTIVATION_NAMES)}, or your own from fn.activation(...)") from None
        if loss.valid_outputs is not None and activation.name not in loss.valid_outputs:
            raise ValueError(f"check_loss: `output={activation.name!r}` does not pair with loss {loss.name!r}; "
                             f"it takes output {', '.join(repr(v) for v in loss.valid_outputs)}")
        outputs.append(activation)
    return outputs


ROW_SCALES = (1.0, 1.0, 10.0, 30.0, 100.0)
""":func:`check_loss` multiplies row ``i`` of ``Z`` by ``ROW_SCALES[i % 5]`` (and :func:`check_layer` row ``i``
of ``x`` by ``(1, 10, 0.1, 100)[i % 4]``), so saturated outputs and large inputs are checked too."""


def _log_uniform(rng: np.random.Generator, shape, low: float, high: float) -> np.ndarray:
    """Random numbers with ``log |value|`` uniform in ``[log low, log high]`` and random signs."""
    return rng.choice([-1.0, 1.0], size=shape) * np.exp(rng.uniform(np.log(low), np.log(high), size=shape))


def _row_scaled(values: np.ndarray, scales) -> np.ndarray:
    return values * np.resize(np.asarray(scales, np.float64), values.shape[0])[:, None]


def _residuals(loss: Loss, rng: np.random.Generator, shape) -> np.ndarray:
    """Residuals ``A − Y`` from small to large (``|R|`` log-uniform up to 100, ``100 δ`` for huber), away from the
    loss's kinks: 0 (mae, huber) and ``±δ`` (huber), by ``KINK_MARGIN``."""
    config = dict(loss.config)
    if loss.builtin and loss.name == "huber":
        delta = float(config.get("delta", 1.0))
        inside = _away_from_zero(rng, shape, KINK_MARGIN * delta, (1 - KINK_MARGIN) * delta)
        outside = _log_uniform(rng, shape, (1 + KINK_MARGIN) * delta, 100 * delta)
        return np.where(rng.uniform(size=shape) < 0.5, inside, outside)
    return _log_uniform(rng, shape, KINK_MARGIN, 100.0)


def check_loss(loss, *, output=None, n_out: int = 3, batch: int = 5, key=None,
               autodiff_rtol: float = AUTODIFF_RTOL,
               finite_difference_rtol: float = FINITE_DIFFERENCE_RTOL) -> DerivativeReport:
    """Check a loss's hand-written output delta ``δ = ∂ℓ_i/∂Z_i`` against ``jax.grad`` and finite differences.

    For each output activation ``g`` and a random batch ``Z`` ``(batch, n_out)``
    (normal with scale 1.5, rows 3, 4 and 5 of every five scaled by 10, 30
    and 100, so saturated sigmoids and softmaxes are checked too) with
    suitable targets ``Y``, the part ``"output_delta (output=g)"`` compares

        loss.output_delta(Z, Y, g)      (batch, n_out)

    with ``∂/∂Z Σ_i loss.per_sample(Z, Y, g)_i`` by ``jax.grad`` and by
    central differences (sample ``i``'s loss depends only on row ``Z_i``, so
    the gradient of the sum is the stack of the per-sample deltas).  For your
    own loss (:func:`funcnet.loss`) that checks your ``output_delta`` chained
    through ``g``'s backward, ``δ = g'(Z) ⊙ ∂ℓ/∂A``.

    Targets: ``Y ∈ {0, 1}`` for logloss; for cross_entropy both integer
    classes ``(batch,)`` and one-hot rows (two parts, ``labels=classes`` and
    ``labels=one-hot``); otherwise ``Y = g(Z) − R`` with residuals
    ``0.05 ≤ |R| ≤ 100`` (log-uniform), and for huber ``|R|`` at least
    ``0.05 δ`` away from 0 and from ``δ`` (half inside, half out to
    ``100 δ``), so no point is near a kink of mae or huber.  Wherever
    ``jax``'s gradient is finite the hand-written one must be too.

    Args:
      loss: a name from ``fn.losses.LOSS_NAMES`` (``"huber"`` has ``δ = 1``; pass
        ``fn.losses.huber(δ)`` for another) or your own :func:`funcnet.loss`.
      output: the output activation(s) to pair the loss with: a name, an
        :class:`~funcnet.activations.Activation`, or a list of them.  Default:
        the loss's valid outputs (sigmoid for logloss, softmax for
        cross_entropy), identity for mse/mae/huber, and identity, sigmoid and
        softmax (``n_out ≥ 2``) for your own loss.
      n_out: the number of outputs ``k`` (at least 2 for cross_entropy).
      batch: the number of samples ``m``.
      key: one ``jax.random`` key for ``Z``, ``Y`` and samples (default ``key(0)``).
      autodiff_rtol, finite_difference_rtol: the relative tolerances (see the module docstring).

    Returns:
      a :class:`DerivativeReport` with one part per output activation (and label form).

    Raises:
      ValueError, TypeError: for an unknown ``loss`` or ``output``, an output
        the loss does not pair with, a non-positive ``n_out`` or ``batch``, or
        a ``per_sample`` that does not return shape ``(batch,)``.
    """
    tolerances = _tolerances(autodiff_rtol, finite_difference_rtol)
    loss = _as_loss(loss)
    with error_prefix("check_loss: "):
        n_out, batch = check_count(n_out, "n_out"), check_count(batch, "batch")
    if loss.integer_labels and n_out < 2:
        raise ValueError(f"check_loss: loss {loss.name!r} needs `n_out` ≥ 2 (one output per class), got {n_out}")
    outputs = _outputs_for(loss, output, n_out)
    rng = _seed(_default_key(key, "fn.derivative_checks.check_loss"))
    parts = []
    coordinates = _coordinates(batch * n_out, rng)
    for activation in outputs:
        z = _row_scaled(rng.normal(scale=1.5, size=(batch, n_out)), ROW_SCALES)
        if loss.builtin and loss.name == "logloss":
            targets = [("", rng.integers(0, 2, size=(batch, n_out)).astype(np.float64), False)]
        elif loss.integer_labels:
            classes = rng.integers(0, n_out, size=batch)
            targets = [(", labels=classes", classes, False), (", labels=one-hot", np.eye(n_out)[classes], False)]
        else:
            targets = [("", _residuals(loss, rng, (batch, n_out)), True)]
        for label, y, is_residual in targets:
            with jax.enable_x64(True):
                z_array = jnp.asarray(z, jnp.float64)
                y_array = jnp.asarray(y) if y.dtype.kind == "i" else jnp.asarray(y, jnp.float64)
                if is_residual:  # Y = g(Z) − R: the residual A − Y is R, away from the kinks
                    y_array = activation.apply(z_array) - y_array
                hand_written, autodiff, numeric = _loss_arrays(loss, activation, z_array, y_array,
                                                               jnp.asarray(coordinates))
            parts.append(_compare(f"output_delta (output={activation.name}{label})", hand_written, autodiff,
                                  _scatter(numeric, coordinates, z.shape), tolerances))
    config = ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value!r}"
                       for name, value in loss.config)
    return DerivativeReport(f"loss {loss.name!r}" + (f" ({config})" if config else ""), tuple(parts),
                            *tolerances, EPSILON)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _loss_arrays(loss: Loss, activation: Activation, z, y, coordinates):
    """``(hand-written δ, jax.grad, finite differences)`` for :func:`check_loss`, compiled once per pairing."""

    def total(z):
        return jnp.sum(loss.per_sample(z, y, activation))

    values = loss.per_sample(z, y, activation)
    if values.shape != z.shape[:1]:
        raise ValueError(f"loss {loss.name!r}: `per_sample` returned shape {values.shape}, expected "
                         f"(batch,) = ({z.shape[0]},): one loss per sample")
    numeric = _central_differences(total, [z], [coordinates])[0]
    return loss.output_delta(z, y, activation), jax.grad(total)(z), numeric


# ----------------------------------------------------------------------------- layers
def _float64_tree(tree):
    return jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.float64)
                        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating) else leaf, tree)


def check_layer(layer: Layer, n_in: int, *, batch: int = 4, key=None, params=None,
                autodiff_rtol: float = AUTODIFF_RTOL,
                finite_difference_rtol: float = FINITE_DIFFERENCE_RTOL) -> DerivativeReport:
    """Check a layer's hand-written ``backward`` against ``jax.vjp`` of its ``forward`` and finite differences.

    With ``x`` ``(batch, n_in)`` (standard normal, row ``i`` scaled by
    ``(1, 10, 0.1, 100)[i % 4]``, so large and small inputs are checked)
    and ``dy`` ``(batch, n_out)`` random,
    ``n_out = layer.output_size(n_in)``, and ``k`` the forward key (the same
    key on every side; ``None`` for a layer that needs none):

        y, cache    = layer.forward(params, x, k)
        dparams, dx = layer.backward(params, cache, dy)                  hand-written
        reference   = jax.vjp(lambda p, x: layer.forward(p, x, k)[0], params, x)[1](dy)

    and by central differences of ``φ(params, x) = Σ dy ⊙ forward(params, x, k)[0]``.
    Parts: one per params leaf (``"params['W']"``, ...) and ``"x"``.  A leaf
    missing from ``dparams``, an extra one, or one of the wrong shape is a
    failed part with a note.  For a layer with its own inference, ``infer_fn`` (such as
    :func:`funcnet.dense`), the part ``"infer"`` compares ``layer.infer(params, x)``
    with the training forward with no key, ``forward(params, x, None)[0]``
    (vs-jax columns; tolerance ``autodiff_rtol``).

    Args:
      layer: a :class:`~funcnet.layers.Layer` (:func:`funcnet.dense`, ...,
        or your own :func:`funcnet.layer`).
      n_in: the input width.
      batch: the number of rows of ``x``.
      key: one ``jax.random`` key (default ``key(0)``) for the params, ``x``,
        ``dy`` and the forward key.
      params: the params to check at (cast to float64).  Default:
        ``layer.init(key, n_in, float64)`` with ``0.1 · N(0, 1)`` added to
        every leaf, so that zero biases and unit scales do not hide a wrong
        gradient.  Pass your own when a layer needs constrained params.

    A kink of the layer (a relu inside) within ``ε`` of a pre-activation
    would show as a finite-difference failure only; at random points it has
    probability about ``1e-4`` (another ``key`` moves the points).

    Returns:
      a :class:`DerivativeReport`.

    Raises:
      ValueError, TypeError: for a ``layer`` that is not a Layer, a
        non-positive ``n_in`` or ``batch``, a bad ``key``, or a forward whose
        output is not ``(batch, output_size(n_in))``.
    """
    tolerances = _tolerances(autodiff_rtol, finite_difference_rtol)
    if not isinstance(layer, Layer):
        hint = ("; for an activation use fn.derivative_checks.check_activation"
                if isinstance(layer, (str, Activation)) else "")
        raise TypeError(f"check_layer: `layer` must be a layer (fn.dense(...), fn.layer(...), ...), got "
                        f"{type(layer).__name__}: {layer!r}{hint}")
    with error_prefix("check_layer: "):
        n_in, batch = check_count(n_in, "n_in"), check_count(batch, "batch")
    key = _default_key(key, "fn.derivative_checks.check_layer")
    rng = _seed(key)
    init_key, forward_key = jax.random.split(key)
    forward_key = forward_key if layer.needs_key else None
    n_out = layer.output_size(n_in)
    with jax.enable_x64(True):
        if params is None:
            params = layer.init(init_key, n_in, jnp.float64)
            params = jax.tree.map(lambda leaf: leaf + 0.1 * rng.normal(size=np.shape(leaf))
                                  if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf, params)
        params = _float64_tree(params)
        x = jnp.asarray(_row_scaled(rng.normal(size=(batch, n_in)), (1.0, 10.0, 0.1, 100.0)), jnp.float64)
        dy = jnp.asarray(rng.normal(size=(batch, n_out)), jnp.float64)
        shapes = [x.shape] + [np.shape(leaf) for leaf in jax.tree.leaves(params)]
        coordinates = [_coordinates(int(np.prod(shape, dtype=np.int64)), rng) for shape in shapes]
        hand_params, hand_x, autodiff_params, autodiff_x, numeric, inferred = _layer_arrays(
            layer, params, x, dy, forward_key, [jnp.asarray(chosen) for chosen in coordinates])
    numeric = [_scatter(values, chosen, shape) for values, chosen, shape in zip(numeric, coordinates, shapes)]
    numeric_params = jax.tree.unflatten(jax.tree.structure(params), numeric[1:])
    expected = dict(jax.tree_util.tree_flatten_with_path(autodiff_params)[0])
    finite = dict(jax.tree_util.tree_flatten_with_path(numeric_params)[0])
    given = dict(jax.tree_util.tree_flatten_with_path(hand_params)[0])
    parts = []
    for path, reference in expected.items():
        name = "params" + jax.tree_util.keystr(path)
        if path not in given:
            parts.append(PartDifference(name, math.nan, math.nan, None, None, False, "missing from backward's dparams"))
        else:
            parts.append(_compare(name, given[path], reference, finite[path], tolerances))
    for path in given:
        if path not in expected:
            parts.append(PartDifference("params" + jax.tree_util.keystr(path), math.nan, math.nan, None, None, False,
                                        "in backward's dparams but not in params"))
    parts.append(_compare("x", hand_x, autodiff_x, numeric[0], tolerances))
    if inferred is not None:
        parts.append(_compare("infer", *inferred, None, tolerances))
    config = ", ".join(f"{name}={value!r}" for name, value in layer.config)
    subject = f"layer {layer.name!r}" + (f" ({config})" if config else "") + f", n_in={n_in}, batch={batch}"
    return DerivativeReport(subject, tuple(parts), *tolerances, EPSILON)


@functools.partial(jax.jit, static_argnums=0)
def _layer_arrays(layer: Layer, params, x, dy, forward_key, coordinates):
    """Everything :func:`check_layer` compares, compiled once per layer and shapes.

    Returns ``(hand dparams, hand dx, jax dparams, jax dx, finite differences
    [x, leaves...] at ``coordinates``, (infer, forward without key) or None)``.
    """

    def forward(params, x):
        return layer.forward(params, x, forward_key)[0]

    y, cache = layer.forward(params, x, forward_key)
    if y.shape != dy.shape:
        raise ValueError(f"layer {layer.name!r}: forward maps x of shape {x.shape} to shape {y.shape}, "
                         f"expected (batch, output_size(n_in)) = {dy.shape}")
    hand_params, hand_x = layer.backward(params, cache, dy)
    autodiff_params, autodiff_x = jax.vjp(forward, params, x)[1](dy)
    leaves, structure = jax.tree.flatten(params)
    numeric = _central_differences(
        lambda x, *leaves: jnp.sum(dy * forward(jax.tree.unflatten(structure, leaves), x)), [x, *leaves],
        coordinates)
    inferred = None
    if layer.infer_fn is not None:
        inferred = (layer.infer(params, x), layer.forward(params, x, None)[0])
    return hand_params, hand_x, autodiff_params, autodiff_x, numeric, inferred


__all__ = ["DerivativeReport", "PartDifference", "check_activation", "check_loss", "check_layer"]

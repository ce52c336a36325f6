"""A fast on-device random permutation for shuffling rows every epoch.

``jax.random.permutation`` shuffles by sorting random keys (two rounds of a
sort for 80,000 rows), and XLA's CPU sort is slow: most of a whole training
epoch of the second article's network (``BENCHMARKS.md``, "Seed workload").

This module uses the *swap-or-not* shuffle (Hoang, Morris & Rogaway, 2012),
a bijection on ``{0, …, n-1}`` for any ``n`` built from ``R`` rounds of

    partner = (K_r - x) mod n
    x ← partner   if  F_r(max(x, partner)) = 1,   else  x

with a random offset ``K_r`` and a random salt ``s_r`` per round, and ``F_r(m)``
the top bit of the MurmurHash3 finaliser of ``m ⊕ s_r``.
``x`` and its partner see the same ``max``, so they swap together or not at
all: every round is an involution, hence a permutation.  Each round is a few
elementwise integer ops that XLA fuses into one kernel (no sort, no
data-dependent loop).

How many rounds.  Take two items at positions ``p ≠ q`` that are not each
other's partner.  Their two swap decisions hash different points, so with
probability ½ exactly one of them moves, and then their new offset
``q + p − K_r`` is uniform, because ``K_r`` is: the round *re-randomises* the
pair.  Otherwise both move (the offset is negated) or neither does.  After
``R`` rounds a given pair was never re-randomised with probability ``2^−R``,
so over all ``n(n−1)/2`` pairs the expected number still at their starting
distance is below ``n² 2^−(R+1)``.  ``R = 2·⌈log₂ n⌉ + 8`` makes that
``≤ 2⁻⁹``: 42 rounds for 80,000 rows (their cost, with and without 512-bit
vectors, :mod:`funcnet.xla_options`: ``BENCHMARKS.md``, "scikit-learn
estimators").  Any round that moves an item puts it at ``K_r − x``, a
uniform position.  The tests check uniform positions, decorrelated
neighbours, and uniform offsets between initially adjacent items.

It is a statistically good shuffle for SGD, not a cryptographic one, and for
a given key it gives a different order than ``jax.random.permutation``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax


def _murmur_mix(values: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finaliser without its last ``v ⊕ (v >> 16)``."""
    values = values ^ (values >> 16)
    values = values * jnp.uint32(0x85EBCA6B)
    values = values ^ (values >> 13)
    return values * jnp.uint32(0xC2B2AE35)


def _hash32(values: jax.Array) -> jax.Array:
    """The 32-bit finaliser of MurmurHash3: every input bit affects every output bit."""
    values = _murmur_mix(values)
    return values ^ (values >> 16)


def _hash_bit(values: jax.Array) -> jax.Array:
    """Bit 31 of ``_hash32(values)``, as 0 or 1.

    ``_hash32``'s last step, ``v ⊕ (v >> 16)``, leaves bit 31 as it is, so it
    is skipped: two ops fewer per item and round.
    """
    return _murmur_mix(values) >> 31


def key_words(key: jax.Array) -> jax.Array:
    """The raw uint32 words of a ``jax.random`` key (typed or legacy ``uint32[2]``)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return key.reshape(-1).astype(jnp.uint32)


def random_words(key: jax.Array, count: int, stream=0) -> jax.Array:
    """``count`` pseudo-random uint32 words from ``key`` and a ``stream`` number (may be traced).

    A counter-mode hash: word ``i`` is ``hash(hash(seed ⊕ stream) + i·φ)`` with
    ``seed`` hashed from the key's words.  Unlike ``jax.random.bits`` it
    compiles to a handful of integer ops, where threefry adds much compile
    time to every program that draws from it.  Different streams (epochs) of one
    key give unrelated words.
    """
    seed = jnp.uint32(0x243F6A88)
    for word in key_words(key):
        seed = _hash32(seed ^ word)
    seed = _hash32(seed ^ _hash32(jnp.asarray(stream, jnp.uint32) + jnp.uint32(0x9E3779B9)))
    counters = jnp.arange(count, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)
    return _hash32(_hash32(counters + seed) ^ jnp.uint32(0x85A308D3))


def num_rounds(num_items: int) -> int:
    """Rounds of swap-or-not used for ``num_items``: ``2·⌈log₂ n⌉ + 8`` (why: the module docstring)."""
    return 2 * max(1, math.ceil(math.log2(max(num_items, 2)))) + 8


def permutation(key: jax.Array, num_items: int, stream=0, *, inverse: bool = False) -> jax.Array:
    """A random permutation ``π`` of ``0 … num_items-1`` (int32), determined by ``key`` and ``stream``, or ``π⁻¹``.

    ``π = R_R ∘ … ∘ R_1``, the swap-or-not rounds applied to each index in
    turn: ``permutation(...)[i] = π(i)``.  Every round is an involution
    (``R_r ∘ R_r = id``), so ``π⁻¹ = R_1 ∘ … ∘ R_R``: the same rounds run
    backwards, at the same cost, and ``inverse=True`` returns
    ``permutation(...)[i] = π⁻¹(i)``.  Scattering row ``i`` to slot
    ``π⁻¹(i)`` puts row ``π(j)`` in slot ``j``: the order that gathering by
    ``π`` gives, without a random read per row.

    Args:
      key: a ``jax.random`` key; the same key gives the same permutation.
      num_items: a static Python int, ``1 <= num_items < 2**31``.
      stream: an integer (may be traced, e.g. the epoch number) selecting one
        of many independent permutations for the same key.
      inverse: return ``π⁻¹`` instead of ``π``.

    Returns:
      ``(num_items,)`` int32 array holding every index exactly once.
    """
    if not 1 <= num_items < 2**31:
        raise ValueError(f"`num_items` must be in [1, 2**31), got {num_items}")
    rounds = num_rounds(num_items)
    size = jnp.uint32(num_items)
    # the offsets' modulo bias is below n / 2³², irrelevant for shuffling
    offsets, salts = random_words(key, 2 * rounds, stream).reshape(2, rounds)
    offsets = offsets % size

    def swap_or_not(step, positions):
        round_index = rounds - 1 - step if inverse else step
        offset = offsets[round_index]
        # (K − x) mod n without a modulo, which XLA:CPU does not vectorise (it was 1/3 of a round)
        partners = jnp.where(positions <= offset, offset - positions, offset + size - positions)
        swap = _hash_bit(jnp.maximum(positions, partners) ^ salts[round_index]) == 1
        return jnp.where(swap, partners, positions)

    # a rolled loop: unrolled rounds compile slower and run no faster (BENCHMARKS.md, "Version 1 history")
    positions = lax.fori_loop(0, rounds, swap_or_not, jnp.arange(num_items, dtype=jnp.uint32))
    return positions.astype(jnp.int32)

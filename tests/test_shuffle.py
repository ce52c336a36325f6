"""The on-device shuffle: a permutation for every size, reproducible, and uniform."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funcnet.shuffle import _hash32, _hash_bit, num_rounds, permutation


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1000, 80_001])
def test_permutation_holds_every_index_exactly_once(size):
    order = np.asarray(permutation(jax.random.key(size), size))
    assert order.dtype == np.int32
    np.testing.assert_array_equal(np.sort(order), np.arange(size))


def test_permutation_is_reproducible_per_key_and_differs_between_keys():
    first = np.asarray(permutation(jax.random.key(0), 500))
    np.testing.assert_array_equal(first, permutation(jax.random.key(0), 500))
    assert not np.array_equal(first, permutation(jax.random.key(1), 500))
    assert not np.array_equal(first, np.arange(500))


@pytest.mark.parametrize("size", [2, 3, 5, 10])
def test_every_item_is_equally_likely_at_every_position(size):
    trials = 6000
    keys = jax.random.split(jax.random.key(123), trials)
    orders = np.asarray(jax.jit(jax.vmap(lambda key: permutation(key, size)))(keys))
    counts = np.zeros((size, size))
    np.add.at(counts, (orders, np.broadcast_to(np.arange(size), orders.shape)), 1)
    expected = trials / size
    chi_square = ((counts - expected) ** 2 / expected).sum()
    degrees = (size - 1) ** 2
    # a chi-square statistic beyond dof + 5·sqrt(2·dof) has probability < 1e-4 under uniformity
    assert chi_square < degrees + 5 * np.sqrt(2 * degrees), (chi_square, degrees)


def test_neighbours_are_decorrelated():
    # in a uniform shuffle of 0..n-1, P(order[i+1] == order[i] + 1) = 1/n
    size, trials = 50, 2000
    keys = jax.random.split(jax.random.key(7), trials)
    orders = np.asarray(jax.jit(jax.vmap(lambda key: permutation(key, size)))(keys))
    rate = np.mean(np.diff(orders, axis=1) == 1)
    assert abs(rate - 1 / size) < 0.005


def test_items_that_start_adjacent_end_at_uniform_offsets():
    # the module docstring's argument for 2·⌈log₂ n⌉ + 8 rounds: every pair is re-randomised, so the
    # offset π(i+1) − π(i) mod n is uniform over 1 … n−1 (6 rounds give chi-square 3,650 here; the bound is 367)
    size, trials = 256, 400
    keys = jax.random.split(jax.random.key(11), trials)
    orders = np.asarray(jax.jit(jax.vmap(lambda key: permutation(key, size)))(keys)).astype(np.int64)
    offsets = (np.diff(orders, axis=1) % size).ravel()
    counts = np.bincount(offsets, minlength=size)[1:]
    expected = offsets.size / (size - 1)
    chi_square = ((counts - expected) ** 2 / expected).sum()
    degrees = size - 2
    assert chi_square < degrees + 5 * np.sqrt(2 * degrees), (chi_square, degrees)


def test_rounds_grow_with_twice_the_bits_of_the_size():
    assert [num_rounds(size) for size in (1, 2, 3, 256, 257, 80_000)] == [10, 10, 12, 24, 26, 42]


def test_permutation_rejects_sizes_it_cannot_shuffle():
    with pytest.raises(ValueError, match=r"`num_items` must be in \[1, 2\*\*31\), got 0"):
        permutation(jax.random.key(0), 0)


def test_streams_of_one_key_give_different_permutations():
    orders = [np.asarray(permutation(jax.random.key(0), 200, stream=epoch)) for epoch in range(4)]
    assert all(not np.array_equal(orders[i], orders[j]) for i in range(4) for j in range(i + 1, 4))


def test_legacy_uint32_keys_work_like_typed_keys():
    typed = permutation(jax.random.key(5), 100)
    legacy = permutation(jax.random.PRNGKey(5), 100)
    np.testing.assert_array_equal(typed, legacy)


@pytest.mark.parametrize("options", [{"xla_cpu_prefer_vector_width": 256},
                                     {"xla_cpu_prefer_vector_width": 512, "xla_cpu_max_isa": "AVX2"}],
                         ids=["256-bit", "512-bit on an AVX2-only CPU"])
def test_permutation_is_bit_identical_under_every_vector_width(options):
    # the estimators' epoch compiles for 512-bit vectors on CPU (funcnet.xla_options): integers must not move
    if jax.default_backend() != "cpu":
        pytest.skip("XLA:CPU compile options")
    shuffle = jax.jit(lambda key, epoch: permutation(key, 1001, stream=epoch))
    key = jax.random.key(7)
    wide = shuffle.lower(key, 3).compile({"xla_cpu_prefer_vector_width": 512})
    np.testing.assert_array_equal(wide(key, 3), shuffle.lower(key, 3).compile(options)(key, 3))


def test_the_swap_bit_is_the_top_bit_of_murmurhash3s_finaliser():
    def fmix32(h):  # MurmurHash3's fmix32, in NumPy uint64 arithmetic kept to 32 bits
        h = h ^ (h >> 16)
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h = h ^ (h >> 13)
        h = (h * 0xC2B2AE35) & 0xFFFFFFFF
        return h ^ (h >> 16)

    values = np.random.default_rng(0).integers(0, 2**32, 20_000, dtype=np.uint64)
    values[:2] = [0, 1]
    hashed = np.asarray(_hash32(jnp.asarray(values.astype(np.uint32))))
    np.testing.assert_array_equal(hashed, fmix32(values))
    assert hashed[1] == 0x514E28B7  # fmix32(1), the published value
    np.testing.assert_array_equal(_hash_bit(jnp.asarray(values.astype(np.uint32))), hashed >> 31)


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1000, 4097])
def test_the_inverse_permutation_runs_the_rounds_backwards_and_undoes_the_permutation(size):
    key, stream = jax.random.key(size), 3
    forward = np.asarray(permutation(key, size, stream))
    inverse = np.asarray(permutation(key, size, stream, inverse=True))
    np.testing.assert_array_equal(forward[inverse], np.arange(size))  # π(π⁻¹(i)) = i
    np.testing.assert_array_equal(inverse[forward], np.arange(size))  # π⁻¹(π(i)) = i
    rows = np.arange(size) * 10
    scattered = np.zeros_like(rows)
    scattered[inverse] = rows  # row i to slot π⁻¹(i) ...
    np.testing.assert_array_equal(scattered, rows[forward])  # ... is the order of gathering by π

"""One chunked-evaluation path: fixed-size chunks of rows, one padding rule (the last row repeated), one mask,
and one mean loss that inference, the training epoch's validation loss and the divergence diagnosis share."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnet as fn
from funcnet import divergence, engine, inference, row_chunks

MODEL = fn.mlp([3, 7, 2], hidden="tanh")


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(4)
    return (MODEL.init(jax.random.key(4)), rng.normal(size=(11, 3)).astype(np.float32),
            rng.normal(size=(11, 2)).astype(np.float32))


def test_chunks_repeat_the_last_row_and_the_mask_marks_the_real_ones():
    x = np.arange(10.0).reshape(5, 2)
    seen = row_chunks.map_row_chunks(lambda mask, chunk: (mask, chunk), (x,), 2, host_loop=True)
    assert [mask.tolist() for mask, _ in seen] == [[True, True], [True, True], [True, False]]
    np.testing.assert_array_equal(seen[-1][1], [[8.0, 9.0], [8.0, 9.0]])
    masks, chunks = jax.jit(lambda a: row_chunks.map_row_chunks(lambda m, c: (m, c), (a,), 2))(x)
    np.testing.assert_array_equal(masks, np.array([mask for mask, _ in seen]))
    np.testing.assert_array_equal(chunks, np.stack([chunk for _, chunk in seen]))


def test_the_mean_loss_from_the_host_and_in_a_trace_equals_the_unpadded_mean(problem):
    params, x, y = problem
    unpadded = float(MODEL.eval_loss(params, jnp.asarray(x), jnp.asarray(y)))
    for rows in (1, 4, 11, 64):
        host = float(row_chunks.mean_loss(MODEL, params, x, y, rows, dtypes=(np.float32, np.float32),
                                          host_loop=True))
        traced = float(jax.jit(row_chunks.mean_loss, static_argnums=(0, 4))(MODEL, params, x, y, rows))
        np.testing.assert_allclose([host, traced], unpadded, rtol=3e-7, atol=0)  # summation order: ulps
    assert fn.evaluate(MODEL, params, x, y, batch_size=4) == float(
        row_chunks.mean_loss(MODEL, params, x, y, 4, dtypes=(np.float32, np.float32), host_loop=True))


def test_a_padded_row_never_counts_in_the_mean_loss(problem):
    params, x, y = problem
    y = y.copy()
    y[-1] = 1e3  # the padding repeats this row: counted, it would dominate the mean
    expected = float(np.mean(np.asarray(row_chunks.per_sample_losses(MODEL, params, x, y), np.float64)))
    for rows in (4, 8):
        np.testing.assert_allclose(float(jax.jit(row_chunks.mean_loss, static_argnums=(0, 4))(
            MODEL, params, x, y, rows)), expected, rtol=1e-6)


def test_the_diagnosis_gradients_in_chunks_equal_the_gradient_over_every_row(problem, monkeypatch):
    params, x, y = problem
    monkeypatch.setattr(divergence, "GRADIENT_CHUNK", 4)  # 11 rows: chunks of 4, 4 and 3 (+1 padded)
    manual, autodiff = divergence._both_gradients.__wrapped__(MODEL, params, jnp.asarray(x), jnp.asarray(y), None)
    expected = jax.grad(MODEL.loss)(params, jnp.asarray(x), jnp.asarray(y))
    for got in (manual, autodiff):
        for leaf, want in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
            np.testing.assert_allclose(leaf, want, rtol=1e-5, atol=1e-7)


def test_every_caller_uses_the_one_path():
    assert engine.mean_loss is row_chunks.mean_loss is divergence.mean_loss
    assert inference.bucket_rows is row_chunks.bucket_rows and inference.map_row_chunks is row_chunks.map_row_chunks
    assert divergence.map_row_chunks is row_chunks.map_row_chunks
    for module in (engine, inference, divergence):
        assert not hasattr(module, "map_in_chunks") and not hasattr(module, "_row_chunks")

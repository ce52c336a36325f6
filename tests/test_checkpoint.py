"""Checkpoints: bit-identical round trips, atomic writes, and clear errors for bad files."""

import json
import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from conftest import trained_state

MODEL = fn.mlp([3, 5, 2], hidden="tanh", output="softmax", loss="cross_entropy")


def trained(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    labels = np.argmax(x[:, :2], axis=1)
    optimizer = optax.adam(1e-2)
    params, state, history = trained_state(fn.fit(MODEL, MODEL.init(jax.random.key(0)), optimizer, x, labels,
                                          epochs=3, batch_size=8, key=jax.random.key(1), validation_split=0.25))
    scaler = fn.fit_standardizer(x)
    path = tmp_path / "model.npz"
    fn.save(path, MODEL, params, opt_state=state, history=history, standardizer=scaler,
            config={"epochs": 3}, metadata={"note": "test"})
    return path, x, params, state, history, scaler, optimizer


def test_save_and_load_round_trip_bit_for_bit(tmp_path):
    path, x, params, state, history, scaler, optimizer = trained(tmp_path)
    loaded = fn.load(path, model=MODEL, optimizer=optimizer)
    assert loaded.model == MODEL
    jax.tree.map(np.testing.assert_array_equal, params, loaded.params)
    jax.tree.map(np.testing.assert_array_equal, state, loaded.opt_state)
    assert jax.tree.structure(state) == jax.tree.structure(loaded.opt_state)
    assert loaded.history == history and loaded.config == {"epochs": 3} and loaded.metadata == {"note": "test"}
    np.testing.assert_array_equal(loaded.standardizer.mean, scaler.mean)
    before = fn.predict(MODEL, params, scaler.apply(x))
    after = fn.predict(loaded.model, loaded.params, loaded.standardizer.apply(x))
    np.testing.assert_array_equal(np.asarray(before), np.asarray(after))


def test_loading_never_unpickles(tmp_path, monkeypatch):
    path = trained(tmp_path)[0]
    calls = []
    original = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: calls.append(k) or original(*a, **k))
    fn.load(path)
    assert calls and all(call.get("allow_pickle") is False for call in calls)


def test_a_crash_during_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path, x, params, *_ = trained(tmp_path)
    original = open(path, "rb").read()

    def crash(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        fn.save(path, MODEL, jax.tree.map(lambda a: a * 0, params))
    monkeypatch.undo()
    assert open(path, "rb").read() == original
    assert [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")] == []
    jax.tree.map(np.testing.assert_array_equal, fn.load(path).params, params)


def test_truncated_file_is_reported(tmp_path):
    path = trained(tmp_path)[0]
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(fn.CheckpointError, match=r"is truncated or corrupted and cannot be read"):
        fn.load(path)


def test_corrupted_bytes_are_reported(tmp_path):
    path = trained(tmp_path)[0]
    data = bytearray(open(path, "rb").read())
    for index in range(200, len(data) - 200, 97):
        data[index] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(fn.CheckpointError, match=r"truncated or corrupted|corrupted header|incomplete"):
        fn.load(path)


def rewrite_header(path, change):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["__header__"].tobytes().decode())
    change(header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def test_wrong_version_is_reported(tmp_path):
    path = trained(tmp_path)[0]
    rewrite_header(path, lambda header: header.update(version=99))
    with pytest.raises(fn.CheckpointError, match=r"has format version 99; this funcnet reads versions 1, 2"):
        fn.load(path)


def test_not_a_checkpoint_is_reported(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.ones(3))
    with pytest.raises(fn.CheckpointError, match=r"is not a funcnet checkpoint: it has no header"):
        fn.load(path)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(fn.CheckpointError, match=r"is not a funcnet checkpoint"):  # issue 10, case 12
        fn.load(text)


def test_mismatched_architecture_is_reported(tmp_path):
    path = trained(tmp_path)[0]
    other = fn.mlp([3, 6, 2], hidden="tanh", output="softmax", loss="cross_entropy")
    with pytest.raises(fn.CheckpointError, match=r"holds a different model: saved 3-5\(tanh\)-2 → softmax, cross_entropy, expected 3-6\(tanh\)-2"):
        fn.load(path, model=other)


def test_params_that_do_not_fit_the_saved_model_are_reported(tmp_path):
    path = trained(tmp_path)[0]
    rewrite_header(path, lambda header: header["model"]["layers"][0].update(units=4))
    with pytest.raises(fn.CheckpointError, match=r"params do not match its model 3-4\(tanh\)-2 → softmax, cross_entropy"):
        fn.load(path)


def test_optimizer_state_of_another_optimizer_is_reported(tmp_path):
    path = trained(tmp_path)[0]
    with pytest.raises(fn.CheckpointError, match=r"saved with another optimizer"):
        fn.load(path, optimizer=optax.sgd(0.1, momentum=0.9))


@pytest.mark.x64
def test_float64_params_stay_float64(tmp_path):
    params = MODEL.init(jax.random.key(0), jnp.float64)
    fn.save(tmp_path / "f64.npz", MODEL, params)
    loaded = fn.load(tmp_path / "f64.npz")
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(loaded.params))
    assert loaded.opt_state is None and loaded.standardizer is None


def test_checkpoint_is_a_plain_zip_with_a_json_header(tmp_path):
    path = trained(tmp_path)[0]
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert "__header__.npy" in names and "params/0.npy" in names and "standardizer/mean.npy" in names

"""Checkpoints are written like any file the user makes, durably, and read defensively (issue 10, case 12).

* the file gets the mode the umask gives new files (0644 under umask 022), not mkstemp's 0600;
* the folder is fsynced after the rename, so the rename itself survives a crash;
* every header field is checked: missing or malformed is a ``CheckpointError``, never a bare KeyError;
* the optimizer state's leaf paths are stored and checked: RMSProp's state never loads as momentum's;
* ``fn.save`` checks params against the model before it writes anything;
* write errors name the path the user gave, not the temporary file;
* a file that is not a checkpoint says so, without numpy's advice to unpickle it.
"""

import json
import os
import pickle
import stat

import jax
import numpy as np
import optax
import pytest

import funcnet as fn

MODEL = fn.mlp([3, 4, 2], hidden="tanh", output="identity", loss="mse")


@pytest.fixture(scope="module")
def params():
    return MODEL.init(jax.random.key(0))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, params):
    """One checkpoint with an Adam state; tests copy and damage its header."""
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    fn.save(path, MODEL, params, opt_state=optax.adam(1e-3).init(params), history={"train_loss": [1.0]})
    return path


def rewrite_header(source, target, change):
    """Copy the checkpoint ``source`` to ``target`` with ``change(header)`` applied to its JSON header."""
    with np.load(source) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["__header__"].tobytes().decode())
    change(header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(target, **arrays)
    return target


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_checkpoint_gets_the_mode_the_umask_gives_new_files(tmp_path, params, umask):
    previous = os.umask(umask)
    try:
        fn.save(tmp_path / "model.npz", MODEL, params)
        (tmp_path / "plain.txt").write_text("made by open()")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE(os.stat(tmp_path / "model.npz").st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode)


def test_the_folder_is_fsynced_after_the_rename(tmp_path, params, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append(("fsync", "folder" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file"))
        return real_fsync(descriptor)

    def replace(source, target):
        events.append(("replace", os.path.basename(target)))
        return real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    fn.save(tmp_path / "model.npz", MODEL, params)
    assert events == [("fsync", "file"), ("replace", "model.npz"), ("fsync", "folder")]


def _delete(field):
    return lambda header: header.pop(field)


def _set(field, value):
    return lambda header: header.update({field: value})


@pytest.mark.parametrize("change, message", [
    (_delete("model"), r"damaged header: field 'model' is missing"),
    (_delete("num_params"), r"damaged header: field 'num_params' is missing"),
    (_delete("num_opt_state"), r"damaged header: field 'num_opt_state' is missing"),
    (_delete("history"), r"damaged header: field 'history' is missing"),
    (_delete("config"), r"damaged header: field 'config' is missing"),
    (_delete("metadata"), r"damaged header: field 'metadata' is missing"),
    (_set("num_params", "4"), r"field 'num_params' must be a count of arrays, found '4'"),
    (_set("num_params", -1), r"field 'num_params' must be a count of arrays, found -1"),
    (_set("num_opt_state", 2.5), r"field 'num_opt_state' must be a count of arrays or null, found 2.5"),
    (_set("num_last_params", [1]), r"field 'num_last_params' must be a count of arrays or null, found \[1\]"),
    (_set("history", [1.0]), r"field 'history' must be an object, found \[1.0\]"),
    (_set("config", None), r"field 'config' must be an object, found None"),
    (_set("model", "mlp"), r"field 'model' must be an object describing the model, found 'mlp'"),
    (_set("model", {"n_in": 3}), r"describes an invalid model"),
    (_set("opt_state_paths", "nu"), r"field 'opt_state_paths' must be a list of strings or null"),
    (_set("opt_state_paths", ["[0].mu"]), r"1 'opt_state_paths' for \d+ optimizer state arrays"),
])
@pytest.mark.parametrize("with_model", [False, True])
def test_a_missing_or_malformed_header_field_is_a_checkpoint_error(tmp_path, saved, change, message, with_model):
    path = rewrite_header(saved, tmp_path / "damaged.npz", change)
    with pytest.raises(fn.CheckpointError, match=rf"checkpoint '.*damaged\.npz' .*{message}"):
        fn.load(path, model=MODEL if with_model else None, optimizer=optax.adam(1e-3))


def test_a_header_that_is_not_an_object_is_a_checkpoint_error(tmp_path, saved):
    with np.load(saved) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["__header__"] = np.frombuffer(b"[1, 2]", dtype=np.uint8)
    np.savez(tmp_path / "list.npz", **arrays)
    with pytest.raises(fn.CheckpointError, match=r"corrupted header \(a JSON list, not an object\)"):
        fn.load(tmp_path / "list.npz")


def test_an_rmsprop_state_does_not_load_as_momentums(tmp_path, params):
    # Same leaf count and shapes (nu vs trace, then EmptyState): only the stored paths tell them apart.
    rmsprop, momentum = optax.rmsprop(1e-3), optax.sgd(1e-3, momentum=0.9)
    assert [np.shape(a) for a in jax.tree.leaves(rmsprop.init(params))] == \
        [np.shape(a) for a in jax.tree.leaves(momentum.init(params))]
    path = tmp_path / "rms.npz"
    fn.save(path, MODEL, params, opt_state=rmsprop.init(params))
    with pytest.raises(fn.CheckpointError, match=r"optimizer state was saved with another optimizer: its leaf 0 "
                       r"is \"\[0\]\.nu\[0\]\['W'\]\", the given optimizer's is \"\[0\]\.trace\[0\]\['W'\]\""):
        fn.load(path, optimizer=momentum)
    loaded = fn.load(path, optimizer=rmsprop).opt_state
    assert jax.tree.structure(loaded) == jax.tree.structure(rmsprop.init(params))


def test_the_last_opt_state_is_checked_too(tmp_path, params):
    adam, momentum = optax.adam(1e-3), optax.sgd(1e-3, momentum=0.9)
    path = tmp_path / "early.npz"
    fn.save(path, MODEL, params, opt_state=momentum.init(params), last_params=params,
            last_opt_state=adam.init(params))
    with pytest.raises(fn.CheckpointError, match=r"saved with another optimizer"):
        fn.load(path, optimizer=momentum)


@pytest.mark.parametrize("field, bad, message", [
    ("params", "shape", r"`params\[0\]\['W'\]` has shape \(4, 3\) but layer 0 .* expects \(3, 4\)"),
    ("params", "keys", r"`params\[1\]` must be a dict with keys \['W', 'b'\]"),
    ("last_params", "shape", r"`params\[0\]\['W'\]` has shape \(4, 3\)"),
])
def test_save_checks_params_against_the_model_before_writing(tmp_path, params, field, bad, message):
    wrong = [dict(layer) for layer in params]
    if bad == "shape":
        wrong[0]["W"] = wrong[0]["W"].T
    else:
        wrong[1] = {"W": wrong[1]["W"]}
    path = tmp_path / "model.npz"
    path.write_bytes(b"the previous checkpoint")
    arguments = {"params": params, "last_params": None, field: wrong}
    with pytest.raises(ValueError, match=message):
        fn.save(path, MODEL, arguments["params"], last_params=arguments["last_params"])
    assert path.read_bytes() == b"the previous checkpoint"
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left either


@pytest.mark.parametrize("where, error", [
    ("missing/model.npz", FileNotFoundError),
    ("a_folder", IsADirectoryError),
])
def test_write_errors_name_the_users_path_not_the_temporary_file(tmp_path, params, monkeypatch, where, error):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(error, match=rf"\(writing the checkpoint\): '{where}'$") as raised:
        fn.save(where, MODEL, params)
    assert ".tmp-" not in str(raised.value) and raised.value.filename == where
    assert sorted(os.listdir(tmp_path)) == ["a_folder"] and os.listdir(tmp_path / "a_folder") == []


def _text(path):
    path.write_text("a,b,c\n1,2,3\n")


def _npy(path):
    with open(path, "wb") as handle:
        np.save(handle, np.ones(3))


def _pickle(path):
    path.write_bytes(pickle.dumps({"params": [1, 2]}))


def _npz_with_objects(path):
    with open(path, "wb") as handle:
        np.savez(handle, __header__=np.array([{"format": "funcnet-checkpoint"}], dtype=object))


@pytest.mark.parametrize("write, message", [
    (_text, r"is not a funcnet checkpoint \(an \.npz archive written by fn\.save or `funcnet train --save`\); "
            r"it starts with b'a,b,'"),
    (_npy, r"is not a funcnet checkpoint .*it starts with b'\\x93NUM'"),
    (_pickle, r"is not a funcnet checkpoint .*it starts with b'\\x80"),
    (_npz_with_objects, r"is not a funcnet checkpoint: it holds pickled objects, which funcnet never writes"),
    (lambda path: path.write_bytes(b""), r"is empty: not a funcnet checkpoint"),
    (lambda path: path.mkdir(), r"is a folder, not a funcnet checkpoint"),
])
def test_a_file_that_is_not_a_checkpoint_says_so_without_advice_to_unpickle(tmp_path, write, message):
    path = tmp_path / "model.npz"
    write(path)
    with pytest.raises(fn.CheckpointError, match=message) as raised:
        fn.load(path)
    assert "allow_pickle" not in str(raised.value) and "trust" not in str(raised.value)


def test_the_cli_reports_a_csv_given_as_checkpoint(cli_run, tmp_path):
    (tmp_path / "data.csv").write_text("a,b,c\n1,2,3\n")
    result = cli_run("predict", "--checkpoint", "data.csv", "--csv", "data.csv", expect=2)
    assert "'data.csv' is not a funcnet checkpoint" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr and "allow_pickle" not in result.stderr

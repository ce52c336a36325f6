"""Checkpoint edges (issue 21, cases 7, 8 and 12): what a checkpoint may hold, and where and how it is written.

* params must be real floating point, in ``fn.save`` (TypeError) and ``fn.load`` (CheckpointError), by leaf;
  a loaded optimizer state's leaves must be of the kind ``optimizer.init`` makes;
* bfloat16 arrays and typed PRNG keys (``optax.noisy_sgd``) round-trip bit for bit, and training resumes
  exactly as if never interrupted;
* history, config and metadata take NumPy/JAX scalars and arrays, tuples and paths; what JSON cannot hold
  unambiguously is a TypeError naming its place;
* a symbolic link is kept and its target written; a read-only file is never replaced; a replaced file keeps
  its mode; a folder, a FIFO or a loop of links is refused by the path the user gave.
"""

import errno
import json
import os
import pathlib
import stat

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnet as fn
from conftest import trained_state

MODEL = fn.mlp([3, 4, 2], hidden="tanh", output="identity", loss="mse")
NOT_REAL_FLOATING = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                     np.complex64, np.complex128]


@pytest.fixture(scope="module")
def params():
    return MODEL.init(jax.random.key(0))


def cast(tree, dtype):
    return jax.tree.map(lambda leaf: np.asarray(leaf).astype(dtype), tree)


def stored(path):
    """The header and the arrays of the checkpoint at ``path``, as ``np.load`` reads them."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return json.loads(arrays.pop("__header__").tobytes().decode()), arrays


def write(path, header, arrays):
    """Write a checkpoint by hand (what another tool, or an edit, could make)."""
    np.savez(path, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)


def assert_equal_trees(expected, found):
    assert jax.tree.structure(expected) == jax.tree.structure(found)
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(found)):
        assert a.dtype == b.dtype
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# -- 7d: params must be real floating point ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", NOT_REAL_FLOATING, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("field", ["params", "last_params"])
def test_save_refuses_params_that_are_not_real_floating(tmp_path, params, dtype, field):
    path = tmp_path / "model.npz"
    path.write_bytes(b"the previous checkpoint")
    arguments = {"params": params, "last_params": params, field: cast(params, dtype)}
    with pytest.raises(TypeError, match=rf"`{field}\[0\]\['W'\]` must be real floating point \(float16, bfloat16, "
                                        rf"float32 or float64\), found {np.dtype(dtype).name}; cast the params"):
        fn.save(path, MODEL, arguments["params"], last_params=arguments["last_params"])
    assert path.read_bytes() == b"the previous checkpoint" and os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.parametrize("dtype", NOT_REAL_FLOATING, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("field", ["params", "last_params"])
def test_load_refuses_params_that_are_not_real_floating(tmp_path, params, dtype, field):
    path = tmp_path / "model.npz"
    fn.save(path, MODEL, params, last_params=params)
    header, arrays = stored(path)
    arrays[f"{field}/0"] = arrays[f"{field}/0"].astype(dtype)  # layer 0's W
    write(path, header, arrays)
    found = jnp.asarray(arrays[f"{field}/0"]).dtype.name  # int64 reads as int32 without x64
    with pytest.raises(fn.CheckpointError, match=rf"checkpoint '.*model\.npz' {field}\[0\]\['W'\] is {found}; "
                                                 rf"a network's params must be real floating point"):
        fn.load(path)


@pytest.mark.parametrize("leaf, dtype, message", [
    (1, np.int32, r"opt_state\[0\]\.mu\[0\]\['W'\] is int32 \(integer\), but the given optimizer's is float32 "
                  r"\(floating\)"),
    (0, np.float32, r"opt_state\[0\]\.count is float32 \(floating\), but the given optimizer's is int32 \(integer\)"),
    (1, np.complex64, r"opt_state\[0\]\.mu\[0\]\['W'\] is complex64 \(complexfloating\), but the given "
                      r"optimizer's is float32 \(floating\)"),
], ids=["integer moment", "float count", "complex moment"])
def test_load_refuses_an_optimizer_state_leaf_of_another_kind(tmp_path, params, leaf, dtype, message):
    path = tmp_path / "model.npz"
    fn.save(path, MODEL, params, opt_state=optax.adam(1e-3).init(params))
    header, arrays = stored(path)
    arrays[f"opt_state/{leaf}"] = arrays[f"opt_state/{leaf}"].astype(dtype)
    write(path, header, arrays)
    with pytest.raises(fn.CheckpointError, match=rf"checkpoint '.*model\.npz' {message}: this file was not "
                                                 r"written by fn\.save, or was altered"):
        fn.load(path, optimizer=optax.adam(1e-3))


def test_bfloat16_params_and_adam_state_round_trip_bit_for_bit(tmp_path):
    params = MODEL.init(jax.random.key(0), jnp.bfloat16)
    state = optax.adam(1e-3).init(params)
    fn.save(tmp_path / "bf16.npz", MODEL, params, opt_state=state)
    header, arrays = stored(tmp_path / "bf16.npz")
    assert header["leaf_types"]["params/0"] == "bfloat16" and arrays["params/0"].dtype == np.uint16
    loaded = fn.load(tmp_path / "bf16.npz", optimizer=optax.adam(1e-3))
    assert_equal_trees(params, loaded.params)
    assert_equal_trees(state, loaded.opt_state)


def test_a_bfloat16_file_from_before_leaf_types_loads(tmp_path):
    """Older funcnet wrote bfloat16 as NumPy's raw 2-byte records (``|V2``), which then failed to load."""
    params = MODEL.init(jax.random.key(0), jnp.bfloat16)
    fn.save(tmp_path / "new.npz", MODEL, params)
    header, arrays = stored(tmp_path / "new.npz")
    del header["leaf_types"]
    write(tmp_path / "old.npz", header, {name: np.asarray(jax.tree.leaves(params)[int(name.split("/")[1])])
                                         for name in arrays})
    assert stored(tmp_path / "old.npz")[1]["params/0"].dtype.kind == "V"
    assert_equal_trees(params, fn.load(tmp_path / "old.npz").params)


@pytest.mark.parametrize("leaf_type, message", [
    ("key<nope>", r"array 'opt_state/1' cannot be read as 'key<nope>' \(unrecognized PRNG implementation"),
    ("float99", r"array 'opt_state/1' cannot be read as 'float99' \(stored as uint32, not the bits of a known type"),
])
def test_an_unknown_leaf_type_is_a_checkpoint_error(tmp_path, params, leaf_type, message):
    optimizer = optax.noisy_sgd(0.1, key=jax.random.key(0))
    fn.save(tmp_path / "model.npz", MODEL, params, opt_state=optimizer.init(params))
    header, arrays = stored(tmp_path / "model.npz")
    header["leaf_types"]["opt_state/1"] = leaf_type
    write(tmp_path / "model.npz", header, arrays)
    with pytest.raises(fn.CheckpointError, match=message):
        fn.load(tmp_path / "model.npz", optimizer=optimizer)


@pytest.mark.parametrize("leaf, found", [
    (np.array(["text"]), r"ndarray of dtype <U4"),
    (np.array([{"a": 1}], dtype=object), r"ndarray of dtype object"),
    ("text", r"str of dtype <U4"),
])
def test_save_refuses_an_optimizer_state_leaf_that_is_not_numeric(tmp_path, params, leaf, found):
    with pytest.raises(TypeError, match=rf"`opt_state\['note'\]` must be a numeric array \(or a PRNG key\), "
                                        rf"found {found}: a checkpoint stores numbers"):
        fn.save(tmp_path / "model.npz", MODEL, params, opt_state={"note": leaf})
    assert os.listdir(tmp_path) == []


# -- 12f: typed PRNG keys (optax.noisy_sgd) ---------------------------------------------------------------


def test_noisy_sgd_resumes_from_a_checkpoint_exactly_as_if_never_interrupted(tmp_path, params):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = np.stack([x[:, 0] - x[:, 1], x[:, 2]], axis=1)
    optimizer = optax.noisy_sgd(0.05, key=jax.random.key(7))
    settings = dict(batch_size=8, key=jax.random.key(1))
    whole, whole_state, _ = trained_state(fn.fit(MODEL, params, optimizer, x, y, epochs=4, **settings))
    first, state, history = trained_state(fn.fit(MODEL, params, optimizer, x, y, epochs=2, **settings))
    fn.save(tmp_path / "noisy.npz", MODEL, first, opt_state=state, history=history)
    loaded = fn.load(tmp_path / "noisy.npz", optimizer=optimizer)
    assert_equal_trees(state, loaded.opt_state)
    assert str(loaded.opt_state[0].rng_key.dtype) == "key<fry>"
    resumed, resumed_state, _ = trained_state(fn.fit(MODEL, loaded.params, optimizer, x, y, epochs=4, initial_epoch=2,
                                             opt_state=loaded.opt_state, history=loaded.history, **settings))
    assert_equal_trees(whole, resumed)
    assert_equal_trees(whole_state, resumed_state)


def test_a_key_of_another_implementation_round_trips_and_is_checked(tmp_path, params):
    rbg = optax.noisy_sgd(0.1, key=jax.random.key(3, impl="rbg"))
    state = rbg.update(jax.tree.map(jnp.ones_like, params), rbg.init(params))[1]  # the key has moved on
    fn.save(tmp_path / "rbg.npz", MODEL, params, opt_state=state)
    assert stored(tmp_path / "rbg.npz")[0]["leaf_types"] == {"opt_state/1": "key<rbg>"}
    assert_equal_trees(state, fn.load(tmp_path / "rbg.npz", optimizer=rbg).opt_state)
    with pytest.raises(fn.CheckpointError, match=r"opt_state\[0\]\.rng_key is key<rbg>, but the given optimizer's "
                                                 r"is key<fry>: this file was not written"):
        fn.load(tmp_path / "rbg.npz", optimizer=optax.noisy_sgd(0.1, key=jax.random.key(3)))


@pytest.mark.parametrize("optimizer", [
    optax.inject_hyperparams(optax.adam)(learning_rate=0.1),
    optax.MultiSteps(optax.adam(0.1), 3),
    optax.apply_if_finite(optax.adam(0.1), 3),
    optax.chain(optax.adam(0.1), optax.contrib.reduce_on_plateau()),
    optax.lbfgs(),
    optax.contrib.schedule_free_adamw(0.1),
    optax.masked(optax.adam(0.1), lambda tree: jax.tree.map(lambda a: a.ndim == 2, tree)),
], ids=["inject_hyperparams", "MultiSteps", "apply_if_finite (bool leaves)", "reduce_on_plateau", "lbfgs",
        "schedule_free_adamw", "masked"])
def test_other_optimizer_states_round_trip(tmp_path, params, optimizer):
    state = optimizer.init(params)
    fn.save(tmp_path / "model.npz", MODEL, params, opt_state=state)
    assert_equal_trees(state, fn.load(tmp_path / "model.npz", optimizer=optimizer).opt_state)


# -- 12e: history, config and metadata ----------------------------------------------------------------------


def test_numpy_and_jax_values_in_history_and_metadata_round_trip(tmp_path, params):
    step = fn.make_train_step(MODEL, optax.sgd(0.1))
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    _, _, loss = step(params, optax.sgd(0.1).init(params), x, y)  # a 0-d JAX array
    history = {"train_loss": [loss, np.float32(0.25), jnp.float32(0.125)], "val_loss": np.array([0.5, 0.375]),
               "best_epoch": np.int64(1)}
    metadata = {"tags": ("a", "b"), "seed": np.int32(3), "ok": np.bool_(True), "half": np.float16(0.5),
                "zero_d": np.array(2.5), "jax_zero_d": jnp.asarray(7), "where": pathlib.Path("runs") / "a",
                "name": np.str_("n"), "nested": [{"w": jnp.arange(3)}], "bf16": jnp.bfloat16(1.5),
                "nan": float("nan")}
    fn.save(tmp_path / "model.npz", MODEL, params, history=history, metadata=metadata, config={"lr": np.float64(0.1)})
    loaded = fn.load(tmp_path / "model.npz")
    assert loaded.history == {"train_loss": [float(loss), 0.25, 0.125], "val_loss": [0.5, 0.375], "best_epoch": 1}
    assert type(loaded.history["best_epoch"]) is int
    nan = loaded.metadata.pop("nan")
    assert nan != nan
    assert loaded.metadata == {"tags": ["a", "b"], "seed": 3, "ok": True, "half": 0.5, "zero_d": 2.5,
                               "jax_zero_d": 7, "where": os.path.join("runs", "a"), "name": "n",
                               "nested": [{"w": [0, 1, 2]}], "bf16": 1.5}
    assert type(loaded.metadata["ok"]) is bool and type(loaded.metadata["seed"]) is int
    assert loaded.config == {"lr": 0.1}


@pytest.mark.parametrize("field, value, message", [
    ("metadata", {"tags": {"a", "b"}}, r"`metadata\['tags'\]` is a set \(\{'[ab]', '[ab]'\}\), which a checkpoint's "
                                       r"JSON header cannot hold \(strings, numbers, booleans, None, and lists and "
                                       r"string-keyed dicts of them\); convert it to a sorted list"),
    ("metadata", {"tags": frozenset()}, r"`metadata\['tags'\]` is a frozenset .*convert it to a sorted list"),
    ("history", {"train_loss": [1.0, object()]}, r"`history\['train_loss'\]\[1\]` is an object \(<object object"),
    ("metadata", {"z": 1j}, r"`metadata\['z'\]` is a complex \(1j\).*convert it to one of those"),
    ("metadata", {"z": np.complex64(1)}, r"`metadata\['z'\]` is a complex64"),
    ("metadata", {"raw": b"bytes"}, r"`metadata\['raw'\]` is a bytes \(b'bytes'\)"),
    ("metadata", {"key": jax.random.key(0)}, r"`metadata\['key'\]` is a PRNGKeyArray"),
    ("config", {1: "one"}, r"`config` has the key 1 \(int\); JSON keys are strings, and JSON would turn it into "
                           r"a string silently: use string keys"),
    ("metadata", {"a": {("x", 1): 2}}, r"`metadata\['a'\]` has the key \('x', 1\) \(tuple\)"),
    ("history", [1.0, 0.5], r"`history` must be a dict, found list \[1.0, 0.5\]"),
    ("metadata", "note", r"`metadata` must be a dict, found str 'note'"),
], ids=["set", "frozenset", "object", "complex", "numpy complex", "bytes", "PRNG key", "int key", "tuple key",
        "history list", "metadata str"])
def test_values_json_cannot_hold_are_refused_by_their_place(tmp_path, params, field, value, message):
    with pytest.raises(TypeError, match=message):
        fn.save(tmp_path / "model.npz", MODEL, params, **{field: value})
    assert os.listdir(tmp_path) == []


def test_a_metadata_cycle_is_refused(tmp_path, params):
    metadata = {"runs": []}
    metadata["runs"].append(metadata)
    with pytest.raises(ValueError, match=r"`metadata\['runs'\]\[0\]` is a container that holds itself \(a cycle\)"):
        fn.save(tmp_path / "model.npz", MODEL, params, metadata=metadata)


# -- 8a: symbolic links -------------------------------------------------------------------------------------


@pytest.fixture
def two_versions(params):
    return params, jax.tree.map(lambda a: a + 1, params)


def test_saving_onto_a_link_keeps_the_link_and_writes_its_target(tmp_path, two_versions):
    old, new = two_versions
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "model.npz"
    fn.save(target, MODEL, old)
    (tmp_path / "latest.npz").symlink_to(target)
    fn.save(tmp_path / "latest.npz", MODEL, new)
    assert os.readlink(tmp_path / "latest.npz") == str(target)
    assert_equal_trees(new, fn.load(target).params)
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "store"] and os.listdir(tmp_path / "store") == ["model.npz"]


def test_saving_onto_a_chain_of_links_writes_the_final_target(tmp_path, two_versions):
    old, new = two_versions
    fn.save(tmp_path / "model.npz", MODEL, old)
    (tmp_path / "first.npz").symlink_to("model.npz")  # relative links, as `ln -s` makes them
    (tmp_path / "second.npz").symlink_to("first.npz")
    fn.save(tmp_path / "second.npz", MODEL, new)
    assert os.readlink(tmp_path / "second.npz") == "first.npz" and os.readlink(tmp_path / "first.npz") == "model.npz"
    assert_equal_trees(new, fn.load(tmp_path / "model.npz").params)
    assert sorted(os.listdir(tmp_path)) == ["first.npz", "model.npz", "second.npz"]


def test_saving_onto_a_dangling_link_creates_its_target(tmp_path, params):
    (tmp_path / "store").mkdir()
    (tmp_path / "latest.npz").symlink_to(tmp_path / "store" / "model.npz")
    fn.save(tmp_path / "latest.npz", MODEL, params)
    assert (tmp_path / "latest.npz").is_symlink()
    assert_equal_trees(params, fn.load(tmp_path / "store" / "model.npz").params)


def test_saving_onto_a_link_to_a_folder_is_refused(tmp_path, params, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "model.npz").symlink_to("folder")
    with pytest.raises(IsADirectoryError, match=r"Is a directory \(the link's target .*folder\) \(writing the "
                                                r"checkpoint\): 'model\.npz'$"):
        fn.save("model.npz", MODEL, params)
    assert (tmp_path / "model.npz").is_symlink() and os.listdir(tmp_path / "folder") == []


def test_saving_onto_a_loop_of_links_is_refused(tmp_path, params):
    (tmp_path / "a.npz").symlink_to("b.npz")
    (tmp_path / "b.npz").symlink_to("a.npz")
    with pytest.raises(OSError, match=r"Too many levels of symbolic links \(a loop\) \(writing the checkpoint\)") \
            as raised:
        fn.save(tmp_path / "a.npz", MODEL, params)
    assert raised.value.errno == errno.ELOOP and raised.value.filename == str(tmp_path / "a.npz")
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz"] and (tmp_path / "a.npz").is_symlink()


def test_saving_onto_a_fifo_is_refused(tmp_path, params):
    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(OSError, match=r"not a regular file \(a device, FIFO or socket, which saving would replace\)"):
        fn.save(tmp_path / "pipe.npz", MODEL, params)
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe.npz").st_mode) and os.listdir(tmp_path) == ["pipe.npz"]


# -- 8b: modes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o000, 0o555])
@pytest.mark.parametrize("through_link", [False, True])
def test_a_read_only_checkpoint_is_never_replaced(tmp_path, two_versions, mode, through_link):
    old, new = two_versions
    path = tmp_path / "model.npz"
    fn.save(path, MODEL, old)
    before = path.read_bytes()
    path.chmod(mode)
    if through_link:
        (tmp_path / "link.npz").symlink_to(path)
    try:  # the tests run as root, whom the OS lets write anything: the mode bits decide
        with pytest.raises(PermissionError, match=rf"the file.* is read-only \(mode {mode:#o}\); make it writable "
                                                  rf"\(chmod u\+w\) to replace it, or save under another name"):
            fn.save(tmp_path / "link.npz" if through_link else path, MODEL, new)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode and path.read_bytes() == before
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664, 0o200, 0o4755])
def test_overwriting_keeps_the_files_mode(tmp_path, two_versions, mode):
    old, new = two_versions
    path = tmp_path / "model.npz"
    fn.save(path, MODEL, old)
    path.chmod(mode)
    previous = os.umask(0o077)  # a new file would get 0600: the existing mode wins
    try:
        fn.save(path, MODEL, new)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert_equal_trees(new, fn.load(path).params)


# -- the CLI: the same rules, checked before any work ---------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["train", "--data", "xor", "--epochs", "1", "--save"],
    ["train", "--data", "xor", "--epochs", "1", "--plot"],
    ["predict", "--checkpoint", "absent.npz", "--csv", "absent.csv", "--out"],
], ids=["train --save", "train --plot", "predict --out"])
def test_the_cli_refuses_a_read_only_output_before_any_work(tmp_path, capsys, monkeypatch, command):
    from cli_helpers import run

    monkeypatch.chdir(tmp_path)
    name = {"--save": "model.npz", "--plot": "curve.png", "--out": "predictions.csv"}[command[-1]]
    (tmp_path / name).write_bytes(b"keep me")
    (tmp_path / name).chmod(0o444)
    try:
        status, out, err = run(capsys, *command, name)
    finally:
        (tmp_path / name).chmod(0o644)
    assert status == 2 and "Traceback" not in err and "epoch 1" not in out
    assert f"{command[-1]} '{name}' is a read-only file (mode 0o444); make it writable (chmod u+w) to replace it, " \
           "or give another file name" in err
    assert (tmp_path / name).read_bytes() == b"keep me"


def test_the_cli_saves_through_a_link_and_keeps_it(tmp_path, capsys, monkeypatch):
    from cli_helpers import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "latest.npz").symlink_to(os.path.join("runs", "model.npz"))  # dangling until the first save
    status, _, err = run(capsys, "train", "--data", "xor", "--epochs", "1", "--quiet", "--save", "latest.npz")
    assert status == 0, err
    assert os.readlink(tmp_path / "latest.npz") == os.path.join("runs", "model.npz")
    assert fn.load(tmp_path / "runs" / "model.npz").history["train_loss"]


@pytest.mark.parametrize("command, context", [
    (["predict", "--csv", "data.csv", "--checkpoint"], ""),
    (["train", "--data", "xor", "--epochs", "1", "--resume"], "--resume: "),
], ids=["predict", "train --resume"])
def test_the_cli_reports_a_checkpoint_it_cannot_open(tmp_path, capsys, monkeypatch, command, context):
    from cli_helpers import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    status, _, err = run(capsys, *command, os.path.join("data.csv", "model.npz"))  # a path through a file
    assert status == 2 and "Traceback" not in err
    assert f"{context}cannot read the checkpoint 'data.csv/model.npz': Not a directory" in err


def test_the_standardizer_must_be_real_floating_too(tmp_path, params):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    scaler = fn.fit_standardizer(x)
    with pytest.raises(TypeError, match=r"`standardizer\.scale` must be real floating point \(float16, bfloat16, "
                                        r"float32 or float64\), found int64"):
        fn.save(tmp_path / "model.npz", MODEL, params, standardizer=scaler._replace(scale=np.ones(3, np.int64)))
    assert os.listdir(tmp_path) == []
    bfloat16_mean = scaler._replace(mean=jnp.asarray([0.5, 1, 2], jnp.bfloat16))
    fn.save(tmp_path / "bf16.npz", MODEL, params, standardizer=bfloat16_mean)
    np.testing.assert_array_equal(fn.load(tmp_path / "bf16.npz").standardizer.mean, np.float32([0.5, 1, 2]))
    fn.save(tmp_path / "model.npz", MODEL, params, standardizer=scaler)
    header, arrays = stored(tmp_path / "model.npz")
    write(tmp_path / "int.npz", header, {**arrays, "standardizer/mean": np.zeros(3, np.int32)})
    with pytest.raises(fn.CheckpointError, match=r"'.*int\.npz' standardizer/mean is int32; the standardisation must "
                                                 r"be floating point"):
        fn.load(tmp_path / "int.npz")
    del arrays["standardizer/scale"]
    write(tmp_path / "half.npz", header, arrays)
    with pytest.raises(fn.CheckpointError, match=r"'.*half\.npz' is incomplete: missing \['standardizer/scale'\]"):
        fn.load(tmp_path / "half.npz")


def test_the_cli_refuses_a_loop_of_links_before_training(tmp_path, capsys, monkeypatch):
    from cli_helpers import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.npz").symlink_to("b.npz")
    (tmp_path / "b.npz").symlink_to("a.npz")
    status, out, err = run(capsys, "train", "--data", "xor", "--epochs", "1", "--save", "a.npz")
    assert status == 2 and "epoch 1" not in out
    assert "--save 'a.npz' is a loop of symbolic links; give a file name" in err


# -- round 2: hard links, the standardisation's values, what `path` may be --------------------------------------


@pytest.mark.parametrize("through_link", [False, True])
def test_saving_onto_a_file_with_other_hard_links_is_refused(tmp_path, two_versions, through_link):
    old, new = two_versions
    fn.save(tmp_path / "a.npz", MODEL, old)
    os.link(tmp_path / "a.npz", tmp_path / "b.npz")
    before = (tmp_path / "a.npz").read_bytes()
    if through_link:
        (tmp_path / "link.npz").symlink_to("a.npz")
    path = tmp_path / ("link.npz" if through_link else "a.npz")
    with pytest.raises(OSError, match=r"has 2 hard links; saving would replace this name only and leave the others "
                                      r"with the old checkpoint; remove the other links or save to another file") \
            as raised:
        fn.save(path, MODEL, new)
    assert raised.value.errno == errno.EMLINK and raised.value.filename == str(path)
    assert (tmp_path / "b.npz").read_bytes() == before and os.stat(tmp_path / "a.npz").st_nlink == 2
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]
    os.remove(tmp_path / "b.npz")  # the only name left: saved as usual
    fn.save(path, MODEL, new)
    assert_equal_trees(new, fn.load(tmp_path / "a.npz").params)


def test_the_cli_refuses_a_save_onto_a_hard_linked_file_before_training(tmp_path, capsys, monkeypatch, params):
    from cli_helpers import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.npz").write_bytes(b"keep me")
    os.link(tmp_path / "a.npz", tmp_path / "b.npz")
    status, out, err = run(capsys, "train", "--data", "xor", "--epochs", "1", "--save", "a.npz")
    assert status == 2 and "epoch 1" not in out and "Traceback" not in err
    assert ("--save 'a.npz': the file has 2 hard links; saving would replace this name only and leave the others "
            "with the old checkpoint; remove the other links or save to another file") in err
    assert (tmp_path / "b.npz").read_bytes() == b"keep me"
    os.mkfifo(tmp_path / "pipe.npz")  # anything else fn.save refuses is refused before training too
    status, out, err = run(capsys, "train", "--data", "xor", "--epochs", "1", "--save", "pipe.npz")
    assert status == 2 and "epoch 1" not in out
    assert "--save 'pipe.npz': not a regular file (a device, FIFO or socket, which saving would replace)" in err


BAD_STATISTICS = [("scale", 0.0, "0.0"), ("scale", -1.0, "-1.0"), ("scale", np.nan, "nan"), ("scale", np.inf, "inf"),
                  ("scale", -np.inf, "-inf"), ("mean", np.nan, "nan"), ("mean", np.inf, "inf"),
                  ("mean", -np.inf, "-inf")]


@pytest.mark.parametrize("field, value, shown", BAD_STATISTICS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_save_refuses_a_standardizer_that_cannot_standardise(tmp_path, params, field, value, shown, dtype):
    good = fn.Standardizer(np.zeros(3, dtype), np.ones(3, dtype))
    bad = good._replace(**{field: np.asarray([1, value, 2], dtype)})
    expected = "a positive finite number" if field == "scale" else "a finite number"
    with pytest.raises(ValueError, match=rf"^`standardizer\.{field}\[1\]` must be {expected}, found {shown}: "):
        fn.save(tmp_path / "model.npz", MODEL, params, standardizer=bad)
    with pytest.raises(ValueError, match=rf"^`standardizer\.{field}` must have shape \(3,\) \(one value per input "
                                         rf"feature\), found shape \(2,\)$"):
        fn.save(tmp_path / "model.npz", MODEL, params, standardizer=good._replace(**{field: np.ones(2, dtype)}))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("field, value, shown", BAD_STATISTICS)
@pytest.mark.parametrize("features", [None, ["a", "b", "c"]])
def test_load_refuses_a_standardisation_that_cannot_standardise(tmp_path, params, field, value, shown, features):
    fn.save(tmp_path / "model.npz", MODEL, params, standardizer=fn.fit_standardizer(np.eye(3, dtype=np.float32)),
            config={"features": features} if features else None)
    header, arrays = stored(tmp_path / "model.npz")
    arrays[f"standardizer/{field}"] = np.asarray([1, value, 2], arrays[f"standardizer/{field}"].dtype)
    write(tmp_path / "bad.npz", header, arrays)
    expected = "a positive finite number" if field == "scale" else "a finite number"
    named = " \\('b'\\)" if features else ""
    with pytest.raises(fn.CheckpointError, match=rf"'.*bad\.npz' standardizer/{field} of column 1{named} is {shown}; "
                                                 rf"expected {expected} \(this file was not written by fn\.save, or "
                                                 r"was altered\): predictions would be wrong or NaN$"):
        fn.load(tmp_path / "bad.npz")
    arrays[f"standardizer/{field}"] = np.ones(4)
    write(tmp_path / "wide.npz", header, arrays)
    with pytest.raises(fn.CheckpointError, match=rf"'.*wide\.npz' standardizer/{field} has shape \(4,\); expected "
                                                 r"shape \(3,\) \(one value per input feature\)"):
        fn.load(tmp_path / "wide.npz")


def test_the_cli_reports_a_checkpoint_whose_standardisation_cannot_standardise(tmp_path, capsys, monkeypatch):
    from cli_helpers import regression_csv, run

    monkeypatch.chdir(tmp_path)
    regression_csv(tmp_path / "data.csv")
    status, _, err = run(capsys, "train", "--csv", "data.csv", "--target", "y", "--epochs", "1", "--quiet",
                         "--save", "m.npz")
    assert status == 0, err
    header, arrays = stored(tmp_path / "m.npz")
    write(tmp_path / "bad.npz", header, {**arrays, "standardizer/scale": np.asarray([1.0, 0.0, 1.0])})
    status, out, err = run(capsys, "predict", "--checkpoint", "bad.npz", "--csv", "data.csv")
    assert status == 2 and out == "" and "Traceback" not in err
    assert "standardizer/scale of column 1 ('b') is 0.0; expected a positive finite number" in err


class NotAPath(os.PathLike):
    def __fspath__(self):
        return 3


@pytest.mark.parametrize("path, found", [
    (lambda tmp_path: __import__("io").BytesIO(), r"BytesIO <_io\.BytesIO object"),
    (lambda tmp_path: open(tmp_path / "open.npz", "wb"), r"BufferedWriter <_io\.BufferedWriter"),
    (lambda tmp_path: 3, "int 3"),
    (lambda tmp_path: None, "NoneType None"),
    (lambda tmp_path: ["model.npz"], r"list \['model\.npz'\]"),
    (lambda tmp_path: NotAPath(), "NotAPath"),
], ids=["BytesIO", "open file", "file descriptor", "None", "list", "PathLike to int"])
def test_save_and_load_take_file_names_only(tmp_path, params, path, found):
    given = path(tmp_path)
    try:
        with pytest.raises(TypeError, match=rf"^`path` must be a file name \(a str, bytes or os\.PathLike such as "
                                            rf"pathlib\.Path\), found {found}.*; a checkpoint is written by renaming"):
            fn.save(given, MODEL, params)
        with pytest.raises(TypeError, match=rf"^`path` must be a file name .*found {found}.*; give the name of the "
                                            r"file to read$"):
            fn.load(given)
    finally:
        if hasattr(given, "close"):
            given.close()
    assert [name for name in os.listdir(tmp_path) if name != "open.npz"] == []


def test_save_and_load_take_str_bytes_and_path_names(tmp_path, params, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ["s.npz", b"b.npz", pathlib.Path("p.npz"), pathlib.PurePosixPath("q.npz")]:
        fn.save(name, MODEL, params)
        assert_equal_trees(params, fn.load(name).params)
    assert sorted(os.listdir(tmp_path)) == ["b.npz", "p.npz", "q.npz", "s.npz"]
    with pytest.raises(OSError, match=r"\(writing the checkpoint\): '.*missing/b\.npz'$") as raised:
        fn.save(b"missing/b.npz", MODEL, params)  # errors name the path as text
    assert raised.value.filename == "missing/b.npz"

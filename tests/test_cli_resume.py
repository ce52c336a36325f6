"""Issue #10 cases 7 and 8 (CLI): --resume checks its flags and its data, and resumes early stopping exactly."""

import os
import shutil

import jax
import numpy as np
import pytest

import funcnet as fn
from cli_helpers import regression_csv, run

PATIENCE_RUN = ["--layers", "4", "--patience", "2", "--optimizer", "momentum", "--lr", "0.1", "--batch-size", "8"]


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A one-epoch CSV run saved in a sub-folder next to its data: ``(folder, checkpoint path)``."""
    folder = tmp_path_factory.mktemp("resume")
    regression_csv(folder / "d.csv")
    (folder / "runs").mkdir()
    from funcnet import cli

    status = cli.main(["train", "--csv", str(folder / "d.csv"), "--target", "y", "--layers", "4", "--epochs", "1",
                       "--save", str(folder / "runs" / "m.npz"), "--quiet", "--no-cache"])
    assert status == 0
    return folder, folder / "runs" / "m.npz"


@pytest.mark.parametrize("argv, saved", [
    (["--optimizer", "sgd"], "--optimizer adam"),
    (["--layers", "8"], "--layers 4"),
    (["--hidden", "tanh"], "--hidden relu"),
    (["--batch-size", "16"], "--batch-size 64"),
    (["--task", "multiclass"], "--task regression"),
    (["--seed", "3"], "--seed 0"),
    (["--dropout", "0.5"], "--dropout 0.0"),
    (["--l2", "0.1"], "--l2 0.0"),
    (["--validation-split", "0.5"], "--validation-split 0.2"),
    (["--test-split", "0.1"], "--test-split 0.2"),
    (["--patience", "3"], "--patience None"),
    (["--target", "a"], "--target y"),
    (["--data", "xor"], "--data csv"),
])
def test_resume_rejects_flags_that_would_change_the_run(saved_run, capsys, argv, saved):
    status, out, err = run(capsys, "train", "--resume", saved_run[1], "--epochs", "2", *argv)
    assert status == 2 and "epoch" not in out
    assert (f"--resume: {argv[0]} {argv[1]} would change the saved run, which was trained with {saved}; leave "
            f"{argv[0]} out to continue it") in err


def test_resume_applies_lr_and_accepts_repeated_settings_saying_so(saved_run, tmp_path, capsys, monkeypatch):
    folder, checkpoint = saved_run
    monkeypatch.chdir(tmp_path)  # the checkpoint's relative data path resolves against its own folder
    status, out, err = run(capsys, "train", "--resume", checkpoint, "--epochs", "2", "--lr", "0.01",
                           "--layers", "4", "--optimizer", "adam", "--save", tmp_path / "more.npz")
    assert status == 0, err
    assert (f"resuming {checkpoint} after epoch 1 of 2, with --lr 0.01 (the saved run used 0.001); data "
            f"{os.path.join(folder, 'runs', '..', 'd.csv')}") in out
    saved = fn.load(tmp_path / "more.npz")
    assert saved.config["lr"] == 0.01 and len(saved.history["train_loss"]) == 2
    assert saved.config["csv"] == os.path.relpath(folder / "d.csv", tmp_path)


@pytest.mark.parametrize("change", ["one value", "reordered rows", "fewer rows"])
def test_resume_refuses_other_or_reordered_data(saved_run, tmp_path, capsys, change):
    lines = (saved_run[0] / "d.csv").read_text().splitlines()
    if change == "one value":
        lines[5] = "0.5," + lines[5].split(",", 1)[1]
    elif change == "reordered rows":
        lines[1], lines[2] = lines[2], lines[1]
    else:
        lines = lines[:-1]
    (tmp_path / "other.csv").write_text("\n".join(lines) + "\n")
    status, out, err = run(capsys, "train", "--resume", saved_run[1], "--epochs", "2", "--csv", tmp_path / "other.csv")
    assert status == 2 and "epoch 2" not in out
    assert f"--resume: {tmp_path / 'other.csv'} is not the data {saved_run[1]} was trained on: it has " in err
    assert "resuming on other or reordered rows would re-split them and put test rows into training" in err


def test_a_moved_data_file_is_named_as_the_checkpoints_path_and_found_with_csv(saved_run, tmp_path, capsys):
    shutil.copytree(saved_run[0] / "runs", tmp_path / "runs")  # the checkpoint without its data beside it
    checkpoint = tmp_path / "runs" / "m.npz"
    status, _, err = run(capsys, "train", "--resume", checkpoint, "--epochs", "2")
    assert status == 2
    assert (f"--resume: the training data '../d.csv', the path recorded in the checkpoint {checkpoint} (relative "
            f"to its folder: {tmp_path / 'runs' / '..' / 'd.csv'}), does not exist; if the file moved, pass "
            "--csv NEW_PATH") in err
    shutil.copy(saved_run[0] / "d.csv", tmp_path / "moved.csv")
    status, out, err = run(capsys, "train", "--resume", checkpoint, "--epochs", "2", "--csv", tmp_path / "moved.csv")
    assert status == 0 and "epoch 2/2" in out, err


def test_resume_with_patience_gives_the_uninterrupted_result(tmp_path, capsys):
    regression_csv(tmp_path / "d.csv")
    common = ["train", "--csv", tmp_path / "d.csv", "--target", "y", *PATIENCE_RUN, "--quiet"]
    assert run(capsys, *common, "--epochs", "8", "--save", tmp_path / "full.npz")[0] == 0
    assert run(capsys, *common, "--epochs", "4", "--save", tmp_path / "part.npz")[0] == 0
    part = fn.load(tmp_path / "part.npz")
    assert part.history["best_epoch"] < 3 and part.last_params is not None  # the best is not the last epoch
    status, out, err = run(capsys, "train", "--resume", tmp_path / "part.npz", "--epochs", "8",
                           "--save", tmp_path / "resumed.npz")
    assert status == 0, err
    full, resumed = fn.load(tmp_path / "full.npz"), fn.load(tmp_path / "resumed.npz")
    assert len(full.history["train_loss"]) < 8  # it stopped early
    assert resumed.history == full.history
    for name in ("params", "last_params"):
        jax.tree.map(np.testing.assert_array_equal, getattr(full, name), getattr(resumed, name))
    assert f"best epoch {full.history['best_epoch'] + 1}" in out

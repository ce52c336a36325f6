"""Issue #10 cases 9 and 10 (CLI parts): meaningless flags are errors naming the flag; messages count epochs from 1."""

import pytest

import funcnet as fn
from cli_helpers import regression_csv, run


@pytest.mark.parametrize("argv, message", [
    (["--lr", "0"], "--lr must be a positive finite number, got 0.0"),
    (["--lr", "-0.1"], "--lr must be a positive finite number, got -0.1"),
    (["--lr", "nan"], "--lr must be a positive finite number, got nan"),
    (["--lr", "inf"], "--lr must be a positive finite number, got inf"),
    (["--target", "y"], "--target 'y' needs --csv FILE: the built-in datasets have their own target"),
    (["--task", "binary"], "--task binary applies to --csv data; the built-in --data xor has its own task"),
    (["--layers", "0"], "--layers: every hidden layer needs at least 1 unit, got 0 in '0'"),
    (["--layers", "4,-2"], "--layers: every hidden layer needs at least 1 unit, got -2 in '4,-2'"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--test-split", "1.5"], "--test-split must be in [0, 1), got 1.5"),
    (["--validation-split", "-0.1"], "--validation-split must be in [0, 1), got -0.1"),
    (["--patience", "0", "--validation-split", "0.5"], "--patience must be at least 1, got 0"),
])
def test_meaningless_train_flags_exit_2_naming_the_flag(capsys, argv, message):
    status, out, err = run(capsys, "train", "--data", "xor", *argv)
    assert status == 2 and message in err and "epoch" not in out


def test_split_messages_use_flag_names_not_parameter_names(tmp_path, capsys):
    regression_csv(tmp_path / "d.csv", rows=3)
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y", "--test-split", "0.9")
    assert status == 2 and "`--test-split=0.9` of 3 rows leaves 3 held out and 0 for training" in err
    assert "test_fraction" not in err


@pytest.mark.parametrize("batch", ["0", "-1"])
def test_gradcheck_batch_must_be_positive(capsys, batch):
    status, _, err = run(capsys, "gradcheck", "--data", "xor", "--batch", batch)
    assert status == 2 and f"--batch must be at least 1 (random rows to check on), got {batch}" in err


def test_usage_errors_return_2_in_process(capsys):
    status, _, err = run(capsys, "train", "--optimizer", "lbfgs")
    assert status == 2 and "invalid choice: 'lbfgs'" in err


def test_divergence_messages_count_epochs_from_one(tmp_path, capsys):
    regression_csv(tmp_path / "d.csv")
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y", "--layers", "4",
                         "--optimizer", "sgd", "--lr", "1e30", "--epochs", "3", "--save", tmp_path / "m.npz")
    assert status == 3
    assert "error: training diverged in epoch 1: " in err and "epoch 0" not in err
    assert "; the last finite state (before epoch 1 (the initial state)) is saved in" in err
    assert fn.load(tmp_path / "m.npz").history["train_loss"] == []


def test_early_stopping_reports_the_best_epoch_from_one(tmp_path, capsys):
    regression_csv(tmp_path / "d.csv")
    status, out, _ = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y", "--layers", "4",
                         "--epochs", "2", "--patience", "5", "--save", tmp_path / "m.npz", "--quiet")
    best = fn.load(tmp_path / "m.npz").history["best_epoch"]
    assert status == 0 and f"best epoch {best + 1}" in out


@pytest.mark.parametrize("command", ["train", "gradcheck", "explain"])
@pytest.mark.parametrize("value, message", [
    ("99999999999999999999999", "(JAX's 32-bit seeds: a larger or negative one would repeat another seed's run), "
                                "got 99999999999999999999999"),
    ("4294967296", "got 4294967296"),  # jax.random.key(2**32) is key(0)
    ("-1", "got -1"),
    ("1.5", "got '1.5'"),
])
def test_a_seed_outside_jaxs_32_bit_seeds_exits_2_naming_the_flag(capsys, command, value, message):
    status, out, err = run(capsys, command, "--seed", value)
    assert status == 2 and "argument --seed: expected a whole number in [0, 4294967295]" in err and message in err
    assert "Traceback" not in err and "epoch" not in out

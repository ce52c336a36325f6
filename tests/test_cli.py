"""The ``funcnet`` command.

Commands run in this process through ``funcnet.cli.main(argv)`` (the ``cli_run``
fixture in conftest), so they share compiled programs.  Real subprocesses remain
only where the point is the process: the console script and ``python -m funcnet``
(with its persistent compilation cache), Ctrl-C, and a kill.
"""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import funcnet as fn
from funcnet import cli

SCRIPT = shutil.which("funcnet", path=os.path.dirname(sys.executable)) or shutil.which("funcnet")
COMMAND = [SCRIPT] if SCRIPT else [sys.executable, "-m", "funcnet"]


def cli_env(tmp_path):
    return dict(os.environ, JAX_PLATFORMS="cpu", FUNCNET_CACHE_DIR=str(tmp_path / "cache"))


def run_console_script(tmp_path, *args, expect=0, timeout=300):
    completed = subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=timeout,
                               env=cli_env(tmp_path), cwd=tmp_path)
    assert completed.returncode == expect, completed.stdout + completed.stderr
    return completed


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")


@pytest.mark.parametrize("command", [[], ["train"], ["predict"], ["gradcheck"], ["explain"]])
def test_every_command_has_complete_help_with_an_example(cli_run, tmp_path, command):
    out = cli_run(*command, "--help").stdout
    assert "example" in out and "funcnet " in out
    if command == ["train"]:
        for option in ["--data", "--csv", "--target", "--layers", "--hidden", "--task", "--optimizer", "--lr",
                       "--epochs", "--batch-size", "--validation-split", "--grad", "--seed", "--save",
                       "--plot", "--checkpoint-every", "--resume", "--patience", "--quiet", "--jsonl",
                       "--dropout", "--l2", "--plot-stats", "--track-stats", "--plot-boundary"]:
            assert option in out, option


@pytest.fixture(scope="module")
def regression_runs(tmp_path_factory):
    """Two ``train --data regression`` runs that several tests read, trained once for the module.

    ``full.npz``: 4 epochs with a learning curve (``curve.png``), its printed output in
    ``output``; ``part.npz``: the same run stopped after 2 epochs (``--quiet``).  Run as
    ``cli_run`` runs commands: in-process, the persistent compilation cache left off.
    """
    from funcnet.cli import train_command

    folder = tmp_path_factory.mktemp("regression_runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setattr(train_command, "enable_compilation_cache", lambda: None)
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            assert cli.main(["train", "--data", "regression", "--epochs", "4", "--save", "full.npz",
                             "--plot", "curve.png"]) == 0
        assert cli.main(["train", "--data", "regression", "--epochs", "2", "--save", "part.npz", "--quiet"]) == 0
    return folder, output.getvalue()


def test_train_regression_saves_plots_and_reports_test_error(regression_runs):
    folder, out = regression_runs
    assert len([line for line in out.splitlines() if line.startswith("epoch ")]) == 4
    assert "ETA" in out and "test MSE" in out
    saved = fn.load(folder / "full.npz")
    assert saved.model.sizes == (5, 10, 10, 1) and len(saved.history["train_loss"]) == 4
    png = (folder / "curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_jsonl_mode_prints_one_parsable_record_per_epoch(cli_run, tmp_path):
    out = cli_run("train", "--data", "regression", "--epochs", "2", "--jsonl", "--grad", "autodiff").stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert [r.get("epoch") for r in records[:2]] == [1, 2]
    done = records[-1]
    assert done["event"] == "done" and done["val_loss"] == records[1]["val_loss"]
    # the final params on 20,000 held-out rows score like they do on the validation rows
    assert abs(done["test_loss"] - done["val_loss"]) < 0.1 * done["val_loss"]


def test_quiet_mode_prints_only_the_summary(cli_run, tmp_path):
    out = cli_run("train", "--data", "xor", "--quiet").stdout
    assert out.startswith("done: 1500 epochs")
    predictions = json.loads(out.splitlines()[-1].split(": ", 1)[1])
    assert [p > 0.5 for p in predictions] == [False, True, True, False]


def test_csv_training_and_prediction(cli_run, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    label = (x[:, 0] + x[:, 1] > 0).astype(int)
    write_csv(tmp_path / "train.csv", ["u", "v", "w", "label"], np.column_stack([x, label]).tolist())
    out = cli_run("train", "--csv", "train.csv", "--target", "label", "--epochs", "30",
              "--lr", "1e-2", "--save", "clf.npz").stdout
    assert "logloss" in out and "test accuracy" in out
    accuracy = float(out.split("test accuracy ")[1].split()[0].rstrip(","))
    assert accuracy > 0.85
    saved = fn.load(tmp_path / "clf.npz")
    assert saved.model.output_activation == "sigmoid" and saved.config["features"] == ["u", "v", "w"]
    # columns in another order, target absent: prediction finds features by name
    write_csv(tmp_path / "new.csv", ["w", "v", "u"], [[0, 2, 2], [0, -2, -2]])
    cli_run("predict", "--checkpoint", "clf.npz", "--csv", "new.csv", "--out", "pred.csv")
    lines = (tmp_path / "pred.csv").read_text().splitlines()
    assert lines[0] == "label,probability" and [line.split(",")[0] for line in lines[1:]] == ["1", "0"]


def test_predictions_apply_the_saved_standardisation_bit_for_bit(cli_run, tmp_path, regression_runs):
    checkpoint = regression_runs[0] / "part.npz"
    rows = [[0.5, 1.0, -1.0, 2.0, 1.0], [-1.0, 0.0, 0.3, 1.0, 0.0]]
    write_csv(tmp_path / "x.csv", ["a", "b", "c", "d", "e"], rows)
    out = cli_run("predict", "--checkpoint", checkpoint, "--csv", "x.csv").stdout.splitlines()
    saved = fn.load(checkpoint)
    expected = fn.predict(saved.model, saved.params, saved.standardizer.apply(np.array(rows, np.float32)))
    assert out[0] == "prediction"
    np.testing.assert_array_equal([float(v) for v in out[1:]], np.asarray(expected)[:, 0])


def test_gradcheck_on_a_built_in_model(cli_run, tmp_path):
    out = cli_run("gradcheck", "--data", "xor").stdout
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 4 and all(float(row[-3]) < 1e-12 for row in rows)
    assert "manual-autodiff" in out and "largest manual vs autodiff difference" in out


@pytest.mark.parametrize("difference, status", [(1e-8, 0), (2e-8, 1), (float("nan"), 1)])
def test_gradcheck_fails_when_manual_and_autodiff_differ_or_their_difference_is_nan(cli_run, monkeypatch,
                                                                                     difference, status):
    """The exit status follows ``finite_differences.passes`` at rtol 1e-8 on every leaf; a NaN difference
    (a derivative that is NaN somewhere) fails and is printed as the largest, where max() would have dropped it."""
    from funcnet import gradcheck

    real = gradcheck.compare_grad_trees

    def compare_grad_trees(first, second):
        rows = real(first, second)
        return [rows[0]._replace(max_abs=difference, max_rel=difference), *rows[1:]]

    monkeypatch.setattr(gradcheck, "compare_grad_trees", compare_grad_trees)
    out = cli_run("gradcheck", "--data", "xor", expect=status).stdout
    assert f"largest manual vs autodiff difference: {difference:.2e}" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--csv", "missing.csv", "--target", "y"], "cannot read missing.csv"),
        (["train", "--csv", "bad.csv", "--target", "y"], "line 3, column 'x': 'abc' is not a number"),
        (["train", "--csv", "bad.csv"], "--csv needs --target COLUMN"),
        (["train", "--csv", "good.csv", "--target", "z"], "--target 'z' is not a column of good.csv; columns: x, y"),
        (["train", "--data", "xor", "--layers", "3,a"], "--layers must be comma-separated integers"),
        (["train", "--data", "xor", "--checkpoint-every", "2"], "--checkpoint-every N needs N >= 1 and --save PATH"),
        (["train", "--data", "xor", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["train", "--resume", "nothing.npz"], "--resume: "),
        (["predict", "--checkpoint", "junk.npz", "--csv", "good.csv"], "is not a funcnet checkpoint"),
        (["train", "--data", "xor", "--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["train", "--data", "xor", "--patience", "3"], "--patience needs a validation split"),
    ],
)
def test_bad_input_exits_2_with_a_message(cli_run, tmp_path, args, message):
    (tmp_path / "bad.csv").write_text("x,y\n1,2\nabc,3\n")
    (tmp_path / "good.csv").write_text("x,y\n1,2\n3,4\n5,6\n7,8\n9,10\n")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    completed = cli_run(*args, expect=2)
    assert message in completed.stderr, completed.stderr


def test_predict_names_missing_feature_columns(cli_run, tmp_path, regression_runs):
    write_csv(tmp_path / "x.csv", ["a", "b"], [[1, 2]])
    completed = cli_run("predict", "--checkpoint", regression_runs[0] / "part.npz", "--csv", "x.csv", expect=2)
    assert "lacks the feature columns ['c', 'd', 'e']" in completed.stderr


def test_divergence_exits_3_and_saves_the_last_finite_state(cli_run, tmp_path):
    completed = cli_run("train", "--data", "regression", "--optimizer", "sgd", "--lr", "1e4",
                    "--epochs", "5", "--save", "diverged.npz", expect=3)
    assert "training diverged" in completed.stderr and "learning rate" in completed.stderr
    saved = fn.load(tmp_path / "diverged.npz")
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(saved.params))


def test_resume_gives_the_same_result_as_an_uninterrupted_run(cli_run, tmp_path, regression_runs):
    folder = regression_runs[0]
    out = cli_run("train", "--resume", folder / "part.npz", "--epochs", "4", "--save", "resumed.npz").stdout
    assert "epoch 3/4" in out and "epoch 1/4" not in out
    assert len(fn.load(folder / "part.npz").history["train_loss"]) == 2  # the input is left as it was
    full, resumed = fn.load(folder / "full.npz"), fn.load(tmp_path / "resumed.npz")
    assert resumed.history["train_loss"] == full.history["train_loss"]
    jax.tree.map(np.testing.assert_array_equal, full.params, resumed.params)


def start_training(tmp_path, *extra):
    """A regression run with many quick epochs, stdout read line by line.

    It is started through a one-line launcher that resets SIGINT to its
    default before exec: a test runner started in the background by a
    non-interactive shell inherits SIGINT *ignored*.  (Ctrl-C itself is
    tested in test_cli_signals.py.)
    """
    return subprocess.Popen([sys.executable, "-c", DEFAULT_SIGINT_EXEC, *COMMAND, "train", "--data", "regression",
                             "--layers", "8", "--epochs", "100000", "--save", "run.npz", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(tmp_path),
                            cwd=tmp_path)


DEFAULT_SIGINT_EXEC = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                       "os.execv(sys.argv[1], sys.argv[1:])")


def wait_for_line(process, prefix, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return line
        assert line or process.poll() is None, "process ended early"
    raise AssertionError(f"no line starting with {prefix!r}")


def test_periodic_checkpoints_survive_a_kill(tmp_path):
    process = start_training(tmp_path, "--checkpoint-every", "2")
    try:
        wait_for_line(process, "epoch 3/100000")
        process.kill()  # SIGKILL at any moment, perhaps in the middle of writing a checkpoint
        process.communicate(timeout=60)
    finally:
        process.kill()
    saved = fn.load(tmp_path / "run.npz")  # the last complete checkpoint: never a torn file
    epochs = len(saved.history["train_loss"])
    assert epochs >= 2 and epochs % 2 == 0


def test_early_stopping_reports_the_best_epoch_and_saves_its_params(cli_run, tmp_path):
    out = cli_run("train", "--data", "regression", "--epochs", "4", "--patience", "2", "--save", "m.npz").stdout
    saved = fn.load(tmp_path / "m.npz")
    best = int(np.argmin(saved.history["val_loss"]))
    assert saved.history["best_epoch"] == best and f"best epoch {best + 1}" in out


def test_early_stopping_summarises_the_kept_epoch_not_the_last_one(cli_run, tmp_path):
    """The summary's losses and its test loss all belong to the params kept: the best epoch's."""
    out = cli_run("train", "--data", "regression", "--epochs", "12", "--patience", "2", "--lr", "0.05", "--save",
                  "m.npz").stdout
    saved = fn.load(tmp_path / "m.npz")
    best, history = saved.history["best_epoch"], saved.history
    assert best < len(history["train_loss"]) - 1  # it stopped early: the last epoch is not the kept one
    done = out.splitlines()[-2]
    assert done.startswith(f"done: {len(history['train_loss'])} epochs, kept best epoch {best + 1}: train MSE "
                           f"{history['train_loss'][best]:.4f}, validation MSE {history['val_loss'][best]:.4f}, "
                           "test MSE "), done


def test_console_script_and_python_dash_m_run_with_the_persistent_compilation_cache(tmp_path):
    out = run_console_script(tmp_path, "train", "--data", "xor", "--epochs", "2", "--quiet").stdout
    assert out.startswith("done: 2 epochs")
    assert any(files for _, _, files in os.walk(tmp_path / "cache")), "no compiled program was cached"
    # python -m funcnet hands its arguments to the same main and exits with its status (here: bad input)
    completed = subprocess.run([sys.executable, "-m", "funcnet", "train", "--data", "xor", "--epochs", "0"],
                               capture_output=True, text=True, env=cli_env(tmp_path), timeout=120)
    assert completed.returncode == cli.EXIT_BAD_INPUT and completed.stdout == ""
    assert completed.stderr == "funcnet train: error: --epochs must be at least 1, got 0\n"


def test_task_is_inferred_from_the_target_column():
    from funcnet.cli.csv_data import Target, choose_task
    from funcnet.cli.errors import UserError

    def infer_task(values):
        lines = list(range(2, len(values) + 2))
        return choose_task(Target("y", values, [str(v) for v in values.tolist()], lines, "d.csv")).task

    assert infer_task(np.array([0.0, 1.0, 1.0])) == "binary"
    assert infer_task(np.array([0.5, 2.0, 1.0])) == "regression"
    for values in (np.array([0.0, 2.0, 1.0, 2.0]), np.arange(100.0)):  # class ids or counts? --task decides
        with pytest.raises(UserError, match="--task auto cannot tell whether target 'y' holds class ids"):
            infer_task(values)


def test_train_with_per_layer_activations_dropout_and_l2_saves_that_model(tmp_path, capsys):
    path = tmp_path / "layered.npz"
    status = cli.main(["train", "--data", "xor", "--layers", "4,4", "--hidden", "tanh,gelu", "--dropout", "0.1",
                       "--l2", "1e-3", "--epochs", "3", "--quiet", "--no-cache", "--save", str(path)])
    assert status == 0
    model = fn.load(path).model
    assert model.hidden_activations == ("tanh", "gelu") and model.l2 == 1e-3
    assert [layer.name for layer in model.layers] == ["dense", "dropout", "dense", "dropout", "dense"]
    assert cli.main(["gradcheck", "--checkpoint", str(path)]) == 0
    assert "(finite differences at 37 of 37 coordinates)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--hidden", "swish"], "--hidden: unknown activation 'swish'; expected one of identity, sigmoid"),
    (["--layers", "3,3", "--hidden", "tanh,relu,gelu"], "--hidden has 3 activations but --layers has 2 hidden layers"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1), got 1.5"),
    (["--l2", "-1"], "--l2 must be a non-negative number, got -1.0"),
])
def test_bad_layer_flags_exit_2_naming_the_flag(argv, message, capsys):
    assert cli.main(["train", "--data", "xor", "--epochs", "1", "--no-cache", *argv]) == cli.EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_ctrl_c_while_the_console_script_imports_jax_exits_130_with_one_line(monkeypatch, capsys):
    import funcnet_console

    class CtrlCDuringImport:  # a Ctrl-C that lands while `funcnet.cli` (and JAX) are being imported
        def find_spec(self, name, path=None, target=None):
            if name == "funcnet.cli":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "funcnet.cli")
    monkeypatch.setattr(sys, "meta_path", [CtrlCDuringImport(), *sys.meta_path])
    monkeypatch.setattr(sys, "argv", ["funcnet", "train", "--data", "xor"])
    assert funcnet_console.main() == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "funcnet train: interrupted by Ctrl-C (SIGINT) during start-up; nothing saved\n"

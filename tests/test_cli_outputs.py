"""Issue #10 case 1: every output path is checked before training, and a failed final write loses nothing."""

import errno
import os
import sys

import numpy as np
import pytest

import funcnet as fn
from cli_helpers import labelled_csv, run


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder no file can be created in: read-only for a normal user; /sys (read-only even for root) as root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except OSError:
        yield str(folder)
    else:  # root ignores permissions; sysfs refuses new files to everyone
        (folder / "probe").unlink()
        yield "/sys"
    folder.chmod(0o755)


OUTPUT_FLAGS = [
    (["--save"], "model.npz"),
    (["--plot"], "curve.png"),
    (["--plot-stats"], "stats.png"),
    (["--plot-boundary"], "boundary.png"),
    (["--checkpoint-every", "1", "--save"], "model.npz"),
]


@pytest.mark.parametrize("flag, name", OUTPUT_FLAGS, ids=[flags[-1] for flags, _ in OUTPUT_FLAGS])
@pytest.mark.parametrize("problem", ["missing folder", "existing folder", "unwritable folder"])
def test_train_checks_every_output_path_before_training(tmp_path, capsys, unwritable_folder, flag, name, problem):
    path, message = {
        "missing folder": (tmp_path / "nowhere" / name, "nowhere does not exist; create it first"),
        "existing folder": (tmp_path, "is a folder; give a file name in it"),
        "unwritable folder": (os.path.join(unwritable_folder, name), "cannot write in the folder"),
    }[problem]
    status, out, err = run(capsys, "train", "--data", "xor", "--epochs", "2", *flag, path)
    assert status == 2
    assert f"funcnet train: error: {flag[-1]} " in err and message in err
    assert "epoch 1" not in out and "Traceback" not in err  # nothing trained


@pytest.mark.parametrize("flag", ["--plot", "--plot-stats", "--plot-boundary"])
def test_plot_paths_must_end_in_an_image_suffix(tmp_path, capsys, flag):  # the rule of funcnet.plotting.image_format
    status, _, err = run(capsys, "train", "--data", "xor", flag, tmp_path / "curve.txt")
    assert status == 2
    assert (f"{flag} writes an image in the format its file name's suffix names, so the name must end in one of "
            ".png, .jpg, .jpeg, .pdf, .svg, .eps, .ps, .tif, .tiff, .webp, .gif; got") in err


@pytest.mark.parametrize("flag", ["--plot", "--plot-stats", "--plot-boundary"])
def test_plots_without_matplotlib_are_refused_before_training(tmp_path, capsys, monkeypatch, flag):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    status, out, err = run(capsys, "train", "--data", "xor", flag, tmp_path / "curve.png")
    assert status == 2
    assert f"{flag} needs matplotlib, which is not installed: pip install 'funcnet[plot]'" in err
    assert "epoch" not in out


@pytest.mark.parametrize("problem, message", [
    ("missing folder", "nowhere does not exist"),
    ("existing folder", "is a folder; give a file name in it, e.g."),
])
def test_predict_checks_out_before_reading_anything(tmp_path, capsys, problem, message):
    out_path = tmp_path / "nowhere" / "p.csv" if problem == "missing folder" else tmp_path
    status, _, err = run(capsys, "predict", "--checkpoint", tmp_path / "absent.npz", "--csv", tmp_path / "x.csv",
                         "--out", out_path)
    assert status == 2 and "funcnet predict: error: --out " in err and message in err


def test_a_failed_final_save_prints_the_summary_first_and_saves_to_a_fallback(tmp_path, capsys, monkeypatch):
    labelled_csv(tmp_path / "d.csv", [0, 1])
    target = str(tmp_path / "model.npz")
    real_save = fn.save

    def disk_full_for_target(path, *args, **kwargs):
        if str(path) == target:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), target)
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(fn, "save", disk_full_for_target)
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "label", "--layers", "4",
                           "--epochs", "2", "--save", target)
    assert status == 2
    assert out.index("done: 2 epochs") >= 0 and "saved checkpoint" not in out
    rescued = os.path.join(str(tmp_path), f"funcnet-rescued-{os.getpid()}-model.npz")
    assert (f"error: could not write the checkpoint to {target} (No space left on device); saved it to "
            f"{rescued} instead") in err
    saved = fn.load(rescued)
    assert len(saved.history["train_loss"]) == 2 and saved.config["classes"] == [0, 1]
    assert np.all(np.isfinite(np.asarray(saved.params[0]["W"])))


@pytest.mark.parametrize("case", ["save = plot", "plot = plot-stats", "save = csv", "save = csv (hard link)",
                                  "plot = resume", "save = the data --resume records", "predict out = checkpoint",
                                  "predict out = csv"])
def test_an_output_that_would_replace_another_output_or_an_input_is_refused_before_any_work(tmp_path, capsys, case):
    labelled_csv(tmp_path / "d.csv", [0, 1])
    if case == "save = csv (hard link)":  # only here: --save refuses any file with other hard links
        os.link(tmp_path / "d.csv", tmp_path / "linked.csv")
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "label", "--layers", "4",
                         "--epochs", "1", "--save", tmp_path / "m.npz")
    assert status == 0
    before = {name: (tmp_path / name).read_bytes() for name in ("d.csv", "m.npz")}
    train = ["train", "--csv", tmp_path / "d.csv", "--target", "label", "--layers", "4", "--epochs", "1"]
    command, message = {
        "save = plot": ([*train, "--save", tmp_path / "x.png", "--plot", tmp_path / "x.png"],
                        f"--plot {str(tmp_path / 'x.png')!r} is the same file as --save"),
        "plot = plot-stats": ([*train, "--track-stats", "--plot", tmp_path / "p.png", "--plot-stats",
                               tmp_path / "." / "p.png"], "--plot-stats "),
        "save = csv": ([*train, "--save", tmp_path / "d.csv"],
                       f"--save {str(tmp_path / 'd.csv')!r} is the same file as the input --csv"),
        "save = csv (hard link)": ([*train, "--save", tmp_path / "linked.csv"], "is the same file as the input --csv"),
        "plot = resume": (["train", "--resume", tmp_path / "m.npz", "--epochs", "2", "--plot", tmp_path / "m.npz"],
                          "is the same file as the input --resume"),
        "save = the data --resume records": (["train", "--resume", tmp_path / "m.npz", "--epochs", "2", "--save",
                                              tmp_path / "d.csv"],
                                             "is the same file as the input (the training data that --resume records)"),
        "predict out = checkpoint": (["predict", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "d.csv",
                                      "--out", tmp_path / "m.npz"], "--out "),
        "predict out = csv": (["predict", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "d.csv",
                               "--out", tmp_path / "d.csv"], "is the same file as the input --csv"),
    }[case]
    status, out, err = run(capsys, *command)
    assert status == 2 and message in err, err
    assert ("each output needs its own file name (the later write would replace the earlier one)" in err
            or "writing it would destroy that input. Give --" in err)
    assert "epoch 1" not in out and "Traceback" not in err
    assert {name: (tmp_path / name).read_bytes() for name in before} == before  # nothing was written over


def test_a_resumed_run_may_save_over_its_own_checkpoint(tmp_path, capsys):
    labelled_csv(tmp_path / "d.csv", [0, 1])
    train = ["train", "--csv", tmp_path / "d.csv", "--target", "label", "--layers", "4", "--save", tmp_path / "m.npz"]
    assert run(capsys, *train, "--epochs", "1")[0] == 0
    assert run(capsys, "train", "--resume", tmp_path / "m.npz", "--epochs", "2", "--save", tmp_path / "m.npz")[0] == 0
    assert len(fn.load(tmp_path / "m.npz").history["train_loss"]) == 2


def test_a_test_value_that_standardises_beyond_float32_is_refused_before_training_by_line_and_column(tmp_path,
                                                                                                       capsys):
    rng = np.random.default_rng(0)
    tiny, b = rng.normal(size=50) * 1e-30, rng.normal(size=50)
    tiny[7] = 1e12  # a test row (seed 0): the training rows' spread of column a is ~1e-30
    lines = ["a,b,target"] + [f"{float(tiny[i])!r},{float(b[i])!r},{float(2 * b[i])!r}" for i in range(50)]
    (tmp_path / "far.csv").write_text("\n".join(lines) + "\n")
    status, out, err = run(capsys, "train", "--csv", tmp_path / "far.csv", "--target", "target", "--epochs", "5",
                           "--save", tmp_path / "far.npz")
    assert status == 2 and "epoch 1" not in out
    assert (f"{tmp_path / 'far.csv'}, line 9, column 'a': 1000000000000.0 standardises to " in err
            and "beyond float32's ±3.403e+38; the column's values span too many orders of magnitude" in err), err


def test_a_failure_in_the_final_summary_still_saves_the_finished_run(tmp_path, capsys, monkeypatch):
    labelled_csv(tmp_path / "d.csv", [0, 1])

    def failing_evaluate(*args, **kwargs):
        raise ValueError("evaluation failed")

    monkeypatch.setattr(fn, "evaluate", failing_evaluate)
    status, out, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "label", "--layers", "4",
                           "--epochs", "3", "--test-split", "0.25", "--save", tmp_path / "m.npz")
    assert status == 2 and "evaluation failed" in err
    assert f"saved checkpoint to {tmp_path / 'm.npz'} (before the error below)" in err
    assert len(fn.load(tmp_path / "m.npz").history["train_loss"]) == 3


def test_predict_names_the_line_of_a_value_that_standardises_beyond_float32(tmp_path, capsys):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 40)) * 0.01
    rows = "".join(f"{float(a[i])!r},{float(b[i])!r},{float(a[i] - b[i])!r}\n" for i in range(40))
    (tmp_path / "d.csv").write_text("a,b,y\n" + rows)
    assert run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y", "--layers", "4", "--epochs", "1",
               "--save", tmp_path / "m.npz")[0] == 0
    (tmp_path / "new.csv").write_text("a,b\n0.0,0.0\n3e+38,0.0\n")
    status, out, err = run(capsys, "predict", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "new.csv")
    assert status == 2 and out == ""
    assert f"{tmp_path / 'new.csv'}, line 3, column 'a': 3e+38 standardises to " in err, err

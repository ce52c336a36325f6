"""Issue #10 case 4: any class labels work, the task rule is stated and printed, and predict writes the labels."""

import json

import pytest

import funcnet as fn
from cli_helpers import feature_rows, labelled_csv, regression_csv, run, write_csv

CODINGS = [
    # labels, --task, task chosen, what the task line gives as the reason
    ([1, 2], None, "binary", "target 'label' has exactly two distinct values"),
    ([-1, 1], None, "binary", "target 'label' has exactly two distinct values"),
    ([0.5, 7], None, "binary", "target 'label' has exactly two distinct values"),
    (["no", "yes"], None, "binary", "target 'label' holds text labels, 2 distinct"),
    (["cat", "dog", "emu"], None, "multiclass", "target 'label' holds text labels, 3 distinct"),
    ([1, 2, 3], "multiclass", "multiclass", "--task multiclass"),
    ([0, 2, 5], "multiclass", "multiclass", "--task multiclass"),
]


@pytest.mark.parametrize("labels, task, chosen, reason", CODINGS, ids=[str(c[0]) for c in CODINGS])
def test_any_class_labels_train_and_predict_in_their_own_coding(tmp_path, capsys, labels, task, chosen, reason):
    labelled_csv(tmp_path / "d.csv", labels)
    status, out, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "label", "--layers", "4",
                           "--epochs", "1", "--save", tmp_path / "m.npz", *(["--task", task] if task else []))
    assert status == 0, err
    shown = ", ".join(map(str, labels))
    assert (f"task: {chosen} ({reason}; classes {shown} are learned as 0..{len(labels) - 1}; --task overrides)"
            in out.splitlines())
    saved = fn.load(tmp_path / "m.npz")
    assert saved.config["classes"] == labels and saved.config["task"] == chosen
    assert saved.model.n_out == (1 if chosen == "binary" else len(labels))  # no empty classes
    status, predictions, _ = run(capsys, "predict", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "d.csv")
    lines = predictions.splitlines()
    assert lines[0] == ("label,probability" if chosen == "binary" else "label," + ",".join(f"p_{x}" for x in labels))
    assert len(lines) == 41 and {line.split(",")[0] for line in lines[1:]} <= set(map(str, labels))


@pytest.mark.parametrize("values, described", [
    ([0, 1, 2, 3, 4, 5, 6], "7 distinct values are whole numbers (0, 1, 2, 3, 4, 5, ...)"),  # a count?
    (list(range(60)), "60 distinct values are whole numbers"),  # more than 50 classes: no silent regression
    ([3, 1, 4], "3 distinct values are whole numbers (1, 3, 4)"),
])
def test_whole_number_targets_ask_for_a_task_instead_of_guessing(tmp_path, capsys, values, described):
    labelled_csv(tmp_path / "d.csv", values, rows=60)
    status, out, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "label")
    assert status == 2 and "epoch" not in out
    assert "--task auto cannot tell whether target 'label' holds class ids or numbers to predict" in err
    assert described in err
    assert "pass --task multiclass to treat them as classes or --task regression" in err


@pytest.mark.parametrize("labels, task, message", [
    ([0.5, 1.5, 2.5], "multiclass", "--task multiclass needs class labels (whole numbers or text), but target "
                                    "'label' has"),
    ([1, 2, 3], "binary", "--task binary needs exactly two distinct values in target 'label'; found 3: 1, 2, 3"),
    (["cat", "dog"], "regression", "--task regression needs a numeric target, but target 'label' has"),
    ([4], None, "target 'label' has a single value 4 in every row; a classifier needs two classes"),
    ([5, 2 ** 53, 2 ** 53 + 1], "multiclass", "target 'label' has whole numbers of 2^53 or more (e.g. "),
    ([2 ** 53, 2 ** 53 + 1], None, "which float64 cannot tell apart as class labels; pass --task regression"),
])
def test_a_task_that_does_not_fit_the_target_is_an_error(tmp_path, capsys, labels, task, message):
    labelled_csv(tmp_path / "d.csv", labels)
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "label",
                         *(["--task", task] if task else []))
    assert status == 2 and message in err, err


def test_non_whole_numbers_are_a_regression_and_task_overrides_two_values(tmp_path, capsys):
    regression_csv(tmp_path / "r.csv")
    status, out, _ = run(capsys, "train", "--csv", tmp_path / "r.csv", "--target", "y", "--layers", "4",
                         "--epochs", "1", "--quiet")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 2 and lines[1].startswith("done: 1 epochs")  # --quiet: task + summary
    assert lines[0].startswith("task: regression (target 'y' has values that are not whole numbers (e.g. ")
    assert "on line 2) ; --task overrides)".replace(" ;", ";") in lines[0]
    labelled_csv(tmp_path / "d.csv", [0, 1])
    status, out, _ = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "label", "--layers", "4",
                         "--epochs", "1", "--task", "regression", "--jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and records[0]["event"] == "task"
    assert records[0]["task"] == "regression" and records[0]["reason"] == "--task regression"
    assert records[0]["classes"] == [] and records[-1]["event"] == "done"


def test_binary_probabilities_are_for_the_second_label_in_sorted_order(tmp_path, capsys):
    write_csv(tmp_path / "d.csv", ["a", "animal"], [[-2 + i / 10, "dog" if i >= 20 else "cat"] for i in range(40)])
    assert run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "animal", "--layers", "4", "--epochs", "1",
               "--save", tmp_path / "m.npz", "--lr", "0.05")[0] == 0
    write_csv(tmp_path / "new.csv", ["a"], [[-3], [3]])
    _, out, _ = run(capsys, "predict", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "new.csv")
    rows = [line.split(",") for line in out.splitlines()[1:]]
    assert [row[0] for row in rows] == ["cat" if float(row[1]) <= 0.5 else "dog" for row in rows]


def test_explain_checks_target_labels_against_the_saved_classes(tmp_path, capsys):
    labelled_csv(tmp_path / "d.csv", ["cat", "dog", "emu"])
    assert run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "label", "--layers", "4", "--epochs", "1",
               "--save", tmp_path / "m.npz")[0] == 0
    (tmp_path / "other.csv").write_text("a,b,c,label\n1,2,3,fox\n")
    status, _, err = run(capsys, "explain", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "other.csv")
    assert status == 2 and "line 2, column 'label': 'fox' is not one of the model's classes (cat, dog, emu)" in err


# --- issue 21 round 2: a numeric target with a few cells that are not numbers is not 60 classes ---

@pytest.mark.parametrize("cell, why", [
    ("NA", " (a missing value, as R and spreadsheets write it: remove the row or fill it in)"),
    ("N/A", " (a missing value, as R and spreadsheets write it: remove the row or fill it in)"),
    ("1.2.3", ""),
    ('-4.3"', " (a stray quote?)"),
    ('"1,5"', " (a decimal comma? write 1.5, not 1,5)"),  # a quoted cell: the csv module unquotes it
    ("abc", ""),
])
@pytest.mark.parametrize("task", [None, "regression"])
def test_a_numeric_target_with_a_few_non_numbers_is_refused_by_line(tmp_path, capsys, cell, why, task):
    rows = [[*row, round(0.37 * i - 3, 4)] for i, row in enumerate(feature_rows(40).tolist())]
    rows[20][3] = cell  # line 22
    (tmp_path / "d.csv").write_text("a,b,c,y\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    status, out, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y",
                           *(["--task", task] if task else []))
    shown = cell.replace('"1,5"', "1,5")
    assert status == 2 and "epoch" not in out and "Traceback" not in err
    assert (f"{tmp_path / 'd.csv'}, line 22, column 'y': {shown!r} is not a number{why}; expected a number, as 39 of "
            "the 40 target values are: fix it, or pass --task multiclass (or binary) if the values are class "
            "labels") in err, err


def test_mixed_numbers_and_text_are_labels_when_the_task_says_so(tmp_path, capsys):
    labelled_csv(tmp_path / "d.csv", ["0", "1", "NA"])
    status, out, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "label", "--layers", "4",
                           "--epochs", "1", "--task", "multiclass", "--quiet")
    assert status == 0, err
    assert "classes 0, 1, NA are learned as 0..2" in out
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "label")
    assert status == 2 and "'NA' is not a number (a missing value" in err

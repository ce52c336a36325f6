"""Issue #10 cases 5 and 6: CSV input is read strictly, and standardisation is float64, the same at predict time."""

import numpy as np
import pytest

import funcnet as fn
from cli_helpers import feature_rows, regression_csv, run, write_csv
from funcnet.cli.csv_data import read_table, standardize_features


def test_a_utf8_byte_order_mark_is_stripped(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b,y\r\n1,2,3\r\n4,5,6\r\n")
    table = read_table(str(path))
    assert table.names == ["a", "b", "y"] and table.rows == [["1", "2", "3"], ["4", "5", "6"]]


def test_non_utf8_bytes_are_reported_by_file_and_line(tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,b,y\n1,2,3\n4,caf\xe9,6\n".encode("latin-1"))
    status, _, err = run(capsys, "train", "--csv", path, "--target", "y")
    assert status == 2
    assert f"{path}, line 3: byte 0xe9 is not UTF-8; save the file as UTF-8" in err


@pytest.mark.parametrize("header, message", [
    (["a", "y", "y"], "line 1: columns 2 and 3 are both named 'y'; column names must be distinct"),
    (["a", "a", "y"], "line 1: columns 1 and 2 are both named 'a'; column names must be distinct"),
])
def test_duplicate_column_names_are_an_error(tmp_path, capsys, header, message):
    write_csv(tmp_path / "d.csv", header, [[1, 2, 3], [4, 5, 6]])
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y")
    assert status == 2 and message in err


@pytest.mark.parametrize("cell, column, message", [
    ("", "b", "missing value; every feature needs a number"),
    ("nan", "b", "'nan' is NaN (a missing value); remove the row or fill it in"),
    ("inf", "a", "'inf' is +inf; every feature must be finite"),
    ("+inf", "c", "'+inf' is +inf; every feature must be finite"),
    ("-inf", "a", "'-inf' is -inf; every feature must be finite"),
    ("1e39", "c", "1e39 is too large for float32 (largest magnitude 3.403e+38); rescale the column"),
    ("-5e38", "b", "-5e38 is too large for float32"),
    ("abc", "a", "'abc' is not a number; feature columns must be numeric"),
])
def test_the_first_bad_feature_value_is_reported_by_line_and_column(tmp_path, capsys, cell, column, message):
    rows = feature_rows(40).tolist()
    rows[6][["a", "b", "c"].index(column)] = cell   # line 8 (header is line 1)
    rows[20][0] = "nan"                               # a later bad value is not the one reported
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "y"], [[*row, 1.5 * i] for i, row in enumerate(rows)])
    status, out, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y")
    assert status == 2 and "epoch" not in out
    assert f"{tmp_path / 'd.csv'}, line 8, column {column!r}: {message}" in err


@pytest.mark.parametrize("cell, message", [
    ("", "line 5, column 'y': missing target value"),
    ("nan", "line 5, column 'y': 'nan' is NaN (a missing value)"),
    ("inf", "line 5, column 'y': 'inf' is +inf; every target must be finite"),
    ("1e40", "line 5, column 'y': 1e40 is too large for float32"),
])
def test_bad_target_values_are_reported_by_line(tmp_path, capsys, cell, message):
    rows = [[*row, 0.5 * i] for i, row in enumerate(feature_rows(40).tolist())]
    rows[3][3] = cell
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "y"], rows)
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y", "--task", "regression")
    assert status == 2 and message in err, err


def test_predict_reports_bad_values_by_line_too(tmp_path, capsys):
    write_csv(tmp_path / "x.csv", ["a", "b", "c"], [[1, 2, 3], [4, "", 6]])
    checkpoint = "tests/fixtures/v1_cli_regression.npz"
    status, _, err = run(capsys, "predict", "--checkpoint", checkpoint, "--csv", tmp_path / "x.csv")
    assert status == 2 and "x.csv, line 3, column 'b': missing value" in err


def test_standardisation_is_float64_and_near_constant_columns_get_scale_one():
    x = np.column_stack([np.full(50, 0.1, np.float32), np.arange(50, dtype=np.float32) * 1e3 + 1e7])
    standardizer = fn.fit_standardizer(x)
    assert standardizer.mean.dtype == np.float64 and standardizer.scale.dtype == np.float64
    assert standardizer.scale[0] == 1.0  # float32 0.1 summed in float32 gave std 2.2e-8
    np.testing.assert_allclose(standardizer.scale[1], np.std(np.arange(50) * 1e3), rtol=1e-12)
    assert np.abs(standardizer.apply(np.array([[0.2, 1e7]], np.float32))).max() < 2


def test_standardisation_names_a_column_with_a_non_finite_value():
    with pytest.raises(ValueError, match=r"'b' of `x` has the value inf at row 1; standardisation needs finite"):
        fn.fit_standardizer(np.array([[1.0, 2.0], [3.0, np.inf]]), names=["a", "b"])


def test_predict_applies_the_saved_float64_statistics_as_training_did(tmp_path, capsys):
    rows = feature_rows(40)
    rows[:, 1] = 0.1  # constant column: scale 1, so 0.2 at predict time stays a small input
    y = np.round(rows[:, 0] * 3 + 1, 4)
    write_csv(tmp_path / "d.csv", ["a", "b", "c", "y"], np.column_stack([rows, y]).tolist())
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", "--target", "y", "--layers", "4",
                         "--epochs", "1", "--save", tmp_path / "m.npz", "--quiet")
    assert status == 0, err
    saved = fn.load(tmp_path / "m.npz")
    assert saved.standardizer.mean.dtype == np.float64 and saved.standardizer.scale[1] == 1.0
    new = np.array([[0.5, 0.2, -1.0], [1.25, 0.1, 0.0]])
    write_csv(tmp_path / "new.csv", ["c", "b", "a"], new[:, ::-1].tolist())
    _, out, _ = run(capsys, "predict", "--checkpoint", tmp_path / "m.npz", "--csv", tmp_path / "new.csv")
    expected = fn.predict(saved.model, saved.params, standardize_features(saved.standardizer, new))
    np.testing.assert_array_equal([float(v) for v in out.splitlines()[1:]], np.asarray(expected)[:, 0])
    assert np.abs(np.asarray(expected)).max() < 100  # 0.2 in the constant column is not blown up

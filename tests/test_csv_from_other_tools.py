"""Issue 21, cases 4 and 5: CSV files written by pandas, R and Excel, and unbalanced quotes, through the CLI."""

import os
import re

import numpy as np
import pytest

import funcnet as fn
from cli_helpers import FEATURES, feature_rows, regression_csv, run
from funcnet.cli.csv_data import read_table
from funcnet.cli.errors import UserError

pandas = pytest.importorskip("pandas")

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "v1_cli_regression.npz")
TRAIN = ("--target", "y", "--layers", "4", "--epochs", "1", "--quiet")


def frame(rows=40, seed=0):
    """Features a, b, c and a target y = a - 2b + c/2, as a DataFrame (its index is 0..rows-1)."""
    x = feature_rows(rows, seed)
    return pandas.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": np.round(x @ [1.0, -2.0, 0.5], 4)})


# --- case 4: an unnamed first column that is the row index is ignored, with a note; others are refused ---

def test_a_pandas_index_column_is_ignored_in_train_and_predict(tmp_path, capsys):
    data = frame()
    data.to_csv(tmp_path / "indexed.csv")                 # ",a,b,c,y" then "0,...", "1,...": the row index
    data.to_csv(tmp_path / "plain.csv", index=False)
    status, _, err = run(capsys, "train", "--csv", tmp_path / "indexed.csv", *TRAIN, "--save", tmp_path / "i.npz")
    assert status == 0, err
    assert (f"note: {tmp_path / 'indexed.csv'}: column 1 has no name and holds the row numbers 0..39 (a row index, "
            "as pandas' df.to_csv(path) writes); it is ignored") in err.splitlines()
    assert run(capsys, "train", "--csv", tmp_path / "plain.csv", *TRAIN, "--save", tmp_path / "p.npz")[0] == 0
    indexed, plain = fn.load(tmp_path / "i.npz"), fn.load(tmp_path / "p.npz")
    assert indexed.config["features"] == ["a", "b", "c"] and indexed.model.n_in == 3
    assert indexed.config["data_fingerprint"] == plain.config["data_fingerprint"]
    for mine, theirs in zip(indexed.params, plain.params):  # the same run: the index was not a feature
        for name in mine:
            np.testing.assert_array_equal(mine[name], theirs[name])
    new = frame(5, seed=1)[["c", "a", "b"]]
    new.to_csv(tmp_path / "new_indexed.csv")              # predict drops its index the same way
    new.to_csv(tmp_path / "new_plain.csv", index=False)
    status, with_index, err = run(capsys, "predict", "--checkpoint", tmp_path / "i.npz", "--csv",
                                  tmp_path / "new_indexed.csv")
    assert status == 0 and "column 1 has no name and holds the row numbers 0..4" in err
    assert with_index == run(capsys, "predict", "--checkpoint", tmp_path / "i.npz", "--csv",
                             tmp_path / "new_plain.csv")[1]
    assert len(with_index.splitlines()) == 6


def test_r_row_names_one_to_n_are_ignored_too():
    notes = []
    text = '"","a","y"\n"1",1.5,0\n"2",2,1\n"3",0.5,1\n'
    table = read_table(_write("r.csv", text), notify=notes.append)
    assert table.names == ["a", "y"] and table.rows[0] == ["1.5", "0"]
    assert notes == ["r.csv: column 1 has no name and holds the row numbers 1..3 (a row index, as pandas' "
                     "df.to_csv(path) writes); it is ignored"]


def test_a_named_index_column_is_data(tmp_path, capsys):
    data = frame()
    data.index.name = "id"
    data.to_csv(tmp_path / "d.csv")
    status, _, err = run(capsys, "train", "--csv", tmp_path / "d.csv", *TRAIN, "--save", tmp_path / "m.npz")
    assert status == 0 and "note:" not in err
    assert fn.load(tmp_path / "m.npz").config["features"] == ["id", "a", "b", "c"]


@pytest.mark.parametrize("write, message", [
    (lambda data, path: data.sample(frac=1.0, random_state=0).to_csv(path),   # a shuffled frame: index not 0..n-1
     "line 1: column 1 has no name; expected a name in the header (an unnamed column is ignored only when it is a "
     "row index: the row numbers 0..39 or 1..40, before any named column), found the values '"),
    (lambda data, path: data.iloc[::2].to_csv(path),                           # a filtered frame: 0, 2, 4, ...
     "line 1: column 1 has no name; expected a name in the header (an unnamed column is ignored only when it is a "
     "row index: the row numbers 0..19 or 1..20, before any named column), found the values '0', '2', '4', '6', "
     "'8', '10', ...; "
     "name the column, or write the file without it (pandas: df.to_csv(path, index=False))"),
    (lambda data, path: data.rename(columns={"b": ""}).to_csv(path, index=False),
     "line 1: column 2 has no name; expected a name in the header"),
    (lambda data, path: data.rename(columns={"y": " "}).to_csv(path, index=False),
     "line 1: column 4 has no name; expected a name in the header"),
])
def test_any_other_unnamed_column_is_refused_by_position(tmp_path, capsys, write, message):
    write(frame(), tmp_path / "d.csv")
    status, out, err = run(capsys, "train", "--csv", tmp_path / "d.csv", *TRAIN)
    assert status == 2 and "epoch" not in out and "Traceback" not in err
    assert f"{tmp_path / 'd.csv'}, {message}" in err


PANDAS_NAME = "(it is named 'Unnamed: 0', pandas' name for a column without one)"


def test_pandas_unnamed_header_of_a_round_trip_is_the_row_index_and_ignored(tmp_path, capsys):
    """pd.read_csv(indexed).to_csv(path, index=False) names the index 'Unnamed: 0': it became a feature."""
    frame().to_csv(tmp_path / "indexed.csv")
    pandas.read_csv(tmp_path / "indexed.csv").to_csv(tmp_path / "round.csv", index=False)
    pandas.read_csv(tmp_path / "indexed.csv").to_csv(tmp_path / "round_indexed.csv")  # ",Unnamed: 0,a,..."
    frame().to_csv(tmp_path / "plain.csv", index=False)
    assert open(tmp_path / "round.csv").readline().startswith("Unnamed: 0,a,b,c,y")
    status, _, err = run(capsys, "train", "--csv", tmp_path / "round.csv", *TRAIN, "--save", tmp_path / "r.npz")
    assert status == 0, err
    assert (f"note: {tmp_path / 'round.csv'}: column 1 has no name {PANDAS_NAME} and holds the row numbers 0..39 "
            "(a row index, as pandas' df.to_csv(path) writes); it is ignored") in err.splitlines()
    status, _, err = run(capsys, "train", "--csv", tmp_path / "round_indexed.csv", *TRAIN, "--save",
                         tmp_path / "ri.npz")
    assert status == 0, err
    assert "column 1 has no name and holds the row numbers 0..39" in err
    assert f"column 2 has no name {PANDAS_NAME} and holds the row numbers 0..39" in err
    assert run(capsys, "train", "--csv", tmp_path / "plain.csv", *TRAIN, "--save", tmp_path / "p.npz")[0] == 0
    plain = fn.load(tmp_path / "p.npz")
    for name in ("r.npz", "ri.npz"):
        saved = fn.load(tmp_path / name)
        assert saved.config["features"] == ["a", "b", "c"]
        assert saved.config["data_fingerprint"] == plain.config["data_fingerprint"]


@pytest.mark.parametrize("text, message", [
    ("a,Unnamed: 1,y\n1,0,2\n3,1,4\n", "column 2 has no name (it is named 'Unnamed: 1', pandas' name for a column "
                                       "without one); expected a name in the header"),   # after a named column
    ("Unnamed: 0,a,y\n5,1,2\n9,3,4\n", f"column 1 has no name {PANDAS_NAME}; expected a name in the header"),
    ("Unnamed: 0_level_0,a,y\n0.5,1,2\n7,3,4\n", "column 1 has no name (it is named 'Unnamed: 0_level_0', "
                                                  "pandas' name for a column without one)"),
])
def test_a_pandas_unnamed_column_that_is_not_the_row_index_is_refused_by_position(text, message):
    with pytest.raises(UserError, match=re.escape(f"d.csv, line 1: {message}")):
        read_table(_write("d.csv", text))


def test_unnamed_in_a_longer_name_is_a_name():
    table = read_table(_write("d.csv", "Unnamed: 0 count,Unnamed,y\n5,1,2\n9,3,4\n"), notify=pytest.fail)
    assert table.names == ["Unnamed: 0 count", "Unnamed", "y"]


def test_predict_refuses_an_unnamed_column_the_same_way(tmp_path, capsys):
    frame(5).iloc[::-1].to_csv(tmp_path / "new.csv")  # index 4, 3, 2, 1, 0
    status, out, err = run(capsys, "predict", "--checkpoint", FIXTURE, "--csv", tmp_path / "new.csv")
    assert status == 2 and out == ""
    assert "new.csv, line 1: column 1 has no name; expected a name in the header" in err
    assert "found the values '4', '3', '2', '1', '0'" in err


# --- case 5: trailing separators, Excel's sep= line, quotes, line ends, encodings ---

def _write(name, text, folder=None):
    """Write ``text`` (str: UTF-8, line ends kept; bytes: as is) to ``name`` in ``folder`` (the cwd if None)."""
    path = name if folder is None else folder / name
    if isinstance(text, bytes):
        open(path, "wb").write(text)
    else:
        open(path, "w", encoding="utf-8", newline="").write(text)
    return str(path)


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


PLAIN = ["a", "b", "y"], [["1", "2", "3"], ["4.5", "5", "6"]]


@pytest.mark.parametrize("text, lines, note", [
    ("a,b,y\n1,2,3\n4.5,5,6\n", [2, 3], None),
    ("a,b,y\r\n1,2,3\r\n4.5,5,6\r\n", [2, 3], None),                                 # Windows line ends
    ("a,b,y\r1,2,3\r4.5,5,6\r", [2, 3], None),                                       # old Mac line ends
    ("a,b,y\n1,2,3\n4.5,5,6", [2, 3], None),                                         # no final line end
    ("\n\na,b,y\n\n1,2,3\n \n4.5,5,6\n\n", [5, 7], None),                            # blank lines
    ("\ufeffa,b,y\r\n1,2,3\r\n4.5,5,6\r\n", [2, 3], None),                           # Excel's CSV UTF-8 (BOM)
    ("sep=,\r\na,b,y\r\n1,2,3\r\n4.5,5,6\r\n", [3, 4], None),                        # Excel's separator line
    ("\ufeffsep=;\r\na;b;y\r\n1;2;3\r\n4.5;5;6\r\n", [3, 4], None),
    ("sep=\t\na\tb\ty\n1\t2\t3\n4.5\t5\t6\n", [3, 4], None),
    ("SEP=|\na|b|y\n1|2|3\n4.5|5|6\n", [3, 4], None),
    ("a,b,y,\n1,2,3,\n4.5,5,6,\n", [2, 3], "d.csv: column 4 has no name and no values (',' ends every line); "
                                           "it is ignored"),
    ("sep=;\na;b;y;\n1;2;3;\n4.5;5;6;\n", [3, 4], "d.csv: column 4 has no name and no values (';' ends every "
                                                 "line); it is ignored"),
    (",a,b,y\n0,1,2,3\n1,4.5,5,6\n", [2, 3], "d.csv: column 1 has no name and holds the row numbers 0..1 (a row "
                                             "index, as pandas' df.to_csv(path) writes); it is ignored"),
    ('"a","b","y"\n"1","2","3"\n"4.5",5,"6"\n', [2, 3], None),                       # every value quoted
])
def test_files_written_by_other_tools_read_as_the_same_table(text, lines, note):
    notes = []
    table = read_table(_write("d.csv", text), notify=notes.append)
    assert (table.names, table.rows, table.lines) == (*PLAIN, lines)
    assert notes == ([note] if note else [])


def test_a_sep_line_file_trains_and_counts_the_sep_line_in_line_numbers(tmp_path, capsys):
    regression_csv(tmp_path / "plain.csv")
    rows = (tmp_path / "plain.csv").read_text().splitlines()
    semicolons = ["sep=;", *[row.replace(",", ";") for row in rows]]
    _write("semi.csv", "\r\n".join(semicolons) + "\r\n", tmp_path)
    assert run(capsys, "train", "--csv", tmp_path / "semi.csv", *TRAIN, "--save", tmp_path / "s.npz")[0] == 0
    assert run(capsys, "train", "--csv", tmp_path / "plain.csv", *TRAIN, "--save", tmp_path / "p.npz")[0] == 0
    assert fn.load(tmp_path / "s.npz").config["data_fingerprint"] == fn.load(tmp_path / "p.npz").config[
        "data_fingerprint"]
    cells = semicolons[6].split(";")
    semicolons[6] = ";".join([cells[0], "2,5", *cells[2:]])  # line 7: a decimal comma
    _write("semi.csv", "\n".join(semicolons) + "\n", tmp_path)
    status, _, err = run(capsys, "train", "--csv", tmp_path / "semi.csv", *TRAIN)
    assert status == 2
    assert (f"{tmp_path / 'semi.csv'}, line 7, column 'b': '2,5' is not a number (a decimal comma? write 1.5, not "
            "1,5); feature columns must be numeric") in err


def unbalanced(line_22, later=None):
    """41 lines (a header and 40 rows of a, b, c, y) with ``line_22`` as line 22 and ``later`` as line 30."""
    rows = [",".join(FEATURES + ["y"])] + [f"{i},{i + 1},{i + 2},{i / 4}" for i in range(40)]
    rows[21] = line_22
    if later is not None:
        rows[29] = later
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("text, message", [
    (unbalanced('1,"2,3,4'),
     'line 22: a quote (") opens on this line and is never closed, so the rest of the file, to line 41, reads as '
     "one value; expected a closing quote (or no quote at all)"),
    (unbalanced('1,2,3,"4.5'),
     'line 22: a quote (") opens on this line and is never closed'),
    (unbalanced('1,"2,3,4', later='5,6",7,8'),
     "line 22: a quoted value runs from line 22 to line 30; expected one row per line (a quote opens on line 22 "
     "and closes on line 30): check the quotes"),
    (unbalanced('1,2,3,"a label\nacross two lines"'),  # a quoted line break is refused too: one row per line
     "line 22: a quoted value runs from line 22 to line 23; expected one row per line"),
    ('a,"b,c,y\n1,2,3,4\n5,6,7,8\n',
     'line 1: a quote (") opens on this line and is never closed, so the rest of the file, to line 3, reads as one '
     "value"),
    ('a,b,c,y\n1,2,3,4\n5,6,7,"8',
     'line 3: a quote (") opens on this line and is never closed, so the rest of the line reads as one value'),
    ('a,b,c,y\n1,"2\n' + "".join(f"{i},{i},{i},{i}\n" for i in range(20000)),  # beyond csv's field size limit
     "line 2: not valid CSV (field larger than field limit (131072)); a quoted value runs from line 2 to line "),
    ("sep=\na,b,c,y\n1,2,3,4\n",
     "line 1: 'sep=' looks like Excel's separator line, but expected exactly one character after 'sep=' (e.g. "
     "sep=, or sep=;), found ''"),
    ("sep=;;\na;b;c;y\n1;2;3;4\n", "line 1: 'sep=;;' looks like Excel's separator line, but expected exactly one "
                                   "character after 'sep=' (e.g. sep=, or sep=;), found ';;'"),
    ("a,b,c,y,\n1,2,3,4\n", "line 2: 4 values but the header has 5 columns; the header ends with ',' (a nameless "
                            "last column): remove it"),
    ("a,b,c,y\n1,2,3,4,\n", "line 2: 5 values but the header has 4 columns; the line ends with ',' (an empty last "
                            "value): remove it, or end the header the same way"),
    ("a,b,c,y,\n1,2,3,4,\n5,6,7,8,9\n", "line 1: column 5 has no name; expected a name in the header"),
    (",,,\n1,2,3,4\n", "line 1: the header row has no column names; expected a header row of names"),
    ("a;b;c;y\n1;2;3;4\n5;6;7;8\n", "line 1: the header is one column named 'a;b;c;y'; expected columns separated "
                                    "by ',', but every line holds ';': add Excel's first line sep=; to the file, or "
                                    "save it with ',' as the separator"),
    ("a\tb\tc\ty\n1\t2\t3\t4\n", "line 1: the header is one column named 'a\\tb\\tc\\ty'; expected columns "
                                "separated by ',', but every line holds '\\t'"),
    ("a;b;c;y\n0,5;1;-2,25;4\n5;6;7;8\n",  # a European Excel CSV: ';' and decimal commas, no sep= line
     "line 2: 3 values but the header has 1 columns; the header is one column named 'a;b;c;y'; expected columns "
     "separated by ',', but the header and this line hold ';' and decimal commas (1,5: a European Excel CSV): save "
     "it with ',' as the separator and '.' as the decimal mark, or add Excel's first line sep=; to the file and "
     "write decimals as 1.5, not 1,5"),
    ("a;b;c;y\n1;2;3;4\n5;6,5;7;8\n",  # whole numbers first: the decimal comma is on line 3
     "line 3: 2 values but the header has 1 columns; the header is one column named 'a;b;c;y'; expected columns "
     "separated by ',', but the header and this line hold ';' and decimal commas"),
    ("a|b|y\n1|2,5|3\n",
     "line 2: 2 values but the header has 1 columns; the header is one column named 'a|b|y'; expected columns "
     "separated by ',', but the header and this line hold '|' and decimal commas"),
    ("a;b;y\n1;2,x;3\n",  # a comma that is no decimal comma: the separator hint alone
     "line 2: 2 values but the header has 1 columns; the header is one column named 'a;b;y'; expected columns "
     "separated by ',', but the header and this line hold ';': add Excel's first line sep=; to the file, or save it "
     "with ',' as the separator"),
    ("a,b,c,y\n".encode("utf-16"), "line 1: the file is UTF-16 (it starts with a UTF-16 byte-order mark); expected "
                                   "UTF-8: save it as UTF-8 (CSV UTF-8 in Excel)"),
])
def test_malformed_files_are_refused_at_the_line_where_the_problem_starts(tmp_path, capsys, text, message):
    path = _write("d.csv", text, tmp_path)
    status, out, err = run(capsys, "train", "--csv", path, *TRAIN)
    assert status == 2 and "epoch" not in out and "Traceback" not in err
    assert f"{path}, {message}" in err, err


def test_read_table_errors_are_user_errors_for_every_command(tmp_path):
    with pytest.raises(UserError, match=r"line 22: a quote \(\"\) opens on this line and is never closed"):
        read_table(_write("d.csv", unbalanced('1,"2,3,4'), tmp_path))

"""The data a ``funcnet train`` run learns from: a built-in dataset or a CSV file.

Reading a CSV (:func:`read_table`): UTF-8, with or without the byte-order mark
Excel writes, and Excel's ``sep=;`` first line; a header row of distinct column
names; one row per line (an unbalanced quote is reported where it opens).  An
unnamed column (an empty name, or pandas' ``Unnamed: N``) is ignored, with a
note on stderr, only when it is empty (a comma ending every line) or holds the
row numbers before any named column (the index pandas writes, one more per
read-and-write round trip); any other is an error naming its position.  Feature columns
must hold numbers: the first missing, NaN, infinite or too large (beyond
float32) value is reported by its CSV line and column.

The task (:func:`choose_task`), when ``--task auto``:

* a target with text labels ("yes"/"no", "cat"/"dog"/...) is a classification:
  binary with two labels, multiclass with more;
* a target of numbers but for some cells (R's ``NA``, a typo ``1.2.3``, a stray
  quote) is an error naming the first such cell by its line, also under
  ``--task regression``; ``--task multiclass`` or ``binary`` takes the values as labels;
* a numeric target with exactly two distinct values (0/1, 1/2, -1/1, ...) is binary;
* a numeric target with a value that is not a whole number is a regression;
* a numeric target of three or more whole numbers is ambiguous (class ids or a
  count?): an error that asks for ``--task multiclass`` or ``--task regression``.
  So no number of classes makes a run switch silently between the two.
* a numeric target with a whole number of magnitude 2^53 or more cannot be
  class labels (float64 reads 2^53 + 1 as 2^53, merging two classes): an
  error, unless ``--task regression``.

Classes are the distinct labels of the whole target column, sorted (numbers by
value, text alphabetically), and are encoded as ``0..k-1`` in that order; the
list is saved in the checkpoint and ``predict`` writes the original labels.

Standardisation statistics are computed in float64 on the training rows
(:func:`fit_feature_standardizer`, which notes each constant column on stderr)
and applied in float64 before the features become float32, the same way by
``train`` and ``predict`` (:func:`standardize_features`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import sys
from typing import TYPE_CHECKING, Callable, NamedTuple

from funcnet.cli.errors import UserError

if TYPE_CHECKING:
    import numpy as np

FLOAT32_MAX = 3.4028234663852886e38
MAX_LISTED = 6  # labels listed in a message before "..."
EXACT_INTEGERS = 2.0 ** 53  # float64 holds every whole number below this; 2^53 + 1 already reads as 2^53
_PANDAS_UNNAMED = re.compile(r"Unnamed: \d+(_level_\d+)?")  # pandas' name for a column without a name


class Table(NamedTuple):
    """A CSV file as text: header ``names``, data rows of cells, and each row's line number in the file."""

    path: str
    names: list
    rows: list
    lines: list


def note(text: str) -> None:
    """A one-line notice on stderr, for something in the input that the command handled by itself."""
    print(f"note: {text}", file=sys.stderr, flush=True)


def read_table(path: str, notify: Callable[[str], None] = note) -> Table:
    """The header and rows of a CSV file, as text; errors name the file and the line.

    Files written by other tools:

    * a UTF-8 byte-order mark (Excel's "CSV UTF-8") is stripped; UTF-16 and
      other encodings are an error naming the line of the first bad byte;
    * Excel's ``sep=;`` first line sets the separator (any one character) and
      is skipped; line numbers still count it;
    * a file separated by ``;``, tab or ``|`` without that line reads as one
      column: an error that names the separator, and the decimal commas
      (``1,5``) of a European Excel CSV, which split its lines at the commas;
    * ``\\n``, ``\\r\\n`` and ``\\r`` line ends all work; blank lines are skipped;
    * a column without a name in the header (an empty name, or ``Unnamed: N``,
      pandas' name for one) is ignored, with a ``notify`` line, when it has no
      values at all (a separator ending every line) or when it holds the row
      numbers ``0..n-1`` or ``1..n`` before any named column (the index pandas'
      ``df.to_csv(path)`` writes, R's row names, and the ``Unnamed: 0`` that
      ``pd.read_csv(p).to_csv(q)`` adds); any other unnamed column is an error
      naming its position;
    * one row per line: a quoted value that runs over a line break is an
      error at the line where its quote opens (an unbalanced quote), not
      where the file ends.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"{path}, line 1: the file is UTF-16 (it starts with a UTF-16 byte-order mark); expected "
                        "UTF-8: save it as UTF-8 (CSV UTF-8 in Excel)")
    try:
        text = raw.decode("utf-8-sig")  # strips the byte-order mark Excel writes
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: byte 0x{raw[error.start]:02x} is not UTF-8; save the file as "
                        "UTF-8 (CSV UTF-8 in Excel)") from None
    physical = io.StringIO(text, newline="").readlines()  # the lines as csv counts them (\n, \r\n or \r)
    delimiter = _separator_line(path, physical[0] if physical else "")
    reader = csv.reader(iter(physical), delimiter=delimiter or ",")
    if delimiter:
        next(reader)  # the sep= line

    def record():
        """``(first line, cells)`` of the next record (``None`` at the end); a quote never closed is an error."""
        first = reader.line_num + 1
        try:
            cells = next(reader, None)
        except csv.Error as error:
            runs = (f"; a quoted value runs from line {first} to line {reader.line_num}: check its quotes"
                    if reader.line_num > first else "")
            raise UserError(f"{path}, line {first}: not valid CSV ({error}){runs}") from None
        if cells is not None and reader.line_num == len(physical) and \
                _unclosed_quote("".join(physical[first - 1:]), delimiter or ","):
            rest = (f"the rest of the file, to line {len(physical)}," if len(physical) > first
                    else "the rest of the line")
            raise UserError(f"{path}, line {first}: a quote (\") opens on this line and is never closed, so {rest} "
                            "reads as one value; expected a closing quote (or no quote at all)")
        if cells is not None and reader.line_num > first:
            raise UserError(f"{path}, line {first}: a quoted value runs from line {first} to line "
                            f"{reader.line_num}; expected one row per line (a quote opens on line {first} and "
                            f"closes on line {reader.line_num}): check the quotes")
        return first, cells

    header_line, header = record()
    while header == []:  # blank lines before the header
        header_line, header = record()
    if header is None:
        raise UserError(f"{path}: the file is empty; expected a header row and numeric rows")
    names = [name.strip() for name in header]
    if not any(names):
        raise UserError(f"{path}, line {header_line}: the header row has no column names; expected a header row "
                        "of names before the data rows")
    rows, lines = [], []
    while True:
        first, row = record()
        if row is None:
            break
        if not row or (len(row) == 1 and not row[0].strip() and len(names) > 1):
            continue
        if len(row) != len(names):
            raise UserError(f"{path}, line {first}: {len(row)} values but the header has {len(names)} columns"
                            f"{_count_hint(row, names, delimiter or ',')}")
        rows.append([cell.strip() for cell in row])
        lines.append(first)
    if not rows:
        raise UserError(f"{path}: no data rows after the header")
    _check_separator(path, header_line, names, rows, delimiter or ",")
    keep = _named_columns(path, header_line, names, rows, delimiter or ",", notify)
    if len(keep) < len(names):
        names, rows = [names[i] for i in keep], [[row[i] for i in keep] for row in rows]
    seen = {}
    for index, name in enumerate(names):
        if name in seen:
            raise UserError(f"{path}, line {header_line}: columns {keep[seen[name]] + 1} and {keep[index] + 1} are "
                            f"both named {name!r}; column names must be distinct")
        seen[name] = index
    return Table(path, names, rows, lines)


def _separator_line(path: str, line: str) -> str | None:
    """The separator that Excel's first line ``sep=X`` names, or ``None`` when the first line is not one."""
    line = line.rstrip("\r\n")
    if not line.lower().startswith("sep="):
        return None
    separator = line[4:]
    if len(separator) != 1 or separator in "\"\r\n":
        raise UserError(f"{path}, line 1: {line!r} looks like Excel's separator line, but expected exactly one "
                        f"character after 'sep=' (e.g. sep=, or sep=;), found {separator!r}")
    return separator


def _check_separator(path: str, header_line: int, names: list, rows: list, delimiter: str) -> None:
    """A file of one column whose header and every row hold ``;``, tab or ``|`` uses another separator: an error."""
    other = _other_separator(names, [row[0] for row in rows], delimiter)
    if other:
        raise UserError(f"{path}, line {header_line}: {_separator_advice(names, other, delimiter, 'every line holds')}")


def _other_separator(names: list, lines: list, delimiter: str) -> str | None:
    """``;``, tab or ``|`` when the header is one column and it and every one of ``lines`` hold that character."""
    if len(names) != 1:
        return None
    for other in (";", "\t", "|"):
        if other != delimiter and other in names[0] and all(other in line for line in lines):
            return other
    return None


def _separator_advice(names: list, other: str, delimiter: str, holds: str, line: str = "") -> str:
    """What to do about a file separated by ``other`` rather than ``delimiter`` (with decimal commas in ``line``)."""
    found = (f"the header is one column named {names[0]!r}; expected columns separated by {delimiter!r}, but "
             f"{holds} {other!r}")
    if delimiter == "," and re.search(r"\d,\d", line):
        return (f"{found} and decimal commas (1,5: a European Excel CSV): save it with ',' as the separator and "
                f"'.' as the decimal mark, or add Excel's first line sep={other} to the file and write decimals "
                "as 1.5, not 1,5")
    return f"{found}: add Excel's first line sep={other} to the file, or save it with {delimiter!r} as the separator"


def _unclosed_quote(text: str, delimiter: str) -> bool:
    """Whether ``text`` (the CSV from one record's first line on) ends inside a quoted value."""
    try:
        for _ in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True):
            pass
    except csv.Error as error:
        return "unexpected end of data" in str(error)
    return False


def _count_hint(row: list, names: list, delimiter: str) -> str:
    """Why a row may have the wrong number of values: another separator (and decimal commas), or a separator
    at the end of the line or of the header."""
    line = delimiter.join(row)
    other = _other_separator(names, [line], delimiter)
    if other:
        return "; " + _separator_advice(names, other, delimiter, "the header and this line hold", line)
    if len(row) == len(names) + 1 and not row[-1].strip():
        return f"; the line ends with {delimiter!r} (an empty last value): remove it, or end the header the same way"
    if len(row) == len(names) - 1 and not names[-1]:
        return f"; the header ends with {delimiter!r} (a nameless last column): remove it"
    return ""


def _named_columns(path: str, header_line: int, names: list, rows: list, delimiter: str, notify) -> list:
    """The indices of the columns to keep: every named one; unnamed ones are ignored (with a note) or an error.

    Unnamed means an empty name or pandas' ``Unnamed: N`` (what ``pd.read_csv``
    calls a column without a name, and writes back as its name).  A row index
    is an unnamed column of row numbers before any named column: pandas' index,
    R's row names, and the ``Unnamed: 0`` a read-and-write round trip adds.
    """
    keep = []
    for index, name in enumerate(names):
        cells = [row[index] for row in rows]
        pandas_name = f" (it is named {name!r}, pandas' name for a column without one)" if name else ""
        if name and not _PANDAS_UNNAMED.fullmatch(name):
            keep.append(index)
        elif not any(cells):
            notify(f"{path}: column {index + 1} has no name{pandas_name} and no values ({delimiter!r} ends every "
                   "line); it is ignored")
        elif not keep and _is_row_index(cells):
            notify(f"{path}: column {index + 1} has no name{pandas_name} and holds the row numbers "
                   f"{cells[0]}..{cells[-1]} (a row index, as pandas' df.to_csv(path) writes); it is ignored")
        else:
            shown = ", ".join(repr(cell) for cell in cells[:MAX_LISTED]) + (", ..." if len(cells) > MAX_LISTED else "")
            raise UserError(
                f"{path}, line {header_line}: column {index + 1} has no name{pandas_name}; expected a name in the "
                f"header (an unnamed column is ignored only when it is a row index: the row numbers "
                f"0..{len(rows) - 1} or 1..{len(rows)}, before any named column), found the values {shown}; "
                "name the column, or write the file without it (pandas: df.to_csv(path, index=False))")
    return keep


def _is_row_index(cells: list) -> bool:
    """Whether ``cells`` are the whole numbers ``0..n-1`` or ``1..n`` in order."""
    try:
        numbers = [int(cell) for cell in cells]
    except ValueError:
        return False
    return numbers in (list(range(len(cells))), list(range(1, len(cells) + 1)))


def _parse(cells):
    """``(values float64, problem code per cell)``: 0 fine, 1 missing, 2 not a number."""
    import numpy as np

    values = np.empty(len(cells))
    problems = np.zeros(len(cells), np.int8)
    for index, cell in enumerate(cells):
        if not cell:
            values[index], problems[index] = np.nan, 1
            continue
        try:
            values[index] = float(cell)
        except ValueError:
            values[index], problems[index] = np.nan, 2
    return values, problems


def numeric_columns(table: Table, names, role: str = "feature") -> np.ndarray:
    """The named columns as a float64 array ``(rows, len(names))``, every value finite and within float32.

    The first bad cell in file order (line, then column) is reported: missing,
    not a number, NaN, +inf/-inf, or too large for float32.
    """
    import numpy as np

    indices = [table.names.index(name) for name in names]
    columns = [_parse([row[i] for row in table.rows]) for i in indices]
    values = np.stack([c[0] for c in columns], axis=1) if columns else np.empty((len(table.rows), 0))
    problems = np.stack([c[1] for c in columns], axis=1) if columns else np.zeros((len(table.rows), 0))
    with np.errstate(invalid="ignore"):
        bad = (problems > 0) | ~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        cell, value = table.rows[row][indices[column]], values[row, column]
        where = f"{table.path}, line {table.lines[row]}, column {names[column]!r}"
        if problems[row, column] == 1:
            raise UserError(f"{where}: missing value; every {role} needs a number (remove the row or fill it in)")
        if problems[row, column] == 2:
            comma = " (a decimal comma? write 1.5, not 1,5)" if is_number(cell.replace(",", ".", 1)) else ""
            raise UserError(f"{where}: {cell!r} is not a number{comma}; {role} columns must be numeric")
        if np.isnan(value):
            raise UserError(f"{where}: {cell!r} is NaN (a missing value); remove the row or fill it in")
        if np.isinf(value):
            raise UserError(f"{where}: {cell!r} is {'+' if value > 0 else '-'}inf; every {role} must be finite")
        raise UserError(f"{where}: {cell} is too large for float32 (largest magnitude {FLOAT32_MAX:.4g}); "
                        "rescale the column")
    return values


class Target(NamedTuple):
    """A target column: float64 ``values`` (numbers) or ``None``, and its text ``labels`` per row."""

    name: str
    values: np.ndarray | None
    labels: list
    lines: list
    path: str


def read_target(table: Table, name: str) -> Target:
    """The target column: numbers when every cell is one, otherwise text labels (class names)."""
    import numpy as np

    column = table.names.index(name)
    cells = [row[column] for row in table.rows]
    for row, cell in enumerate(cells):
        if not cell:
            raise UserError(f"{table.path}, line {table.lines[row]}, column {name!r}: missing target value; "
                            "remove the row or fill it in")
    values, problems = _parse(cells)
    if problems.any():  # text labels
        return Target(name, None, cells, table.lines, table.path)
    numbers = numeric_columns(table, [name], role="target")[:, 0]
    return Target(name, numbers, cells, table.lines, table.path)


def _label(value):
    """A class label as JSON keeps it: text, an int for whole numbers, else a float."""
    if isinstance(value, str):
        return value
    value = float(value)
    return int(value) if value.is_integer() else value


def _listed(labels) -> str:
    shown = [str(label) for label in labels[:MAX_LISTED]]
    return ", ".join(shown + (["..."] if len(labels) > MAX_LISTED else []))


class Task(NamedTuple):
    """The chosen task, why, its classes (labels of ids ``0..k-1``; empty for regression) and the encoded ``y``."""

    task: str
    reason: str
    classes: list
    y: np.ndarray


def choose_task(target: Target, requested: str = "auto") -> Task:
    """Decide regression / binary / multiclass (rule in the module docstring) and encode ``y``.

    ``y`` is float32 ``(n, 1)`` for regression and binary (0/1 for the two
    classes in sorted order), int32 ``(n,)`` class ids for multiclass.
    """
    import numpy as np

    quoted = f"target {target.name!r}"
    text = target.values is None
    distinct = sorted(set(target.labels)) if text else sorted(set(target.values.tolist()))
    whole = text or all(float(v).is_integer() for v in distinct)
    if not text and whole and requested != "regression" and np.abs(target.values).max() >= EXACT_INTEGERS:
        row = int(np.argmax(np.abs(target.values) >= EXACT_INTEGERS))
        raise UserError(f"{quoted} has whole numbers of 2^53 or more (e.g. {target.labels[row]} on line "
                        f"{target.lines[row]} of {target.path}), which float64 cannot tell apart as class labels; "
                        "pass --task regression to predict them as numbers, or make them text labels (e.g. "
                        "prefix a letter)")
    if text and requested in ("auto", "regression"):
        _check_numbers_except_some(target)
    if requested == "auto":
        if len(distinct) < 2:
            raise UserError(f"{quoted} has a single value {_label(distinct[0])!r} in every row; a classifier "
                            "needs two classes (pass --task regression to fit a constant anyway)")
        if text:
            task = "binary" if len(distinct) == 2 else "multiclass"
            reason = f"{quoted} holds text labels, {len(distinct)} distinct"
        elif len(distinct) == 2:
            task, reason = "binary", f"{quoted} has exactly two distinct values"
        elif not whole:
            row = next(i for i, v in enumerate(target.values) if not float(v).is_integer())
            task = "regression"
            reason = f"{quoted} has values that are not whole numbers (e.g. {target.labels[row]} on line " \
                     f"{target.lines[row]})"
        else:
            raise UserError(
                f"--task auto cannot tell whether {quoted} holds class ids or numbers to predict (a count, "
                f"an amount): its {len(distinct)} distinct values are whole numbers "
                f"({_listed([_label(v) for v in distinct])}); pass --task multiclass to treat them as "
                f"classes or --task regression to predict them as numbers")
    else:
        task, reason = requested, f"--task {requested}"
        if task == "regression" and text:
            row = next(i for i, label in enumerate(target.labels) if not is_number(label))
            raise UserError(f"--task regression needs a numeric target, but {quoted} has "
                            f"{target.labels[row]!r} on line {target.lines[row]} of {target.path}")
        if task == "binary" and len(distinct) != 2:
            raise UserError(f"--task binary needs exactly two distinct values in {quoted}; found "
                            f"{len(distinct)}: {_listed([_label(v) for v in distinct])}")
        if task == "multiclass":
            if not whole:
                row = next(i for i, v in enumerate(target.values) if not float(v).is_integer())
                raise UserError(f"--task multiclass needs class labels (whole numbers or text), but {quoted} "
                                f"has {target.labels[row]} on line {target.lines[row]} of {target.path}")
            if len(distinct) < 2:
                raise UserError(f"--task multiclass needs two or more classes; {quoted} has only "
                                f"{_label(distinct[0])!r}")
    if task == "regression":
        return Task(task, reason, [], target.values.astype(np.float32).reshape(-1, 1))
    classes = [_label(v) for v in distinct]
    index = {value: i for i, value in enumerate(distinct)}
    ids = np.array([index[v] for v in (target.labels if text else target.values.tolist())], np.int32)
    if task == "binary":
        return Task(task, reason, classes, ids.astype(np.float32).reshape(-1, 1))
    return Task(task, reason, classes, ids)


MISSING_MARKS = {"na", "n/a", "#n/a", "null", "none", "nil", "?", "-", "."}  # how other tools write a missing value


def _check_numbers_except_some(target: Target) -> None:
    """A target of numbers but for some cells (R's ``NA``, a typo ``1.2.3``, a stray quote) is an error.

    Read as text labels it would silently become a classification with one
    class per distinct number.  The first cell that is not a number is named
    by its line; ``--task multiclass`` (or ``binary``) takes the values as labels.
    """
    numbers = sum(is_number(label) for label in target.labels)
    if numbers == 0:
        return
    row = next(i for i, label in enumerate(target.labels) if not is_number(label))
    cell = target.labels[row]
    if cell.strip().lower() in MISSING_MARKS:
        why = " (a missing value, as R and spreadsheets write it: remove the row or fill it in)"
    elif '"' in cell:
        why = " (a stray quote?)"
    elif is_number(cell.replace(",", ".", 1)):
        why = " (a decimal comma? write 1.5, not 1,5)"
    else:
        why = ""
    raise UserError(f"{target.path}, line {target.lines[row]}, column {target.name!r}: {cell!r} is not a "
                    f"number{why}; expected a number, as {numbers} of the {len(target.labels)} target values are: "
                    "fix it, or pass --task multiclass (or binary) if the values are class labels")


def is_number(text: str) -> bool:
    """Whether a CSV cell parses as a number (``float(text)``: "1e3", "nan" and "inf" count)."""
    try:
        float(text)
        return True
    except ValueError:
        return False


def task_model_args(task: str, num_classes: int) -> dict:
    """Output width, activation and loss for a task."""
    return {"regression": dict(outputs=1, output="identity", loss="mse"),
            "binary": dict(outputs=1, output="sigmoid", loss="logloss"),
            "multiclass": dict(outputs=num_classes, output="softmax", loss="cross_entropy")}[task]


def fingerprint(x, target_values) -> dict:
    """``{"rows", "sha256"}``: SHA-256 of the float64 features and the targets in file order, and the row count.

    Another file, other rows, or the same rows in another order give another
    fingerprint: what ``--resume`` checks before it re-splits the data.
    """
    import numpy as np

    digest = hashlib.sha256()
    features = np.ascontiguousarray(x, dtype=np.float64)
    digest.update(f"{features.shape[0]}x{features.shape[1]}\n".encode())
    digest.update(features.tobytes())
    if isinstance(target_values, list):
        digest.update("\x1f".join(map(str, target_values)).encode())
    else:
        digest.update(np.ascontiguousarray(target_values, dtype=np.float64).tobytes())
    return {"rows": int(features.shape[0]), "sha256": digest.hexdigest()}


class Dataset(NamedTuple):
    """What a run trains on: float64 features ``x`` in file order, the encoded ``y``, and how it was read."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list
    task: str
    reason: str
    classes: list
    fingerprint: dict
    where: Callable | None = None  # row -> "FILE, line N" for a CSV's rows, None for built-in data


def load_dataset(config: dict, csv_path: str | None = None) -> Dataset:
    """The :class:`Dataset` of a run config: built-in (``config["data"]``) or the CSV at ``csv_path``."""
    import jax
    import numpy as np

    import funcnet as fn

    if config["data"] == "xor":
        x, y = (np.asarray(a) for a in fn.xor_data())
        return Dataset(x.astype(np.float64), y, ["x1", "x2"], "binary", "the built-in XOR data", [0, 1],
                       fingerprint(x, y))
    if config["data"] == "regression":
        x, y = (np.asarray(a) for a in fn.make_regression_data(jax.random.key(42), 100_000))
        return Dataset(x.astype(np.float64), y, ["a", "b", "c", "d", "e"], "regression",
                       "the built-in regression data", [], fingerprint(x, y))
    table = read_table(csv_path)
    if config["target"] not in table.names:
        raise UserError(f"--target {config['target']!r} is not a column of {csv_path}; "
                        f"columns: {', '.join(table.names)}")
    feature_names = [name for name in table.names if name != config["target"]]
    if not feature_names:
        raise UserError(f"{csv_path} has no feature columns besides the target")
    x = numeric_columns(table, feature_names)
    target = read_target(table, config["target"])
    chosen = choose_task(target, config["task"])
    values = target.labels if target.values is None else target.values
    return Dataset(x, chosen.y, feature_names, chosen.task, chosen.reason, chosen.classes,
                   fingerprint(x, values), row_location(table))


def row_location(table: Table) -> Callable:
    """``row -> "FILE, line N"``: where a data row of ``table`` is in its file, for error messages."""
    return lambda row: f"{table.path}, line {table.lines[row]}"


def fit_feature_standardizer(x_train, names, notify: Callable[[str], None] = note):
    """:func:`funcnet.fit_standardizer` of the training rows, and the constant columns, named in one ``notify`` line.

    A constant column (every training value equal, or varying only by
    rounding: the rule of :func:`funcnet.data.column_moments`) gets scale 1,
    so it standardises to about 0 rather than rounding noise divided by a tiny
    spread.  The model does not learn from it: its first-layer weights never
    see anything but 0, so a row with another value there gets a prediction
    that extrapolates.  ``train`` records these columns in the run config
    (``constant_features``) and :func:`note_unlearned_columns` names such rows.

    Returns:
      ``(standardizer, constant)`` with ``constant = {name: [min, max]}`` of
      each constant column's training values (equal when every value is).
    """
    from funcnet.data import column_moments
    import funcnet as fn

    standardizer = fn.fit_standardizer(x_train, names=names)
    columns = column_moments(x_train).constant.nonzero()[0]
    constant = {names[j]: [float(x_train[:, j].min()), float(x_train[:, j].max())] for j in columns}
    if constant:
        listed = ", ".join(f"{name!r} ({_constant_value(*extremes)})" for name, extremes in constant.items())
        them = "them" if len(constant) > 1 else "it"
        notify(f"constant feature column{'s' if len(constant) > 1 else ''} in the training rows: {listed}; "
               f"standardised with scale 1 (to about 0), so the model does not learn from {them}: a row with "
               "another value there gets a prediction that extrapolates (predict notes such rows)")
    return standardizer, constant


def _constant_value(low: float, high: float, rows: str = "row") -> str:
    """``"0.0025 in every row"``, or the range of a column that varies only by rounding."""
    if low == high:
        return f"{low!r} in every {rows}"
    return f"{low!r} to {high!r}, varying only by rounding"


def note_unlearned_columns(config: dict, table: Table, x, features, notify: Callable[[str], None] = note) -> None:
    """One ``notify`` line per column that was constant in training and holds another value in ``table``.

    ``config["constant_features"]`` (``{name: [min, max]}``, recorded by
    ``train``; absent in older checkpoints, which are not checked) gives the
    training values; a value differs when the column would no longer vary
    only by rounding with it (:func:`funcnet.data.varies_only_by_rounding`).
    ``x``: the float64 feature columns ``features`` of ``table``'s rows.
    """
    import numpy as np

    from funcnet.data import varies_only_by_rounding

    for name, (low, high) in (config.get("constant_features") or {}).items():
        if name not in features:
            continue
        column = np.asarray(x)[:, features.index(name)]
        differ = ~varies_only_by_rounding(np.minimum(column, low), np.maximum(column, high), np.float64)
        if differ.any():
            row, count = int(differ.argmax()), int(differ.sum())
            cell = table.rows[row][table.names.index(name)]
            notify(f"{table.path}: column {name!r} was {_constant_value(low, high, 'training row')}; {count} "
                   f"row{'s' if count > 1 else ''} here differ{'' if count > 1 else 's'} (first at line "
                   f"{table.lines[row]}: {cell}): the model never learned from this column, so "
                   f"{'their predictions extrapolate' if count > 1 else 'its prediction extrapolates'}")


def standardize_features(standardizer, x, names=None, where: Callable | None = None) -> np.ndarray:
    """Float32 features for the model from float64 ``x``, standardised as in training: ``(x - mean) / std``.

    float64 statistics (funcnet ≥ 0.3) are applied in float64, then rounded
    to float32; float32 statistics (older checkpoints) to float32 ``x``, as
    funcnet 0.2 did, so old checkpoints predict the same bits.

    A value that standardises beyond float32's range (a column of tiny
    spread with one far-out value) raises :class:`UserError` naming its
    column (``names``) and row (``where(row)``, e.g. the CSV line), instead
    of becoming ``inf``.
    """
    import numpy as np

    if standardizer is None:
        return np.asarray(x, np.float32)
    if np.asarray(standardizer.mean).dtype == np.float64:
        wide = np.asarray(standardizer.apply(np.asarray(x, np.float64)))
    else:
        wide = np.asarray(standardizer.apply(np.asarray(x, np.float32)))
    with np.errstate(invalid="ignore"):
        beyond = ~(np.abs(wide) <= FLOAT32_MAX)
    if beyond.any():
        row, column = (int(i) for i in np.argwhere(beyond)[0])
        place = where(row) if where else f"row {row}"
        name = repr(names[column]) if names is not None else str(column)
        mean, scale = (float(np.asarray(v)[column]) for v in (standardizer.mean, standardizer.scale))
        raise UserError(f"{place}, column {name}: {float(np.asarray(x)[row, column])!r} standardises to "
                        f"{float(wide[row, column]):.4g} (training rows' mean {mean:.4g}, standard deviation "
                        f"{scale:.4g}), beyond float32's ±{FLOAT32_MAX:.4g}; the column's values span too many "
                        "orders of magnitude (rescale or log-transform it, or remove the outlier)")
    return wide.astype(np.float32)

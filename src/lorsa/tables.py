"""Users' own data as CSV or Parquet tables: one row per sample, a task column, a target column, feature columns.

Used by ``lorsa fit`` / ``lorsa predict`` / ``lorsa adapt`` (:mod:`lorsa.commands.data_io`). pandas (and pyarrow for
Parquet) are imported only when a table is read. Every problem is reported as :class:`TableError` naming the file
and, where there is one, the column (and the first offending row, counted from 1 after the header).

Task labels are always read as text, the same way from every format: ``"007"`` stays ``"007"``; ``"NA"``,
``"None"``, ``"null"`` and ``"nan"`` are ids like any other (CSV readers would otherwise take them for missing); a
blank id is refused in every format; integer ids stored as numbers read as their digits (``7``, also from a float
column such as ``7.0``, which a column of integers with gaps becomes). So a model fitted on one file predicts on
another without type surprises. Columns of dates or durations are refused as features and targets (their numbers
would be nanoseconds), and so is a CSV header naming a column twice (a reader would silently rename one).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .task_labels import MAX_TASK_ID_LENGTH, TaskCodes

__all__ = ["TableError", "TaskTable", "read_table", "select_columns", "write_table", "numeric_column", "table_kind",
           "TABLE_SUFFIXES"]

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


class TableError(ValueError):
    """A data file cannot be used: missing, empty, of an unknown type, or with a missing / non-numeric column."""


@dataclass
class TaskTable:
    """The arrays taken from a table.

    Attributes
    ----------
    X : ndarray of shape (N, d)
    y : ndarray of shape (N,) or None
        None when no target column was asked for.
    tasks : lorsa.task_labels.TaskCodes
        Every row's task id (text) as a code into one table of distinct ids.
    feature_columns : list of str
        The ``d`` feature columns, in the order of ``X``'s columns.
    frame : pandas.DataFrame
        The table as read (to carry id columns into an output).
    """

    X: np.ndarray | None
    y: np.ndarray | None
    tasks: np.ndarray
    feature_columns: list[str]
    frame: Any


def table_kind(path: str | os.PathLike) -> str:
    """``"csv"``, ``"tsv"`` or ``"parquet"`` by the suffix of ``path`` (TableError for any other suffix)."""
    return _kind(Path(path))


def _kind(path: Path) -> str:
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise TableError(f"file {str(path)!r}: unsupported file type {path.suffix!r}; use one of "
                         f"{sorted(TABLE_SUFFIXES)} (CSV or Parquet)")
    return kind


def read_table(path: str | os.PathLike, task_column: str | None = None, text_columns: Sequence[str] = ()) -> Any:
    """Read a CSV / TSV / Parquet file into a pandas DataFrame (``task_column`` and, from CSV, ``text_columns``,
    e.g. categorical features, read as strings: ``"007"`` stays ``"007"``).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    TableError
        For an unsupported suffix, an empty file, a file without data rows, or an unreadable file.
    """
    path, kind = data_file(path)
    import pandas as pd

    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = _read_csv(path, "\t" if kind == "tsv" else ",", task_column, text_columns)
    except TableError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise TableError(f"file {str(path)!r} is empty (no header, no rows)") from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise TableError(f"file {str(path)!r} cannot be read as {kind}: {exc}") from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt Parquet files
        raise TableError(f"file {str(path)!r} cannot be read as {kind}: {exc}") from exc
    if frame.shape[0] == 0:
        raise TableError(f"file {str(path)!r} has a header but no data rows")
    frame.columns = [str(c) for c in frame.columns]
    _refuse_duplicates([str(c) for c in frame.columns], path)
    return frame


def data_file(path: str | os.PathLike) -> tuple[Path, str]:
    """``(path, kind)`` of a data file that exists, is not a folder or empty, and has a table suffix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    if path.is_dir():
        raise TableError(f"data file {str(path)!r} is a folder; give a CSV or Parquet file")
    kind = _kind(path)
    if path.stat().st_size == 0:
        raise TableError(f"file {str(path)!r} is empty (no header, no rows)")
    return path, kind


def _refuse_duplicates(names: list[str], path: Path) -> None:
    twice = sorted(name for name, n in Counter(names).items() if n > 1)
    if twice:
        raise TableError(f"file {str(path)!r}: the header names column(s) {twice[:10]} more than once; rename them "
                         f"(lorsa does not guess which one is meant)")


def _read_csv(path: Path, sep: str, task_column: str | None, text_columns: Sequence[str] = ()) -> Any:
    """A CSV / TSV file, its duplicate header names refused and the task column read as raw text."""
    import pandas as pd

    return pd.read_csv(path, **csv_options(path, sep, task_column, text_columns)[1])


def csv_options(path: Path, sep: str, task_column: str | None, text_columns: Sequence[str] = ()
                ) -> tuple[list[str], dict[str, Any]]:
    """The header of a CSV / TSV file (duplicate names refused) and the ``pandas.read_csv`` options that read its
    task column as raw text (no NA strings), ``text_columns`` as text (with the usual NA strings) and every other
    column with pandas' usual NA strings."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        header = next(csv.reader(fh, delimiter=sep), [])
    _refuse_duplicates(header, path)
    text = {c: str for c in text_columns if c in header and c != task_column}
    if task_column is None or task_column not in header:
        return header, {"sep": sep, **({"dtype": text} if text else {})}
    try:
        from pandas._libs.parsers import STR_NA_VALUES as na_strings
    except ImportError:  # pragma: no cover - pandas moved it
        na_strings = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                      "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
    na_values = {c: sorted(na_strings) for c in header if c != task_column}
    return header, {"sep": sep, "dtype": {task_column: str, **text}, "keep_default_na": False,
                    "na_values": na_values}


def _require(frame: Any, path: Path, column: str, role: str) -> None:
    if column not in frame.columns:
        shown = ", ".join(repr(c) for c in list(frame.columns)[:20])
        more = ", ..." if frame.shape[1] > 20 else ""
        raise TableError(f"file {str(path)!r}: {role} column {column!r} not found; the file's columns are "
                         f"[{shown}{more}]")


def numeric_column(frame: Any, path: str | os.PathLike, column: str, role: str,
                   allow_missing: bool = False) -> np.ndarray:
    """Column ``column`` as float64 (TableError naming the file, column and first bad row when it is not numeric,
    holds dates or durations, or holds missing (unless ``allow_missing``: NaN) or infinite values)."""
    path = Path(path)
    _require(frame, path, column, role)
    return _numeric(frame, path, column, role, allow_missing)


def _numeric(frame: Any, path: Path, column: str, role: str, allow_missing: bool = False,
             first_row: int = 0) -> np.ndarray:
    import pandas as pd

    series = frame[column]
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series) \
            or isinstance(series.dtype, pd.PeriodDtype):
        raise TableError(f"file {str(path)!r}: {role} column {column!r} holds dates or durations ({series.dtype}), "
                         f"not numbers; convert it first (e.g. to days since a reference date)")
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(np.float64)
    if not pd.api.types.is_numeric_dtype(series):
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise TableError(f"file {str(path)!r}: {role} column {column!r} is not numeric (row {first_row + row + 1}: "
                             f"{series.iloc[row]!r})")
        series = converted
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    if allow_missing:
        finite |= np.isnan(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        what = "missing" if np.isnan(values[row]) else "infinite"
        raise TableError(f"file {str(path)!r}: {role} column {column!r} has {int((~finite).sum())} missing or "
                         f"infinite value(s) (first: row {first_row + row + 1} is {what})")
    return values


def select_columns(frame: Any, path: str | os.PathLike, task_column: str | None, target_column: str | None,
                   features: Sequence[str] | None = None, feature_prefix: str | None = None,
                   task_name: str | None = None, reserved: Sequence[str] = (), first_row: int = 0,
                   numeric_features: bool = True) -> TaskTable:
    """Take the task labels, the target and the features out of a table.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`read_table`.
    path : str or Path
        The file's name, for messages.
    task_column : str or None
        Column of task labels (read as strings). None with ``task_name``: every row belongs to that task.
    target_column : str or None
        Column of targets ``y``; None when there is none (prediction).
    features : sequence of str, optional
        Feature columns, in order.
    feature_prefix : str, optional
        Every column whose name starts with this, in file order. With neither ``features`` nor ``feature_prefix``,
        every column other than the task and target columns is a feature.
    task_name : str, optional
        Task of every row when ``task_column`` is None.
    reserved : sequence of str, optional
        Further columns that are never features (e.g. a target read separately).
    first_row : int, optional
        Number of data rows of the file before ``frame`` (a chunk of a file read in parts), for messages.
    numeric_features : bool, default True
        Convert the feature columns to ``X``; False leaves ``X`` None (the columns are encoded by
        :class:`lorsa.preprocessing.TablePreprocessor`, e.g. categorical ones).
    """
    path = Path(path)
    if features is not None and feature_prefix is not None:
        raise TableError("give the feature columns either as a list or as a prefix, not both")
    if task_column is not None:
        _require(frame, path, task_column, "task")
        tasks = _task_text(frame[task_column], path, task_column, first_row)
    elif task_name is not None:
        tasks = TaskCodes.create(np.zeros(frame.shape[0], dtype=np.int64), np.array([str(task_name)]))
    else:
        raise TableError("name the task column (or, for a single task, give its name)")
    y = None
    if target_column is not None:
        _require(frame, path, target_column, "target")
        y = _numeric(frame, path, target_column, "target", first_row=first_row)
    reserved = {c for c in (task_column, target_column, *reserved) if c is not None}
    if features is not None:
        columns = list(features)
        if not columns:
            raise TableError("the list of feature columns is empty")
        for c in columns:
            _require(frame, path, c, "feature")
        dup = sorted({c for c in columns if columns.count(c) > 1})
        if dup:
            raise TableError(f"feature columns are listed more than once: {dup}")
    elif feature_prefix is not None:
        columns = [c for c in frame.columns if c.startswith(feature_prefix) and c not in reserved]
        if not columns:
            raise TableError(f"file {str(path)!r}: no column starts with the feature prefix {feature_prefix!r}; the "
                             f"file's columns are {list(frame.columns)[:20]}")
    else:
        columns = [c for c in frame.columns if c not in reserved]
        if not columns:
            raise TableError(f"file {str(path)!r} has no feature columns besides the task and target columns")
    clash = reserved.intersection(columns)
    if clash:
        raise TableError(f"column(s) {sorted(clash)} cannot be both a feature and the task or target column")
    X = np.column_stack([_numeric(frame, path, c, "feature", first_row=first_row) for c in columns]) \
        if numeric_features else None
    return TaskTable(X=X, y=y, tasks=tasks, feature_columns=columns, frame=frame)


def _task_text(labels: Any, path: Path, column: str, first_row: int = 0) -> TaskCodes:
    """Task ids as text, the same from every format (see the module docstring); missing or blank ids refused."""
    import pandas as pd

    missing = labels.isna().to_numpy()
    if pd.api.types.is_float_dtype(labels):
        values = labels.to_numpy(dtype=np.float64, na_value=np.nan)
        fractional = ~missing & (values != np.round(values))
        if fractional.any():
            row = int(np.flatnonzero(fractional)[0])
            raise TableError(f"file {str(path)!r}: task column {column!r} holds non-integer numbers "
                             f"(row {first_row + row + 1}: {float(values[row])!r}); task ids must be text or integers")
        if not missing.any():
            labels = labels.astype(np.int64)
    elif not (pd.api.types.is_integer_dtype(labels) or pd.api.types.is_string_dtype(labels)
              or pd.api.types.is_object_dtype(labels)):
        raise TableError(f"file {str(path)!r}: task column {column!r} has dtype {labels.dtype}; task ids must be "
                         f"text or integers")
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise TableError(f"file {str(path)!r}: task column {column!r} has {int(missing.sum())} missing "
                         f"value(s) (first: row {first_row + row + 1})")
    codes, uniques = pd.factorize(labels)  # one code per row, one table entry per distinct id
    text = pd.Series(np.asarray(uniques, dtype=object)).astype(str)
    lengths = text.str.len().to_numpy()
    for bad, what in ((lengths == 0, "a blank id"),
                      (lengths > MAX_TASK_ID_LENGTH, f"an id longer than {MAX_TASK_ID_LENGTH} characters")):
        if bad.any():
            entry = int(np.flatnonzero(bad)[0])
            rows = np.flatnonzero(codes == entry)
            size = f" ({lengths[entry]:,} characters)" if lengths[entry] else ""
            raise TableError(f"file {str(path)!r}: task column {column!r} has {what}{size} in {rows.size} row(s) "
                             f"(first: row {first_row + rows[0] + 1}); every row needs a task id of 1 to "
                             f"{MAX_TASK_ID_LENGTH} characters (longer ids cost that much memory for every task: "
                             f"shorten or hash them)")
    try:
        return TaskCodes.create(codes, text.to_numpy().astype(str))
    except ValueError as exc:
        raise TableError(f"file {str(path)!r}: task column {column!r}: {exc} once read as text") from exc


def write_table(frame: Any, path: str | os.PathLike) -> Path:
    """Write a DataFrame as CSV / TSV or Parquet, by the suffix of ``path``, in one atomic write
    (:func:`lorsa._files.atomic_output`: an interrupted or failed write leaves no partial file)."""
    from ._files import atomic_output

    path = Path(path)
    kind = _kind(path)
    if not path.parent.exists():
        raise TableError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")
    with atomic_output(path, "output file") as tmp:
        if kind == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False, sep="\t" if kind == "tsv" else ",")
    return path

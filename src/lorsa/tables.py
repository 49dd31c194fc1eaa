"""Users' own data as CSV or Parquet tables: one row per sample, a task column, a target column, feature columns.

Used by ``lorsa fit`` / ``lorsa predict`` / ``lorsa adapt`` (:mod:`lorsa.commands.data_io`). pandas (and pyarrow for
Parquet) are imported only when a table is read. Every problem is reported as :class:`TableError` naming the file
and, where there is one, the column (and the first offending row, counted from 1 after the header).

Task labels are always read as strings (``"007"`` stays ``"007"``, and a label reads the same from CSV and Parquet),
so a model fitted on one file predicts on another without type surprises.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TableError", "TaskTable", "read_table", "select_columns", "write_table", "TABLE_SUFFIXES"]

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
    tasks : ndarray of shape (N,), str
    feature_columns : list of str
        The ``d`` feature columns, in the order of ``X``'s columns.
    frame : pandas.DataFrame
        The table as read (to carry id columns into an output).
    """

    X: np.ndarray
    y: np.ndarray | None
    tasks: np.ndarray
    feature_columns: list[str]
    frame: Any


def _kind(path: Path) -> str:
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise TableError(f"file {str(path)!r}: unsupported file type {path.suffix!r}; use one of "
                         f"{sorted(TABLE_SUFFIXES)} (CSV or Parquet)")
    return kind


def read_table(path: str | os.PathLike, task_column: str | None = None) -> Any:
    """Read a CSV / TSV / Parquet file into a pandas DataFrame (``task_column`` read as strings).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    TableError
        For an unsupported suffix, an empty file, a file without data rows, or an unreadable file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    if path.is_dir():
        raise TableError(f"data file {str(path)!r} is a folder; give a CSV or Parquet file")
    kind = _kind(path)
    if path.stat().st_size == 0:
        raise TableError(f"file {str(path)!r} is empty (no header, no rows)")
    import pandas as pd

    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            dtype = {task_column: str} if task_column else None
            frame = pd.read_csv(path, sep="\t" if kind == "tsv" else ",", dtype=dtype)
    except pd.errors.EmptyDataError as exc:
        raise TableError(f"file {str(path)!r} is empty (no header, no rows)") from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise TableError(f"file {str(path)!r} cannot be read as {kind}: {exc}") from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt Parquet files
        raise TableError(f"file {str(path)!r} cannot be read as {kind}: {exc}") from exc
    if frame.shape[0] == 0:
        raise TableError(f"file {str(path)!r} has a header but no data rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _require(frame: Any, path: Path, column: str, role: str) -> None:
    if column not in frame.columns:
        shown = ", ".join(repr(c) for c in list(frame.columns)[:20])
        more = ", ..." if frame.shape[1] > 20 else ""
        raise TableError(f"file {str(path)!r}: {role} column {column!r} not found; the file's columns are "
                         f"[{shown}{more}]")


def _numeric(frame: Any, path: Path, column: str, role: str) -> np.ndarray:
    import pandas as pd

    series = frame[column]
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(np.float64)
    if not pd.api.types.is_numeric_dtype(series):
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise TableError(f"file {str(path)!r}: {role} column {column!r} is not numeric (row {row + 1}: "
                             f"{series.iloc[row]!r})")
        series = converted
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        what = "missing" if np.isnan(values[row]) else "infinite"
        raise TableError(f"file {str(path)!r}: {role} column {column!r} has {int((~finite).sum())} missing or "
                         f"infinite value(s) (first: row {row + 1} is {what})")
    return values


def select_columns(frame: Any, path: str | os.PathLike, task_column: str | None, target_column: str | None,
                   features: Sequence[str] | None = None, feature_prefix: str | None = None,
                   task_name: str | None = None) -> TaskTable:
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
    """
    path = Path(path)
    if features is not None and feature_prefix is not None:
        raise TableError("give the feature columns either as a list or as a prefix, not both")
    if task_column is not None:
        _require(frame, path, task_column, "task")
        labels = frame[task_column]
        missing = labels.isna().to_numpy()
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise TableError(f"file {str(path)!r}: task column {task_column!r} has {int(missing.sum())} missing "
                             f"value(s) (first: row {row + 1})")
        tasks = labels.astype(str).to_numpy().astype(str)
    elif task_name is not None:
        tasks = np.full(frame.shape[0], str(task_name))
    else:
        raise TableError("name the task column (or, for a single task, give its name)")
    y = None
    if target_column is not None:
        _require(frame, path, target_column, "target")
        y = _numeric(frame, path, target_column, "target")
    reserved = {c for c in (task_column, target_column) if c is not None}
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
    X = np.column_stack([_numeric(frame, path, c, "feature") for c in columns])
    return TaskTable(X=X, y=y, tasks=tasks, feature_columns=columns, frame=frame)


def write_table(frame: Any, path: str | os.PathLike) -> Path:
    """Write a DataFrame as CSV / TSV or Parquet, by the suffix of ``path``."""
    path = Path(path)
    kind = _kind(path)
    if not path.parent.exists():
        raise TableError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")
    if kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep="\t" if kind == "tsv" else ",")
    return path

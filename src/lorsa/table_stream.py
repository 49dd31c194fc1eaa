"""A CSV or Parquet table read in chunks straight into the final arrays: ``X`` (N, d), ``y`` (N,) and task codes.

:func:`lorsa.tables.read_table` holds the whole table as a DataFrame, and taking ``X`` out of it copies every
feature once more; with the parser's own buffers that peaked at 4.5 times the size of ``X`` in ``lorsa fit``.
:func:`read_task_table` allocates ``X``, ``y`` and the codes once (N from the Parquet metadata, or bounded by the
CSV's count of line ends, which is at least its number of rows) and fills them chunk by chunk of rows, each chunk
checked by :func:`lorsa.tables.select_columns` exactly as a whole table is (same messages, rows counted in the
whole file). Task ids become codes into one table of distinct ids as the chunks arrive (:class:`TaskCodes`). So the
peak is ``X`` plus ``y``, the codes and one chunk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .tables import TableError, TaskTable, csv_options, data_file, select_columns
from .task_labels import TaskCodes

__all__ = ["read_task_table"]

_CHUNK_ROWS = 1 << 17


def _count_line_ends(path: Path, block: int = 1 << 24) -> int:
    """Number of ``\\n`` in the file, plus one for a last line without it (an upper bound on its rows + 1)."""
    count, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _chunks(path: Path, kind: str, task_column: str | None, columns: list[str] | None, chunk_rows: int
            ) -> tuple[list[str], int, Iterator[Any]]:
    """``(header, upper bound on the rows, iterator over DataFrame chunks of the needed columns)``."""
    import pandas as pd

    if kind == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        header = [str(c) for c in parquet.schema_arrow.names]
        if columns is None:
            return header, parquet.metadata.num_rows, iter(())
        batches = parquet.iter_batches(batch_size=chunk_rows, columns=columns)
        return header, parquet.metadata.num_rows, (batch.to_pandas() for batch in batches)
    header, options = csv_options(path, "\t" if kind == "tsv" else ",", task_column)
    if columns is None:
        return header, 0, iter(())
    reader = pd.read_csv(path, usecols=columns, chunksize=chunk_rows, **options)
    return header, max(_count_line_ends(path) - 1, 0), iter(reader)


def read_task_table(path: str | os.PathLike, task_column: str | None, target_column: str | None,
                    features: Sequence[str] | None = None, feature_prefix: str | None = None,
                    task_name: str | None = None, dtype: Any = np.float64,
                    chunk_rows: int = _CHUNK_ROWS) -> TaskTable:
    """The arrays :func:`lorsa.tables.select_columns` takes from a table, read without holding the table.

    Parameters are those of :func:`lorsa.tables.select_columns` (``dtype``: of ``X`` and ``y``; float64 or float32).
    The result's ``frame`` is None.

    Raises
    ------
    FileNotFoundError, TableError
        As :func:`lorsa.tables.read_table` and :func:`lorsa.tables.select_columns`.
    """
    import pandas as pd

    path, kind = data_file(path)
    try:
        header, _, _ = _chunks(path, kind, task_column, None, chunk_rows)
        from .tables import _refuse_duplicates

        _refuse_duplicates(header, path)
        # the column checks and the choice of features run once on the header, as on a whole table
        empty = select_columns(pd.DataFrame(columns=header), path, task_column, target_column, features,
                               feature_prefix, task_name)
        needed = [c for c in (task_column, target_column) if c is not None] + empty.feature_columns
        _, bound, chunks = _chunks(path, kind, task_column, [c for c in header if c in set(needed)], chunk_rows)
        X = np.empty((bound, len(empty.feature_columns)), dtype=dtype)
        y = None if target_column is None else np.empty(bound, dtype=dtype)
        codes = np.empty(bound, dtype=np.int64)
        known = pd.Index([], dtype=object)
        n = 0
        for chunk in chunks:
            chunk.columns = [str(c) for c in chunk.columns]
            part = select_columns(chunk, path, task_column, target_column, empty.feature_columns, None, task_name,
                                  first_row=n)
            stop = n + part.X.shape[0]
            if stop > bound:  # more rows than line ends: cannot happen for a well-formed file
                raise TableError(f"file {str(path)!r} has more rows than its {bound} line ends")
            X[n:stop] = part.X
            if y is not None:
                y[n:stop] = part.y
            where = known.get_indexer(part.tasks.labels)
            new = where < 0
            where[new] = len(known) + np.arange(int(new.sum()))
            known = known.append(pd.Index(part.tasks.labels[new], dtype=object))
            codes[n:stop] = where[part.tasks.codes]
            n = stop
    except (TableError, FileNotFoundError):
        raise
    except pd.errors.EmptyDataError as exc:
        raise TableError(f"file {str(path)!r} is empty (no header, no rows)") from exc
    except Exception as exc:  # parser errors, pyarrow's own error types for corrupt Parquet files
        if isinstance(exc, MemoryError | KeyboardInterrupt):
            raise
        raise TableError(f"file {str(path)!r} cannot be read as {kind}: {exc}") from exc
    if n == 0:
        raise TableError(f"file {str(path)!r} has a header but no data rows")
    tasks = TaskCodes.create(codes[:n], np.asarray(known, dtype=object).astype(str))
    return TaskTable(X=X[:n], y=None if y is None else y[:n], tasks=tasks, feature_columns=empty.feature_columns,
                     frame=None)

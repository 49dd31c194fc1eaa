"""What ``lorsa fit`` / ``predict`` / ``adapt`` / ``evaluate`` share about a model file written from a table.

- the table's encoding (:class:`lorsa.preprocessing.TablePreprocessor`: ``--categorical``, ``--standardize``,
  ``--intercept``, ``--impute``), stored in the model file's metadata (key ``preprocessing``) and applied again
  to every table the model later reads;
- the training rows of every task (array ``cli_task_rows``, in the order of the model's tasks), so that
  ``lorsa evaluate`` reports errors by training task size;
- loading any model kind (``LRSRegressor``, ``PrivateLRSRegressor`` or a baseline) with these records checked;
- a fit's warnings shown as one line each (``lorsa fit: warning: ...``; hidden by ``--quiet``) instead of Python's
  warning format, and a progress bar over a command's steps.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["add_table_options", "read_features", "model_features", "save_model", "load_model_file", "cli_warnings",
           "Steps", "check_model_suffix", "PREPROCESSING_KEY", "TASK_ROWS"]

PREPROCESSING_KEY = "preprocessing"
TASK_ROWS = "cli_task_rows"


def add_table_options(parser: argparse.ArgumentParser) -> None:
    """``--categorical``, ``--standardize``, ``--intercept``, ``--impute`` (for ``lorsa fit``)."""
    group = parser.add_argument_group(
        "feature encoding (stored in the model file and applied again by predict, adapt and evaluate)")
    group.add_argument("--categorical", nargs="+", default=[], metavar="COLUMN",
                       help="feature columns to one-hot encode (read as text; one 0/1 feature per category seen in "
                            "training; a category not seen in training is encoded as all zeros, with a note)")
    group.add_argument("--standardize", action="store_true",
                       help="centre and scale every numeric feature by its training mean and standard deviation")
    group.add_argument("--intercept", action="store_true",
                       help="append a constant feature 'intercept' = 1, so every task's model has an offset")
    group.add_argument("--impute", choices=("mean",), default=None,
                       help="fill missing numeric values with the training mean (a missing category: all zeros); "
                            "without it a missing value is an error naming the file, column and row")


def check_model_suffix(path: str, option: str = "--output") -> None:
    """A model file is lorsa's ``.npz`` archive: refuse a name that says otherwise (``model.csv``)."""
    if Path(path).suffix.lower() != ".npz":
        raise ValueError(f"{option} {path!r}: a model file is lorsa's .npz archive, give a name ending in .npz "
                         f"(e.g. {Path(path).with_suffix('.npz').name!r}); predictions are written by "
                         f"'lorsa predict'")


def read_features(args: argparse.Namespace, task_column: str | None, target: str | None,
                  features: list[str] | None, prefix: str | None, pre: Any = None, task_name: str | None = None,
                  dtype: Any = None, fit: bool = False) -> tuple[Any, Any, Any, list[str]]:
    """``(X, table, encoding, notes)`` of ``args.data``: with ``fit`` the encoding is fitted from the fit options
    (``--categorical`` ...), else the model's ``pre`` is applied (None: the numeric columns as they are).

    Numeric columns as they are (and an intercept) are read in chunks straight into ``X``
    (:func:`lorsa.table_stream.read_task_table`, the table never held whole); an encoding that learns from or
    rewrites the columns (categories, standardisation, imputation) holds the table while it encodes it."""
    import numpy as np

    from ..preprocessing import TablePreprocessor
    from ..table_stream import read_task_table
    from ..tables import read_table, select_columns

    fitting = fit
    encoded = bool(args.categorical or args.standardize or args.impute) if fitting else \
        (pre is not None and not pre.streamable)
    if not encoded:
        table = read_task_table(args.data, task_column, target, features, prefix, task_name=task_name,
                                dtype=dtype or np.float64)
        intercept = bool(args.intercept if fitting else pre is not None and pre.intercept)
        X = np.hstack([table.X, np.ones((table.X.shape[0], 1), dtype=table.X.dtype)]) if intercept else table.X
        return X, table, TablePreprocessor(columns=table.feature_columns, intercept=intercept), []
    frame = read_table(args.data, task_column, text_columns=args.categorical if fitting else list(pre.categories))
    table = select_columns(frame, args.data, task_column, target, features, prefix, task_name=task_name,
                           numeric_features=False)
    if fitting:
        pre = TablePreprocessor.fit(frame, args.data, table.feature_columns, categorical=args.categorical,
                                    standardize=args.standardize, intercept=args.intercept, impute=args.impute)
    X, notes = pre.transform(frame, args.data)
    return X, table, pre, notes


def model_features(args: argparse.Namespace, pre: Any, recorded: dict[str, Any]) -> tuple[list[str] | None,
                                                                                          str | None]:
    """Feature columns to select from a table for an existing model: the encoded model's own (the options may not
    change them), else ``--features`` / ``--feature-prefix``, else the columns recorded by ``lorsa fit``."""
    if pre is not None:
        given = args.features is not None or args.feature_prefix is not None
        if given and not pre.is_plain:
            raise ValueError("this model encodes its feature columns (recorded in the model file); --features and "
                             "--feature-prefix cannot change them")
        if not given:
            return list(pre.columns), None
    if args.features is not None or args.feature_prefix is not None:
        return args.features, args.feature_prefix
    if recorded.get("feature_columns"):
        return list(recorded["feature_columns"]), None
    raise ValueError("the model file records no feature columns (it was not written by 'lorsa fit'); "
                     "give --features or --feature-prefix")


def save_model(est: Any, path: str | Path, columns: dict[str, Any], pre: Any, task_rows: Any,
               include_users: bool = False) -> None:
    """Write ``est``'s model file with the column names, the encoding and the tasks' training rows, in one atomic
    write (``include_users``: a private model's per-user parameters too, outside its guarantee)."""
    import numpy as np

    from ..io import write_model_file
    from .data_io import COLUMNS_KEY

    kind, arrays, meta = est._model_file_contents(include_users=True) if include_users else \
        est._model_file_contents()
    meta[COLUMNS_KEY] = columns
    if pre is not None:
        meta[PREPROCESSING_KEY] = pre.to_dict()
    if task_rows is not None:
        arrays = {**arrays, TASK_ROWS: np.asarray(task_rows, dtype=np.int64)}
    write_model_file(path, kind, arrays, meta)


def load_model_file(path: str, with_task_rows: bool = False) -> tuple[Any, dict[str, Any], Any, Any]:
    """``(estimator, recorded columns, encoding or None, training rows per task or None)`` of any model file."""
    import numpy as np

    from ..baselines import load_model
    from ..io import ModelFileError, read_model_file, read_model_metadata
    from ..preprocessing import TablePreprocessor
    from .data_io import COLUMNS_KEY, check_columns

    meta = read_model_metadata(path)
    est = load_model(path)
    pre = None
    if meta.get(PREPROCESSING_KEY) is not None:
        try:
            pre = TablePreprocessor.from_dict(meta[PREPROCESSING_KEY], f"model file {path!r}")
        except ValueError as exc:
            raise ModelFileError(str(exc)) from exc
        if pre.n_features != est.n_features_in_:
            raise ModelFileError(f"model file {path!r}: the recorded encoding gives {pre.n_features} features for a "
                                 f"model of {est.n_features_in_}")
    recorded = check_columns(meta.get(COLUMNS_KEY), path, None if pre is not None else est.n_features_in_)
    rows = None
    if with_task_rows:
        arrays, _ = read_model_file(path)
        rows = arrays.get(TASK_ROWS)
        if rows is not None and (rows.shape != est.tasks_.shape or rows.dtype.kind not in "iu" or (rows < 0).any()):
            raise ModelFileError(f"model file {path!r}: {TASK_ROWS} must hold one row count per task")
        rows = None if rows is None else np.asarray(rows, dtype=np.int64)
    return est, recorded, pre, rows


@contextmanager
def cli_warnings(args: argparse.Namespace) -> Iterator[None]:
    """Show the warnings raised inside as ``lorsa <command>: warning: <message>`` lines on stderr (each distinct
    message once; none with ``--quiet``), a ``ConvergenceWarning`` with the options that help."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    if getattr(args, "quiet", False):
        return
    seen: set[str] = set()
    for item in caught:
        text = " ".join(str(item.message).split())
        if isinstance(item.message, ConvergenceWarning):
            text = (f"{text.split(':')[0]}: it stopped at --max-iter before the subspace change or the relative "
                    "objective change fell below --tol; the model is written, but raise --max-iter (or --tol) for "
                    "a converged fit")
        if text not in seen:
            seen.add(text)
            print(f"lorsa {args.command}: warning: {text}", file=sys.stderr, flush=True)


class Steps:
    """A progress bar over a command's named steps on stderr (none with ``--quiet`` or without tqdm)."""

    def __init__(self, args: argparse.Namespace, names: list[str]) -> None:
        self._bar = None
        if not getattr(args, "quiet", False):
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=len(names), desc=f"lorsa {args.command}", unit="step", leave=False,
                                 dynamic_ncols=True, file=sys.stderr, disable=None)  # None: off unless a terminal
            except ImportError:  # pragma: no cover - tqdm is in the cli extra
                self._bar = None

    def step(self, name: str) -> None:
        """Start step ``name`` (the previous one is done)."""
        if self._bar is not None:
            if self._bar.n or getattr(self, "_started", False):
                self._bar.update(1)
            self._started = True
            self._bar.set_postfix_str(name)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self._bar.total - self._bar.n)
            self._bar.close()

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Table preprocessing for the command line: categorical one-hot encoding, standardisation, mean imputation and an
intercept column, fitted on the training table and stored in the model file (JSON, no pickle).

:class:`TablePreprocessor` turns the feature columns of a table (:mod:`lorsa.tables`) into the model's feature
matrix ``X``:

- a **numeric** column becomes one feature; with ``impute="mean"`` its missing values become the training mean
  (otherwise a missing value is an error naming the file, the column and the row); with ``standardize`` it is
  centred and scaled by the training mean and standard deviation of its observed values (a constant column is
  only centred);
- a **categorical** column (read as text: ``"007"`` stays ``"007"``) becomes one 0/1 feature per category seen in
  training, named ``column=category`` (categories sorted); a category never seen in training — or, with
  ``impute="mean"``, a missing value — is encoded as all zeros, and the rows concerned are counted in the notes
  :meth:`TablePreprocessor.transform` returns (the command line prints them);
- ``intercept`` appends a constant feature ``intercept`` = 1 (never standardised), so every task's model gets an
  offset (for AMHT-LRS the offset is part of ``U w_i + b_i``).

Features keep the order of the feature columns (a categorical column's block at its place), the intercept last.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .tables import TableError, numeric_column

__all__ = ["TablePreprocessor", "IMPUTE_CHOICES", "INTERCEPT_NAME"]

IMPUTE_CHOICES = ("mean",)
INTERCEPT_NAME = "intercept"
_MAX_CATEGORIES = 10_000  # one-hot columns per categorical column (a column of ids is a task column, not a feature)


@dataclass
class TablePreprocessor:
    """The fitted encoding of a table's feature columns (see the module docstring).

    Attributes
    ----------
    columns : list of str
        Feature columns of the table, in order.
    categories : dict of str -> list of str
        Categorical columns and the categories seen in training (sorted).
    standardize : bool
    intercept : bool
    impute : str or None
        ``"mean"`` or None (missing values are errors).
    means, scales : dict of str -> float
        Training mean (of the observed values) and standard deviation (1 for a constant column) of every numeric
        column, used by ``impute`` and ``standardize`` (empty without them: nothing is learnt from the values).
    """

    columns: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)
    standardize: bool = False
    intercept: bool = False
    impute: str | None = None
    means: dict[str, float] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(cls, frame: Any, path: str | os.PathLike, columns: list[str], categorical: list[str] | tuple = (),
            standardize: bool = False, intercept: bool = False, impute: str | None = None) -> TablePreprocessor:
        """Learn the encoding from the training table ``frame`` (read from ``path``, named in messages)."""
        path = Path(path)
        if impute is not None and impute not in IMPUTE_CHOICES:
            raise ValueError(f"impute must be one of {list(IMPUTE_CHOICES)} or None, got {impute!r}")
        categorical = list(categorical)
        extra = [c for c in categorical if c not in columns]
        if extra:
            raise TableError(f"file {str(path)!r}: --categorical column(s) {extra} are not among the feature columns "
                             f"({columns[:10]}{', ...' if len(columns) > 10 else ''})")
        if len(set(categorical)) != len(categorical):
            raise TableError(f"--categorical lists a column more than once: {categorical}")
        if intercept and INTERCEPT_NAME in columns:
            raise TableError(f"file {str(path)!r} already has a column {INTERCEPT_NAME!r}; --intercept would add a "
                             "second one: rename it or drop --intercept")
        pre = cls(columns=list(columns), standardize=bool(standardize), intercept=bool(intercept), impute=impute)
        for column in columns:
            if column in categorical:
                text, missing = _category_text(frame, path, column, allow_missing=impute is not None)
                seen = sorted(set(text[~missing].tolist()))
                if not seen:
                    raise TableError(f"file {str(path)!r}: categorical column {column!r} has no values")
                if len(seen) > _MAX_CATEGORIES:
                    raise TableError(f"file {str(path)!r}: categorical column {column!r} has {len(seen):,} distinct "
                                     f"values (at most {_MAX_CATEGORIES:,} one-hot features per column); an id "
                                     f"with that many values is a task column, not a feature")
                pre.categories[column] = seen
            else:
                values = numeric_column(frame, path, column, "feature", allow_missing=impute is not None)
                if not (standardize or impute):  # nothing learnt from the column's values (none is stored)
                    continue
                observed = values[~np.isnan(values)]
                if observed.size == 0:
                    raise TableError(f"file {str(path)!r}: feature column {column!r} has no values to impute from "
                                     f"(every row is missing)")
                pre.means[column] = float(observed.mean())
                scale = float(observed.std())
                pre.scales[column] = scale if scale > 0 else 1.0
        return pre

    # ------------------------------------------------------------------ transform
    @property
    def feature_names(self) -> list[str]:
        """Names of the model's features, in the order of ``X``'s columns."""
        names: list[str] = []
        for column in self.columns:
            if column in self.categories:
                names.extend(f"{column}={cat}" for cat in self.categories[column])
            else:
                names.append(column)
        return names + ([INTERCEPT_NAME] if self.intercept else [])

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def streamable(self) -> bool:
        """True when no column is learnt from or rewritten (at most an intercept is added): the table can be read
        in chunks straight into ``X``."""
        return not (self.categories or self.standardize or self.impute)

    @property
    def is_plain(self) -> bool:
        """True when the features are the numeric columns as they are (no option changed them)."""
        return not (self.categories or self.standardize or self.intercept or self.impute)

    def transform(self, frame: Any, path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
        """The feature matrix of ``frame`` (float64, shape (N, n_features)) and notes on rows encoded as all
        zeros (unseen categories, imputed values), one line each, for the user."""
        path = Path(path)
        n = frame.shape[0]
        X = np.empty((n, self.n_features), dtype=np.float64)
        notes: list[str] = []
        j = 0
        for column in self.columns:
            if column in self.categories:
                cats = self.categories[column]
                text, missing = _category_text(frame, path, column, allow_missing=self.impute is not None)
                code = np.searchsorted(np.asarray(cats, dtype=object), text)
                code = np.minimum(code, len(cats) - 1)
                known = ~missing & (np.asarray(cats, dtype=object)[code] == text)
                block = np.zeros((n, len(cats)))
                block[np.flatnonzero(known), code[known]] = 1.0
                X[:, j:j + len(cats)] = block
                j += len(cats)
                unseen = ~known & ~missing
                if unseen.any():
                    row = int(np.flatnonzero(unseen)[0])
                    notes.append(f"file {str(path)!r}: categorical column {column!r} has {int(unseen.sum())} row(s) "
                                 f"with categories not seen in training (first: row {row + 1}, {text[row]!r}); "
                                 f"they are encoded as all zeros")
                if missing.any():
                    notes.append(f"file {str(path)!r}: categorical column {column!r} has {int(missing.sum())} "
                                 f"missing value(s); encoded as all zeros (--impute)")
            else:
                values = numeric_column(frame, path, column, "feature", allow_missing=self.impute is not None)
                gaps = np.isnan(values)
                if gaps.any():
                    values = np.where(gaps, self.means[column], values)
                    notes.append(f"file {str(path)!r}: feature column {column!r}: {int(gaps.sum())} missing value(s) "
                                 f"imputed with the training mean {self.means[column]:.6g}")
                if self.standardize:
                    values = (values - self.means[column]) / self.scales[column]
                X[:, j] = values
                j += 1
        if self.intercept:
            X[:, j] = 1.0
        return X, notes

    # ------------------------------------------------------------------ model file
    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, stored in the model file's metadata (key ``preprocessing``)."""
        return {"columns": list(self.columns), "categories": {k: list(v) for k, v in self.categories.items()},
                "standardize": self.standardize, "intercept": self.intercept, "impute": self.impute,
                "means": dict(self.means), "scales": dict(self.scales)}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> TablePreprocessor:
        """Read :meth:`to_dict`'s form back, checking every field (ValueError naming ``where``)."""
        bad = f"{where}: the recorded preprocessing is malformed"
        if not isinstance(data, dict) or set(data) != {"columns", "categories", "standardize", "intercept", "impute",
                                                       "means", "scales"}:
            raise ValueError(f"{bad} ({str(data)[:200]})")
        columns, categories = data["columns"], data["categories"]
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns) \
                or len(set(columns)) != len(columns):
            raise ValueError(f"{bad}: columns must be distinct column names")
        if not isinstance(categories, dict) or not set(categories) <= set(columns) or not all(
                isinstance(v, list) and v and all(isinstance(c, str) for c in v) and v == sorted(set(v))
                for v in categories.values()):
            raise ValueError(f"{bad}: categories must map feature columns to sorted distinct category names")
        numeric = [c for c in columns if c not in categories] if data["standardize"] or data["impute"] else []
        for key in ("means", "scales"):
            values = data[key]
            if not isinstance(values, dict) or set(values) != set(numeric) or not all(
                    isinstance(x, int | float) and not isinstance(x, bool) and np.isfinite(x) for x in values.values()):
                raise ValueError(f"{bad}: {key} must give a finite number for every numeric column")
        if any(data["scales"][c] <= 0 for c in numeric):
            raise ValueError(f"{bad}: scales must be positive")
        if not isinstance(data["standardize"], bool) or not isinstance(data["intercept"], bool) \
                or data["impute"] not in (None, *IMPUTE_CHOICES):
            raise ValueError(f"{bad}: standardize / intercept must be true or false, impute null or 'mean'")
        return cls(columns=columns, categories={k: list(v) for k, v in categories.items()},
                   standardize=data["standardize"], intercept=data["intercept"], impute=data["impute"],
                   means={k: float(x) for k, x in data["means"].items()},
                   scales={k: float(x) for k, x in data["scales"].items()})


def _category_text(frame: Any, path: Path, column: str, allow_missing: bool) -> tuple[np.ndarray, np.ndarray]:
    """A categorical column as text (object array) and its missing-value mask; integers stored as floats (``7.0``,
    what a column of integers with gaps becomes) read as their digits. Missing values are an error unless
    ``allow_missing``."""
    import pandas as pd

    if column not in frame.columns:
        raise TableError(f"file {str(path)!r}: categorical column {column!r} not found; the file's columns are "
                         f"{list(frame.columns)[:20]}")
    series = frame[column]
    missing = series.isna().to_numpy()
    if missing.any() and not allow_missing:
        row = int(np.flatnonzero(missing)[0])
        raise TableError(f"file {str(path)!r}: categorical column {column!r} has {int(missing.sum())} missing "
                         f"value(s) (first: row {row + 1}); fill them or give --impute mean (encoded as all zeros)")
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = ~missing & (values == np.round(values))
        text = np.where(whole, pd.Series(values).fillna(0).astype(np.int64).astype(str).to_numpy(dtype=object),
                        series.astype(str).to_numpy(dtype=object))
    else:
        text = series.astype(str).to_numpy(dtype=object)
    text = np.asarray(text, dtype=object)
    text[missing] = ""
    return text, missing

"""The scikit-learn contract every lorsa estimator follows: :class:`TaskRegressorMixin`.

A lorsa estimator fits one linear model per *task* and takes the task of every row as the metadata ``tasks``
(``fit(X, y, tasks=...)``, ``predict(X, tasks=...)``, ``score(X, y, tasks=...)``). This mixin gives it what
scikit-learn's machinery expects:

- it derives from :class:`sklearn.base.BaseEstimator` and :class:`sklearn.base.RegressorMixin`
  (``get_params``/``set_params``/``clone``/``__repr__``, ``__sklearn_tags__``: a single-output regressor, dense
  input, no missing values);
- ``tasks`` is **requested by default** for ``fit``, ``predict`` and ``score`` in scikit-learn's metadata
  routing, so with ``sklearn.set_config(enable_metadata_routing=True)`` ``GridSearchCV(...).fit(X, y, tasks=t)``,
  ``cross_val_score(est, X, y, params={"tasks": t})`` and ``Pipeline`` pass every split's task labels to the
  estimator and to its scorer (``sample_weight`` is not requested by default: ``set_fit_request(sample_weight=True)``);
- ``tasks`` omitted means **one task**: every row of ``fit`` belongs to the task labelled ``0``, and ``predict``
  without ``tasks`` is allowed only for a model fitted on a single task;
- ``score`` is the coefficient of determination R^2 (what ``GridSearchCV`` and ``cross_val_score`` maximise);
  :meth:`TaskRegressorMixin.rmse` gives the root mean squared error (or use the ``"neg_root_mean_squared_error"``
  scorer);
- inputs are checked once, at the boundary: ``X`` as a numeric array (lists, pandas or polars DataFrames with
  nullable / bool columns, float32 kept, any memory order), scipy.sparse refused with a clear error, missing values
  refused naming the row and the column; ``feature_names_in_`` and ``n_features_in_`` are recorded at ``fit`` and
  a DataFrame whose columns are missing, renamed or reordered at ``predict`` is refused (never silently misused);
- before ``fit``, ``predict`` raises :class:`sklearn.exceptions.NotFittedError` and ``check_is_fitted`` works.

How an estimator uses it (``LRSRegressor`` in :mod:`lorsa.model`, the baselines in :mod:`lorsa.baselines.base`)::

    class MyRegressor(TaskRegressorMixin):
        _min_features = 1                      # fewest features fit accepts

        def fit(self, X, y, tasks=None, sample_weight=None):
            X, y, labels, weight = self._validate_fit(X, y, tasks, sample_weight)   # sets n_features_in_ ...
            ...                                # weight is None or (N,) >= 0; rows_weighted() applies it
            self.tasks_ = unique_labels        # fitted attributes end in "_"
            return self

        def predict(self, X, tasks=None):
            self._check_fitted()
            X, labels = self._validate_predict(X, tasks)    # labels of every row (tasks omitted: the one task)
            ...

``score`` and ``rmse`` then come for free. The estimator checks (``sklearn.utils.estimator_checks``) run on every
estimator in ``tests/test_sklearn_contract.py``.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _validation as v
from .backends.dask import any_dask

__all__ = ["TaskRegressorMixin", "rows_weighted", "check_sample_weight", "SmallTaskWarning"]


class SmallTaskWarning(UserWarning):
    """Some tasks have fewer rows than their model has free parameters (``r + k`` for AMHT-LRS): they are fitted
    with fewer non-zeros and a minimum-norm (or ridge) solution. A category of its own, so that it can be filtered
    (``warnings.simplefilter("ignore", SmallTaskWarning)``) or shown as one line by the command line."""

#: The task label every row gets when ``fit`` is called without ``tasks``.
SINGLE_TASK_LABEL = 0


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """``sample_weight`` as a finite non-negative float array of shape (N,), or None (all rows weigh 1)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim == 0:
        w = np.full(n_samples, w)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got an array of dtype {w.dtype}")
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"sample_weight must have shape ({n_samples},) like the rows of X, got shape {w.shape}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
        raise ValueError(f"sample_weight must be finite and >= 0, got {w[bad]!r} at row {bad}")
    if not (w > 0).any():
        raise ValueError("sample_weight must have at least one positive entry, got all zeros")
    return w


def rows_weighted(X: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled by ``sqrt(w_j)``: least squares on them minimises ``sum_j w_j (y_j - <x_j, theta>)^2``, the
    weighted objective, exactly (every lorsa estimator fits a squared loss)."""
    if weight is None:
        return X, y
    s = np.sqrt(weight)
    return X * s[:, None].astype(X.dtype, copy=False), y * s.astype(y.dtype, copy=False)


def _feature_label(est: Any, col: int) -> str:
    names = getattr(est, "feature_names_in_", None)
    return f"column {names[col]!r} (index {col})" if names is not None and col < len(names) else f"column {col}"


class TaskRegressorMixin(RegressorMixin, BaseEstimator):
    """scikit-learn's estimator contract for a regressor with one model per task (see the module docstring)."""

    __metadata_request__fit: ClassVar[dict[str, bool]] = {"tasks": True}
    __metadata_request__predict: ClassVar[dict[str, bool]] = {"tasks": True}
    __metadata_request__score: ClassVar[dict[str, bool]] = {"tasks": True}

    #: Fewest features ``fit`` accepts (``LRSRegressor`` needs ``d >= 2`` for a rank ``r < d``).
    _min_features: ClassVar[int] = 1

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags

    # ------------------------------------------------------------------ input checks
    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """``X`` as a finite 2-D float64/float32 C-ordered array; records (``reset``) or checks the feature names
        and count."""
        if sp.issparse(X):
            raise TypeError(f"X is a scipy.sparse {type(X).__name__}; {type(self).__name__} needs dense input "
                            "(sparse data is not supported): pass X.toarray() if it fits in memory")
        if X is None:
            raise ValueError(f"X is required: {type(self).__name__} needs an array of shape (n_samples, n_features)")
        try:
            X = validate_data(self, X, reset=reset, accept_sparse=False, dtype=(np.float64, np.float32), order="C",
                              ensure_all_finite=False, ensure_min_features=self._min_features if reset else 1)
        except ValueError as exc:
            if "could not convert" in str(exc) or "dtype='numeric'" in str(exc):
                raise TypeError(f"X must be numeric (numbers or booleans): {exc}") from exc
            raise
        self._check_finite_X(X)
        return X

    def _check_finite_X(self, X: np.ndarray, chunk_rows: int = 65536) -> None:
        for start in range(0, X.shape[0], chunk_rows):
            ok = np.isfinite(X[start:start + chunk_rows])
            if ok.all():
                continue
            row, col = np.argwhere(~ok)[0]
            value = X[start + row, col]
            total = int((~np.isfinite(X)).sum())
            kind = "NaN (a missing value)" if np.isnan(value) else "inf"
            raise ValueError(f"X must contain only finite values; found {total} non-finite, the first {kind} at "
                             f"row {start + int(row)}, {_feature_label(self, int(col))}")

    def _validate_y(self, y: Any, n_samples: int, dtype: np.dtype) -> np.ndarray:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        if type(y).__module__.split(".")[0] in ("pandas", "polars"):  # nullable / bool Series: NaN for missing
            y = check_array(y, ensure_2d=False, dtype=np.float64, ensure_all_finite=False, input_name="y")
        arr = np.asarray(y)
        if arr.dtype.kind == "O":
            arr = arr.astype(np.float64)  # numbers held as objects; anything else raises numpy's TypeError
        if arr.ndim == 2 and arr.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is used as y.ravel()",
                          DataConversionWarning, stacklevel=3)
            arr = arr[:, 0]
        return v.check_targets(arr, n_samples, dtype=dtype)

    def _validate_fit(self, X: Any, y: Any, tasks: Any = None, sample_weight: Any = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Check the arguments of ``fit``; returns ``X, y, labels, weight`` (labels: one per row; ``tasks`` None:
        all ``0``) and records ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame)."""
        X = self._validate_X(X, reset=True)
        y = self._validate_y(y, X.shape[0], X.dtype)
        labels = (np.full(X.shape[0], SINGLE_TASK_LABEL, dtype=np.int64) if tasks is None
                  else v.check_task_labels(tasks, X.shape[0]))
        return X, y, labels, check_sample_weight(sample_weight, X.shape[0])

    def _validate_predict(self, X: Any, tasks: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Check the arguments of ``predict`` on a fitted model; returns ``X, labels`` (``tasks`` None: the model's
        only task, refused for a model of several tasks)."""
        X = self._validate_X(X, reset=False)
        if tasks is None:
            known = self.tasks_
            if known.shape[0] != 1:
                raise ValueError(f"tasks is required: this {type(self).__name__} was fitted on {known.shape[0]} "
                                 "tasks, give the task label of every row (predict(X, tasks=...))")
            return X, np.repeat(known, X.shape[0])
        return X, v.check_task_labels(tasks, X.shape[0])

    def _check_fitted(self) -> None:
        check_is_fitted(self, msg=f"this {type(self).__name__} is not fitted yet; call fit(X, y, tasks=...) first")

    # ------------------------------------------------------------------ scores
    def score(self, X: Any, y: Any, tasks: Any = None, sample_weight: Any = None) -> float:
        """Coefficient of determination R^2 of :meth:`predict` on ``(X, y)`` (1 is perfect; higher is better).

        Parameters
        ----------
        X : array-like of shape (N, d)
        y : array-like of shape (N,)
        tasks : array-like of shape (N,), optional
            Task of every row (omitted: the model's only task).
        sample_weight : array-like of shape (N,), optional
        """
        if any_dask(X, y, tasks, sample_weight):
            from .backends.dask.predict import score_dask

            return score_dask(self, X, y, tasks, sample_weight)
        pred = self.predict(X, tasks=tasks)
        y = self._validate_y(y, pred.shape[0], np.dtype(np.float64))
        return float(r2_score(y, pred, sample_weight=check_sample_weight(sample_weight, pred.shape[0])))

    def rmse(self, X: Any, y: Any, tasks: Any = None, sample_weight: Any = None) -> float:
        """Root mean squared error ``sqrt(mean_j w_j (y_j - yhat_j)^2 / mean_j w_j)`` of :meth:`predict`."""
        if any_dask(X, y, tasks, sample_weight):
            from .backends.dask.predict import rmse_dask

            return rmse_dask(self, X, y, tasks, sample_weight)
        pred = self.predict(X, tasks=tasks)
        y = self._validate_y(y, pred.shape[0], np.dtype(np.float64))
        w = check_sample_weight(sample_weight, pred.shape[0])
        return float(np.sqrt(mean_squared_error(y, pred, sample_weight=w)))

"""What every baseline shares: input checks, task labels, hold-out selection of hyper-parameters, persistence.

A baseline (SPEC §7) is a linear model per task over the same features as :class:`lorsa.LRSRegressor`; it differs
in what a task stores beyond the shared part (:attr:`TaskRegressor.params_per_task`). Subclasses implement two
pure functions of a *state* (a dict of fitted arrays):

- ``_fit_state(X, y, index, n_tasks, params, seed) -> state`` for one setting of the hyper-parameters;
- ``_predict_state(state, X, index) -> y_pred``;

and list which constructor parameters may be given as a sequence of candidates (``_tunable``). When any of them
holds more than one candidate, :meth:`TaskRegressor.fit` holds out a fraction of every task's rows
(:func:`lorsa.data.split_rows`), fits every combination on the rest, keeps the one with the smallest hold-out RMSE
and refits it on all rows. Hyper-parameters are thus chosen on data held out from *training*, never on the test
data an experiment reports.
"""

from __future__ import annotations

import itertools
import numbers
import os
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from .. import _validation as v
from .._estimator import TaskRegressorMixin, rows_weighted
from ..data import encode_tasks, split_rows
from ..io import ModelFileError, read_model_file, write_model_file
from ..params import plain_value
from ..task_labels import TaskCodes, TaskIndex

__all__ = ["TaskRegressor", "candidates", "rmse"]


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    """Root mean squared error ``sqrt(mean((pred - y)^2))``."""
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(y)) ** 2)))


def candidates(name: str, value: Any, check: Any) -> list[Any]:
    """Normalise a hyper-parameter that may be one value or a non-empty sequence of candidates.

    ``check(name, item)`` validates (and converts) one candidate; the list of checked candidates is returned.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        return [check(name, value)]
    items = list(np.asarray(value).tolist()) if isinstance(value, np.ndarray) else list(value)
    if not items:
        raise ValueError(f"{name} must be a value or a non-empty sequence of candidates, got an empty sequence")
    return [check(f"{name}[{i}]" if len(items) > 1 else name, item) for i, item in enumerate(items)]


class TaskRegressor(TaskRegressorMixin):
    """Base class of the baselines: ``fit(X, y, tasks)`` / ``predict(X, tasks)`` with tasks as labels.

    A scikit-learn regressor like :class:`lorsa.LRSRegressor` (:class:`lorsa._estimator.TaskRegressorMixin`:
    ``tasks`` routed as metadata, omitted = one task, ``score`` = R^2, :meth:`rmse`).

    Attributes (after ``fit``)
    --------------------------
    tasks_ : ndarray of shape (t,)
        Sorted distinct task labels seen in ``fit``.
    n_features_in_ : int
        ``d``.
    best_params_ : dict
        The hyper-parameters used for the final fit (the single candidate, or the hold-out winner; candidates
        within 1e-6 of the targets' spread of the best RMSE tie, and the first in grid order wins).
    validation_scores_ : list of dict
        One entry per candidate tried on the hold-out rows: its parameters and ``rmse`` (empty without a search).
    """

    _tunable: ClassVar[tuple[str, ...]] = ()
    _state_names: ClassVar[tuple[str, ...]] = ()
    #: State entries that files written by older versions may lack: name -> function of the stored arrays.
    _state_defaults: ClassVar[dict[str, Any]] = {}

    def _candidates(self, n_features: int) -> dict[str, list[Any]]:
        """Every parameter that enters ``_fit_state``, validated, as a list of candidates (one for fixed ones)."""
        raise NotImplementedError

    def _fit_state(self, X: np.ndarray, y: np.ndarray, index: np.ndarray, n_tasks: int, params: dict[str, Any],
                   seed: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _fit_path(self, X: np.ndarray, y: np.ndarray, index: np.ndarray, n_tasks: int,
                  grid: list[dict[str, Any]], rng: np.random.Generator) -> Iterator[dict[str, np.ndarray]]:
        """The state of every candidate of ``grid`` on the same rows, in order (one ``_fit_state`` each; a
        subclass whose candidates share work, e.g. one Gram matrix for a ridge path, overrides it)."""
        for params in grid:
            yield self._fit_state(X, y, index, n_tasks, params, _seed(rng))

    def _predict_state(self, state: dict[str, np.ndarray], X: np.ndarray, index: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _coefficients_state(self, state: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _params_per_task(self) -> int:
        raise NotImplementedError

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: Any, y: Any, tasks: Any = None, sample_weight: Any = None) -> TaskRegressor:
        """Fit the baseline, choosing hyper-parameters on held-out rows when several candidates are given.

        Parameters
        ----------
        X : array-like of shape (N, d)
        y : array-like of shape (N,)
        tasks : array-like of shape (N,), optional
            Task label (int or str) of every row; omitted, all rows are one task (labelled 0).
        sample_weight : array-like of shape (N,), optional
            Non-negative row weights of the squared loss (rows scaled by ``sqrt(w_j)``; the hold-out RMSE that
            chooses hyper-parameters is then weighted too).
        """
        X, y, labels, weight = self._validate_fit(X, y, tasks, sample_weight)
        X, y = rows_weighted(X.astype(np.float64, copy=False), y, weight)
        fraction = v.check_float("validation_fraction", self.validation_fraction, 0.0, 1.0,
                                 low_inclusive=False, high_inclusive=False)
        grid_axes = self._candidates(X.shape[1])
        rng = v.check_random_state(self.random_state)
        unique, index = encode_tasks(labels)
        t = unique.shape[0]
        names = list(grid_axes)
        grid = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid_axes.values())]
        scores: list[dict[str, Any]] = []
        best = grid[0]
        if len(grid) > 1:
            held = split_rows(index, fraction, rng)
            if not held.any():
                raise ValueError(
                    f"cannot choose among {len(grid)} hyper-parameter candidates: validation_fraction={fraction:g} "
                    f"holds out no row of the n_samples={X.shape[0]} (every task has too few rows); give single "
                    "values instead of sequences"
                )
            train = ~held
            states = self._fit_path(X[train], y[train], index[train], t, grid, rng)
            for params, state in zip(grid, states, strict=True):
                score = rmse(self._predict_state(state, X[held], index[held]), y[held])
                tried = {k: plain_value(val) for k, val in params.items() if k in self._tunable}
                scores.append({**tried, "rmse": score})
            # Candidates within round-off of the best (1e-6 of the targets' spread: e.g. several exact fits of
            # noiseless data) tie; the first in grid order wins, so list candidates from the simplest.
            rmses = np.array([s["rmse"] for s in scores])
            tie = rmses.min() + 1e-6 * float(np.std(y[held]))
            best = grid[int(np.flatnonzero(rmses <= tie)[0])]
        state = self._fit_state(X, y, index, t, best, _seed(rng))
        for name, value in state.items():
            setattr(self, name, value)
        self.best_params_ = {k: plain_value(val) for k, val in best.items() if k in self._tunable}
        self.validation_scores_ = scores
        self.tasks_ = unique
        self._index = TaskIndex(unique)
        return self

    def _lookup(self, tasks: Any, n_rows: int) -> np.ndarray:
        labels = v.check_task_labels(tasks, n_rows)
        distinct = labels.labels if isinstance(labels, TaskCodes) else labels
        known = self.tasks_
        if distinct.dtype.kind == known.dtype.kind or {distinct.dtype.kind, known.dtype.kind} <= {"i", "u"}:
            missing = np.setdiff1d(np.unique(distinct), known)
            if missing.size:
                shown = ", ".join(repr(x) for x in missing[:5].tolist())
                more = f" and {missing.size - 5} more" if missing.size > 5 else ""
                raise ValueError(f"tasks contains {missing.size} task(s) that were never fitted: {shown}{more}; "
                                 f"{type(self).__name__} has no per-task parameters for them")
        return self._index.lookup(labels, "tasks")

    @property
    def _state(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self._state_names}

    def predict(self, X: Any, tasks: Any = None) -> np.ndarray:
        """Predict each row with its own task's model.

        Parameters
        ----------
        X : array-like of shape (N, d)
        tasks : array-like of shape (N,), optional
            Labels of tasks seen in ``fit``; an unseen label is an error naming it. Omitted: the model's only task.

        Returns
        -------
        y_pred : ndarray of shape (N,)
        """
        self._check_fitted()
        X, labels = self._validate_predict(X, tasks)
        return self._predict_state(self._state, X.astype(np.float64, copy=False), self._lookup(labels, X.shape[0]))

    def task_coefficients(self) -> np.ndarray:
        """Every task's full linear model ``theta_i`` as the columns of a dense (d, t) array (order of ``tasks_``)."""
        self._check_fitted()
        return self._coefficients_state(self._state)

    @property
    def params_per_task(self) -> int | float:
        """Numbers a task stores beyond the shared part (SPEC §7 table), for the fitted hyper-parameters (a mean over
        tasks, possibly fractional, when the per-task count varies)."""
        self._check_fitted()
        value = self._params_per_task()
        return int(value) if float(value).is_integer() else float(value)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted baseline to ``path`` in lorsa's model file format (:mod:`lorsa.io`, no pickle)."""
        write_model_file(path, *self._model_file_contents())

    def _model_file_contents(self) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
        """``(kind, arrays, metadata)`` as :meth:`save` writes them (the command line adds its records)."""
        self._check_fitted()
        arrays = {**{name: np.asarray(val) for name, val in self._state.items()}, "tasks": self.tasks_}
        params = {k: plain_value(val) for k, val in self.get_params().items() if k != "random_state"}
        params["random_state"] = self.random_state if isinstance(self.random_state, int | None) else None
        attributes = {"n_features": self.n_features_in_, "best_params": self.best_params_,
                      "validation_scores": self.validation_scores_}
        if hasattr(self, "feature_names_in_"):
            attributes["feature_names"] = [str(x) for x in self.feature_names_in_]
        return type(self).__name__, arrays, {"params": params, "attributes": attributes}

    @classmethod
    def load(cls, path: str | os.PathLike) -> TaskRegressor:
        """Read a baseline written by :meth:`save` (format version, checksums and kind are verified)."""
        arrays, meta = read_model_file(path, kind=cls.__name__)
        try:
            est = cls(**meta["params"])
            attrs = meta["attributes"]
            for name in cls._state_names:
                setattr(est, name, arrays[name] if name in arrays or name not in cls._state_defaults
                        else cls._state_defaults[name](arrays))
            est.tasks_ = arrays["tasks"]
            est.n_features_in_ = int(attrs["n_features"])
            est.best_params_ = dict(attrs["best_params"])
            est.validation_scores_ = list(attrs["validation_scores"])
            if attrs.get("feature_names") is not None:
                est.feature_names_in_ = np.asarray(attrs["feature_names"], dtype=object)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"model file {str(path)!r} is inconsistent: {exc}") from exc
        est._index = TaskIndex(est.tasks_)
        return est


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def check_nonnegative_float(name: str, value: Any) -> float:
    """A finite float ``>= 0`` (a ridge strength)."""
    return v.check_float(name, value, 0.0)


def check_positive_int(low: int, high: int | None = None) -> Any:
    """A checker for integers in ``[low, high]`` usable with :func:`candidates`."""
    def check(name: str, value: Any) -> int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
        return int(v.check_int(name, value, low, high))
    return check

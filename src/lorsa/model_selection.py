"""Model selection that respects tasks: a splitter holding out rows *within* every task, and scorers that pass
``tasks`` to ``predict``.

scikit-learn's splitters know nothing of tasks: ``KFold`` may leave a small task with no training row in a split,
and ``GroupKFold(groups=tasks)`` holds out whole tasks, which a per-task model has never fitted (``predict`` refuses
them). scikit-learn's scorers call ``estimator.predict(X)`` without metadata, so a string such as
``scoring="neg_root_mean_squared_error"`` cannot tell the model which task a row belongs to. This module gives

- :class:`WithinTaskKFold` — K folds of every task's rows, so every test row's task is fitted in its split (a task
  of one row is always kept for training); it takes the task labels as ``tasks`` (requested for ``split`` in
  metadata routing, so ``GridSearchCV(...).fit(X, y, tasks=t)`` gives them to the splitter too) or ``groups``;
- :func:`task_scorer` — ``"r2"``, ``"neg_root_mean_squared_error"``, ``"neg_mean_squared_error"``,
  ``"neg_mean_absolute_error"`` as scorers that request ``tasks`` and pass it to ``predict``;
- :class:`NewTaskScorer` — for ``GroupKFold`` over tasks, i.e. tasks never seen in training: each test task is
  adapted (``adapt_tasks``, ``U`` held fixed, the paper's Algorithm 6) on part of its rows and scored on the rest.

Metadata routing must be on (``sklearn.set_config(enable_metadata_routing=True)``) for ``tasks`` to reach the
estimator, the splitter and the scorer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils.metadata_routing import MetadataRequest

from . import _validation as v
from .data import encode_tasks, split_rows

__all__ = ["WithinTaskKFold", "task_scorer", "TaskScorer", "NewTaskScorer", "TASK_METRICS"]


def _rmse(y: np.ndarray, pred: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    return float(np.sqrt(mean_squared_error(y, pred, sample_weight=sample_weight)))


#: metric name -> (function of (y_true, y_pred, sample_weight), sign: +1 if higher is better)
TASK_METRICS: dict[str, tuple[Callable[..., float], int]] = {
    "r2": (r2_score, 1),
    "neg_root_mean_squared_error": (_rmse, -1),
    "neg_mean_squared_error": (mean_squared_error, -1),
    "neg_mean_absolute_error": (mean_absolute_error, -1),
}


def within_task_folds(task_index: np.ndarray, n_splits: int, rng: np.random.Generator | None) -> np.ndarray:
    """Fold ``0 .. n_splits-1`` of every row, or -1 for a row never held out (the only row of its task).

    Each task's rows are dealt round-robin to the folds (after a shuffle, from a random fold, when ``rng`` is
    given), so a task of ``m_i`` rows has ``floor`` or ``ceil`` of ``m_i / n_splits`` test rows in a fold and at
    least one training row in every split. Batched over tasks (one sort).
    """
    n = task_index.shape[0]
    keys = rng.random(n) if rng is not None else np.arange(n, dtype=np.float64)
    order = np.lexsort((keys, task_index))
    sorted_tasks = task_index[order]
    starts = np.flatnonzero(np.r_[True, sorted_tasks[1:] != sorted_tasks[:-1]]) if n else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, n])
    offset = rng.integers(0, n_splits, size=counts.shape[0]) if rng is not None else np.zeros(counts.shape[0], int)
    position = np.arange(n) - np.repeat(starts, counts)
    fold_sorted = (position + np.repeat(offset, counts)) % n_splits
    fold_sorted[np.repeat(counts, counts) < 2] = -1
    fold = np.empty(n, dtype=np.int64)
    fold[order] = fold_sorted
    return fold


class WithinTaskKFold(BaseCrossValidator):
    """K-fold cross-validation of the rows *within* every task: each test row's task is in the training split.

    Parameters
    ----------
    n_splits : int, default 5
        Folds, ``>= 2``. A task with fewer rows than ``n_splits`` (but at least 2) has a test row in only some
        folds; a task of one row is never held out.
    shuffle : bool, default True
        Shuffle every task's rows (and start each task at a random fold) before dealing them to folds; False deals
        them in input order from fold 0.
    random_state : int, Generator, RandomState or None
        Seed of the shuffle.

    Examples
    --------
    >>> GridSearchCV(LRSRegressor(), {"rank": [1, 2]}, cv=WithinTaskKFold(5)).fit(X, y, tasks=t)  # doctest: +SKIP
    """

    __metadata_request__split = {"tasks": True, "groups": True}

    def __init__(self, n_splits: int = 5, *, shuffle: bool = True, random_state: Any = None) -> None:
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None, tasks: Any = None) -> int:
        """``n_splits``."""
        return int(v.check_int("n_splits", self.n_splits, 2))

    def split(self, X: Any, y: Any = None, groups: Any = None, tasks: Any = None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row indices for each fold.

        Parameters
        ----------
        X : array-like of shape (N, d)
        y : ignored
        groups, tasks : array-like of shape (N,)
            Task label of every row (either name; ``tasks`` wins when both are given).
        """
        k = self.get_n_splits()
        labels = tasks if tasks is not None else groups
        if labels is None:
            raise ValueError("WithinTaskKFold needs the task of every row: split(X, tasks=...) (or groups=...); with "
                             "GridSearchCV / cross_validate, enable metadata routing and pass tasks=... to fit")
        n = len(X) if not hasattr(X, "shape") else X.shape[0]
        labels = v.check_task_labels(labels, n)
        _, index = encode_tasks(labels)
        if not isinstance(self.shuffle, bool):
            raise TypeError(f"shuffle must be True or False, got {self.shuffle!r}")
        rng = v.check_random_state(self.random_state) if self.shuffle else None
        fold = within_task_folds(index, k, rng)
        if (fold < 0).all():
            raise ValueError("WithinTaskKFold cannot hold out any row: every task has a single row")
        rows = np.arange(n)
        for f in range(k):
            test = fold == f
            yield rows[~test], rows[test]


class TaskScorer:
    """A scorer ``scorer(estimator, X, y, tasks=...)`` that passes ``tasks`` to ``estimator.predict``.

    ``tasks`` is requested for ``score`` in metadata routing, so ``GridSearchCV(scoring=task_scorer(...))`` and
    ``cross_validate(..., scoring=...)`` give it every test split's task labels (metadata routing on).

    Parameters
    ----------
    metric : str, default "r2"
        One of :data:`TASK_METRICS`; errors are negated (higher is better, scikit-learn's convention).
    """

    def __init__(self, metric: str = "r2") -> None:
        v.check_choice("metric", metric, tuple(TASK_METRICS))
        self.metric = metric

    def __repr__(self) -> str:
        return f"task_scorer({self.metric!r})"

    def get_metadata_routing(self) -> MetadataRequest:
        """``tasks`` requested for ``score`` (scikit-learn's metadata routing)."""
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="tasks", alias=True)
        request.score.add_request(param="sample_weight", alias=None)
        return request

    def _value(self, y: Any, pred: np.ndarray, sample_weight: Any) -> float:
        func, sign = TASK_METRICS[self.metric]
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        return sign * float(func(y, pred, sample_weight=sample_weight))

    def __call__(self, estimator: Any, X: Any, y: Any, tasks: Any = None, sample_weight: Any = None) -> float:
        return self._value(y, np.asarray(estimator.predict(X, tasks=tasks), dtype=np.float64), sample_weight)


def task_scorer(metric: str = "r2") -> TaskScorer:
    """The scorer of ``metric`` (``"r2"``, ``"neg_root_mean_squared_error"``, ``"neg_mean_squared_error"``,
    ``"neg_mean_absolute_error"``) that passes ``tasks`` to ``predict``: use it where scikit-learn takes
    ``scoring=`` (a dict of them for several metrics)."""
    return TaskScorer(metric)


class NewTaskScorer(TaskScorer):
    """Score tasks never seen in training (``GroupKFold`` over tasks): adapt each on part of its rows, score the rest.

    Every test task's rows are split (:func:`lorsa.data.split_rows`): ``adapt_fraction`` of them (at least one) fit
    the task's ``w_i, b_i`` with the model's ``U`` held fixed (``estimator.adapt_tasks``, SPEC §5), the others are
    predicted and scored. A task of one row cannot be both and is left out. The estimator (or a ``Pipeline``'s last
    step, after the pipeline's transforms) must have ``adapt_tasks`` — :class:`lorsa.LRSRegressor` and its
    subclasses.

    Parameters
    ----------
    metric : str, default "r2"
        One of :data:`TASK_METRICS`.
    adapt_fraction : float, default 0.5
        Share of each test task's rows used to adapt it, in (0, 1).
    random_state : int or None, default 0
        Seed of the split of each task's rows.
    """

    def __init__(self, metric: str = "r2", adapt_fraction: float = 0.5, random_state: int | None = 0) -> None:
        super().__init__(metric)
        self.adapt_fraction = v.check_float("adapt_fraction", adapt_fraction, 0.0, 1.0, low_inclusive=False,
                                            high_inclusive=False)
        self.random_state = random_state

    def __repr__(self) -> str:
        return f"NewTaskScorer({self.metric!r}, adapt_fraction={self.adapt_fraction:g})"

    def __call__(self, estimator: Any, X: Any, y: Any, tasks: Any = None, sample_weight: Any = None) -> float:
        from .model import predict_rows

        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        if not hasattr(final, "adapt_tasks"):
            raise TypeError(f"NewTaskScorer needs an estimator with adapt_tasks (an LRSRegressor), got "
                            f"{type(final).__name__}")
        if hasattr(estimator, "steps") and len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
        X = final._validate_X(X, reset=False)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if tasks is None:
            raise ValueError("NewTaskScorer needs the task of every row: enable metadata routing and pass tasks=...")
        labels = v.check_task_labels(tasks, X.shape[0])
        _, index = encode_tasks(labels)
        held = split_rows(index, 1.0 - self.adapt_fraction, v.check_random_state(self.random_state))
        if not held.any():
            raise ValueError("NewTaskScorer has no row to score: every test task has a single row")
        adapt = ~held
        new_labels, W, B = final.adapt_tasks(X[adapt], y[adapt], labels[adapt])
        pos = np.searchsorted(new_labels, labels[held])  # every held-out row's task was adapted (sorted labels)
        pred = predict_rows(X[held], pos, final.U_, W, B)
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)[held]
        return self._value(y[held], pred, weight)

"""``predict`` on dask collections: a lazy dask Series (or array) aligned with the input, computed by the workers.

The fitted model (``U``, ``W``, ``B``, the task labels) enters the graph once, as one key; every partition of ``X``
is predicted where it lives with the in-memory :func:`lorsa.model.predict_rows`, and a task never fitted raises the
same error as in memory when the partition holding it is computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _validation as v
from ...task_labels import TaskIndex
from . import is_dask_collection

__all__ = ["predict_dask", "score_dask", "rmse_dask"]


class _Model:
    """What a partition needs to predict (sent once per graph)."""

    def __init__(self, U: np.ndarray, W: np.ndarray, B: Any, tasks: np.ndarray) -> None:
        self.U, self.W, self.B, self.index = U, W, B.tocsc(), TaskIndex(tasks)

    def predict(self, X: Any, tasks: Any) -> np.ndarray:
        from ...model import predict_rows

        X = np.asarray(X)
        if X.shape[0] == 0:
            return np.zeros(0)
        X = v.check_features(X, n_features=self.U.shape[0])
        labels = v.check_task_labels(np.asarray(tasks), X.shape[0])
        return predict_rows(X, self.index.lookup(labels, "tasks"), self.U, self.W, self.B)


def _predict_frame(X: Any, tasks: Any, model: _Model, name: str) -> Any:
    import pandas as pd

    return pd.Series(model.predict(X.to_numpy(), tasks.to_numpy()), index=X.index, name=name)


def _predict_chunk(X: np.ndarray, tasks: np.ndarray, model: _Model) -> np.ndarray:
    return model.predict(X, tasks)


def predict_dask(est: Any, X: Any, tasks: Any, name: str = "prediction") -> Any:
    """Lazy predictions: a dask Series aligned with ``X`` (a DataFrame), or a dask array (``X`` an array)."""
    import dask
    import dask.array as da
    import pandas as pd

    est._check_fitted()
    if not (is_dask_collection(X) and is_dask_collection(tasks)):
        raise TypeError("with dask inputs X and tasks must both be dask collections (partitioned alike)")
    d = int(X.shape[1]) if isinstance(X, da.Array) else len(X.columns)
    if d != est.n_features_in_:
        raise ValueError(f"X has {d} features, but the model was fitted with {est.n_features_in_}")
    token = dask.base.tokenize(est.U_, est.W_, est.B_.data, est.B_.indices, est.tasks_)
    model = dask.delayed(_Model(est.U_, est.W_, est.B_, est.tasks_), name=f"lorsa-model-{token}")
    if isinstance(X, da.Array):
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D array of shape (n_samples, n_features), got shape {X.shape}")
        if not isinstance(tasks, da.Array) or tasks.chunks[0] != X.chunks[0]:
            raise ValueError("tasks must be a 1-D dask array chunked like X along the rows")
        X = X.rechunk({1: -1})
        pieces = [da.from_delayed(dask.delayed(_predict_chunk)(xb, tb, model), shape=(n,), dtype=np.float64)
                  for xb, tb, n in zip(X.to_delayed()[:, 0], tasks.to_delayed(), X.chunks[0], strict=True)]
        return da.concatenate(pieces) if pieces else da.zeros(0, chunks=1)
    if tasks.npartitions != X.npartitions:
        raise ValueError(f"tasks must be partitioned like X: X has {X.npartitions} partitions, tasks has "
                         f"{tasks.npartitions}")
    return X.map_partitions(_predict_frame, tasks, model, name, meta=pd.Series(dtype=np.float64, name=name))


def _weighted_sums(est: Any, X: Any, y: Any, tasks: Any, sample_weight: Any) -> tuple[float, float, float, float]:
    """``sum w, sum w y, sum w y^2, sum w (y - yhat)^2`` over the rows, computed on the workers in one pass."""
    import dask

    pred = predict_dask(est, X, tasks)
    if hasattr(y, "to_dask_array") and hasattr(pred, "to_dask_array"):
        y = y.astype("float64")
    w = 1.0 if sample_weight is None else sample_weight
    terms = ((y * 0 + 1) * w).sum(), (w * y).sum(), (w * y * y).sum(), (w * (y - pred) ** 2).sum()
    return tuple(float(x) for x in dask.compute(*terms))


def score_dask(est: Any, X: Any, y: Any, tasks: Any, sample_weight: Any = None) -> float:
    """Coefficient of determination R^2 of the lazy predictions, reduced on the workers."""
    sw, swy, swyy, sse = _weighted_sums(est, X, y, tasks, sample_weight)
    sst = swyy - swy * swy / sw
    return float(1.0 - sse / sst) if sst > 0 else (1.0 if sse == 0 else 0.0)


def rmse_dask(est: Any, X: Any, y: Any, tasks: Any, sample_weight: Any = None) -> float:
    """Root mean squared error of the lazy predictions, reduced on the workers."""
    sw, _, _, sse = _weighted_sums(est, X, y, tasks, sample_weight)
    return float(np.sqrt(sse / sw))

"""Full fine-tuning (SPEC §7): every task its own ``theta_i`` by ridge regression, optionally shrunk toward the
single model; ``d`` parameters per task.

The per-task problems are solved block by block over :class:`lorsa.data.RaggedTasks` (no Python loop over tasks):
a block of ``n`` tasks padded to ``m`` rows solves ``n`` systems at once with
:func:`lorsa.kernels.batched_solve`, in the primal ``(X_i^T X_i + lambda I) delta = X_i^T r_i`` (d × d) when
``m >= d`` and in the dual ``delta = X_i^T (X_i X_i^T + lambda I)^{-1} r_i`` (m × m) when ``m < d``. Zero padding
rows change neither. With ``lambda = 0`` and ``m_i < d`` the solution is the minimum-norm interpolant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from .. import _validation as v
from ..data import RaggedTasks
from ..kernels import batched_solve
from .base import TaskRegressor, candidates, check_nonnegative_float
from .single import DEFAULT_RIDGE_GRID, SingleModel

__all__ = ["FineTuning", "DenseTaskModel", "per_task_ridge"]

_TOWARD = ("zero", "single")


def per_task_ridge(X: np.ndarray, y: np.ndarray, index: np.ndarray, n_tasks: int, ridge: float,
                   offset: np.ndarray | None = None) -> np.ndarray:
    """``theta_i = offset + argmin_delta ||X_i (offset + delta) - y_i||^2 + ridge ||delta||^2`` for every task.

    Parameters
    ----------
    X : ndarray of shape (N, d)
    y : ndarray of shape (N,)
    index : ndarray of shape (N,)
        Task of each row, in ``[0, n_tasks)``.
    n_tasks : int
    ridge : float
        ``lambda >= 0``.
    offset : ndarray of shape (d,), optional
        The model every task is shrunk toward (default 0).

    Returns
    -------
    theta : ndarray of shape (n_tasks, d)
        Row ``i`` is ``theta_i``; a task without rows gets ``offset``.
    """
    d = X.shape[1]
    offset = np.zeros(d) if offset is None else np.asarray(offset, dtype=np.float64)
    data = RaggedTasks.from_arrays(X, y, index, n_tasks)
    theta = np.repeat(offset[None, :], n_tasks, axis=0)
    for block in data.blocks:
        Xb = block.X.astype(np.float64, copy=False)
        target = block.y - Xb @ offset
        if Xb.shape[1] >= d:
            G = np.matmul(np.swapaxes(Xb, 1, 2), Xb)
            rhs = np.matmul(target[:, None, :], Xb)[:, 0, :]
            delta = batched_solve(G, rhs, ridge)
        else:
            K = np.matmul(Xb, np.swapaxes(Xb, 1, 2))
            alpha = batched_solve(K, target, ridge)
            delta = np.matmul(alpha[:, None, :], Xb)[:, 0, :]
        theta[block.task_ids] += delta
    return theta


class DenseTaskModel(TaskRegressor):
    """A baseline whose state holds every task's full ``theta_i`` as ``coef_`` (t, d): prediction and coefficients."""

    def _predict_state(self, state, X, index, chunk_rows: int = 65536):
        coef = state["coef_"]
        out = np.empty(X.shape[0])
        for start in range(0, X.shape[0], chunk_rows):
            sl = slice(start, start + chunk_rows)
            out[sl] = np.einsum("nd,nd->n", X[sl], coef[index[sl]])
        return out

    def _coefficients_state(self, state):
        return np.ascontiguousarray(state["coef_"].T)


class FineTuning(DenseTaskModel):
    """Each task its own linear model ``theta_i`` (SPEC §7, "full fine-tuning"): ``d`` parameters per task.

    ``theta_i = theta_0 + argmin_delta ||X_i (theta_0 + delta) - y_i||^2 + lambda ||delta||^2`` where
    ``theta_0`` is 0 (``toward="zero"``: plain per-task ridge) or the single model fitted on all tasks
    (``toward="single"``: fine-tuning from a pre-trained model; ``lambda -> inf`` gives the single model back).

    Parameters
    ----------
    ridge : float or sequence of float, default :data:`lorsa.baselines.single.DEFAULT_RIDGE_GRID`
        ``lambda``; with several values the one with the smallest hold-out RMSE is used.
    toward : {"single", "zero"} or sequence of them, default "single"
        What each task is shrunk toward.
    shared_ridge : float or sequence of float, default :data:`DEFAULT_RIDGE_GRID`
        Ridge of the single model ``theta_0`` (chosen on its own hold-out rows when several).
    validation_fraction : float, default 0.2
        Fraction of every task's rows held out to choose among candidates.
    random_state : int, Generator or None
        Seed of the hold-out splits.

    Attributes
    ----------
    coef_ : ndarray of shape (t, d)
        Row ``i`` is ``theta_i`` of task ``tasks_[i]``.
    shared_coef_ : ndarray of shape (d,)
        ``theta_0``.
    """

    _tunable: ClassVar[tuple[str, ...]] = ("ridge", "toward")
    _state_names: ClassVar[tuple[str, ...]] = ("coef_", "shared_coef_")

    def __init__(self, ridge: float | Sequence[float] = DEFAULT_RIDGE_GRID, *, toward: str | Sequence[str] = "single",
                 shared_ridge: float | Sequence[float] = DEFAULT_RIDGE_GRID, validation_fraction: float = 0.2,
                 random_state: int | np.random.Generator | None = None) -> None:
        self.ridge = ridge
        self.toward = toward
        self.shared_ridge = shared_ridge
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _candidates(self, n_features: int) -> dict[str, list[Any]]:
        candidates("shared_ridge", self.shared_ridge, check_nonnegative_float)
        return {"ridge": candidates("ridge", self.ridge, check_nonnegative_float),
                "toward": candidates("toward", self.toward, lambda n, x: v.check_choice(n, x, _TOWARD))}

    def _fit_state(self, X, y, index, n_tasks, params, seed):
        shared = np.zeros(X.shape[1])
        if params["toward"] == "single":
            single = SingleModel(self.shared_ridge, validation_fraction=self.validation_fraction, random_state=seed)
            shared = single.fit(X, y, index).coef_
        return {"coef_": per_task_ridge(X, y, index, n_tasks, params["ridge"], shared), "shared_coef_": shared}

    def _params_per_task(self) -> int:
        return self.n_features_in_

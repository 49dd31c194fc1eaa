"""Single model (SPEC §7): one ``theta`` for all tasks, pooled least squares or ridge; 0 parameters per task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..kernels import batched_solve
from .base import TaskRegressor, _seed, candidates, check_nonnegative_float

__all__ = ["SingleModel", "pooled_ridge", "DEFAULT_RIDGE_GRID"]

#: Ridge strengths tried on held-out rows by default (penalty on the *sum* of squared errors, so 0 ... 1e4).
DEFAULT_RIDGE_GRID: tuple[float, ...] = (0.0, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


def pooled_ridge(X: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """``argmin_theta ||X theta - y||^2 + ridge ||theta||^2`` over all rows: (N, d), (N,) -> (d,).

    Solved by the normal equations (O(N d^2)); a singular system with ``ridge = 0`` gets the minimum-norm
    solution (:func:`lorsa.kernels.batched_solve`).
    """
    G = X.T @ X
    return batched_solve(G[None], (X.T @ y)[None], ridge)[0]


class SingleModel(TaskRegressor):
    """One linear model shared by every task: ``theta_i = theta`` for all ``i`` (SPEC §7, "single model").

    Parameters
    ----------
    ridge : float or sequence of float, default :data:`DEFAULT_RIDGE_GRID`
        Penalty ``lambda`` in ``sum_ij (y_ij - <x_ij, theta>)^2 + lambda ||theta||^2``; with several values the
        one with the smallest RMSE on held-out rows is used.
    validation_fraction : float, default 0.2
        Fraction of every task's rows held out to choose among candidates (never the caller's test data).
    random_state : int, Generator or None
        Seed of the hold-out split.

    Attributes
    ----------
    coef_ : ndarray of shape (d,)
        ``theta``.
    """

    _tunable: ClassVar[tuple[str, ...]] = ("ridge",)
    _state_names: ClassVar[tuple[str, ...]] = ("coef_",)

    def __init__(self, ridge: float | Sequence[float] = DEFAULT_RIDGE_GRID, *, validation_fraction: float = 0.2,
                 random_state: int | np.random.Generator | None = None) -> None:
        self.ridge = ridge
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _candidates(self, n_features: int) -> dict[str, list[Any]]:
        return {"ridge": candidates("ridge", self.ridge, check_nonnegative_float)}

    def _fit_state(self, X, y, index, n_tasks, params, seed):
        return {"coef_": pooled_ridge(X, y, params["ridge"])}

    def _fit_path(self, X, y, index, n_tasks, grid, rng):
        # the ridge path shares one Gram matrix X^T X (the same solves as pooled_ridge, one O(N d^2) pass)
        G, c = X.T @ X, X.T @ y
        for params in grid:
            _seed(rng)  # drawn as the generic path does, so the final fit's seed is the same
            yield {"coef_": batched_solve(G[None], c[None], params["ridge"])[0]}

    def _predict_state(self, state, X, index):
        return X @ state["coef_"]

    def _coefficients_state(self, state):
        return np.repeat(state["coef_"][:, None], self.tasks_.shape[0], axis=1)

    def _params_per_task(self) -> int:
        return 0

"""Prompt / bias tuning (SPEC §7): a shared ``theta`` plus one number per task.

Prompt tuning learns a task embedding ``e_i`` that enters the model beside the input. In a linear model
``y = <x, theta> + <e_i, phi>`` the embedding's whole effect is the scalar ``c_i = <e_i, phi>``: a per-task bias
(the paper's Section 1, "Comparison with prompt-based and batch-norm fine-tuning"). So the baseline fits

    min_{theta, c}  sum_ij (y_ij - <x_ij, theta> - c_i)^2 + lambda ||theta||^2 + mu sum_i c_i^2

by eliminating ``c_i = sum_j (y_ij - <x_ij, theta>) / (m_i + mu)`` (for ``mu = 0``: centring every task's rows on
their mean, then pooled ridge on the centred rows). Per-task sums are sparse-matrix products, with no loop
over tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..kernels import batched_solve
from .base import TaskRegressor, candidates, check_nonnegative_float
from .single import DEFAULT_RIDGE_GRID

__all__ = ["PromptTuning"]


def _task_sums(index: np.ndarray, n_tasks: int, values: np.ndarray) -> np.ndarray:
    """``sum_{j in task i} values_j`` for every task: (N,) or (N, d) -> (t,) or (t, d)."""
    S = sp.csr_matrix((np.ones(index.shape[0]), (index, np.arange(index.shape[0]))), shape=(n_tasks, index.shape[0]))
    return np.asarray(S @ values)


class PromptTuning(TaskRegressor):
    """Shared linear model plus a per-task bias ``c_i`` (prompt tuning in a linear model): 1 parameter per task.

    Parameters
    ----------
    ridge : float or sequence of float, default :data:`lorsa.baselines.single.DEFAULT_RIDGE_GRID`
        ``lambda`` on ``theta``; several values are chosen among on held-out rows.
    bias_ridge : float or sequence of float, default 0.0
        ``mu``, shrinkage of the biases toward 0 (useful for tasks with very few rows).
    validation_fraction : float, default 0.2
    random_state : int, Generator or None

    Attributes
    ----------
    coef_ : ndarray of shape (d,)
        ``theta``.
    intercepts_ : ndarray of shape (t,)
        ``c_i`` of task ``tasks_[i]``.
    """

    _tunable: ClassVar[tuple[str, ...]] = ("ridge", "bias_ridge")
    _state_names: ClassVar[tuple[str, ...]] = ("coef_", "intercepts_")

    def __init__(self, ridge: float | Sequence[float] = DEFAULT_RIDGE_GRID, *,
                 bias_ridge: float | Sequence[float] = 0.0, validation_fraction: float = 0.2,
                 random_state: int | np.random.Generator | None = None) -> None:
        self.ridge = ridge
        self.bias_ridge = bias_ridge
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _candidates(self, n_features: int) -> dict[str, list[Any]]:
        return {"ridge": candidates("ridge", self.ridge, check_nonnegative_float),
                "bias_ridge": candidates("bias_ridge", self.bias_ridge, check_nonnegative_float)}

    def _fit_state(self, X, y, index, n_tasks, params, seed):
        mu = params["bias_ridge"]
        counts = np.bincount(index, minlength=n_tasks).astype(np.float64)
        # Minimising over c_i gives c_i = S_i / (m_i + mu) with S_i = sum_j (y_ij - <x_ij, theta>), and leaves
        # sum_ij (y_ij - <x_ij, theta>)^2 - sum_i S_i^2 / (m_i + mu) + lambda ||theta||^2: a ridge problem whose
        # normal equations are X^T X - sum_i a_i Sx_i Sx_i^T, with a_i = 1 / (m_i + mu) and Sx_i = sum_j x_ij.
        Sx = _task_sums(index, n_tasks, X)
        Sy = _task_sums(index, n_tasks, y)
        denom = counts + mu
        a = np.where(denom > 0, 1.0 / np.where(denom > 0, denom, 1.0), 0.0)
        G = X.T @ X - (Sx * a[:, None]).T @ Sx
        rhs = X.T @ y - (Sx * a[:, None]).T @ Sy
        theta = batched_solve(G[None], rhs[None], params["ridge"])[0]
        c = np.where(denom > 0, (Sy - Sx @ theta) / np.where(denom > 0, denom, 1.0), 0.0)
        return {"coef_": theta, "intercepts_": c}

    def _predict_state(self, state, X, index):
        return X @ state["coef_"] + state["intercepts_"][index]

    def _coefficients_state(self, state):
        """The linear part only: ``theta`` for every task (the biases are in ``intercepts_``)."""
        return np.repeat(state["coef_"][:, None], state["intercepts_"].shape[0], axis=1)

    def _params_per_task(self) -> int:
        return 1


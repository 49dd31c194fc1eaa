"""Sparse fine-tuning (SPEC §7, the paper's Remark 3): one global model plus ``k`` task-specific weights.

``theta_i = theta_0 + b_i`` with ``||b_i||_0 <= k``: AMHT-LRS with ``r = 1``, the "basis" ``U = theta_0`` (the
single model, *not* normalised) and ``w_i = 1`` held fixed (:class:`lorsa.solvers.task_step.TaskStepConfig` with
``fit_w=False``). With ``U`` frozen (the default, as in SPEC §7) every task solves its own compressed-sensing
problem on the residual ``y_i - X_i theta_0`` by hard thresholding pursuit, batched over blocks; with
``refit_shared=True`` the shared step re-fits ``theta_0`` to ``y_i - X_i b_i`` between per-task steps (Remark 3's
alternation, whose global convergence is Theorem 4 of the paper). ``k`` numbers and ``k`` indices per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .. import _validation as v
from ..data import RaggedTasks
from ..model import predict_rows
from ..solvers.amht import AMHTConfig, fit_amht
from ..solvers.task_step import TaskStepConfig
from .base import TaskRegressor, candidates, check_nonnegative_float, check_positive_int
from .single import DEFAULT_RIDGE_GRID, SingleModel

__all__ = ["SparseFineTuning"]


class SparseFineTuning(TaskRegressor):
    """Single model plus a ``k``-sparse per-task correction ``b_i`` (``U`` frozen, ``w_i = 1``): ``k`` per task.

    Parameters
    ----------
    sparsity : int or sequence of int, default (1, 2, 5, 10, 20)
        ``k``; with several values the one with the smallest hold-out RMSE is used (values above ``d`` are
        dropped).
    shared_ridge : float or sequence of float, default :data:`lorsa.baselines.single.DEFAULT_RIDGE_GRID`
        Ridge of the single model ``theta_0`` (chosen on its own hold-out rows when several).
    ridge : float or sequence of float, default 0.0
        Penalty ``lambda/2 ||b_i||^2`` of the per-task step.
    refit_shared : bool, default False
        Alternate the per-task step with a re-fit of ``theta_0`` (``U`` not frozen, ``w_i = 1`` still fixed).
    max_iter : int, default 30
        Outer iterations (per-task passes, warm-started).
    tol : float, default 1e-10
        Stop when the objective changes relatively less than this.
    validation_fraction : float, default 0.2
    random_state : int, Generator or None

    Attributes
    ----------
    coef_ : ndarray of shape (d,)
        ``theta_0``.
    support_ : ndarray of shape (t, k)
        Indices of ``b_i``'s non-zeros (slots with value 0 are unused).
    values_ : ndarray of shape (t, k)
        Values of ``b_i`` at ``support_``.
    n_iter_ : int
        Outer iterations of the final fit.
    """

    _tunable: ClassVar[tuple[str, ...]] = ("sparsity", "ridge")
    _state_names: ClassVar[tuple[str, ...]] = ("coef_", "support_", "values_", "n_iter_")
    _state_defaults: ClassVar[dict[str, Any]] = {"n_iter_": lambda a: np.int64(0)}

    def __init__(self, sparsity: int | Sequence[int] = (1, 2, 5, 10, 20), *,
                 shared_ridge: float | Sequence[float] = DEFAULT_RIDGE_GRID, ridge: float | Sequence[float] = 0.0,
                 refit_shared: bool = False, max_iter: int = 30, tol: float = 1e-10,
                 validation_fraction: float = 0.2, random_state: int | np.random.Generator | None = None) -> None:
        self.sparsity = sparsity
        self.shared_ridge = shared_ridge
        self.ridge = ridge
        self.refit_shared = refit_shared
        self.max_iter = max_iter
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _candidates(self, n_features: int) -> dict[str, list[Any]]:
        candidates("shared_ridge", self.shared_ridge, check_nonnegative_float)
        if not isinstance(self.refit_shared, bool):
            raise TypeError(f"refit_shared must be True or False, got {self.refit_shared!r}")
        v.check_int("max_iter", self.max_iter, 1)
        v.check_float("tol", self.tol, 0.0)
        ks = self.sparsity
        if not isinstance(ks, int | np.integer) and isinstance(ks, Sequence | np.ndarray) and len(ks) > 1:
            ks = [k for k in ks if not isinstance(k, int | np.integer) or k <= n_features] or ks
        return {"sparsity": candidates("sparsity", ks, check_positive_int(0, n_features)),
                "ridge": candidates("ridge", self.ridge, check_nonnegative_float)}

    def _fit_state(self, X, y, index, n_tasks, params, seed):
        single = SingleModel(self.shared_ridge, validation_fraction=self.validation_fraction, random_state=seed)
        theta0 = single.fit(X, y, index).coef_
        k = params["sparsity"]
        data = RaggedTasks.from_arrays(X, y, index, n_tasks)
        step = TaskStepConfig(method="htp", n_steps=10, ridge=params["ridge"], fit_w=False)
        config = AMHTConfig(rank=1, sparsity=k, task_step=step, u_solver="exact" if X.shape[1] <= 2000 else "cg",
                            fit_u=self.refit_shared, max_iter=self.max_iter, tol=self.tol)
        result = fit_amht([data], theta0[:, None].copy(), np.ones((n_tasks, 1)), config)
        return {"coef_": result.U[:, 0].copy(), "support_": result.idx, "values_": result.val,
                "n_iter_": np.int64(result.n_iter)}

    def _B(self, state: dict[str, np.ndarray]) -> sp.csc_matrix:
        idx, val = state["support_"], state["values_"]
        t, k = idx.shape
        B = sp.csc_matrix((val.reshape(-1), (idx.reshape(-1), np.repeat(np.arange(t), k))),
                          shape=(state["coef_"].shape[0], t))
        B.eliminate_zeros()
        return B

    @property
    def B_(self) -> sp.csc_matrix:
        """The ``b_i`` as the columns of a (d, t) CSC matrix."""
        self._check_fitted()
        return self._B(self._state)

    def _predict_state(self, state, X, index):
        t = state["support_"].shape[0]
        return predict_rows(X, index, state["coef_"][:, None], np.ones((t, 1)), self._B(state))

    def _coefficients_state(self, state):
        return state["coef_"][:, None] + self._B(state).toarray()

    def _params_per_task(self) -> int:
        return int(self.best_params_["sparsity"])

"""Baselines the paper compares against (SPEC §7), with the interface of :class:`lorsa.LRSRegressor`.

Every baseline has ``fit(X, y, tasks)``, ``predict(X, tasks)``, ``score``, ``task_coefficients()`` (every task's
``theta_i``), ``params_per_task`` (numbers a task stores beyond the shared part), ``save``/``load`` (lorsa's
model file, no pickle), and chooses hyper-parameters given as candidate lists on rows held out from training.

| class | per-task model | params per task |
|---|---|---|
| :class:`SingleModel` | one ``theta`` for all tasks | 0 |
| :class:`FineTuning` | own ``theta_i`` (ridge, toward the single model) | d |
| :class:`RepresentationLearning` | ``U w_i`` (AltMin, k = 0) | r |
| :class:`PromptTuning` | shared ``theta`` + per-task bias | 1 |
| :class:`SparseFineTuning` | ``theta_0 + b_i``, ``b_i`` k-sparse | k |
| :class:`TunedLRS` | ``U w_i + b_i`` (AMHT-LRS) | r + k |
| :class:`MixedEffects` | ``theta_i ~ N(theta_0, Sigma)``, posterior mean (EM) | d |
| :class:`ConvexLRS` | ``theta_0 + l_i + s_i``, nuclear norm + l1 (APG) | rank(L) + nnz(s_i) |
"""

from __future__ import annotations

import os
from typing import Any

from .base import TaskRegressor, rmse
from .convex import ConvexLRS
from .finetune import FineTuning, per_task_ridge
from .mixed import MixedEffects
from .prompt import PromptTuning
from .representation import RepresentationLearning, TunedLRS
from .single import DEFAULT_RIDGE_GRID, SingleModel, pooled_ridge
from .sparse_finetune import SparseFineTuning

__all__ = ["TaskRegressor", "SingleModel", "FineTuning", "RepresentationLearning", "PromptTuning",
           "SparseFineTuning", "TunedLRS", "MixedEffects", "ConvexLRS", "DEFAULT_RIDGE_GRID", "params_per_task",
           "load_model", "rmse",
           "per_task_ridge", "pooled_ridge", "MODEL_CLASSES"]

#: Model classes by the ``kind`` recorded in a model file.
MODEL_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (SingleModel, FineTuning, RepresentationLearning,
                                                                   PromptTuning, SparseFineTuning, TunedLRS,
                                                                   MixedEffects, ConvexLRS)}


def params_per_task(estimator: Any) -> int:
    """Numbers a fitted model stores per task beyond its shared part: ``r + k`` for :class:`lorsa.LRSRegressor`,
    :attr:`TaskRegressor.params_per_task` for a baseline."""
    from ..model import LRSRegressor

    if isinstance(estimator, LRSRegressor):
        estimator._check_fitted()
        return int(estimator.U_.shape[1] + estimator.sparsity)
    if isinstance(estimator, TaskRegressor):
        return estimator.params_per_task
    raise TypeError(f"estimator must be an LRSRegressor or a lorsa baseline, got {type(estimator).__name__}")


def load_model(path: str | os.PathLike) -> Any:
    """Load any lorsa model file (an :class:`lorsa.LRSRegressor`, a :class:`lorsa.PrivateLRSRegressor` or a
    baseline), dispatching on its ``kind``."""
    from ..io import ModelFileError, read_model_file
    from ..model import LRSRegressor

    _, meta = read_model_file(path)
    kind = meta.get("kind")
    if kind == "LRSRegressor":
        return LRSRegressor.load(path)
    if kind == "PrivateLRSRegressor":
        from ..privacy import PrivateLRSRegressor

        return PrivateLRSRegressor.load(path)
    if kind == "LRSRegressorCV":
        from ..model_cv import LRSRegressorCV

        return LRSRegressorCV.load(path)
    if kind not in MODEL_CLASSES:
        raise ModelFileError(f"model file {str(path)!r} holds a model of unknown kind {kind!r}")
    return MODEL_CLASSES[kind].load(path)

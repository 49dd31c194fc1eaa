"""Early stopping of a personalised network's training on held-out rows of the training tasks, keeping the best
epoch (``fit(..., eval_set=(X, y, tasks), patience=p)``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _validation as v
from ..task_labels import TaskIndex
from ._torch import require_torch
from .adapter import Adapter, scatter_sparse
from .functional import ParameterSpace, batched_forward
from .objective import prepare_outputs, task_losses
from .task_data import TaskRows
from .training import TaskState, task_batches

__all__ = ["EarlyStopping", "eval_loss", "held_out_rows"]


def held_out_rows(eval_set: Any, tasks: np.ndarray, d: int, dtype: Any,
                  targets: Callable[[Any, int, bool], np.ndarray]) -> tuple[TaskRows, np.ndarray]:
    """The rows of ``eval_set = (X, y, tasks)`` by task, and the fitted-task index of each of its tasks (an
    unknown label or a wrong feature count is an error naming ``eval_set``)."""
    if not isinstance(eval_set, tuple | list) or len(eval_set) != 3:
        raise ValueError(f"eval_set must be a tuple (X, y, tasks), got {type(eval_set).__name__}")
    X = v.check_features(eval_set[0], n_features=d)
    y = targets(eval_set[1], X.shape[0], False)
    labels = v.check_task_labels(eval_set[2], X.shape[0])
    index = TaskIndex(tasks).lookup(labels, "eval_set tasks")
    present, local = np.unique(index, return_inverse=True)
    return TaskRows.build(X, y, local, present.shape[0], dtype), present


def eval_loss(net: Any, space: ParameterSpace, adapter: Adapter, theta0: Any, state: TaskState, rows: TaskRows,
              tasks: np.ndarray, loss: str, batch_size: int = 64) -> float:
    """Mean loss per row (``1/2 (f - y)^2`` or ``-log p_y``) of the rows ``rows`` (local task ``j`` is fitted task
    ``tasks[j]``), each predicted by its own task's current network; batched over tasks."""
    torch = require_torch()
    total = 0.0
    with torch.no_grad():
        for batch in task_batches(rows.n_tasks, max(batch_size, 64), None, rows.counts):
            X, y, mask = rows.batch(batch)
            dense, b_idx, b_val = state.take(torch.from_numpy(tasks[batch]))
            b = scatter_sparse(b_idx, b_val, adapter.size) if adapter.sparsity else None
            theta = theta0.detach() + adapter.delta(adapter.shared, dense, b, len(batch))
            out = prepare_outputs(batched_forward(net, space, theta, X), loss)
            total += float(task_losses(out, y, mask, loss).sum())
    return total / max(int(rows.counts.sum()), 1)


class EarlyStopping:
    """Scores the model on held-out rows after pre-training (epoch 0) and after every alternating epoch, keeps a
    copy of the best state (``theta_0``, the shared tensors, every task's parameters), asks training to stop after
    ``patience`` epochs without improvement, and :meth:`restore` puts the best state back.

    Attributes
    ----------
    history : list of float
        Held-out mean loss per row, index 0 after pre-training, ``e`` after alternating epoch ``e``.
    best_epoch : int
        Index in ``history`` of the kept state (0: no alternating epoch improved on pre-training).
    """

    def __init__(self, net: Any, space: ParameterSpace, adapter: Adapter, theta0: Any, state: TaskState,
                 rows: TaskRows, tasks: np.ndarray, loss: str, patience: int, batch_size: int) -> None:
        self.args = (net, space, adapter, theta0, state, rows, tasks, loss, batch_size)
        self.patience = patience
        self.history: list[float] = []
        self.best_epoch = 0
        self._best = math.inf
        self._saved: dict[str, Any] | None = None

    def _snapshot(self) -> dict[str, Any]:
        _, _, adapter, theta0, state, *_ = self.args
        return {"theta0": theta0.detach().clone(), "shared": {k: t.detach().clone() for k, t in adapter.shared.items()},
                "dense": {k: t.clone() for k, t in state.dense.items()}, "b_idx": state.b_idx.clone(),
                "b_val": state.b_val.clone()}

    def record(self) -> bool:
        """Score the current state; True when training should stop."""
        net, space, adapter, theta0, state, rows, tasks, loss, batch_size = self.args
        value = eval_loss(net, space, adapter, theta0, state, rows, tasks, loss, batch_size)
        self.history.append(value)
        if value < self._best:
            self._best, self.best_epoch, self._saved = value, len(self.history) - 1, self._snapshot()
        return len(self.history) - 1 - self.best_epoch >= self.patience

    def restore(self) -> None:
        """Put the best recorded state back (in place)."""
        if self._saved is None:
            return
        torch = require_torch()
        _, _, adapter, theta0, state, *_ = self.args
        with torch.no_grad():
            theta0.copy_(self._saved["theta0"])
        for k in list(adapter.shared):           # the adapter re-assigns its tensors (U <- Q), so re-assign too
            adapter.shared[k] = self._saved["shared"][k].clone()
        state.dense = {k: t.clone() for k, t in self._saved["dense"].items()}
        state.b_idx, state.b_val = self._saved["b_idx"].clone(), self._saved["b_val"].clone()

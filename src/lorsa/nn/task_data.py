"""Rows of many tasks held as tensors sorted by task, and padded mini-batches of tasks cut from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._torch import require_torch

__all__ = ["TaskRows"]


@dataclass
class TaskRows:
    """The rows of ``t`` tasks, sorted by task.

    Attributes
    ----------
    X : torch.Tensor of shape (N, d)
    y : torch.Tensor of shape (N,) or None
        Float targets (regression) or int64 class indices (classification); None at predict time.
    order : ndarray of shape (N,)
        ``X[j]`` is row ``order[j]`` of the caller's array.
    starts, counts : ndarray of shape (t,)
        Task ``i``'s rows are ``X[starts[i]:starts[i] + counts[i]]``.
    """

    X: Any
    y: Any
    order: np.ndarray
    starts: np.ndarray
    counts: np.ndarray

    @classmethod
    def build(cls, X: np.ndarray, y: np.ndarray | None, index: np.ndarray, n_tasks: int, dtype: Any) -> TaskRows:
        """Sort rows by task index (stable) and move them to torch."""
        torch = require_torch()
        order = np.argsort(index, kind="stable")
        counts = np.bincount(index, minlength=n_tasks).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        Xs = torch.from_numpy(np.ascontiguousarray(X[order])).to(dtype)
        ys = None
        if y is not None:
            ys = torch.from_numpy(np.ascontiguousarray(y[order]))
            ys = ys.to(torch.int64) if ys.dtype in (torch.int32, torch.int64) else ys.to(dtype)
        return cls(X=Xs, y=ys, order=order, starts=starts, counts=counts)

    @property
    def n_tasks(self) -> int:
        return int(self.counts.shape[0])

    def batch(self, tasks: np.ndarray) -> tuple[Any, Any, Any]:
        """Padded data of the given tasks.

        Returns
        -------
        X : torch.Tensor of shape (n, m, d)
            ``m`` is the largest row count among ``tasks``; padding rows are zeros.
        y : torch.Tensor of shape (n, m) or None
        mask : torch.Tensor of shape (n, m), bool
            True on real rows.
        """
        torch = require_torch()
        counts = self.counts[tasks]
        m = max(int(counts.max()), 1) if counts.size else 1
        offsets = np.arange(m)[None, :]
        mask_np = offsets < counts[:, None]
        rows = np.where(mask_np, self.starts[tasks][:, None] + offsets, 0)
        rows_t = torch.from_numpy(rows)
        X = self.X[rows_t]
        mask = torch.from_numpy(mask_np)
        X = X * mask[..., None].to(X.dtype)
        y = None if self.y is None else torch.where(mask, self.y[rows_t], torch.zeros((), dtype=self.y.dtype))
        return X, y, mask

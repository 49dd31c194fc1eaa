"""Task labels of a fitted model, the lookup of rows' labels at predict time, and labels given as codes.

:class:`TaskCodes` holds the task of every row as an integer code into one table of distinct labels: memory in
proportion to the number of rows (8 bytes each) plus the distinct labels, never one fixed-width string per row. The
command line reads task ids this way; ``fit``, ``predict`` and ``adapt_tasks`` accept it wherever they accept labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TaskIndex", "TaskCodes", "MAX_TASK_ID_LENGTH"]

MAX_TASK_ID_LENGTH = 256
"""Longest string task id accepted, in characters: the label table (and the model file) stores every label with
the width of the longest, 4 bytes a character, so one absurd id would cost that much for every task."""


@dataclass(frozen=True)
class TaskCodes:
    """Task of every row as ``labels[codes[j]]``.

    Attributes
    ----------
    codes : ndarray of shape (N,), int64
        Index of every row's label in ``labels``; every label is used by at least one row.
    labels : ndarray of shape (t,)
        Sorted distinct labels (int64 or str).
    """

    codes: np.ndarray
    labels: np.ndarray

    @classmethod
    def create(cls, codes: np.ndarray, labels: np.ndarray) -> TaskCodes:
        """From codes into any table of distinct labels (sorted here; unused labels dropped)."""
        codes = np.asarray(codes, dtype=np.int64)
        labels = np.asarray(labels)
        if labels.ndim != 1 or codes.ndim != 1:
            raise ValueError("task codes and labels must be 1-D")
        if codes.size and (codes.min() < 0 or codes.max() >= labels.shape[0]):
            raise ValueError(f"task codes must be in [0, {labels.shape[0]}), got values in "
                             f"[{codes.min()}, {codes.max()}]")
        used = np.bincount(codes, minlength=labels.shape[0]) > 0
        order = np.argsort(labels, kind="stable")
        order = order[used[order]]
        sorted_labels = labels[order]
        if sorted_labels.size > 1 and not np.all(sorted_labels[1:] > sorted_labels[:-1]):
            raise ValueError("task labels of the codes must be distinct")
        rank = np.full(labels.shape[0], -1, dtype=np.int64)
        rank[order] = np.arange(order.size)
        return cls(codes=rank[codes], labels=sorted_labels)

    def __len__(self) -> int:
        return int(self.codes.shape[0])


class TaskIndex:
    """Sorted distinct task labels (the model's ``tasks_``) with a vectorised label -> index lookup."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = np.asarray(labels)

    def lookup(self, labels: np.ndarray | TaskCodes, name: str = "tasks") -> np.ndarray:
        """Index of every label in ``self.labels`` (for :class:`TaskCodes`, of every row's label).

        Raises
        ------
        ValueError
            Naming the labels that were never fitted (up to five), or when the label types differ (e.g. string
            labels for a model fitted on integer labels).
        """
        if isinstance(labels, TaskCodes):
            return self.lookup(labels.labels, name)[labels.codes]
        known = self.labels
        if known.dtype.kind != labels.dtype.kind and {known.dtype.kind, labels.dtype.kind} != {"i", "u"}:
            kind = "integer" if known.dtype.kind in "iu" else "string"
            raise ValueError(f"{name} must hold {kind} labels like the ones the model was fitted on, "
                             f"got labels of dtype {labels.dtype}")
        pos = np.searchsorted(known, labels)
        pos_clipped = np.minimum(pos, known.shape[0] - 1)
        found = known[pos_clipped] == labels
        if not np.all(found):
            missing = np.unique(labels[~found])
            shown = ", ".join(repr(x) for x in missing[:5].tolist())
            more = f" and {missing.size - 5} more" if missing.size > 5 else ""
            raise ValueError(
                f"{name} contains {missing.size} task(s) that were never fitted: {shown}{more}; "
                f"use adapt()/adapt_tasks() to fit new tasks against the learned U"
            )
        return pos_clipped.astype(np.int64)

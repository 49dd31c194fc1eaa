"""Worker side of ingest: one shuffled partition (whole tasks) -> the ragged blocks of :mod:`lorsa.data`.

After dask's shuffle every row of a task sits in one partition. :func:`build_partition` runs on the worker holding
that partition and turns it into the same padded row blocks / Gram blocks the in-memory engine uses
(:meth:`lorsa.data.RaggedTasks.from_arrays`), with task indices local to the partition: block ``task_ids`` index the
partition's own state arrays, and :attr:`PartitionData.task_ids` maps them to the global task index (the sorted
labels, like :func:`lorsa.data.encode_tasks`). The rows are first put in their original order (a row key added
before the shuffle), so the blocks, hence every floating-point sum, do not depend on the order in which shuffle
pieces arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import _validation as v
from ..._estimator import check_sample_weight, rows_weighted
from ...data import RaggedTasks, encode_tasks
from ...solvers.amht import half_sum_of_squares
from ...solvers.init import moments_matrix

__all__ = ["PartitionData", "PartitionSummary", "build_partition", "summarize_partition", "TASK", "TARGET", "ROW",
           "WEIGHT"]

TASK, TARGET, ROW, WEIGHT = "__lorsa_task", "__lorsa_y", "__lorsa_row", "__lorsa_weight"


@dataclass(frozen=True)
class PartitionData:
    """The blocks of one partition, resident on a worker.

    Attributes
    ----------
    part : int
        Partition number.
    task_ids : ndarray of shape (t_p,)
        Global index of each local task (blocks' ``task_ids`` index this array).
    counts : ndarray of shape (t_p,)
        Rows per local task.
    batches : list of RaggedTasks
        The blocks (one entry; ``sample_split`` entries when rows are split into batches, SPEC §2).
    full : RaggedTasks or None
        All rows, when split (for the loss history).
    moments : ndarray of shape (d, d) or None
        ``sum_j y_j^2 x_j x_j^T`` of the partition's rows (method-of-moments start), when asked for.
    half_sq : float
        ``1/2 sum_j y_j^2``.
    nbytes : int
        Bytes held by the blocks.
    """

    part: int
    task_ids: np.ndarray
    counts: np.ndarray
    batches: list[RaggedTasks]
    full: RaggedTasks | None
    moments: np.ndarray | None
    half_sq: float
    nbytes: int

    def blocks(self, key: int) -> list:
        """Blocks of batch ``key`` (-1: all rows)."""
        data = (self.full or self.batches[0]) if key < 0 else self.batches[key]
        return data.blocks


@dataclass(frozen=True)
class PartitionSummary:
    """The small facts about a partition the driver needs (never its rows)."""

    part: int
    n_tasks: int
    n_rows: int
    moments: np.ndarray | None
    half_sq: float
    nbytes: int


def _nbytes(data: RaggedTasks) -> int:
    total = 0
    for b in data.blocks:
        arrays = (b.X, b.y) if hasattr(b, "X") else (b.G, b.c, b.yy)
        total += sum(a.nbytes for a in arrays) + b.task_ids.nbytes + b.sizes.nbytes
    return total


def build_partition(frame, part: int, labels: np.ndarray, features: list, dtype: str, layout: str,
                    split: int, seed: int | None, moments: bool, private: bool = False) -> PartitionData:
    """Blocks of one shuffled partition (a pandas DataFrame with the feature columns, ``TARGET``, ``TASK``, ``ROW``
    and optionally ``WEIGHT``, row weights: rows scaled by ``sqrt(w_j)`` as in memory).

    ``labels`` are all tasks' sorted labels (the model's ``tasks_``); ``split > 1`` cuts every task's rows into
    that many random batches with a generator seeded by ``(seed, part)``. ``private``: the rows of every user whose
    per-task step would overflow are zeroed, as in memory (a decision on that user's rows only).
    """
    if ROW in frame.columns and not frame[ROW].is_monotonic_increasing:
        frame = frame.sort_values(ROW, kind="stable")
    X = v.check_features(frame[features].to_numpy(), name="X") if len(frame) else np.zeros((0, len(features)))
    X = X.astype(dtype, copy=False)
    y = v.check_targets(frame[TARGET].to_numpy(), X.shape[0], dtype=np.dtype(dtype)) if len(frame) else \
        np.zeros(0, dtype)
    init_rows = (X, y)
    if WEIGHT in frame.columns:   # sum_j w_j (...)^2: rows scaled by sqrt(w_j); the moments weigh rows by w_j
        weight = check_sample_weight(frame[WEIGHT].to_numpy(), X.shape[0]) if len(frame) else None
        init_rows = rows_weighted(X, y, None if weight is None else np.sqrt(weight))
        X, y = rows_weighted(X, y, weight)
    raw = frame[TASK].to_numpy()
    if labels.dtype.kind == "U":
        raw = raw.astype(labels.dtype)
    global_index = np.searchsorted(labels, raw).astype(np.int64)
    task_ids, local = encode_tasks(global_index)
    if private:
        from ...privacy.estimator import _drop_overflowing_users

        X, y = _drop_overflowing_users(X, y, local, task_ids.shape[0])
    data = RaggedTasks.from_arrays(X, y, local, task_ids.shape[0], layout="rows" if split > 1 else layout)
    batches, full = [data], None
    if split > 1:
        batches, full = data.split(split, np.random.default_rng([int(seed or 0), part])), data
    M = moments_matrix(*init_rows) if moments else None
    return PartitionData(part=part, task_ids=task_ids.astype(np.int64), counts=data.counts, batches=batches,
                         full=full, moments=M, half_sq=half_sum_of_squares(data.blocks),
                         nbytes=sum(_nbytes(b) for b in batches) + (_nbytes(full) if full is not None else 0))


def summarize_partition(data: PartitionData) -> PartitionSummary:
    """What the driver learns about a resident partition."""
    return PartitionSummary(part=data.part, n_tasks=int(data.task_ids.shape[0]), n_rows=int(data.counts.sum()),
                            moments=data.moments, half_sq=data.half_sq, nbytes=data.nbytes)

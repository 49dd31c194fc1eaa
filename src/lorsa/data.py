"""The ragged multi-task layout: all tasks' rows, bucketed by task size into padded 3-D blocks.

Task ``i`` owns ``m_i`` rows ``(X_i, y_i)`` (SPEC §1). Sizes vary from 1 to 10^5 rows, so padding every task to the
largest would waste memory without bound. Instead tasks are sorted by size and cut into *blocks*: a block holds
``n`` tasks whose sizes lie within a factor ``growth`` of each other, padded with zero rows to the block's largest
size ``m``, as arrays ``X (n, m, d)`` and ``y (n, m)``. Zero rows contribute nothing to any least-squares product
or gradient, so the solvers need no mask; the real sizes are kept for counting. Padding waste is bounded by
``growth`` and each block by ``block_elements`` entries, so every temporary a solver makes over a block is bounded
too. A block is the unit of work of an iteration ("per-task step over a block -> partial statistics -> reduce"),
and the unit a distributed engine ships to a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TaskBlock", "RaggedTasks", "encode_tasks", "split_rows"]


@dataclass(frozen=True)
class TaskBlock:
    """``n`` tasks of similar size, zero-padded to ``m`` rows.

    Attributes
    ----------
    task_ids : ndarray of shape (n,)
        Global task indices (rows of ``W``, columns of ``B``).
    sizes : ndarray of shape (n,)
        Real number of rows ``m_i`` of each task (``<= m``).
    X : ndarray of shape (n, m, d)
        Features; rows ``sizes[a]:`` of task ``a`` are zero.
    y : ndarray of shape (n, m)
        Targets; zero on padded rows.
    """

    task_ids: np.ndarray
    sizes: np.ndarray
    X: np.ndarray
    y: np.ndarray

    @property
    def n_tasks(self) -> int:
        return int(self.task_ids.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[1])


@dataclass(frozen=True)
class GramBlock:
    """``n`` tasks summarised by their sufficient statistics (the "gram" layout).

    For squared loss a task's data enter only through ``G_i = X_i^T X_i``, ``c_i = X_i^T y_i`` and ``||y_i||^2``:
    ``||y_i - X_i theta||^2 = ||y_i||^2 - 2 c_i^T theta + theta^T G_i theta``. When ``m_i >= d`` this is no larger
    than the rows, and every per-task step then costs O(d^2) instead of O(m_i d) (SPEC §2, Remark 1).

    Attributes
    ----------
    task_ids : ndarray of shape (n,)
    sizes : ndarray of shape (n,)
    G : ndarray of shape (n, d, d)
    c : ndarray of shape (n, d)
    yy : ndarray of shape (n,), float64
    """

    task_ids: np.ndarray
    sizes: np.ndarray
    G: np.ndarray
    c: np.ndarray
    yy: np.ndarray

    @property
    def n_tasks(self) -> int:
        return int(self.task_ids.shape[0])

    @classmethod
    def from_rows(cls, block: TaskBlock) -> GramBlock:
        """Sufficient statistics of a padded row block (zero rows add nothing)."""
        X, y = block.X, block.y
        G = np.matmul(np.swapaxes(X, 1, 2), X)
        c = np.matmul(y[:, None, :], X)[:, 0, :]
        yy = np.einsum("nm,nm->n", y, y, dtype=np.float64)
        return cls(task_ids=block.task_ids, sizes=block.sizes, G=G, c=c, yy=yy)


LAYOUTS = ("auto", "rows", "gram")


@dataclass(frozen=True)
class RaggedTasks:
    """All tasks' data as a list of :class:`TaskBlock`.

    Attributes
    ----------
    n_tasks : int
        Number of tasks ``t`` (tasks with no rows are allowed and appear in no block).
    n_features : int
        Dimension ``d``.
    counts : ndarray of shape (t,)
        Rows per task ``m_i``.
    blocks : list of TaskBlock or GramBlock
        Row blocks, or (layout "gram"/"auto") sufficient-statistics blocks.
    """

    n_tasks: int
    n_features: int
    counts: np.ndarray
    blocks: list[TaskBlock | GramBlock]

    @property
    def n_samples(self) -> int:
        """Total number of real rows ``N = sum_i m_i``."""
        return int(self.counts.sum())

    @property
    def dtype(self) -> np.dtype:
        if not self.blocks:
            return np.dtype(np.float64)
        first = self.blocks[0]
        return first.X.dtype if isinstance(first, TaskBlock) else first.G.dtype

    @property
    def padded_elements(self) -> int:
        """Entries stored in the feature blocks (rows or Gram matrices; memory is this times the item size)."""
        return int(sum(b.X.size if isinstance(b, TaskBlock) else b.G.size for b in self.blocks))

    @property
    def has_rows(self) -> bool:
        """True when every block keeps its rows (needed by the IHT variant, clipping for privacy, splitting)."""
        return all(isinstance(b, TaskBlock) for b in self.blocks)

    @classmethod
    def from_arrays(cls, X: np.ndarray, y: np.ndarray, task_index: np.ndarray, n_tasks: int,
                    growth: float = 1.25, block_elements: int = 2**22, layout: str = "rows") -> RaggedTasks:
        """Bucket rows by task into padded blocks.

        Parameters
        ----------
        X : ndarray of shape (N, d)
        y : ndarray of shape (N,)
        task_index : ndarray of shape (N,)
            Task of each row, integers in ``[0, n_tasks)``.
        n_tasks : int
        growth : float
            A block holds tasks whose sizes are within this factor of its smallest task (padding waste <= growth).
        block_elements : int
            Upper bound on ``n * m * d`` of a block (a single task larger than this gets a block of its own).
        layout : {"rows", "gram", "auto"}
            Keep padded rows (:class:`TaskBlock`), replace every block by its sufficient statistics
            (:class:`GramBlock`), or do so for blocks whose tasks all have ``m_i >= d`` ("auto": then the Gram
            matrices are no larger than the rows they replace). Blocks are converted one at a time, so building
            the gram layout never holds a padded copy of all rows.

        When rows are already grouped by task and a block's tasks all have the block's size, its arrays are
        views of ``X`` and ``y`` (no copy).
        """
        n_samples, d = X.shape
        task_index = np.asarray(task_index, dtype=np.int64)
        counts = np.bincount(task_index, minlength=n_tasks).astype(np.int64)
        if n_samples and np.all(task_index[1:] >= task_index[:-1]):
            order = np.arange(n_samples)  # rows already grouped by task: no sort, blocks may be views
        else:
            order = np.argsort(task_index, kind="stable")
        offsets = np.zeros(n_tasks + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        by_size = np.argsort(counts, kind="stable")
        by_size = by_size[counts[by_size] > 0]
        sorted_counts = counts[by_size]
        blocks: list[TaskBlock] = []
        start = 0
        n_nonempty = by_size.shape[0]
        while start < n_nonempty:
            smallest = sorted_counts[start]
            stop = int(np.searchsorted(sorted_counts, smallest * growth, side="right"))
            stop = max(stop, start + 1)
            # Largest m in [start, stop) is sorted_counts[stop - 1]; cap the number of tasks by the element budget.
            m_pad = int(sorted_counts[stop - 1])
            n_max = max(1, block_elements // max(1, m_pad * d))
            stop = min(stop, start + n_max)
            m_pad = int(sorted_counts[stop - 1])
            ids = by_size[start:stop]
            block = _make_block(X, y, order, offsets, counts, ids, m_pad)
            if layout == "gram" or (layout == "auto" and int(sorted_counts[start]) >= d):
                block = GramBlock.from_rows(block)
            blocks.append(block)
            start = stop
        return cls(n_tasks=int(n_tasks), n_features=int(d), counts=counts, blocks=blocks)

    def split(self, n_batches: int, rng: np.random.Generator) -> list[RaggedTasks]:
        """Split every task's rows into ``n_batches`` disjoint random batches (SPEC §2, sample splitting).

        Row ``j`` of a task goes to batch ``pi(j) mod n_batches`` for a random permutation ``pi`` per task, so batch
        sizes of a task differ by at most one. Returns one :class:`RaggedTasks` per batch over the same task index.
        """
        if not self.has_rows:
            raise ValueError("sample splitting needs the rows of every task; build the data with layout='rows'")
        parts_X: list[list[np.ndarray]] = [[] for _ in range(n_batches)]
        parts_y: list[list[np.ndarray]] = [[] for _ in range(n_batches)]
        parts_t: list[list[np.ndarray]] = [[] for _ in range(n_batches)]
        for block in self.blocks:
            n, m, _ = block.X.shape
            valid = np.arange(m)[None, :] < block.sizes[:, None]
            keys = np.where(valid, rng.random((n, m)), np.inf)
            rank = np.argsort(np.argsort(keys, axis=1), axis=1)
            batch = rank % n_batches
            for q in range(n_batches):
                sel = valid & (batch == q)
                parts_X[q].append(block.X[sel])
                parts_y[q].append(block.y[sel])
                parts_t[q].append(np.broadcast_to(block.task_ids[:, None], (n, m))[sel])
        out = []
        for q in range(n_batches):
            Xq = np.concatenate(parts_X[q]) if parts_X[q] else np.zeros((0, self.n_features), self.dtype)
            yq = np.concatenate(parts_y[q]) if parts_y[q] else np.zeros(0, self.dtype)
            tq = np.concatenate(parts_t[q]) if parts_t[q] else np.zeros(0, np.int64)
            out.append(RaggedTasks.from_arrays(Xq, yq, tq, self.n_tasks))
        return out


def _make_block(X: np.ndarray, y: np.ndarray, order: np.ndarray, offsets: np.ndarray, counts: np.ndarray,
                ids: np.ndarray, m_pad: int) -> TaskBlock:
    sizes = counts[ids]
    n, d = ids.shape[0], X.shape[1]
    first, last = offsets[ids[0]], offsets[ids[-1]] + sizes[-1]
    if (np.all(sizes == m_pad) and np.all(np.diff(ids) == 1) and last - first == n * m_pad
            and X.flags.c_contiguous and order[first] == first and order[last - 1] == last - 1
            and np.array_equal(order[first:last], np.arange(first, last))):
        # Rows already grouped by task, all of one size: the block is a view, no copy.
        return TaskBlock(task_ids=ids.astype(np.int64), sizes=sizes.astype(np.int64),
                         X=X[first:last].reshape(n, m_pad, d), y=y[first:last].reshape(n, m_pad))
    pos = np.arange(m_pad)[None, :]
    valid = pos < sizes[:, None]
    src = order[(offsets[ids][:, None] + pos)[valid]]
    Xb = np.zeros((ids.shape[0], m_pad, X.shape[1]), dtype=X.dtype)
    yb = np.zeros((ids.shape[0], m_pad), dtype=X.dtype)
    Xb[valid] = X[src]
    yb[valid] = y[src]
    return TaskBlock(task_ids=ids.astype(np.int64), sizes=sizes.astype(np.int64), X=Xb, y=yb)


def encode_tasks(labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Map task labels (an array, or :class:`lorsa.task_labels.TaskCodes`) to indices ``0..t-1``.

    Returns
    -------
    unique : ndarray of shape (t,)
        Sorted distinct labels (the model's ``tasks_``).
    index : ndarray of shape (N,)
        Index of each row's label in ``unique``.
    """
    from .task_labels import TaskCodes

    if isinstance(labels, TaskCodes):
        return labels.labels, labels.codes
    if labels.dtype.kind in "iu" and labels.size and labels.min() >= 0 and labels.max() < 4 * labels.size + 1024:
        # Small non-negative integers: O(N) by counting instead of an O(N log N) sort.
        present = np.bincount(labels) > 0
        unique = np.flatnonzero(present).astype(labels.dtype)
        remap = np.cumsum(present) - 1
        return unique, remap[labels].astype(np.int64)
    unique, index = np.unique(labels, return_inverse=True)
    return unique, index.astype(np.int64).reshape(-1)


def split_rows(task_index: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask choosing about ``fraction`` of each task's rows (at least one row stays unselected
    for tasks with two or more rows). Used to hold out data for tuning without leaving a task empty."""
    n = task_index.shape[0]
    keys = rng.random(n)
    order = np.lexsort((keys, task_index))
    sorted_tasks = task_index[order]
    starts = np.flatnonzero(np.r_[True, sorted_tasks[1:] != sorted_tasks[:-1]])
    counts = np.diff(np.r_[starts, n])
    position = np.arange(n) - np.repeat(starts, counts)
    n_pick = np.floor(fraction * counts).astype(np.int64)
    n_pick = np.minimum(n_pick, np.maximum(counts - 1, 0))
    chosen_sorted = position < np.repeat(n_pick, counts)
    mask = np.zeros(n, dtype=bool)
    mask[order] = chosen_sorted
    return mask

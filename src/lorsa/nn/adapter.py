"""Per-task parameterisations of a network: ``theta_i = theta_0 + delta_i`` (SPEC §9).

An adapter says what a task stores and how its parameters are formed:

- :class:`Adapter` -- the interface every personalisation follows (the LRS adapter here, the baselines' dense and
  LoRA adapters in :mod:`lorsa.nn.baselines`): shared tensors trained by the shared step, per-task tensors of
  shape ``(t, ...)`` trained by the per-task step, an optional ``k``-sparse per-task vector ``b_i`` kept as
  ``k`` values and ``k`` indices, and the per-task storage it costs.
- :class:`LRSAdapter` -- the paper's model ``theta_i = theta_0 + U w_i + b_i``: ``U`` (``P x r``, or rows on a
  subset of the coordinates) shared, ``w_i in R^r``, ``b_i`` ``k``-sparse anywhere in ``R^P``.
"""

from __future__ import annotations

from typing import Any

from ._torch import require_torch

__all__ = ["Adapter", "LRSAdapter", "scatter_sparse"]


def scatter_sparse(idx: Any, val: Any, size: int) -> Any:
    """Dense ``(n, size)`` rows from ``k`` indices and values per row (``idx``, ``val`` of shape ``(n, k)``)."""
    torch = require_torch()
    out = torch.zeros(idx.shape[0], size, dtype=val.dtype)
    if idx.shape[1]:
        out.scatter_(1, idx, val)
    return out


class Adapter:
    """How task ``i``'s parameters ``theta_i = theta_0 + delta_i`` are formed.

    Attributes
    ----------
    size : int
        ``P``.
    shared : dict of str to torch.Tensor
        Tensors shared by all tasks and trained by the shared step (besides ``theta_0`` itself).
    sparsity : int
        ``k`` of the sparse per-task vector ``b_i`` (0: none).
    """

    size: int
    shared: dict[str, Any]
    sparsity: int = 0

    def init_tasks(self, n_tasks: int, generator: Any) -> dict[str, Any]:
        """Initial dense per-task tensors, each of shape ``(n_tasks, ...)`` (trained by Adam in the per-task
        step). The sparse part, when ``sparsity > 0``, is kept by the trainer as ``b_idx``, ``b_val``."""
        raise NotImplementedError

    def delta(self, shared: dict[str, Any], task: dict[str, Any], b: Any | None, n: int) -> Any:
        """``delta_i`` for a mini-batch of ``n`` tasks, shape ``(n, P)``, from the shared tensors, the batch's
        dense per-task tensors and its dense sparse vectors ``b`` (``(n, P)`` or None)."""
        raise NotImplementedError

    def numbers_per_task(self) -> int:
        """Numbers a task stores beyond the shared part (indices of the sparse part not counted)."""
        raise NotImplementedError

    def indices_per_task(self) -> int:
        """Integer indices a task stores (the support of ``b_i``)."""
        return self.sparsity

    def normalize(self, task_state: dict[str, Any]) -> None:
        """Re-parameterise in place after an epoch without changing any ``delta_i`` (default: nothing)."""

    def to_arrays(self) -> dict[str, Any]:
        """Shared tensors to save (name -> tensor)."""
        return dict(self.shared)

    def load_arrays(self, arrays: dict[str, Any]) -> None:
        """Restore the shared tensors written by :meth:`to_arrays`."""
        for name in self.shared:
            self.shared[name] = arrays[name].clone()


class LRSAdapter(Adapter):
    """``delta_i = U w_i + b_i`` (SPEC §1 and §9): the low-rank + sparse personalisation of a network.

    Parameters
    ----------
    size : int
        ``P``, the length of ``theta``.
    rank : int
        ``r`` (0: no shared basis, ``delta_i = b_i``: sparse fine-tuning).
    sparsity : int
        ``k`` non-zeros of ``b_i``, anywhere among the ``P`` coordinates (0: representation learning only).
    basis_coords : torch.Tensor of int64, optional
        Coordinates of ``theta`` that ``U`` spans (``U`` has one row per coordinate); default all ``P``. The
        task-embedding baseline restricts ``U`` to the first layer's bias (see
        :class:`lorsa.nn.baselines.TaskEmbedding`).
    dtype : torch.dtype
    """

    def __init__(self, size: int, rank: int, sparsity: int, basis_coords: Any | None = None,
                 dtype: Any = None) -> None:
        torch = require_torch()
        self.size = int(size)
        self.rank = int(rank)
        self.sparsity = int(sparsity)
        self.dtype = dtype or torch.float32
        self.basis_coords = basis_coords
        rows = self.size if basis_coords is None else int(basis_coords.numel())
        self.shared = {"U": torch.zeros(rows, self.rank, dtype=self.dtype)} if self.rank else {}

    @property
    def basis_rows(self) -> int:
        return self.size if self.basis_coords is None else int(self.basis_coords.numel())

    def set_basis(self, U: Any) -> None:
        """Set ``U`` (``(basis_rows, r)``), orthonormalised by QR."""
        torch = require_torch()
        if self.rank:
            Q, _ = torch.linalg.qr(U.to(self.dtype))
            self.shared["U"] = Q.contiguous()

    def init_tasks(self, n_tasks: int, generator: Any) -> dict[str, Any]:
        torch = require_torch()
        return {"w": torch.zeros(n_tasks, self.rank, dtype=self.dtype)} if self.rank else {}

    def delta(self, shared: dict[str, Any], task: dict[str, Any], b: Any | None, n: int) -> Any:
        torch = require_torch()
        out = torch.zeros(n, self.size, dtype=self.dtype) if b is None else b
        if self.rank:
            low = task["w"] @ shared["U"].T
            if self.basis_coords is None:
                out = out + low
            else:
                out = out.index_add(1, self.basis_coords, low)
        return out

    def numbers_per_task(self) -> int:
        return self.rank + self.sparsity

    def normalize(self, task_state: dict[str, Any]) -> None:
        """``U <- Q`` of ``U = QR`` and ``w_i <- R w_i`` for every task: the same ``U w_i``, orthonormal ``U``."""
        torch = require_torch()
        if not self.rank:
            return
        Q, R = torch.linalg.qr(self.shared["U"])
        self.shared["U"] = Q.contiguous()
        task_state["w"] = task_state["w"] @ R.T

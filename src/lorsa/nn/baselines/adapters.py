"""The baselines' per-task parameterisations (SPEC §7 carried to networks): a dense per-task change of some
coordinates (full and last-layer fine-tuning), and LoRA's per-task low-rank change of every weight matrix."""

from __future__ import annotations

from typing import Any

from .._torch import require_torch
from ..adapter import Adapter
from ..functional import ParameterSpace

__all__ = ["DenseAdapter", "LoRAAdapter", "last_layer_coords", "first_bias_coords"]


def _layer_coords(space: ParameterSpace, prefix: str, kinds: tuple[str, ...]) -> Any:
    torch = require_torch()
    parts = [torch.arange(space.slice_of(f"{prefix}.{kind}").start, space.slice_of(f"{prefix}.{kind}").stop)
             for kind in kinds if f"{prefix}.{kind}" in space.names]
    return torch.cat(parts)


def last_layer_coords(space: ParameterSpace) -> Any:
    """Coordinates of the last weight matrix among the personalised parameters and of its bias."""
    matrices = space.matrix_names()
    if not matrices:
        raise ValueError(f"last-layer fine-tuning needs a 2-D weight among the personalised parameters, got "
                         f"{list(space.names)}")
    return _layer_coords(space, matrices[-1].rsplit(".", 1)[0], ("weight", "bias"))


def first_bias_coords(space: ParameterSpace) -> Any:
    """Coordinates of the first layer's bias (the first 2-D weight's ``.bias``)."""
    matrices = space.matrix_names()
    prefix = matrices[0].rsplit(".", 1)[0] if matrices else None
    if prefix is None or f"{prefix}.bias" not in space.names:
        raise ValueError("the task embedding needs the first layer's weight and bias among the personalised "
                         f"parameters (a Linear layer with bias=True), got {list(space.names)}")
    return _layer_coords(space, prefix, ("bias",))


class DenseAdapter(Adapter):
    """``delta_i`` dense on a set of coordinates (all: full fine-tuning; the last layer: last-layer fine-tuning),
    ``theta_0`` frozen. A task stores one number per coordinate and no index."""

    def __init__(self, size: int, coords: Any | None, dtype: Any) -> None:
        self.size, self.coords, self.dtype = int(size), coords, dtype
        self.shared = {}
        self.sparsity = 0

    @property
    def width(self) -> int:
        return self.size if self.coords is None else int(self.coords.numel())

    def init_tasks(self, n_tasks: int, generator: Any) -> dict[str, Any]:
        return {"delta": require_torch().zeros(n_tasks, self.width, dtype=self.dtype)}

    def delta(self, shared: dict[str, Any], task: dict[str, Any], b: Any | None, n: int) -> Any:
        torch = require_torch()
        if self.coords is None:
            return task["delta"]
        return torch.zeros(n, self.size, dtype=self.dtype).index_add(1, self.coords, task["delta"])

    def numbers_per_task(self) -> int:
        return self.width


class LoRAAdapter(Adapter):
    """LoRA per task (Hu et al. 2021): every personalised weight matrix ``W`` (out x in) becomes
    ``W + A_i B_i`` with ``A_i`` (out x rho) and ``B_i`` (rho x in) the task's own; biases and other parameters
    keep ``theta_0``, which is frozen. ``A_i`` starts at 0 and ``B_i`` at ``N(0, 1/in)``, so training starts
    from the shared network. A task stores ``rho (in + out)`` numbers per matrix."""

    def __init__(self, space: ParameterSpace, rank: int, dtype: Any) -> None:
        self.size, self.rank, self.dtype = space.size, int(rank), dtype
        self.shared = {}
        self.sparsity = 0
        self.matrices = [(space.slice_of(n), space.shapes[space.names.index(n)]) for n in space.matrix_names()]
        if not self.matrices:
            raise ValueError(f"LoRA needs at least one 2-D weight among the personalised parameters, got "
                             f"{list(space.names)}")

    def init_tasks(self, n_tasks: int, generator: Any) -> dict[str, Any]:
        torch = require_torch()
        out: dict[str, Any] = {}
        for j, (_, (rows, cols)) in enumerate(self.matrices):
            out[f"A{j}"] = torch.zeros(n_tasks, rows, self.rank, dtype=self.dtype)
            out[f"B{j}"] = torch.randn(n_tasks, self.rank, cols, generator=generator, dtype=self.dtype) / cols**0.5
        return out

    def delta(self, shared: dict[str, Any], task: dict[str, Any], b: Any | None, n: int) -> Any:
        torch = require_torch()
        pieces, pos = [], 0
        for j, (sl, _) in enumerate(self.matrices):
            if sl.start > pos:
                pieces.append(torch.zeros(n, sl.start - pos, dtype=self.dtype))
            pieces.append((task[f"A{j}"] @ task[f"B{j}"]).reshape(n, -1))
            pos = sl.stop
        if pos < self.size:
            pieces.append(torch.zeros(n, self.size - pos, dtype=self.dtype))
        return torch.cat(pieces, dim=1)

    def numbers_per_task(self) -> int:
        return sum(self.rank * (rows + cols) for _, (rows, cols) in self.matrices)

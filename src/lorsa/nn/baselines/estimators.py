"""The baselines of SPEC §7 for networks, in the same code as :class:`lorsa.nn.NetworkLRS` (same training loop,
batched per-task steps, model file and interface). "Parameters per task" counts what a task stores beyond the
shared part (``params_per_task_``).

| class | task ``i`` runs | trained | per task |
|---|---|---|---|
| :class:`SingleNetwork` | ``theta_0`` | ``theta_0`` on all tasks pooled | 0 |
| :class:`FullFineTuning` | ``theta_0 + delta_i`` | the single network, then each ``delta_i`` | ``P`` |
| :class:`LastLayerFineTuning` | ``delta_i`` on the last layer only | the same | last layer's size |
| :class:`LoRA` | ``W + A_i B_i`` for every weight matrix | the single network, then ``A_i, B_i`` | ``rho (in+out)`` |
| :class:`SparseFineTuning` | ``theta_0 + b_i``, ``k``-sparse | ``theta_0``, ``b_i`` alternately | ``k`` (+ indices) |
| :class:`TaskEmbedding` | the input ``[x, e_i]`` (``e_i in R^q``) | ``theta_0``, embedding weights, ``e_i`` | ``q`` |
| :class:`RepresentationLearning` | ``theta_0 + U w_i`` (``k = 0``) | alternately | ``r`` |

A task embedding concatenated to the input of the first layer ``Linear(d + q, h)`` adds ``E e_i`` to its
pre-activation (``E`` the ``h x q`` block of its weight acting on ``e_i``): it is exactly a change of the first
layer's bias restricted to a shared ``q``-dimensional subspace, which is how it is implemented (an
:class:`~lorsa.nn.adapter.LRSAdapter` whose basis lives on the first bias, with no sparse part), so the module
needs no extra input.
"""

from __future__ import annotations

from typing import Any

from ... import _validation as v
from ..adapter import Adapter, LRSAdapter
from ..estimator import NetworkLRS, TaskNetworkEstimator
from ..functional import ParameterSpace
from .adapters import DenseAdapter, LoRAAdapter, first_bias_coords, last_layer_coords

__all__ = ["SingleNetwork", "FullFineTuning", "LastLayerFineTuning", "LoRA", "SparseFineTuning", "TaskEmbedding",
           "RepresentationLearning"]

_COMMON = ("parameters", "loss", "n_epochs", "pretrain_epochs", "task_batch_size", "task_steps", "task_lr",
           "shared_lr", "shared_steps", "ridge", "adapt_epochs", "dtype", "n_threads", "random_state", "verbose")


class SingleNetwork(TaskNetworkEstimator):
    """One network for all tasks (0 parameters per task): ``n_epochs`` epochs of Adam on the pooled loss."""

    def __init__(self, module: Any = None, *, parameters: Any = None, loss: str = "mse", n_epochs: int = 50,
                 pretrain_epochs: int = 0, task_batch_size: int = 64, task_steps: int = 5, task_lr: float = 0.05,
                 shared_lr: float = 0.01, shared_steps: int = 5, ridge: float = 0.0, adapt_epochs: int = 1,
                 dtype: str = "float32",
                 n_threads: int | None = 1, random_state: int | None = None, verbose: bool = False) -> None:
        self._common_init(module, parameters, loss, n_epochs, pretrain_epochs, task_batch_size, task_steps,
                          task_lr, shared_lr, shared_steps, ridge, adapt_epochs, dtype, n_threads, random_state,
                          verbose)

    def _make_adapter(self, space: ParameterSpace, net: Any, dtype: Any) -> Adapter:
        return LRSAdapter(space.size, 0, 0, dtype=dtype)


class _FrozenBase(TaskNetworkEstimator):
    """Pre-train the single network (``pretrain_epochs``), freeze it, train the per-task tensors (``n_epochs``
    visits of every task)."""

    _trains_shared = False

    def __init__(self, module: Any = None, *, parameters: Any = None, loss: str = "mse", n_epochs: int = 30,
                 pretrain_epochs: int = 20, task_batch_size: int = 64, task_steps: int = 5, task_lr: float = 0.05,
                 shared_lr: float = 0.01, shared_steps: int = 5, ridge: float = 0.0, adapt_epochs: int = 30,
                 dtype: str = "float32",
                 n_threads: int | None = 1, random_state: int | None = None, verbose: bool = False) -> None:
        self._common_init(module, parameters, loss, n_epochs, pretrain_epochs, task_batch_size, task_steps,
                          task_lr, shared_lr, shared_steps, ridge, adapt_epochs, dtype, n_threads, random_state,
                          verbose)


class FullFineTuning(_FrozenBase):
    """Per-task fine-tuning of every personalised parameter from the single network (``P`` per task); ``ridge``
    shrinks ``delta_i`` toward 0 (i.e. ``theta_i`` toward the single network)."""

    def _make_adapter(self, space: ParameterSpace, net: Any, dtype: Any) -> Adapter:
        return DenseAdapter(space.size, None, dtype)


class LastLayerFineTuning(_FrozenBase):
    """Per-task fine-tuning of the last layer (its weight and bias) of the single network."""

    def _make_adapter(self, space: ParameterSpace, net: Any, dtype: Any) -> Adapter:
        return DenseAdapter(space.size, last_layer_coords(space), dtype)


class LoRA(_FrozenBase):
    """Per-task LoRA of rank ``rank`` on every personalised weight matrix of the single network."""

    def __init__(self, module: Any = None, rank: int = 1, **kwargs: Any) -> None:
        self.rank = rank
        super().__init__(module, **kwargs)

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return ["module", "rank", *_COMMON]

    def _make_adapter(self, space: ParameterSpace, net: Any, dtype: Any) -> Adapter:
        return LoRAAdapter(space, v.check_int("rank", self.rank, 1), dtype)


class SparseFineTuning(NetworkLRS):
    """The single network plus a ``k``-sparse ``b_i`` per task, ``theta_0`` refitted between per-task steps (the
    paper's Remark 3): :class:`NetworkLRS` with ``r = 0``."""

    def __init__(self, module: Any = None, sparsity: int = 8, **kwargs: Any) -> None:
        super().__init__(module, rank=0, sparsity=sparsity, **kwargs)

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return ["module", "sparsity", "solver", *_COMMON]


class RepresentationLearning(NetworkLRS):
    """``theta_0 + U w_i`` (``k = 0``): :class:`NetworkLRS` without the sparse part (``r`` per task)."""

    def __init__(self, module: Any = None, rank: int = 2, *, init: str = "gradients", **kwargs: Any) -> None:
        super().__init__(module, rank=rank, sparsity=0, init=init, **kwargs)

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return ["module", "rank", "init", "solver", *_COMMON]


class TaskEmbedding(NetworkLRS):
    """A learned embedding ``e_i in R^q`` per task fed to the first layer with the input (``q`` per task),
    trained with the network (see the module docstring for why it is a first-bias subspace)."""

    def __init__(self, module: Any = None, embedding_dim: int = 2, *, init: str = "gradients",
                 **kwargs: Any) -> None:
        self.embedding_dim = embedding_dim
        super().__init__(module, rank=embedding_dim, sparsity=0, init=init, **kwargs)

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return ["module", "embedding_dim", "init", "solver", *_COMMON]

    def _make_adapter(self, space: ParameterSpace, net: Any, dtype: Any) -> Adapter:
        coords = first_bias_coords(space)
        q = v.check_int("embedding_dim", self.embedding_dim, 1, int(coords.numel()))
        v.check_choice("init", self.init, ("gradients", "random"))
        return LRSAdapter(space.size, q, 0, basis_coords=coords, dtype=dtype)

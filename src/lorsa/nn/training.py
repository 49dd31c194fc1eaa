"""The alternating training of a personalised network (SPEC §9), batched over the tasks of a mini-batch.

One epoch visits the tasks in a random order, a mini-batch of ``n`` tasks at a time; for each mini-batch

1. **per-task step** (:func:`task_step`): ``T`` steps on the tasks' own parameters with everything shared held
   fixed -- for the LRS adapter by default Gauss-Newton subspace pursuit on ``(w_i, b_i)`` jointly
   (:mod:`lorsa.nn.pursuit`, ``solver="pursuit"``); otherwise (``solver="gradient"``, and the baselines' dense
   tensors) Adam on the dense per-task tensors (``w_i``; the baselines' deltas, LoRA factors, embeddings) and
   iterative hard thresholding on ``b_i``: ``b_i <- H_k(b_i - mu_i g_i)``, ``H_k`` keeping the ``k`` largest
   magnitudes (the support moves freely), with the normalised step of Blumensath & Davies adapted to a network,
   ``mu_i = ||g_S||^2 / (g_S^T G_i g_S)`` (``G_i`` the task's Gauss-Newton matrix, ``S`` the current support or
   the top ``k`` of the gradient when ``b_i = 0``; SPEC §3), computed with one forward-mode product;
2. **shared step** (:func:`shared_step`): Adam steps on the shared tensors (``theta_0``, ``U``) on the
   mini-batch's pooled loss, the tasks' parameters held fixed.

Every task of a mini-batch is evaluated in one vmapped call (:func:`lorsa.nn.functional.batched_forward`): the
per-task losses are independent, so the gradient of their sum is every task's own gradient, and there is no Python
loop over tasks inside a step. After each epoch the adapter re-parameterises (``U <- Q``, ``w_i <- R w_i``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._torch import require_torch
from .adapter import Adapter, LRSAdapter, scatter_sparse
from .functional import ParameterSpace, batched_forward, batched_outputs_jvp
from .objective import curvature, prepare_outputs, task_losses
from .pursuit import pursuit_step
from .task_data import TaskRows

__all__ = ["TrainConfig", "TaskState", "task_step", "shared_step", "train", "initial_basis", "task_batches",
           "lr_schedule"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`train` (validated by the estimator)."""

    loss: str = "mse"
    n_epochs: int = 30
    pretrain_epochs: int = 0
    task_batch_size: int = 64
    task_steps: int = 5
    task_lr: float = 0.05
    shared_lr: float = 0.01
    shared_steps: int = 1
    ridge: float = 0.0
    lr_decay: bool = True
    solver: str = "pursuit"
    train_base: bool = True
    train_shared: bool = True


@dataclass
class TaskState:
    """Every task's own parameters: dense tensors ``(t, ...)`` and the sparse ``b_i`` as indices and values."""

    dense: dict[str, Any]
    b_idx: Any
    b_val: Any

    def take(self, tasks: Any) -> tuple[dict[str, Any], Any, Any]:
        return {k: v[tasks] for k, v in self.dense.items()}, self.b_idx[tasks], self.b_val[tasks]

    def put(self, tasks: Any, dense: dict[str, Any], b_idx: Any, b_val: Any) -> None:
        for k, v in dense.items():
            self.dense[k][tasks] = v
        self.b_idx[tasks] = b_idx
        self.b_val[tasks] = b_val

    @classmethod
    def empty(cls, adapter: Adapter, n_tasks: int, generator: Any, dtype: Any) -> TaskState:
        torch = require_torch()
        k = adapter.sparsity
        idx = torch.arange(k, dtype=torch.int64).repeat(n_tasks, 1) if k else torch.zeros(n_tasks, 0,
                                                                                          dtype=torch.int64)
        return cls(dense=adapter.init_tasks(n_tasks, generator), b_idx=idx,
                   b_val=torch.zeros(n_tasks, k, dtype=dtype))


def task_batches(n_tasks: int, batch_size: int, rng: np.random.Generator | None,
                 counts: np.ndarray | None = None) -> list[np.ndarray]:
    """Task indices in mini-batches (a random order when ``rng`` is given).

    With ``counts`` (rows per task) that are not all equal, tasks of similar row counts share a mini-batch
    (size-grouped batches: a mini-batch is padded to its largest task, so mixing a 900-row task with 20-row ones
    would spend most of its work on padding): the tasks are put in random order, stably sorted by row count, cut
    into mini-batches, and the mini-batches visited in random order. Equal counts (or None) give the plain
    random order, unchanged.
    """
    order = rng.permutation(n_tasks) if rng is not None else np.arange(n_tasks)
    if counts is None or n_tasks == 0 or np.all(counts == counts[0]):
        return [order[s:s + batch_size] for s in range(0, n_tasks, batch_size)]
    order = order[np.argsort(np.asarray(counts)[order], kind="stable")]
    batches = [order[s:s + batch_size] for s in range(0, n_tasks, batch_size)]
    if rng is not None:
        batches = [batches[j] for j in rng.permutation(len(batches))]
    return batches


def _forward(net: Any, space: ParameterSpace, theta: Any, X: Any, loss: str) -> Any:
    return prepare_outputs(batched_forward(net, space, theta, X), loss)


def task_step(net: Any, space: ParameterSpace, adapter: Adapter, theta0: Any, shared: dict[str, Any],
              dense: dict[str, Any], b_idx: Any, b_val: Any, X: Any, y: Any, mask: Any, config: TrainConfig,
              steps: int | None = None, lr_scale: float = 1.0) -> tuple[dict[str, Any], Any, Any, Any]:
    """``T`` per-task steps for a mini-batch of tasks, the shared tensors held fixed (see the module docstring).

    Returns the new dense tensors, ``b_idx``, ``b_val`` and the per-task mean losses before the last step
    (shape ``(n,)``). Adam's moments start at zero on every visit (the parameters are warm-started).
    """
    torch = require_torch()
    steps = config.task_steps if steps is None else steps
    if config.solver == "pursuit" and isinstance(adapter, LRSAdapter):
        w = dense.get("w", torch.zeros(mask.shape[0], 0, dtype=theta0.dtype))
        w, b_idx, b_val, losses = pursuit_step(net, space, adapter, theta0, shared, w, b_idx, b_val, X, y, mask,
                                               config.loss, config.ridge, steps)
        return ({"w": w} if adapter.rank else {}), b_idx, b_val, losses
    k = adapter.sparsity
    counts = mask.sum(1).clamp(min=1).to(theta0.dtype)
    theta0 = theta0.detach()
    shared = {n: s.detach() for n, s in shared.items()}
    leaves = {n: v.clone() for n, v in dense.items()}
    m1 = {n: torch.zeros_like(v) for n, v in leaves.items()}
    m2 = {n: torch.zeros_like(v) for n, v in leaves.items()}
    b = scatter_sparse(b_idx, b_val, adapter.size) if k else None
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    losses = torch.zeros(counts.shape[0], dtype=theta0.dtype)
    for s in range(1, steps + 1):
        for v in leaves.values():
            v.requires_grad_(True)
        if b is not None:
            b.requires_grad_(True)
        theta = theta0 + adapter.delta(shared, leaves, b, counts.shape[0])
        out = _forward(net, space, theta, X, config.loss)
        per_task = task_losses(out, y, mask, config.loss) / counts
        if config.ridge:
            penalty = sum((v.reshape(v.shape[0], -1) ** 2).sum(1) for v in leaves.values())
            if b is not None:
                penalty = penalty + (b**2).sum(1)
            per_task = per_task + 0.5 * config.ridge * penalty
        inputs = [*leaves.values()] + ([b] if b is not None else [])
        grads = torch.autograd.grad(per_task.sum(), inputs) if inputs else []
        losses = per_task.detach()
        with torch.no_grad():
            for (name, v), g in zip(leaves.items(), grads[:len(leaves)], strict=True):
                m1[name].mul_(beta1).add_(g, alpha=1 - beta1)
                m2[name].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (m2[name] / (1 - beta2**s)).sqrt() + eps
                step = lr_scale * config.task_lr * (m1[name] / (1 - beta1**s)) / denom
                leaves[name] = (v - step).detach()
            if b is not None:
                b = _hard_threshold_step(net, space, theta.detach(), out.detach(), b.detach(), grads[-1], X, mask,
                                         counts, k, config)
    if b is not None:
        b_val, b_idx = _top_k(b, k)
        b_idx, order = torch.sort(b_idx, dim=1)
        b_val = b_val.gather(1, order)
    return {n: v.detach() for n, v in leaves.items()}, b_idx, b_val, losses


def _top_k(z: Any, k: int) -> tuple[Any, Any]:
    torch = require_torch()
    idx = torch.topk(z.abs(), k, dim=1).indices
    return z.gather(1, idx), idx


def _hard_threshold_step(net: Any, space: ParameterSpace, theta: Any, out: Any, b: Any, g: Any, X: Any, mask: Any,
                         counts: Any, k: int, config: TrainConfig, max_halvings: int = 4) -> Any:
    """``b <- H_k(b - mu g)`` with the normalised step ``mu = ||g_S||^2 / (g_S^T G g_S)`` per task, and the
    safeguard of Blumensath & Davies: when the support changes, ``mu`` is halved until
    ``mu <= 0.99 ||b_new - b||^2 / ((b_new - b)^T G (b_new - b))`` (at most ``max_halvings`` times)."""
    torch = require_torch()
    on_support = b != 0
    empty = ~on_support.any(dim=1)
    if bool(empty.any()):
        top = torch.zeros_like(on_support)
        top.scatter_(1, torch.topk(g.abs(), k, dim=1).indices, True)
        on_support = torch.where(empty[:, None], top, on_support)
    direction = torch.where(on_support, g, torch.zeros((), dtype=g.dtype))
    mu = _gauss_newton_step(net, space, theta, out, direction, X, mask, counts, config)
    new = _project(b - mu[:, None] * g, k)
    for _ in range(max_halvings):
        moved = (new != 0) != on_support
        changed = moved.any(dim=1) & (mu > 0)
        if not bool(changed.any()):
            break
        limit = 0.99 * _gauss_newton_step(net, space, theta, out, new - b, X, mask, counts, config)
        too_long = changed & (mu > limit)
        if not bool(too_long.any()):
            break
        mu = torch.where(too_long, mu / 2, mu)
        new = torch.where(too_long[:, None], _project(b - mu[:, None] * g, k), new)
    return new


def _project(z: Any, k: int) -> Any:
    val, idx = _top_k(z, k)
    return scatter_sparse(idx, val, z.shape[1])


def _gauss_newton_step(net: Any, space: ParameterSpace, theta: Any, out: Any, direction: Any, X: Any, mask: Any,
                       counts: Any, config: TrainConfig) -> Any:
    """``||v||^2 / (v^T G v)`` per task (0 where the curvature vanishes): the minimiser of the Gauss-Newton model
    along ``v`` when ``v`` is the gradient."""
    torch = require_torch()
    _, jv = batched_outputs_jvp(net, space, theta, X, direction)
    jv = prepare_outputs(jv, config.loss)
    curv = curvature(out, jv, mask, config.loss) / counts + config.ridge * (direction**2).sum(1)
    num = (direction**2).sum(1)
    return torch.where(curv > 0, num / curv.clamp(min=torch.finfo(curv.dtype).tiny), torch.zeros_like(num))


def shared_step(net: Any, space: ParameterSpace, adapter: Adapter, theta0: Any, shared: dict[str, Any],
                dense: dict[str, Any], b_idx: Any, b_val: Any, X: Any, y: Any, mask: Any, config: TrainConfig,
                optimizer: Any) -> float:
    """Adam steps on the shared tensors (``theta_0`` when trained, the adapter's shared tensors) on the pooled
    loss of a mini-batch, the tasks' parameters held fixed. Returns the mean loss per row before the last step."""
    total = mask.sum().clamp(min=1).to(theta0.dtype)
    b = scatter_sparse(b_idx, b_val, adapter.size) if adapter.sparsity else None
    value = float("nan")
    for _ in range(config.shared_steps):
        optimizer.zero_grad(set_to_none=True)
        theta = theta0 + adapter.delta(shared, dense, b, mask.shape[0])
        out = _forward(net, space, theta, X, config.loss)
        objective = task_losses(out, y, mask, config.loss).sum() / total
        objective.backward()
        optimizer.step()
        value = float(objective.detach())
    return value


def initial_basis(net: Any, space: ParameterSpace, adapter: Any, theta0: Any, state: TaskState, data: TaskRows,
                  config: TrainConfig) -> Any:
    """The top ``r`` right singular vectors of the per-task gradients at ``theta_0`` (restricted to the basis
    coordinates), shape ``(basis_rows, r)``: the directions in which the tasks pull the shared network apart --
    the network analogue of the method-of-moments start (SPEC §4; for a linear model and squared loss the
    gradients are ``X_i^T (X_i theta_0 - y_i)``)."""
    torch = require_torch()
    rows = []
    for tasks in task_batches(data.n_tasks, config.task_batch_size, None, data.counts):
        X, y, mask = data.batch(tasks)
        theta = theta0.detach().expand(len(tasks), -1).clone().requires_grad_(True)
        out = _forward(net, space, theta, X, config.loss)
        counts = mask.sum(1).clamp(min=1).to(theta.dtype)
        (g,) = torch.autograd.grad((task_losses(out, y, mask, config.loss) / counts).sum(), [theta])
        rows.append(g if adapter.basis_coords is None else g[:, adapter.basis_coords])
    G = torch.cat(rows).double()
    r = adapter.rank
    # top-r right singular vectors from the eigenvectors of the smaller Gram matrix (deterministic, unlike a
    # randomised SVD drawing from torch's global generator)
    if G.shape[1] <= G.shape[0]:
        _, vecs = torch.linalg.eigh(G.T @ G)
        V = vecs[:, -r:].flip(1)
    else:
        vals, vecs = torch.linalg.eigh(G @ G.T)
        top = vecs[:, -r:].flip(1)
        V = G.T @ top / vals[-r:].flip(0).clamp(min=1e-300).sqrt()
    if V.shape[1] < r:                           # fewer tasks than r: complete with a fixed random draw
        extra = torch.randn(V.shape[0], r - V.shape[1], generator=torch.Generator().manual_seed(0), dtype=V.dtype)
        V = torch.cat([V, extra], dim=1)
    return V.to(theta0.dtype)


def lr_schedule(epoch: int, n_epochs: int, floor: float = 0.02) -> float:
    """Cosine decay of the step sizes from 1 (first epoch) to ``floor`` (last epoch)."""
    if n_epochs <= 1:
        return 1.0
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * epoch / (n_epochs - 1)))


def train(net: Any, space: ParameterSpace, adapter: Adapter, theta0: Any, state: TaskState, data: TaskRows,
          config: TrainConfig, rng: np.random.Generator, init_basis: Callable[[], None] | None = None,
          on_epoch: Callable[[int, float], bool | None] | None = None) -> list[float]:
    """Pre-train ``theta_0`` (``pretrain_epochs``), then alternate per-task and shared steps (``n_epochs``).

    ``theta0`` and the adapter's shared tensors are updated in place; ``state`` holds the tasks' parameters.
    ``init_basis`` runs between the two phases (the LRS adapter's gradient start). Returns the mean training
    loss per row of each epoch (the per-task step's losses, before the epoch's last steps). ``on_epoch(epoch,
    loss)`` runs after every epoch; when it returns True training stops there (early stopping).
    """
    torch = require_torch()
    history: list[float] = []
    n_epochs = config.n_epochs
    if config.pretrain_epochs:
        theta0.requires_grad_(True)
        opt = torch.optim.Adam([theta0], lr=config.shared_lr)
        for _ in range(config.pretrain_epochs):
            for tasks in task_batches(data.n_tasks, config.task_batch_size, rng, data.counts):
                X, y, mask = data.batch(tasks)
                dense, b_idx, b_val = state.take(torch.from_numpy(tasks))
                shared_step(net, space, adapter, theta0, adapter.shared, dense, b_idx, b_val, X, y, mask, config,
                            opt)
    theta0.requires_grad_(config.train_base)
    if init_basis is not None:
        init_basis()
    has_task_params = bool(state.dense) or adapter.sparsity > 0
    for epoch in range(config.n_epochs):
        leaves = ([theta0] if config.train_base else []) + (list(adapter.shared.values())
                                                            if config.train_shared else [])
        for leaf in adapter.shared.values():
            leaf.requires_grad_(config.train_shared)
        scale = lr_schedule(epoch, n_epochs) if config.lr_decay else 1.0
        opt = torch.optim.Adam(leaves, lr=scale * config.shared_lr) if leaves else None
        total, rows = 0.0, 0
        for tasks in task_batches(data.n_tasks, config.task_batch_size, rng, data.counts):
            X, y, mask = data.batch(tasks)
            index = torch.from_numpy(tasks)
            dense, b_idx, b_val = state.take(index)
            if has_task_params:
                dense, b_idx, b_val, losses = task_step(net, space, adapter, theta0, adapter.shared, dense, b_idx,
                                                        b_val, X, y, mask, config, lr_scale=scale)
                state.put(index, dense, b_idx, b_val)
                counts = mask.sum(1).to(losses.dtype)
                total += float((losses * counts).sum())
                rows += int(counts.sum())
            if opt is not None:
                value = shared_step(net, space, adapter, theta0, adapter.shared, dense, b_idx, b_val, X, y, mask,
                                    config, opt)
                if not has_task_params:
                    total += value * float(mask.sum())
                    rows += int(mask.sum())
        with torch.no_grad():
            for leaf in adapter.shared.values():
                leaf.requires_grad_(False)
            adapter.normalize(state.dense)
        history.append(total / max(rows, 1))
        if on_epoch is not None and on_epoch(epoch, history[-1]):
            break
    theta0.requires_grad_(False)
    for leaf in adapter.shared.values():
        leaf.requires_grad_(False)
    return history

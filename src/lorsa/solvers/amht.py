"""The AMHT-LRS outer loop (SPEC §2, Algorithm 1): per-task step over blocks -> statistics -> reduce -> U step.

One pass over the blocks does, for every block independently, the per-task step (:mod:`.task_step`) with the
current ``U`` and, with the updated ``(w_i, b_i)``, the block's additive statistics for the next U step
(:mod:`.shared_step`). The driver reduces them by summation and solves for ``U``, then QR. An iteration is

    U^l  <- QR( argmin_U sum_i ||X_i U w_i^{l-1} - (y_i - X_i b_i^{l-1})||^2 )       (shared step)
    (w_i^l, b_i^l) <- per-task step with U^l, for every task                           (pass over blocks)

after an initial per-task pass with ``U^0`` (``b_i`` starting at 0, ``w_i`` from least squares, SPEC §2 Start).
This is Algorithm 1 with the iteration boundary moved by half a step, so that (i) the training objective after
each iteration comes out of the pass at no extra cost and (ii) the returned ``w_i, b_i`` are the per-task optimum
for the returned ``U`` (what a user computes from a published ``U`` in the billboard model, SPEC §6).

Optional: row sparsity ``zeta`` (each coordinate personalised by at most ``zeta`` tasks, kept by magnitude) is a
global projection of ``B`` between the per-task step and the statistics, costing a second pass; sample splitting
(a fresh batch of each task's rows per iteration, SPEC §2) cycles through disjoint batches, the loss history then
being measured on all rows with an extra pass.

Stopping: after ``max_iter`` iterations, or when the subspace moved less than ``tol``
(``||(I - U_old U_old^T) U_new||_F``), or the objective changed by less than ``tol`` relatively, or it fell to
round-off level (``1e-28 * sum y^2 / 2``). ``early_stopping=False`` always runs ``max_iter`` iterations (a private
fit must: the number of releases is fixed in advance, and a data-dependent stop would leak, SPEC §6).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from ..backends.serial import SerialBackend
from ..data import GramBlock, RaggedTasks, TaskBlock
from .row_sparsity import project_row_sparsity
from .shared_step import (
    block_exact_statistics,
    block_gram,
    block_jacobi_diagonal,
    block_normal_matvec,
    block_rhs,
    gram_jacobi_diagonal,
    gram_normal_matvec,
    orthonormalize,
    solve_cg,
    solve_exact,
)
from .task_step import TaskStepConfig, allowed_nonzeros, escape_floors, task_step
from .task_systems import GramSystem, RowSystem

__all__ = ["AMHTConfig", "AMHTResult", "Driver", "fit_amht", "run_amht", "block_pass", "pass_over_blocks",
           "normal_matvec_over_blocks", "initial_state", "half_sum_of_squares"]


@dataclass(frozen=True)
class AMHTConfig:
    """Resolved settings of the outer loop (the estimator validates and fills them)."""

    rank: int
    sparsity: int
    row_sparsity: int | None = None
    task_step: TaskStepConfig = field(default_factory=TaskStepConfig)
    u_solver: str = "exact"
    fit_u: bool = True
    max_iter: int = 100
    tol: float = 1e-8
    cg_tol: float = 1e-10
    cg_maxiter: int | None = None
    cache_gram: bool = True
    block_statistics: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None
    release: Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]] | None = None
    early_stopping: bool = True
    samples_per_nonzero: float | None = None
    engine: str = "numpy"


@dataclass
class AMHTResult:
    """Output of :func:`fit_amht`. ``idx, val (t, k)`` are the slots of ``b_i``."""

    U: np.ndarray
    W: np.ndarray
    idx: np.ndarray
    val: np.ndarray
    n_iter: int
    loss_history: np.ndarray
    initial_loss: float
    converged: bool
    subspace_changes: np.ndarray
    cg_iterations: list[int]
    iteration_times: np.ndarray


@dataclass
class BlockOutput:
    """What one block returns from a pass: its updated per-task parameters and additive statistics."""

    w: np.ndarray
    idx: np.ndarray
    val: np.ndarray
    loss: float
    A: np.ndarray | None = None
    V: np.ndarray | None = None
    diag: np.ndarray | None = None
    gram: np.ndarray | None = None


def block_pass(block: TaskBlock | GramBlock, U: np.ndarray, w: np.ndarray, idx: np.ndarray, val: np.ndarray,
               active: np.ndarray, step: TaskStepConfig, run_task_step: bool, stats: Any,
               gram: np.ndarray | None, keep_gram: bool, engine: str = "numpy") -> BlockOutput:
    """The per-block work of a pass: the per-task step (optional) and the block's U-step statistics.

    ``stats`` is ``"exact"`` (``A`` and ``V``), ``"cg"`` (``V`` and ``diag(A)``), None (loss only), or a callable
    ``stats(block, U, w, idx, val, target) -> (A, V)`` computing the block's statistics another way (e.g. from
    clipped rows for differential privacy, :mod:`lorsa.privacy`; row blocks only). ``engine="numba"`` runs a
    block's subspace pursuit and statistics as one compiled loop over its tasks (same results).
    """
    is_gram = isinstance(block, GramBlock)
    if is_gram and callable(stats):
        raise ValueError("custom block statistics need the rows of every task; build the data with layout='rows'")
    if (engine == "numba" and run_task_step and step.method == "sp" and step.fit_w
            and stats in (None, "exact", "cg")):
        return _compiled_block_pass(block, U, w, idx, val, active, step, stats, gram, keep_gram)
    system = GramSystem(block.G, block.c, block.yy, U) if is_gram else RowSystem(block.X, block.y, U)
    if run_task_step:
        res = task_step(system, w, idx, val, active, step, sizes=block.sizes)
        w, idx, val, target, loss = res.w, res.idx, res.val, res.target, res.loss_after
    else:
        target = system.target(idx, val)
        loss = float(np.sum(system.objective(system.residual(w, idx, val))))
        if step.ridge:
            loss += 0.5 * step.ridge * float(np.sum(w * w) + np.sum(val * val))
    out = BlockOutput(w=w, idx=idx, val=val, loss=loss)
    if callable(stats):
        out.A, out.V = stats(block, U, w, idx, val, target)
    elif stats is not None and is_gram:
        out.V = target.T @ w
        if stats == "exact":
            out.A = block_exact_statistics(block.G.astype(np.float64, copy=False), w)
        else:
            out.diag = gram_jacobi_diagonal(block.G, w)
    elif stats == "exact":
        _row_exact_statistics(out, block, gram, keep_gram)
        out.V = block_rhs(block.X, target, w)
    elif stats == "cg":
        out.V = block_rhs(block.X, target, w)
        out.diag = block_jacobi_diagonal(block.X, w)
    return out


def _compiled_block_pass(block: TaskBlock | GramBlock, U: np.ndarray, w: np.ndarray, idx: np.ndarray,
                         val: np.ndarray, active: np.ndarray, step: TaskStepConfig, stats: str | None,
                         gram: np.ndarray | None, keep_gram: bool) -> BlockOutput:
    """:func:`block_pass` with subspace pursuit and the statistics compiled (:mod:`.gram_pass_compiled`,
    :mod:`.row_pass_compiled`); the exact statistics of a row block still need its Gram matrices (numpy)."""
    swap_rtol = step.swap_rtol if step.swap else -1.0
    swap_floor, restart_floor = escape_floors(step)
    if isinstance(block, GramBlock):
        from .gram_pass_compiled import gram_sp_pass

        w, idx, val, loss, A, V = gram_sp_pass(block.G, block.c, block.yy, U, w, idx, val, active, step.ridge,
                                               step.n_steps, stats, swap_rtol, swap_floor, restart_floor)
        out = BlockOutput(w=w, idx=idx, val=val, loss=loss, A=A, V=V)
        if stats == "cg":
            out.diag = gram_jacobi_diagonal(block.G, w)
        return out
    from .row_pass_compiled import row_sp_pass

    w, idx, val, loss, V, diag = row_sp_pass(block.X, block.y, block.sizes, U, w, idx, val, active, step.ridge,
                                             step.n_steps, stats, swap_rtol, swap_floor, restart_floor)
    out = BlockOutput(w=w, idx=idx, val=val, loss=loss, V=V, diag=diag)
    if stats == "exact":
        _row_exact_statistics(out, block, gram, keep_gram)
    return out


def _row_exact_statistics(out: BlockOutput, block: TaskBlock, gram: np.ndarray | None, keep_gram: bool) -> None:
    """``out.A = sum_i (w_i w_i^T) ⊗ X_i^T X_i`` of a row block, from its cached Gram matrices or new ones
    (kept in ``out.gram`` for the next pass when ``keep_gram``)."""
    gram = block_gram(block.X) if gram is None else gram
    out.A = block_exact_statistics(gram, out.w)
    out.gram = gram if keep_gram else None


def _normal_matvec(block: TaskBlock | GramBlock, w: np.ndarray, D: np.ndarray, engine: str = "numpy") -> np.ndarray:
    if engine == "numba":
        if isinstance(block, GramBlock):
            from .gram_pass_compiled import gram_normal_matvec as compiled_gram_matvec

            return compiled_gram_matvec(block.G, w, D)
        from .row_pass_compiled import row_normal_matvec

        return row_normal_matvec(block.X, block.sizes, w, D)
    if isinstance(block, GramBlock):
        return gram_normal_matvec(block.G, w, D)
    return block_normal_matvec(block.X, w, D)


def pass_over_blocks(blocks: list[TaskBlock | GramBlock], key: int, U: np.ndarray, W: np.ndarray, idx: np.ndarray,
                     val: np.ndarray, active: np.ndarray, config: AMHTConfig, run_task_step: bool, stats: Any,
                     gram_cache: dict[tuple[int, int], np.ndarray], map_fn: Callable[..., list[Any]],
                     ) -> tuple[float, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """One pass of :func:`block_pass` over ``blocks`` and the sum of their statistics, in block order.

    ``W, idx, val`` (indexed by the blocks' ``task_ids``) are updated in place; ``gram_cache`` keeps the Gram
    matrices of row blocks between passes under ``(key, block number)``. ``map_fn(fn, items)`` runs the blocks (a
    backend's ``map``). Used by the in-memory driver below and, on each worker, by the dask engine
    (:mod:`lorsa.backends.dask`) over the blocks resident there. Returns ``(loss, A, V, diag(A))``.
    """
    d, r = U.shape
    items = []
    for j, blk in enumerate(blocks):
        ids = blk.task_ids
        keep = (config.cache_gram and isinstance(blk, TaskBlock) and isinstance(stats, str) and stats == "exact"
                and blk.X.shape[1] >= d)
        items.append((blk, U, W[ids], idx[ids], val[ids], active[ids], config.task_step, run_task_step, stats,
                      gram_cache.get((key, j)), keep, config.engine))
    outs = map_fn(block_pass, items)
    loss = 0.0
    A = np.zeros((d * r, d * r)) if stats == "exact" or callable(stats) else None
    V = np.zeros((d, r)) if stats else None
    diag = np.zeros((d, r)) if stats == "cg" else None
    for j, (blk, out) in enumerate(zip(blocks, outs, strict=True)):
        ids = blk.task_ids
        W[ids], idx[ids], val[ids] = out.w, out.idx, out.val
        loss += out.loss
        if out.gram is not None:
            gram_cache[(key, j)] = out.gram
        if A is not None:
            A += out.A
        if V is not None:
            V += out.V
        if diag is not None:
            diag += out.diag
    return loss, A, V, diag


def normal_matvec_over_blocks(blocks: list[TaskBlock | GramBlock], W: np.ndarray, D: np.ndarray, engine: str,
                              map_fn: Callable[..., list[Any]]) -> np.ndarray:
    """``sum_i X_i^T X_i D w_i w_i^T`` over ``blocks`` (the CG operator of the U step), summed in block order."""
    items = [(blk, W[blk.task_ids], D, engine) for blk in blocks]
    return sum(map_fn(_normal_matvec, items), np.zeros_like(D))


def initial_state(counts: np.ndarray, W0: np.ndarray, config: AMHTConfig
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``W, idx, val, active`` before the first pass: ``b_i = 0`` and the slots task ``i`` may use."""
    t, k = W0.shape[0], config.sparsity
    allowed = allowed_nonzeros(counts, config.rank, k, config.samples_per_nonzero)
    return (np.array(W0, dtype=np.float64), np.zeros((t, k), dtype=np.int64), np.zeros((t, k)),
            np.arange(k)[None, :] < allowed[:, None])


def with_loss_reference(config: AMHTConfig, loss_reference: float) -> AMHTConfig:
    """``config`` whose per-task step compares objectives with ``loss_reference`` (the previous pass's mean
    per-task objective; :func:`.task_step.escape_floors`)."""
    return replace(config, task_step=replace(config.task_step, loss_reference=float(loss_reference)))


class Driver(Protocol):
    """Where the per-task state lives and the passes run (in memory below, on dask workers in
    :mod:`lorsa.backends.dask.driver`). Data are named by a key: batch number, or -1 for all rows."""

    def run_pass(self, key: int, U: np.ndarray, run_task_step: bool, stats: Any, loss_reference: float = np.inf
                 ) -> tuple[float, np.ndarray | None, np.ndarray | None, np.ndarray | None]: ...

    def cg_matvec(self, key: int) -> Callable[[np.ndarray], np.ndarray]: ...

    def rotate(self, R: np.ndarray) -> None: ...

    def project_row_sparsity(self, zeta: int) -> None: ...

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class _Driver:
    """Holds the per-task state ``W, idx, val`` in this process and runs passes through a backend."""

    def __init__(self, config: AMHTConfig, backend: Any, W0: np.ndarray, counts: np.ndarray,
                 batches: list[RaggedTasks], full: RaggedTasks | None) -> None:
        self.config = config
        self.backend = backend
        self.batches, self.full = batches, full
        self.W, self.idx, self.val, self.active = initial_state(counts, W0, config)
        self.gram_cache: dict[tuple[int, int], np.ndarray] = {}

    def _data(self, key: int) -> RaggedTasks:
        return self.full if key < 0 else self.batches[key]

    def run_pass(self, key: int, U: np.ndarray, run_task_step: bool, stats: Any, loss_reference: float = np.inf
                 ) -> tuple[float, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        return pass_over_blocks(self._data(key).blocks, key, U, self.W, self.idx, self.val, self.active,
                                with_loss_reference(self.config, loss_reference), run_task_step, stats,
                                self.gram_cache, self.backend.map)

    def cg_matvec(self, key: int) -> Callable[[np.ndarray], np.ndarray]:
        blocks = self._data(key).blocks
        return lambda D: normal_matvec_over_blocks(blocks, self.W, D, self.config.engine, self.backend.map)

    def rotate(self, R: np.ndarray) -> None:
        self.W = self.W @ R.T

    def project_row_sparsity(self, zeta: int) -> None:
        self.val = project_row_sparsity(self.idx, self.val, self.active, zeta)

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.W, self.idx, self.val * self.active


def fit_amht(batches: list[RaggedTasks], U0: np.ndarray, W0: np.ndarray, config: AMHTConfig,
             backend: Any = None, full: RaggedTasks | None = None,
             callback: Callable[[int, float, float], None] | None = None) -> AMHTResult:
    """Run AMHT-LRS.

    Parameters
    ----------
    batches : list of RaggedTasks
        The data; more than one for sample splitting (iteration ``l`` uses ``batches[l % len(batches)]``).
    U0 : ndarray of shape (d, r)
        Initial basis (orthonormal unless ``task_step.fit_w`` is False, where ``U`` is a central model).
    W0 : ndarray of shape (t, r)
        Initial ``w_i`` (used only when they are held fixed, ``task_step.fit_w=False``; otherwise re-fitted).
    config : AMHTConfig
    backend : object with ``map(fn, items)``, default :class:`SerialBackend`
    full : RaggedTasks, optional
        All rows, for the loss history under sample splitting.
    callback : callable ``(iteration, loss, subspace_change)``, optional
        Called after every iteration (progress display).
    """
    backend = backend or SerialBackend()
    counts = full.counts if full is not None else batches[0].counts
    driver = _Driver(config, backend, W0, counts, batches, full)
    return run_amht(driver, U0, config, len(batches), half_sum_of_squares((full or batches[0]).blocks), callback,
                    n_tasks=len(counts))


def half_sum_of_squares(blocks: list[TaskBlock | GramBlock]) -> float:
    """``1/2 sum_ij y_ij^2`` over the blocks (the objective at ``theta = 0``; sets the round-off stopping floor)."""
    return 0.5 * sum(float(np.sum(b.y.astype(np.float64) ** 2)) if isinstance(b, TaskBlock)
                     else float(np.sum(b.yy)) for b in blocks)


def run_amht(driver: Driver, U0: np.ndarray, config: AMHTConfig, n_batches: int, total_sq: float,
             callback: Callable[[int, float, float], None] | None = None, n_tasks: int = 1) -> AMHTResult:
    """The outer loop of :func:`fit_amht` over any :class:`Driver` (``n_batches > 1``: sample splitting, the loss
    then measured on all rows, key -1; ``total_sq``: :func:`half_sum_of_squares` of all rows).

    Each per-task pass after the first gets the previous pass's loss over ``n_tasks`` (its mean per-task
    objective) as the reference of the escapes from wrong supports (:func:`.task_step.escape_floors`): one scalar
    from the reduced statistics, so the decisions do not depend on how the tasks are split into blocks."""
    cfg = config
    stats = (cfg.block_statistics or cfg.u_solver) if cfg.fit_u else None
    split = n_batches > 1
    floor = 1e-28 * max(total_sq, 1e-300)

    reference = [np.inf]  # mean per-task objective of the previous pass (none before the first)

    def per_task_pass(data_id: int, U: np.ndarray) -> tuple[float, Any, Any, Any]:
        if cfg.row_sparsity is None:
            loss, A, V, diag = driver.run_pass(data_id, U, True, stats, reference[0])
        else:
            driver.run_pass(data_id, U, True, None, reference[0])
            driver.project_row_sparsity(cfg.row_sparsity)
            loss, A, V, diag = driver.run_pass(data_id, U, False, stats)
        reference[0] = loss / max(n_tasks, 1)
        if split:
            loss = driver.run_pass(-1, U, False, None)[0]
        return loss, A, V, diag

    U = np.array(U0, dtype=np.float64)
    loss, A, V, diag = per_task_pass(0, U)
    initial_loss = loss
    history: list[float] = []
    changes: list[float] = []
    cg_iters: list[int] = []
    converged = False
    n_iter = 0
    times: list[float] = []
    for it in range(1, cfg.max_iter + 1):
        started = time.perf_counter()
        change = 0.0
        if cfg.fit_u:
            data_id = (it - 1) % n_batches
            if cfg.release is not None:
                A, V = cfg.release(A, V, it)
            if cfg.u_solver == "exact" or cfg.block_statistics is not None:
                U_ls = solve_exact(A, V)
            else:
                U_ls, n_cg = solve_cg(driver.cg_matvec(data_id), V, diag, U, rtol=cfg.cg_tol, maxiter=cfg.cg_maxiter)
                cg_iters.append(n_cg)
            if cfg.task_step.fit_w:
                U_new, R = orthonormalize(U_ls)
                driver.rotate(R)
                change = float(np.linalg.norm(U_new - U @ (U.T @ U_new)))
            else:
                change = float(np.linalg.norm(U_ls - U) / max(np.linalg.norm(U), 1e-300))
                U_new = U_ls
            U = U_new
        prev = loss
        loss, A, V, diag = per_task_pass(it % n_batches, U)
        n_iter = it
        history.append(loss)
        times.append(time.perf_counter() - started)
        changes.append(change)
        if callback is not None:
            callback(it, loss, change)
        rel = abs(prev - loss) / max(prev, 1e-300)
        if cfg.early_stopping and (loss <= floor or rel <= cfg.tol or (cfg.fit_u and change <= cfg.tol)):
            converged = True
            break
    W, idx, val = driver.state()
    return AMHTResult(U=U, W=W, idx=idx, val=val, n_iter=n_iter,
                      loss_history=np.asarray(history), initial_loss=initial_loss, converged=converged,
                      subspace_changes=np.asarray(changes), cg_iterations=cg_iters,
                      iteration_times=np.asarray(times))

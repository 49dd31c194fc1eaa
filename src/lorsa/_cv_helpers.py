"""Helpers of :class:`lorsa.LRSRegressorCV` (:mod:`lorsa.model_cv`): the default grids, the ridge scale, the
empirical-Bayes shrinkage of ``w_i``, the warm starts of the search, argument checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from . import _validation as v
from .model import predict_rows
from .solvers.init import moments_matrix, top_eigenvectors
from .solvers.random_effects import fit_random_effects, task_gram_blocks
from .solvers.task_resolve import TaskMoments, moments_residual_block

__all__ = ["default_ranks", "default_sparsities", "ridge_scale"]


def default_ranks(n_features: int, max_rank: int | None = None) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, 16, 24, 32, ... below ``d`` (and at most ``max_rank``)."""
    top = n_features - 1 if max_rank is None else min(n_features - 1, max_rank)
    out, r = [1, 2, 3], 4
    while r <= top:
        out += [r, r + r // 2]
        r *= 2
    return [x for x in out if x <= top]


def default_sparsities(n_features: int) -> list[int]:
    """0, 1, 2, 5, 10, 20, 50, ... up to ``d / 2``."""
    out = [0]
    for base in (1, 2, 5):
        scale = 1
        while base * scale <= n_features // 2:
            out.append(base * scale)
            scale *= 10
    return sorted(set(out))


def ridge_scale(X: np.ndarray, index: np.ndarray, n_tasks: int) -> float:
    """``median_i m_i * mean_j ||x_j||^2 / d``: the diagonal of a typical task's ``X_i^T X_i``."""
    counts = np.bincount(index, minlength=n_tasks)
    counts = counts[counts > 0]
    sq = float(np.einsum("nd,nd->", X, X)) / max(X.shape[0] * X.shape[1], 1)
    return float(np.median(counts)) * max(sq, 1e-300)


def _sparse_part(X: np.ndarray, index: np.ndarray, B: sp.spmatrix) -> np.ndarray:
    """``<x_j, b_{i(j)}>`` for every row."""
    return predict_rows(X, index, np.zeros((X.shape[1], 1)), np.zeros((B.shape[1], 1)), B)


def _eb_fit(X: np.ndarray, y: np.ndarray, index: np.ndarray, n_tasks: int, U: np.ndarray, B: sp.spmatrix,
            tol: float = 1e-7) -> Any:
    """Empirical-Bayes ``w_i``: EM for ``y_i - X_i b_i = X_i U w_i + eps``, ``w_i ~ N(mu_w, Sigma_w)`` (the search
    scores candidates with ``tol = 1e-5``: measured on ML-100K, hold-out RMSEs within 1e-5 of ``1e-7``'s)."""
    if TaskMoments.worthwhile(X.shape[0], n_tasks, X.shape[1]):
        return _eb_fit_moments(TaskMoments.from_rows(X, y, index, n_tasks), None, U, B, tol=tol)
    Z = X @ U
    blocks = task_gram_blocks(Z, y - _sparse_part(X, index, B), index, n_tasks)
    return fit_random_effects(blocks, n_tasks, max_iter=200, tol=tol)


def _eb_fit_moments(moments: Any, theta0: np.ndarray | None, U: np.ndarray, B: sp.spmatrix, tol: float = 1e-7
                    ) -> Any:
    """:func:`_eb_fit` from the per-task moments (:class:`lorsa.solvers.task_resolve.TaskMoments`) of ``y`` with
    the targets ``y - X theta_0``: no pass over the rows."""
    block = moments_residual_block(moments, theta0, U, B)
    return fit_random_effects([block], moments.counts.shape[0], max_iter=200, tol=tol)


def _warm_basis(U: np.ndarray, gram_w: np.ndarray, rank: int, directions: np.ndarray) -> np.ndarray:
    """A start for rank ``rank`` from a fitted ``U`` (d, r0): its leading directions of ``U W^T`` (``gram_w =
    W^T W``) when shrinking, or ``U`` followed by the moments ``directions`` orthogonalised when growing."""
    r0 = U.shape[1]
    if rank == r0:
        return U
    vals, vecs = np.linalg.eigh(gram_w)
    lead = U @ vecs[:, ::-1]
    if rank < r0:
        Q, _ = np.linalg.qr(lead[:, :rank])
        return Q
    Q, _ = np.linalg.qr(np.hstack([lead, directions]))
    return np.ascontiguousarray(Q[:, :rank])


def _moments_directions(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """All eigenvectors of ``(1/N) sum y^2 x x^T`` by decreasing eigenvalue (SPEC §4), for growing a basis (the
    method of moments' matrix, :func:`lorsa.solvers.init.moments_matrix`)."""
    return top_eigenvectors(moments_matrix(X, y), X.shape[1])


def _sorted_list(name: str, values: Any, check: Any) -> list[Any]:
    items = list(values) if isinstance(values, list | tuple | np.ndarray) else [values]
    if not items:
        raise ValueError(f"{name} must be a non-empty sequence, got an empty one")
    return sorted({check(f"{name}[{i}]", x) for i, x in enumerate(items)})


def _choices(name: str, values: Any, allowed: tuple[str, ...]) -> list[str]:
    items = [values] if isinstance(values, str) else list(values)
    if not items:
        raise ValueError(f"{name} must be a non-empty sequence of {list(allowed)}, got an empty one")
    return [v.check_choice(f"{name}[{i}]", x, allowed) for i, x in enumerate(items)]

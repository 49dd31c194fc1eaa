"""A straightforward implementation of Algorithm 1 (AMHT-LRS) as the paper writes it: the reference for speed.

A Python loop over tasks; per task, Algorithm 2 (iterative hard thresholding on ``b_i`` with ``v = U w_i`` fixed,
normalised step, top-``k`` projection), then ``w_i`` by least squares; the shared step builds the dense Kronecker
normal equations ``A = sum_i (w_i w_i^T) ⊗ X_i^T X_i`` with ``np.kron`` and solves them, then QR. Nothing here is
used by lorsa itself; it exists to be timed against it in the same run.
"""

from __future__ import annotations

import numpy as np


def _top_k(v: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros_like(v)
    if k:
        keep = np.argpartition(-np.abs(v), k - 1)[:k]
        out[keep] = v[keep]
    return out


def reference_amht(Xs: list[np.ndarray], ys: list[np.ndarray], U0: np.ndarray, k: int, n_iter: int,
                   n_steps: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """Run ``n_iter`` iterations; returns ``U, W (t, r), B (t, d)`` and the time of each iteration in seconds."""
    import time

    d, r = U0.shape
    t = len(Xs)
    U = U0.copy()
    W = np.array([np.linalg.lstsq(X @ U, y, rcond=None)[0] for X, y in zip(Xs, ys, strict=True)])
    B = np.zeros((t, d))
    times = []
    for _ in range(n_iter):
        start = time.perf_counter()
        A = np.zeros((d * r, d * r))
        V = np.zeros((d, r))
        for i in range(t):
            X, y = Xs[i], ys[i]
            v = X @ (U @ W[i])
            b = B[i]
            for _ in range(n_steps):  # Algorithm 2, normalised step (Blumensath & Davies)
                g = X.T @ (y - v - X @ b)
                support = np.flatnonzero(b) if np.any(b) else np.argpartition(-np.abs(g), k - 1)[:k]
                gs = np.zeros(d)
                gs[support] = g[support]
                Xg = X @ gs
                mu = (gs @ gs) / (Xg @ Xg) if Xg @ Xg > 0 else 0.0
                b = _top_k(b + mu * g, k)
            B[i] = b
            target = y - X @ b
            W[i] = np.linalg.lstsq(X @ U, target, rcond=None)[0]
            A += np.kron(np.outer(W[i], W[i]), X.T @ X)
            V += np.outer(X.T @ target, W[i])
        u = np.linalg.solve(A, V.reshape(-1, order="F"))
        U, R = np.linalg.qr(u.reshape((d, r), order="F"))
        W = W @ R.T
        times.append(time.perf_counter() - start)
    return U, W, B, times

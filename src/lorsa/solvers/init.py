"""Initial shared basis ``U^0`` (SPEC §4).

``"random"``: a uniformly random orthonormal ``d × r`` matrix (QR of a Gaussian matrix, sign-fixed).

``"moments"``: the method of moments of the paper's Appendix E. For Gaussian ``x``,
``E[y^2 x x^T] = sum_i (||theta_i||^2 + sigma^2) I + 2 theta_i theta_i^T`` summed over tasks, so the top-``r``
eigenvectors of ``M = (1/N) sum_ij y_ij^2 x_ij x_ij^T`` estimate the span of the ``theta_i`` (exactly ``U``'s span
when ``B = 0``). ``M`` is accumulated over chunks of rows (O(N d^2)) when ``d <= 1024``; for larger ``d`` its top
eigenvectors are found matrix-free with ``scipy.sparse.linalg.eigsh`` (O(N d) per product).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from .shared_step import orthonormalize

__all__ = ["random_basis", "moments_basis", "moments_matrix", "top_eigenvectors"]


def random_basis(d: int, r: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``d × r`` matrix with orthonormal columns, Haar distributed."""
    Q, _ = orthonormalize(rng.standard_normal((d, r)))
    return Q


def moments_basis(X: np.ndarray, y: np.ndarray, r: int, dense_limit: int = 1024, chunk_rows: int = 65536
                  ) -> np.ndarray:
    """Top-``r`` eigenvectors of ``M = (1/N) sum_ij y_ij^2 x_ij x_ij^T`` (paper Appendix E).

    Parameters
    ----------
    X : ndarray of shape (N, d)
        All rows of all tasks (the task of a row does not enter ``M``).
    y : ndarray of shape (N,)
    r : int
    """
    N, d = X.shape
    if d <= dense_limit:
        U = top_eigenvectors(moments_matrix(X, y, chunk_rows) / max(N, 1), r)
    else:
        def matvec(v: np.ndarray) -> np.ndarray:
            out = np.zeros(d)
            for start in range(0, N, chunk_rows):
                Xc = X[start:start + chunk_rows]
                out += Xc.T @ ((y[start:start + chunk_rows] ** 2) * (Xc @ v.astype(Xc.dtype)))
            return out / max(N, 1)

        op = LinearOperator((d, d), matvec=matvec, dtype=np.float64)
        vals, vecs = eigsh(op, k=r, which="LA", v0=np.ones(d))
        U = vecs[:, np.argsort(vals)[::-1]]
    Q, _ = orthonormalize(U)
    return Q


def moments_matrix(X: np.ndarray, y: np.ndarray, chunk_rows: int = 65536) -> np.ndarray:
    """``sum_j y_j^2 x_j x_j^T`` over the rows (float64, (d, d)), accumulated over chunks of rows: additive over any
    split of the rows, so a distributed engine sums it over partitions."""
    d = X.shape[1]
    M = np.zeros((d, d))
    for start in range(0, X.shape[0], chunk_rows):
        Xc = X[start:start + chunk_rows]
        yy = (y[start:start + chunk_rows] ** 2).astype(Xc.dtype)
        M += (Xc.T @ (Xc * yy[:, None])).astype(np.float64)
    return M


def top_eigenvectors(M: np.ndarray, r: int) -> np.ndarray:
    """The ``r`` leading eigenvectors of the symmetric ``M`` (columns, largest first)."""
    _, vecs = np.linalg.eigh(0.5 * (M + M.T))
    return vecs[:, ::-1][:, :r]

"""The paper's synthetic low-rank + sparse regression problem (SPEC §8, Figure 2).

``x ~ N(0, I_d)``, ``U`` uniform on the Stiefel manifold (QR of a Gaussian matrix), ``w_i ~ N(0, I_r)``, the
non-zeros of ``B`` ~ N(0, 1), each column ``k``-sparse and each row at most ``zeta``-sparse (so ``t k <= d zeta``),
``y_ij = <x_ij, U w_i + b_i> + sigma * e_ij`` with ``e_ij ~ N(0, 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._validation import check_dtype, check_float, check_int, check_random_state

__all__ = ["LRSProblem", "make_lrs_regression", "random_support"]


@dataclass(frozen=True)
class LRSProblem:
    """A generated multi-task data set and its true parameters.

    Attributes
    ----------
    X : ndarray of shape (N, d)
    y : ndarray of shape (N,)
    tasks : ndarray of shape (N,), int
        Task of each row, in ``0..t-1``.
    U : ndarray of shape (d, r)
        True orthonormal basis.
    W : ndarray of shape (t, r)
        True ``w_i`` (rows).
    B : scipy.sparse.csc_matrix of shape (d, t)
        True ``b_i`` (columns).
    noise : float
        The noise standard deviation ``sigma``.
    """

    X: np.ndarray
    y: np.ndarray
    tasks: np.ndarray
    U: np.ndarray
    W: np.ndarray
    B: sp.csc_matrix
    noise: float

    @property
    def theta(self) -> np.ndarray:
        """True task parameters ``Theta = U W^T + B``, shape (d, t)."""
        return self.U @ self.W.T + self.B.toarray()

    def sample(self, n_samples: int | np.ndarray, random_state: int | np.random.Generator | None = None,
               noise: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fresh rows from the same tasks (e.g. a test set): returns ``X, y, tasks``."""
        rng = check_random_state(random_state)
        t = self.W.shape[0]
        sizes = _sizes(n_samples, t)
        tasks = np.repeat(np.arange(t), sizes)
        X = _features(tasks.size, self.U.shape[0], self.X.dtype, rng)
        sigma = self.noise if noise is None else noise
        y = _responses(X, tasks, self.theta, sigma, rng)
        return X, y, tasks


def _sizes(n_samples: int | np.ndarray, t: int) -> np.ndarray:
    sizes = np.asarray(n_samples)
    if sizes.ndim == 0:
        m = check_int("n_samples", n_samples if sizes.dtype.kind not in "iu" else int(sizes), 1)
        return np.full(t, m, dtype=np.int64)
    if sizes.shape != (t,) or sizes.dtype.kind not in "iu" or np.any(sizes < 1):
        raise ValueError(f"n_samples must be a positive int or an array of {t} positive ints, got {sizes!r}")
    return sizes.astype(np.int64)


def _features(n_rows: int, d: int, dtype: np.dtype, rng: np.random.Generator, chunk_rows: int = 2**20
              ) -> np.ndarray:
    """``x ~ N(0, I_d)`` rows, drawn in chunks straight into ``dtype`` (no float64 copy of a float32 matrix)."""
    X = np.empty((n_rows, d), dtype=dtype)
    for start in range(0, n_rows, chunk_rows):
        stop = min(start + chunk_rows, n_rows)
        X[start:stop] = rng.standard_normal((stop - start, d), dtype=dtype)
    return X


def _responses(X: np.ndarray, tasks: np.ndarray, theta: np.ndarray, sigma: float,
               rng: np.random.Generator, chunk_rows: int = 2**16) -> np.ndarray:
    y = np.empty(X.shape[0], dtype=X.dtype)
    theta_rows = theta.T.astype(X.dtype)
    for start in range(0, X.shape[0], chunk_rows):
        sl = slice(start, start + chunk_rows)
        y[sl] = np.einsum("nd,nd->n", X[sl], theta_rows[tasks[sl]])
    if sigma > 0:
        for start in range(0, X.shape[0], chunk_rows):
            sl = slice(start, start + chunk_rows)
            y[sl] += sigma * rng.standard_normal(y[sl].shape[0], dtype=X.dtype)
    return y


def random_support(n_tasks: int, n_features: int, sparsity: int, row_sparsity: int | None,
                   rng: np.random.Generator) -> np.ndarray:
    """Supports ``(t, k)`` of the ``b_i``: ``k`` distinct coordinates per task, each coordinate used by at most
    ``row_sparsity`` tasks.

    With a row limit, tasks pick, in turn, ``k`` coordinates among the least used so far (random tie-breaking):
    loads then never differ by more than one, so the limit holds whenever ``t k <= d zeta``, including the paper's
    tight case ``t = d zeta / k``. Without one, each task draws ``k`` coordinates uniformly.
    """
    if sparsity == 0:
        return np.zeros((n_tasks, 0), dtype=np.int64)
    if row_sparsity is None:
        keys = rng.random((n_tasks, n_features))
        return np.sort(np.argpartition(keys, sparsity - 1, axis=1)[:, :sparsity], axis=1)
    load = np.zeros(n_features, dtype=np.int64)
    support = np.empty((n_tasks, sparsity), dtype=np.int64)
    for i in range(n_tasks):  # setup only: bounded by d * zeta / k tasks
        order = np.lexsort((rng.random(n_features), load))
        chosen = np.sort(order[:sparsity])
        support[i] = chosen
        load[chosen] += 1
    return support


def make_lrs_regression(n_tasks: int = 75, n_samples: int | np.ndarray = 100, n_features: int = 150,
                        rank: int = 1, sparsity: int = 10, row_sparsity: int | None = 5, noise: float = 0.0,
                        random_state: int | np.random.Generator | None = None,
                        dtype: str | np.dtype = "float64") -> LRSProblem:
    """Generate the paper's synthetic LRS problem (defaults: Figure 2's setting, t = d zeta / k = 75).

    Parameters
    ----------
    n_tasks : int
        Number of tasks ``t``.
    n_samples : int or array of shape (t,)
        Samples per task ``m`` (or ``m_i``).
    n_features : int
        Dimension ``d``.
    rank : int
        Rank ``r`` (``1 <= r <= d``).
    sparsity : int
        Non-zeros per ``b_i``, ``k`` (``0 <= k <= d``).
    row_sparsity : int or None
        ``zeta``: tasks per coordinate at most (requires ``t k <= d zeta``; a value above ``t`` is no limit); None
        for no limit.
    noise : float
        Standard deviation ``sigma`` of the additive Gaussian noise.
    random_state : int, Generator or None
    dtype : {"float64", "float32"}
        Precision of ``X`` and ``y`` (drawn in chunks, so a float32 problem never exists in float64).

    Returns
    -------
    LRSProblem
    """
    t = check_int("n_tasks", n_tasks, 1)
    d = check_int("n_features", n_features, 1)
    r = check_int("rank", rank, 1, d)
    k = check_int("sparsity", sparsity, 0, d)
    zeta = check_int("row_sparsity", row_sparsity, 1, allow_none=True)
    if zeta is not None:
        zeta = min(zeta, t)  # a coordinate cannot be personalised by more tasks than there are
    sigma = check_float("noise", noise, 0.0)
    if zeta is not None and t * k > d * zeta:
        raise ValueError(
            f"row_sparsity={zeta} is too small: t*k = {t * k} non-zeros cannot fit in d*zeta = {d * zeta} slots; "
            f"use n_tasks <= {d * zeta // max(k, 1)} or a larger row_sparsity"
        )
    sizes = _sizes(n_samples, t)
    dtype = check_dtype("dtype", dtype)
    rng = check_random_state(random_state)
    Q, R = np.linalg.qr(rng.standard_normal((d, r)))
    U = Q * np.where(np.diagonal(R) < 0, -1.0, 1.0)
    W = rng.standard_normal((t, r))
    support = random_support(t, d, k, zeta, rng)
    values = rng.standard_normal((t, k))
    B = sp.csc_matrix((values.reshape(-1), (support.reshape(-1), np.repeat(np.arange(t), k))), shape=(d, t))
    B.sort_indices()
    tasks = np.repeat(np.arange(t), sizes)
    X = _features(tasks.size, d, dtype, rng)
    theta = U @ W.T + B.toarray()
    y = _responses(X, tasks, theta, sigma, rng)
    return LRSProblem(X=X, y=y, tasks=tasks, U=U, W=W, B=B, noise=sigma)

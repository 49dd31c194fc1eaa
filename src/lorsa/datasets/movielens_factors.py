"""The rank-50 factorisation of the MovieLens protocol (SPEC §8): movie vectors from TRAINING ratings only.

Split from :mod:`lorsa.datasets.movielens_tasks` (which re-exports :func:`fit_movie_vectors` and
:class:`MovieFactors`); see :func:`fit_movie_vectors` for which factorisation and why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MovieFactors", "SeedLike", "fit_movie_vectors"]

SeedLike = int | Sequence[int] | np.random.Generator


@dataclass(frozen=True)
class MovieFactors:
    """A rank-r factorisation ``R ~ user_vectors @ movie_vectors.T`` of observed ratings.

    Attributes
    ----------
    movie_ids, movie_vectors : numpy.ndarray
        Sorted ids of the movies that had at least one rating, and their (n_movies, rank) vectors.
    user_ids, user_vectors : numpy.ndarray
        Sorted ids of the users, and their (n_users, rank) vectors.
    singular_values : numpy.ndarray
        Singular values of the fitted low-rank matrix, decreasing; column c of both factor matrices is
        scaled by ``sqrt(singular_values[c])``.
    train_rmse : float
        RMSE of the fit on the ratings it was given.
    n_iter : int
        ALS sweeps run.
    """

    movie_ids: np.ndarray
    movie_vectors: np.ndarray
    user_ids: np.ndarray
    user_vectors: np.ndarray
    singular_values: np.ndarray
    train_rmse: float
    n_iter: int


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int):
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols[order], vals[order]


def _single_threaded_blas():
    """One BLAS thread while ALS runs (if threadpoolctl is installed; otherwise a no-op).

    The ALS steps are thousands of small (n x r)^T (n x r) products; a multi-threaded BLAS gains nothing
    on them and, on a machine shared with other processes, its threads' spin-waiting made the ML-1M
    protocol 5-10x slower in measurements (40 s instead of 4 s).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _half_step(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, B: np.ndarray, reg: float):
    """Ridge solve of every row's factor given the other side's factors B (weighted-lambda ALS).

    Loops over rows (users or movies, never ratings): each row's Gram matrix is one BLAS product, which
    measured 5x faster than forming all Gram matrices with one sparse-dense product of width r(r+1)/2.
    """
    n_rows, r = len(indptr) - 1, B.shape[1]
    out = np.empty((n_rows, r))
    counts = np.diff(indptr)
    diag = np.arange(r)
    for lo in range(0, n_rows, 1024):
        hi = min(lo + 1024, n_rows)
        G = np.empty((hi - lo, r, r))
        rhs = np.empty((hi - lo, r))
        for a in range(lo, hi):
            Bs = B[indices[indptr[a] : indptr[a + 1]]]
            G[a - lo] = Bs.T @ Bs
            rhs[a - lo] = values[indptr[a] : indptr[a + 1]] @ Bs
        G[:, diag, diag] += reg * np.maximum(counts[lo:hi], 1)[:, None]
        out[lo:hi] = np.linalg.solve(G, rhs[..., None])[..., 0]
    return out


def fit_movie_vectors(
    user: np.ndarray,
    item: np.ndarray,
    rating: np.ndarray,
    *,
    rank: int = 50,
    reg: float = 0.1,
    n_iter: int = 15,
    tol: float = 1e-3,
    seed: SeedLike = 0,
) -> MovieFactors:
    """Rank-`rank` factorisation of observed ratings by regularised alternating least squares.

    Minimises ``sum_obs (r_uj - <p_u, q_j>)^2 + reg * (sum_u n_u |p_u|^2 + sum_j n_j |q_j|^2)`` over user
    vectors ``p_u`` and movie vectors ``q_j`` (weighted-lambda ALS, Zhou et al. 2008; ``n_u``, ``n_j`` are
    rating counts), on the raw 1-5 ratings, without separate bias terms.

    Why this factorisation: (a) it fits only the observed ratings, whereas a truncated SVD of the
    zero-filled (or centred) matrix treats every missing rating as a rating, which biases the vectors
    towards popularity; (b) a user's rating is then *linear* in the movie vector, ``r_uj ~ <p_u, q_j>``,
    with no intercept -- exactly the model class the tasks fit, ``y = <x, theta_i>``, so the mean rating
    is carried by the vectors themselves (bias terms would move it outside the 50 coordinates); (c) ALS
    is deterministic given the seed and has one well-understood knob, `reg`.

    The result is put in a canonical basis: the fitted matrix ``P Q^T`` is re-factorised through its
    SVD ``A S B^T`` as ``(A S^1/2)(B S^1/2)^T``, columns ordered by decreasing singular value and signed so
    that each movie column sums to >= 0. Coordinates (which sparse per-task fine-tuning acts on) are then
    reproducible and ordered by importance instead of being an arbitrary rotation.

    Parameters
    ----------
    user, item, rating : numpy.ndarray
        One entry per observed rating; repeated (user, movie) pairs are averaged.
    rank : int, default 50
        Dimension of the vectors.
    reg : float, default 0.1
        Weighted-lambda ridge strength (> 0).
    n_iter : int, default 15
        Maximum ALS sweeps (user step + movie step).
    tol : float, default 1e-3
        Stop when the relative change of the movie factors in a sweep falls below it.
    seed : int, sequence of int or numpy.random.Generator, default 0
        Seed of the random initialisation.

    Returns
    -------
    MovieFactors
    """
    user = np.asarray(user, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    rating = np.asarray(rating, dtype=np.float64)
    if not (user.shape == item.shape == rating.shape) or user.ndim != 1 or len(user) == 0:
        raise ValueError(
            f"user, item and rating must be non-empty 1-d arrays of equal length, got shapes "
            f"{user.shape}, {item.shape}, {rating.shape}"
        )
    if int(rank) < 1:
        raise ValueError(f"rank must be a positive integer, got {rank!r}")
    if not float(reg) > 0:
        raise ValueError(f"reg must be > 0, got {reg!r}")
    if int(n_iter) < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter!r}")
    rank = int(rank)
    user_ids, ui = np.unique(user, return_inverse=True)
    movie_ids, mi = np.unique(item, return_inverse=True)
    n_u, n_m = len(user_ids), len(movie_ids)
    key, kinv = np.unique(ui * n_m + mi, return_inverse=True)
    if len(key) < len(user):  # average repeated (user, movie) ratings
        rating = np.bincount(kinv, weights=rating) / np.bincount(kinv)
        ui, mi = key // n_m, key % n_m
    by_user = _csr(ui, mi, rating, n_u)
    by_movie = _csr(mi, ui, rating, n_m)

    rng = np.random.default_rng(seed)
    Q = rng.normal(scale=0.1, size=(n_m, rank))
    Q[:, 0] += 1.0  # a near-constant direction to start from: ratings are far from zero-mean
    sweeps = 0
    with _single_threaded_blas():
        for sweeps in range(1, int(n_iter) + 1):  # noqa: B007 (sweeps reported)
            P = _half_step(*by_user, Q, float(reg))
            Q_new = _half_step(*by_movie, P, float(reg))
            change = np.linalg.norm(Q_new - Q) / max(np.linalg.norm(Q), 1e-12)
            Q = Q_new
            if change < tol:
                break

    # canonical basis through the SVD of P Q^T (thin QRs keep it O((n_u + n_m) r^2))
    Qp, Rp = np.linalg.qr(P)
    Qq, Rq = np.linalg.qr(Q)
    A, s, Bt = np.linalg.svd(Rp @ Rq.T, full_matrices=False)
    k = len(s)  # < rank only when there are fewer users or movies than rank: pad with zero columns
    s = np.concatenate([s, np.zeros(rank - k)])
    root = np.sqrt(s)
    user_vectors = np.zeros((n_u, rank))
    movie_vectors = np.zeros((n_m, rank))
    user_vectors[:, :k] = Qp @ A
    movie_vectors[:, :k] = Qq @ Bt.T
    user_vectors *= root
    movie_vectors *= root
    sign = np.where(movie_vectors.sum(axis=0) < 0, -1.0, 1.0)
    user_vectors *= sign
    movie_vectors *= sign

    sq = 0.0
    for lo in range(0, len(ui), 200_000):
        pred = np.einsum("ij,ij->i", user_vectors[ui[lo : lo + 200_000]], movie_vectors[mi[lo : lo + 200_000]])
        sq += float(np.sum((rating[lo : lo + 200_000] - pred) ** 2))
    return MovieFactors(movie_ids, movie_vectors, user_ids, user_vectors, s, float(np.sqrt(sq / len(ui))), sweeps)

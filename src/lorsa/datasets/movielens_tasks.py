"""The paper's MovieLens protocol (SPEC §8): ratings -> a multi-task linear regression problem.

Steps, each a public function:

1. :func:`assign_tasks` -- a task is a demographic cluster (gender x age group x occupation; ML-1M has
   241 that occur) or, with ``grouping="user"``, a single user (the most data-starved setting).
2. :func:`split_task_movies` -- per task, a seeded 20% of the movies rated by at least one of its users;
   all the task's ratings of those movies are held out (validation), the rest is training.
3. :func:`fit_movie_vectors` (:mod:`lorsa.datasets.movielens_factors`, re-exported here) -- a rank-50
   factorisation of the TRAINING ratings only, giving one 50-dim vector per movie (no leakage: held-out ratings
   never reach it).
4. :func:`movielens_tasks` -- a task's samples are (movie vector, the task's mean rating of that movie),
   one per (task, movie), returned as :class:`MovieLensTasks`.

:func:`movielens_tuning_tasks` runs the same protocol inside the training part (a further 20% of each
task's training movies held out for choosing hyper-parameters), never touching the validation ratings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lorsa.datasets.movielens import MovieLensData
from lorsa.datasets.movielens_factors import MovieFactors, SeedLike, fit_movie_vectors

__all__ = [
    "GROUPINGS",
    "MovieFactors",
    "MovieLensTasks",
    "assign_tasks",
    "fit_movie_vectors",
    "movielens_tasks",
    "movielens_tuning_tasks",
    "split_task_movies",
]

#: Allowed values of ``grouping``.
GROUPINGS: tuple[str, ...] = ("demographic", "user")


def assign_tasks(data: MovieLensData, grouping: str = "demographic") -> tuple[np.ndarray, np.ndarray]:
    """Task of every rating.

    Parameters
    ----------
    data : MovieLensData
        Loaded ratings and users.
    grouping : {"demographic", "user"}, default "demographic"
        ``"demographic"``: a task is one (gender, age group, occupation) combination, labelled
        ``"F|25|programmer"``; ``"user"``: a task is one user, labelled by the user id (``"42"``).
        Only tasks with at least one rating exist (users without ratings form no task).

    Returns
    -------
    task : numpy.ndarray
        int64 task index per rating, into `labels`.
    labels : numpy.ndarray
        str label per task; demographic labels sorted as strings, user tasks by increasing user id.
    """
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    order = np.argsort(data.user_ids, kind="stable")
    sorted_ids = data.user_ids[order]
    pos = np.clip(np.searchsorted(sorted_ids, data.user), 0, len(sorted_ids) - 1)
    if len(sorted_ids) == 0 or np.any(sorted_ids[pos] != data.user):
        missing = data.user[sorted_ids[pos] != data.user] if len(sorted_ids) else data.user
        raise ValueError(f"ratings name users missing from the users table, e.g. user {int(missing[0])}")
    user_row = order[pos]  # row of each rating's user in the users table
    rated = np.unique(user_row)
    if grouping == "user":
        key = data.user_ids[rated]
        uniq, inv = np.unique(key, return_inverse=True)
        labels = uniq.astype(str)
    else:
        per_user = np.char.add(
            np.char.add(np.char.add(data.gender[rated].astype(str), "|"), data.age_group[rated].astype(str)),
            np.char.add("|", data.occupation[rated].astype(str)),
        )
        labels, inv = np.unique(per_user, return_inverse=True)
    task_of_row = np.full(len(data.user_ids), -1, dtype=np.int64)
    task_of_row[rated] = inv
    return task_of_row[user_row], labels


def split_task_movies(
    task: np.ndarray,
    item: np.ndarray,
    *,
    fraction: float = 0.2,
    seed: SeedLike = 0,
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """Hold out, per task, a random `fraction` of the movies it rated, with all its ratings of them.

    Parameters
    ----------
    task, item : numpy.ndarray
        Task index and movie id of every rating (same length).
    fraction : float, default 0.2
        Share of each task's distinct movies held out, in (0, 1). A task with ``n`` movies holds out
        ``floor(fraction * n + 0.5)`` of them, capped at ``n - 1`` so that it keeps at least one
        training movie.
    seed : int, sequence of int or numpy.random.Generator, default 0
        Seed of ``numpy.random.default_rng``; the split depends only on it and on the set of
        (task, movie) pairs, not on the order of the ratings.
    eligible : numpy.ndarray of bool, optional
        Only these ratings take part (e.g. the training part, to carve a tuning split out of it);
        the others are never held out and do not count as rated movies.

    Returns
    -------
    numpy.ndarray
        bool per rating: True where the rating is held out.
    """
    task = np.asarray(task, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    if task.shape != item.shape or task.ndim != 1:
        raise ValueError(f"task and item must be 1-d of equal length, got shapes {task.shape} and {item.shape}")
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    idx = np.arange(len(task)) if eligible is None else np.flatnonzero(np.asarray(eligible, dtype=bool))
    if eligible is not None and len(eligible) != len(task):
        raise ValueError(f"eligible must have one entry per rating ({len(task)}), got {len(eligible)}")
    held = np.zeros(len(task), dtype=bool)
    if len(idx) == 0:
        return held
    t, i = task[idx], item[idx]
    if t.min() < 0 or i.min() < 0:
        raise ValueError("task indices and movie ids must be non-negative")
    base = int(i.max()) + 1
    pairs, inv = np.unique(t * base + i, return_inverse=True)  # sorted by (task, movie)
    pair_task = pairs // base
    _, start, n_movies = np.unique(pair_task, return_index=True, return_counts=True)
    n_hold = np.minimum(np.floor(float(fraction) * n_movies + 0.5).astype(np.int64), n_movies - 1)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(pairs)), pair_task))  # random order within each task block
    block = np.repeat(np.arange(len(start)), n_movies)  # block index of each sorted pair
    rank = np.empty(len(pairs), dtype=np.int64)
    rank[order] = np.arange(len(pairs)) - start[block]
    held_pair = rank < n_hold[block]
    held[idx] = held_pair[inv]
    return held


@dataclass(frozen=True)
class MovieLensTasks:
    """A multi-task regression problem built from MovieLens by the paper's protocol.

    One sample per (task, movie): ``x`` is the movie's vector, ``y`` the task's mean rating of it. Rows are
    sorted by (task, movie id). ``*_val`` is the validation part, or the tuning part for a problem made by
    :func:`movielens_tuning_tasks` (``metadata["heldout"]`` says which).

    Attributes
    ----------
    X_train, y_train : numpy.ndarray
        (N, rank) movie vectors and (N,) mean ratings.
    tasks_train : numpy.ndarray
        str task label per row (``"F|25|programmer"`` or a user id).
    task_index_train : numpy.ndarray
        int64 index into `task_labels` per row.
    movies_train : numpy.ndarray
        Movie id per row.
    n_ratings_train : numpy.ndarray
        Number of ratings averaged into each row's ``y`` (usable as sample weights).
    X_val, y_val, tasks_val, task_index_val, movies_val, n_ratings_val : numpy.ndarray
        The same for the held-out part.
    task_labels : numpy.ndarray
        str label of every task (those with at least one rating).
    train_counts, val_counts : numpy.ndarray
        Samples per task (int64, aligned with `task_labels`).
    factors : MovieFactors
        The factorisation of the training ratings that gave the movie vectors.
    metadata : dict
        Numbers of tasks, ratings and samples, dropped held-out samples (movies with no training rating
        at all, hence no vector), the protocol's parameters and the factorisation's training RMSE.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    tasks_train: np.ndarray
    task_index_train: np.ndarray
    movies_train: np.ndarray
    n_ratings_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    tasks_val: np.ndarray
    task_index_val: np.ndarray
    movies_val: np.ndarray
    n_ratings_val: np.ndarray
    task_labels: np.ndarray
    train_counts: np.ndarray
    val_counts: np.ndarray
    factors: MovieFactors
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return int(len(self.task_labels))


def _task_movie_means(task: np.ndarray, item: np.ndarray, rating: np.ndarray, base: int):
    """(task, movie, mean rating, count) per distinct (task, movie) pair, sorted by (task, movie)."""
    pairs, inv, counts = np.unique(task * base + item, return_inverse=True, return_counts=True)
    means = np.bincount(inv, weights=rating.astype(np.float64), minlength=len(pairs)) / counts
    return pairs // base, pairs % base, means, counts.astype(np.int64)


def _check_grouping_and_fraction(grouping: str, fraction: float, name: str = "fraction") -> None:
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {fraction!r}")


def _build(
    data: MovieLensData,
    task: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    heldout: np.ndarray,
    meta: dict[str, Any],
    factor_kw: dict[str, Any],
) -> MovieLensTasks:
    factors = fit_movie_vectors(data.user[train], data.item[train], data.rating[train], **factor_kw)
    base = int(data.item.max()) + 1
    tt, mt, yt, ct = _task_movie_means(task[train], data.item[train], data.rating[train], base)
    tv, mv, yv, cv = _task_movie_means(task[heldout], data.item[heldout], data.rating[heldout], base)
    pos_t = np.searchsorted(factors.movie_ids, mt)  # every training movie has a vector
    pos_v = np.clip(np.searchsorted(factors.movie_ids, mv), 0, len(factors.movie_ids) - 1)
    has = factors.movie_ids[pos_v] == mv  # held-out movies with no training rating at all: no vector
    n_tasks = len(labels)
    train_counts = np.bincount(tt, minlength=n_tasks).astype(np.int64)
    val_counts = np.bincount(tv[has], minlength=n_tasks).astype(np.int64)
    meta = dict(meta)
    meta.update(
        n_tasks=int(n_tasks),
        n_ratings=int(len(data.rating)),
        n_ratings_train=int(train.sum()),
        n_ratings_heldout=int(heldout.sum()),
        n_samples_train=int(len(tt)),
        n_samples_val=int(has.sum()),
        n_val_samples_dropped=int((~has).sum()),
        n_val_ratings_dropped=int(cv[~has].sum()),
        min_train_samples_per_task=int(train_counts.min()) if n_tasks else 0,
        max_train_samples_per_task=int(train_counts.max()) if n_tasks else 0,
        n_movies_with_vector=int(len(factors.movie_ids)),
        factorisation="weighted-lambda ALS on raw training ratings, canonical SVD basis",
        factorisation_train_rmse=factors.train_rmse,
        factorisation_iterations=factors.n_iter,
        **{f"factor_{k}": (v if isinstance(v, int | float) else repr(v)) for k, v in factor_kw.items()},
    )
    return MovieLensTasks(
        X_train=factors.movie_vectors[pos_t],
        y_train=yt,
        tasks_train=labels[tt],
        task_index_train=tt,
        movies_train=mt,
        n_ratings_train=ct,
        X_val=factors.movie_vectors[pos_v[has]],
        y_val=yv[has],
        tasks_val=labels[tv[has]],
        task_index_val=tv[has],
        movies_val=mv[has],
        n_ratings_val=cv[has],
        task_labels=labels,
        train_counts=train_counts,
        val_counts=val_counts,
        factors=factors,
        metadata=meta,
    )


def movielens_tasks(
    data: MovieLensData,
    *,
    grouping: str = "demographic",
    fraction: float = 0.2,
    seed: int = 0,
    rank: int = 50,
    reg: float = 0.1,
    n_iter: int = 15,
    tol: float = 1e-3,
) -> MovieLensTasks:
    """Build the paper's multi-task problem: training and validation samples per task.

    Per task (see :func:`assign_tasks`), `fraction` of the movies rated by at least one of its users is
    chosen with `seed` (:func:`split_task_movies`); all the task's ratings of those movies are
    validation, the rest training. Movie vectors come from :func:`fit_movie_vectors` fitted to the
    training ratings only (no leakage). A task's samples are (movie vector, the task's mean rating of the
    movie). A validation movie that has no training rating by anyone (so no vector) cannot be a sample:
    those validation samples are dropped, and counted in ``metadata["n_val_samples_dropped"]`` and
    ``metadata["n_val_ratings_dropped"]`` (on ML-100K and ML-1M this concerns only a handful of rarely
    rated movies).

    Parameters
    ----------
    data : MovieLensData
        From :func:`lorsa.datasets.movielens.load_movielens`.
    grouping : {"demographic", "user"}, default "demographic"
        What a task is.
    fraction : float, default 0.2
        Share of each task's movies held out for validation.
    seed : int, default 0
        Seed of the split; the factorisation's initialisation uses the same seed.
    rank, reg, n_iter, tol : see :func:`fit_movie_vectors`.

    Returns
    -------
    MovieLensTasks
    """
    _check_grouping_and_fraction(grouping, fraction)
    task, labels = assign_tasks(data, grouping)
    heldout = split_task_movies(task, data.item, fraction=fraction, seed=seed)
    meta = {
        "dataset": data.name,
        "source": data.source,
        "grouping": grouping,
        "heldout": "validation",
        "fraction": float(fraction),
        "seed": int(seed),
    }
    kw = {"rank": rank, "reg": reg, "n_iter": n_iter, "tol": tol, "seed": seed}
    return _build(data, task, labels, ~heldout, heldout, meta, kw)


def movielens_tuning_tasks(
    data: MovieLensData,
    *,
    grouping: str = "demographic",
    fraction: float = 0.2,
    seed: int = 0,
    tuning_fraction: float = 0.2,
    tuning_seed: int | None = None,
    rank: int = 50,
    reg: float = 0.1,
    n_iter: int = 15,
    tol: float = 1e-3,
) -> MovieLensTasks:
    """The protocol run inside the training part, for choosing hyper-parameters.

    First the validation split of :func:`movielens_tasks` (same `grouping`, `fraction`, `seed`) is made
    and its validation ratings are set aside, unused. Then, per task, `tuning_fraction` of the movies in
    the task's *training* ratings is held out the same way (:func:`split_task_movies` with
    ``eligible=training``), the factorisation is refitted on the remaining ratings only, and the samples
    are built as in :func:`movielens_tasks`. The returned ``X_val``/``y_val``... are the tuning set
    (``metadata["heldout"] == "tuning"``); the validation ratings enter neither part nor the vectors.

    Parameters
    ----------
    data, grouping, fraction, seed, rank, reg, n_iter, tol
        As in :func:`movielens_tasks` (use the same values as the final run).
    tuning_fraction : float, default 0.2
        Share of each task's training movies held out for tuning.
    tuning_seed : int, optional
        Seed of the tuning split; by default derived from `seed` (``[seed, 1]``).

    Returns
    -------
    MovieLensTasks
    """
    _check_grouping_and_fraction(grouping, fraction)
    _check_grouping_and_fraction(grouping, tuning_fraction, "tuning_fraction")
    task, labels = assign_tasks(data, grouping)
    validation = split_task_movies(task, data.item, fraction=fraction, seed=seed)
    tseed: SeedLike = [int(seed), 1] if tuning_seed is None else int(tuning_seed)
    tuning = split_task_movies(task, data.item, fraction=tuning_fraction, seed=tseed, eligible=~validation)
    meta = {
        "dataset": data.name,
        "source": data.source,
        "grouping": grouping,
        "heldout": "tuning",
        "fraction": float(fraction),
        "seed": int(seed),
        "tuning_fraction": float(tuning_fraction),
        "tuning_seed": repr(tseed),
        "n_ratings_validation_unused": int(validation.sum()),
    }
    kw = {"rank": rank, "reg": reg, "n_iter": n_iter, "tol": tol, "seed": seed}
    return _build(data, task, labels, ~validation & ~tuning, tuning, meta, kw)

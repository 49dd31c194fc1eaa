"""Data side of the MovieLens experiment (SPEC §8): find the folder, build the final and the tuning problems.

Used by :mod:`lorsa.experiments.movielens`; the protocol itself is :mod:`lorsa.datasets.movielens_tasks`.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.movielens import load_movielens
from ..datasets.movielens_tasks import MovieLensTasks, movielens_tasks, movielens_tuning_tasks

__all__ = ["resolve_data_dir", "load_problems", "add_intercept"]

_DATASETS = ("ml-100k", "ml-1m")
_MARKERS = {"ml-100k": "u.user", "ml-1m": "users.dat"}


def resolve_data_dir(data_dir: str | os.PathLike[str], dataset: str | None = None) -> tuple[Path, str]:
    """The folder holding one data set's GroupLens files, and which data set it is.

    Parameters
    ----------
    data_dir : path
        Either the data set's own folder (``u.user`` / ``users.dat`` inside) or a folder holding ``ml-100k/``
        and/or ``ml-1m/`` (such as ``shared/data/movielens``).
    dataset : {"ml-100k", "ml-1m"}, optional
        Which data set; by default the one whose files are in `data_dir`, else ``ml-100k/`` if present, else
        ``ml-1m/``.

    Returns
    -------
    folder : pathlib.Path
    dataset : str

    Raises
    ------
    FileNotFoundError
        Naming `data_dir` (or the data set's sub-folder) and what it must contain.
    ValueError
        If `dataset` is not one of the allowed names.
    """
    root = Path(data_dir)
    if dataset is not None and dataset not in _DATASETS:
        raise ValueError(f"dataset must be one of {_DATASETS}, got {dataset!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"data_dir {str(root)!r} does not exist or is not a folder; give the folder with the "
                                "MovieLens files (u.data, u.user, u.item or ratings.dat, users.dat, movies.dat) or one "
                                "holding ml-100k/ and ml-1m/")
    if dataset is None:
        for name, marker in _MARKERS.items():
            if (root / marker).is_file():
                return root, name
        for name in _DATASETS:
            if (root / name).is_dir():
                return root / name, name
        raise FileNotFoundError(f"data_dir {str(root)!r} holds no MovieLens data set: expected u.user (ml-100k), "
                                "users.dat (ml-1m) or a sub-folder ml-100k/ or ml-1m/")
    if (root / dataset).is_dir() and not (root / _MARKERS[dataset]).is_file():
        return root / dataset, dataset
    return root, dataset


def add_intercept(problem: MovieLensTasks) -> MovieLensTasks:
    """The same problem with a constant feature 1 appended to every movie vector (training and held-out)."""
    def aug(X: np.ndarray) -> np.ndarray:
        return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])
    return replace(problem, X_train=aug(problem.X_train), X_val=aug(problem.X_val))


def load_problems(config: Any) -> tuple[MovieLensTasks, MovieLensTasks, dict[str, Any]]:
    """Load the ratings and build the final problem (validation held out) and the tuning problem (a tuning split
    carved out of the training part, its own factorisation), with the data-set statistics for the report.

    Parameters
    ----------
    config : lorsa.experiments.movielens.MovieLensConfig

    Returns
    -------
    final, tuning : MovieLensTasks
        With a constant feature appended when ``config.intercept``.
    info : dict
        Data set, folder, ratings file, numbers of users / movies / ratings / tasks / samples, samples per task,
        factorisation RMSE and the seconds spent loading and building.
    """
    folder, name = resolve_data_dir(config.data_dir, config.dataset)
    tic = time.perf_counter()
    data = load_movielens(folder, name, ratings=config.ratings)
    load_seconds = time.perf_counter() - tic
    common = {"grouping": config.grouping, "fraction": config.fraction, "seed": config.seed,
              "rank": config.factor_rank}
    tic = time.perf_counter()
    final = movielens_tasks(data, **common)
    tuning = movielens_tuning_tasks(data, tuning_fraction=config.tuning_fraction, **common)
    build_seconds = time.perf_counter() - tic
    counts = final.train_counts
    info: dict[str, Any] = {
        "dataset": name, "folder": str(folder), "ratings_file": config.ratings or "default",
        "partial": bool(config.ratings and "partial" in str(config.ratings).lower()),
        "n_users_rated": int(np.unique(data.user).size), "n_movies_rated": int(np.unique(data.item).size),
        "n_ratings": int(data.n_ratings), "n_tasks": int(final.n_tasks),
        "n_train_samples": int(final.y_train.size), "n_val_samples": int(final.y_val.size),
        "n_tuning_train_samples": int(tuning.y_train.size), "n_tuning_samples": int(tuning.y_val.size),
        "train_samples_per_task": {"min": int(counts.min()), "median": float(np.median(counts)),
                                   "max": int(counts.max())},
        "n_val_samples_dropped": int(final.metadata["n_val_samples_dropped"]),
        "factorisation_train_rmse": float(final.metadata["factorisation_train_rmse"]),
        "load_seconds": load_seconds, "build_seconds": build_seconds,
    }
    if config.intercept:
        final, tuning = add_intercept(final), add_intercept(tuning)
    return final, tuning, info

"""``LRSRegressor.fit`` / ``adapt_tasks`` on dask collections: the glue between the estimator and the engine.

The estimator validates its parameters and builds its :class:`lorsa.solvers.amht.AMHTConfig` exactly as in memory;
the data are ingested on the workers (:mod:`.ingest`); :func:`lorsa.solvers.amht.run_amht` runs unchanged with the
:class:`.driver.DaskDriver`. The fitted estimator is an ordinary one (its ``U_``, ``W_``, ``B_`` are numpy/scipy
arrays: save, load and predict on numpy as usual); ``distributed_`` records how the fit ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ... import _validation as v
from ...solvers.amht import AMHTConfig, AMHTResult, run_amht
from ...solvers.init import top_eigenvectors
from ...solvers.shared_step import orthonormalize
from .driver import DaskDriver
from .ingest import ResidentData, as_frame, ingest

__all__ = ["current_client", "fit_dask", "adapt_tasks_dask", "run_resident"]


def current_client() -> Any:
    """The current ``distributed.Client`` (the dask-ml convention), or a clear error."""
    try:
        from distributed import get_client
    except ImportError as exc:  # pragma: no cover - dask is an extra
        raise ImportError("dask inputs need dask.distributed: pip install 'lorsa[distributed]'") from exc
    try:
        return get_client()
    except ValueError as exc:
        raise RuntimeError("fitting on dask collections needs a running dask.distributed Client, e.g. "
                           "Client(LocalCluster(n_workers=2, threads_per_worker=1)) or Client('tcp://scheduler:8786')"
                           ) from exc


def _n_features(X: Any) -> int:
    return int(X.shape[1]) if hasattr(X, "chunks") else len(X.columns)


def run_resident(client: Any, data: ResidentData, U0: np.ndarray, config: AMHTConfig, n_batches: int,
                 callback: Callable[[int, float, float], Any] | None) -> tuple[AMHTResult, dict[str, Any]]:
    """AMHT-LRS over resident blocks; returns the result and what the run did on the cluster."""
    driver = DaskDriver(client, data.partitions, data.holders, config,
                        sizes=[int(s.nbytes) for s in data.summaries])
    try:
        result = run_amht(driver, U0, config, n_batches, float(sum(s.half_sq for s in data.summaries)), callback,
                          n_tasks=int(sum(s.n_tasks for s in data.summaries)))
    finally:
        driver.close()
    info = {"n_partitions": len(data.partitions), "n_workers": len(set(data.holders)), "shuffled": data.shuffled,
            "recovered_partitions": driver.recovered, "lost_workers": list(driver.lost_workers),
            "requests": driver.requests, "bytes_sent": driver.bytes_sent, "bytes_received": driver.bytes_received,
            "partition_bytes": [int(s.nbytes) for s in data.summaries], "holders": list(driver.holders)}
    return result, info


def fit_dask(est: Any, X: Any, y: Any, tasks: Any, callback: Callable[[int, float, float], Any] | None,
             sample_weight: Any = None,
             config_hook: Callable[[AMHTConfig, ResidentData], AMHTConfig] | None = None) -> Any:
    """:meth:`lorsa.LRSRegressor.fit` on dask collections (see the module docstring). Not done here, unlike in
    memory: the exact power-of-two rescaling of data at extreme scales (outside [2^-20, 2^20])."""
    from ...model import _check_sample_split, _print_progress, choose_u_solver

    client = current_client()
    frame, features = as_frame(X, y, tasks, sample_weight)
    d = len(features)
    config, dtype = est._check_params(d)
    r, k = config.rank, config.sparsity
    rng = v.check_random_state(est.random_state)
    moments = isinstance(est.init, str) and est.init == "moments"
    if moments and d > 1024:
        raise NotImplementedError(f"init='moments' on dask collections is implemented for n_features <= 1024, "
                                  f"got {d}; use init='random' or pass an orthonormal array")
    U0 = None if moments else est._initial_basis(np.zeros((0, d)), np.zeros(0), r, rng)
    split = est.sample_split or 1
    seed = int(rng.integers(0, 2**63)) if split > 1 else None
    data = ingest(client, frame, features, str(np.dtype(dtype)), est._layout(), split, seed, moments)
    est._warn_small_tasks(data.counts, data.labels, r, k)
    _check_sample_split(est.sample_split, data.counts, data.labels, r, k)
    if est.u_solver == "auto":
        config = replace(config, u_solver=choose_u_solver(d, r, data.labels.shape[0], data.n_samples,
                                                          float(np.median(data.counts))))
    if config_hook is not None:
        config = config_hook(config, data)
    if moments:
        M = np.zeros((d, d))
        for s in data.summaries:
            M += s.moments
        U0, _ = orthonormalize(top_eigenvectors(M / max(data.n_samples, 1), r))
    callback = callback or (_print_progress if est.verbose else None)
    result, info = run_resident(client, data, U0, config, split, callback)
    est._set_fitted(result, data.labels, d, config)
    if not hasattr(X, "chunks"):
        est.feature_names_in_ = np.asarray(features, dtype=object)
    elif hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
    est.distributed_ = info
    return est


def adapt_tasks_dask(est: Any, X: Any, y: Any, tasks: Any, max_iter: int) -> tuple[np.ndarray, np.ndarray, Any]:
    """:meth:`lorsa.LRSRegressor.adapt_tasks` on dask collections: new tasks fitted on the workers, ``U`` fixed."""
    from ...model import _slots_to_csc

    est._check_fitted()
    d = _n_features(X)
    if d != est.n_features_in_:
        raise ValueError(f"X has {d} features, but the model was fitted with {est.n_features_in_}")
    max_iter = v.check_int("max_iter", max_iter, 1)
    client = current_client()
    frame, features = as_frame(X, y, tasks)
    config, dtype = est._adapt_config(max_iter)
    data = ingest(client, frame, features, str(np.dtype(dtype)), est._layout(), 1, None, False)
    est._warn_small_tasks(data.counts, data.labels, est.U_.shape[1], config.sparsity)
    result, _ = run_resident(client, data, est.U_, config, 1, None)
    return data.labels, result.W, _slots_to_csc(result.idx, result.val, d)

"""The distributed engine: fit, predict and adapt on a dask.distributed cluster where the data live (issue 10).

Pass dask collections to :class:`lorsa.LRSRegressor` (the dask-ml convention; the current ``Client`` is used)::

    est = LRSRegressor(rank=3, sparsity=2).fit(ddf[features], ddf["y"], tasks=ddf["task"])
    est.predict(ddf2[features], tasks=ddf2["task"])            # a lazy dask Series aligned with ddf2
    est.adapt_tasks(ddf3[features], ddf3["y"], ddf3["task"])   # new tasks adapted on the workers

One job per file: :mod:`.ingest` (labels and counts, dask's shuffle, blocks built and persisted on the workers),
:mod:`.partition` (a partition's blocks, built on its worker), :mod:`.state` (the per-task state resident next to
its blocks and the per-partition work, the in-memory engine's own per-block functions), :mod:`.driver` (the
iteration driver: pinned tasks, a fixed-order tree reduction, recovery from lost workers), :mod:`.estimator` and
:mod:`.predict` (the glue behind the estimator's methods). dask is imported only when dask inputs are used.
"""

__all__ = ["is_dask_collection", "any_dask"]


def is_dask_collection(obj: object) -> bool:
    """True for dask collections (arrays, DataFrames, Series), without importing dask."""
    return callable(getattr(obj, "__dask_graph__", None))


def any_dask(*objs: object) -> bool:
    """True when any argument is a dask collection (the estimator then runs on the cluster)."""
    return any(is_dask_collection(o) for o in objs)

"""The iteration driver of the dask engine: a :class:`lorsa.solvers.amht.Driver` whose state lives on workers.

Every request (a pass, a CG product, ...) submits one task per worker, pinned to it (``workers=[holder],
allow_other_workers=False``: no work stealing, so the per-task state stays next to its blocks), which runs over
the partitions that worker holds, in partition order, and returns their partial results as a list; the driver
sums them in partition order, so the same data and seed give identical bits run after run, whichever worker holds
which partition. Large partials (the exact U step's ``A``, ``(dr)^2`` numbers, above 1 MiB) are instead computed
one task per partition and summed in a fixed tree (groups of 8 consecutive partitions summed in order on the
workers, the last level here). A request costs one scheduler round trip per worker, not per partition
(measured: 16 partitions on 2 workers, ~50 ms per request per-partition at t = 10^5). ``U`` (d x r
numbers) goes out with each partition's task; a CG step costs one such round trip per CG iteration. The U solve
itself runs here, on the driver, in :func:`lorsa.solvers.amht.run_amht` unchanged.

Faults. While waiting, the driver checks that the workers its tasks are pinned to are alive. When one is gone its
partitions are given to the live workers with the fewest partitions and the request is submitted again: dask
recomputes the lost blocks from their source partitions (the futures' lineage: read, shuffle, build), and the
partition's per-task state, found missing, is re-fitted from the current ``U`` (:mod:`.state`). A task that keeps
killing workers (e.g. out of memory) surfaces as a clear error instead of a hang.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from ...solvers.amht import AMHTConfig, with_loss_reference
from ...solvers.row_sparsity import merge_row_candidates, row_sparsity_cutoff
from . import state as worker_state

__all__ = ["DaskDriver", "tree_reduce", "WorkerLost"]


class WorkerLost(RuntimeError):
    """A worker holding partitions left the cluster while a request was running."""


def sum_in_order(combine: Callable[[Any, Any], Any], *parts: Any) -> Any:
    """``combine`` folded left to right over ``parts`` (a fixed order, hence fixed bits)."""
    out = parts[0]
    for part in parts[1:]:
        out = combine(out, part)
    return out


def tree_reduce(client: Any, futures: list, combine: Callable[[Any, Any], Any], fan_in: int = 8) -> list:
    """Reduce ``futures`` on the workers in a fixed tree (groups of ``fan_in`` consecutive partitions, summed in
    order) until at most ``fan_in`` remain; the caller gathers those and folds them in order
    (:func:`sum_in_order`) — the last level of the tree, on the driver."""
    level = list(futures)
    while len(level) > fan_in:
        level = [client.submit(sum_in_order, combine, *level[i:i + fan_in], pure=False)
                 for i in range(0, len(level), fan_in)]
    return level


def _over_partitions(fn: Callable[..., Any], parts: list, args: tuple) -> list:
    """``[fn(part, *args) for part in parts]`` on one worker (its partitions, in partition order)."""
    return [fn(part, *args) for part in parts]


def _in_partition_order(per_worker: list[list], groups: list[tuple[str, list[int]]]) -> list:
    out: list = [None] * sum(len(parts) for _, parts in groups)
    for results, (_, parts) in zip(per_worker, groups, strict=True):
        for p, r in zip(parts, results, strict=True):
            out[p] = r
    return out


def _alive(client: Any) -> set[str]:
    return set(client.scheduler_info(n_workers=-1)["workers"])


class DaskDriver:
    """Passes over resident partitions (see the module docstring).

    Parameters
    ----------
    client : distributed.Client
    partitions : list of Future
        One :class:`lorsa.backends.dask.partition.PartitionData` per partition, persisted.
    holders : list of str
        Worker address holding each partition.
    config : AMHTConfig
    poll : float
        Seconds between liveness checks while waiting.
    sizes : list of int, optional
        Bytes of each partition's blocks (a lost worker's partitions go to the least-loaded survivors by bytes;
        without them, by count).
    """

    def __init__(self, client: Any, partitions: list, holders: list[str], config: AMHTConfig,
                 poll: float = 0.5, max_recoveries: int = 10, sizes: list[int] | None = None) -> None:
        self.client = client
        self.partitions = partitions
        self.holders = list(holders)
        self.sizes = [1] * len(partitions) if sizes is None else [int(s) for s in sizes]
        # partials up to this size come back as one list per worker (one task per worker per request); larger
        # ones are tree-summed on the workers, one task per partition
        self.per_worker_bytes = 2**20
        self.config = config
        # the workers get the settings without the release hook (noise is added here, on the driver, only)
        self.worker_config = replace(config, release=None)
        self.poll = poll
        self.max_recoveries = max_recoveries
        self.fit_id = uuid.uuid4().hex
        self.version = -1
        self.rotation: np.ndarray | None = None
        self.U_last: np.ndarray | None = None
        self.recovered = 0
        self.lost_workers: list[str] = []
        self.requests = 0
        self.bytes_sent = 0       # arrays in the requests' arguments (U, CG direction, R) per task: driver -> workers
        self.bytes_received = 0   # reduced results gathered, workers -> driver

    # ------------------------------------------------------------------ plumbing
    def _request(self, fn: Callable[..., Any], args: tuple, combine: Callable[..., Any] | None,
                 partial_bytes: int = 0) -> Any:
        """Run ``fn(partition, *args)`` on every partition where it lives and reduce (or gather, without
        ``combine``); re-submitted after a lost worker."""
        from dask.sizeof import sizeof
        from distributed import wait

        arg_bytes = sum(a.nbytes for a in args if isinstance(a, np.ndarray))
        for _attempt in range(self.max_recoveries + 1):
            self.requests += 1
            if combine is None or partial_bytes <= self.per_worker_bytes:
                futures, top = self._submit_per_worker(fn, args)
                self.bytes_sent += arg_bytes * len(futures)
                grouped = True
            else:
                # large partials (A, (dr)^2 numbers): one task per partition, summed in groups of 8 consecutive
                # partitions on the workers first, the last level here
                self.bytes_sent += arg_bytes * len(self.partitions)
                futures = [self.client.submit(fn, part, *args, workers=[holder], allow_other_workers=False,
                                              pure=False)
                           for part, holder in zip(self.partitions, self.holders, strict=True)]
                top = tree_reduce(self.client, futures, combine, 8)
                grouped = False
            try:
                while True:
                    try:
                        wait(top, timeout=self.poll)
                        break
                    except TimeoutError:
                        alive = _alive(self.client)
                        dead = sorted(set(self.holders) - alive)
                        if dead:
                            raise WorkerLost(", ".join(dead)) from None
                results = self.client.gather(top)
                self.bytes_received += int(sizeof(results))
                if grouped:   # per-worker lists back in partition order
                    results = _in_partition_order(results, self._groups())
                return sum_in_order(combine, *results) if combine else results
            except WorkerLost as lost:
                self.client.cancel(futures + top, force=True)
                self._reassign(str(lost))
            except Exception as exc:
                if type(exc).__name__ == "KilledWorker":
                    raise MemoryError(
                        f"a lorsa task on the dask cluster kept killing its worker ({exc}); the most common cause is "
                        "a worker that cannot hold its partitions' blocks: add workers or memory, or use "
                        "dtype='float32'") from exc
                dead = sorted(set(self.holders) - _alive(self.client))
                if not dead:
                    raise
                self.client.cancel(futures + top, force=True)
                self._reassign(", ".join(dead))
        raise RuntimeError(f"the dask cluster lost workers {self.max_recoveries + 1} times during one request; "
                           f"lost so far: {self.lost_workers}")

    def _groups(self) -> list[tuple[str, list[int]]]:
        """The partitions of each holder, in partition order (holders in address order)."""
        groups: dict[str, list[int]] = {}
        for p, h in enumerate(self.holders):
            groups.setdefault(h, []).append(p)
        return sorted(groups.items())

    def _submit_per_worker(self, fn: Callable[..., Any], args: tuple) -> tuple[list, list]:
        """One task per worker running ``fn`` over all its partitions in partition order, returning the list of
        per-partition results (summed here in partition order: the same bits as one task per partition)."""
        futures = [self.client.submit(_over_partitions, fn, [self.partitions[p] for p in parts], args,
                                      workers=[holder], allow_other_workers=False, pure=False)
                   for holder, parts in self._groups()]
        return futures, futures

    def _reassign(self, lost: str) -> None:
        """Give the partitions of departed workers (largest first) to the live workers holding the fewest bytes;
        the partitions of live workers stay where they are."""
        alive = sorted(_alive(self.client))
        if not alive:
            raise RuntimeError(f"every dask worker left the cluster during the fit (last lost: {lost})")
        self.lost_workers.append(lost)
        load = {w: 0 for w in alive}
        for h, size in zip(self.holders, self.sizes, strict=True):
            if h in load:
                load[h] += size
        orphans = sorted((p for p, h in enumerate(self.holders) if h not in load), key=lambda p: (-self.sizes[p], p))
        for p in orphans:
            new = min(alive, key=lambda w: (load[w], w))
            load[new] += self.sizes[p]
            self.holders[p] = new

    # ------------------------------------------------------------------ Driver protocol
    def run_pass(self, key: int, U: np.ndarray, run_task_step: bool, stats: Any, loss_reference: float = np.inf
                 ) -> tuple[float, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        rotation = self.rotation if run_task_step else None
        # U (d x r) travels inside each partition's task: a scatter would wait for a worker that just died
        args = (self.fit_id, self.version, np.asarray(U), rotation, key, run_task_step, stats,
                with_loss_reference(self.worker_config, loss_reference))
        d_r = U.shape[0] * U.shape[1]
        big = stats is not None and stats != "cg"
        out = self._request(worker_state.partition_pass, args, worker_state.add_outputs, 8 * d_r * d_r if big else 0)
        if run_task_step:
            self.version += 1
            self.rotation = None
            self.U_last = np.array(U)
        self.recovered += out.recovered
        return out.loss, out.A, out.V, out.diag

    def cg_matvec(self, key: int) -> Callable[[np.ndarray], np.ndarray]:
        def matvec(D: np.ndarray) -> np.ndarray:
            return self._request(worker_state.partition_matvec,
                                 (self.fit_id, self.version, key, D, self.worker_config, self.U_last),
                                 worker_state.add_outputs)
        return matvec

    def rotate(self, R: np.ndarray) -> None:
        self.rotation = R if self.rotation is None else R @ self.rotation

    def project_row_sparsity(self, zeta: int) -> None:
        cands = self._request(worker_state.partition_row_candidates,
                              (self.fit_id, self.version, zeta, self.worker_config, self.U_last),
                              partial(merge_row_candidates, zeta=zeta))
        cutoff = row_sparsity_cutoff(cands, zeta)
        self._request(worker_state.partition_apply_row_cutoff,
                      (self.fit_id, self.version, cutoff, self.worker_config, self.U_last), None)

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = self._request(worker_state.partition_state,
                              (self.fit_id, self.version, self.worker_config, self.U_last), None)
        t = int(sum(p[0].shape[0] for p in parts))
        W = np.zeros((t, self.config.rank))
        idx = np.zeros((t, self.config.sparsity), dtype=np.int64)
        val = np.zeros((t, self.config.sparsity))
        for ids, w, i, x in parts:
            W[ids], idx[ids], val[ids] = w, i, x
        return W, idx, val

    def close(self) -> None:
        """Free the per-task state on every worker."""
        try:
            self.client.run(worker_state.drop_fit, self.fit_id)
        except Exception:  # pragma: no cover - a cluster shutting down
            pass

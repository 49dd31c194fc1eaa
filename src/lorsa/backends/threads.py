"""A thread-pool backend: the blocks of a pass run concurrently on the cores of one machine.

numpy releases the GIL inside BLAS calls and most array loops, so blocks of tasks proceed in parallel. BLAS itself
is limited to one thread while the pool works (with ``threadpoolctl`` when it is installed, as it is with the
``experiments`` extra; otherwise set ``OMP_NUM_THREADS=1``), else workers times BLAS threads oversubscribe the
cores. Results come back in block order, so the reduction (a sum in block order) and hence the fit are identical
to :class:`SerialBackend`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["ThreadBackend"]


def _single_threaded_blas() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class ThreadBackend:
    """Map a function over blocks with ``n_workers`` threads."""

    name = "threads"

    def __init__(self, n_workers: int = 2) -> None:
        self.n_workers = n_workers
        self._pool: ThreadPoolExecutor | None = None

    def map(self, fn: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.n_workers, thread_name_prefix="lorsa")
        with _single_threaded_blas():
            return list(self._pool.map(lambda item: fn(*item), items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

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


_CONTROLLER: list[Any] = []  # one threadpoolctl controller per process: finding the BLAS libraries costs ~5 ms


def _single_threaded_blas() -> Any:
    """BLAS limited to one thread for the duration of a map (the library scan is done once per process, not per
    call: measured on ML-100K, 515 maps of a tuned fit spent 2.4 s of its 4.7 s in the scan)."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    controller = _CONTROLLER[0]
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


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

"""Where the per-block work of an iteration runs.

A backend has one method, ``map(fn, items) -> list``: the AMHT-LRS driver maps a pure per-block function over
the blocks and reduces the small results itself. :class:`SerialBackend` runs in this process,
:class:`ThreadBackend` on a pool of threads (``LRSRegressor(n_jobs=...)``).
"""

from .serial import SerialBackend
from .threads import ThreadBackend

__all__ = ["SerialBackend", "ThreadBackend", "make_backend"]


def make_backend(n_jobs: int) -> SerialBackend | ThreadBackend:
    """The backend for ``n_jobs`` workers (1: serial)."""
    return SerialBackend() if n_jobs == 1 else ThreadBackend(n_jobs)

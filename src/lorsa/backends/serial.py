"""The in-process backend: runs the per-block work of an iteration one block after another with numpy."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["SerialBackend"]


class SerialBackend:
    """Map a function over blocks in this process.

    The AMHT-LRS driver only ever asks a backend to ``map`` a pure function over the blocks of a
    :class:`lorsa.data.RaggedTasks` and then reduces the small results itself, so another backend (processes,
    a cluster) can run the same blocks without touching the mathematics.
    """

    name = "serial"

    def map(self, fn: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
        """``[fn(*item) for item in items]``."""
        return [fn(*item) for item in items]

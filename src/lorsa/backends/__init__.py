"""Where the per-block work of an iteration runs: :class:`SerialBackend` (this process, numpy)."""

from .serial import SerialBackend

__all__ = ["SerialBackend"]

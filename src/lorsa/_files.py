"""Safe output files: one atomic write per output, never over an input, never over a read-only file.

Every file lorsa writes (model files, prediction tables) goes through :func:`atomic_output`: the content is written
to a temporary file in the target's folder, flushed to disk, then renamed over the target in one step, so a reader
sees either the old file or the complete new one — never a truncated file, even when the writer is interrupted
(Ctrl-C, ``SIGTERM`` through the command line's handler, a full disk, an exception). The temporary file is removed
on every failure. The new file gets the permissions an ordinary ``open(path, "w")`` would give it (``0o666`` less
the umask), or keeps those of the file it replaces; a file the user cannot write to is refused, not replaced.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["atomic_output", "check_not_an_input", "check_writable_target"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def check_writable_target(path: str | os.PathLike, what: str = "output file") -> Path:
    """Refuse a target that is a folder, lies in a missing folder, or is an existing file the user may not write.

    Raises
    ------
    IsADirectoryError, FileNotFoundError, PermissionError
        Naming the file.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write the {what} {str(path)!r}: it is a folder, give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write the {what} {str(path)!r}: folder {str(parent)!r} does not exist")
    if path.exists() and (not os.access(path, os.W_OK)
                          or not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)):
        raise PermissionError(f"the {what} {str(path)!r} exists and is read-only; refusing to replace it (make it "
                              f"writable or choose another name)")
    if path.exists() and not path.is_file():
        raise PermissionError(f"the {what} {str(path)!r} exists and is not a regular file; refusing to replace it")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, what: str = "output file") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it is synced and renamed to ``path``.

    The temporary name keeps ``path``'s suffix (``.name.XXXX.tmp.csv``) so writers that choose a format by suffix
    work. On any exception (``KeyboardInterrupt`` and ``SystemExit`` included) the temporary file is removed and
    ``path`` is left as it was.
    """
    path = check_writable_target(path, what)
    mode = _new_mode(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        os.close(fd)
        fd = -1
        yield tmp
        sync = os.open(tmp, os.O_RDONLY)  # the writer closed its own handle: sync through a new one
        try:
            os.fsync(sync)
        finally:
            os.close(sync)
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_not_an_input(output: str | os.PathLike, inputs: Iterable[tuple[str, str | os.PathLike]],
                       option: str = "--output") -> None:
    """Refuse an output file that is one of the inputs (same file, by resolved path or inode).

    ``inputs`` are ``(role, path)`` pairs, e.g. ``[("data file", "rows.csv")]``.

    Raises
    ------
    ValueError
        Naming the option, the file and the input it would overwrite.
    """
    out = Path(output)
    for role, source in inputs:
        if _same_file(out, Path(source)):
            raise ValueError(f"{option} {str(output)!r} is the {role} {str(source)!r}; writing it would destroy the "
                             f"input: choose another output file")

"""Options and error handling shared by the ``lorsa`` sub-commands (argparse only: no heavy imports here)."""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["HelpFormatter", "add_seed", "add_quiet", "cli_errors", "positive_int", "nonnegative_int",
           "nonnegative_float", "fraction", "say"]


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: ...)`` to an option's help unless the help already speaks of its default or the default
    is empty (None, False, [])."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        empty = action.default is None or action.default is False or action.default == [] \
            or action.default == argparse.SUPPRESS
        if not action.option_strings or "default" in text or empty:
            return text
        return text + " (default: %(default)s)"


def add_seed(parser: argparse.ArgumentParser, what: str) -> None:
    """``--seed N`` (every command takes one)."""
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="N", help=f"random seed: {what}")


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bars and no messages except errors and requested results."""
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="do not show progress bars or informational messages (errors are still shown)")


def say(args: argparse.Namespace, *parts: object) -> None:
    """Print an informational message unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(*parts, flush=True)


class Terminated(BaseException):
    """Raised in the main thread by ``SIGTERM`` while a command runs, so that ``finally`` blocks (removal of a
    half-written temporary file) run exactly as on Ctrl-C."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cli_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the expected failures of a command (bad data, bad option values, unreadable or unwritable files, out of
    memory, too deep or too large values) into one line on stderr, ``lorsa <command>: error: <message>``, and exit
    status 2, instead of a traceback; Ctrl-C and ``SIGTERM`` print one line too (exit status 130 / 143) after the
    temporary file of an output being written has been removed."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        name = " ".join(str(p) for p in (getattr(args, "command", None), getattr(args, "target", None)) if p)
        try:
            with _sigterm_raises():
                return run(args)
        except KeyboardInterrupt:
            print(f"lorsa {name}: interrupted (Ctrl-C); an output file being written was discarded",
                  file=sys.stderr, flush=True)
            return 130
        except Terminated:
            print(f"lorsa {name}: terminated (SIGTERM); an output file being written was discarded",
                  file=sys.stderr, flush=True)
            return 143
        except MemoryError as exc:
            print(f"lorsa {name}: error: out of memory ({_one_line(exc)})", file=sys.stderr, flush=True)
            return 2
        except RecursionError as exc:
            print(f"lorsa {name}: error: input nested too deeply ({exc})", file=sys.stderr, flush=True)
            return 2
        except (ValueError, TypeError, OSError, OverflowError, ImportError) as exc:
            print(f"lorsa {name}: error: {_one_line(exc)}", file=sys.stderr, flush=True)
            return 2

    return wrapper


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError
                                                   | NotADirectoryError) and exc.strerror:
        where = f" {exc.filename!r}" if exc.filename else ""
        text = f"cannot read or write{where}: {exc.strerror}"
    return text


def _number(kind: type, low: float | None, text: str, what: str, low_inclusive: bool = True) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return int(_number(int, 1, text, "an integer >= 1"))


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return int(_number(int, 0, text, "an integer >= 0"))


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = float(_number(float, 0.0, text, "a number >= 0"))
    if value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number in (0, 1)."""
    value = float(_number(float, 0.0, text, "a number in (0, 1)", low_inclusive=False))
    if not value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value

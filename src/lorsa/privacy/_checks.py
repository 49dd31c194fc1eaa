"""Argument checks for :mod:`lorsa.privacy` (self-contained, no optional dependency).

Every message names the argument, the allowed range and the value received (same convention as the rest of
lorsa), so a bad privacy parameter is reported at the boundary and never turns into a silently wrong ε.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["check_positive_int", "check_real", "check_choice"]


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an ``int >= 1``; booleans and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer >= 1, got {_describe(value)} of type {type(value).__name__}"
        )
    if int(value) < 1:
        raise ValueError(f"{name} must be an integer in [1, inf), got {int(value)}")
    return int(value)


def check_real(name: str, value: Any, low: float, high: float = math.inf, low_inclusive: bool = False,
               high_inclusive: bool = False, allow_inf: bool = False) -> float:
    """Return ``value`` as a float in the interval given by ``low``/``high`` and the inclusivity flags.

    NaN is always refused; ``+inf`` only when ``allow_inf`` (in which case the upper end is ``inf]``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kind = type(value).__name__
        raise TypeError(f"{name} must be a real number, got {_describe(value)} of type {kind}")
    x = float(value)
    left = "[" if low_inclusive else "("
    if allow_inf:
        right, hi_text = "]", "inf"
    else:
        right = "]" if high_inclusive else ")"
        hi_text = "inf" if math.isinf(high) else f"{high:g}"
    interval = f"{left}{low:g}, {hi_text}{right}"
    bad = (
        math.isnan(x)
        or (math.isinf(x) and not (allow_inf and x > 0))
        or (x < low if low_inclusive else x <= low)
        or (not math.isinf(x) and (x > high if high_inclusive else x >= high))
    )
    if bad:
        raise ValueError(f"{name} must be in {interval}, got {x!r}")
    return x


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Check that ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {_describe(value)}")
    return value

"""Extreme data scales handled exactly: ``X`` and ``y`` multiplied by powers of two during the fit, undone after.

AMHT-LRS forms products such as ``X_i^T X_i`` and ``||y_i||^2``. With features around ``1e155`` these overflow to
inf (numpy then stops with "Array must not contain infs or NaNs"); around ``1e-200`` they underflow to zero, the
first iteration sees no change, reports convergence and every prediction is 0. The model is linear, so with
``X' = a X`` and ``y' = c y`` the fit on ``(X', y')`` with ridge ``lambda a^2`` is the fit on ``(X, y)`` with
``theta' = (c / a) theta`` and an objective ``c^2`` times larger (SPEC §2's objective: squared loss plus
``(lambda / 2)(||w_i||^2 + ||b_i||^2)``). Choosing ``a`` and ``c`` as powers of two makes both scalings exact in
floating point (only exponents change). They are used only when the largest ``|x|`` or ``|y|`` lies outside
``[2^-L, 2^L]`` (``L`` = 20 in float64, about 1e6; 10 in float32, about 1e3), so data of ordinary scale is fitted
bit for bit as before. The window is narrow on purpose: a fit on data scaled by ``2^-40`` was measured to differ
from the unscaled fit by about 1 % (some of the solvers' cut-offs are not scale-free), while scalings by ``2^-10``
to ``2^10`` gave bitwise the same fit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["DataScale", "data_scale"]

_LIMIT = {np.dtype(np.float64): 20, np.dtype(np.float32): 10}


def _exponent(array: np.ndarray, limit: int) -> int:
    """``e`` with ``2^-e max|array|`` in ``[0.5, 1)`` when the largest magnitude is outside ``[2^-limit, 2^limit]``,
    else 0 (also for an all-zero array). Two passes (max, min), no temporary as large as the array."""
    if array.size == 0:
        return 0
    top = max(abs(float(array.max())), abs(float(array.min())))
    if top == 0.0 or not math.isfinite(top):
        return 0
    exponent = math.frexp(top)[1]
    return exponent if abs(exponent) > limit else 0


@dataclasses.dataclass(frozen=True)
class DataScale:
    """``X' = 2^-x_exp X`` and ``y' = 2^-y_exp y`` (both exponents 0 for data of ordinary scale)."""

    x_exp: int = 0
    y_exp: int = 0

    @property
    def identity(self) -> bool:
        return self.x_exp == 0 and self.y_exp == 0

    def apply(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scaled data (the arrays themselves, no copy, when nothing is scaled)."""
        if self.x_exp:
            X = np.ldexp(X, -self.x_exp).astype(X.dtype, copy=False)
        if self.y_exp:
            y = np.ldexp(y, -self.y_exp).astype(y.dtype, copy=False)
        return X, y

    def ridge(self, ridge: float) -> float:
        """The ridge penalty of the scaled problem: ``lambda a^2`` with ``a = 2^-x_exp``."""
        return math.ldexp(ridge, -2 * self.x_exp)

    def objective(self, value: float) -> float:
        """An objective value of the scaled problem, in the units of the original data."""
        return math.ldexp(value, 2 * self.y_exp)

    def callback(self, callback: Callable[[int, float, float], Any] | None
                 ) -> Callable[[int, float, float], Any] | None:
        """``callback`` seeing objectives in the original units."""
        if callback is None or self.identity:
            return callback
        return lambda iteration, objective, change: callback(iteration, self.objective(objective), change)

    def undo(self, result: Any) -> Any:
        """An :class:`lorsa.solvers.amht.AMHTResult` of the scaled problem in the original units
        (``w_i, b_i`` times ``a / c``; objectives over ``c^2``; ``U`` unchanged)."""
        if self.identity:
            return result
        shift = self.x_exp - self.y_exp  # theta = theta' * 2^(y_exp - x_exp)
        return dataclasses.replace(
            result, W=np.ldexp(result.W, -shift), val=np.ldexp(result.val, -shift),
            loss_history=np.ldexp(np.asarray(result.loss_history, dtype=np.float64), 2 * self.y_exp),
            initial_loss=self.objective(float(result.initial_loss)))


def data_scale(X: np.ndarray, y: np.ndarray) -> DataScale:
    """The powers of two that bring the largest ``|x|`` and ``|y|`` near 1, when they are extreme (see module)."""
    limit = _LIMIT.get(X.dtype, 20)
    return DataScale(x_exp=_exponent(X, limit), y_exp=_exponent(y, limit))

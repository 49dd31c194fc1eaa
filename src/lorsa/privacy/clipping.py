"""Clipping and sensitivities for private AMHT-LRS (SPEC §6, paper Section 2.2).

The paper clips with ``clip(v, ρ) = v · min(1, ρ/‖v‖)``: a vector (or matrix, in Frobenius norm) inside the
ball of radius ρ is unchanged, one outside is scaled back onto the sphere along its own direction, and the
zero vector stays zero. Private AMHT-LRS clips ``x̃ = clip(x, A₁)``, ``ỹ = clip(y, A₂)``,
``clip(x̃ᵀb_i, A₃)`` and ``w̃_i = clip(w_i, A_w)`` before aggregating; then one user (task) with at most ``m``
rows changes ``S_A = Σ_i (w̃_i w̃_iᵀ) ⊗ Σ_j x̃_ij x̃_ijᵀ`` by at most ``Δ_A = m·A₁²·A_w²`` and
``S_V = Σ_i Σ_j x̃_ij (ỹ_ij − clip(x̃_ijᵀ b_i, A₃)) w̃_iᵀ`` by at most
``Δ_V = m·A₁·(A₂ + A₃)·A_w`` in Frobenius norm. With unequal ``m`` either cap the rows a user contributes or
clip each user's whole contribution to a fixed Frobenius norm with :func:`clip_frobenius`.

All functions are vectorised, return new arrays (inputs are never modified), keep floating dtypes (integers
become float64), refuse NaN/inf entries, and compute norms with a max-abs rescaling so that very large or
very small entries neither overflow nor underflow. A bound of ``inf`` means "no clipping" (a plain copy).
The clipped norm is at most the bound up to floating-point rounding (a few ulps).
"""

from __future__ import annotations

import numpy as np

from lorsa.privacy._checks import check_positive_int, check_real

__all__ = ["clip_frobenius", "clip_rows", "clip_scalars", "sensitivities"]


def _as_float_array(name: str, value: object, min_ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    kind = arr.dtype.kind
    if kind not in "fiub":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if kind != "f":
        arr = arr.astype(np.float64)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")
    return arr


def _check_bound(bound: object) -> float:
    return check_real("bound", bound, 0.0, allow_inf=True)


def _norms(arr: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """ℓ₂ norms over ``axes`` (kept as size-1 axes), rescaled by the max-abs entry to avoid over/underflow."""
    amax = np.max(np.abs(arr), axis=axes, keepdims=True)
    safe = np.where(amax > 0, amax, 1.0)
    return amax * np.sqrt(np.sum(np.square(arr / safe), axis=axes, keepdims=True))


def _clip_over(arr: np.ndarray, bound: float, axes: tuple[int, ...]) -> np.ndarray:
    if np.isinf(bound) or arr.size == 0:
        return arr.copy()
    norms = _norms(arr, axes)
    # v·min(1, ρ/‖v‖) written as v·ρ/max(‖v‖, ρ): exactly 1 inside the ball (so v is returned unchanged) and
    # never 0/0 (the zero vector stays zero).
    scale = bound / np.maximum(norms, bound)
    return (arr * scale).astype(arr.dtype, copy=False)


def clip_rows(X: np.ndarray, bound: float) -> np.ndarray:
    """Clip each row of ``X`` to ℓ₂ norm at most ``bound``: ``clip(x, A₁)`` of SPEC §6.

    Parameters
    ----------
    X : array_like, shape (..., d)
        Vectors along the last axis (e.g. the feature rows ``x_ij``, or the stacked ``w_i`` with
        ``bound = A_w``). A 1-D input is a single vector.
    bound : float
        Radius ρ > 0 (``A₁`` for features, ``A_w`` for ``w_i``); ``inf`` disables clipping.

    Returns
    -------
    numpy.ndarray
        Same shape; row ``v`` becomes ``v·min(1, ρ/‖v‖)``.
    """
    bound = _check_bound(bound)
    arr = _as_float_array("X", X, 1)
    return _clip_over(arr, bound, (arr.ndim - 1,))


def clip_scalars(v: np.ndarray, bound: float) -> np.ndarray:
    """Clip scalars to ``[-bound, bound]``: ``clip(y, A₂)`` and ``clip(x̃ᵀb_i, A₃)`` of SPEC §6.

    For a scalar, ``v·min(1, ρ/|v|)`` is ``sign(v)·min(|v|, ρ)``.

    Parameters
    ----------
    v : array_like
        Any shape (a Python scalar gives a 0-d array).
    bound : float
        ρ > 0 (``A₂`` for responses, ``A₃`` for ``x̃ᵀb_i``); ``inf`` disables clipping.
    """
    bound = _check_bound(bound)
    arr = _as_float_array("v", v, 0)
    if np.isinf(bound):
        return arr.copy()
    return np.clip(arr, -bound, bound)


def clip_frobenius(M: np.ndarray, bound: float) -> np.ndarray:
    """Clip each matrix of a stack to Frobenius norm at most ``bound`` (the paper's clip for matrices).

    Use it to bound a user's whole contribution to ``S_A`` or ``S_V`` when users have different numbers of
    rows (SPEC §6): clipping user i's contribution to ``Δ_A`` (resp. ``Δ_V``) makes that the sensitivity.

    Parameters
    ----------
    M : array_like, shape (..., p, q)
        One matrix (2-D) or a stack indexed by the leading axes; each ``M[k]`` is clipped separately.
    bound : float
        ρ > 0; ``inf`` disables clipping.

    Returns
    -------
    numpy.ndarray
        Same shape; ``M[k]`` becomes ``M[k]·min(1, ρ/‖M[k]‖_F)``.
    """
    bound = _check_bound(bound)
    arr = _as_float_array("M", M, 2)
    return _clip_over(arr, bound, (arr.ndim - 2, arr.ndim - 1))


def sensitivities(A1: float, A2: float, A3: float, Aw: float, m: int) -> tuple[float, float]:
    """Frobenius sensitivities of the clipped statistics to one user's (task's) data (SPEC §6).

    Parameters
    ----------
    A1 : float
        ℓ₂ clipping bound of the features ``x``, > 0.
    A2 : float
        Clipping bound of the responses ``y``, > 0.
    A3 : float
        Clipping bound of the sparse-part predictions ``x̃ᵀb_i``, >= 0 (``0`` with no sparse part, ``k = 0``).
    Aw : float
        ℓ₂ clipping bound of ``w_i``, > 0.
    m : int
        Rows one user contributes per iteration (cap), >= 1.

    Returns
    -------
    (float, float)
        ``Δ_A = m·A₁²·A_w²`` (``‖(w̃w̃ᵀ) ⊗ Σ_j x̃_j x̃_jᵀ‖_F <= A_w²·m·A₁²``) and
        ``Δ_V = m·A₁·(A₂ + A₃)·A_w`` (``‖Σ_j x̃_j (ỹ_j − c_j) w̃ᵀ‖_F <= m·A₁·(A₂ + A₃)·A_w``).
    """
    A1 = check_real("A1", A1, 0.0)
    A2 = check_real("A2", A2, 0.0)
    A3 = check_real("A3", A3, 0.0, low_inclusive=True)
    Aw = check_real("Aw", Aw, 0.0)
    m = check_positive_int("m", m)
    return m * A1**2 * Aw**2, m * A1 * (A2 + A3) * Aw

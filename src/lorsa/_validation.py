"""Argument and array checks shared by lorsa's estimators.

Every message names the argument, the allowed range or form, and the value received, so that a bad input is
reported at the boundary of the library and never as a crash deep inside numpy, a hang or a NaN result.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "check_features",
    "check_targets",
    "check_task_labels",
    "check_int",
    "check_float",
    "check_choice",
    "check_random_state",
    "check_dtype",
]


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None,
              allow_none: bool = False) -> int | None:
    """Return ``value`` as an int, checking ``low <= value <= high``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (booleans are refused).
    ValueError
        If ``value`` is outside ``[low, high]``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)} of type {type(value).__name__}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None,
                low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """Return ``value`` as a finite float within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)} of type {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {value:g}")
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Check that ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {_describe(value)}")
    return value


def check_dtype(name: str, value: Any) -> np.dtype:
    """Return the floating dtype named by ``value`` (float32 or float64)."""
    try:
        dtype = np.dtype(value)
    except TypeError as exc:
        raise ValueError(f"{name} must be 'float64' or 'float32', got {_describe(value)}") from exc
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"{name} must be 'float64' or 'float32', got {_describe(value)}")
    return dtype


def check_random_state(value: Any) -> np.random.Generator:
    """Turn ``None``, an int seed, a Generator or a legacy ``RandomState`` into a ``numpy.random.Generator``."""
    if value is None or (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        if value is not None and int(value) < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {value}")
        return np.random.default_rng(value)
    if isinstance(value, np.random.Generator):
        return value
    if isinstance(value, np.random.RandomState):  # scikit-learn's habit: draw a seed from it (advances its state)
        return np.random.default_rng(int(value.randint(0, 2**31 - 1)))
    raise TypeError("random_state must be None, a non-negative int, a numpy Generator or a RandomState, got "
                    f"{_describe(value)}")


def _check_finite(name: str, array: np.ndarray, chunk_rows: int = 65536) -> None:
    """Raise if ``array`` holds NaN or inf, naming the first offending index (checked in chunks of rows, so
    that no temporary as large as the array is made)."""
    flat = array.reshape(array.shape[0], -1) if array.ndim > 1 else array.reshape(-1, 1)
    for start in range(0, flat.shape[0], chunk_rows):
        chunk = flat[start:start + chunk_rows]
        ok = np.isfinite(chunk)
        if ok.all():
            continue
        bad = ~ok
        row, col = np.argwhere(bad)[0]
        row += start
        first = (int(row),) if array.ndim == 1 else tuple(int(i) for i in np.unravel_index(
            row * flat.shape[1] + col, array.shape))
        kind = "NaN" if np.isnan(array[first]) else "inf"
        total = int(bad.sum()) + sum(int((~np.isfinite(flat[s:s + chunk_rows])).sum())
                                     for s in range(start + chunk_rows, flat.shape[0], chunk_rows))
        raise ValueError(
            f"{name} must contain only finite values; found {total} non-finite (first: {kind} at index {first})"
        )


def check_features(X: Any, name: str = "X", n_features: int | None = None,
                   dtype: np.dtype | None = None) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array of shape (N, d).

    Parameters
    ----------
    X : array-like of shape (N, d)
    name : str
        The argument's name, used in messages.
    n_features : int, optional
        Required number of columns ``d`` (e.g. the one seen at fit time).
    dtype : numpy dtype, optional
        Floating dtype of the result (default: float64 unless ``X`` is already float32).
    """
    try:
        arr = np.asarray(X)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be a 2-D numeric array, got {type(X).__name__}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_features), got shape {arr.shape}")
    if dtype is None:
        dtype = np.dtype(np.float32) if arr.dtype == np.float32 else np.dtype(np.float64)
    arr = np.asarray(arr, dtype=dtype)
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no rows (shape {arr.shape}); at least one sample is required")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no columns (shape {arr.shape}); at least one feature is required")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, but the model was fitted with {n_features}")
    _check_finite(name, arr)
    return arr


def check_targets(y: Any, n_samples: int, name: str = "y", dtype: np.dtype | None = None) -> np.ndarray:
    """Return ``y`` as a finite 1-D float array of length ``n_samples``."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of shape (n_samples,), got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} entries but X has {n_samples} rows; they must match")
    arr = np.asarray(arr, dtype=dtype or np.float64)
    _check_finite(name, arr)
    return arr


def check_task_labels(tasks: Any, n_samples: int, name: str = "tasks") -> Any:
    """Return task labels as a 1-D array of int64 or strings, one per row (or the given
    :class:`lorsa.task_labels.TaskCodes`, checked).

    Labels may be integers or strings, never a mix: ``1`` and ``"1"`` are two different ids, so a list holding both
    is refused rather than merged. Integers must fit in int64 (a uint64 id >= 2**63 is refused, never wrapped
    negative); floats must be whole numbers within int64; strings are at most
    :data:`lorsa.task_labels.MAX_TASK_ID_LENGTH` characters.
    """
    from .task_labels import TaskCodes

    if tasks is None:
        raise ValueError(f"{name} is required: give one task label per row of X")
    if isinstance(tasks, TaskCodes):
        if len(tasks) != n_samples:
            raise ValueError(f"{name} has {len(tasks)} labels but X has {n_samples} rows; they must match")
        check_task_labels(tasks.labels, tasks.labels.shape[0], f"{name} (label table)")
        return tasks
    arr = np.asarray(tasks)
    if arr.dtype.kind in "US" and not isinstance(tasks, np.ndarray):
        arr = np.asarray(tasks, dtype=object)  # numpy turns [1, "1"] into ["1", "1"]: look at the real types
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of task labels, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} labels but X has {n_samples} rows; they must match")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds unsigned ids up to {arr.max()}, beyond the int64 range of task labels "
                         f"(2**63 - 1); give them as strings")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b":
        raise TypeError(f"{name} must hold integer or string labels, got booleans")
    if arr.dtype.kind == "f":
        if arr.size and (not np.isfinite(arr).all() or np.any(arr != np.round(arr))):
            raise ValueError(f"{name} holds non-integer floats; task labels must be integers or strings")
        if arr.size and np.abs(arr).max() >= 2.0**63:
            raise ValueError(f"{name} holds float ids up to {np.abs(arr).max():g}, beyond the int64 range of task "
                             f"labels; give them as strings")
        return arr.astype(np.int64)
    if arr.dtype.kind == "U":
        return _check_label_length(arr, name)
    if arr.dtype.kind == "O":
        kinds = {type(v) for v in arr.tolist()}
        if kinds and all(issubclass(k, str) for k in kinds):
            return _check_label_length(arr.astype(str), name)
        if kinds and all(issubclass(k, numbers.Integral) and not issubclass(k, bool) for k in kinds):
            try:
                return arr.astype(np.int64)
            except OverflowError:
                raise ValueError(f"{name} holds integer ids beyond the int64 range of task labels "
                                 f"(|id| < 2**63); give them as strings") from None
        names = sorted(k.__name__ for k in kinds)
        raise TypeError(f"{name} must hold only integers or only strings (1 and '1' are different tasks), got a "
                        f"mix of {names}")
    raise TypeError(f"{name} must hold integer or string labels, got dtype {arr.dtype}")


def _check_label_length(arr: np.ndarray, name: str) -> np.ndarray:
    from .task_labels import MAX_TASK_ID_LENGTH

    if arr.dtype.itemsize // 4 > MAX_TASK_ID_LENGTH:
        lengths = np.char.str_len(arr)
        row = int(np.argmax(lengths))
        if lengths[row] > MAX_TASK_ID_LENGTH:
            raise ValueError(f"{name} holds an id of {lengths[row]:,} characters (index {row}: "
                             f"{_describe(str(arr[row]))}); task ids are limited to {MAX_TASK_ID_LENGTH} characters "
                             f"(every task's label is stored with the width of the longest): shorten or hash them")
    return arr

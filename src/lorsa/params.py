"""Constructor parameters of lorsa's estimators (scikit-learn style: stored untouched in ``__init__``)."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

__all__ = ["ParamsMixin", "plain_value"]


def plain_value(value: Any) -> Any:
    """JSON-friendly copy of a parameter value (tuples and arrays become lists, numpy scalars Python scalars)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | list):
        return [plain_value(x) for x in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(plain_value(a) == plain_value(b))
    except Exception:  # pragma: no cover - exotic values
        return False


class ParamsMixin:
    """``get_params`` / ``set_params`` / ``__repr__`` from the ``__init__`` signature."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as given."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> Any:
        """Set constructor parameters (unknown names are refused)."""
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"unknown parameter {name!r}; valid parameters are {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__).parameters
        changed = [f"{k}={val!r}" for k, val in self.get_params().items()
                   if sig[k].default is not inspect.Parameter.empty and not _same(val, sig[k].default)]
        return f"{type(self).__name__}({', '.join(changed)})"

"""Helpers shared by the experiments: result files, progress bars, lazy matplotlib, summaries over seeds."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["single_threaded_blas", "prepare_output", "write_csv", "write_json", "Progress", "pyplot", "spread",
           "environment"]


def single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS to one thread (through ``threadpoolctl`` when installed) for the many small products of an
    experiment: as fast as threaded BLAS on them, and it leaves the other cores to the estimators' own block
    threads and to other work on a shared machine. A no-op without ``threadpoolctl``."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the experiments extra (scikit-learn)
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def prepare_output(output: str | os.PathLike) -> Path:
    """Create the output folder (and parents); refuse a path that is an existing file."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"output {str(path)!r} exists and is not a folder; give a folder name")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write dict rows (same keys, in the order of the first row) to a CSV file."""
    fields = list(rows[0]) if rows else []
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row[k]) for k in fields})
    return path


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def write_json(data: Any, path: Path) -> Path:
    """Write JSON (NaN written as null) with sorted keys."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_json_safe(data), fh, indent=2, sort_keys=True)
        fh.write("\n")
    return path


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def environment() -> dict[str, Any]:
    """Where and when a result was computed (goes into the JSON files)."""
    from .. import __version__

    return {"lorsa_version": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


class Progress:
    """A tqdm progress bar when ``enabled`` and tqdm is installed; silent otherwise."""

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        self._bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is in the cli extra
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def update(self, label: str = "") -> None:
        if self._bar is not None:
            if label:
                self._bar.set_postfix_str(label, refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the non-interactive Agg backend (imported only when a plot is drawn).

    Raises
    ------
    ImportError
        With the install command, when matplotlib is missing.
    """
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is in the cli/experiments extras
        raise ImportError("plots need matplotlib: pip install 'lorsa[experiments]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def spread(values: Iterable[float]) -> dict[str, float]:
    """Mean, standard deviation, min, max and count of finite values (NaN when none)."""
    arr = np.asarray([float(x) for x in values], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        nan = float("nan")
        return {"mean": nan, "std": nan, "min": nan, "max": nan, "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max()), "n": int(arr.size)}

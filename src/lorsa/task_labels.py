"""Task labels of a fitted model and the lookup of rows' labels at predict time."""

from __future__ import annotations

import numpy as np

__all__ = ["TaskIndex"]


class TaskIndex:
    """Sorted distinct task labels (the model's ``tasks_``) with a vectorised label -> index lookup."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = np.asarray(labels)

    def lookup(self, labels: np.ndarray, name: str = "tasks") -> np.ndarray:
        """Index of every label in ``self.labels``.

        Raises
        ------
        ValueError
            Naming the labels that were never fitted (up to five), or when the label types differ (e.g. string
            labels for a model fitted on integer labels).
        """
        known = self.labels
        if known.dtype.kind != labels.dtype.kind and {known.dtype.kind, labels.dtype.kind} != {"i", "u"}:
            kind = "integer" if known.dtype.kind in "iu" else "string"
            raise ValueError(f"{name} must hold {kind} labels like the ones the model was fitted on, "
                             f"got labels of dtype {labels.dtype}")
        pos = np.searchsorted(known, labels)
        pos_clipped = np.minimum(pos, known.shape[0] - 1)
        found = known[pos_clipped] == labels
        if not np.all(found):
            missing = np.unique(labels[~found])
            shown = ", ".join(repr(x) for x in missing[:5].tolist())
            more = f" and {missing.size - 5} more" if missing.size > 5 else ""
            raise ValueError(
                f"{name} contains {missing.size} task(s) that were never fitted: {shown}{more}; "
                f"use adapt()/adapt_tasks() to fit new tasks against the learned U"
            )
        return pos_clipped.astype(np.int64)

"""Row sparsity of ``B`` (SPEC §1, Assumption A1): each coordinate is personalised by at most ``zeta`` tasks."""

from __future__ import annotations

import numpy as np

__all__ = ["project_row_sparsity", "row_sparsity_candidates", "merge_row_candidates", "row_sparsity_cutoff",
           "row_sparsity_keep"]


def project_row_sparsity(idx: np.ndarray, val: np.ndarray, active: np.ndarray, zeta: int) -> np.ndarray:
    """Keep, for every coordinate ``p``, only the ``zeta`` largest ``|b_i[p]|`` over tasks ``i``.

    This is the Euclidean projection of ``B`` onto matrices whose rows are ``zeta``-sparse (applied after the
    columns are already ``k``-sparse). Ties are broken by task order. Vectorised with one ``lexsort`` over the
    ``t k`` slots.

    Parameters
    ----------
    idx, val : ndarrays of shape (t, k)
        Slot coordinates and values of every ``b_i``.
    active : ndarray of shape (t, k), bool
    zeta : int

    Returns
    -------
    val : ndarray of shape (t, k)
        The values with the dropped entries set to zero.
    """
    flat_val = (val * active).reshape(-1)
    flat_idx = idx.reshape(-1)
    nz = np.flatnonzero(flat_val)
    if nz.size == 0:
        return val * active
    coords = flat_idx[nz]
    order = np.lexsort((nz, -np.abs(flat_val[nz]), coords))
    sorted_coords = coords[order]
    starts = np.flatnonzero(np.r_[True, sorted_coords[1:] != sorted_coords[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, sorted_coords.size]))
    rank = np.arange(sorted_coords.size) - group_start
    drop = nz[order[rank >= zeta]]
    out = flat_val.copy()
    out[drop] = 0.0
    return out.reshape(val.shape)


def _top_per_coordinate(coords: np.ndarray, mags: np.ndarray, keys: np.ndarray, zeta: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per coordinate, the ``zeta`` entries first in the order of :func:`project_row_sparsity` (largest magnitude,
    ties by smaller key), sorted by coordinate then that order."""
    order = np.lexsort((keys, -mags, coords))
    coords, mags, keys = coords[order], mags[order], keys[order]
    starts = np.flatnonzero(np.r_[True, coords[1:] != coords[:-1]]) if coords.size else np.zeros(0, np.int64)
    rank = np.arange(coords.size) - np.repeat(starts, np.diff(np.r_[starts, coords.size]))
    keep = rank < zeta
    return coords[keep], mags[keep], keys[keep]


def row_sparsity_candidates(idx: np.ndarray, val: np.ndarray, active: np.ndarray, task_ids: np.ndarray, zeta: int
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distributed form of :func:`project_row_sparsity`, step 1: a subset of tasks (rows ``task_ids`` of the
    global ``B``) proposes, per coordinate, its ``zeta`` largest ``|b_i[p]|`` as ``(coordinate, |value|, key)``
    with the global slot number ``key = task * k + slot`` (the in-memory tie-break). Candidates of several subsets
    merge with :func:`merge_row_candidates`; the merged set gives every coordinate's cut-off."""
    k = idx.shape[1]
    flat_val = (val * active).reshape(-1)
    nz = np.flatnonzero(flat_val)
    keys = (np.asarray(task_ids, dtype=np.int64)[nz // max(k, 1)] * k + nz % max(k, 1)) if k else nz
    return _top_per_coordinate(idx.reshape(-1)[nz], np.abs(flat_val[nz]), keys, zeta)


def merge_row_candidates(a: tuple, b: tuple, zeta: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates of two subsets of tasks -> those of their union (associative: reduce in any tree)."""
    return _top_per_coordinate(*(np.concatenate([x, y]) for x, y in zip(a, b, strict=True)), zeta)


def row_sparsity_cutoff(candidates: tuple, zeta: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per coordinate holding ``zeta`` candidates of all tasks, the last kept ``(coordinate, |value|, key)``."""
    coords, mags, keys = candidates
    last = np.flatnonzero(np.r_[coords[1:] != coords[:-1], True]) if coords.size else np.zeros(0, np.int64)
    first = np.r_[0, last[:-1] + 1] if last.size else last
    full = (last - first + 1) >= zeta
    return coords[last[full]], mags[last[full]], keys[last[full]]


def row_sparsity_keep(idx: np.ndarray, val: np.ndarray, active: np.ndarray, task_ids: np.ndarray, cutoff: tuple
                      ) -> np.ndarray:
    """Step 2: the slots (``(t_sub, k)`` mask) kept by the projection, given :func:`row_sparsity_cutoff`."""
    k = idx.shape[1]
    mags = np.abs(val * active)
    keys = np.asarray(task_ids, dtype=np.int64)[:, None] * k + np.arange(k)[None, :]
    cut_coords, cut_mags, cut_keys = cutoff
    where = np.searchsorted(cut_coords, idx)
    where_c = np.minimum(where, max(cut_coords.size - 1, 0))
    limited = (cut_coords[where_c] == idx) if cut_coords.size else np.zeros(idx.shape, bool)
    cm, ck = (cut_mags[where_c], cut_keys[where_c]) if cut_coords.size else (mags, keys)
    inside = (mags > cm) | ((mags == cm) & (keys <= ck))
    return active & (mags > 0) & (~limited | inside)

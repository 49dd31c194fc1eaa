"""Row sparsity of ``B`` (SPEC §1, Assumption A1): each coordinate is personalised by at most ``zeta`` tasks."""

from __future__ import annotations

import numpy as np

__all__ = ["project_row_sparsity"]


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

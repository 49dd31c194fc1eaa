"""Persistence of :class:`lorsa.LRSRegressorCV` in lorsa's model file (:mod:`lorsa.io`, no pickle)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from .io import read_model_file, write_model_file
from .params import plain_value

__all__ = ["CVModelFile"]


class CVModelFile:
    """``save`` / ``load`` of a fitted :class:`lorsa.LRSRegressorCV` (a mixin: ``U``, ``W``, ``B``, ``theta_0``, the
    prior and the chosen parameters)."""

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model (``U``, ``W``, ``B``, ``theta_0``, the prior) in lorsa's model file (no pickle)."""
        write_model_file(path, *self._model_file_contents())

    def _model_file_contents(self) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
        """``(kind, arrays, metadata)`` as :meth:`save` writes them (the CLI adds its column names)."""
        self._check_fitted()
        B = self.B_.tocsc()
        arrays = {"U": self.U_, "W": self.W_, "B_data": B.data, "B_indices": B.indices.astype(np.int64),
                  "B_indptr": B.indptr.astype(np.int64), "tasks": self.tasks_, "offset": self.offset_}
        if self.w_prior_cov_ is not None:
            arrays.update(w_prior_mean=self.w_prior_mean_, w_prior_cov=self.w_prior_cov_)
        params = {k: plain_value(val) for k, val in self.get_params().items() if k != "random_state"}
        params["random_state"] = self.random_state if isinstance(self.random_state, int | None) else None
        attributes = {"n_features": self.n_features_in_, "best_params": self.best_params_,
                      "best_score": self.best_score_, "noise_var": self.noise_var_, "n_fits": self.n_fits_,
                      "n_iter": self.n_iter_, "ridge_median_rows": self.ridge_median_rows_}
        return type(self).__name__, arrays, {"params": params, "attributes": attributes}

    @classmethod
    def load(cls, path: str | os.PathLike) -> Any:
        """Read a model written by :meth:`save` (format version, checksums, kind and shapes verified)."""
        from .io import ModelFileError

        arrays, meta = read_model_file(path, kind=cls.__name__)
        try:
            params = dict(meta["params"])
            for name in ("ranks", "sparsities", "ridges", "offsets", "shrinkages", "ridge_exponents"):
                if isinstance(params.get(name), list):
                    params[name] = tuple(params[name])
            est = cls(**params)
            attrs = meta["attributes"]
            U, W, tasks = arrays["U"], arrays["W"], arrays["tasks"]
            d, r = U.shape
            B = sp.csc_matrix((arrays["B_data"], arrays["B_indices"], arrays["B_indptr"]), shape=(d, tasks.shape[0]))
            B.check_format(full_check=True)
            if W.shape != (tasks.shape[0], r) or arrays["offset"].shape != (d,) or attrs["n_features"] != d:
                raise ValueError(f"U {U.shape}, W {W.shape}, offset {arrays['offset'].shape}, {tasks.shape[0]} tasks")
            est._set_model(U, W, B, tasks, d)
            est.offset_ = arrays["offset"]
            est.best_params_ = dict(attrs["best_params"])
            est.best_score_ = float(attrs["best_score"])
            est.n_fits_ = int(attrs["n_fits"])
            est.n_iter_ = int(attrs.get("n_iter", 0))
            est.ridge_median_rows_ = float(attrs.get("ridge_median_rows", 1.0))
            est.w_prior_mean_ = arrays.get("w_prior_mean")
            est.w_prior_cov_ = arrays.get("w_prior_cov")
            est.noise_var_ = None if attrs.get("noise_var") is None else float(attrs["noise_var"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFileError(f"model file {str(path)!r} is inconsistent: {exc}") from exc
        return est

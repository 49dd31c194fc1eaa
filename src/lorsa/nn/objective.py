"""Per-task losses of a network's outputs (regression and classification) and their Gauss-Newton curvature."""

from __future__ import annotations

from typing import Any

from ._torch import require_torch

__all__ = ["LOSSES", "task_losses", "curvature", "prepare_outputs"]

#: Allowed values of ``loss``.
LOSSES: tuple[str, ...] = ("mse", "cross_entropy")


def prepare_outputs(out: Any, loss: str) -> Any:
    """Network outputs ``(n, m, ...)`` as ``(n, m)`` for ``"mse"`` (one output) or ``(n, m, c)`` logits."""
    if loss == "mse":
        if out.dim() == 3 and out.shape[-1] == 1:
            return out[..., 0]
        if out.dim() != 2:
            raise ValueError(f"loss='mse' needs a network with one output per sample, got outputs of shape "
                             f"{tuple(out.shape[1:])} per task")
        return out
    if out.dim() != 3 or out.shape[-1] < 2:
        raise ValueError(f"loss='cross_entropy' needs a network with one logit per class (at least 2) per sample, "
                         f"got outputs of shape {tuple(out.shape[1:])} per task")
    return out


def task_losses(out: Any, y: Any, mask: Any, loss: str) -> Any:
    """Sum over each task's real rows of ``1/2 (f - y)^2`` (mse) or ``-log softmax(f)_y`` (cross-entropy).

    Parameters
    ----------
    out : torch.Tensor of shape (n, m) or (n, m, c)
        From :func:`prepare_outputs`.
    y : torch.Tensor of shape (n, m)
    mask : torch.Tensor of shape (n, m), bool

    Returns
    -------
    torch.Tensor of shape (n,)
    """
    torch = require_torch()
    if loss == "mse":
        per_row = 0.5 * (out - y) ** 2
    else:
        logp = torch.log_softmax(out, dim=-1)
        per_row = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    return (per_row * mask.to(per_row.dtype)).sum(dim=1)


def curvature(out: Any, jv: Any, mask: Any, loss: str) -> Any:
    """Gauss-Newton curvature ``sum_j (J_j v)^T H_j (J_j v)`` per task along a direction ``v`` (``jv = J v`` has
    the shape of ``out``): ``H = I`` for mse, ``diag(p) - p p^T`` (``p = softmax(f)``) for cross-entropy."""
    torch = require_torch()
    if loss == "mse":
        per_row = jv**2
    else:
        p = torch.softmax(out, dim=-1)
        per_row = (p * jv**2).sum(-1) - (p * jv).sum(-1) ** 2
    return (per_row * mask.to(per_row.dtype)).sum(dim=1)

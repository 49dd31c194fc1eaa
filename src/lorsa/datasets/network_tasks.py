"""Synthetic tasks whose networks follow the LRS model (SPEC §9): a teacher MLP with
``theta_i = theta_0 + U w_i + b_i``.

The teacher is :func:`lorsa.nn.make_mlp` (``d -> h -> h -> 1``, tanh) with torch's initialisation as ``theta_0``;
``U`` (``P x r``) is orthonormal (QR of a Gaussian), ``w_i ~ N(0, w_scale^2 I_r)``, ``b_i`` has ``k`` non-zeros
at uniformly random coordinates among all ``P`` with values ``~ N(0, b_scale^2)``, ``x ~ N(0, I_d)`` and
``y = f(x; theta_i) + noise * e``. Needs torch (imported when called).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_float, check_int

__all__ = ["NetworkTasks", "make_network_lrs_tasks"]


@dataclass(frozen=True)
class NetworkTasks:
    """Generated tasks and the teacher.

    Attributes
    ----------
    X, y, tasks : ndarray
        Training rows ``(N, d)``, targets ``(N,)``, task of each row ``(N,)`` in ``0..t-1``.
    teacher : torch.nn.Module
        The architecture (its weights are ``theta_0``).
    theta : torch.Tensor of shape (t, P)
        Every task's true parameters.
    theta0, U, W, B : torch.Tensor
        ``(P,)``, ``(P, r)``, ``(t, r)``, ``(t, P)`` (``k`` non-zeros per row).
    noise, w_scale, b_scale : float
    sparsity : int
    """

    X: np.ndarray
    y: np.ndarray
    tasks: np.ndarray
    teacher: Any
    theta: Any
    theta0: Any
    U: Any
    W: Any
    B: Any
    noise: float
    w_scale: float = 0.5
    b_scale: float = 0.5
    sparsity: int = 0

    def sample(self, n_samples: int, random_state: int, noise: float | None = None,
               theta: Any | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Fresh rows of every task (or of the tasks of ``theta``): ``X, y, tasks, signal`` (``signal`` is the
        noiseless ``f(x; theta_i)``)."""
        from ..nn.functional import ParameterSpace, batched_forward
        torch = _torch()

        theta = self.theta if theta is None else theta
        t, d = theta.shape[0], self.X.shape[1]
        gen = torch.Generator().manual_seed(int(random_state))
        X = torch.randn(t, n_samples, d, generator=gen, dtype=theta.dtype)
        space = ParameterSpace.from_module(self.teacher)
        with torch.no_grad():
            signal = batched_forward(self.teacher, space, theta, X)[..., 0]
        sigma = self.noise if noise is None else noise
        y = signal + sigma * torch.randn(signal.shape, generator=gen, dtype=signal.dtype)
        tasks = np.repeat(np.arange(t), n_samples)
        return (X.reshape(-1, d).numpy().astype(np.float64), y.reshape(-1).numpy().astype(np.float64), tasks,
                signal.reshape(-1).numpy().astype(np.float64))

    def new_tasks(self, n_tasks: int, random_state: int) -> Any:
        """True parameters ``(n_tasks, P)`` of tasks never seen in training, from the same ``theta_0``, ``U`` and
        the same distribution of ``w_i`` and ``b_i``."""
        W, B = _draw_task_parts(n_tasks, self.U.shape[1], self.B.shape[1], self.sparsity, self.w_scale,
                                self.b_scale, np.random.default_rng(random_state))
        return self.theta0 + W.to(self.U.dtype) @ self.U.T + B.to(self.U.dtype)


def _torch() -> Any:
    from ..nn._torch import require_torch

    return require_torch()


def _draw_task_parts(t: int, r: int, P: int, k: int, w_scale: float, b_scale: float,
                     rng: np.random.Generator) -> tuple[Any, Any]:
    torch = _torch()
    W = torch.from_numpy(rng.normal(scale=w_scale, size=(t, r))).float()
    B = torch.zeros(t, P)
    cols = np.argsort(rng.random((t, P)), axis=1)[:, :k]
    B[np.repeat(np.arange(t), k), cols.ravel()] = torch.from_numpy(rng.normal(scale=b_scale, size=t * k)).float()
    return W, B


def make_network_lrs_tasks(n_tasks: int = 1000, n_samples: int = 20, n_features: int = 8,
                           hidden: tuple[int, ...] = (16, 16), rank: int = 2, sparsity: int = 5,
                           w_scale: float = 0.5, b_scale: float = 0.5, noise: float = 0.0,
                           random_state: int = 0) -> NetworkTasks:
    """Tasks of a teacher MLP with low-rank + sparse per-task weights (see the module docstring)."""
    from ..nn.functional import ParameterSpace
    from ..nn.networks import make_mlp

    t = check_int("n_tasks", n_tasks, 1)
    m = check_int("n_samples", n_samples, 1)
    d = check_int("n_features", n_features, 1)
    noise = check_float("noise", noise, 0.0)
    rng = np.random.default_rng(check_int("random_state", random_state, 0))
    teacher = make_mlp(d, tuple(hidden), seed=int(rng.integers(2**31)))
    space = ParameterSpace.from_module(teacher)
    P = space.size
    r = check_int("rank", rank, 1, P)
    k = check_int("sparsity", sparsity, 0, P)
    torch = _torch()
    theta0 = space.flatten(teacher)
    U, _ = torch.linalg.qr(torch.from_numpy(rng.normal(size=(P, r))).float())
    ws, bs = check_float("w_scale", w_scale, 0.0), check_float("b_scale", b_scale, 0.0)
    W, B = _draw_task_parts(t, r, P, k, ws, bs, rng)
    theta = theta0 + W @ U.T + B
    parts = dict(teacher=teacher, theta=theta, theta0=theta0, U=U, W=W, B=B, noise=noise, w_scale=ws, b_scale=bs,
                 sparsity=k)
    problem = NetworkTasks(X=np.zeros((0, d)), y=np.zeros(0), tasks=np.zeros(0, dtype=np.int64), **parts)
    X, y, tasks, _ = problem.sample(m, int(rng.integers(2**31)))
    return NetworkTasks(X=X, y=y, tasks=tasks, **parts)

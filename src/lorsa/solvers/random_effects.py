"""Gaussian random effects by EM, batched over tasks: ``y_i = Z_i beta_i + eps``, ``beta_i ~ N(mu, Sigma)``.

The model of a linear mixed-effects regression with correlated random slopes (every coefficient random, an
unstructured ``p x p`` covariance), written for many tasks with few rows each:

    y_ij = <z_ij, beta_i> + eps_ij,   eps_ij ~ N(0, sigma^2),   beta_i ~ N(mu, Sigma)   (independent over i).

``mu``, ``Sigma`` and ``sigma^2`` are estimated by maximum likelihood (the marginal likelihood of ``y`` with every
``beta_i`` integrated out) through EM (Laird & Ware 1982, Laird, Lange & Stram 1987). A task enters only through
its sufficient statistics ``G_i = Z_i^T Z_i``, ``c_i = Z_i^T y_i``, ``||y_i||^2`` and ``m_i`` (the Gram layout of
:mod:`lorsa.data`), and every step is a batched product over blocks of tasks (no Python loop over tasks).

With ``Sigma = L L^T`` (``L`` a symmetric square root, so a singular ``Sigma`` is allowed) and
``H_i = L^T G_i L / sigma^2``, the E step is

    V_i = L (I + H_i)^{-1} L^T,          E[beta_i] = mu + V_i (c_i - G_i mu) / sigma^2,

and the M step

    mu = mean_i E[beta_i],   Sigma = mean_i (V_i + (E beta_i - mu)(E beta_i - mu)^T),
    sigma^2 = sum_i (||y_i||^2 - 2 c_i^T E beta_i + E beta_i^T G_i E beta_i + tr(G_i V_i)) / N.

The log-likelihood (Woodbury, with ``r_i = y_i - Z_i mu`` and ``q_i = L^T Z_i^T r_i / sigma^2``) is

    -1/2 sum_i [m_i log(2 pi sigma^2) + log det(I + H_i) + ||r_i||^2 / sigma^2 - q_i^T (I + H_i)^{-1} q_i].

``prior_weight = nu > 0`` turns the covariance update into the posterior mode under an inverse-Wishart-like prior
centred on ``tau^2 I`` (``tau^2`` the mean variance of the current estimate): ``Sigma = (t S + nu tau^2 I) /
(t + nu)``: shrinkage of the covariance for many coefficients and few tasks; ``nu = 0`` is maximum likelihood.

Used by the mixed-effects baseline (:class:`lorsa.baselines.MixedEffects`, ``Z = X``) and by the empirical-Bayes
shrinkage of ``w_i`` in :class:`lorsa.LRSRegressorCV` (``Z = X U``, SPEC §1's ``theta_i = U w_i + b_i`` with the
``b_i`` held fixed): the ``r x r`` covariance of the ``w_i`` shrinks a strong direction less than a weak one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import GramBlock, RaggedTasks

__all__ = ["RandomEffectsFit", "task_gram_blocks", "fit_random_effects", "posterior_means"]


@dataclass(frozen=True)
class RandomEffectsFit:
    """Estimated ``mu`` (p,), ``Sigma`` (p, p), ``sigma^2``, the EM trace and the posterior means (t, p)."""

    mean: np.ndarray
    cov: np.ndarray
    noise_var: float
    coef: np.ndarray
    loglik: float
    loglik_history: np.ndarray
    n_iter: int
    converged: bool


def task_gram_blocks(Z: np.ndarray, y: np.ndarray, index: np.ndarray, n_tasks: int) -> list[GramBlock]:
    """Per-task ``Z_i^T Z_i``, ``Z_i^T y_i``, ``||y_i||^2`` in blocks of similar-size tasks (:mod:`lorsa.data`)."""
    data = RaggedTasks.from_arrays(np.asarray(Z, dtype=np.float64), np.asarray(y, dtype=np.float64),
                                   index, n_tasks, layout="gram")
    return list(data.blocks)  # type: ignore[arg-type]


def _sqrt_psd(S: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(0.5 * (S + S.T))
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def _e_step(block: GramBlock, mean: np.ndarray, L: np.ndarray, noise_var: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior means (n, p), covariances (n, p, p) and the block's log-likelihood terms (n,)."""
    G, c = block.G.astype(np.float64, copy=False), block.c.astype(np.float64, copy=False)
    p = G.shape[1]
    H = np.matmul(np.matmul(L.T, G), L) / noise_var          # L^T G_i L, batched (matmul, not a 4-index einsum)
    K = H + np.eye(p)
    resid_c = c - G @ mean                                   # Z_i^T r_i
    q = resid_c @ L / noise_var                              # L^T Z_i^T r_i / sigma^2
    chol = np.linalg.cholesky(K)                             # K = I + H is positive definite
    rhs = np.concatenate([q[..., None], np.broadcast_to(L.T, (K.shape[0], p, p))], axis=2)
    sol = np.linalg.solve(K, rhs)
    Kq = sol[..., 0]                                         # K^{-1} q
    KLt = sol[..., 1:]                                       # K^{-1} L^T
    coef = mean + Kq @ L.T
    cov = np.matmul(L, KLt)
    rr = block.yy - 2.0 * c @ mean + (G @ mean) @ mean
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    ll = -0.5 * (block.sizes * np.log(2.0 * np.pi * noise_var) + logdet + rr / noise_var
                 - np.einsum("np,np->n", q, Kq))
    return coef, cov, ll


def posterior_means(blocks: list[GramBlock], n_tasks: int, mean: np.ndarray, cov: np.ndarray, noise_var: float
                    ) -> np.ndarray:
    """``E[beta_i | y_i]`` of every task (a task without rows gets ``mu``): (t, p)."""
    L = _sqrt_psd(cov)
    out = np.repeat(np.asarray(mean, dtype=np.float64)[None, :], n_tasks, axis=0)
    for block in blocks:
        out[block.task_ids] = _e_step(block, mean, L, noise_var)[0]
    return out


def fit_random_effects(blocks: list[GramBlock], n_tasks: int, *, prior_weight: float = 0.0,
                       diagonal: bool = False, max_iter: int = 500, tol: float = 1e-8,
                       init_mean: np.ndarray | None = None) -> RandomEffectsFit:
    """Maximum-likelihood (or covariance-shrunk) ``mu``, ``Sigma``, ``sigma^2`` by EM.

    Parameters
    ----------
    blocks : list of GramBlock
        From :func:`task_gram_blocks`.
    n_tasks : int
        ``t`` (tasks without rows are ignored by the estimates and get ``mu``).
    prior_weight : float, default 0
        ``nu``: covariance shrinkage toward a multiple of the identity (0: maximum likelihood).
    diagonal : bool, default False
        Restrict ``Sigma`` to a diagonal (independent random coefficients).
    max_iter : int, default 500
        Cap on EM iterations.
    tol : float, default 1e-8
        Stop when the log-likelihood changes by less than ``tol * (1 + |loglik|)``.
    init_mean : ndarray of shape (p,), optional
        Start of ``mu`` (default: the pooled least-squares fit).

    Returns
    -------
    RandomEffectsFit
    """
    p = blocks[0].G.shape[1] if blocks else 0
    G_sum = sum((b.G.sum(axis=0) for b in blocks), np.zeros((p, p)))
    c_sum = sum((b.c.sum(axis=0) for b in blocks), np.zeros(p))
    yy_sum = float(sum(b.yy.sum() for b in blocks))
    n_rows = float(sum(b.sizes.sum() for b in blocks))
    n_obs = int(sum(b.n_tasks for b in blocks))
    if n_obs == 0 or n_rows == 0:
        raise ValueError("the random-effects fit needs at least one task with rows")
    scale = np.trace(G_sum) / max(p, 1)
    pooled = np.linalg.solve(G_sum + 1e-8 * max(scale, 1e-300) * np.eye(p), c_sum)
    mean = pooled if init_mean is None else np.asarray(init_mean, dtype=np.float64)
    noise_var = max((yy_sum - 2 * c_sum @ mean + mean @ G_sum @ mean) / n_rows, 1e-12 * max(yy_sum / n_rows, 1e-300))
    # Start Sigma at a fraction of the pooled coefficient's energy per coordinate (any PD start works for EM).
    cov = np.eye(p) * max(float(mean @ mean) / max(p, 1), noise_var * p / max(np.trace(G_sum) / n_obs, 1e-300))
    history: list[float] = []
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (reported)
        L = _sqrt_psd(cov)
        s_coef = np.zeros(p)
        s_outer = np.zeros((p, p))
        s_resid = 0.0
        ll = 0.0
        for block in blocks:
            coef, V, ll_b = _e_step(block, mean, L, noise_var)
            G = block.G.astype(np.float64, copy=False)
            s_coef += coef.sum(axis=0)
            s_outer += V.sum(axis=0) + coef.T @ coef
            s_resid += float(block.yy.sum() - 2.0 * np.einsum("np,np->", block.c, coef)
                             + np.einsum("np,np->", np.matmul(G, coef[:, :, None])[:, :, 0], coef)
                             + np.einsum("npq,npq->", G, V))                # tr(G_i V_i), both symmetric
            ll += float(ll_b.sum())
        history.append(ll)
        mean = s_coef / n_obs
        S = s_outer / n_obs - np.outer(mean, mean)
        if diagonal:
            S = np.diag(np.diag(S))
        if prior_weight:
            tau2 = max(float(np.trace(S)) / p, 1e-300)
            S = (n_obs * S + prior_weight * tau2 * np.eye(p)) / (n_obs + prior_weight)
        cov = 0.5 * (S + S.T)
        noise_var = max(s_resid / n_rows, 1e-12 * max(yy_sum / n_rows, 1e-300))
        if len(history) > 1 and abs(history[-1] - history[-2]) <= tol * (1.0 + abs(history[-1])):
            converged = True
            break
    # Final E step at the returned parameters: posterior means and the log-likelihood there.
    L = _sqrt_psd(cov)
    coef_all = np.repeat(mean[None, :], n_tasks, axis=0)
    ll = 0.0
    for block in blocks:
        coef, _, ll_b = _e_step(block, mean, L, noise_var)
        coef_all[block.task_ids] = coef
        ll += float(ll_b.sum())
    return RandomEffectsFit(mean=mean, cov=cov, noise_var=float(noise_var), coef=coef_all, loglik=ll,
                            loglik_history=np.asarray(history), n_iter=it, converged=converged)

"""``lorsa demo``: the main job for someone who just installed lorsa."""

from __future__ import annotations

import argparse
import time


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="fit the paper's synthetic setting and print the recovery error",
                          description="Fit AMHT-LRS on the paper's noiseless synthetic setting and print how well "
                                      "it recovers the true parameters.")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the data and the fit (default 0)")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import LRSRegressor, make_lrs_regression

    print("lorsa demo: the paper's synthetic setting (SPEC §8): d=150, r=1, k=10, zeta=5, m=100, t=75, noiseless")
    P = make_lrs_regression(n_tasks=75, n_samples=100, n_features=150, rank=1, sparsity=10, row_sparsity=5,
                            random_state=args.seed)
    start = time.perf_counter()
    est = LRSRegressor(rank=1, sparsity=10, row_sparsity=5, random_state=args.seed).fit(P.X, P.y, tasks=P.tasks)
    elapsed = time.perf_counter() - start
    theta = est.U_ @ est.W_.T + est.B_.toarray()
    err = np.linalg.norm(theta - P.theta) / np.linalg.norm(P.theta)
    err_b = np.linalg.norm(est.B_.toarray() - P.B.toarray()) / np.linalg.norm(P.B.toarray())
    print(f"fit: {est.n_iter_} iterations, U solver {est.u_solver_!r}, {elapsed:.2f} s")
    print(f"relative parameter error ||U W^T + B - Theta*||_F / ||Theta*||_F = {err:.3e}")
    print(f"relative error of the sparse part ||B - B*||_F / ||B*||_F        = {err_b:.3e}")
    return 0

"""Cost per iteration of the exchange step and the restart of stuck tasks (issue 14), measured in one run.

Section a's setting of ``benchmarks/run.py`` (t = 10,000, d = 50, r = 3, k = 3, m = 60, noiseless, the same U^0,
5 iterations, BLAS pinned to one thread) fitted with the default per-task step (subspace pursuit + exchange step
+ restarts) and with plain subspace pursuit (both escapes off), alternating ``--repeats`` times so that the
machine's load affects both alike. Prints the median time per iteration of each and their ratio, per engine and
``n_jobs``; writes ``benchmarks/escape_overhead.json``.

Plain subspace pursuit is not an estimator option: this script builds it by giving ``LRSRegressor`` a
``TaskStepConfig`` with ``swap=False, restart_factor=0`` (benchmark only).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("escape_overhead.json")))
    args = parser.parse_args(argv)

    import lorsa.model as model
    from lorsa import LRSRegressor, make_lrs_regression
    from lorsa.solvers.task_step import TaskStepConfig

    d, r, k, m, t = 50, 3, 3, 60, args.tasks
    P = make_lrs_regression(n_tasks=t, n_samples=m, n_features=d, rank=r, sparsity=k, row_sparsity=None,
                            random_state=0)
    U0, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((d, r)))
    variants = {"default": TaskStepConfig, "plain": functools.partial(TaskStepConfig, swap=False,
                                                                       restart_factor=0.0)}
    runs = [("numpy", 1), ("numpy", 2)]
    if importlib.util.find_spec("numba") is not None:
        runs = [("numba", 1), ("numba", 2)] + runs
    times: dict[str, list[float]] = {}
    errors: dict[str, float] = {}
    for engine, n_jobs in runs:
        for variant in variants:  # compile / warm up both variants before timing
            model.TaskStepConfig = variants[variant]
            LRSRegressor(rank=r, sparsity=k, init=U0, max_iter=1, tol=0.0, n_jobs=n_jobs, engine=engine).fit(
                P.X[: 50 * m], P.y[: 50 * m], tasks=P.tasks[: 50 * m])
        for _ in range(args.repeats):
            for variant, config in variants.items():
                model.TaskStepConfig = config
                est = LRSRegressor(rank=r, sparsity=k, init=U0, max_iter=args.iterations, tol=0.0, n_jobs=n_jobs,
                                   engine=engine).fit(P.X, P.y, tasks=P.tasks)
                key = f"{variant}, engine={engine}, n_jobs={n_jobs}"
                times.setdefault(key, []).extend(est.iteration_times_.tolist())
                theta = est.U_ @ est.W_.T + est.B_.toarray()
                errors[key] = float(np.linalg.norm(theta - P.theta) / np.linalg.norm(P.theta))
    model.TaskStepConfig = TaskStepConfig
    rows = []
    for engine, n_jobs in runs:
        new = float(np.median(times[f"default, engine={engine}, n_jobs={n_jobs}"]))
        old = float(np.median(times[f"plain, engine={engine}, n_jobs={n_jobs}"]))
        rows.append({"engine": engine, "n_jobs": n_jobs, "default_time_per_iter": new, "plain_time_per_iter": old,
                     "ratio": new / old, "default_error": errors[f"default, engine={engine}, n_jobs={n_jobs}"],
                     "plain_error": errors[f"plain, engine={engine}, n_jobs={n_jobs}"]})
        print(f"engine={engine} n_jobs={n_jobs}: default {1e3 * new:.1f} ms / iteration, plain subspace pursuit "
              f"{1e3 * old:.1f} ms, ratio {new / old:.3f}; parameter error after {args.iterations} iterations "
              f"{rows[-1]['default_error']:.2e} vs {rows[-1]['plain_error']:.2e}")
    Path(args.out).write_text(json.dumps({"t": t, "d": d, "r": r, "k": k, "m": m, "iterations": args.iterations,
                                          "repeats": args.repeats, "date": time.strftime("%Y-%m-%d"),
                                          "rows": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""lorsa's speed and scale suite (issue: a million tasks on one machine).

    python benchmarks/run.py                  # the full suite, writes BENCHMARKS.md and docs/benchmark_scaling.png
    python benchmarks/run.py --quick --out D  # tiny sizes (CI smoke test), writes into D
    python benchmarks/run.py --sections a     # rerun a/b only; c, d/e kept from the existing benchmarks.json

Sections (each a ratio against a reference measured in the same run, BLAS threads pinned):

a. lorsa vs a straightforward implementation of Algorithm 1 (``reference_amht.py``: a Python loop over tasks, the
   dense Kronecker U solve): time per iteration and parameter error after the same iterations, same data, same U^0.
b. the memory floor: one pass ``X @ v`` over the same data; lorsa's time per iteration as a multiple of it.
c. scaling in t (time and peak memory per iteration), float64 and float32.
d. a million tasks fitted to relative parameter error <= 1e-4.
e. predict and adapt throughput.

Every size that allocates gigabytes runs in its own subprocess, so that its peak resident memory (VmHWM) is its own.
"""

from __future__ import annotations

import argparse
import importlib.util
import os

THREADS = os.environ.get("LORSA_BENCH_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = THREADS

import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


# ----------------------------------------------------------------------------------------------- measurement helpers
def peak_rss_bytes() -> int:
    """Peak resident set size of this process (VmHWM), in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux: writing 5 to /proc/self/clear_refs), so that the next
    :func:`peak_rss_bytes` is the peak of what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def current_rss_bytes() -> int:
    """Resident set size now (VmRSS): the interpreter and imported libraries before any data exist."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def machine_info() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "cores": os.cpu_count(), "blas_threads": THREADS}
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = "not installed (engine='numpy' only)"
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "?")
        with open("/proc/meminfo") as fh:
            info["memory_gb"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
                        for p in threadpool_info()]
    except ImportError:
        pass
    return info


def theta_error(U, W, B, problem) -> float:
    theta = U @ W.T + (B.toarray() if hasattr(B, "toarray") else B)
    return float(np.linalg.norm(theta - problem.theta) / np.linalg.norm(problem.theta))


def run_worker(args: list[str]) -> dict:
    """Run ``run.py --worker ...`` in a fresh process and return its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------- the sections
def section_reference(t: int, n_iter: int) -> dict:
    """(a) and (b): lorsa vs the loop-over-tasks reference, and vs one pass over X."""
    from lorsa import LRSRegressor, make_lrs_regression
    from reference_amht import reference_amht

    d, r, k, m = 50, 3, 3, 60
    P = make_lrs_regression(n_tasks=t, n_samples=m, n_features=d, rank=r, sparsity=k, row_sparsity=None,
                            random_state=0)
    U0, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((d, r)))
    Xs = np.split(P.X, t)
    ys = np.split(P.y, t)
    U_ref, W_ref, B_ref, ref_times = reference_amht(Xs, ys, U0, k, n_iter)
    ref_err = theta_error(U_ref, W_ref, B_ref.T, P)
    results = {}
    runs = [("sp", "numpy", 1), ("sp", "numpy", 2), ("iht", "numpy", 1)]
    if importlib.util.find_spec("numba") is not None:
        runs = [("sp", "numba", 1), ("sp", "numba", 2)] + runs
        warm_up(d, r, k, m, "float64", "numba")  # loads the compiled kernel: not part of any timing
    for solver, engine, n_jobs in runs:
        est = LRSRegressor(rank=r, sparsity=k, solver=solver, init=U0, max_iter=n_iter, tol=0.0, n_jobs=n_jobs,
                           engine=engine)
        start = time.perf_counter()
        est.fit(P.X, P.y, tasks=P.tasks)
        total = time.perf_counter() - start
        times = est.iteration_times_
        results[f"{solver}, engine={engine}, n_jobs={n_jobs}"] = {
            "time_per_iter": float(np.median(times)), "slowest_iter": float(np.max(times)),
            "iteration_times": times.tolist(), "fit_seconds": total,
            "error": theta_error(est.U_, est.W_, est.B_, P), "u_solver": est.u_solver_, "engine": engine,
            "n_jobs": n_jobs, "solver": solver}
    X3 = P.X.reshape(t, m, d)
    G = np.matmul(np.swapaxes(X3, 1, 2), X3)
    weights = np.random.default_rng(2).standard_normal((t, r * (r + 1) // 2))
    v = np.ones(d)
    timings = {"pass_time": lambda: P.X @ v, "gram_pass_time": lambda: G.reshape(t * d, d) @ v,
               "gram_times_U_time": lambda: G.reshape(t * d, d) @ U0,
               "kronecker_statistics_time": lambda: weights.T @ G.reshape(t, d * d)}
    measured = {}
    for name, fn in timings.items():
        fn()
        start = time.perf_counter()
        for _ in range(5):
            fn()
        measured[name] = (time.perf_counter() - start) / 5
    return {"t": t, "d": d, "r": r, "k": k, "m": m, "n_iter": n_iter,
            "reference_time_per_iter": float(np.median(ref_times)), "reference_times": list(ref_times),
            "reference_error": ref_err,
            "lorsa": results, "X_bytes": P.X.nbytes, "G_bytes": G.nbytes, **measured}


def warm_up(d: int, r: int, k: int, m: int, dtype: str, engine: str) -> None:
    """Fit a tiny problem of the same shape, so that the libraries (numba's compiled code included) are loaded
    before the baseline memory is read: the peak then measures the data and the fit, not the runtime."""
    from lorsa import LRSRegressor, make_lrs_regression

    P = make_lrs_regression(n_tasks=20, n_samples=m, n_features=d, rank=r, sparsity=k, row_sparsity=None,
                            random_state=0, dtype=dtype)
    LRSRegressor(rank=r, sparsity=k, max_iter=1, dtype=dtype, engine=engine, n_jobs=1).fit(P.X, P.y, tasks=P.tasks)


def worker_scaling(t: int, dtype: str, n_iter: int, engine: str = "auto") -> dict:
    """(c): one size in this process: time per iteration and peak memory against the size of X."""
    from lorsa import LRSRegressor, make_lrs_regression

    d, r, k, m = 50, 3, 3, 20
    warm_up(d, r, k, m, dtype, engine)
    runtime = current_rss_bytes()
    P = make_lrs_regression(n_tasks=t, n_samples=m, n_features=d, rank=r, sparsity=k, row_sparsity=None,
                            random_state=0, dtype=dtype)
    base = current_rss_bytes()
    reset_peak_rss()
    est = LRSRegressor(rank=r, sparsity=k, max_iter=n_iter, tol=0.0, dtype=dtype, random_state=0, n_jobs=1,
                       engine=engine)
    est.fit(P.X, P.y, tasks=P.tasks)
    return {"t": t, "dtype": dtype, "time_per_iter": float(np.median(est.iteration_times_)),
            "peak_rss": peak_rss_bytes(), "rss_before_fit": base, "runtime_rss": runtime, "X_bytes": P.X.nbytes,
            "u_solver": est.u_solver_, "engine": est.engine_}


def worker_million(t: int, n_iter: int, n_adapt: int) -> dict:
    """(d) and (e): fit t tasks (d=32, r=2, k=2, m=64, float32, noiseless), then measure predict and adapt."""
    from lorsa import LRSRegressor, make_lrs_regression

    d, r, k, m = 32, 2, 2, 64
    warm_up(d, r, k, m, "float32", "auto")
    runtime = current_rss_bytes()
    start = time.perf_counter()
    P = make_lrs_regression(n_tasks=t, n_samples=m, n_features=d, rank=r, sparsity=k, row_sparsity=None,
                            random_state=0, dtype="float32")
    gen_seconds = time.perf_counter() - start
    reset_peak_rss()
    est = LRSRegressor(rank=r, sparsity=k, dtype="float32", max_iter=n_iter, random_state=0, n_jobs=1)
    start = time.perf_counter()
    est.fit(P.X, P.y, tasks=P.tasks)
    fit_seconds = time.perf_counter() - start
    err = theta_error(est.U_, est.W_, est.B_, P)
    peak_fit = peak_rss_bytes()
    # (e) predict: 8 rows for each of the t tasks, in random task order
    rng = np.random.default_rng(5)
    rows = rng.integers(0, P.X.shape[0], size=8 * t)
    Xp, tp = P.X[rows], P.tasks[rows]
    start = time.perf_counter()
    est.predict(Xp, tasks=tp)
    predict_seconds = time.perf_counter() - start
    # (e) adapt: n_adapt new tasks of m rows each, batched
    theta_new = est.U_ @ rng.standard_normal((r, n_adapt))
    Xa = rng.standard_normal((n_adapt * m, d)).astype(np.float32)
    ta = np.repeat(np.arange(n_adapt), m)
    ya = np.einsum("nd,nd->n", Xa, theta_new.T[ta])
    start = time.perf_counter()
    est.adapt_tasks(Xa, ya, ta)
    adapt_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(min(n_adapt, 200)):
        est.adapt(Xa[ta == i], ya[ta == i])
    single_seconds = (time.perf_counter() - start) / min(n_adapt, 200)
    return {"t": t, "d": d, "r": r, "k": k, "m": m, "n_iter": est.n_iter_, "converged": est.converged_,
            "error": err, "fit_seconds": fit_seconds, "generate_seconds": gen_seconds,
            "time_per_iter": float(np.median(est.iteration_times_)), "peak_rss": peak_fit, "runtime_rss": runtime,
            "X_bytes": P.X.nbytes, "layout": "gram" if m >= d else "rows",
            "predict_rows_per_s": Xp.shape[0] / predict_seconds, "adapt_tasks_per_s": n_adapt / adapt_seconds,
            "adapt_single_per_s": 1.0 / single_seconds}


# ----------------------------------------------------------------------------------------------------- the report
def _gb(x: float) -> str:
    return f"{x / 2**30:.2f} GB"


# sections measured together (one function each) and the key of their results in benchmarks.json
SECTION_GROUPS = {"a": "reference", "b": "reference", "c": "scaling", "d": "million", "e": "million"}
GROUP_SECTIONS = {"reference": "a/b", "scaling": "c", "million": "d/e"}


def previous_results(out: Path) -> dict:
    """The results already in ``out/benchmarks.json`` (``{}`` if there is none), with the date each group was
    measured (``"unknown date"`` in files written before dates were recorded)."""
    path = out / "benchmarks.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    data.setdefault("dates", dict.fromkeys(GROUP_SECTIONS, "unknown date"))
    return data


def write_report(out: Path, info: dict, ref: dict, scaling: list[dict], numpy_row: dict, million: dict,
                 dates: dict[str, str], command: str, quick: bool) -> None:
    measured = "; ".join(f"{GROUP_SECTIONS[g]} on {dates[g]}" for g in GROUP_SECTIONS)
    lines = ["# lorsa benchmarks", "",
             f"Generated by `{command}` on {time.strftime('%Y-%m-%d')} (sections measured: {measured}). "
             f"BLAS threads pinned to {info['blas_threads']}.", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
             "## a. lorsa against a straightforward Algorithm 1", "",
             f"t = {ref['t']:,} tasks, d = {ref['d']}, r = {ref['r']}, k = {ref['k']}, m = {ref['m']}, noiseless, "
             f"same U^0, {ref['n_iter']} iterations each. The reference loops over tasks in Python "
             "(5 IHT steps for b_i, least squares for w_i, `np.kron` normal equations): "
             "`benchmarks/reference_amht.py`.",
             "", "| implementation | time / iteration (median) | slowest iteration | speed-up vs reference "
             f"(median) | parameter error after {ref['n_iter']} iterations |", "|---|---|---|---|---|",
             f"| reference (loop over tasks) | {ref['reference_time_per_iter']:.3f} s | "
             f"{max(ref['reference_times']):.3f} s | 1x | {ref['reference_error']:.2e} |"]
    for name, res in ref["lorsa"].items():
        lines.append(f"| lorsa, solver={name}, U step {res['u_solver']} | {res['time_per_iter'] * 1e3:.1f} ms | "
                     f"{res['slowest_iter'] * 1e3:.1f} ms | "
                     f"{ref['reference_time_per_iter'] / res['time_per_iter']:.1f}x | {res['error']:.2e} |")
    engine = "numba" if "sp, engine=numba, n_jobs=1" in ref["lorsa"] else "numpy"
    single, default = ref["lorsa"][f"sp, engine={engine}, n_jobs=1"], ref["lorsa"][f"sp, engine={engine}, n_jobs=2"]
    lines += ["", f"Target 30x: lorsa's defaults (engine {engine}; `n_jobs=None`, one thread per core = 2 here) "
              f"{ref['reference_time_per_iter'] / default['time_per_iter']:.1f}x, single-threaded "
              f"{ref['reference_time_per_iter'] / single['time_per_iter']:.1f}x (the reference is single-threaded: "
              "its numpy calls are too small for BLAS threads to help). An iteration of lorsa costs more while "
              "supports still move (subspace pursuit stops a task once its support is stable), hence the slowest "
              "column; the reference always runs its 5 IHT steps."]
    lines += ["", "## b. against the memory floor", "",
              f"One pass `X @ v` over the same X ({_gb(ref['X_bytes'])}) takes {ref['pass_time'] * 1e3:.1f} ms; "
              f"a single-threaded lorsa iteration (engine {engine}) takes "
              f"{single['time_per_iter'] / ref['pass_time']:.1f} such passes of time. "
              "With m >= d the fit holds each task as G_i = X_i^T X_i, X_i^T y_i (the Gram layout: "
              f"{ref['G_bytes'] / ref['X_bytes']:.2f} X-sized). The compiled engine reads each G_i once per "
              "iteration (G_i U, then subspace pursuit and the U-step statistics on the cached G_i): "
              f"{ref['G_bytes'] / ref['X_bytes']:.2f} X-sized passes of data, measured "
              f"{ref['gram_pass_time'] * 1e3:.1f} ms for one plain pass over the Gram matrices "
              f"({_gb(ref['G_bytes'])}); on top of that come the r(r+1)/2 d^2 = "
              f"{ref['r'] * (ref['r'] + 1) // 2 * ref['d'] ** 2:,} multiply-adds per task of the Kronecker "
              "statistics and the (r + 2k)-sized solves. The numpy engine reads the Gram matrices about three "
              f"times (BLAS `G @ U` alone takes {ref['gram_times_U_time'] * 1e3:.1f} ms and the statistics GEMM "
              f"{ref['kronecker_statistics_time'] * 1e3:.1f} ms: skinny products read the data about once per "
              "column) and spends most of an iteration in numpy calls over (n, p, p) stacks of tiny systems. "
              "With m < d (row layout) the U step is solved by CG: the compiled engine reads X once for the "
              "per-task pass (X_i U, pursuit, right side and Jacobi diagonal on the cached X_i) and once per CG "
              "step; the numpy engine about 3 + 2T times for the pass (X U, the gradient per pursuit step, the "
              "right side) and twice per CG step.", "",
              "## c. scaling in the number of tasks", "",
              "d = 50, r = 3, k = 3, m = 20 (row layout), median time per iteration. Peak memory is the process's "
              "peak resident memory during the fit (VmHWM, reset after the data were generated) less what the "
              "interpreter and libraries held before the data existed: X, y, the task labels, the true "
              "parameters and everything the fit allocates.", "",
              "| t | dtype | engine | U step | time / iteration | per 1,000 tasks | peak memory | size of X | "
              "peak / X |", "|---|---|---|---|---|---|---|---|---|"]
    for row in scaling + [numpy_row]:
        peak = row["peak_rss"] - row["runtime_rss"]
        lines.append(f"| {row['t']:,} | {row['dtype']} | {row['engine']} | {row['u_solver']} | "
                     f"{row['time_per_iter']:.3f} s | {row['time_per_iter'] / row['t'] * 1e6:.1f} ms | {_gb(peak)} | "
                     f"{_gb(row['X_bytes'])} | {peak / row['X_bytes']:.2f} |")
    same = next(row for row in scaling if row["t"] == numpy_row["t"] and row["dtype"] == "float64")
    lines += ["", f"Engines at t = {numpy_row['t']:,} (float64, row layout): numpy "
              f"{numpy_row['time_per_iter']:.3f} s per iteration, {same['engine']} {same['time_per_iter']:.3f} s "
              f"({numpy_row['time_per_iter'] / same['time_per_iter']:.1f}x).", "",
              "![time per iteration against t](docs/benchmark_scaling.png)", "",
              f"## d. {million['t']:,} tasks", "",
              f"d = {million['d']}, r = {million['r']}, k = {million['k']}, m = {million['m']}, noiseless, float32 "
              f"({million['layout']} layout): relative parameter error {million['error']:.2e} after "
              f"{million['n_iter']} iterations (converged: {million['converged']}), fit wall time "
              f"{million['fit_seconds']:.0f} s ({million['time_per_iter']:.1f} s per iteration; generating the data "
              f"took {million['generate_seconds']:.0f} s more), peak memory "
              f"{_gb(million['peak_rss'] - million['runtime_rss'])} (as in c) for X of "
              f"{_gb(million['X_bytes'])}.", "",
              "## e. throughput", "",
              f"- predict: {million['predict_rows_per_s']:,.0f} rows per second (rows of {million['t']:,} tasks "
              "in random order)",
              f"- adapt, batched (`adapt_tasks`): {million['adapt_tasks_per_s']:,.0f} new tasks per second "
              f"(m = {million['m']})",
              f"- adapt, one task per call (`adapt`): {million['adapt_single_per_s']:,.0f} tasks per second", ""]
    (out / "BENCHMARKS.md").write_text("\n".join(lines))
    (out / "benchmarks.json").write_text(json.dumps({"machine": info, "reference": ref, "scaling": scaling,
                                                     "scaling_numpy_engine": numpy_row, "million": million,
                                                     "dates": dates, "quick": quick}, indent=2))


def plot_scaling(scaling: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for dtype in ("float64", "float32"):
        rows = [r for r in scaling if r["dtype"] == dtype]
        ax.loglog([r["t"] for r in rows], [r["time_per_iter"] for r in rows], "o-", label=dtype)
    ts = np.array(sorted({r["t"] for r in scaling}), dtype=float)
    first = scaling[0]
    ax.loglog(ts, first["time_per_iter"] * ts / first["t"], "k:", label="linear in t")
    ax.set_xlabel("tasks t")
    ax.set_ylabel("seconds per iteration")
    ax.set_title("AMHT-LRS, d=50, r=3, k=3, m=20")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test: seconds, not minutes)")
    parser.add_argument("--out", type=Path, default=ROOT, help="folder for BENCHMARKS.md, benchmarks.json, docs/")
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTION_GROUPS), default=sorted(SECTION_GROUPS),
                        metavar="S", help="sections to measure (a b c d e; a/b and d/e run together); the others "
                        "are kept from the benchmarks.json already in --out (default: all)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, *params = args.worker
        if kind == "scaling":
            result = worker_scaling(int(params[0]), params[1], int(params[2]), *params[3:])
        else:
            result = worker_million(*(int(p) for p in params))
        print(json.dumps(result))
        return 0
    groups = {SECTION_GROUPS[name] for name in args.sections}
    previous = previous_results(args.out)
    kept = [g for g in GROUP_SECTIONS if g not in groups]
    missing = [GROUP_SECTIONS[g] for g in kept if g not in previous]
    if missing:
        parser.error(f"--sections {' '.join(args.sections)}: the sections not measured ({', '.join(missing)}) must "
                     f"come from {args.out / 'benchmarks.json'}, which "
                     f"{'has no such results' if previous else 'does not exist'}; measure them too")
    if kept and previous.get("quick", False) != args.quick:
        parser.error(f"{args.out / 'benchmarks.json'} holds {'--quick' if previous.get('quick') else 'full'} "
                     f"results: they cannot be mixed with {'--quick' if args.quick else 'full'} sections; measure "
                     "every section or use another --out")
    info = machine_info()
    print("machine:", json.dumps(info), flush=True)
    ref_t, sizes, million_t = (300, [200, 400], 2000) if args.quick else (10_000, [1_000, 10_000, 100_000,
                                                                                   1_000_000], 1_000_000)
    dates = {g: previous["dates"][g] for g in kept}
    today = time.strftime("%Y-%m-%d")
    if "reference" in groups:
        ref = section_reference(ref_t, n_iter=5)
        print("a/b:", json.dumps(ref), flush=True)
    else:
        ref = previous["reference"]
    if "scaling" in groups:
        scaling = []
        for dtype in ("float64", "float32"):
            for t in sizes:
                scaling.append(run_worker(["scaling", str(t), dtype, "3"]))
                print("c:", json.dumps(scaling[-1]), flush=True)
        numpy_row = run_worker(["scaling", str(sizes[-2]), "float64", "3", "numpy"])  # the engines compared (rows)
        print("c (numpy engine):", json.dumps(numpy_row), flush=True)
    else:
        scaling, numpy_row = previous["scaling"], previous["scaling_numpy_engine"]
    if "million" in groups:
        million = run_worker(["million", str(million_t), "60", "200" if args.quick else "10000"])
        print("d/e:", json.dumps(million), flush=True)
    else:
        million = previous["million"]
    dates.update({g: today for g in groups})
    args.out.mkdir(parents=True, exist_ok=True)
    if "scaling" in groups or not (args.out / "docs" / "benchmark_scaling.png").exists():
        plot_scaling(scaling, args.out / "docs" / "benchmark_scaling.png")
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "") + (
        "" if groups == set(GROUP_SECTIONS) else " --sections " + " ".join(args.sections))
    write_report(args.out, info, ref, scaling, numpy_row, million, dates, command, args.quick)
    print(f"wrote {args.out / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Robustness of the MovieLens comparison (issue 12): lorsa's default :class:`lorsa.LRSRegressorCV` against the
strongest baselines under protocol variations.

A *variation* is a data set (ML-100K or the ML-1M partial ratings), a factor rank of the movie vectors, centred or
raw ratings, a split seed and a grouping (demographic clusters or single users). For each, the MovieLens protocol of
:mod:`lorsa.datasets.movielens_tasks` builds the final problem (20 % of every task's movies held out for
validation, the factorisation fitted on the training ratings) and the tuning problem (a further 20 % of the
training movies held out, the factorisation refitted without them). Every method — ``LRSRegressorCV()`` with its
default search, and every baseline with its candidate grid — chooses its hyper-parameters on the tuning problem
(trained on its training samples, scored on its held-out samples; the validation ratings never enter), is refitted
with them on the final training samples and scored once on the validation samples. Row hold-outs *inside* the
training samples would be optimistic here: the movie vectors were fitted on those very ratings (measured: a
within-training hold-out RMSE of 0.70 against a validation RMSE of 0.93 for the same model on ML-100K).

"Centred" subtracts the mean training rating from every rating before the factorisation and the targets (RMSE is
unchanged by the shift; the factorisation is not). Data-starved tasks have fewer than 100 training samples.

Every row records the RMSE of every method (overall, starved, surplus), lorsa's chosen parameters and the search
cost: the fits run and the wall time of the search + refit against one fit of ``LRSRegressor`` at the chosen
parameters on the final training samples (measured in the same process, BLAS pinned to one thread).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..baselines import ConvexLRS, FineTuning, MixedEffects, PromptTuning, SingleModel, TaskRegressor
from ..datasets.movielens import load_movielens
from ..datasets.movielens_tasks import assign_tasks, movielens_tasks, movielens_tuning_tasks, split_task_movies
from ..model import LRSRegressor
from ..model_cv import LRSRegressorCV
from .movielens_data import add_intercept, resolve_data_dir

__all__ = ["Variation", "BASELINE_GRIDS", "run_variation", "summarise", "format_table"]

_ML1M_PARTIAL = "ratings_PARTIAL_users1-2999.dat.gz"
_RIDGES = (0.0, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


@dataclass(frozen=True)
class Variation:
    """One protocol variation (defaults: the paper's protocol on ML-100K)."""

    dataset: str = "ml-100k"
    factor_rank: int = 50
    centred: bool = False
    seed: int = 0
    grouping: str = "demographic"

    @property
    def name(self) -> str:
        return (f"{self.dataset} {self.grouping} rank={self.factor_rank} "
                f"{'centred' if self.centred else 'raw'} seed={self.seed}")


def _grid(**axes: Any) -> list[dict[str, Any]]:
    import itertools

    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


#: Baselines: name -> (candidate grid, constructor from one candidate).
BASELINE_GRIDS: dict[str, tuple[list[dict[str, Any]], Any]] = {
    "single": (_grid(ridge=_RIDGES), lambda p: SingleModel(p["ridge"])),
    "prompt": (_grid(ridge=_RIDGES, bias_ridge=(0.0, 1.0, 10.0, 100.0)),
               lambda p: PromptTuning(p["ridge"], bias_ridge=p["bias_ridge"], random_state=0)),
    "finetune": (_grid(ridge=_RIDGES, toward=("single", "zero")),
                 lambda p: FineTuning(p["ridge"], toward=p["toward"], random_state=0)),
    "mixed": (_grid(cov_scale=(1.0, 0.3, 0.1, 0.03, 0.01)),
              lambda p: MixedEffects(cov_scale=p["cov_scale"], max_iter=100, tol=1e-6, random_state=0)),
    "convex": (_grid(nuclear=(0.3, 0.1, 0.03), l1=(0.3, 0.1, 0.03)),
               lambda p: ConvexLRS(p["nuclear"], l1=p["l1"], max_iter=1000, tol=1e-6, random_state=0)),
}


def _problems(v: Variation, data_dir: str) -> tuple[Any, Any]:
    folder, name = resolve_data_dir(data_dir, v.dataset)
    data = load_movielens(folder, name, ratings=_ML1M_PARTIAL if name == "ml-1m" else None)
    if v.centred:
        task, _ = assign_tasks(data, v.grouping)
        held = split_task_movies(task, data.item, fraction=0.2, seed=v.seed)
        mean = float(data.rating[~held].mean())  # training ratings only
        data = replace(data, rating=data.rating.astype(np.float64) - mean)
    common = {"grouping": v.grouping, "fraction": 0.2, "seed": v.seed, "rank": v.factor_rank}
    final = add_intercept(movielens_tasks(data, **common))
    tune = add_intercept(movielens_tuning_tasks(data, tuning_fraction=0.2, **common))
    return final, tune


def _scores(pred: np.ndarray, y: np.ndarray, starved: np.ndarray) -> dict[str, float]:
    def r(mask: np.ndarray) -> float:
        return float(np.sqrt(np.mean((pred[mask] - y[mask]) ** 2))) if mask.any() else float("nan")
    return {"rmse": r(np.ones_like(starved)), "rmse_starved": r(starved), "rmse_surplus": r(~starved)}


def _tuned_baseline(grid: list[dict[str, Any]], make: Any, tune: Any, final: Any) -> tuple[TaskRegressor, dict]:
    best, best_score = grid[0], np.inf
    for params in grid:
        est = make(params).fit(tune.X_train, tune.y_train, tasks=tune.tasks_train)
        pred = est.predict(tune.X_val, tasks=tune.tasks_val)
        score = float(np.sqrt(np.mean((pred - tune.y_val) ** 2)))
        if score < best_score:
            best, best_score = params, score
    return make(best).fit(final.X_train, final.y_train, tasks=final.tasks_train), best


_PROBLEM_FIELDS = ("X_train", "y_train", "tasks_train", "X_val", "y_val", "tasks_val", "train_counts",
                   "task_index_val")


class _CachedProblem:
    """The arrays of a :class:`MovieLensTasks` the comparison uses, read back from its cache file (no pickle)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        for name in _PROBLEM_FIELDS:
            setattr(self, name, arrays[name])
        self.n_tasks = int(self.train_counts.shape[0])


def cached_problems(v: Variation, data_dir: str, cache_dir: str | None) -> tuple[Any, Any, float]:
    """The final and tuning problems of ``v``, built once and kept in ``cache_dir`` (``.npz``, strings as unicode
    arrays, read without pickle); returns ``(final, tune, build_seconds)``."""
    from pathlib import Path

    tic = time.perf_counter()
    path = None if cache_dir is None else Path(cache_dir) / (v.name.replace(" ", "_").replace("=", "") + ".npz")
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        parts = [_CachedProblem({f: arrays[f"{which}_{f}"] for f in _PROBLEM_FIELDS}) for which in ("final", "tune")]
        return parts[0], parts[1], float(arrays["build_seconds"])
    final, tune = _problems(v, data_dir)
    build = time.perf_counter() - tic
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        out = {f"{which}_{f}": np.asarray(getattr(prob, f)).astype(str) if f.startswith("tasks")
               else np.asarray(getattr(prob, f)) for which, prob in (("final", final), ("tune", tune))
               for f in _PROBLEM_FIELDS}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, build_seconds=np.float64(build), **out)
        tmp.replace(path)
    return final, tune, build


def _row_header(v: Variation, final: Any, build: float, starved_below: int) -> tuple[dict[str, Any], np.ndarray]:
    starved = (final.train_counts < starved_below)[final.task_index_val]
    row: dict[str, Any] = {"variation": v.name, **v.__dict__, "n_tasks": int(final.n_tasks),
                           "n_starved_tasks": int((final.train_counts < starved_below).sum()),
                           "n_val_starved": int(starved.sum()), "n_val": int(starved.size),
                           "build_seconds": build, "methods": {}}
    return row, starved


def run_lorsa(final: Any, tune: Any, starved: np.ndarray, **cv_params: Any) -> dict[str, Any]:
    """lorsa's ``LRSRegressorCV`` (default search unless ``cv_params``), searched on the tuning problem, refitted
    on the final training samples, against one fit at the chosen parameters (same process)."""
    tic, cpu = time.perf_counter(), time.process_time()
    cv = LRSRegressorCV(random_state=0, refit=False, **cv_params)
    cv.fit(tune.X_train, tune.y_train, tune.tasks_train, validation=(tune.X_val, tune.y_val, tune.tasks_val))
    search = time.perf_counter() - tic
    cv.fit_best(final.X_train, final.y_train, final.tasks_train)
    total, total_cpu = time.perf_counter() - tic, time.process_time() - cpu
    pred = cv.predict(final.X_val, tasks=final.tasks_val)
    p = cv.best_params_
    tic, cpu = time.perf_counter(), time.process_time()
    LRSRegressor(rank=p["rank"], sparsity=p["sparsity"], ridge=p.get("basis_ridge", p["ridge"]), tol=cv.tol,
                 random_state=0).fit(
        final.X_train, final.y_train - final.X_train @ cv.offset_, final.tasks_train)
    one_fit, one_fit_cpu = time.perf_counter() - tic, time.process_time() - cpu
    other = _other_shrinkage(cv, final)
    # the CPU-time ratio too: on a shared virtual machine the wall time of a 0.1 s fit moves several-fold with load
    return {**_scores(pred, final.y_val, starved), "params": p, "params_per_task": cv.params_per_task,
            "n_fits": cv.n_fits_, "search_seconds": search, "total_seconds": total, "one_fit_seconds": one_fit,
            "cost_ratio": total / one_fit, "cost_ratio_cpu": total_cpu / max(one_fit_cpu, 1e-9),
            "total_cpu_seconds": total_cpu, "one_fit_cpu_seconds": one_fit_cpu, "tuning_rmse": cv.best_score_,
            "other_shrinkage": {**_scores(other, final.y_val, starved)},
            "per_task_sq_error": _per_task(pred, final, starved)}


def _per_task(pred: np.ndarray, final: Any, starved: np.ndarray) -> dict[str, list[float]]:
    """Sum of squared validation errors per task (for the diagnosis by task size)."""
    n = final.n_tasks
    return {"sq": np.bincount(final.task_index_val, (pred - final.y_val) ** 2, minlength=n).tolist(),
            "count": np.bincount(final.task_index_val, minlength=n).tolist(),
            "train_counts": np.asarray(final.train_counts).tolist()}


def run_baseline(name: str, final: Any, tune: Any, starved: np.ndarray) -> dict[str, Any]:
    """One baseline, its grid searched on the tuning problem, refitted on the final training samples."""
    tic = time.perf_counter()
    grid, make = BASELINE_GRIDS[name]
    est, best = _tuned_baseline(grid, make, tune, final)
    pred = est.predict(final.X_val, tasks=final.tasks_val)
    return {**_scores(pred, final.y_val, starved), "params": best, "params_per_task": float(est.params_per_task),
            "seconds": time.perf_counter() - tic, "per_task_sq_error": _per_task(pred, final, starved)}


def run_variation(v: Variation, data_dir: str, baselines: tuple[str, ...] = tuple(BASELINE_GRIDS),
                  starved_below: int = 100, cache_dir: str | None = None, methods_done: dict | None = None,
                  on_method: Any = None) -> dict[str, Any]:
    """Run one variation; returns a JSON-ready row (see the module docstring). ``methods_done``: results already
    computed (a resumed run), ``on_method(name, result)``: called after every method (to cache it)."""
    final, tune, build = cached_problems(v, data_dir, cache_dir)
    row, starved = _row_header(v, final, build, starved_below)
    done = dict(methods_done or {})
    for name in ("lorsa_cv", *baselines):
        if name not in done:
            done[name] = run_lorsa(final, tune, starved) if name == "lorsa_cv" else run_baseline(
                name, final, tune, starved)
            if on_method is not None:
                on_method(name, done[name])
        row["methods"][name] = done[name]
    return row


def _other_shrinkage(cv: LRSRegressorCV, final: Any) -> np.ndarray:
    """Validation predictions of the same refit with the other shrinkage of ``w_i`` (ridge <-> empirical Bayes)."""
    from ..model import predict_rows
    from ..model_cv import _eb_fit

    est = cv.best_estimator_
    index = np.searchsorted(cv.tasks_, final.tasks_val)
    if cv.best_params_["shrinkage"] == "eb":
        W = cv.W_ridge_
    else:
        train_index = np.searchsorted(cv.tasks_, final.tasks_train)
        target = final.y_train - final.X_train @ cv.offset_
        W = _eb_fit(final.X_train, target, train_index, cv.tasks_.shape[0], est.U_, est.B_).coef
    return predict_rows(final.X_val, index, cv.U_, W, cv.B_) + final.X_val @ cv.offset_


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variation: lorsa minus the best baseline (per column), which baseline that is, lorsa's parameters."""
    out = []
    for row in rows:
        m = row["methods"]
        lorsa = m["lorsa_cv"]
        base = {k: val for k, val in m.items() if k != "lorsa_cv"}
        entry = {"variation": row["variation"], "params": lorsa["params"], "cost_ratio": lorsa["cost_ratio"],
                 "cost_ratio_cpu": lorsa.get("cost_ratio_cpu", float("nan")), "n_fits": lorsa["n_fits"]}
        for col in ("rmse", "rmse_starved"):
            best = min(base, key=lambda k: base[k][col])
            entry[f"{col}_lorsa"] = lorsa[col]
            entry[f"{col}_best_baseline"] = best
            entry[f"{col}_best"] = base[best][col]
            entry[f"{col}_diff"] = lorsa[col] - base[best][col]
        out.append(entry)
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: per variation, lorsa's RMSE, the best baseline's, their difference (overall and starved)."""
    lines = ["| variation | lorsa (LRSRegressorCV) overall | best baseline overall | lorsa − best | lorsa starved "
             "| best baseline starved | lorsa − best | lorsa's r, k, ridge (x m_i^α: α), offset, shrinkage | fits "
             "| cost vs one fit (wall / CPU) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summarise(rows):
        p = s["params"]
        lines.append(f"| {s['variation']} | {s['rmse_lorsa']:.4f} | {s['rmse_best']:.4f} ({s['rmse_best_baseline']}) | "
                     f"{s['rmse_diff']:+.4f} | {s['rmse_starved_lorsa']:.4f} | {s['rmse_starved_best']:.4f} "
                     f"({s['rmse_starved_best_baseline']}) | {s['rmse_starved_diff']:+.4f} | {p['rank']}, "
                     f"{p['sparsity']}, {p['ridge']:.3g}{_exponent(p)}, {p['offset']}, {p['shrinkage']} | "
                     f"{s['n_fits']} | "
                     f"{s['cost_ratio']:.1f}x / {s['cost_ratio_cpu']:.1f}x |")
    return "\n".join(lines) + "\n"


def _exponent(params: dict[str, Any]) -> str:
    """`` (α=0.5)`` for a task-size-adapted ridge, nothing for a plain one (or rows from before the exponent)."""
    alpha = float(params.get("ridge_exponent", 0.0))
    return f" (α={alpha:g})" if alpha and params["shrinkage"] == "ridge" and params["ridge"] else ""


SIZE_BINS = (0, 50, 100, 200, 500, 1000, 10**9)


def by_task_size(rows: list[dict[str, Any]], methods: tuple[str, ...] = ("lorsa_cv", "convex", "finetune")
                 ) -> list[dict[str, Any]]:
    """The diagnosis of the gap: per variation and bin of training samples per task, every method's validation RMSE
    on those tasks' samples and its share of the total squared error (from the rows' ``per_task_sq_error``)."""
    out = []
    for row in rows:
        m = row["methods"]
        if not all("per_task_sq_error" in m.get(name, {}) for name in methods):
            continue
        counts = np.asarray(m[methods[0]]["per_task_sq_error"]["count"], dtype=float)
        train = np.asarray(m[methods[0]]["per_task_sq_error"]["train_counts"])
        for lo, hi in zip(SIZE_BINS[:-1], SIZE_BINS[1:], strict=True):
            sel = (train >= lo) & (train < hi)
            n = float(counts[sel].sum())
            if n == 0:
                continue
            entry: dict[str, Any] = {"variation": row["variation"], "train_samples": f"[{lo}, {hi})",
                                     "n_tasks": int(sel.sum()), "n_val": int(n)}
            for name in methods:
                sq = np.asarray(m[name]["per_task_sq_error"]["sq"])
                entry[f"rmse_{name}"] = float(np.sqrt(sq[sel].sum() / n))
                entry[f"sq_share_{name}"] = float(sq[sel].sum() / max(sq.sum(), 1e-300))
            out.append(entry)
    return out


def write_outputs(rows: list[dict[str, Any]], out_dir: str) -> None:
    """``rows.jsonl`` (per-task errors dropped), ``table.md``, ``summary.csv``, ``by_task_size.csv`` and
    ``difference.png`` (lorsa minus the best baseline per variation, overall and starved) in ``out_dir``."""
    import csv
    import json
    from pathlib import Path

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    slim = [{**r, "methods": {k: {f: x for f, x in m.items() if f != "per_task_sq_error"}
                              for k, m in r["methods"].items()}} for r in rows]
    (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in slim), encoding="utf-8")
    (folder / "table.md").write_text(format_table(rows), encoding="utf-8")
    summary = summarise(rows)
    for name, table in (("summary.csv", [{**s, "params": json.dumps(s["params"])} for s in summary]),
                        ("by_task_size.csv", by_task_size(rows))):
        if table:
            with (folder / name).open("w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(table[0]))
                writer.writeheader()
                writer.writerows(table)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is an extra
        return
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(summary) + 1.5))
    pos = np.arange(len(summary))
    ax.barh(pos - 0.2, [s["rmse_diff"] for s in summary], 0.4, label="overall")
    ax.barh(pos + 0.2, [s["rmse_starved_diff"] for s in summary], 0.4, label="data-starved tasks")
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(pos, [s["variation"] for s in summary], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("validation RMSE: lorsa's LRSRegressorCV minus the best baseline (< 0: lorsa better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "difference.png", dpi=120)
    plt.close(fig)


def _warm_up() -> None:  # pragma: no cover - compiles the numba kernels so that no timing includes compilation
    from ..datasets.synthetic import make_lrs_regression

    P = make_lrs_regression(n_tasks=20, n_samples=60, n_features=51, rank=2, sparsity=2, row_sparsity=None,
                            noise=0.1, random_state=0)
    for n in (60, 30):  # Gram and row layouts
        keep = np.arange(P.X.shape[0]) % 60 < n
        LRSRegressor(rank=2, sparsity=2, ridge=1.0, max_iter=3).fit(P.X[keep], P.y[keep], P.tasks[keep])


VARIATIONS = ("base", "rank20", "rank100", "centred", "seed1", "seed2", "user")


def variation_table(dataset: str) -> dict[str, Variation]:
    """The seven variations of one data set (the paper's protocol, then one change each)."""
    base = Variation(dataset=dataset)
    return {"base": base, "rank20": replace(base, factor_rank=20), "rank100": replace(base, factor_rank=100),
            "centred": replace(base, centred=True), "seed1": replace(base, seed=1), "seed2": replace(base, seed=2),
            "user": replace(base, grouping="user")}


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - the heavy run, see docs/movielens-robustness
    import argparse
    import json
    from pathlib import Path

    from ._common import single_threaded_blas

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", required=True, help="JSON-lines file; one row per variation (replaced if rerun)")
    parser.add_argument("--dataset", default="ml-100k", choices=("ml-100k", "ml-1m"))
    parser.add_argument("--table", action="store_true", help="print the markdown table of --out's rows and exit")
    parser.add_argument("--write-docs", default=None, metavar="DIR",
                        help="write DIR/rows.jsonl, table.md, summary.csv, by_task_size.csv, difference.png from the "
                             "rows of every --out file given (comma-separated) and exit")
    parser.add_argument("--variations", nargs="+", default=list(VARIATIONS), choices=VARIATIONS)
    parser.add_argument("--methods", nargs="+", default=["lorsa_cv", *BASELINE_GRIDS],
                        help="methods to run in this piece (the row is written once all are cached)")
    parser.add_argument("--cache-dir", default=None,
                        help="per-variation cache (problems .npz, one JSON per method): pieces resume from it")
    parser.add_argument("--lorsa-tag", default="default",
                        help="name of lorsa's cached result (change it when LRSRegressorCV's default changes)")
    args = parser.parse_args(argv)
    if args.write_docs:
        rows = [json.loads(line) for f in args.out.split(",") for line in
                Path(f).read_text(encoding="utf-8").splitlines() if line]
        write_outputs(rows, args.write_docs)
        return 0
    out = Path(args.out)
    if args.table:
        print(format_table([json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line]))
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    _warm_up()
    table = variation_table(args.dataset)
    for key in args.variations:
        v = table[key]
        cache = None if args.cache_dir is None else Path(args.cache_dir) / v.name.replace(" ", "_").replace("=", "")

        def cache_file(name: str, cache: Path | None = cache) -> Path | None:
            tag = f"lorsa_cv-{args.lorsa_tag}" if name == "lorsa_cv" else name
            return None if cache is None else cache / f"{tag}.json"

        def load(name: str) -> dict[str, Any] | None:
            f = cache_file(name)
            return json.loads(f.read_text(encoding="utf-8")) if f is not None and f.exists() else None

        def save(name: str, result: dict[str, Any]) -> None:
            f = cache_file(name)
            if f is not None:
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text(json.dumps(result), encoding="utf-8")

        done = {name: res for name in ("lorsa_cv", *BASELINE_GRIDS) if (res := load(name)) is not None}
        todo = [m for m in args.methods if m not in done]
        final, tune, build = cached_problems(v, args.data_dir, args.cache_dir)
        row, starved = _row_header(v, final, build, 100)
        for name in todo:
            with single_threaded_blas():
                done[name] = run_lorsa(final, tune, starved) if name == "lorsa_cv" else run_baseline(
                    name, final, tune, starved)
            save(name, done[name])
            print(f"{v.name}: {name} rmse {done[name]['rmse']:.4f} starved {done[name]['rmse_starved']:.4f}",
                  flush=True)
        if not all(name in done for name in ("lorsa_cv", *BASELINE_GRIDS)):
            continue
        row["methods"] = {name: done[name] for name in ("lorsa_cv", *BASELINE_GRIDS)}
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line] \
            if out.exists() else []
        rows = [r for r in rows if r["variation"] != v.name] + [row]
        out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        s = summarise([row])[0]
        print(f"{row['variation']}: lorsa-best overall {s['rmse_diff']:+.4f} ({s['rmse_best_baseline']}), "
              f"starved {s['rmse_starved_diff']:+.4f} ({s['rmse_starved_best_baseline']}); cost "
              f"{s['cost_ratio']:.1f}x, {s['n_fits']} fits; {s['params']}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

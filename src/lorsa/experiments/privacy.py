"""Privacy-utility trade-off of private AMHT-LRS (SPEC §6, the paper's Section 2.2 and Theorem 3).

Test RMSE against the privacy budget ε (at a fixed δ) for :class:`lorsa.PrivateLRSRegressor`, beside three references
fitted on the same data: ``non_private`` (:class:`lorsa.LRSRegressor`, no clipping, no noise), ``clipping_only``
(the private estimator with ``epsilon=inf``: the bias of clipping alone) and ``random_U`` (a random public ``U``
frozen, each task fitting only its ``w_i, b_i``: what the private fit degrades to when the noise swamps ``S_A``).

- Synthetic (:func:`lorsa.make_lrs_regression`): several numbers of users ``t`` at fixed ``d, r, k, m``; test rows
  are fresh rows of the same users. Theorem 3's privacy term shrinks like ``d³/(εt)²``, so at a fixed ε the RMSE
  should approach the non-private one as ``t`` grows. The private fits use the library's defaults, given only
  what the (public) generative model says: ``feature_scale = 1`` (``x ~ N(0, I)``) and
  ``target_scale = √(r + k + σ²)`` (the standard deviation of ``y``); ``d`` is the data's width.
- MovieLens (:func:`lorsa.datasets.movielens_tasks.movielens_tasks`): a task (the unit of privacy) is a demographic
  cluster (or a single user, ``grouping="user"``), validation RMSE on its held-out movies. The movie vectors are
  treated as public side information (they are computed by a non-private factorisation of the training ratings:
  this experiment measures the cost of the private U step, the end-to-end pipeline is NOT differentially private);
  so ``A₁`` is the largest norm of a movie vector, ``A₂ = A₃ = 5`` (ratings lie in [1, 5]), ``A_w = 2·A₂/A₁``,
  ``feature_scale`` the root mean square coordinate of the movie vectors and ``target_scale = 3`` (the middle of
  the rating scale; ratings are not centred).

Results go to ``runs.csv`` (one row per fit, with the ε actually spent), ``summary.json`` (configuration, mean, sd,
min and max over seeds, an example privacy report), ``table.md`` and ``privacy.png``.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _validation as v
from ..datasets.synthetic import make_lrs_regression
from ..model import LRSRegressor
from ..privacy.estimator import PrivateLRSRegressor
from ._common import Progress, environment, prepare_output, pyplot, single_threaded_blas, spread, write_csv, write_json

__all__ = ["PrivacyConfig", "PrivacyResult", "run_privacy", "format_privacy_table", "plot_privacy", "REFERENCES"]

#: Reference methods fitted beside the private ones (``method`` column; private fits are ``"private"``).
REFERENCES: tuple[str, ...] = ("non_private", "clipping_only", "random_U")


@dataclass(frozen=True)
class PrivacyConfig:
    """Settings of the privacy experiment.

    Attributes
    ----------
    epsilons : tuple of float
        Privacy budgets ε of the private fits.
    delta : float
        δ of every private fit (below ``1/t`` for every ``t``).
    n_tasks : tuple of int
        Numbers of users ``t`` of the synthetic data (empty: no synthetic part).
    n_features, rank, sparsity, n_samples, n_test, noise
        ``d, r, k``, training rows per user ``m``, fresh test rows per user, noise std ``σ`` of the synthetic data.
    max_iter : int
        ``L``, iterations (= U releases) of the private fits.
    seeds : tuple of int
        One data set (synthetic) and one fit per seed.
    movielens : str or None
        Folder of MovieLens 100K or 1M (``None``: no MovieLens part).
    movielens_grouping : {"demographic", "user"}
        What a task (the unit of privacy) is.
    movielens_rank, movielens_ridge, movielens_max_rows
        ``r``, per-task ridge and row budget ``m`` of the MovieLens fits (``None``: normalised per-user
        contributions, the library's default).
    movielens_sparsities : tuple of int
        ``k`` of the MovieLens fits, one curve each (``k = 0``: every task relies on the shared ``U`` alone;
        ``k = 5``: the paper's AMHT-LRS point, whose sparse part makes up for much of a poor ``U``).
    """

    epsilons: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    delta: float = 1e-6
    n_tasks: tuple[int, ...] = (1000, 10000, 100000)
    n_features: int = 10
    rank: int = 2
    sparsity: int = 1
    n_samples: int = 20
    n_test: int = 20
    noise: float = 0.5
    max_iter: int = 6
    seeds: tuple[int, ...] = (0, 1, 2)
    movielens: str | None = None
    movielens_grouping: str = "demographic"
    movielens_rank: int = 1
    movielens_sparsities: tuple[int, ...] = (0, 5)
    movielens_ridge: float = 10.0
    movielens_max_rows: int | None = None

    def validate(self) -> PrivacyConfig:
        """Check every field (messages name the field, the allowed range and the value)."""
        d = v.check_int("n_features", self.n_features, 2)
        r = v.check_int("rank", self.rank, 1, d - 1)
        k = v.check_int("sparsity", self.sparsity, 0, d)
        v.check_int("n_samples", self.n_samples, r + k)
        v.check_int("n_test", self.n_test, 1)
        v.check_float("noise", self.noise, 0.0)
        v.check_float("delta", self.delta, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        v.check_int("max_iter", self.max_iter, 1)
        v.check_int("movielens_rank", self.movielens_rank, 1)
        for k in self.movielens_sparsities:
            v.check_int("movielens_sparsities[...]", k, 0)
        v.check_float("movielens_ridge", self.movielens_ridge, 0.0)
        v.check_int("movielens_max_rows", self.movielens_max_rows, 1, allow_none=True)
        v.check_choice("movielens_grouping", self.movielens_grouping, ("demographic", "user"))
        if not self.epsilons or not self.seeds:
            raise ValueError("epsilons and seeds must not be empty")
        if not self.n_tasks and self.movielens is None:
            raise ValueError("nothing to run: give n_tasks (synthetic) or a movielens folder")
        for eps in self.epsilons:
            v.check_float("epsilons[...]", eps, 0.0, low_inclusive=False)
        for t in self.n_tasks:
            v.check_int("n_tasks[...]", t, 1)
        for seed in self.seeds:
            v.check_int("seeds[...]", seed, 0)
        return self


@dataclass
class PrivacyResult:
    """Output of :func:`run_privacy`."""

    config: PrivacyConfig
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    report: dict[str, Any] | None = None
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def run_privacy(config: PrivacyConfig | None = None, output: str | Path | None = None, progress: bool = True,
                plot: bool = True) -> PrivacyResult:
    """Run the experiment; with ``output`` write ``runs.csv``, ``summary.json``, ``table.md`` and ``privacy.png``.

    Parameters
    ----------
    config : PrivacyConfig, optional
    output : str or Path, optional
        Folder for the result files (created).
    progress : bool
        Show a progress bar (tqdm).
    plot : bool
        Draw ``privacy.png`` (needs matplotlib).
    """
    c = (config or PrivacyConfig()).validate()
    folder = prepare_output(output) if output is not None else None
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    n_data = len(c.n_tasks) + (len(c.movielens_sparsities) if c.movielens is not None else 0)
    n_fits = len(c.seeds) * (len(c.epsilons) + len(REFERENCES)) * n_data
    with single_threaded_blas(), Progress(n_fits, "privacy", progress) as bar, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="epsilon=inf", category=UserWarning)
        for seed in c.seeds:
            for t in c.n_tasks:
                rows.extend(_run(c, _synthetic(c, int(t), int(seed)), int(seed), bar))
            if c.movielens is not None:
                for problem in _movielens(c, int(seed)):
                    rows.extend(_run(c, problem, int(seed), bar))
    example = next((r["report"] for r in rows if r.get("report")), None)
    for row in rows:
        row.pop("report", None)
    summary = summarise(rows)
    result = PrivacyResult(config=c, rows=rows, summary=summary, report=example,
                           seconds=time.perf_counter() - start)
    if folder is not None:
        result.files["runs"] = write_csv(rows, folder / "runs.csv")
        result.files["summary"] = write_json({"experiment": "privacy", "config": asdict(c), "summary": summary,
                                              "example_privacy_report": example, "seconds": result.seconds,
                                              "environment": environment()}, folder / "summary.json")
        table = format_privacy_table(summary, c)
        (folder / "table.md").write_text(table + "\n", encoding="utf-8")
        result.files["table"] = folder / "table.md"
        if plot:
            result.files["plot"] = plot_privacy(summary, folder / "privacy.png", c)
    return result


@dataclass(frozen=True)
class _Problem:
    """One data set of the experiment: training rows, scoring rows, bounds and what to call it."""

    dataset: str
    n_tasks: int
    X: np.ndarray
    y: np.ndarray
    tasks: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    tasks_test: np.ndarray
    signal_test: np.ndarray | None
    U_true: np.ndarray | None
    rank: int
    sparsity: int
    ridge: float
    bounds: dict[str, Any]


def _synthetic(c: PrivacyConfig, t: int, seed: int) -> _Problem:
    P = make_lrs_regression(n_tasks=t, n_samples=c.n_samples, n_features=c.n_features, rank=c.rank,
                            sparsity=c.sparsity, row_sparsity=None, noise=c.noise, random_state=seed)
    X_test, y_test, tasks_test = P.sample(c.n_test, random_state=np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    signal = np.einsum("nd,nd->n", X_test, P.theta.T[tasks_test])
    bounds = {"feature_scale": 1.0, "target_scale": math.sqrt(c.rank + c.sparsity + c.noise**2)}
    return _Problem("synthetic", t, P.X, P.y, P.tasks, X_test, y_test, tasks_test, signal, P.U, c.rank,
                    c.sparsity, 0.0, bounds)


def _movielens(c: PrivacyConfig, seed: int) -> list[_Problem]:
    from ..datasets.movielens import load_movielens
    from ..datasets.movielens_tasks import movielens_tasks

    T = movielens_tasks(load_movielens(c.movielens), grouping=c.movielens_grouping, seed=seed)
    vectors = T.factors.movie_vectors  # public side information (see module doc)
    A1 = float(np.linalg.norm(vectors, axis=1).max())
    bounds = {"clip_x": A1, "clip_y": 5.0, "clip_xb": 5.0, "clip_w": 2 * 5.0 / A1, "max_rows": c.movielens_max_rows,
              "feature_scale": float(np.sqrt(np.mean(vectors**2))), "target_scale": 3.0}
    return [_Problem(f"movielens-{c.movielens_grouping} k={k}", T.n_tasks, T.X_train, T.y_train, T.tasks_train,
                     T.X_val, T.y_val, T.tasks_val, None, None, c.movielens_rank, int(k), c.movielens_ridge, bounds)
            for k in c.movielens_sparsities]


def _run(c: PrivacyConfig, p: _Problem, seed: int, bar: Progress) -> list[dict[str, Any]]:
    fit_seed = int(np.random.SeedSequence([seed, 2]).generate_state(1)[0])  # not the data's seed (same U!)
    common = {"rank": p.rank, "sparsity": p.sparsity, "ridge": p.ridge, "random_state": fit_seed}
    fits: list[tuple[str, float, Any]] = [
        ("non_private", math.inf, LRSRegressor(**common)),
        ("clipping_only", math.inf, PrivateLRSRegressor(epsilon=math.inf, max_iter=c.max_iter, **p.bounds,
                                                        **common)),
        ("random_U", math.inf, LRSRegressor(fit_basis=False, init="random", **common)),  # a random frozen U
    ]
    # reproducible=True: the fits' seeds are recomputable (a measurement of utility, NOT a private release)
    fits += [("private", float(eps), PrivateLRSRegressor(epsilon=float(eps), delta=c.delta, max_iter=c.max_iter,
                                                         reproducible=True, **p.bounds, **common))
             for eps in c.epsilons]
    rows = []
    for method, eps, est in fits:
        start = time.perf_counter()
        est.fit(p.X, p.y, p.tasks)
        seconds = time.perf_counter() - start
        pred = est.predict(p.X_test, p.tasks_test)
        report = getattr(est, "privacy_report_", None)
        row = {"dataset": p.dataset, "n_tasks": p.n_tasks, "seed": seed, "method": method, "epsilon": eps,
               "epsilon_spent": report.epsilon if report else math.inf, "delta": c.delta if report else 0.0,
               "sigma_dp": report.sigma_dp if report else 0.0,
               "test_rmse": float(np.sqrt(np.mean((pred - p.y_test) ** 2))),
               "excess_rmse": (float(np.sqrt(np.mean((pred - p.signal_test) ** 2)))
                               if p.signal_test is not None else math.nan),
               "subspace_error": (float(np.linalg.norm(p.U_true - est.U_ @ (est.U_.T @ p.U_true))
                                        / math.sqrt(p.U_true.shape[1])) if p.U_true is not None else math.nan),
               "seconds": seconds, "report": report.to_dict() if report else None}
        rows.append(row)
        bar.update(f"{p.dataset} t={p.n_tasks} {method} eps={eps:g}")
    return rows


def _key(row: dict[str, Any]) -> tuple[str, int, str, float]:
    return row["dataset"], row["n_tasks"], row["method"], row["epsilon"]


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spread over seeds of the test RMSE, excess RMSE and subspace error per (dataset, t, method, ε)."""
    groups: dict[tuple[str, int, str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_key(row), []).append(row)
    out = []
    for (dataset, t, method, eps), runs in sorted(groups.items()):
        out.append({"dataset": dataset, "n_tasks": t, "method": method, "epsilon": eps,
                    "epsilon_spent": max(r["epsilon_spent"] for r in runs),
                    "test_rmse": spread(r["test_rmse"] for r in runs),
                    "excess_rmse": spread(r["excess_rmse"] for r in runs),
                    "subspace_error": spread(r["subspace_error"] for r in runs)})
    return out


def _columns(c: PrivacyConfig) -> list[tuple[str, float]]:
    return [("private", float(e)) for e in c.epsilons] + [(m, math.inf) for m in REFERENCES]


def format_privacy_table(summary: list[dict[str, Any]], config: PrivacyConfig) -> str:
    """Markdown table: one row per (dataset, t), test RMSE (mean over seeds) per ε and per reference."""
    by = {_key(s): s for s in summary}
    cols = _columns(config)
    head = ["data", "users t"] + [f"ε={e:g}" if m == "private" else m.replace("_", " ") for m, e in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dataset, t in sorted({(s["dataset"], s["n_tasks"]) for s in summary}, key=lambda x: (x[0] != "synthetic", x)):
        cells = [dataset, f"{t:,}"]
        for method, eps in cols:
            s = by.get((dataset, t, method, eps))
            cells.append("" if s is None else f"{s['test_rmse']['mean']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_privacy(summary: list[dict[str, Any]], path: Path, config: PrivacyConfig) -> Path:
    """Test RMSE against ε (log x axis): one panel for the synthetic data (a line per ``t``) and one for MovieLens
    (a line per ``k``); bars are min..max over seeds, references are horizontal lines of the line's colour."""
    plt = pyplot()
    panels = sorted({s["dataset"].split(" ")[0] for s in summary}, key=lambda x: (x != "synthetic", x))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.4 * len(panels), 4.0), squeeze=False)
    eps = np.array(sorted(config.epsilons), dtype=float)
    for ax, panel in zip(axes[0], panels, strict=True):
        lines = sorted({(s["dataset"], s["n_tasks"]) for s in summary if s["dataset"].split(" ")[0] == panel})
        for i, (dataset, t) in enumerate(lines):
            color = f"C{i}"
            mine = {(s["method"], s["epsilon"]): s["test_rmse"] for s in summary
                    if s["dataset"] == dataset and s["n_tasks"] == t}
            y = np.array([mine[("private", e)]["mean"] for e in eps])
            lo = y - np.array([mine[("private", e)]["min"] for e in eps])
            hi = np.array([mine[("private", e)]["max"] for e in eps]) - y
            label = f"t = {t:,} users" if panel == "synthetic" else f"{dataset.split(' ', 1)[1]}, {t:,} tasks"
            ax.errorbar(eps, y, yerr=[lo, hi], color=color, marker="o", capsize=3, label=f"private, {label}")
            ax.axhline(mine[("non_private", math.inf)]["mean"], color=color, linestyle="--", linewidth=1)
            ax.axhline(mine[("random_U", math.inf)]["mean"], color=color, linestyle=":", linewidth=1)
        ax.plot([], [], "k--", linewidth=1, label="no privacy")
        ax.plot([], [], "k:", linewidth=1, label="random U (no shared learning)")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(eps)
        ax.set_xticklabels([f"{e:g}" for e in eps])
        ax.set_xlabel(f"ε (δ = {config.delta:g}, L = {config.max_iter} iterations)")
        if panel == "synthetic":
            ax.set_ylabel("test RMSE")
            ax.set_title(f"synthetic: d={config.n_features}, r={config.rank}, k={config.sparsity}, "
                         f"m={config.n_samples}, σ={config.noise:g}", fontsize=9)
        else:
            ax.set_ylabel("validation RMSE")
            ax.set_title(f"{panel}: d=50 movie vectors, r={config.movielens_rank}", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("user-level DP AMHT-LRS: utility against the privacy budget (mean over seeds, bars min..max)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

"""Generalisation to new tasks (SPEC §5, the paper's Algorithm 6 and its excess-risk bound).

AMHT-LRS learns ``U`` from ``t`` training tasks; a task never seen in training then fits only its ``r + k``
parameters ``(w, b)`` from ``m`` rows, with ``U`` fixed (:meth:`lorsa.LRSRegressor.adapt_tasks`). The paper bounds
the excess risk of such a task by ``O(sigma^2 (r + k) / m)``, against ``sigma^2 d / m`` for least squares on the
task alone. This experiment measures both as a function of ``m``:

- data: :func:`lorsa.make_lrs_regression` with ``t_train + t_new`` tasks sharing ``U``; the last ``t_new`` tasks are
  never used in training, their rows are drawn fresh for every ``m``;
- excess risk of a new task: ``E_x[(<x, theta_hat> - <x, theta>)^2] = ||theta_hat - theta||^2`` exactly, because
  ``x ~ N(0, I)``; reported as the mean over the new tasks (and its spread over seeds);
- methods: ``adapt`` (AMHT-LRS's per-task step against the learned ``U``) and per-task ``least_squares``
  (minimum-norm interpolation when ``m < d``, :func:`lorsa.baselines.per_task_ridge` with ``lambda = 0``);
- references: ``sigma^2 (r + k) / m`` and ``sigma^2 d / m``.

Results go to ``runs.csv``, ``summary.json``, ``table.md`` and ``generalization.png`` in the output folder.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _validation as v
from ..baselines.finetune import per_task_ridge
from ..datasets.synthetic import make_lrs_regression
from ..model import LRSRegressor
from ._common import Progress, environment, prepare_output, pyplot, single_threaded_blas, spread, write_csv, write_json

__all__ = ["GeneralizationConfig", "GeneralizationResult", "run_generalization", "format_generalization_table",
           "format_generalization_markdown", "plot_generalization"]


@dataclass(frozen=True)
class GeneralizationConfig:
    """Settings of the new-task experiment.

    Attributes
    ----------
    n_features, rank, sparsity : int
        ``d, r, k``.
    n_train_tasks, n_train_samples : int
        Training tasks ``t`` and rows per training task.
    n_new_tasks : int
        New tasks adapted for every ``m``.
    new_samples : tuple of int
        The ``m`` values (rows per new task), each ``>= r + k``.
    noise : float
        ``sigma > 0``.
    seeds : tuple of int
        One data set and fit per seed.
    max_iter : int
        Cap on AMHT-LRS iterations (training) and per-task passes (adaptation).
    """

    n_features: int = 50
    rank: int = 2
    sparsity: int = 3
    n_train_tasks: int = 1000
    n_train_samples: int = 50
    n_new_tasks: int = 100
    new_samples: tuple[int, ...] = (8, 12, 20, 30, 40, 75, 100, 200, 400)
    noise: float = 0.5
    seeds: tuple[int, ...] = (0, 1, 2)
    max_iter: int = 100

    def validate(self) -> GeneralizationConfig:
        """Check every field (messages name the field, the allowed range and the value)."""
        d = v.check_int("n_features", self.n_features, 2)
        r = v.check_int("rank", self.rank, 1, d - 1)
        k = v.check_int("sparsity", self.sparsity, 0, d)
        v.check_int("n_train_tasks", self.n_train_tasks, 1)
        v.check_int("n_train_samples", self.n_train_samples, 1)
        v.check_int("n_new_tasks", self.n_new_tasks, 1)
        v.check_float("noise", self.noise, 0.0, low_inclusive=False)
        v.check_int("max_iter", self.max_iter, 1)
        if not self.new_samples or not self.seeds:
            raise ValueError("new_samples and seeds must not be empty")
        for m in self.new_samples:
            v.check_int("new_samples[...]", m, r + k)
        for seed in self.seeds:
            v.check_int("seeds[...]", seed, 0)
        return self


@dataclass
class GeneralizationResult:
    """Output of :func:`run_generalization`."""

    config: GeneralizationConfig
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def run_generalization(config: GeneralizationConfig | None = None, output: str | Path | None = None,
                       progress: bool = True, plot: bool = True) -> GeneralizationResult:
    """Run the new-task experiment; with ``output`` write ``runs.csv``, ``summary.json`` and
    ``generalization.png`` there.

    Parameters
    ----------
    config : GeneralizationConfig, optional
    output : str or Path, optional
        Folder for the result files (created).
    progress : bool
        Show a progress bar (tqdm).
    plot : bool
        Draw ``generalization.png`` (needs matplotlib).
    """
    config = (config or GeneralizationConfig()).validate()
    folder = prepare_output(output) if output is not None else None
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with single_threaded_blas(), Progress(len(config.seeds) * (1 + len(config.new_samples)), "new tasks",
                                          progress) as bar:
        for seed in config.seeds:
            rows.extend(_run_seed(config, int(seed), bar))
    summary = summarise(rows)
    result = GeneralizationResult(config=config, rows=rows, summary=summary, seconds=time.perf_counter() - start)
    if folder is not None:
        result.files["runs"] = write_csv(rows, folder / "runs.csv")
        result.files["summary"] = write_json({"experiment": "generalization", "config": asdict(config),
                                              "summary": summary, "seconds": result.seconds,
                                              "environment": environment()}, folder / "summary.json")
        (folder / "table.md").write_text(format_generalization_markdown(summary, config), encoding="utf-8")
        result.files["table"] = folder / "table.md"
        if plot:
            result.files["plot"] = plot_generalization(summary, folder / "generalization.png", config)
    return result


def _run_seed(config: GeneralizationConfig, seed: int, bar: Progress) -> list[dict[str, Any]]:
    c = config
    t, t_new, d = c.n_train_tasks, c.n_new_tasks, c.n_features
    sizes = np.r_[np.full(t, c.n_train_samples), np.ones(t_new, dtype=np.int64)].astype(np.int64)
    P = make_lrs_regression(n_tasks=t + t_new, n_samples=sizes, n_features=d, rank=c.rank, sparsity=c.sparsity,
                            row_sparsity=None, noise=c.noise, random_state=seed)
    train = P.tasks < t
    fit_rng, new_rng = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, 5]).spawn(2))
    est = LRSRegressor(rank=c.rank, sparsity=c.sparsity, max_iter=c.max_iter,
                       random_state=int(fit_rng.integers(2**31 - 1)))
    est.fit(P.X[train], P.y[train], tasks=P.tasks[train])
    bar.update(f"seed={seed} trained U")
    subspace_error = float(np.linalg.norm(est.U_ - P.U @ (P.U.T @ est.U_)))
    theta_new = P.theta[:, t:]
    rows = []
    for m in c.new_samples:
        labels = np.repeat(np.arange(t_new), m)
        X = new_rng.standard_normal((labels.size, d))
        y = np.einsum("nd,nd->n", X, theta_new.T[labels]) + c.noise * new_rng.standard_normal(labels.size)
        _, W, B = est.adapt_tasks(X, y, labels, max_iter=c.max_iter)
        fits = {"adapt": est.U_ @ W.T + B.toarray(),
                "least_squares": per_task_ridge(X, y, labels, t_new, 0.0).T}
        for method, theta_hat in fits.items():
            risk = np.sum((theta_hat - theta_new) ** 2, axis=0)
            rows.append({"seed": seed, "m": int(m), "method": method, "excess_risk": float(risk.mean()),
                         "excess_risk_median": float(np.median(risk)),
                         "rate_r_plus_k": c.noise**2 * (c.rank + c.sparsity) / m, "rate_d": c.noise**2 * d / m,
                         "subspace_error": subspace_error})
        bar.update(f"seed={seed} m={m}")
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spread over seeds of the mean excess risk, per (method, m), with the two reference rates."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["m"]), []).append(row)
    out = []
    for (method, m), runs in sorted(groups.items()):
        risk = spread(r["excess_risk"] for r in runs)
        out.append({"method": method, "m": m, "excess_risk": risk, "rate_r_plus_k": runs[0]["rate_r_plus_k"],
                    "rate_d": runs[0]["rate_d"], "ratio_to_rate_r_plus_k": risk["mean"] / runs[0]["rate_r_plus_k"],
                    "subspace_error": spread(r["subspace_error"] for r in runs)["mean"]})
    return out


def format_generalization_table(summary: list[dict[str, Any]]) -> str:
    """Plain-text table: ``m``, excess risk of adapt and of least squares, and the two rates."""
    by = {(s["method"], s["m"]): s for s in summary}
    ms = sorted({s["m"] for s in summary})
    lines = [f"{'m':>5}  {'adapt (mean ± sd)':>22}  {'least squares':>12}  {'σ²(r+k)/m':>10}  {'σ²d/m':>10}  "
             f"{'adapt / σ²(r+k)/m':>17}"]
    for m in ms:
        a, ls = by[("adapt", m)], by[("least_squares", m)]
        lines.append(f"{m:>5}  {a['excess_risk']['mean']:>10.3e} ± {a['excess_risk']['std']:<9.1e}  "
                     f"{ls['excess_risk']['mean']:>12.3e}  {a['rate_r_plus_k']:>10.3e}  {a['rate_d']:>10.3e}  "
                     f"{a['ratio_to_rate_r_plus_k']:>17.2f}")
    return "\n".join(lines)


def format_generalization_markdown(summary: list[dict[str, Any]], config: GeneralizationConfig) -> str:
    """The table of :func:`format_generalization_table` in Markdown (what the README shows)."""
    by = {(s["method"], s["m"]): s for s in summary}
    lines = [f"| m | adapt: excess risk, mean ± sd over {len(config.seeds)} seed(s) | per-task least squares | "
             "σ²(r+k)/m | σ²d/m | adapt / σ²(r+k)/m |", "|---|---|---|---|---|---|"]
    for m in sorted({s["m"] for s in summary}):
        a, ls = by[("adapt", m)], by[("least_squares", m)]
        lines.append(f"| {m} | {a['excess_risk']['mean']:.3e} ± {a['excess_risk']['std']:.1e} | "
                     f"{ls['excess_risk']['mean']:.3e} | {a['rate_r_plus_k']:.3e} | {a['rate_d']:.3e} | "
                     f"{a['ratio_to_rate_r_plus_k']:.2f} |")
    return "\n".join(lines) + "\n"


def plot_generalization(summary: list[dict[str, Any]], path: Path, config: GeneralizationConfig) -> Path:
    """Excess risk against ``m`` (log-log): adapt and least squares (bars: min..max over seeds) beside the rates."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    styles = {"adapt": ("AMHT-LRS adapt (U learned, r + k fitted)", "C3", "o"),
              "least_squares": ("per-task least squares (d fitted)", "C0", "s")}
    for method, (label, color, marker) in styles.items():
        items = [s for s in summary if s["method"] == method]
        m = np.array([s["m"] for s in items], dtype=float)
        y = np.array([s["excess_risk"]["mean"] for s in items])
        lo = y - np.array([s["excess_risk"]["min"] for s in items])
        hi = np.array([s["excess_risk"]["max"] for s in items]) - y
        ax.errorbar(m, y, yerr=[lo, hi], label=label, color=color, marker=marker, capsize=3)
    ms = np.array(sorted({s["m"] for s in summary}), dtype=float)
    s2 = config.noise**2
    ax.plot(ms, s2 * (config.rank + config.sparsity) / ms, "k--", label="σ²(r+k)/m")
    ax.plot(ms, s2 * config.n_features / ms, "k:", label="σ²d/m")
    ax.axvline(config.n_features, color="gray", linewidth=0.8, alpha=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("m, rows of the new task")
    ax.set_ylabel("excess risk  ||θ̂ − θ||²")
    ax.set_title(f"new tasks: d={config.n_features}, r={config.rank}, k={config.sparsity}, σ={config.noise:g}, "
                 f"{config.n_train_tasks} training tasks", fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

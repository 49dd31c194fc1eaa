"""Sample complexity: phase diagrams of exact recovery against the theory (SPEC §2, the paper's Theorem 1).

Theorem 1 says AMHT-LRS recovers ``Theta* = U* W*^T + B*`` exactly (noiseless) from ``m = Omega(max(k, r^3))``
samples per task and ``m t = Omega(k d r^4)`` in all. The information-theoretic count is ``r + k`` unknowns per
task plus ``r (d - r)`` for the subspace, so no method can succeed below ``m t >= t (r + k) + r (d - r)``. This
experiment measures where the software stands between the two:

- data: :func:`lorsa.make_lrs_regression` (``x ~ N(0, I)``, noiseless, no row-sparsity limit), one data set per
  (cell, seed), the same for every solver;
- success: relative parameter error ``||U W^T + B - Theta*||_F / ||Theta*||_F <= 1e-6`` (``success_tol``);
- two grids at fixed ``d, r``: ``(m, t)`` at a fixed ``k``, and ``(m, k)`` at a fixed ``t``;
- solvers: ``LRSRegressor``'s default per-task step (``"sp"``: subspace pursuit with the exchange step and restarts
  of stuck tasks), the paper's alternation (``"iht"``: IHT on ``b_i`` with ``w_i`` fixed, then least squares for
  ``w_i``) and hard thresholding pursuit (``"htp"``), everything else at the estimator's defaults;
- the 95 % boundary of a solver at a given ``t`` (or ``k``): the smallest ``m`` of the grid from which on every
  larger ``m`` of the grid succeeds on at least 95 % of the seeds (with 5 seeds: all of them).

Results: ``runs.csv`` (one row per fit), ``summary.json`` (success rates per cell, boundaries, configuration),
``table.md`` and ``phase_mt.png`` / ``phase_mk.png`` (heatmaps of the success rate with the theory's scaling
curves ``m = max(k, r^3)`` and ``m = k d r^4 / t`` — constants unknown, drawn with C = 1 — the parameter count
``m = r + k + r (d - r) / t`` and each solver's 95 % boundary).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _validation as v
from ..datasets.synthetic import make_lrs_regression
from ..model import LRSRegressor
from ._common import Progress, environment, prepare_output, pyplot, single_threaded_blas, write_csv, write_json

__all__ = ["PhaseConfig", "PhaseResult", "run_phase", "boundaries", "format_phase_table", "plot_phase",
           "SOLVER_LABELS"]

SOLVER_LABELS = {"sp": "default (subspace pursuit + exchanges + restarts)", "htp": "hard thresholding pursuit",
                 "iht": "paper's IHT alternation"}


@dataclass(frozen=True)
class PhaseConfig:
    """Settings of the phase-diagram experiment.

    Attributes
    ----------
    n_features, rank : int
        ``d, r`` (fixed for both grids).
    sparsity : int
        ``k`` of the ``(m, t)`` grid.
    n_tasks : int
        ``t`` of the ``(m, k)`` grid.
    samples : tuple of int
        The ``m`` values (rows per task), both grids.
    task_grid : tuple of int
        The ``t`` values of the ``(m, t)`` grid.
    sparsity_grid : tuple of int
        The ``k`` values of the ``(m, k)`` grid.
    grids : tuple of {"mt", "mk"}
    solvers : tuple of {"sp", "htp", "iht"}
    seeds : tuple of int
    max_iter : int
        Cap on AMHT-LRS iterations (every solver).
    success_tol : float
        Relative parameter error counted as exact recovery.
    level : float
        Success rate defining the boundary.
    """

    n_features: int = 20
    rank: int = 2
    sparsity: int = 2
    n_tasks: int = 300
    samples: tuple[int, ...] = (6, 8, 10, 12, 14, 16, 20, 25, 30, 40, 50)
    task_grid: tuple[int, ...] = (50, 100, 300, 1000)
    sparsity_grid: tuple[int, ...] = (1, 2, 3, 4)
    grids: tuple[str, ...] = ("mt", "mk")
    solvers: tuple[str, ...] = ("sp", "htp", "iht")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    max_iter: int = 100
    success_tol: float = 1e-6
    level: float = 0.95

    def validate(self) -> PhaseConfig:
        """Check every field (messages name the field, the allowed range and the value)."""
        d = v.check_int("n_features", self.n_features, 3)
        r = v.check_int("rank", self.rank, 1, d - 1)
        v.check_int("sparsity", self.sparsity, 1, d)
        v.check_int("n_tasks", self.n_tasks, 1)
        v.check_int("max_iter", self.max_iter, 1)
        v.check_float("success_tol", self.success_tol, 0.0, low_inclusive=False)
        v.check_float("level", self.level, 0.0, 1.0, low_inclusive=False)
        for name in ("samples", "task_grid", "sparsity_grid", "grids", "solvers", "seeds"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        for m in self.samples:
            v.check_int("samples[...]", m, r + 1)
        for t in self.task_grid:
            v.check_int("task_grid[...]", t, 1)
        for k in self.sparsity_grid:
            v.check_int("sparsity_grid[...]", k, 1, d)
        for grid in self.grids:
            v.check_choice("grids[...]", grid, ("mt", "mk"))
        for solver in self.solvers:
            v.check_choice("solvers[...]", solver, tuple(SOLVER_LABELS))
        for seed in self.seeds:
            v.check_int("seeds[...]", seed, 0)
        return self

    def cells(self) -> list[tuple[str, int, int, int]]:
        """Every ``(grid, m, t, k)`` to run."""
        out = []
        for grid in self.grids:
            for m in sorted(self.samples):
                if grid == "mt":
                    out += [("mt", m, t, self.sparsity) for t in sorted(self.task_grid)]
                else:
                    out += [("mk", m, self.n_tasks, k) for k in sorted(self.sparsity_grid)]
        return out


@dataclass
class PhaseResult:
    """Output of :func:`run_phase`."""

    config: PhaseConfig
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    boundaries: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def run_phase(config: PhaseConfig | None = None, output: str | Path | None = None, progress: bool = True,
              plot: bool = True) -> PhaseResult:
    """Run the phase diagrams; with ``output`` write ``runs.csv``, ``summary.json``, ``table.md`` and the PNGs.

    Parameters
    ----------
    config : PhaseConfig, optional
    output : str or Path, optional
        Folder for the result files (created).
    progress : bool
        Show a progress bar (tqdm) over the fits.
    plot : bool
        Draw the heatmaps (needs matplotlib).
    """
    config = (config or PhaseConfig()).validate()
    folder = prepare_output(output) if output is not None else None
    start = time.perf_counter()
    cells = config.cells()
    rows: list[dict[str, Any]] = []
    with single_threaded_blas(), Progress(len(cells) * len(config.seeds) * len(config.solvers), "phase",
                                          progress) as bar:
        for grid, m, t, k in cells:
            for seed in config.seeds:
                rows.extend(_run_cell(config, grid, m, t, k, int(seed), bar))
    summary = summarise(rows, config.level)
    bounds = boundaries(summary, config)
    result = PhaseResult(config=config, rows=rows, summary=summary, boundaries=bounds,
                         seconds=time.perf_counter() - start)
    if folder is not None:
        result.files["runs"] = write_csv(rows, folder / "runs.csv")
        result.files["summary"] = write_json({"experiment": "phase", "config": asdict(config), "summary": summary,
                                              "boundaries": bounds, "seconds": result.seconds,
                                              "environment": environment()}, folder / "summary.json")
        (folder / "table.md").write_text(format_phase_table(bounds, config), encoding="utf-8")
        result.files["table"] = folder / "table.md"
        if plot:
            for grid in config.grids:
                result.files[f"plot_{grid}"] = plot_phase(summary, bounds, config, grid, folder / f"phase_{grid}.png")
    return result


def _run_cell(config: PhaseConfig, grid: str, m: int, t: int, k: int, seed: int, bar: Progress
              ) -> list[dict[str, Any]]:
    d, r = config.n_features, config.rank
    # one data set per (cell, seed), shared by the solvers; the seed also depends on the cell
    data_seed = int(np.random.SeedSequence([seed, m, t, k, d, r]).generate_state(1)[0])
    P = make_lrs_regression(n_tasks=t, n_samples=m, n_features=d, rank=r, sparsity=k, row_sparsity=None, noise=0.0,
                            random_state=data_seed)
    theta = P.theta
    norm = float(np.linalg.norm(theta))
    rows = []
    for solver in config.solvers:
        started = time.perf_counter()
        est = LRSRegressor(rank=r, sparsity=k, solver=solver, max_iter=config.max_iter, random_state=seed)
        est.fit(P.X, P.y, tasks=P.tasks)
        error = float(np.linalg.norm(est.U_ @ est.W_.T + est.B_.toarray() - theta) / norm)
        rows.append({"grid": grid, "m": m, "t": t, "k": k, "d": d, "r": r, "seed": seed, "solver": solver,
                     "relative_error": error, "success": bool(error <= config.success_tol),
                     "n_iter": int(est.n_iter_), "seconds": time.perf_counter() - started})
        bar.update(f"{grid} m={m} t={t} k={k} {solver}")
    return rows


def summarise(rows: list[dict[str, Any]], level: float) -> list[dict[str, Any]]:
    """Success rate (and median error) per (grid, solver, m, t, k)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["grid"], row["solver"], row["m"], row["t"], row["k"]), []).append(row)
    out = []
    for (grid, solver, m, t, k), runs in sorted(groups.items()):
        rate = float(np.mean([r["success"] for r in runs]))
        out.append({"grid": grid, "solver": solver, "m": m, "t": t, "k": k, "n_seeds": len(runs),
                    "success_rate": rate, "reliable": bool(rate >= level),
                    "median_error": float(np.median([r["relative_error"] for r in runs]))})
    return out


def boundaries(summary: list[dict[str, Any]], config: PhaseConfig) -> list[dict[str, Any]]:
    """The 95 % boundary per (grid, solver, t or k): the smallest ``m`` from which on every ``m`` of the grid is
    reliable (None when even the largest is not), beside the parameter count and Theorem 1's curves (C = 1)."""
    d, r = config.n_features, config.rank
    out = []
    for grid in config.grids:
        axis = "t" if grid == "mt" else "k"
        for solver in config.solvers:
            items = [s for s in summary if s["grid"] == grid and s["solver"] == solver]
            for value in sorted({s[axis] for s in items}):
                column = sorted((s for s in items if s[axis] == value), key=lambda s: s["m"])
                boundary = None
                for s in reversed(column):
                    if not s["reliable"]:
                        break
                    boundary = s["m"]
                t = value if grid == "mt" else config.n_tasks
                k = config.sparsity if grid == "mt" else value
                out.append({"grid": grid, "solver": solver, "t": t, "k": k, "boundary_m": boundary,
                            "counting_bound_m": r + k + r * (d - r) / t,
                            "theorem_m_C1": max(k, r**3, k * d * r**4 / t)})
    return out


def format_phase_table(bounds: list[dict[str, Any]], config: PhaseConfig) -> str:
    """Markdown: 95 % boundary ``m`` per solver at every ``t`` (and ``k``), beside the two references."""
    lines = []
    for grid in config.grids:
        axis = "t" if grid == "mt" else "k"
        fixed = f"k = {config.sparsity}" if grid == "mt" else f"t = {config.n_tasks}"
        values = sorted({b[axis] for b in bounds if b["grid"] == grid})
        lines.append(f"95 % boundary m (d = {config.n_features}, r = {config.rank}, {fixed}, "
                     f"{len(config.seeds)} seeds; '>{max(config.samples)}': not reached on the grid)\n")
        lines.append("| solver | " + " | ".join(f"{axis} = {x}" for x in values) + " |")
        lines.append("|---|" + "---|" * len(values))
        for solver in config.solvers:
            cells = []
            for x in values:
                b = next(b for b in bounds if b["grid"] == grid and b["solver"] == solver and b[axis] == x)
                cells.append(str(b["boundary_m"]) if b["boundary_m"] is not None else f">{max(config.samples)}")
            lines.append(f"| {SOLVER_LABELS[solver]} | " + " | ".join(cells) + " |")
        ref = {x: next(b for b in bounds if b["grid"] == grid and b[axis] == x) for x in values}
        lines.append("| parameter count r + k + r(d - r)/t | "
                     + " | ".join(f"{ref[x]['counting_bound_m']:.1f}" for x in values) + " |")
        lines.append("| Theorem 1, C = 1: max(k, r³, k d r⁴ / t) | "
                     + " | ".join(f"{ref[x]['theorem_m_C1']:.1f}" for x in values) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_phase(summary: list[dict[str, Any]], bounds: list[dict[str, Any]], config: PhaseConfig, grid: str,
               path: Path) -> Path:
    """Heatmaps of the success rate (one panel per solver), ``m`` up, ``t`` or ``k`` across, with the curves."""
    plt = pyplot()
    axis = "t" if grid == "mt" else "k"
    ms = sorted(config.samples)
    xs = sorted(config.task_grid) if grid == "mt" else sorted(config.sparsity_grid)
    d, r = config.n_features, config.rank
    fig, axes = plt.subplots(1, len(config.solvers), figsize=(4.2 * len(config.solvers), 4.2), squeeze=False)
    fine = np.linspace(0, len(xs) - 1, 200)
    x_fine = np.interp(fine, np.arange(len(xs)), xs)
    t_fine = x_fine if grid == "mt" else np.full_like(x_fine, config.n_tasks)
    k_fine = np.full_like(x_fine, config.sparsity) if grid == "mt" else x_fine

    def m_index(values: np.ndarray) -> np.ndarray:  # m values -> row coordinates (linear between grid rows)
        return np.interp(values, ms, np.arange(len(ms)), left=-0.5, right=len(ms) - 0.5)

    image = None
    for ax, solver in zip(axes[0], config.solvers, strict=True):
        rate = np.full((len(ms), len(xs)), np.nan)
        for s in summary:
            if s["grid"] == grid and s["solver"] == solver:
                rate[ms.index(s["m"]), xs.index(s[axis])] = s["success_rate"]
        image = ax.imshow(rate, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.plot(fine, m_index(r + k_fine + r * (d - r) / t_fine), "w--", linewidth=1.5,
                label="parameter count r+k+r(d−r)/t")
        ax.plot(fine, m_index(np.maximum(np.maximum(k_fine, r**3), k_fine * d * r**4 / t_fine)), "r:",
                linewidth=1.8, label="Theorem 1 (C = 1): max(k, r³, kdr⁴/t)")
        bx = [xs.index(b[axis]) for b in bounds if b["grid"] == grid and b["solver"] == solver
              and b["boundary_m"] is not None]
        by = [ms.index(b["boundary_m"]) for b in bounds if b["grid"] == grid and b["solver"] == solver
              and b["boundary_m"] is not None]
        ax.plot(bx, by, "o-", color="orange", markersize=4, label=f"{config.level:.0%} boundary")
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])
        ax.set_yticks(range(len(ms)), [str(m) for m in ms])
        ax.set_xlabel("t, tasks" if grid == "mt" else "k, sparse weights per task")
        ax.set_ylabel("m, samples per task")
        ax.set_title(SOLVER_LABELS[solver], fontsize=8)
        ax.set_ylim(-0.5, len(ms) - 0.5)
    axes[0][0].legend(fontsize=6, loc="upper right")
    fixed = f"k={config.sparsity}" if grid == "mt" else f"t={config.n_tasks}"
    fig.suptitle(f"exact recovery rate (rel. error ≤ {config.success_tol:g}, {len(config.seeds)} seeds): "
                 f"d={d}, r={r}, {fixed}, noiseless", fontsize=9)
    fig.colorbar(image, ax=axes[0].tolist(), fraction=0.02, pad=0.01)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path

"""``lorsa reproduce phase``: exact-recovery phase diagrams against Theorem 1 (:mod:`lorsa.experiments.phase`)."""

from __future__ import annotations

import argparse

from ._common import add_quiet, nonnegative_int, positive_int, say

HELP = "sample complexity: exact-recovery rate over (m, t) and (m, k) for three solvers, beside Theorem 1"
DESCRIPTION = (
    "Phase diagrams of exact recovery (relative parameter error <= 1e-6, noiseless) over grids of (m, t) at a fixed "
    "k and of (m, k) at a fixed t, for LRSRegressor's default per-task solver, the paper's IHT alternation and hard "
    "thresholding pursuit, several seeds per cell. Heatmaps show the theory's scaling curves (Theorem 1, constants "
    "unknown, drawn with C = 1) and the parameter-counting bound m t >= t (r + k) + r (d - r). Writes runs.csv, "
    "summary.json (success rates, 95%% boundaries), table.md, phase_mt.png and phase_mk.png."
)

QUICK = {"samples": [8, 16, 30], "task_grid": [100, 300], "sparsity_grid": [1, 2], "n_seeds": 2}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default="lorsa-results/phase", metavar="DIR",
                        help="folder for the result files (created if missing; files in it are overwritten)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                        help="first seed: cells use seeds N, ..., N+n_seeds-1")
    parser.add_argument("--n-seeds", type=positive_int, default=None, metavar="S",
                        help="seeds per cell (default 5; 2 with --quick)")
    parser.add_argument("--features", type=positive_int, default=20, metavar="D", help="dimension d of x")
    parser.add_argument("--rank", type=positive_int, default=2, metavar="R", help="rank r (generated and fitted)")
    parser.add_argument("--sparsity", type=positive_int, default=2, metavar="K", help="k of the (m, t) grid")
    parser.add_argument("--tasks", type=positive_int, default=300, metavar="T", help="t of the (m, k) grid")
    parser.add_argument("--samples", type=positive_int, nargs="+", default=None, metavar="M",
                        help="m values, rows per task (default 6 8 10 12 14 16 20 25 30 40 50)")
    parser.add_argument("--task-grid", type=positive_int, nargs="+", default=None, metavar="T",
                        help="t values of the (m, t) grid (default 50 100 300 1000)")
    parser.add_argument("--sparsity-grid", type=positive_int, nargs="+", default=None, metavar="K",
                        help="k values of the (m, k) grid (default 1 2 3 4)")
    parser.add_argument("--grids", nargs="+", choices=["mt", "mk"], default=["mt", "mk"],
                        help="which grids to run")
    parser.add_argument("--solvers", nargs="+", choices=["sp", "htp", "iht"], default=["sp", "htp", "iht"],
                        help="per-task solvers: the default (sp), hard thresholding pursuit, the paper's IHT")
    parser.add_argument("--max-iter", type=positive_int, default=100, metavar="L", help="cap on AMHT-LRS iterations")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced grid (m 8 16 30, t 100 300, k 1 2, 2 seeds) unless given explicitly")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the PNG heatmaps")
    add_quiet(parser)


def run(args: argparse.Namespace) -> int:
    from ..experiments.phase import PhaseConfig, format_phase_table, run_phase

    base = PhaseConfig()
    quick = QUICK if args.quick else {}
    n_seeds = args.n_seeds or quick.get("n_seeds", len(base.seeds))
    config = PhaseConfig(
        n_features=args.features, rank=args.rank, sparsity=args.sparsity, n_tasks=args.tasks,
        samples=tuple(args.samples or quick.get("samples", base.samples)),
        task_grid=tuple(args.task_grid or quick.get("task_grid", base.task_grid)),
        sparsity_grid=tuple(args.sparsity_grid or quick.get("sparsity_grid", base.sparsity_grid)),
        grids=tuple(args.grids), solvers=tuple(args.solvers), seeds=tuple(range(args.seed, args.seed + n_seeds)),
        max_iter=args.max_iter).validate()
    say(args, f"phase: d={config.n_features}, r={config.rank}, m in {list(config.samples)}, "
              f"t in {list(config.task_grid)} (k={config.sparsity}), k in {list(config.sparsity_grid)} "
              f"(t={config.n_tasks}), solvers {list(config.solvers)}, seeds {list(config.seeds)}")
    result = run_phase(config, args.output, progress=not args.quiet, plot=not args.no_plot)
    print(format_phase_table(result.boundaries, config))
    say(args, f"done in {result.seconds:.1f} s; results in {args.output}/: "
              + ", ".join(p.name for p in result.files.values()))
    return 0

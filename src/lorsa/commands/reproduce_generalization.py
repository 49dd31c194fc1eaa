"""``lorsa reproduce generalization``: excess risk of new tasks against m (:mod:`lorsa.experiments.generalization`)."""

from __future__ import annotations

import argparse

from ._common import add_quiet, nonnegative_int, positive_int, say

HELP = "new tasks: excess risk of adapt vs m beside sigma^2 (r+k)/m and per-task least squares' sigma^2 d/m"
DESCRIPTION = (
    "Generalisation to new tasks (SPEC §5): learn U with AMHT-LRS on training tasks, then fit tasks never seen in "
    "training from m rows each with U fixed (adapt), and measure their excess risk ||theta_hat - theta||^2 against "
    "m, beside per-task least squares and the rates sigma^2 (r+k)/m and sigma^2 d/m. Writes runs.csv, summary.json, "
    "table.md and generalization.png to the output folder."
)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default="lorsa-results/generalization", metavar="DIR",
                        help="folder for the result files (created if missing; files in it are overwritten)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                        help="first seed: runs use seeds N, ..., N+n_seeds-1 (data, new tasks' rows, fits)")
    parser.add_argument("--n-seeds", type=positive_int, default=3, metavar="S",
                        help="number of seeds; the spread over them is shown")
    parser.add_argument("--noise", type=_positive_float, default=0.5, metavar="SIGMA",
                        help="noise standard deviation sigma (> 0: the excess risk scales with sigma^2)")
    parser.add_argument("--samples", type=positive_int, nargs="+", default=[8, 12, 20, 30, 40, 75, 100, 200, 400],
                        metavar="M", help="rows per new task, one point each (each >= rank + sparsity)")
    parser.add_argument("--features", type=positive_int, default=50, metavar="D", help="dimension d of x")
    parser.add_argument("--rank", type=positive_int, default=2, metavar="R", help="rank r of U (generated and fitted)")
    parser.add_argument("--sparsity", type=nonnegative_int, default=3, metavar="K",
                        help="non-zeros k of each b_i (generated and fitted)")
    parser.add_argument("--train-tasks", type=positive_int, default=1000, metavar="T",
                        help="training tasks used to learn U")
    parser.add_argument("--train-samples", type=positive_int, default=50, metavar="M",
                        help="rows per training task")
    parser.add_argument("--new-tasks", type=positive_int, default=100, metavar="T",
                        help="new (held-out) tasks adapted for every m")
    parser.add_argument("--max-iter", type=positive_int, default=100, metavar="L",
                        help="cap on AMHT-LRS iterations and on per-task passes of adapt")
    parser.add_argument("--no-plot", action="store_true", help="do not draw generalization.png")
    add_quiet(parser)


def run(args: argparse.Namespace) -> int:
    from ..experiments.generalization import GeneralizationConfig, format_generalization_table, run_generalization

    config = GeneralizationConfig(
        n_features=args.features, rank=args.rank, sparsity=args.sparsity, n_train_tasks=args.train_tasks,
        n_train_samples=args.train_samples, n_new_tasks=args.new_tasks, new_samples=tuple(args.samples),
        noise=args.noise, seeds=tuple(range(args.seed, args.seed + args.n_seeds)), max_iter=args.max_iter).validate()
    say(args, f"new tasks: d={config.n_features}, r={config.rank}, k={config.sparsity}, sigma={config.noise:g}, "
              f"{config.n_train_tasks} training tasks x {config.n_train_samples} rows, {config.n_new_tasks} new "
              f"tasks, seeds {list(config.seeds)}")
    result = run_generalization(config, args.output, progress=not args.quiet, plot=not args.no_plot)
    print(format_generalization_table(result.summary))
    say(args, f"done in {result.seconds:.1f} s; results in {args.output}/: "
              + ", ".join(p.name for p in result.files.values()))
    return 0
